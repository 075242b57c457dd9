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
from scheduling.sweeps import SWEEPS, Runtime
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
from tests.scenario import (
    FILER,
    GOOD,
    LEAD,
    answer,
    cards,
    case_of,
    escalate,
    file,
    filed,
    open_modal,
    reply_event,
)
from tests.slackdriver import SlackDriver, TrackingExecutor, payload
from workflows import announcements, sla
from workflows.announcements import deliver_owed
from workflows.services import Services

BILLING_LEAD = "U0LEAD002"


@pytest.fixture
def bot_settings() -> dict[str, Any]:
    """The client retries once here (SLACK_RETRIES=1), to keep outages short in tests."""
    return {"slack_retries": 1}


def gateway(bot: RunningBot):  # type: ignore[no-untyped-def]
    """The gateway a background job uses (its own client, as the leader's jobs have)."""
    return bot.swarm.slack(web_client(BOT_TOKEN, bot.swarm.settings.slack_api_url))


def services(bot: RunningBot) -> Services:
    """What the leader's jobs run with."""
    return Services(bot.uow, bot.config, gateway(bot), bot.swarm.clock)


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
        assert max(r.elapsed for r in replies) < 1.5, [round(r.elapsed, 2) for r in replies]
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
    assert max(took for _, took in results) < 1.5, [round(t, 2) for _, t in results]
    wait_until(lambda: len(fake.responses()) >= IN_FLIGHT)


# -- item 1: the card's ts is committed the moment Slack returns it ------------------------------
def thread_reply_on_the_card(bot: RunningBot, fake: FakeSlack, text: str) -> None:
    """A swarmer answers in the card's thread as soon as the card shows in the channel."""
    wait_until(lambda: bool(cards(fake, "C0API0001")), timeout=10)
    card = cards(fake, "C0API0001")[0]
    event = payload("event_message_thread_reply.json")["event"]
    ts = f"{float(card['ts']) + 1:.6f}"
    event.update(
        user="U0EXP0001",
        text=text,
        ts=ts,
        event_ts=ts,
        thread_ts=card["ts"],
        parent_user_id="UBOT",
        channel="C0API0001",
        team=TEAM,
    )
    assert bot.driver.event(event, wait=False).status == 200


def test_a_reply_while_the_permalink_is_rate_limited_is_recorded(
    bot: RunningBot, fake: FakeSlack
) -> None:
    fake.inject("chat.getPermalink", status=429, retry_after=1, times=1)
    view = open_modal(bot, fake)
    submitting = threading.Thread(target=bot.driver.submit, args=(view, GOOD))
    submitting.start()
    thread_reply_on_the_card(bot, fake, "Looking at it now")
    submitting.join()
    bot.driver.executor.wait_idle()
    case = case_of(bot)
    assert case.first_responder_id == "U0EXP0001"
    assert any(p.user_id == "U0EXP0001" for p in case.participants)
    assert case.permalink is not None  # fetched once Slack let it


def test_details_that_continue_in_the_thread_are_owed_when_slack_refuses_them(
    bot: RunningBot, fake: FakeSlack
) -> None:
    fake.inject("chat.postMessage", status=503, times=None, when=lambda p: bool(p.get("thread_ts")))
    file(bot, fake, {"details": "x" * 2990 + " the end"})
    case = case_of(bot)
    assert case.thread_ts == cards(fake, "C0API0001")[0]["ts"]  # the card is the case thread
    fake.reset_faults()
    bot.swarm.clock.advance(minutes=5)
    sweep(bot)
    continued = [m for m in fake.thread("C0API0001", case.thread_ts)[1:] if "the end" in m["text"]]
    assert len(continued) == 1
    assert sweep(bot) == 0 and len(cards(fake, "C0API0001")) == 1


# -- item 2: no Slack call inside an open transaction --------------------------------------------
def test_a_slow_access_check_in_search_does_not_hold_up_a_thread_reply(
    bot: RunningBot, fake: FakeSlack
) -> None:
    case = filed(bot, fake)
    bot.driver.event(reply_event(case, "webhook timeouts again"))
    fake.inject("conversations.info", delay=3.0, times=None)
    searching = threading.Thread(
        target=bot.driver.command, args=("search webhook",), kwargs={"user": "U0AGENT02"}
    )
    searching.start()
    time.sleep(0.5)  # the search is waiting on Slack now
    started = time.monotonic()
    bot.driver.event(
        reply_event(case, "still failing", user="U0EXP0002", ts="1800000002.000100"), wait=False
    )
    wait_until(lambda: any(p.user_id == "U0EXP0002" for p in case_of(bot).participants), 5)
    stored_in = time.monotonic() - started
    searching.join()
    assert stored_in < 1.5, stored_in


