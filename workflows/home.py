"""App Home, the lead's live view: the open queue of the topics they lead (a page at a time),
everyone's own open cases, the last seven days' figures, and whose Home a change concerns."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from storage.domain import CaseStatus, Urgency
from storage.models import Case
from workflows import metrics
from workflows.access import can_see, channels_of
from workflows.cases import find_case
from workflows.config import SwarmConfig
from workflows.services import Services
from workflows.sla import REMIND_AT

PAGE_SIZE = 20  # cases of the queue a page: two blocks each, well inside Slack's 100
OWN_SHOWN = 10
ALL_TOPICS = "*"
# A Home opened this recently is kept current when a case on it changes.
WATCHED_FOR = timedelta(hours=8)
# Rounds of "hide the private channels found on this page and read it again".
ACCESS_ROUNDS = 5


class SlaState(enum.StrEnum):
    OK = "ok"
    AT_RISK = "at risk"
    BREACHED = "breached"


@dataclass(frozen=True)
class QueueItem:
    """One open case as Home shows it."""

    case_id: int
    case_number: str
    case_url: str | None
    permalink: str | None
    summary: str
    topic_label: str
    urgency: Urgency
    status: CaseStatus
    severity: int | None
    assignee_id: str | None
    filed_at: datetime
    waited: float  # seconds since filing
    sla: SlaState
    sla_detail: str


@dataclass(frozen=True)
class Home:
    """Everything one user's Home shows."""

    team_id: str
    user_id: str
    leads: bool
    topics: tuple[str, ...]  # the topics whose queue is shown ("*": all)
    queue: tuple[QueueItem, ...]
    queue_total: int
    page: int
    pages: int
    own: tuple[QueueItem, ...]
    own_total: int
    figures: metrics.Report
    now: datetime

    @property
    def case_ids(self) -> list[int]:
        return sorted({i.case_id for i in self.queue} | {i.case_id for i in self.own})


def sla_state(case: Case, config: SwarmConfig, now: datetime) -> tuple[SlaState, str]:
    """Breached (a deadline passed or was marked breached), at risk (past 80 % of a pending
    target, when the reminder goes out) or ok; with what it is about."""
    target = config.sla.target(str(case.urgency))
    pending = []
    if case.first_response_at is None and case.first_response_due is not None:
        pending.append(("first response", case.first_response_due, target.first_response))
    if case.resolution_due is not None:
        pending.append(("resolution", case.resolution_due, target.resolution))
    for name, at in (
        ("first response", case.first_response_breached_at),
        ("resolution", case.resolution_breached_at),
    ):
        if at is not None:
            return SlaState.BREACHED, f"{name} breached"
    for name, due, _ in pending:
        if now >= due:
            return (
                SlaState.BREACHED,
                f"{name} breached {metrics.duration((now - due).total_seconds())} ago",
            )
    for name, due, span in pending:
        if now >= due - span * (1 - REMIND_AT):
            return (
                SlaState.AT_RISK,
                f"{name} due in {metrics.duration((due - now).total_seconds())}",
            )
    if pending:
        name, due, _ = min(pending, key=lambda p: p[1])
        return SlaState.OK, f"{name} due in {metrics.duration((due - now).total_seconds())}"
    return SlaState.OK, ""


def _item(case: Case, config: SwarmConfig, now: datetime) -> QueueItem:
    topic = config.topic(case.topic_key)
    state, detail = sla_state(case, config, now)
    return QueueItem(
        case_id=case.id,
        case_number=case.case_number,
        case_url=config.case.case_url(case.case_number),
        permalink=case.permalink,
        summary=case.summary,
        topic_label=topic.title if topic else case.topic_key,
        urgency=case.urgency,
        status=case.status,
        severity=case.severity,
        assignee_id=case.assignee_id,
        filed_at=case.created_at,
        waited=(now - case.created_at).total_seconds(),
        sla=state,
        sla_detail=detail,
    )


def _channels(cases: Iterable[Case]) -> set[str]:
    out = set()
    for case in cases:
        out.add(case.channel_id)
        if case.incident_channel_id:
            out.add(case.incident_channel_id)
    return out


