"""Engines and sessions for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

# Backends and the drivers installed for them (the first is used when none is named).
DRIVERS = {"sqlite": ("pysqlite",), "postgresql": ("psycopg",)}


class DatabaseUnusable(Exception):
    """DATABASE_URL cannot be used; the message says why in one line (no password in it)."""


def check_url(url: str) -> None:
    """DatabaseUnusable unless `url` names a supported backend with an installed driver."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise DatabaseUnusable(
            "not a database URL; use sqlite:///swarm.db or postgresql://user:password@host/db"
        ) from None
    backend = "postgresql" if parsed.drivername == "postgres" else parsed.get_backend_name()
    if backend not in DRIVERS:
        raise DatabaseUnusable(
            f"{backend!r} databases are not supported; use sqlite:///... or postgresql://..."
        )
    driver = parsed.drivername.partition("+")[2]
    if driver and driver not in DRIVERS[backend]:
        raise DatabaseUnusable(
            f"the {driver!r} driver is not installed; use {backend}:// "
            f"({DRIVERS[backend][0]} is used)"
        )


def require_existing(url: str) -> None:
    """DatabaseUnusable when `url` is an SQLite file that does not exist (nothing is created)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return
    if not Path(database).is_file():
        raise DatabaseUnusable(
            f"no database at {database} (a mistyped path? `swarmbot migrate` creates one)"
        )


# Execution option of a connection whose transaction only reads (see UnitOfWorkFactory.read).
READ_ONLY = "swarm_read_only"


def normalise_url(url: str) -> str:
    """Use the psycopg 3 driver for plain postgresql:// URLs."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def create_db_engine(url: str, **kwargs: Any) -> Engine:
    """An engine tuned for the dialect: WAL and foreign keys on SQLite, pre-ping on PostgreSQL."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            if ":memory:" not in url:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()
            # Transactions are begun by the "begin" hook below, not by the driver.
            dbapi_connection.isolation_level = None

        @event.listens_for(engine, "begin")
        def _sqlite_begin(connection: Any) -> None:
            # Writers take the write lock up front: a deferred transaction that reads and then
            # writes fails at once under WAL when another writer got there first. Readers take
            # no lock at all (WAL gives them a snapshot), so they never wait on a writer.
            if connection.get_execution_options().get(READ_ONLY):
                connection.exec_driver_sql("BEGIN")
            else:
                connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    return create_engine(url, **kwargs)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit."""
    return sessionmaker(bind=engine, expire_on_commit=False)
