"""Nothing lost, nothing blocked when Slack is slow or failing (SPEC 5).

Scenarios against the fake Slack's faults (slowness per method, 429 with Retry-After, 5xx,
permanent refusals such as `is_archived`), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from wsgiref.simple_server import make_server

import pytest
from sqlalchemy import select, text

from bot.app import create_app
from bot.gateway import CALLS_IN_TRANSACTION, web_client
from bot.runtime import build_http, build_swarm
from storage.domain import CaseStatus
from storage.models import PendingPost
from tests.conftest import (
    BOT_TOKEN,
    SIGNING_SECRET,
    TEAM,
    QuietHandler,
    RunningBot,
    ThreadingWSGIServer,
    settings_for,
)
from tests.fakeslack import FakeSlack
from tests.scenario import FILER, LEAD, answer, case_of, file, filed
from tests.slackdriver import SlackDriver, TrackingExecutor
from workflows import announcements
from workflows.announcements import deliver_owed
from workflows.services import Services

BILLING_LEAD = "U0LEAD002"

pytestmark = pytest.mark.usefixtures("no_slack_call_inside_a_transaction")


def gateway(bot: RunningBot):  # type: ignore[no-untyped-def]
    """The gateway a background job uses (its own client, as the leader's jobs have)."""
    return bot.swarm.slack(web_client(BOT_TOKEN, bot.swarm.settings.slack_api_url))


def sweep(bot: RunningBot) -> int:
    """One run of the leader's `posts:retry` job."""
    return deliver_owed(Services(bot.uow, bot.config, gateway(bot), bot.swarm.clock))


def owed(bot: RunningBot) -> list[PendingPost]:
    with bot.uow() as uow:
        return list(uow.session.scalars(select(PendingPost).order_by(PendingPost.id)))


def said(fake: FakeSlack, channel: str, words: str) -> list[dict]:
    return [m for m in fake.messages(channel) if words in m.get("text", "")]


# -- storage: no transaction waits on Slack -----------------------------------------------------
def test_a_read_only_unit_of_work_reads_while_another_request_writes(bot: RunningBot) -> None:
    """On SQLite every transaction used to take the write lock (BEGIN IMMEDIATE), reads too."""
    filed_case = None
    with bot.uow() as uow:
        uow.cases.ensure_workspace(team_id="T111")
        uow.commit()
    writing = threading.Event()
    release = threading.Event()

    def writer() -> None:
        with bot.uow() as uow:
            workspace = uow.cases.ensure_workspace(team_id="T111")
            workspace.name = "held"
            uow.flush()  # the write lock (SQLite) or the row lock (PostgreSQL) is held now
            writing.set()
            release.wait(10)
            uow.commit()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert writing.wait(5)
        started = time.monotonic()
        with bot.uow.read() as uow:
            filed_case = uow.session.execute(text("SELECT count(*) FROM workspaces")).scalar()
        assert time.monotonic() - started < 0.5
        assert filed_case == 1
    finally:
        release.set()
        thread.join()


def test_a_read_only_unit_of_work_cannot_commit(bot: RunningBot) -> None:
    from storage.uow import ReadOnlyUnitOfWork

    with bot.uow.read() as uow, pytest.raises(ReadOnlyUnitOfWork):
        uow.commit()


def test_the_gateway_reports_a_slack_call_made_inside_a_transaction(
    bot: RunningBot, fake: FakeSlack
) -> None:
    slack = gateway(bot)
    with bot.uow() as uow:
        uow.cases.ensure_workspace(team_id="T111")
        slack.post_message("C0GENERAL", "inside")  # the transaction is open: reported
        uow.commit()
        slack.post_message("C0GENERAL", "after the commit")  # none open: fine
    seen = CALLS_IN_TRANSACTION.clear()
    assert len(seen) == 1 and seen[0].startswith("chat.postMessage")


# -- item 3: one refused message never blocks the others ----------------------------------------
def test_a_refused_post_is_given_up_and_the_posts_owed_after_it_still_go_out(
    bot: RunningBot, fake: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    api = filed(bot, fake)
    file(bot, fake, {"case_number": "27344", "topic": "billing"})
    billing = case_of(bot, "27344")
    fake.outage(30, method="chat.postMessage", status=503)
    bot.driver.command("resolve 27343 Fixed the API", user=LEAD)
    bot.driver.command("resolve 27344 Fixed billing", user=BILLING_LEAD)
    fake.reset_faults()
    assert len([p for p in owed(bot) if p.sent_at is None]) == 4  # two threads, two filer DMs
    fake.archive("C0API0001")  # the API case's channel is archived meanwhile
    bot.swarm.clock.advance(hours=1)
    with caplog.at_level(logging.WARNING):
        assert sweep(bot) == 3
    assert not said(fake, "C0API0001", "Fixed the API")
    assert len(said(fake, "C0BILL001", "Fixed billing")) == 1
    assert len([m for m in fake.dms(FILER) if "was resolved by" in m["text"]]) == 2
    [refused] = [p for p in owed(bot) if p.thread_ts == api.thread_ts]
    assert refused.given_up_at is not None and "is_archived" in (refused.last_error or "")
    assert "given up" in caplog.text
    assert billing.thread_ts is not None
    assert sweep(bot) == 0  # nothing is retried, nothing sent twice


def test_a_post_slack_cannot_take_now_backs_off_alone(bot: RunningBot, fake: FakeSlack) -> None:
    case = filed(bot, fake)
    fake.inject(
        "chat.postMessage", status=503, times=None, when=lambda p: p.get("thread_ts") is not None
    )
    bot.driver.command("resolve 27343 Rolled back", user=LEAD)
    # The filer's DM went out at once; the thread post is kept, with a time for its next try.
    assert len([m for m in fake.dms(FILER) if "was resolved by" in m["text"]]) == 1
    [kept] = [p for p in owed(bot) if p.sent_at is None]
    assert kept.attempts == 1 and kept.next_attempt_at is not None
    assert kept.next_attempt_at > bot.swarm.clock.now()
    fake.reset_faults()
    calls = len(fake.calls_to("chat.postMessage"))
    assert sweep(bot) == 0  # not due yet: Slack is not asked
    assert len(fake.calls_to("chat.postMessage")) == calls
    bot.swarm.clock.advance(seconds=announcements.backoff(1).total_seconds())
    assert sweep(bot) == 1
    assert len(said(fake, "C0API0001", "Rolled back")) == 1
    assert case.thread_ts is not None


def test_the_request_and_the_sweep_sending_at_once_send_each_post_once(
    bot: RunningBot, fake: FakeSlack
) -> None:
    filed(bot, fake)
    # Slow posts: the resolve's own delivery is still sending when the sweep runs.
    fake.inject("chat.postMessage", delay=0.6, times=None)
    resolving = threading.Thread(
        target=bot.driver.command, args=("resolve 27343 Patched",), kwargs={"user": LEAD}
    )
    resolving.start()
    deadline = time.monotonic() + 5
    while not owed(bot) and time.monotonic() < deadline:
        time.sleep(0.02)
    sweeper = threading.Thread(target=sweep, args=(bot,))
    sweeper.start()
    resolving.join()
    sweeper.join()
    assert len(said(fake, "C0API0001", "Patched")) == 1
    assert len([m for m in fake.dms(FILER) if "was resolved by" in m["text"]]) == 1


def test_a_card_that_cannot_be_refreshed_is_logged_not_the_users_failure(
    bot: RunningBot, fake: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    case = filed(bot, fake)
    fake.delete_message("C0API0001", case.thread_ts)  # someone deleted the card
    with caplog.at_level(logging.WARNING):
        bot.driver.click("case-join", str(case.id), user="U0EXP0001")
    assert answer(fake) == "You joined the swarm of case 27343."
    assert "card not updated" in caplog.text
    fake.archive("C0API0001")
    bot.driver.click("case-claim", str(case.id), user="U0EXP0001")
    assert answer(fake) == "Case 27343 is yours now."
    assert case_of(bot).assignee_id == "U0EXP0001"
    assert case_of(bot).status is CaseStatus.SWARMING


# -- item 4: acks in well under 3 s with slow interactions in flight -----------------------------
SLOW = 3.5  # seconds Slack takes to answer chat.update in these tests (Slack's ack limit: 3)
IN_FLIGHT = 10


@contextmanager
def production_app(bot: RunningBot, fake: FakeSlack, **settings: Any) -> Iterator[SlackDriver]:
    """The app as `swarmbot run` builds it (its own executor, token checked), served over HTTP."""
    swarm = build_swarm(
        settings_for(fake, str(bot.swarm.settings.database_url), **settings),
        config=bot.config,
        clock=bot.swarm.clock,
    )
    _app, http = build_http(swarm)
    server = make_server(
        "127.0.0.1", 0, http, server_class=ThreadingWSGIServer, handler_class=QuietHandler
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}/slack/events"
    try:
        yield SlackDriver(url, SIGNING_SECRET, fake.respond_url, TrackingExecutor(), team_id=TEAM)
    finally:
        server.shutdown()
        server.server_close()


def wait_until(predicate: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def at_once(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run calls in parallel threads; their results in order."""
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        results[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_ten_slow_interactions_in_flight_are_each_acked_at_once_over_http(
    bot: RunningBot, fake: FakeSlack
) -> None:
    case = filed(bot, fake)
    with production_app(bot, fake) as driver:
        fake.inject("chat.update", delay=SLOW, times=None)
        users = [f"U0SWARM{i:02d}" for i in range(IN_FLIGHT)]
        replies = at_once(
            [lambda u=u: driver.click("case-join", str(case.id), user=u, wait=False) for u in users]
        )
        assert [r.status for r in replies] == [200] * IN_FLIGHT
        assert max(r.elapsed for r in replies) < 1.0, [round(r.elapsed, 2) for r in replies]
        wait_until(lambda: len(fake.responses()) >= IN_FLIGHT)
    assert {p for p in (case_of(bot).participants) if p.user_id in users}


def test_the_first_request_of_a_new_process_does_not_wait_for_auth_test(
    bot: RunningBot, fake: FakeSlack
) -> None:
    filed(bot, fake)
    fake.inject("auth.test", delay=2.0, times=None)
    with production_app(bot, fake) as driver:  # auth.test is paid here, at start
        checks = len(fake.calls_to("auth.test"))
        reply = driver.command("status 27343", wait=False)
        assert len(fake.calls_to("auth.test")) == checks
        assert reply.status == 200 and reply.elapsed < 1.0, reply.elapsed
        wait_until(lambda: bool(fake.responses()))


def test_ten_slow_interactions_in_flight_are_each_acked_at_once_in_socket_mode(
    bot: RunningBot, fake: FakeSlack
) -> None:
    from slack_bolt.adapter.socket_mode.internals import run_bolt_app
    from slack_sdk.socket_mode.request import SocketModeRequest

    case = filed(bot, fake)
    swarm = build_swarm(
        settings_for(
            fake,
            str(bot.swarm.settings.database_url),
            slack_app_token="xapp-1-test",
            slack_signing_secret=None,
        ),
        config=bot.config,
        clock=bot.swarm.clock,
    )
    app = create_app(swarm)  # what `swarmbot run` hands SocketModeHandler
    fake.inject("chat.update", delay=SLOW, times=None)

    def deliver_envelope(user: str) -> tuple[int, float]:
        # What SocketModeHandler does with each envelope before it sends the ack back.
        body = bot.driver.click_body("case-join", str(case.id), user=user)
        request = SocketModeRequest(type="interactive", envelope_id=user, payload=body)
        started = time.perf_counter()
        response = run_bolt_app(app, request)
        return response.status, time.perf_counter() - started

    results = at_once([lambda u=f"U0SOCK{i:03d}": deliver_envelope(u) for i in range(IN_FLIGHT)])
    assert [status for status, _ in results] == [200] * IN_FLIGHT
    assert max(took for _, took in results) < 1.0, [round(t, 2) for _, t in results]
    wait_until(lambda: len(fake.responses()) >= IN_FLIGHT)
