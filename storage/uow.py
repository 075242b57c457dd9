"""Unit of work: one session and its repositories; owns commit and rollback."""

from __future__ import annotations

from types import TracebackType

from sqlalchemy.orm import Session, sessionmaker

from storage.metrics import MetricsRepository
from storage.repositories import CaseRepository, RoutingRepository, ScheduleRepository


class UnitOfWork:
    """`with uow_factory() as uow: ...; uow.commit()` — rolled back unless committed."""

    session: Session
    cases: CaseRepository
    routing: RoutingRepository
    schedule: ScheduleRepository
    metrics: MetricsRepository

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def __enter__(self) -> UnitOfWork:
        self.session = self._sessions()
        self.cases = CaseRepository(self.session)
        self.routing = RoutingRepository(self.session)
        self.schedule = ScheduleRepository(self.session)
        self.metrics = MetricsRepository(self.session)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # close() rolls back anything uncommitted and detaches (without expiring) what was read.
        self.session.close()

    def commit(self) -> None:
        """Make the work durable."""
        self.session.commit()

    def flush(self) -> None:
        """Send pending changes (constraint violations surface here)."""
        self.session.flush()


class UnitOfWorkFactory:
    """Makes units of work on one sessionmaker."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def __call__(self) -> UnitOfWork:
        return UnitOfWork(self.sessions)
