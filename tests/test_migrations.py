"""Alembic migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from storage.db import create_db_engine
from storage.migrate import FOREIGN_TABLES, current_revision, head_revision, upgrade
from storage.models import Base
from storage.search import managed_by_search
from tests.conftest import Databases
from tests.scenario import fresh_url

ROOT = Path(__file__).resolve().parent.parent


def _name(diff: tuple) -> str | None:
    """The table, column or index a schema difference is about."""
    if diff[0] in ("remove_column", "add_column"):
        return diff[3].name
    return getattr(diff[1], "name", None)


def test_head_matches_the_models(databases: Databases, backend: str, tmp_path: Path) -> None:
    engine = create_db_engine(fresh_url(databases, backend, tmp_path))
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = [
            d
            for d in compare_metadata(context, Base.metadata)
            if not (d[0] == "remove_table" and d[1].name in FOREIGN_TABLES)
            and not managed_by_search(_name(d))
        ]
    assert diff == []
    tables = set(inspect(engine).get_table_names())
    assert {"cases", "participants", "case_events", "messages", "topic_routes"} <= tables
    engine.dispose()


def test_swarmbot_migrate_is_idempotent(databases: Databases, backend: str, tmp_path: Path) -> None:
    url = fresh_url(databases, backend, tmp_path)
    env = {**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
    for _ in range(2):
        result = subprocess.run(
            [sys.executable, "-m", "bot.cli", "migrate"],
            env=env,
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        assert f"database is at revision {head_revision()}" in result.stdout


def test_migrate_on_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
    }
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("swarmbot: DATABASE_URL: cannot migrate")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("backend", ["sqlite"])
def test_datetimes_come_back_aware_in_utc(db_url: str) -> None:
    from datetime import UTC, datetime

    from storage.db import session_factory
    from storage.models import Workspace

    sessions = session_factory(create_db_engine(db_url))
    with sessions() as session:
        session.add(Workspace(team_id="T1", created_at=datetime(2026, 1, 2, 3, 4, tzinfo=UTC)))
        session.commit()
    with sessions() as session:
        stored = session.get(Workspace, "T1")
        assert stored is not None and stored.created_at.tzinfo is not None
        assert stored.created_at == datetime(2026, 1, 2, 3, 4, tzinfo=UTC)


def test_durations_and_reply_days_of_earlier_cases_are_filled_in_exactly(
    databases: Databases, backend: str, tmp_path: Path
) -> None:
    engine = create_db_engine(fresh_url(databases, backend, tmp_path))
    upgrade(engine, "8c4f0d2e6b71")  # before durations were kept with the case
    filed = "2026-11-02 08:00:00.250000"
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO workspaces (team_id, created_at) VALUES ('T1', :at)"), {"at": filed}
        )
        connection.execute(
            text(
                "INSERT INTO cases (team_id, case_number, summary, details, customer, urgency, "
                "topic_key, region, status, filer_id, confidential, channel_id, card_attempts, "
                "created_at, updated_at, first_response_at, resolved_at) VALUES ('T1', '1', 's', "
                "'', '', 'high', 'api', '', 'resolved', 'U1', false, 'C1', 0, :filed, :filed, "
                ":answered, :resolved)"
            ),
            {
                "filed": filed,
                "answered": "2026-11-02 08:10:30.000001",
                "resolved": "2026-11-05 09:00:00.250000",
            },
        )
        for ts, user, bot, deleted in (
            ("1.1", "U2", False, None),
            ("1.2", "U2", False, "2026-11-03 10:00:00"),  # deleted: not a reply any more
            ("1.3", None, True, None),  # the bot's
        ):
            connection.execute(
                text(
                    "INSERT INTO messages (team_id, case_id, channel_id, ts, user_id, is_bot, "
                    "text, files, posted_at, deleted_at) VALUES ('T1', 1, 'C1', :ts, :user, "
                    ":bot, 'x', '[]', '2026-11-02 23:59:59.999999', :deleted)"
                ),
                {"ts": ts, "user": user, "bot": bot, "deleted": deleted},
            )
    upgrade(engine)
    with engine.connect() as connection:
        row = connection.execute(
            text("SELECT first_response_micros, resolution_micros FROM cases")
        ).one()
        days = connection.execute(text("SELECT day, topic_key, user_id, replies FROM reply_days"))
        assert [tuple(d) for d in days] == [("2026-11-02", "api", "U2", 1)]
    assert tuple(row) == (629_750_001, (3 * 86400 + 3600) * 1_000_000)
    engine.dispose()
