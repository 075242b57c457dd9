"""Who leads: one process per database runs the scheduled work.

PostgreSQL: a session advisory lock held on a dedicated connection. SQLite: an OS lock on a
file next to the database. Both vanish with the process that held them.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
from pathlib import Path

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger(__name__)


class Leadership:
    """Exclusive right to run the scheduler for one database."""

    def try_acquire(self) -> bool:
        raise NotImplementedError

    def still_held(self) -> bool:
        raise NotImplementedError

    def release(self) -> None:
        raise NotImplementedError


class AdvisoryLock(Leadership):
    """A PostgreSQL session advisory lock on a dedicated connection: gone when the process is."""

    def __init__(self, engine: Engine, name: str = "swarm-scheduler") -> None:
        self.engine = engine
        self.key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        self.connection: Connection | None = None

    def try_acquire(self) -> bool:
        try:
            connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        except SQLAlchemyError as exc:
            log.warning("scheduler election: database unreachable: %s", exc)
            return False
        try:
            held = connection.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key})
        except SQLAlchemyError:
            connection.close()
            return False
        if held:
            self.connection = connection
            return True
        connection.close()
        return False

    def still_held(self) -> bool:
        # A session lock lasts as long as its connection: alive connection, lock held.
        if self.connection is None:
            return False
        try:
            self.connection.execute(text("SELECT 1"))
        except SQLAlchemyError:
            self._drop()
            return False
        return True

    def release(self) -> None:
        if self.connection is None:
            return
        with contextlib.suppress(SQLAlchemyError):
            self.connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
        self._drop()

    def _drop(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(SQLAlchemyError):
                self.connection.close()
            self.connection = None


class FileLock(Leadership):
    """An OS lock on a file next to the SQLite database: released when the process ends."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def try_acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self.fd = fd
        return True

    def still_held(self) -> bool:
        return self.fd is not None

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


class Always(Leadership):
    """An in-memory database has one process: it leads."""

    def __init__(self) -> None:
        self.held = False

    def try_acquire(self) -> bool:
        self.held = True
        return True

    def still_held(self) -> bool:
        return self.held

    def release(self) -> None:
        self.held = False


class Never(Leadership):
    """For processes that arm timers but leave running them to others."""

    def try_acquire(self) -> bool:
        return False

    def still_held(self) -> bool:
        return False

    def release(self) -> None:
        return None


def leadership_for(engine: Engine) -> Leadership:
    """The election that fits the database."""
    if engine.dialect.name == "postgresql":
        return AdvisoryLock(engine)
    database = engine.url.database
    if engine.dialect.name == "sqlite" and database and database != ":memory:":
        return FileLock(Path(f"{database}.scheduler.lock"))
    return Always()
