"""The database restarted under load: requests fail cleanly with a message, and the running
app works again once it is back, without a restart of its own (PostgreSQL only: SQLite is a
file inside the process)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from storage.db import create_db_engine
from storage.migrate import upgrade
from tests.conftest import RunningBot
from tests.fakeslack import FakeSlack
from tests.pgcluster import TempPostgres, find_bindir
from tests.scenario import answer, case_of, filed

DOWN = "The database is not answering right now, so nothing was changed."


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[tuple[TempPostgres, str]]:
    """A PostgreSQL server of this module's own, which its tests stop and start."""
    bindir = find_bindir()
    if bindir is None:
        message = "PostgreSQL is not installed (initdb/pg_ctl not found)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    server = TempPostgres(bindir)
    server.start()
    url = server.create_database("swarm_restart")
    engine = create_db_engine(url)
    upgrade(engine)
    engine.dispose()
    yield server, url
    server.stop()


@pytest.fixture
def db_url(own_postgres: tuple[TempPostgres, str]) -> str:
    return own_postgres[1]


def test_requests_fail_cleanly_while_postgresql_is_down_and_work_once_it_is_back(
    bot: RunningBot, fake: FakeSlack, own_postgres: tuple[TempPostgres, str]
) -> None:
    server, _url = own_postgres
    case = filed(bot, fake)
    server.halt()
    try:
        before = len(fake.responses())
        replies = [bot.driver.command("status 27343", wait=False) for _ in range(3)]
        replies.append(bot.driver.click("case-join", str(case.id), user="U0EXP0001", wait=False))
        replies.append(bot.driver.command("claim 27343", user="U0EXP0002", wait=False))
        bot.driver.executor.wait_idle(timeout=30)
        assert [r.status for r in replies] == [200] * 5  # every request acked
        told = [r["body"]["text"] for r in fake.responses()[before:]]
        assert len(told) == 5 and all(t.startswith(DOWN) for t in told), told
    finally:
        server.resume()
    bot.driver.command("status 27343")
    assert "Webhooks time out" in answer(fake)
    bot.driver.click("case-join", str(case.id), user="U0EXP0001")
    assert answer(fake) == "You joined the swarm of case 27343."
    assert any(p.user_id == "U0EXP0001" for p in case_of(bot).participants)