def home(services: Services, *, team_id: str, user_id: str, page: int = 0) -> Home:
    """One user's Home: leads get the queue of their topics (oldest first, a page of it);
    everyone gets their own open cases and the last 7 days. Cases of private channels only
    for members, judged as search judges them."""
    config, slack = services.config, services.slack
    now = services.clock.now()
    scope = metrics.people_scope(services, team_id=team_id, user_id=user_id, topic=None)
    leads = scope is not False
    topics = None if scope is None or scope is False else list(scope)
    readable: dict[str, bool] = {}

    def may_read(channel_id: str) -> bool:
        if channel_id not in readable:
            readable[channel_id] = slack.can_read(user_id, channel_id)
        return readable[channel_id]

    hidden: set[str] = set()
    queue: list[Case] = []
    total = 0
    own: list[Case] = []
    own_total = 0
    page = max(page, 0)
    for _ in range(ACCESS_ROUNDS):
        with services.uow.read() as uow:  # read, close, then ask Slack: no transaction waits
            if leads:
                queue, total = uow.homes.queue(
                    team_id=team_id,
                    topics=topics,
                    hidden=hidden,
                    offset=page * PAGE_SIZE,
                    limit=PAGE_SIZE,
                )
                if not queue and page > 0 and total:  # the queue shrank under this page
                    page = (total - 1) // PAGE_SIZE
                    continue
            own, own_total = uow.homes.own_cases(
                team_id=team_id, user_id=user_id, hidden=hidden, limit=OWN_SHOWN
            )
        unseen = {c for c in _channels([*queue, *own]) if not may_read(c)}
        if not unseen:
            break
        hidden |= unseen

    def visible(case: Case) -> bool:
        return can_see(
            services.slack, user_id, channels_of(case.channel_id, case.incident_channel_id)
        )

    queue_items = tuple(_item(c, config, now) for c in queue if visible(c))
    own_items = tuple(_item(c, config, now) for c in own if visible(c))
    figures = metrics.report(services, team_id=team_id, period="7d")
    pages = max(1, -(-total // PAGE_SIZE)) if leads else 0
    return Home(
        team_id=team_id,
        user_id=user_id,
        leads=leads,
        topics=tuple(topics) if topics is not None else (ALL_TOPICS,) if leads else (),
        queue=queue_items,
        queue_total=total,
        page=min(page, max(pages - 1, 0)),
        pages=pages,
        own=own_items,
        own_total=own_total,
        figures=figures,
        now=now,
    )


def opened(services: Services, *, team_id: str, user_id: str) -> None:
    """The user opened their Home tab: keep it current for a while, from its first page."""
    with services.uow() as uow:
        row = uow.homes.opened(team_id=team_id, user_id=user_id, at=services.clock.now())
        row.page = 0
        uow.commit()


def last_published(services: Services, *, team_id: str, user_id: str) -> tuple[int, str | None]:
    """The page a user's Home was on and the hash Slack gave it (0, None if never)."""
    with services.uow.read() as uow:
        row = uow.homes.view(team_id=team_id, user_id=user_id)
        return (row.page, row.view_hash) if row is not None else (0, None)


def published(services: Services, shown: Home, *, view_hash: str | None) -> None:
    """Remember what a Home shows now, so a change to one of its cases refreshes it."""
    now = services.clock.now()
    with services.uow() as uow:
        row = uow.homes.view(team_id=shown.team_id, user_id=shown.user_id)
        if row is None:
            row = uow.homes.opened(team_id=shown.team_id, user_id=shown.user_id, at=now)
        row.page = shown.page
        row.topics = list(shown.topics)
        row.case_ids = shown.case_ids
        row.view_hash = view_hash
        row.published_at = now
        uow.commit()


def homes_to_refresh(
    services: Services, *, after_event: int | None
) -> tuple[list[tuple[str, str]], int]:
    """(team, user) of each Home a case changed on since a timeline entry (None: start from
    now), each once however many changes; and the entry to read from next time. A Home is
    concerned when it shows the case, leads the case's topic (a new case joins its queue) or
    belongs to someone in the case's swarm (it joins their own cases)."""
    with services.uow.read() as uow:
        if after_event is None:
            return [], uow.homes.last_event_id()
        changed, last = uow.homes.changed_since(after_event)
        if not changed:
            return [], last
        watched = uow.homes.watched_since(services.clock.now() - WATCHED_FOR)
        out = []
        for row in watched:
            for case in changed:
                if case.team_id != row.team_id:
                    continue
                people = {case.filer_id, case.assignee_id, *(p.user_id for p in case.participants)}
                if (
                    case.id in row.case_ids
                    or ALL_TOPICS in row.topics
                    or case.topic_key in row.topics
                    or row.user_id in people
                ):
                    out.append((row.team_id, row.user_id))
                    break
        return out, last


def case_number(services: Services, *, team_id: str, case_id: int) -> str:
    """The number of a case shown on Home (CaseNotFound when it is gone)."""
    with services.uow.read() as uow:
        return find_case(uow, team_id=team_id, case_id=case_id).case_number