def test_a_slow_lead_check_holds_no_lock_on_the_case(bot: RunningBot, fake: FakeSlack) -> None:
    case = filed(bot, fake)
    bot.driver.click("case-claim", str(case.id), user="U0EXP0001")
    # An admin (not a lead of the topic) takes the case over; Slack is slow to say who they are.
    fake.inject("users.info", delay=3.0, times=None)
    taking = threading.Thread(
        target=bot.driver.command, args=("claim 27343",), kwargs={"user": "U0ADMIN01"}
    )
    taking.start()
    time.sleep(0.5)
    started = time.monotonic()
    bot.driver.event(reply_event(case, "I can help", user="U0EXP0002"), wait=False)
    wait_until(lambda: any(p.user_id == "U0EXP0002" for p in case_of(bot).participants), 5)
    stored_in = time.monotonic() - started
    taking.join()
    assert stored_in < 1.5, stored_in
    assert case_of(bot).assignee_id == "U0ADMIN01"


# -- item 5: severity-change announcements and claim notes go through the outbox -----------------
def test_severity_change_announcements_are_owed_and_sent_once(
    bot: RunningBot, fake: FakeSlack
) -> None:
    case = filed(bot, fake)
    escalate(bot, fake, "escalate 27343 sev2")
    room = case_of(bot).incident_channel_id
    fake.inject("chat.postMessage", status=503, times=None)
    bot.driver.command("sev 27343 sev1", user=LEAD)
    assert case_of(bot).severity == 1
    fake.reset_faults()
    bot.swarm.clock.advance(minutes=5)
    sweep(bot)
    sweep(bot)
    assert len(said(fake, room, "to *sev1*")) == 1
    thread = [m for m in fake.thread("C0API0001", case.thread_ts) if "to *sev1*" in m["text"]]
    assert len(thread) == 1
    assert len(said(fake, "C0LEGAL01", "escalated to *sev1*")) == 1


def test_a_claim_note_slack_did_not_take_is_sent_later_once(
    bot: RunningBot, fake: FakeSlack
) -> None:
    case = filed(bot, fake)
    fake.inject("chat.postMessage", status=503, times=None)
    bot.driver.click("case-claim", str(case.id), user="U0EXP0001")
    assert answer(fake) == "Case 27343 is yours now."
    fake.reset_faults()
    bot.swarm.clock.advance(minutes=5)
    assert sweep(bot) == 1
    assert sweep(bot) == 0
    notes = [
        m for m in fake.thread("C0API0001", case.thread_ts) if "claimed this case" in m["text"]
    ]
    assert len(notes) == 1


# -- item 6: breach DMs per recipient, each exactly once -----------------------------------------
def test_one_refused_breach_dm_does_not_stop_the_others_and_none_is_sent_twice(
    bot: RunningBot, fake: FakeSlack
) -> None:
    case = filed(bot, fake)
    for lead in ("U0EXP0001", "U0EXP0002"):  # two more leads of the topic, named at run time
        bot.driver.command(f"lead <@{lead}> api", user="U0ADMIN01")
    fake.inject("chat.postMessage", error="user_disabled", when=lambda p: p["channel"] == LEAD)
    fake.inject(
        "chat.postMessage", status=503, times=None, when=lambda p: p["channel"] == "U0EXP0002"
    )
    bot.swarm.clock.advance(hours=2)
    sla.fire_timer(services(bot), case.id, sla.FIRST_RESPONSE)
    assert len([m for m in fake.dms("U0EXP0001") if "breached" in m["text"]]) == 1
    assert "SLA breached" in str(fake.calls_to("chat.update")[-1]["blocks"])
    fake.reset_faults()
    bot.swarm.clock.advance(minutes=5)
    sweep(bot)
    sla.fire_timer(services(bot), case.id, sla.FIRST_RESPONSE)
    sweep(bot)
    assert len([m for m in fake.dms("U0EXP0001") if "breached" in m["text"]]) == 1
    assert len([m for m in fake.dms("U0EXP0002") if "breached" in m["text"]]) == 1
    assert [m for m in fake.dms(LEAD) if "breached" in m["text"]] == []


# -- item 8: the modal opens first, the checks come after ----------------------------------------
def views_open_after(fake: FakeSlack, started: float) -> float:
    [call] = [c for c in fake.calls if c.method == "views.open" and c.at >= started]
    return call.at - started


@pytest.mark.parametrize("how", ["escalate-button", "resolve-button", "resolve-command"])
def test_a_slow_role_check_does_not_make_the_modal_miss_its_trigger(
    bot: RunningBot, fake: FakeSlack, how: str
) -> None:
    case = filed(bot, fake)
    fake.inject("users.info", delay=3.5, times=None)
    started = time.monotonic()
    if how == "resolve-command":
        bot.driver.command("resolve 27343", user="U0ADMIN01")
    else:
        action = "case-escalate" if how == "escalate-button" else "case-resolve"
        bot.driver.click(action, str(case.id), user="U0ADMIN01")
    assert views_open_after(fake, started) < 1.0
    view = fake.opened_views()[-1]
    title = view["title"]["text"].lower()
    assert ("escalate" if how == "escalate-button" else "resolve") in title
    assert any(b.get("type") == "input" for b in view["blocks"])


