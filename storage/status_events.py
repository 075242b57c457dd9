"""The status webhook's outbox: keyword-only reads and claims on one session; never commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, exists, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from storage.models import Case, StatusEvent


class StatusEventRepository:
    """Status changes owed to the ticketing system, in order per case."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def due(self, *, now: datetime, limit: int) -> Sequence[StatusEvent]:
        """The oldest undelivered event of each case, if its next attempt is due, oldest first.

        A later event of a case waits for the earlier one: the receiver hears them in order.
        """
        earlier = aliased(StatusEvent)
        blocked = exists().where(
            earlier.case_id == StatusEvent.case_id,
            earlier.delivered_at.is_(None),
            earlier.id < StatusEvent.id,
        )
        return self.session.scalars(
            select(StatusEvent)
            .where(
                StatusEvent.delivered_at.is_(None),
                ~blocked,
                or_(StatusEvent.next_attempt_at.is_(None), StatusEvent.next_attempt_at <= now),
            )
            .order_by(func.coalesce(StatusEvent.next_attempt_at, StatusEvent.created_at))
            .order_by(StatusEvent.id)
            .limit(limit)
        ).all()

    def claim(self, *, event_id: int, now: datetime, until: datetime) -> bool:
        """Hold an event while it is being sent (False: another run has it, or it is sent)."""
        result = self.session.execute(
            update(StatusEvent)
            .where(
                StatusEvent.id == event_id,
                StatusEvent.delivered_at.is_(None),
                or_(StatusEvent.next_attempt_at.is_(None), StatusEvent.next_attempt_at <= now),
            )
            .values(next_attempt_at=until)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1  # type: ignore[attr-defined]

    def get(self, event_id: int) -> StatusEvent | None:
        return self.session.get(StatusEvent, event_id)

    def undelivered(self, *, limit: int | None = None) -> tuple[list[tuple[StatusEvent, str]], int]:
        """Undelivered events and their case numbers, oldest first (the first `limit`); a count."""
        total = self.session.scalar(
            select(func.count(StatusEvent.id)).where(StatusEvent.delivered_at.is_(None))
        )
        query = (
            select(StatusEvent, Case.case_number)
            .join(Case, Case.id == StatusEvent.case_id)
            .where(StatusEvent.delivered_at.is_(None))
            .order_by(StatusEvent.id)
        )
        if limit is not None:
            query = query.limit(limit)
        rows = [(event, number) for event, number in self.session.execute(query).all()]
        return rows, int(total or 0)

    def prune(self, *, delivered_before: datetime, undelivered_too: bool = False) -> int:
        """Forget events delivered before a moment (and every undelivered one, if asked)."""
        condition = StatusEvent.delivered_at < delivered_before
        if undelivered_too:
            condition = or_(condition, StatusEvent.delivered_at.is_(None))
        result = self.session.execute(delete(StatusEvent).where(condition))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
