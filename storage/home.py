"""What App Home reads and remembers: the open queue a page at a time, a person's own
cases, the Home views last published, and which cases changed since a point of the timeline."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, not_, or_, select
from sqlalchemy.orm import Session, selectinload

from storage.models import NOT_RESOLVED, Case, CaseEvent, HomeView, Participant


class HomeRepository:
    """Queues, own cases and published Home views; never commits."""

    def __init__(self, session: Session) -> None:
        self.session = session

    @staticmethod
    def _visible(hidden: Collection[str]) -> list[ColumnElement[bool]]:
        if not hidden:
            return []
        channels = list(hidden)
        return [
            not_(Case.channel_id.in_(channels)),
            or_(Case.incident_channel_id.is_(None), not_(Case.incident_channel_id.in_(channels))),
        ]

    def queue(
        self,
        *,
        team_id: str,
        topics: Sequence[str] | None,
        hidden: Collection[str],
        offset: int,
        limit: int,
    ) -> tuple[list[Case], int]:
        """A page of the open queue (escalated included) of some topics, oldest first, and
        how many cases the whole queue has; cases in `hidden` channels left out."""
        where: list[ColumnElement[bool]] = [
            Case.team_id == team_id,
            NOT_RESOLVED,
            *self._visible(hidden),
        ]
        if topics is not None:
            where.append(Case.topic_key.in_(list(topics)))
        total = self.session.scalar(select(func.count(Case.id)).where(*where)) or 0
        page = self.session.scalars(
            select(Case)
            .where(*where)
            .order_by(Case.created_at, Case.id)
            .offset(offset)
            .limit(limit)
        ).all()
        return list(page), int(total)

    def own_cases(
        self, *, team_id: str, user_id: str, hidden: Collection[str], limit: int
    ) -> tuple[list[Case], int]:
        """Open cases someone filed, holds or is in the swarm of, oldest first, and how many."""
        theirs = or_(
            Case.assignee_id == user_id,
            Case.filer_id == user_id,
            select(Participant.id)
            .where(Participant.case_id == Case.id, Participant.user_id == user_id)
            .exists(),
        )
        where = [Case.team_id == team_id, NOT_RESOLVED, theirs, *self._visible(hidden)]
        total = self.session.scalar(select(func.count(Case.id)).where(*where)) or 0
        cases = self.session.scalars(
            select(Case).where(*where).order_by(Case.created_at, Case.id).limit(limit)
        ).all()
        return list(cases), int(total)

    # -- published views ---------------------------------------------------------------------
    def view(self, *, team_id: str, user_id: str) -> HomeView | None:
        return self.session.get(HomeView, (team_id, user_id))

    def opened(self, *, team_id: str, user_id: str, at: datetime) -> HomeView:
        """The user opened their Home: their row, created on first sight."""
        row = self.view(team_id=team_id, user_id=user_id)
        if row is None:
            row = HomeView(team_id=team_id, user_id=user_id, page=0, topics=[], case_ids=[])
            self.session.add(row)
        row.opened_at = at
        return row

    def watched_since(self, since: datetime) -> list[HomeView]:
        """Home views opened since a moment (those worth keeping current)."""
        return list(self.session.scalars(select(HomeView).where(HomeView.opened_at >= since)))

    # -- what changed ------------------------------------------------------------------------
    def last_event_id(self) -> int:
        return int(self.session.scalar(select(func.max(CaseEvent.id))) or 0)

    def changed_since(self, event_id: int, *, limit: int = 5000) -> tuple[list[Any], int]:
        """Cases with timeline entries after `event_id` (team, id, topic, filer, assignee and
        swarm), and the id of the last entry read."""
        rows = self.session.execute(
            select(CaseEvent.id, CaseEvent.case_id)
            .where(CaseEvent.id > event_id)
            .order_by(CaseEvent.id)
            .limit(limit)
        ).all()
        if not rows:
            return [], event_id
        ids = sorted({case_id for _, case_id in rows})
        cases = self.session.scalars(
            select(Case).where(Case.id.in_(ids)).options(selectinload(Case.participants))
        ).all()
        return list(cases), int(rows[-1][0])
