"""Block Kit builders: the case card, the intake modal, status replies."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel
from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    CheckboxesElement,
    ContextBlock,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from bot.ids import CONFIDENTIAL_YES, VALUE, Action, Callback, EscalateField, Field, ResolveField
from storage.models import CaseStatus, Urgency
from storage.search import END_MARK, MARK
from workflows.config import SwarmConfig
from workflows.escalation import Escalated
from workflows.intake import CUSTOMER_MAX, DETAILS_MAX, SUMMARY_MAX
from workflows.ports import CaseCard
from workflows.resolution import NOTE_MAX, RESOLUTION_MAX, URL_MAX
from workflows.search import Results
from workflows.text import clip, escape

# Slack limits (https://api.slack.com/reference/block-kit/blocks).
SECTION_TEXT_MAX = 3000
FIELD_TEXT_MAX = 2000
HEADER_MAX = 150
CONTEXT_TEXT_MAX = 2000
MESSAGE_TEXT_MAX = 3000  # notification fallback text; Slack truncates longer ones
DETAILS_ON_CARD = 2800
PARTICIPANTS_SHOWN = 12
OPTIONS_MAX = 100

URGENCY_ICON = {
    Urgency.CRITICAL: ":red_circle:",
    Urgency.HIGH: ":large_orange_circle:",
    Urgency.MEDIUM: ":large_yellow_circle:",
    Urgency.LOW: ":white_circle:",
}
STATUS_LABEL = {
    CaseStatus.OPEN: ":hourglass_flowing_sand: Open, waiting for a swarmer",
    CaseStatus.SWARMING: ":bee: Swarming",
    CaseStatus.ESCALATED: ":rotating_light: Escalated",
    CaseStatus.RESOLVED: ":white_check_mark: Resolved",
}


class IntakeMetadata(BaseModel):
    """What the intake modal carries between open and submit."""

    origin_channel_id: str | None = None
    source_channel_id: str | None = None
    source_ts: str | None = None


def case_link(card: CaseCard) -> str:
    """The case number, linked to the support system when a URL template is set."""
    number = escape(card.case_number)
    return f"<{card.case_url}|{number}>" if card.case_url else number


def case_card_text(card: CaseCard) -> str:
    """The notification text of a card."""
    text = f"Case {card.case_number} ({card.urgency.value}, {card.topic_label}): {card.summary}"
    return clip(escape(text), MESSAGE_TEXT_MAX)


def case_card(card: CaseCard) -> list[Block]:
    """The case card posted in the swarm channel; its thread is the case record."""
    status = STATUS_LABEL[card.status]
    if card.status is CaseStatus.ESCALATED and card.severity:
        status += f" (sev{card.severity})"
    if card.incident_channel_id:
        status += f" in <#{card.incident_channel_id}>"
    topic = escape(card.topic_label) + (f" · {escape(card.region)}" if card.region else "")
    fields = [
        f"*Case*\n{case_link(card)}",
        f"*Urgency*\n{URGENCY_ICON[card.urgency]} {card.urgency.value.title()}",
        f"*Topic*\n{topic}",
        f"*Status*\n{status}",
        f"*Filed by*\n<@{card.filer_id}>",
        "*Assignee*\n" + (f"<@{card.assignee_id}>" if card.assignee_id else "_unassigned_"),
    ]
    if card.customer:
        fields.append(f"*Customer*\n{clip(escape(card.customer), FIELD_TEXT_MAX - 20)}")
    blocks: list[Block] = [
        HeaderBlock(
            text=PlainTextObject(text=clip(f"{card.case_number}: {card.summary}", HEADER_MAX))
        ),
        SectionBlock(fields=[MarkdownTextObject(text=f) for f in fields]),
    ]
    if card.details:
        details = escape(card.details)
        blocks.append(
            SectionBlock(
                text=MarkdownTextObject(
                    text=clip(details, DETAILS_ON_CARD, more="_(full details in the thread)_")
                )
            )
        )
    if card.status is CaseStatus.RESOLVED and card.resolution:
        by = f" by <@{card.resolved_by}>" if card.resolved_by else ""
        blocks.append(
            SectionBlock(
                text=MarkdownTextObject(
                    text=clip(
                        f"*Resolved{by}:* {escape(card.resolution)}",
                        SECTION_TEXT_MAX,
                        more="_(full resolution in the thread)_",
                    )
                )
            )
        )
    context = []
    if card.participants:
        shown = " ".join(f"<@{u}>" for u in card.participants[:PARTICIPANTS_SHOWN])
        more = len(card.participants) - PARTICIPANTS_SHOWN
        context.append(f":bee: {shown}" + (f" and {more} more" if more > 0 else ""))
    if card.source_permalink:
        context.append(f"<{card.source_permalink}|original message>")
    if card.breached:
        context.append(":warning: SLA breached: " + ", ".join(card.breached))
    if context:
        blocks.append(
            ContextBlock(
                elements=[MarkdownTextObject(text=clip(" · ".join(context), CONTEXT_TEXT_MAX))]
            )
        )
    if card.status is not CaseStatus.RESOLVED:
        value = str(card.case_id)
        blocks.append(
            ActionsBlock(
                block_id=f"case-actions-{card.case_id}",
                elements=[
                    ButtonElement(text="Join", action_id=Action.JOIN, value=value),
                    ButtonElement(text="Claim", action_id=Action.CLAIM, value=value),
                    ButtonElement(
                        text="Escalate", action_id=Action.ESCALATE, value=value, style="danger"
                    ),
                    ButtonElement(
                        text="Resolve", action_id=Action.RESOLVE, value=value, style="primary"
                    ),
                ],
            )
        )
    return blocks


def card_overflow(card: CaseCard) -> str | None:
    """The part of the details that did not fit on the card, for the thread."""
    escaped = escape(card.details)
    if len(escaped) <= DETAILS_ON_CARD:
        return None
    return card.details


def _options(pairs: Sequence[tuple[str, str]]) -> list[Option]:
    return [Option(value=v, text=clip(label, 75)) for v, label in pairs[:OPTIONS_MAX]]


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
    topics = _options([(t.key, t.title) for t in config.topics])
    urgencies = _options([(u.value, u.value.title()) for u in Urgency])
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
        InputBlock(
            block_id=Field.CASE_NUMBER,
            label="Case number",
            element=PlainTextInputElement(
                action_id=VALUE,
                initial_value=case_number or None,
                max_length=64,
                placeholder="27343",
            ),
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
                    options=_options([(r, r.upper()) for r in regions]),
                ),
            )
        )
    blocks += [
        InputBlock(
            block_id=Field.SUMMARY,
            label="Summary",
            element=PlainTextInputElement(
                action_id=VALUE,
                max_length=SUMMARY_MAX,
                initial_value=clip(summary, SUMMARY_MAX) or None,
                placeholder="One line: what is wrong",
            ),
        ),
        InputBlock(
            block_id=Field.DETAILS,
            label="Details",
            optional=True,
            element=PlainTextInputElement(
                action_id=VALUE,
                multiline=True,
                max_length=DETAILS_MAX,
                initial_value=clip(details, DETAILS_MAX) or None,
            ),
        ),
        InputBlock(
            block_id=Field.CUSTOMER,
            label="Customer / account",
            optional=True,
            element=PlainTextInputElement(action_id=VALUE, max_length=CUSTOMER_MAX),
        ),
    ]
    return View(
        type="modal",
        callback_id=Callback.INTAKE_VIEW,
        title="File a swarm case",
        submit="File case",
        close="Cancel",
        blocks=blocks,
        private_metadata=metadata.model_dump_json(exclude_none=True),
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


def _case_title(card: CaseCard) -> str:
    return clip(f"Case {card.case_number}: {card.summary}", SECTION_TEXT_MAX)


def escalate_modal(card: CaseCard, *, severity: int, metadata: CaseMetadata) -> View:
    """Severity, reason and confidentiality of an escalation."""
    severities = _options([(str(n), f"sev{n}") for n in (1, 2, 3, 4)])
    initial = next(o for o in severities if o.value == str(severity))
    confidential = Option(
        value=CONFIDENTIAL_YES, text="Confidential: make the incident channel private"
    )
    return View(
        type="modal",
        callback_id=Callback.ESCALATE_VIEW,
        title="Escalate case",
        submit="Escalate",
        close="Cancel",
        private_metadata=metadata.model_dump_json(exclude_none=True),
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
            InputBlock(
                block_id=EscalateField.REASON,
                label="Reason",
                optional=True,
                element=PlainTextInputElement(action_id=VALUE, multiline=True, max_length=1000),
            ),
            InputBlock(
                block_id=EscalateField.CONFIDENTIAL,
                label="Confidential?",
                optional=True,
                element=CheckboxesElement(action_id=VALUE, options=[confidential]),
            ),
        ],
    )


def resolve_modal(card: CaseCard, *, metadata: CaseMetadata) -> View:
    """Resolution, root cause, workaround and knowledge article of a case."""
    return View(
        type="modal",
        callback_id=Callback.RESOLVE_VIEW,
        title="Resolve case",
        submit="Resolve",
        close="Cancel",
        private_metadata=metadata.model_dump_json(exclude_none=True),
        blocks=[
            SectionBlock(text=MarkdownTextObject(text=escape(_case_title(card)))),
            InputBlock(
                block_id=ResolveField.RESOLUTION,
                label="Resolution",
                element=PlainTextInputElement(
                    action_id=VALUE, multiline=True, max_length=RESOLUTION_MAX
                ),
            ),
            InputBlock(
                block_id=ResolveField.ROOT_CAUSE,
                label="Root cause",
                optional=True,
                element=PlainTextInputElement(action_id=VALUE, multiline=True, max_length=NOTE_MAX),
            ),
            InputBlock(
                block_id=ResolveField.WORKAROUND,
                label="Workaround",
                optional=True,
                element=PlainTextInputElement(action_id=VALUE, multiline=True, max_length=NOTE_MAX),
            ),
            InputBlock(
                block_id=ResolveField.KB_LINK,
                label="Knowledge article",
                optional=True,
                hint="A full https:// link.",
                element=PlainTextInputElement(
                    action_id=VALUE, max_length=URL_MAX, placeholder="https://"
                ),
            ),
        ],
    )


def escalated_text(result: Escalated) -> str:
    """What a lead is told after `/swarm escalate`, `/swarm sev` or the Escalate modal."""
    number = escape(result.case_number)
    where = f"<#{result.channel_id}>"
    if result.unchanged:
        text = f"Case {number} already is sev{result.severity} in {where}."
    elif result.renamed_from:
        text = (
            f"Case {number} is now sev{result.severity}: `#{result.renamed_from}` "
            f"was renamed to `#{result.channel_name}` ({where})."
        )
    else:
        made = "created" if result.created else "finished"
        text = f"Case {number} escalated to sev{result.severity}: {where} {made}."
    if result.skipped:
        text += " Not invited: " + ", ".join(
            f"<@{user}> ({error})" for user, error in result.skipped.items()
        )
        text += "."
    if result.unnotified:
        text += " Not notified: " + ", ".join(
            f"<#{channel}> ({error})" for channel, error in result.unnotified.items()
        )
        text += "."
    return clip(text, MESSAGE_TEXT_MAX)


def waited(since: datetime | None, now: datetime) -> str:
    """How long since, for humans: `42s`, `17m 5s`, `3h 4m`, `2d 1h`."""
    if since is None:
        return "?"
    seconds = max(int((now - since).total_seconds()), 0)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60}s"
    if seconds < 86400:
        return f"{seconds // 3600}h {seconds % 3600 // 60}m"
    return f"{seconds // 86400}d {seconds % 86400 // 3600}h"


def case_line(card: CaseCard, now: datetime) -> str:
    """One line of the queue."""
    where = (
        f"<{card.permalink}|{escape(card.case_number)}>"
        if card.permalink
        else escape(card.case_number)
    )
    who = f" · <@{card.assignee_id}>" if card.assignee_id else ""
    return (
        f"{URGENCY_ICON[card.urgency]} {where} {escape(clip(card.summary, 80))} · "
        f"{card.status.value} · waiting {waited(card.created_at, now)}{who}"
    )


def case_status(card: CaseCard, now: datetime) -> str:
    """The `/swarm status <case>` answer."""
    lines = [
        f"*Case {case_link(card)}*: {escape(card.summary)}",
        f"{URGENCY_ICON[card.urgency]} {card.urgency.value} · {escape(card.topic_label)}"
        + (f" · {escape(card.region)}" if card.region else "")
        + f" · {STATUS_LABEL[card.status]}",
        f"Filed by <@{card.filer_id}> {waited(card.created_at, now)} ago"
        + (f" · assigned to <@{card.assignee_id}>" if card.assignee_id else " · unassigned"),
    ]
    if card.permalink:
        lines.append(f"Thread: {card.permalink}")
    else:
        lines.append("Thread: the card is still being posted.")
    if card.incident_channel_id:
        lines.append(f"Incident channel: <#{card.incident_channel_id}>")
    return clip("\n".join(lines), MESSAGE_TEXT_MAX)


def queue_status(cards: Sequence[CaseCard], now: datetime, channel_id: str) -> str:
    """The `/swarm status` answer: this channel's open queue."""
    if not cards:
        return f"No open cases in <#{channel_id}>. :tada:"
    oldest = waited(cards[0].created_at, now)
    head = (
        f"*{len(cards)} open case{'s' if len(cards) != 1 else ''}* in <#{channel_id}>"
        f" (oldest waiting {oldest}):"
    )
    lines = [head] + [case_line(c, now) for c in cards[:40]]
    if len(cards) > 40:
        lines.append(f"… and {len(cards) - 40} more.")
    return clip("\n".join(lines), MESSAGE_TEXT_MAX)


