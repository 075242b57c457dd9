"""`/swarm search`: ranked full-text search over case records, only where the user can read."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time

from storage.domain import CaseStatus
from storage.search import Hit, SearchQuery
from storage.search import search as run_search
from workflows.access import can_see, channels_of
from workflows.config import SwarmConfig
from workflows.errors import SwarmError
from workflows.services import Services

PAGE_SIZE = 5
STATUSES = {
    "open": (CaseStatus.OPEN, CaseStatus.SWARMING),
    "swarming": (CaseStatus.SWARMING,),
    "escalated": (CaseStatus.ESCALATED,),
    "resolved": (CaseStatus.RESOLVED,),
}
# Rounds of "search, then hide the channels this user may not read"; after that the page is
# filtered as it stands, so a hidden channel can make a page short but never leak.
ACCESS_ROUNDS = 8


@dataclass(frozen=True)
class Found:
    """A hit the user may see, with a link to it."""

    hit: Hit
    permalink: str | None


@dataclass(frozen=True)
class Results:
    words: str
    filters: dict[str, str]
    offset: int
    found: tuple[Found, ...]
    more: bool


def _day(value: str, name: str) -> datetime:
    try:
        return datetime.combine(date.fromisoformat(value), time(0), tzinfo=UTC)
    except ValueError:
        raise SwarmError(f"`{name}:` takes a date like 2026-01-31, not `{value}`.") from None


def build_query(
    config: SwarmConfig, *, team_id: str, words: str, filters: dict[str, str], offset: int = 0
) -> SearchQuery:
    """A storage query from the words and filters of `/swarm search`; SwarmError when bad."""
    if not words.strip():
        raise SwarmError("Search for some words, e.g. `/swarm search webhook timeout status:open`.")
    topic = filters.get("topic")
    if topic is not None and config.topic(topic.lower()) is None:
        known = ", ".join(f"`{t.key}`" for t in config.topics)
        raise SwarmError(f"Unknown topic `{topic}`. Topics: {known}.")
    statuses: tuple[CaseStatus, ...] = ()
    if "status" in filters:
        status = filters["status"].lower()
        if status not in STATUSES:
            raise SwarmError("`status:` is one of open, swarming, escalated, resolved.")
        statuses = STATUSES[status]
    severity = None
    if "sev" in filters:
        raw = filters["sev"].lower().removeprefix("sev")
        if raw not in {"1", "2", "3", "4"}:
            raise SwarmError("`sev:` is 1, 2, 3 or 4.")
        severity = int(raw)
    after = _day(filters["after"], "after") if "after" in filters else None
    before = _day(filters["before"], "before") if "before" in filters else None
    return SearchQuery(
        team_id=team_id,
        words=words,
        topic=topic.lower() if topic else None,
        statuses=statuses,
        severity=severity,
        after=after,
        before=before,
        offset=max(offset, 0),
        limit=PAGE_SIZE,
    )


def search(
    services: Services,
    *,
    team_id: str,
    user_id: str,
    words: str,
    filters: dict[str, str],
    offset: int = 0,
) -> Results:
    """One page of results the user may read, best first."""
    query = build_query(
        services.config, team_id=team_id, words=words, filters=filters, offset=offset
    )
    readable: dict[str, bool] = {}

    def may_read(channel_id: str) -> bool:
        if channel_id not in readable:
            readable[channel_id] = services.slack.can_read(user_id, channel_id)
        return readable[channel_id]

    for _ in range(ACCESS_ROUNDS):
        # Read, close, then ask Slack who may read what: no transaction waits on Slack.
        with services.uow.read() as uow:
            page = run_search(uow.session, query)
            cases = {h.case_id: uow.cases.get(h.case_id) for h in page.hits}
            incident = {i: c.incident_channel_id for i, c in cases.items() if c is not None}
        hidden = {h.channel_id for h in page.hits if not may_read(h.channel_id)}
        if not hidden:
            break
        query = replace(query, hidden_channels=query.hidden_channels | hidden)
    # The case rule on top (workflows.access): a hit in the public thread of a case escalated
    # into a private channel is hidden from non-members of that channel, as the case is.
    hits = [
        h
        for h in page.hits
        if can_see(services.slack, user_id, channels_of(h.channel_id, incident.get(h.case_id)))
    ]
    found = []
    for hit in hits:
        if hit.kind == "case" or not hit.ts:
            link = hit.case_permalink
        else:
            link = services.slack.permalink(hit.channel_id, hit.ts) or hit.case_permalink
        found.append(Found(hit, link))
    return Results(words, dict(filters), query.offset, tuple(found), page.more)
