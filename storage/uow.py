"""Unit of work: one session and its repositories; owns commit and rollback.

Units of work of one thread are tracked, so the Slack gateway can check that no database
transaction is open while it waits on Slack (`transaction_open()`).
"""

from __future__ import annotations

import threading
from types import TracebackType

from sqlalchemy.orm import Session, sessionmaker

from storage.db import READ_ONLY
from storage.home import HomeRepository
from storage.metrics import MetricsRepository
from storage.repositories import CaseRepository, RoutingRepository, ScheduleRepository
from storage.status_events import StatusEventRepository

_open = threading.local()


def _units() -> list[UnitOfWork]:
    units = getattr(_open, "units", None)
    if units is None:
        units = _open.units = []
    return units


def transaction_open() -> bool:
    """Whether a unit of work of this thread has a database transaction open right now."""
    return any(unit.session.in_transaction() for unit in _units())


class ReadOnlyUnitOfWork(RuntimeError):
    """A read-only unit of work was asked to write."""


class UnitOfWork:
    """`with uow_factory() as uow: ...; uow.commit()` — rolled back unless committed."""

    session: Session
    cases: CaseRepository
    routing: RoutingRepository
    schedule: ScheduleRepository
    status_events: StatusEventRepository
    metrics: MetricsRepository
    homes: HomeRepository

    def __init__(self, sessions: sessionmaker[Session], *, read_only: bool = False) -> None:
        self._sessions = sessions
        self.read_only = read_only

    def __enter__(self) -> UnitOfWork:
        self.session = self._sessions()
        if self.read_only:
            # On SQLite a read-only transaction begins DEFERRED: it takes no write lock.
            self.session.connection(execution_options={READ_ONLY: True})
        self.cases = CaseRepository(self.session)
        self.routing = RoutingRepository(self.session)
        self.schedule = ScheduleRepository(self.session)
        self.status_events = StatusEventRepository(self.session)
        self.metrics = MetricsRepository(self.session)
        self.homes = HomeRepository(self.session)
        _units().append(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        units = _units()
        if self in units:
            units.remove(self)
        # close() rolls back anything uncommitted and detaches (without expiring) what was read.
        self.session.close()

    def commit(self) -> None:
        """Make the work durable."""
        if self.read_only:
            raise ReadOnlyUnitOfWork("a read-only unit of work cannot commit")
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

    def read(self) -> UnitOfWork:
        """A unit of work that only reads: on SQLite it takes no write lock, and cannot commit."""
        return UnitOfWork(self.sessions, read_only=True)