def test_someone_who_may_not_sees_why_in_the_modal(bot: RunningBot, fake: FakeSlack) -> None:
    case = filed(bot, fake)
    bot.driver.click("case-escalate", str(case.id), user="U0AGENT02")
    view = fake.opened_views()[-1]
    assert not any(b.get("type") == "input" for b in view["blocks"])
    assert "Only swarm leads" in str(view["blocks"])


# -- item 9: resolve and reopen are conditional updates ------------------------------------------
def test_two_resolves_at_once_make_one_resolution_and_the_loser_is_told(
    bot: RunningBot, fake: FakeSlack
) -> None:
    filed(bot, fake)
    fake.inject("users.info", delay=0.5, times=None)  # both are admins: both wait on Slack
    fake.add_user("U0ADMIN02", name="admin2", is_admin=True)
    at_once(
        [
            lambda: bot.driver.command("resolve 27343 Restarted the gateway", user="U0ADMIN01"),
            lambda: bot.driver.command("resolve 27343 Rolled back the deploy", user="U0ADMIN02"),
        ]
    )
    case = case_of(bot)
    posts = [m for m in fake.thread("C0API0001", case.thread_ts) if "resolved case" in m["text"]]
    assert len(posts) == 1
    assert case.resolution in posts[0]["text"].replace("&lt;", "<")
    winner = case.resolved_by
    loser = "U0ADMIN02" if winner == "U0ADMIN01" else "U0ADMIN01"
    told = [r["body"]["text"] for r in fake.responses()]
    assert any(f"just resolved by <@{winner}>" in t for t in told), told
    with bot.uow() as uow:
        kinds = [e.kind for e in uow.cases.events_of(case_id=case.id, kinds=["resolved"])]
    assert kinds == ["resolved"]
    assert loser != winner


# -- item 7: what an escalation cannot do yet is owed, and done in order -------------------------
def leader_sweeps(bot: RunningBot) -> None:
    """The leader's at-start sweeps (cards, escalations, owed posts), after a while."""
    runtime = Runtime(
        bot.swarm, web_client(BOT_TOKEN, bot.swarm.settings.slack_api_url), scheduler=None
    )  # type: ignore[arg-type]
    bot.swarm.clock.advance(minutes=5)
    for each in SWEEPS:
        if each.at_start:
            each.run(runtime)


def test_an_escalation_before_the_card_exists_links_the_thread_once_the_card_is_there(
    bot: RunningBot, fake: FakeSlack
) -> None:
    fake.inject("chat.postMessage", status=503, times=None, when=lambda p: bool(p.get("blocks")))
    file(bot, fake)
    assert case_of(bot).thread_ts is None  # Slack would not take the card
    escalate(bot, fake, "escalate 27343 sev2")
    room = case_of(bot).incident_channel_id
    assert room is not None
    fake.reset_faults()
    leader_sweeps(bot)
    leader_sweeps(bot)
    case = case_of(bot)
    assert case.thread_ts is not None and case.permalink
    links = [m for m in fake.thread("C0API0001", case.thread_ts) if f"<#{room}>" in m["text"]]
    assert len(links) == 1 and "escalated this case to *sev2*" in links[0]["text"]
    original = said(fake, room, "Original thread of case 27343")
    assert len(original) == 1 and case.permalink in original[0]["text"]


def test_a_severity_change_while_the_escalation_runs_is_applied_after_it_in_order(
    bot: RunningBot, fake: FakeSlack
) -> None:
    case = filed(bot, fake)
    fake.inject("conversations.invite", delay=2.0, times=1)
    escalating = threading.Thread(
        target=bot.driver.command, args=("escalate 27343 sev2",), kwargs={"user": LEAD}
    )
    escalating.start()
    wait_until(lambda: bool(fake.calls_to("conversations.invite")))  # half-way through it
    bot.driver.command("sev 27343 sev1", user=LEAD, wait=False)
    escalating.join()
    bot.driver.executor.wait_idle()
    told = [r["body"]["text"] for r in fake.responses()]
    assert any("sev1 will be applied as soon as that completes" in t for t in told), told
    escalated = case_of(bot)
    assert escalated.severity == 1 and escalated.status is CaseStatus.ESCALATED
    assert fake.channel(escalated.incident_channel_id)["name"] == "help-api-sev1-27343"
    thread = [m["text"] for m in fake.thread("C0API0001", case.thread_ts)]
    to_sev2 = [i for i, t in enumerate(thread) if "escalated this case to *sev2*" in t]
    to_sev1 = [i for i, t in enumerate(thread) if "to *sev1*" in t]
    assert len(to_sev2) == 1 and len(to_sev1) == 1 and to_sev2[0] < to_sev1[0]
