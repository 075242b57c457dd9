"""What a ticketing system sends, as the fields of a swarm case.

`case_fields` is the whole mapping: it renames, it does not guess. A payload is either the
documented shape (`case_number`, `urgency`, `topic`, `summary`, `details`, `customer`,
`region`, `filer_email`), or a ticket as common systems export it, optionally wrapped in one
envelope key (`case`, `ticket`, `record`, `data`, `sobject`). For each field the first name
present wins, in the order of `ALIASES`; dotted names reach into nested objects
(`requester.email`). Priorities are translated (`PRIORITIES`, plus `P1`..`P4`, `sev1`..`sev4`
and ServiceNow's `1 - Critical` style); every value is then validated like a modal's.
"""

from __future__ import annotations

import re
from typing import Any

FIELDS = ("case_number", "urgency", "topic", "summary", "details", "customer", "region")
ENVELOPES = ("case", "ticket", "record", "data", "sobject")
ALIASES: dict[str, tuple[str, ...]] = {
    # Salesforce Service Cloud (Case), Zendesk (ticket), ServiceNow (incident), Jira SM.
    "case_number": ("case_number", "CaseNumber", "caseNumber", "number", "key"),
    "urgency": ("urgency", "Priority", "priority", "severity"),
    "topic": ("topic", "Topic__c", "Product__c", "Product", "product", "group.name"),
    "summary": ("summary", "Subject", "subject", "short_description", "title"),
    "details": ("details", "Description", "description", "body"),
    "customer": (
        "customer",
        "Account.Name",
        "AccountName",
        "account",
        "organization.name",
        "company",
    ),
    "region": ("region", "Region__c", "Region"),
    "filer_email": (
        "filer_email",
        "ContactEmail",
        "SuppliedEmail",
        "requester.email",
        "reporter.emailAddress",
        "caller_id.email",
    ),
}
PRIORITIES = {
    "low": "low",
    "planning": "low",
    "minor": "low",
    "medium": "medium",
    "normal": "medium",
    "moderate": "medium",
    "major": "high",
    "high": "high",
    "urgent": "critical",
    "critical": "critical",
    "blocker": "critical",
}
BY_RANK = {"1": "critical", "2": "high", "3": "medium", "4": "low", "5": "low"}
RANKED = re.compile(r"^(?:p|sev|s)?\s*([1-5])\b(?:\s*-\s*\w.*)?$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
EMAIL_MAX = 254


def case_fields(payload: Any) -> tuple[dict[str, str], dict[str, str]]:
    """The case fields of a webhook body, and the errors by field name."""
    if not isinstance(payload, dict):
        return {}, {"body": "Send a JSON object."}
    for key in ENVELOPES:
        inner = payload.get(key)
        if isinstance(inner, dict) and not any(_has(payload, n) for n in ALIASES["summary"]):
            payload = inner
            break
    fields: dict[str, str] = {}
    errors: dict[str, str] = {}
    for field, names in ALIASES.items():
        name = next((n for n in names if _has(payload, n)), None)
        if name is None:
            continue
        value = _get(payload, name)
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            errors[field] = f"{name} must be a string."
            continue
        fields[field] = str(value).strip()
    if "urgency" in fields:
        fields["urgency"] = urgency_of(fields["urgency"])
    email = fields.get("filer_email", "")
    if email and (len(email) > EMAIL_MAX or not EMAIL.match(email)):
        errors["filer_email"] = "Give an email address, or leave it out."
    for field in ("case_number", "urgency", "topic", "summary"):
        if not fields.get(field) and field not in errors:
            errors[field] = f"{field} is required."
    return fields, errors


def urgency_of(priority: str) -> str:
    """A ticket priority as a swarm urgency; unknown values are kept (and then refused)."""
    value = priority.strip().lower()
    if value in PRIORITIES:
        return PRIORITIES[value]
    ranked = RANKED.match(value)
    if ranked:
        return BY_RANK[ranked.group(1)]
    return value


def _has(payload: dict[str, Any], name: str) -> bool:
    return _get(payload, name) is not None


def _get(payload: dict[str, Any], name: str) -> Any:
    value: Any = payload
    for part in name.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value
