"""`swarmbot run` as operators start it: a real process, migrated database, gunicorn workers."""

from __future__ import annotations

import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from storage.db import create_db_engine
from storage.models import Case
from tests.conftest import SIGNING_SECRET, TEAM
from tests.fakeslack import FakeSlack
from tests.pgcluster import free_port
from tests.scenario import GOOD, start, wait_for, wait_healthy
from tests.slackdriver import SlackDriver, TrackingExecutor


@pytest.fixture
def served(tmp_path: Path, fake: FakeSlack, db_url: str) -> Iterator[tuple[int, SlackDriver]]:
    port = free_port()
    process = start(tmp_path, fake, db_url, PORT=str(port), WEB_CONCURRENCY="2")
    try:
        wait_healthy(port, process)
        driver = SlackDriver(
            f"http://127.0.0.1:{port}/slack/events",
            SIGNING_SECRET,
            fake.respond_url,
            TrackingExecutor(),
            team_id=TEAM,
        )
        yield port, driver
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def test_run_migrates_then_serves_http_with_several_workers(
    served: tuple[int, SlackDriver], fake: FakeSlack, db_url: str
) -> None:
    _port, driver = served
    assert "cases" in inspect(create_db_engine(db_url)).get_table_names()
    assert fake.calls_to("auth.test") and fake.calls_to("conversations.list")
    for number, topic, channel in (
        ("27343", "api", "C0API0001"),
        ("27344", "billing", "C0BILL001"),
    ):
        opened = len(fake.opened_views())
        assert driver.global_shortcut().status == 200
        wait_for(lambda opened=opened: len(fake.opened_views()) > opened)
        view = fake.opened_views()[-1]
        reply = driver.submit(view, {**GOOD, "case_number": number, "topic": topic})
        assert reply.status == 200 and reply.body == ""
        wait_for(lambda channel=channel: any(m.get("metadata") for m in fake.messages(channel)))
    # Every request reached a worker through gunicorn; bad signatures are refused there too.
    assert driver.command("help", signature="v0=bad").status == 401


def test_run_refuses_a_token_slack_rejects(tmp_path: Path, fake: FakeSlack) -> None:
    process = start(
        tmp_path,
        fake,
        f"sqlite:///{tmp_path / 'x.db'}",
        SLACK_BOT_TOKEN="xoxb-revoked",
        PORT=str(free_port()),
    )
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 2
    assert "SLACK_BOT_TOKEN: Slack rejected the token (invalid_auth)" in out
    assert "Traceback" not in out


def test_run_refuses_an_unknown_channel_name(tmp_path: Path, fake: FakeSlack) -> None:
    fake.reset()  # no channels at all: '#swarm-billing' cannot be resolved
    process = start(tmp_path, fake, f"sqlite:///{tmp_path / 'x.db'}", PORT=str(free_port()))
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 2
    assert "no channel named #swarm-billing" in out


def test_socket_mode_connects_through_slack_api_url(tmp_path: Path, fake: FakeSlack) -> None:
    process = start(
        tmp_path,
        fake,
        f"sqlite:///{tmp_path / 'x.db'}",
        SLACK_APP_TOKEN="xapp-1-test",
        SLACK_SIGNING_SECRET="",
    )
    out, _ = process.communicate(timeout=60)
    [call] = [c for c in fake.calls if c.method == "apps.connections.open"]
    assert call.token == "xapp-1-test"
    assert process.returncode == 2
    assert "SLACK_APP_TOKEN: Slack refused the Socket Mode connection" in out


def test_one_gunicorn_worker_acks_ten_slow_interactions_at_once(
    tmp_path: Path, fake: FakeSlack, db_url: str
) -> None:
    port = free_port()
    process = start(tmp_path, fake, db_url, PORT=str(port), WEB_CONCURRENCY="1")
    driver = SlackDriver(
        f"http://127.0.0.1:{port}/slack/events",
        SIGNING_SECRET,
        fake.respond_url,
        TrackingExecutor(),
        team_id=TEAM,
    )
    try:
        wait_healthy(port, process)
        assert driver.global_shortcut(wait=False).status == 200
        wait_for(lambda: bool(fake.opened_views()))
        driver.submit(fake.opened_views()[-1], GOOD, wait=False)
        wait_for(lambda: any(m.get("metadata") for m in fake.messages("C0API0001")))
        with Session(create_db_engine(db_url)) as session:
            case_id = session.scalars(select(Case.id)).one()
        fake.inject("chat.update", delay=3.5, times=None)  # Slack answers card updates slowly
        replies: list = [None] * 10

        def click(i: int) -> None:
            replies[i] = driver.click("case-join", str(case_id), user=f"U0SW{i:05d}", wait=False)

        threads = [threading.Thread(target=click, args=(i,)) for i in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert [r.status for r in replies] == [200] * 10
        assert max(r.elapsed for r in replies) < 1.5, [round(r.elapsed, 2) for r in replies]
        wait_for(lambda: len(fake.responses()) >= 10, timeout=30)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
