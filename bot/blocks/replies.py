"""Replies to one user: command answers, the queue, case status, search results."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot.blocks.card import STATUS_LABEL, URGENCY_ICON, filer
from bot.blocks.elements import CONTEXT_TEXT_MAX, MESSAGE_TEXT_MAX, SECTION_TEXT_MAX
from bot.ids import Action
from storage.domain import Role
from storage.search import END_MARK, MARK
from workflows.cases import QueuePage
from workflows.config import SwarmConfig
from workflows.incident_room import Escalated
from workflows.resolution import Changed
from workflows.routing import RouteSet
from workflows.search import Results
from workflows.sla import UrgencyChanged
from workflows.snapshot import CaseSnapshot
from workflows.text import case_link, clip, duration, escape


@dataclass(frozen=True)
class Reply:
    """An answer to one request: its text, whether the channel sees it, its Block Kit if any."""

    text: str
    public: bool = False
    blocks: list[Block] | None = None


def route_text(result: RouteSet, config: SwarmConfig, user_id: str) -> str:
    """What the channel is told when it becomes a topic's swarm channel."""
    topic = config.topic(result.topic_key)
    label = topic.title if topic else result.topic_key
    where = f" ({result.region})" if result.region else ""
    return (
        f"<@{user_id}> made <#{result.channel_id}> the swarm channel for "
        f"*{label}*{where} (was <#{result.previous_channel_id}>). New cases land here."
    )


def role_text(user_id: str, role: Role, topic: str | None, *, added: bool) -> str:
    """The answer to `/swarm lead` and `/swarm expert`."""
    scope = f"topic `{topic}`" if topic else "every topic"
    title = "a lead" if role is Role.LEAD else "an expert"
    if not added:
        return f"<@{user_id}> already is {title} of {scope}."
    return f"<@{user_id}> is now {title} of {scope}."


def urgency_text(changed: UrgencyChanged) -> str:
    """The answer to `/swarm urgency`: the new level and when the targets are due now."""
    due = [
        f"{name} due {_when(at)}"
        for name, at in (
            ("first response", changed.first_response_due),
            ("resolution", changed.resolution_due),
        )
        if at is not None
    ]
    return (
        f"Case {escape(changed.case_number)} is now *{changed.urgency}* "
        f"(was {changed.previous}): {', '.join(due)}."
    )


def _when(at: datetime) -> str:
    fallback = at.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(at.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def changed_text(changed: Changed, what: str) -> str:
    """The answer to a resolve or reopen, with what Slack did not take."""
    text = f"Case {escape(changed.case_number)} {what}."
    if changed.problems:
        text += " Slack did not take everything: " + "; ".join(changed.problems)
    return text


def escalated_text(result: Escalated) -> str:
    """What a lead is told after `/swarm escalate`, `/swarm sev` or the Escalate modal."""
    number = escape(result.case_number)
    where = f"<#{result.channel_id}>"
    if result.pending:
        text = (
            f"Case {number} is being escalated right now; sev{result.severity} will be applied "
            "as soon as that completes."
        )
    elif result.unchanged:
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


def _age(since: datetime | None, now: datetime) -> str:
    return duration(now - since) if since is not None else "?"


def case_line(card: CaseSnapshot, now: datetime) -> str:
    """One line of the queue."""
    where = case_link(card.case_number, card.permalink)
    who = f" · <@{card.assignee_id}>" if card.assignee_id else ""
    return (
        f"{URGENCY_ICON[card.urgency]} {where} {escape(clip(card.summary, 80))} · "
        f"{card.status.value} · waiting {_age(card.created_at, now)}{who}"
    )


def case_status(card: CaseSnapshot, now: datetime) -> str:
    """The `/swarm status <case>` answer."""
    lines = [
        f"*Case {case_link(card.case_number, card.case_url)}*: {escape(card.summary)}",
        f"{URGENCY_ICON[card.urgency]} {card.urgency.value} · {escape(card.topic_label)}"
        + (f" · {escape(card.region)}" if card.region else "")
        + f" · {STATUS_LABEL[card.status]}",
        f"Filed by {filer(card)} {_age(card.created_at, now)} ago"
        + (f" · assigned to <@{card.assignee_id}>" if card.assignee_id else " · unassigned"),
    ]
    if card.permalink:
        lines.append(f"Thread: {card.permalink}")
    else:
        lines.append("Thread: the card is still being posted.")
    if card.incident_channel_id:
        lines.append(f"Incident channel: <#{card.incident_channel_id}>")
    return clip("\n".join(lines), MESSAGE_TEXT_MAX)


QUEUE_SHOWN = 40  # cases listed by `/swarm status`; the rest are counted


def queue_status(page: QueuePage, now: datetime, channel_id: str) -> str:
    """The `/swarm status` answer: this channel's open queue (its first QUEUE_SHOWN cases)."""
    cards = page.cases
    if not cards:
        return f"No open cases in <#{channel_id}>. :tada:"
    oldest = _age(cards[0].created_at, now)
    total = max(page.total, len(cards))
    head = (
        f"*{total} open case{'s' if total != 1 else ''}* in <#{channel_id}>"
        f" (oldest waiting {oldest}):"
    )
    # As many cases as fit in one message, whole, with room left to count the rest.
    text, shown = head, 0
    for card in cards[:QUEUE_SHOWN]:
        line = case_line(card, now)
        if len(text) + 1 + len(line) + len(f"\n… and {total} more.") > MESSAGE_TEXT_MAX:
            break
        text, shown = f"{text}\n{line}", shown + 1
    if total > shown:
        text += f"\n… and {total - shown} more."
    return clip(text, MESSAGE_TEXT_MAX)


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


def search_results(results: Results, config: SwarmConfig) -> Reply:
    """The ephemeral answer to `/swarm search`: ranked hits with snippets and links, and More."""
    topic_label = {t.key: t.title for t in config.topics}
    shown = " ".join([results.words, *(f"{k}:{v}" for k, v in results.filters.items())])
    query = escape(clip(shown, 200))
    if not results.found:
        more = " on this page" if results.offset else ""
        text = f"No results{more} for `{query}` in cases you can read."
        return Reply(text, blocks=[SectionBlock(text=MarkdownTextObject(text=text))])
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
    return Reply(f"{head}.", blocks=blocks)
