"""Replies to one user: command answers, the queue, case status, search results."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot.blocks.card import STATUS_LABEL, URGENCY_ICON, case_link, filer
from bot.blocks.elements import CONTEXT_TEXT_MAX, MESSAGE_TEXT_MAX, SECTION_TEXT_MAX
from bot.ids import Action
from storage.search import END_MARK, MARK
from workflows.escalation import Escalated
from workflows.ports import CaseCard
from workflows.search import Results
from workflows.text import clip, escape


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
        f"Filed by {filer(card)} {waited(card.created_at, now)} ago"
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
