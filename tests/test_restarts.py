"""Stopping and crashing `swarmbot run`: in-flight work finishes or stays owed, and what a crash
left owed is sent at the next start, exactly once (real processes, both databases)."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from sqlalchemy import select

from bot.runtime import build_swarm
from storage.models import PendingPost
from tests.conftest import SIGNING_SECRET, TEAM, TEST_CONFIG, settings_for
from tests.fakeslack import FakeSlack
from tests.pgcluster import free_port
from tests.scenario import GOOD, start, wait_for, wait_healthy
from tests.slackdriver import SlackDriver, TrackingExecutor
from workflows.config import parse_config
from workflows.intake import CaseDraft, file_case
from workflows.services import Services

LEAD = "U0LEAD001"
FILER = "U0AGENT01"


def driver_for(port: int, fake: FakeSlack) -> SlackDriver:
    return SlackDriver(
        f"http://127.0.0.1:{port}/slack/events",
        SIGNING_SECRET,
        fake.respond_url,
        TrackingExecutor(),
        team_id=TEAM,
    )


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM) -> int:
    process.send_signal(sig)
    try:
        return process.wait(timeout=40)
    except subprocess.TimeoutExpired:
        process.kill()
        raise


def resolutions(fake: FakeSlack, words: str) -> int:
    in_thread = [m for m in fake.messages("C0API0001") if words in m["text"]]
    to_filer = [m for m in fake.dms(FILER) if "was resolved by" in m["text"]]
    return len(in_thread) + len(to_filer)


def owed_now(db_url: str, fake: FakeSlack) -> list[PendingPost]:
    swarm = build_swarm(settings_for(fake, db_url), config=parse_config(TEST_CONFIG))
    with swarm.uow() as uow:
        return list(
            uow.session.scalars(
                select(PendingPost).where(
                    PendingPost.sent_at.is_(None), PendingPost.given_up_at.is_(None)
                )
            )
        )


def test_sigterm_lets_in_flight_work_finish_or_leaves_it_owed(
    tmp_path: Path, fake: FakeSlack, db_url: str
) -> None:
    port = free_port()
    process = start(tmp_path, fake, db_url, PORT=str(port), WEB_CONCURRENCY="1")
    try:
        wait_healthy(port, process)
        driver = driver_for(port, fake)
        driver.global_shortcut(wait=False)
        wait_for(lambda: bool(fake.opened_views()))
        driver.submit(fake.opened_views()[-1], GOOD, wait=False)
        wait_for(lambda: any(m.get("metadata") for m in fake.messages("C0API0001")))
        # Slack is slow to take the resolution; the bot is stopped while it is being sent.
        fake.inject("chat.postMessage", delay=2.0, times=None)
        driver.command("resolve 27343 Rolled back the deploy", user=LEAD, wait=False)
        wait_for(lambda: bool(fake.calls_to("chat.postMessage")[-1:]) and resolving(fake))
    finally:
        code = stop(process)
    assert code == 0
    fake.reset_faults()
    sent = resolutions(fake, "Rolled back the deploy")
    assert sent + len(owed_now(db_url, fake)) >= 2  # each one sent, or owed: none lost
    # The next start sends what is still owed, and nothing twice.
    process = start(tmp_path, fake, db_url, PORT=str(port), WEB_CONCURRENCY="1")
    try:
        wait_healthy(port, process)
        wait_for(lambda: resolutions(fake, "Rolled back the deploy") == 2, timeout=30)
    finally:
        stop(process)
    assert resolutions(fake, "Rolled back the deploy") == 2


def resolving(fake: FakeSlack) -> bool:
    return any("Rolled back" in str(c.get("text")) for c in fake.calls_to("chat.postMessage"))


def test_a_crash_between_commit_and_post_is_repaired_at_the_next_start(
    tmp_path: Path, fake: FakeSlack, db_url: str
) -> None:
    # What a process had committed when it died right after its commits: a case filed but no
    # card yet, and a message owed to the thread of another case's card, not yet sent.
    swarm = build_swarm(settings_for(fake, db_url), config=parse_config(TEST_CONFIG))
    services = Services(swarm.uow, swarm.config, swarm.slack(fake_client(fake)), swarm.clock)
    filed = file_case(services, CaseDraft(TEAM, FILER, "27343", "high", "api", "Webhooks time out"))
    with swarm.uow() as uow:
        case = uow.cases.get(filed.case_id)
        assert case is not None and case.thread_ts is None
        uow.cases.owe_post(
            case=None, channel_id="C0GENERAL", text="Owed before the crash", at=swarm.clock.now()
        )
        uow.commit()
    port = free_port()
    process = start(tmp_path, fake, db_url, PORT=str(port), WEB_CONCURRENCY="1")
    try:
        wait_healthy(port, process)
        wait_for(lambda: any(m.get("metadata") for m in fake.messages("C0API0001")), timeout=30)
        wait_for(lambda: bool(fake.dms(FILER)), timeout=30)
        wait_for(
            lambda: any("Owed before the crash" in m["text"] for m in fake.messages("C0GENERAL"))
        )
    finally:
        stop(process)
    cards = [m for m in fake.messages("C0API0001") if m.get("metadata")]
    assert len(cards) == 1
    assert len([m for m in fake.messages("C0GENERAL") if "Owed before" in m["text"]]) == 1
    assert len(fake.dms(FILER)) == 1
    assert owed_now(db_url, fake) == []


def fake_client(fake: FakeSlack):  # type: ignore[no-untyped-def]
    from bot.gateway import web_client

    return web_client("xoxb-test-token", fake.url)
