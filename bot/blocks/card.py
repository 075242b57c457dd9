"""The case card posted in the swarm channel: what everyone watching the channel sees."""

from __future__ import annotations

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot.blocks.elements import (
    CONTEXT_TEXT_MAX,
    FIELD_TEXT_MAX,
    HEADER_MAX,
    MESSAGE_TEXT_MAX,
    SECTION_TEXT_MAX,
)
from bot.ids import Action
from storage.domain import CaseStatus, Urgency
from workflows.snapshot import CaseSnapshot
from workflows.text import case_link, clip, escape

DETAILS_ON_CARD = 2800
PARTICIPANTS_SHOWN = 12

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


def filer(card: CaseSnapshot) -> str:
    """Who filed the case: a mention, or the ticketing system when no one in Slack did."""
    return f"<@{card.filer_id}>" if card.filer_id else "the ticketing system"


def case_card_text(card: CaseSnapshot) -> str:
    """The notification text of a card."""
    text = f"Case {card.case_number} ({card.urgency.value}, {card.topic_label}): {card.summary}"
    return clip(escape(text), MESSAGE_TEXT_MAX)


def case_card(card: CaseSnapshot) -> list[Block]:
    """The case card posted in the swarm channel; its thread is the case record."""
    status = STATUS_LABEL[card.status]
    if card.status is CaseStatus.ESCALATED and card.severity:
        status += f" (sev{card.severity})"
    if card.incident_channel_id:
        status += f" in <#{card.incident_channel_id}>"
    topic = escape(card.topic_label) + (f" · {escape(card.region)}" if card.region else "")
    fields = [
        f"*Case*\n{case_link(card.case_number, card.case_url)}",
        f"*Urgency*\n{URGENCY_ICON[card.urgency]} {card.urgency.value.title()}",
        f"*Topic*\n{topic}",
        f"*Status*\n{status}",
        f"*Filed by*\n{filer(card)}",
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


def card_overflow(card: CaseSnapshot) -> str | None:
    """The part of the details that did not fit on the card, for the thread."""
    escaped = escape(card.details)
    if len(escaped) <= DETAILS_ON_CARD:
        return None
    return card.details
