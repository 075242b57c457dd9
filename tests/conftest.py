"""Fixtures: real SQLite and PostgreSQL, the fake Slack Web API, and the app over HTTP."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bot.context import Swarm
from bot.gateway import CALLS_IN_TRANSACTION
from bot.runtime import build_http, build_swarm
from bot.settings import Settings
from storage.db import create_db_engine
from storage.migrate import upgrade
from storage.models import Base
from tests.fakeslack import FakeSlack
from tests.pgcluster import TempPostgres, find_bindir
from tests.slackdriver import SlackDriver, TrackingExecutor
from workflows.config import SwarmConfig, parse_config

SIGNING_SECRET = "test-signing-secret"
BOT_TOKEN = "xoxb-test-token"
TEAM = "T111"

TEST_CONFIG = """
naming: {prefix: help, severity_word: sev}
case:
  number_pattern: '^\\d{3,10}$'
  url_template: 'https://support.example.com/cases/{case_number}'
topics:
  - key: api
    label: API
    swarm_channel: C0API0001
    leads: [U0LEAD001]
    experts: [U0EXP0001, U0EXP0002]
    regions: [emea, amer, apac]
    region_channels: {apac: C0APIAPAC}
  - key: billing
    label: Billing
    swarm_channel: C0BILL001
    leads: [U0LEAD002]
sla:
  critical: {first_response: 15m, resolution: 4h}
  high: {first_response: 1h, resolution: 1d}
  medium: {first_response: 4h, resolution: 3d}
  low: {first_response: 1d, resolution: 7d}
escalation:
  private: false
  notify: {sev1: [C0LEGAL01]}
  archive_after: 7d
"""

USERS = {
    "U0AGENT01": {"name": "agent"},
    "U0AGENT02": {"name": "agent2"},
    "U0LEAD001": {"name": "lead-api"},
    "U0LEAD002": {"name": "lead-billing"},
    "U0EXP0001": {"name": "expert1"},
    "U0EXP0002": {"name": "expert2"},
    "U0ADMIN01": {"name": "admin", "is_admin": True},
    "U0CUST001": {"name": "customer-success"},
}
CHANNELS = {
    "C0API0001": "swarm-api",
    "C0APIAPAC": "swarm-api-apac",
    "C0BILL001": "swarm-billing",
    "C0GENERAL": "general",
    "C0LEGAL01": "legal",
    "C0OTHER01": "random",
}


def pytest_configure(config: pytest.Config) -> None:
    """A private temp root: concurrent pytest runs on one machine must not prune each other's."""
    if not config.option.basetemp:
        import tempfile

        config.option.basetemp = tempfile.mkdtemp(prefix="swarm-tests-")
        config._swarm_basetemp = config.option.basetemp  # type: ignore[attr-defined]


def pytest_unconfigure(config: pytest.Config) -> None:
    made = getattr(config, "_swarm_basetemp", None)
    if made:
        shutil.rmtree(made, ignore_errors=True)


# -- databases -------------------------------------------------------------------------------
class Databases:
    """Migrated template databases, one per backend, handed out clean to each test."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.sqlite_template = tmp / "template.db"
        template = create_db_engine(f"sqlite:///{self.sqlite_template}")
        upgrade(template)
        template.dispose()  # the last connection closing checkpoints the WAL into the file
        self.pg: TempPostgres | None = None
        self.pg_given: str | None = os.environ.get("SWARM_TEST_POSTGRES_URL")
        self.pg_url: str | None = None
        self.pg_problem: str | None = None
        self._pg_engine = None

    def start_postgres(self) -> None:
        if self.pg_url or self.pg_problem:
            return
        if self.pg_given:
            self.pg_url = worker_database(self.pg_given)
            return
        bindir = find_bindir()
        if bindir is None:
            self.pg_problem = "PostgreSQL is not installed (initdb/pg_ctl not found)"
            return
        self.pg = TempPostgres(bindir)
        self.pg.start()
        self.pg_url = self.pg.create_database("swarm_test")

    def postgres_engine(self):  # type: ignore[no-untyped-def]
        if self._pg_engine is None:
            assert self.pg_url
            self._pg_engine = create_db_engine(self.pg_url)
            upgrade(self._pg_engine)
        return self._pg_engine

    def fresh(self, backend: str, name: str) -> str:
        if backend == "sqlite":
            path = self.tmp / f"{name}.db"
            shutil.copy(self.sqlite_template, path)
            return f"sqlite:///{path}"
        self.start_postgres()
        if not self.pg_url:
            message = f"PostgreSQL tests need a server: {self.pg_problem}"
            if os.environ.get("CI"):
                pytest.fail(message)
            pytest.skip(message)
        engine = self.postgres_engine()
        tables = ", ".join(t.name for t in reversed(Base.metadata.sorted_tables))
        with engine.begin() as connection:
            connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
            connection.execute(text("DROP TABLE IF EXISTS apscheduler_jobs"))  # the job store's
        return self.pg_url

    def admin_url(self) -> str:
        """A URL for creating extra PostgreSQL databases."""
        self.start_postgres()
        if not self.pg_url:
            pytest.skip(f"PostgreSQL tests need a server: {self.pg_problem}")
        return self.pg_url

    def close(self) -> None:
        if self._pg_engine is not None:
            self._pg_engine.dispose()
        if self.pg is not None:
            self.pg.stop()


def worker_database(url: str) -> str:
    """A database of this pytest worker's own on a server the tests were given
    (SWARM_TEST_POSTGRES_URL): workers run at once and each truncates its tables per test."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return url
    name = f"swarm_test_{worker}"
    admin = create_db_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        known = connection.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
        ).scalar()
        if not known:
            connection.exec_driver_sql(f"CREATE DATABASE {name}")
    admin.dispose()
    return make_url(url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Databases]:
    dbs = Databases(tmp_path_factory.mktemp("db"))
    yield dbs
    dbs.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def db_url(databases: Databases, backend: str, request: pytest.FixtureRequest) -> str:
    """A clean, migrated database of the backend under test."""
    return databases.fresh(backend, request.node.name.replace("/", "_")[:60])


