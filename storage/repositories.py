"""Repositories: keyword-only reads and writes on one session; they never commit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, literal, or_, select, update
from sqlalchemy import case as when
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.domain import CaseStatus, ParticipantRole, Role
from storage.models import (
    Case,
    CaseEvent,
    Message,
    Participant,
    PendingPost,
    ScheduledRun,
    TopicRole,
    TopicRoute,
    Workspace,
)


class CaseRepository:
    """Cases, their participants and timeline."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def ensure_workspace(self, *, team_id: str) -> Workspace:
        """The workspace row, created on first sight."""
        workspace = self.session.get(Workspace, team_id)
        if workspace is None:
            try:
                with self.session.begin_nested():
                    workspace = Workspace(team_id=team_id)
                    self.session.add(workspace)
            except IntegrityError:
                workspace = self.session.get(Workspace, team_id)
        assert workspace is not None
        return workspace

    def add(self, case: Case) -> Case:
        """Stage a new case; a duplicate number or intake view fails at flush."""
        self.session.add(case)
        return case

    def get(self, case_id: int, *, for_update: bool = False) -> Case | None:
        """A case by id."""
        return self.session.get(Case, case_id, with_for_update=for_update or None)

    def by_number(self, *, team_id: str, case_number: str) -> Case | None:
        """A case by its number in a workspace."""
        return self.session.scalar(
            select(Case).where(Case.team_id == team_id, Case.case_number == case_number)
        )

    def by_intake_view(self, *, view_id: str) -> Case | None:
        """The case a modal submission created, if any."""
        return self.session.scalar(select(Case).where(Case.intake_view_id == view_id))

    def by_thread(self, *, channel_id: str, thread_ts: str) -> Case | None:
        """The case whose card starts this thread."""
        return self.session.scalar(
            select(Case).where(Case.channel_id == channel_id, Case.thread_ts == thread_ts)
        )

    def by_incident_channel(self, *, channel_id: str) -> Case | None:
        """The case an incident channel belongs to."""
        return self.session.scalar(select(Case).where(Case.incident_channel_id == channel_id))

    def _open_in(self, *, team_id: str, channel_id: str | None) -> list[Any]:
        where = [Case.team_id == team_id, Case.status != CaseStatus.RESOLVED]
        if channel_id is not None:
            where.append(or_(Case.channel_id == channel_id, Case.incident_channel_id == channel_id))
        return where

    def open_places(
        self, *, team_id: str, channel_id: str | None = None
    ) -> list[tuple[str, str | None, int]]:
        """(swarm channel, incident channel, open cases) of the cases not resolved: who may
        see a case depends only on these two, so access is checked once per pair."""
        rows = self.session.execute(
            select(Case.channel_id, Case.incident_channel_id, func.count(Case.id))
            .where(*self._open_in(team_id=team_id, channel_id=channel_id))
            .group_by(Case.channel_id, Case.incident_channel_id)
        )
        return [(c, i, int(n)) for c, i, n in rows]

    def open_queue(
        self,
        *,
        team_id: str,
        channel_id: str | None = None,
        hidden: Sequence[tuple[str, str | None]] = (),
        limit: int | None = None,
    ) -> Sequence[Case]:
        """Cases not resolved, oldest first; optionally only those routed to one channel,
        leaving out those living in a (swarm channel, incident channel) pair of `hidden`."""
        where = self._open_in(team_id=team_id, channel_id=channel_id)
        for swarm, incident in hidden:
            # (NULL-safe: a case with no incident channel is never NULL-ed out of the queue)
            lives_there = and_(
                Case.channel_id == swarm, Case.incident_channel_id.is_not_distinct_from(incident)
            )
            where.append(~lives_there)
        query = select(Case).where(*where).order_by(Case.created_at, Case.id).limit(limit)
        return self.session.scalars(query).all()

    def cards_to_post(self, *, stale_before: datetime) -> Sequence[int]:
        """Ids of cases whose card is not posted and not being posted by someone else now."""
        return self.session.scalars(
            select(Case.id)
            .where(
                Case.thread_ts.is_(None),
                or_(Case.card_claimed_at.is_(None), Case.card_claimed_at < stale_before),
            )
            .order_by(Case.id)
        ).all()

    def cards_to_follow_up(self) -> Sequence[int]:
        """Ids of cases whose card is posted but lacks its permalink or its note to the filer."""
        return self.session.scalars(
            select(Case.id)
            .where(
                Case.thread_ts.is_not(None),
                or_(Case.filer_notified_at.is_(None), Case.permalink.is_(None)),
            )
            .order_by(Case.id)
        ).all()

    def claim_card(self, *, case_id: int, now: datetime, stale_before: datetime) -> bool:
        """Take the lease on posting a case's card; False when another worker holds it."""
        result = self.session.execute(
            update(Case)
            .where(
                Case.id == case_id,
                Case.thread_ts.is_(None),
                or_(Case.card_claimed_at.is_(None), Case.card_claimed_at < stale_before),
            )
            .values(card_claimed_at=now, card_attempts=Case.card_attempts + 1)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)

    def mark_resolved(self, *, case_id: int, at: datetime, by: str, **resolution: Any) -> bool:
        """Resolve a case (with its `resolution` fields) if it is still open; False when
        someone resolved it first."""
        result = self.session.execute(
            update(Case)
            .where(Case.id == case_id, Case.status != CaseStatus.RESOLVED)
            .values(status=CaseStatus.RESOLVED, resolved_at=at, resolved_by=by, **resolution)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)

    def mark_reopened(self, *, case_id: int, status: CaseStatus) -> bool:
        """Reopen a case if it is still resolved; False when someone reopened it first."""
        result = self.session.execute(
            update(Case)
            .where(Case.id == case_id, Case.status == CaseStatus.RESOLVED)
            .values(status=status, resolved_at=None, resolved_by=None)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)

    def claim_escalation(self, *, case_id: int, now: datetime, stale_before: datetime) -> bool:
        """Take the lease on escalating a case; False when another request holds it."""
        result = self.session.execute(
            update(Case)
            .where(
                Case.id == case_id,
                or_(
                    Case.escalation_claimed_at.is_(None),
                    Case.escalation_claimed_at < stale_before,
                ),
            )
            .values(escalation_claimed_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)

    def interrupted_escalations(self, *, kind: str) -> Sequence[int]:
        """Ids of cases not yet escalated whose escalation was interrupted (an event of
        `kind`) or is held by a lease (possibly of a process that died)."""
        return self.session.scalars(
            select(Case.id)
            .where(
                Case.status.in_([CaseStatus.OPEN, CaseStatus.SWARMING]),
                or_(
                    Case.escalation_claimed_at.is_not(None),
                    select(CaseEvent.id)
                    .where(CaseEvent.case_id == Case.id, CaseEvent.kind == kind)
                    .exists(),
                ),
            )
            .order_by(Case.id)
        ).all()

    def owe_post(
        self,
        *,
        case: Case | None,
        channel_id: str,
        text: str,
        at: datetime,
        thread_ts: str | None = None,
        kind: str = "post",
        via_channel_id: str | None = None,
    ) -> PendingPost:
        """Stage a message the swarm owes Slack (sent after the commit)."""
        post = PendingPost(
            case_id=case.id if case is not None else None,
            kind=kind,
            channel_id=channel_id,
            via_channel_id=via_channel_id,
            thread_ts=thread_ts,
            text=text,
            created_at=at,
        )
        self.session.add(post)
        return post

    def unsent_posts(
        self, *, ids: Sequence[int] | None = None, due_by: datetime | None = None
    ) -> Sequence[PendingPost]:
        """Messages still owed (of `ids`, or all; only those due by `due_by`), oldest first."""
        query = select(PendingPost).where(
            PendingPost.sent_at.is_(None), PendingPost.given_up_at.is_(None)
        )
        if ids is not None:
            query = query.where(PendingPost.id.in_(list(ids)))
        if due_by is not None:
            query = query.where(
                or_(PendingPost.next_attempt_at.is_(None), PendingPost.next_attempt_at <= due_by)
            )
        return self.session.scalars(query.order_by(PendingPost.id)).all()

    def earlier_post_owed(self, *, post: PendingPost) -> bool:
        """Whether an earlier post of the same case to the same place is still owed."""
        if post.case_id is None:
            return False
        return (
            self.session.scalar(
                select(PendingPost.id)
                .where(
                    PendingPost.case_id == post.case_id,
                    PendingPost.channel_id == post.channel_id,
                    PendingPost.id < post.id,
                    PendingPost.kind != "card",
                    PendingPost.sent_at.is_(None),
                    PendingPost.given_up_at.is_(None),
                )
                .limit(1)
            )
            is not None
        )

    def posts_after(self, *, post_id: int) -> Sequence[int]:
        """Ids of the posts still owed after this one to the same case and place, in order."""
        post = self.session.get(PendingPost, post_id)
        if post is None or post.case_id is None:
            return []
        return self.session.scalars(
            select(PendingPost.id)
            .where(
                PendingPost.case_id == post.case_id,
                PendingPost.channel_id == post.channel_id,
                PendingPost.id > post.id,
                PendingPost.sent_at.is_(None),
                PendingPost.given_up_at.is_(None),
                PendingPost.next_attempt_at.is_(None),
            )
            .order_by(PendingPost.id)
        ).all()

    def card_update_owed(self, *, case_id: int) -> bool:
        """Whether a re-render of this case's card is already owed."""
        return (
            self.session.scalar(
                select(PendingPost.id)
                .where(
                    PendingPost.case_id == case_id,
                    PendingPost.kind == "card",
                    PendingPost.sent_at.is_(None),
                    PendingPost.given_up_at.is_(None),
                )
                .limit(1)
            )
            is not None
        )

    def count_sent_posts(self, *, ids: Sequence[int]) -> int:
        """How many of these owed posts have been sent."""
        return int(
            self.session.scalar(
                select(func.count(PendingPost.id)).where(
                    PendingPost.id.in_(list(ids)), PendingPost.sent_at.is_not(None)
                )
            )
            or 0
        )

    def claim_post(self, *, post_id: int, now: datetime, until: datetime) -> PendingPost | None:
        """Take an owed post to send it (nobody else will until `until`); None when it is sent,
        given up, backing off, or being sent by someone else."""
        result = self.session.execute(
            update(PendingPost)
            .where(
                PendingPost.id == post_id,
                PendingPost.sent_at.is_(None),
                PendingPost.given_up_at.is_(None),
                or_(PendingPost.next_attempt_at.is_(None), PendingPost.next_attempt_at <= now),
            )
            .values(next_attempt_at=until)
            .execution_options(synchronize_session=False)
        )
        if not result.rowcount:
            return None
        return self.session.get(PendingPost, post_id, populate_existing=True)

    def incidents_to_archive(self, *, resolved_before: datetime) -> Sequence[int]:
        """Ids of resolved cases whose incident channel is due for archiving."""
        return self.session.scalars(
            select(Case.id)
            .where(
                Case.status == CaseStatus.RESOLVED,
                Case.incident_channel_id.is_not(None),
                Case.incident_archived_at.is_(None),
                Case.resolved_at <= resolved_before,
            )
            .order_by(Case.id)
        ).all()

    def events_of(self, *, case_id: int, kinds: Sequence[str]) -> Sequence[CaseEvent]:
        """Timeline entries of some kinds, oldest first."""
        return self.session.scalars(
            select(CaseEvent)
            .where(CaseEvent.case_id == case_id, CaseEvent.kind.in_(list(kinds)))
            .order_by(CaseEvent.id)
        ).all()

    def add_event(
        self,
        *,
        case: Case,
        kind: str,
        at: datetime,
        actor_id: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> CaseEvent:
        """Append to the case timeline."""
        event = CaseEvent(case=case, kind=kind, at=at, actor_id=actor_id, data=data or {})
        self.session.add(event)
        return event

    def add_participant(
        self, *, case: Case, user_id: str, role: ParticipantRole, at: datetime
    ) -> Participant | None:
        """Add someone to the swarm; None when they already are in it."""
        if any(p.user_id == user_id for p in case.participants):
            return None
        try:
            with self.session.begin_nested():
                participant = Participant(case=case, user_id=user_id, role=role, joined_at=at)
                self.session.add(participant)
        except IntegrityError:
            self.session.refresh(case)
            return None
        return participant


class RoutingRepository:
    """Run-time routes and roles that win over swarm.yaml."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def route(self, *, team_id: str, topic_key: str, region: str = "") -> TopicRoute | None:
        """The stored route of a topic (and region), if one was set."""
        return self.session.scalar(
            select(TopicRoute).where(
                TopicRoute.team_id == team_id,
                TopicRoute.topic_key == topic_key,
                TopicRoute.region == region,
            )
        )

    def routes(self, *, team_id: str) -> Sequence[TopicRoute]:
        """Every stored route of a workspace."""
        return self.session.scalars(
            select(TopicRoute).where(TopicRoute.team_id == team_id).order_by(TopicRoute.id)
        ).all()

    def set_route(
        self,
        *,
        team_id: str,
        topic_key: str,
        region: str,
        channel_id: str,
        set_by: str,
        at: datetime,
    ) -> TopicRoute:
        """Create or replace a route."""
        route = self.route(team_id=team_id, topic_key=topic_key, region=region)
        if route is None:
            route = TopicRoute(team_id=team_id, topic_key=topic_key, region=region)
            self.session.add(route)
        route.channel_id = channel_id
        route.set_by = set_by
        route.set_at = at
        return route

    def users_with_role(self, *, team_id: str, role: Role, topic_key: str) -> Sequence[str]:
        """Users given a role for this topic or for every topic."""
        return self.session.scalars(
            select(TopicRole.user_id)
            .where(
                TopicRole.team_id == team_id,
                TopicRole.role == role,
                TopicRole.topic_key.in_([topic_key, ""]),
            )
            .order_by(TopicRole.id)
        ).all()

    def add_role(
        self, *, team_id: str, topic_key: str, user_id: str, role: Role, added_by: str, at: datetime
    ) -> bool:
        """Give a user a role; False when they already had it."""
        exists = self.session.scalar(
            select(TopicRole.id).where(
                TopicRole.team_id == team_id,
                TopicRole.topic_key == topic_key,
                TopicRole.user_id == user_id,
                TopicRole.role == role,
            )
        )
        if exists is not None:
            return False
        self.session.add(
            TopicRole(
                team_id=team_id,
                topic_key=topic_key,
                user_id=user_id,
                role=role,
                added_by=added_by,
                added_at=at,
            )
        )
        return True


class ScheduleRepository:
    """What scheduled work reads and claims: open cases' timers, quiet threads, digests."""

    # Case columns the SLA timers are computed from.
    TIMER_COLUMNS = (
        Case.id,
        Case.urgency,
        Case.status,
        Case.first_response_due,
        Case.resolution_due,
        Case.first_response_at,
        Case.first_response_reminded_at,
        Case.resolution_reminded_at,
        Case.first_response_breached_at,
        Case.resolution_breached_at,
    )

    def __init__(self, session: Session) -> None:
        self.session = session

    def open_case_timers(self, *, after_id: int = 0, limit: int | None = None) -> Sequence[Any]:
        """Rows (with TIMER_COLUMNS) of the cases not resolved, by id: those after `after_id`,
        at most `limit` of them (a page of a walk over every open case)."""
        return self.session.execute(
            select(*self.TIMER_COLUMNS)
            .where(Case.status != CaseStatus.RESOLVED, Case.id > after_id)
            .order_by(Case.id)
            .limit(limit)
        ).all()

    def open_case_timer_kinds(
        self, *, kind_bits: dict[str, int], after_id: int = 0, limit: int | None = None
    ) -> list[tuple[int, int]]:
        """(case id, bits of the timer kinds it needs) of the cases not resolved, by id, as
        `open_case_timers` pages them: the same rule as `workflows.sla.timers_of`, worked out
        by the database (a test holds the two to each other), so that a reconciliation with
        nothing missing reads two integers a case instead of eight columns of timestamps."""
        first = and_(
            Case.first_response_due.is_not(None),
            Case.first_response_at.is_(None),
            Case.first_response_breached_at.is_(None),
        )
        resolution = and_(Case.resolution_due.is_not(None), Case.resolution_breached_at.is_(None))
        needs = {
            "first-response-reminder": and_(first, Case.first_response_reminded_at.is_(None)),
            "first-response": first,
            "resolution-reminder": and_(resolution, Case.resolution_reminded_at.is_(None)),
            "resolution": resolution,
        }
        mask = sum(
            (when((condition, kind_bits[kind]), else_=0) for kind, condition in needs.items()),
            start=literal(0),
        )
        rows = self.session.execute(
            select(Case.id, mask)
            .where(Case.status != CaseStatus.RESOLVED, Case.id > after_id)
            .order_by(Case.id)
            .limit(limit)
        )
        return [(int(i), int(m)) for i, m in rows]

    def case_timers(self, *, after_id: int, through_id: int) -> Sequence[Any]:
        """Rows (with TIMER_COLUMNS) of the cases not resolved with ids in (after, through]:
        one range read, as cheap for a page as a list of its ids and cheaper to send."""
        return self.session.execute(
            select(*self.TIMER_COLUMNS).where(
                Case.status != CaseStatus.RESOLVED, Case.id > after_id, Case.id <= through_id
            )
        ).all()

    def claim_mark(
        self,
        *,
        case_id: int,
        column: str,
        now: datetime | None,
        expected: datetime | None = None,
    ) -> bool:
        """Set a once-only mark on a case if it still holds `expected`; False if another did."""
        mark = getattr(Case, column)
        condition = mark.is_(None) if expected is None else mark == expected
        result = self.session.execute(
            update(Case)
            .where(Case.id == case_id, condition)
            .values({column: now})
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)

    def quiet_threads(self, *, ignore_events: Sequence[str]) -> list[tuple[int, datetime, Any]]:
        """(case id, last human activity, last nudge) of open cases that have a thread."""
        cases = self.session.execute(
            select(Case.id, Case.created_at, Case.stale_nudged_at).where(
                Case.status != CaseStatus.RESOLVED, Case.thread_ts.is_not(None)
            )
        ).all()
        said = dict(
            self.session.execute(
                select(Message.case_id, func.max(Message.posted_at))
                .join(Case, Case.id == Message.case_id)
                .where(
                    Case.status != CaseStatus.RESOLVED,
                    Message.is_bot.is_(False),
                    Message.deleted_at.is_(None),
                )
                .group_by(Message.case_id)
            ).all()
        )
        done = dict(
            self.session.execute(
                select(CaseEvent.case_id, func.max(CaseEvent.at))
                .join(Case, Case.id == CaseEvent.case_id)
                .where(Case.status != CaseStatus.RESOLVED, CaseEvent.kind.not_in(ignore_events))
                .group_by(CaseEvent.case_id)
            ).all()
        )
        out = []
        for case_id, created_at, nudged_at in cases:
            seen = [t for t in (created_at, said.get(case_id), done.get(case_id)) if t is not None]
            out.append((case_id, max(seen), nudged_at))
        return out

    def claim_run(self, *, key: str, at: datetime) -> bool:
        """Record that a once-only run happens now; False when it already did."""
        try:
            with self.session.begin_nested():
                self.session.add(ScheduledRun(key=key, ran_at=at))
        except IntegrityError:
            return False
        return True

    def forget_run(self, *, key: str) -> None:
        """Let a run that failed be tried again."""
        run = self.session.get(ScheduledRun, key)
        if run is not None:
            self.session.delete(run)

    def digest_figures(
        self, *, team_id: str, channel_id: str, since: datetime, until: datetime
    ) -> tuple[list[Case], int]:
        """Open cases of a swarm channel (oldest first) and how many it resolved in a period."""
        open_cases = list(
            self.session.scalars(
                select(Case)
                .where(
                    Case.team_id == team_id,
                    Case.channel_id == channel_id,
                    Case.status != CaseStatus.RESOLVED,
                )
                .order_by(Case.created_at, Case.id)
            )
        )
        resolved = self.session.scalar(
            select(func.count(Case.id)).where(
                and_(
                    Case.team_id == team_id,
                    Case.channel_id == channel_id,
                    Case.resolved_at >= since,
                    Case.resolved_at < until,
                )
            )
        )
        return open_cases, int(resolved or 0)

    def team_ids(self) -> Sequence[str]:
        """Every workspace the bot has served."""
        return self.session.scalars(select(Workspace.team_id).order_by(Workspace.team_id)).all()
