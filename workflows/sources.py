"""Cases filed from outside the intake modal: a Workflow Builder step, a ticketing system.

Both go through `intake.file_case` and `intake.publish_card`, exactly as a modal submission
does: same validation, same card, same idempotency.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

from workflows import tickets
from workflows.errors import DuplicateCase, InvalidCase, SlackUnavailable, SwarmError
from workflows.intake import CaseDraft, file_case, publish_card, validate
from workflows.services import Services

log = logging.getLogger(__name__)

# A Workflow Builder execution id in place of a modal's view id: a redelivered
# function_executed event finds the case its first delivery filed.
STEP_SUBMISSION = "step:"


@dataclass(frozen=True)
class Landed:
    """A filed case as the outside world sees it."""

    case_id: int
    case_number: str
    case_url: str | None
    thread_permalink: str | None
    created: bool


def file_and_post(
    services: Services,
    draft: CaseDraft,
) -> Landed:
    """File the case (InvalidCase, DuplicateCase as the modal), post its card, say where."""
    filed = file_case(services, draft)
    try:
        publish_card(services, filed.case_id)
    except SwarmError as exc:
        # The case (and its card, when Slack took it) is stored; what is left, such as the
        # filer's note, is sent by the cards:retry sweep. The sender hears where it landed.
        log.warning("case %s: filed, the rest follows later (%s)", filed.case_number, exc)
    return landed(services, filed.case_id, created=filed.created)


def landed(services: Services, case_id: int, *, created: bool) -> Landed:
    """Where a stored case is: its number, its link in the support system, its thread."""
    with services.uow() as uow:
        case = uow.cases.get(case_id)
        assert case is not None
        return Landed(
            case_id=case.id,
            case_number=case.case_number,
            case_url=services.config.case.case_url(case.case_number),
            thread_permalink=case.permalink,
            created=created,
        )


def file_from_ticket(services: Services, *, team_id: str, payload: Any) -> Landed:
    """File a case a ticketing system sent; a number already filed returns that case.

    InvalidCase carries every field error. The filer is the workspace member with
    `filer_email`; without one (or while Slack cannot say), the case has no Slack filer.
    """
    fields, errors = tickets.case_fields(payload)
    if "body" in errors:
        raise InvalidCase(errors)
    draft = CaseDraft(
        team_id=team_id,
        filer_id="",
        case_number=fields.get("case_number", ""),
        urgency=fields.get("urgency", ""),
        topic_key=fields.get("topic", ""),
        region=fields.get("region", ""),
        summary=fields.get("summary", ""),
        details=fields.get("details", ""),
        customer=fields.get("customer", ""),
    )
    errors = {**validate(draft, services.config), **errors}
    if errors:
        raise InvalidCase(errors)
    earlier = _filed(services, team_id, draft.case_number)
    if earlier is not None:  # a redelivery: the sender gets what it got the first time
        return landed(services, earlier, created=False)
    email = fields.get("filer_email")
    if email:
        try:
            draft = replace(draft, filer_id=services.slack.user_by_email(email) or "")
        except SlackUnavailable as exc:
            log.warning("case %s: filer not looked up (%s); filed without", draft.case_number, exc)
    try:
        return file_and_post(services, draft)
    except DuplicateCase:  # the same case, sent twice at once
        earlier = _filed(services, team_id, draft.case_number)
        assert earlier is not None
        return landed(services, earlier, created=False)


def _filed(services: Services, team_id: str, case_number: str) -> int | None:
    with services.uow() as uow:
        case = uow.cases.by_number(team_id=team_id, case_number=case_number.strip())
        return case.id if case is not None else None