# -- Slack -----------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeSlack]:
    fake = FakeSlack(token=BOT_TOKEN, team_id=TEAM).start()
    yield fake
    fake.stop()


@pytest.fixture
def fake(fake_server: FakeSlack) -> FakeSlack:
    """The fake Slack Web API, reset and seeded with the test workspace."""
    fake_server.reset()
    for user_id, attrs in USERS.items():
        fake_server.add_user(user_id, **attrs)
    for channel_id, name in CHANNELS.items():
        fake_server.add_channel(channel_id, name, members=[fake_server.bot_user_id, *USERS])
    return fake_server


# -- the app -------------------------------------------------------------------------------
class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> datetime:
        self.current += timedelta(**delta)
        return self.current


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class RunningBot:
    """The app served over real HTTP on 127.0.0.1, plus what tests need to reach into."""

    def __init__(
        self, swarm: Swarm, driver: SlackDriver, server: ThreadingWSGIServer, url: str
    ) -> None:
        self.swarm = swarm
        self.driver = driver
        self.server = server
        self.url = url

    @property
    def uow(self):  # type: ignore[no-untyped-def]
        return self.swarm.uow

    @property
    def config(self) -> SwarmConfig:
        return self.swarm.config


def serve_app(swarm: Swarm, fake: FakeSlack) -> RunningBot:
    """The whole app behind real HTTP on 127.0.0.1, with a driver that signs like Slack."""
    executor = TrackingExecutor()
    _app, http = build_http(swarm, executor=executor)
    server = make_server(
        "127.0.0.1", 0, http, server_class=ThreadingWSGIServer, handler_class=QuietHandler
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/slack/events"
    driver = SlackDriver(url, SIGNING_SECRET, fake.respond_url, executor, team_id=TEAM)
    return RunningBot(swarm, driver, server, url)


def settings_for(fake: FakeSlack, db_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=fake.url,
        database_url=db_url,
    )
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def config() -> SwarmConfig:
    return parse_config(TEST_CONFIG)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def bot_settings() -> dict[str, Any]:
    """Settings of the bot under test beyond the defaults (a test module may override this)."""
    return {}


@pytest.fixture
def bot(
    fake: FakeSlack,
    db_url: str,
    config: SwarmConfig,
    clock: FakeClock,
    bot_settings: dict[str, Any],
) -> Iterator[RunningBot]:
    """The whole app behind HTTP, talking to the fake Slack through the real WebClient."""
    swarm = build_swarm(settings_for(fake, db_url, **bot_settings), config=config, clock=clock)
    running = serve_app(swarm, fake)
    server, executor = running.server, running.driver.executor
    yield running
    executor.wait_idle()
    server.shutdown()
    server.server_close()
    executor.shutdown(wait=True)
    assert not executor.errors, executor.errors


@pytest.fixture(autouse=True)
def no_slack_call_inside_a_transaction() -> Iterator[None]:
    """SPEC 5 "No transaction waits on Slack", checked in every test: the gateway's client
    reports each Web API call made while its thread held a database transaction; the test
    fails on any."""
    CALLS_IN_TRANSACTION.clear()
    yield
    seen = CALLS_IN_TRANSACTION.clear()
    assert not seen, "Slack called inside a database transaction:\n" + "\n".join(seen)
