"""Modals: the intake form and the escalate and resolve forms, and reading them back."""

from __future__ import annotations

import json
from dataclasses import dataclass

from pydantic import BaseModel
from slack_sdk.models.blocks import (
    Block,
    CheckboxesElement,
    InputBlock,
    MarkdownTextObject,
    Option,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from bot.blocks.elements import SECTION_TEXT_MAX, modal, options, text_input
from bot.ids import CONFIDENTIAL_YES, VALUE, Callback, EscalateField, Field, ResolveField
from storage.domain import Urgency
from workflows.config import SwarmConfig
from workflows.intake import CUSTOMER_MAX, DETAILS_MAX, SUMMARY_MAX, CaseDraft
from workflows.resolution import NOTE_MAX, RESOLUTION_MAX, URL_MAX, Resolution
from workflows.snapshot import CaseSnapshot
from workflows.text import clip, escape


class IntakeMetadata(BaseModel):
    """What the intake modal carries between open and submit."""

    origin_channel_id: str | None = None
    source_channel_id: str | None = None
    source_ts: str | None = None


def intake_modal(
    config: SwarmConfig,
    *,
    metadata: IntakeMetadata,
    case_number: str = "",
    summary: str = "",
    details: str = "",
    topic_key: str | None = None,
) -> View:
    """The one intake modal behind the shortcuts and `/swarm new`.

    Choosing a topic re-renders it (`dispatch_action`) with that topic's regions only.
    """
    topics = options([(t.key, t.title) for t in config.topics])
    urgencies = options([(u.value, u.value.title()) for u in Urgency])
    medium = next(o for o in urgencies if o.value == Urgency.MEDIUM.value)
    topic_select = StaticSelectElement(
        action_id=VALUE, placeholder="Product or area", options=topics
    )
    if len(topics) == 1:
        topic_select.initial_option = topics[0]
        topic_key = topics[0].value
    chosen = config.topic(topic_key) if topic_key else None
    regions = chosen.regions if chosen is not None else config.regions
    blocks: list[Block] = [
        text_input(
            Field.CASE_NUMBER,
            "Case number",
            initial_value=case_number or None,
            max_length=64,
            placeholder="27343",
        ),
        InputBlock(
            block_id=Field.URGENCY,
            label="Urgency",
            element=StaticSelectElement(action_id=VALUE, options=urgencies, initial_option=medium),
        ),
        InputBlock(block_id=Field.TOPIC, label="Topic", element=topic_select, dispatch_action=True),
    ]
    if regions:
        blocks.append(
            InputBlock(
                block_id=Field.REGION,
                label="Region",
                optional=True,
                hint="A region may have its own swarm channel.",
                element=StaticSelectElement(
                    action_id=VALUE,
                    placeholder="Region",
                    options=options([(r, r.upper()) for r in regions]),
                ),
            )
        )
    blocks += [
        text_input(
            Field.SUMMARY,
            "Summary",
            max_length=SUMMARY_MAX,
            initial_value=clip(summary, SUMMARY_MAX) or None,
            placeholder="One line: what is wrong",
        ),
        text_input(
            Field.DETAILS,
            "Details",
            optional=True,
            multiline=True,
            max_length=DETAILS_MAX,
            initial_value=clip(details, DETAILS_MAX) or None,
        ),
        text_input(Field.CUSTOMER, "Customer / account", optional=True, max_length=CUSTOMER_MAX),
    ]
    return modal(
        Callback.INTAKE_VIEW,
        title="File a swarm case",
        submit="File case",
        blocks=blocks,
        metadata=metadata,
    )


def field_values(view: dict) -> dict[str, str]:
    """The submitted value of each intake field ("" when empty)."""
    values: dict[str, str] = {}
    for block_id, actions in (view.get("state") or {}).get("values", {}).items():
        element = actions.get(VALUE) or next(iter(actions.values()), {})
        selected = element.get("selected_option")
        if element.get("selected_options") is not None:
            values[block_id] = ",".join(o.get("value", "") for o in element["selected_options"])
        elif selected:
            values[block_id] = selected.get("value") or ""
        else:
            values[block_id] = element.get("value") or ""
    return values


def metadata_of(view: dict) -> IntakeMetadata:
    """The modal's private metadata (empty when absent or unreadable)."""
    raw = view.get("private_metadata") or "{}"
    try:
        return IntakeMetadata.model_validate(json.loads(raw))
    except (ValueError, TypeError):
        return IntakeMetadata()


class CaseMetadata(BaseModel):
    """Which case an escalate or resolve modal is about."""

    case_id: int
    origin_channel_id: str | None = None


def case_metadata_of(view: dict) -> CaseMetadata | None:
    """The case a modal is about, or None when its metadata is unreadable."""
    try:
        return CaseMetadata.model_validate(json.loads(view.get("private_metadata") or "{}"))
    except (ValueError, TypeError):
        return None


def waiting_modal(title: str, text: str = ":hourglass_flowing_sand: Just a moment…") -> View:
    """A modal with only a message: opened at once while the form is prepared, or saying why
    there is no form."""
    return View(
        type="modal",
        title=title,
        close="Close",
        blocks=[SectionBlock(text=MarkdownTextObject(text=clip(text, SECTION_TEXT_MAX)))],
    )


def _case_title(card: CaseSnapshot) -> str:
    return clip(f"Case {card.case_number}: {card.summary}", SECTION_TEXT_MAX)


def escalate_modal(card: CaseSnapshot, *, severity: int, metadata: CaseMetadata) -> View:
    """Severity, reason and confidentiality of an escalation."""
    severities = options([(str(n), f"sev{n}") for n in (1, 2, 3, 4)])
    initial = next(o for o in severities if o.value == str(severity))
    confidential = Option(
        value=CONFIDENTIAL_YES, text="Confidential: make the incident channel private"
    )
    return modal(
        Callback.ESCALATE_VIEW,
        title="Escalate case",
        submit="Escalate",
        metadata=metadata,
        blocks=[
            SectionBlock(text=MarkdownTextObject(text=escape(_case_title(card)))),
            InputBlock(
                block_id=EscalateField.SEVERITY,
                label="Severity",
                hint="The default follows the urgency: critical 1, high 2, medium 3, low 4.",
                element=StaticSelectElement(
                    action_id=VALUE, options=severities, initial_option=initial
                ),
            ),
            text_input(
                EscalateField.REASON, "Reason", optional=True, multiline=True, max_length=1000
            ),
            InputBlock(
                block_id=EscalateField.CONFIDENTIAL,
                label="Confidential?",
                optional=True,
                element=CheckboxesElement(action_id=VALUE, options=[confidential]),
            ),
        ],
    )


def resolve_modal(card: CaseSnapshot, *, metadata: CaseMetadata) -> View:
    """Resolution, root cause, workaround and knowledge article of a case."""
    return modal(
        Callback.RESOLVE_VIEW,
        title="Resolve case",
        submit="Resolve",
        metadata=metadata,
        blocks=[
            SectionBlock(text=MarkdownTextObject(text=escape(_case_title(card)))),
            text_input(
                ResolveField.RESOLUTION, "Resolution", multiline=True, max_length=RESOLUTION_MAX
            ),
            text_input(
                ResolveField.ROOT_CAUSE,
                "Root cause",
                optional=True,
                multiline=True,
                max_length=NOTE_MAX,
            ),
            text_input(
                ResolveField.WORKAROUND,
                "Workaround",
                optional=True,
                multiline=True,
                max_length=NOTE_MAX,
            ),
            text_input(
                ResolveField.KB_LINK,
                "Knowledge article",
                optional=True,
                hint="A full https:// link.",
                max_length=URL_MAX,
                placeholder="https://",
            ),
        ],
    )


def intake_draft(view: dict, *, team_id: str, filer_id: str) -> CaseDraft:
    """The case an intake modal submits, as entered (intake validates it)."""
    values = field_values(view)
    metadata = metadata_of(view)
    return CaseDraft(
        team_id=team_id,
        filer_id=filer_id,
        case_number=values.get(Field.CASE_NUMBER, ""),
        urgency=values.get(Field.URGENCY, ""),
        topic_key=values.get(Field.TOPIC, ""),
        region=values.get(Field.REGION, ""),
        summary=values.get(Field.SUMMARY, ""),
        details=values.get(Field.DETAILS, ""),
        customer=values.get(Field.CUSTOMER, ""),
        origin_channel_id=metadata.origin_channel_id,
        source_channel_id=metadata.source_channel_id,
        source_ts=metadata.source_ts,
        intake_view_id=view.get("id"),
    )


@dataclass(frozen=True)
class EscalationAnswer:
    """What the Escalate modal submits."""

    severity: int | None
    reason: str
    confidential: bool


def escalation_answer(view: dict) -> EscalationAnswer:
    """Severity (None when not 1-4: the urgency's default), reason and confidentiality."""
    values = field_values(view)
    severity = values.get(EscalateField.SEVERITY, "")
    return EscalationAnswer(
        severity=int(severity) if severity in ("1", "2", "3", "4") else None,
        reason=values.get(EscalateField.REASON, "").strip(),
        confidential=CONFIDENTIAL_YES in values.get(EscalateField.CONFIDENTIAL, "").split(","),
    )


def resolution_answer(view: dict) -> Resolution:
    """What the Resolve modal submits, as entered (resolution validates it)."""
    values = field_values(view)
    return Resolution(
        resolution=values.get(ResolveField.RESOLUTION, ""),
        root_cause=values.get(ResolveField.ROOT_CAUSE, ""),
        workaround=values.get(ResolveField.WORKAROUND, ""),
        kb_link=values.get(ResolveField.KB_LINK, ""),
    )