SNIPPET_MAX = 600
SEARCH_VALUE_MAX = 2000  # a button's value


def marked(snippet: str) -> str:
    """A search snippet, escaped for mrkdwn, with its match markers turned to bold."""
    flat = " ".join(snippet.split())
    return escape(flat).replace(MARK, "*").replace(END_MARK, "*")


def search_more_value(results: Results) -> str | None:
    """What the More button carries to fetch the next page (None when it would not fit)."""
    value = json.dumps(
        {"w": results.words, "f": results.filters, "o": results.offset + len(results.found)},
        separators=(",", ":"),
    )
    return value if len(value) <= SEARCH_VALUE_MAX else None


def search_results(results: Results, topic_label: dict[str, str]) -> tuple[str, list[Block]]:
    """The ephemeral answer to `/swarm search`: ranked hits with snippets and links, and More."""
    shown = " ".join([results.words, *(f"{k}:{v}" for k, v in results.filters.items())])
    query = escape(clip(shown, 200))
    if not results.found:
        more = " on this page" if results.offset else ""
        text = f"No results{more} for `{query}` in cases you can read."
        return text, [SectionBlock(text=MarkdownTextObject(text=text))]
    first = results.offset + 1
    last = results.offset + len(results.found)
    head = f"Results {first}–{last} for `{query}`"
    blocks: list[Block] = [
        ContextBlock(elements=[MarkdownTextObject(text=clip(head, CONTEXT_TEXT_MAX))])
    ]
    for found in results.found:
        hit = found.hit
        title = f"Case {escape(hit.case_number)}"
        title = f"<{found.permalink}|{title}>" if found.permalink else title
        label = escape(topic_label.get(hit.topic_key, hit.topic_key))
        when = hit.at.strftime("%Y-%m-%d")
        what = f"<@{hit.user_id}> in the thread" if hit.kind == "message" and hit.user_id else ""
        if hit.kind == "message" and not hit.user_id:
            what = "a message"
        line = f"*{title}* · {hit.status.value} · {label} · {when}"
        if what:
            line += f" · {what}"
        body = (
            f"{line}\n_{escape(clip(hit.summary, 150))}_\n>{clip(marked(hit.snippet), SNIPPET_MAX)}"
        )
        blocks.append(SectionBlock(text=MarkdownTextObject(text=clip(body, SECTION_TEXT_MAX))))
    value = search_more_value(results) if results.more else None
    if value:
        blocks.append(
            ActionsBlock(
                elements=[ButtonElement(text="More", action_id=Action.SEARCH_MORE, value=value)]
            )
        )
    return f"{head}.", blocks
