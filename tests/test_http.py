"""The HTTP front door: signatures, malformed bodies, fast acks, no lost work after ack."""

from __future__ import annotations

import json
import time
from urllib.error import HTTPError
from urllib.request import Request, urlopen

from sqlalchemy import func, select, text

from storage.models import Case
from tests.conftest import RunningBot
from tests.fakeslack import FakeSlack
from tests.scenario import GOOD, cards, open_modal
from tests.slackdriver import payload


def count_cases(bot: RunningBot) -> int:
    with bot.uow() as uow:
        return uow.session.scalar(select(func.count(Case.id)))


def test_a_bad_signature_gets_401_and_changes_nothing(bot: RunningBot, fake: FakeSlack) -> None:
    view = open_modal(bot, fake)
    calls = len(fake.calls)
    reply = bot.driver.submit(view, GOOD, signature="v0=" + "0" * 64)
    assert reply.status == 401
    unsigned = bot.driver.submit(view, GOOD, sign=False)
    assert unsigned.status == 401
    assert count_cases(bot) == 0 and len(fake.calls) == calls


def test_a_stale_signature_gets_401(bot: RunningBot, fake: FakeSlack) -> None:
    before = len(fake.calls)  # the app checked its token with auth.test when it started
    reply = bot.driver.command("help", timestamp=int(time.time()) - 60 * 10)
    assert reply.status == 401
    assert fake.calls[before:] == []


def test_a_payload_that_is_not_json_gets_400_not_500(bot: RunningBot, fake: FakeSlack) -> None:
    reply = bot.driver.send("payload=%7Bnot-json", "application/x-www-form-urlencoded")
    assert reply.status == 400
    reply = bot.driver.send("{broken json", "application/json")
    assert reply.status == 400
    reply = bot.driver.send("", "application/json")
    assert reply.status == 400


def test_other_paths_and_methods(bot: RunningBot) -> None:
    base = bot.url.rsplit("/slack/events", 1)[0]
    with urlopen(f"{base}/healthz", timeout=5) as response:
        assert response.status == 200
    for url, method in ((f"{base}/nope", "POST"), (bot.url, "GET")):
        try:
            urlopen(Request(url, method=method, data=b"" if method == "POST" else None), timeout=5)
            raise AssertionError("expected an error status")
        except HTTPError as exc:
            assert exc.code in (404, 405)


def test_url_verification_is_answered(bot: RunningBot) -> None:
    body = json.dumps({"token": "t", "challenge": "abc123", "type": "url_verification"})
    reply = bot.driver.send(body, "application/json")
    assert reply.status == 200 and "abc123" in reply.body


def test_acks_are_fast_even_when_slack_is_slow(bot: RunningBot, fake: FakeSlack) -> None:
    view = open_modal(bot, fake)
    fake.inject("chat.postMessage", delay=2.0, times=1)
    reply = bot.driver.submit(view, GOOD, wait=False)
    assert reply.status == 200 and reply.elapsed < 1.0
    bot.driver.executor.wait_idle()
    assert len(cards(fake, "C0API0001")) == 1


def test_a_failure_after_the_ack_loses_nothing_and_is_not_unhandled(
    bot: RunningBot, fake: FakeSlack
) -> None:
    view = open_modal(bot, fake)
    fake.inject("chat.postMessage", error="channel_not_found", times=1)
    reply = bot.driver.submit(view, GOOD)
    assert reply.status == 200 and reply.body == ""
    assert count_cases(bot) == 1  # kept, and its card is retried later
    with bot.uow() as uow:
        assert uow.session.scalars(select(Case)).one().thread_ts is None


def test_an_unknown_interaction_is_not_a_server_error(bot: RunningBot) -> None:
    body = payload("shortcut_global.json")  # callback_id "test-shortcut": nobody listens
    reply = bot.driver.interactive(body)
    assert reply.status == 404


def test_a_storage_failure_keeps_the_form_open_and_tells_the_user(
    bot: RunningBot, fake: FakeSlack
) -> None:
    view = open_modal(bot, fake)
    with bot.uow() as uow:
        uow.session.execute(text("ALTER TABLE case_events RENAME TO case_events_away"))
        uow.commit()
    try:
        reply = bot.driver.submit(view, GOOD)
    finally:
        with bot.uow() as uow:
            uow.session.execute(text("ALTER TABLE case_events_away RENAME TO case_events"))
            uow.commit()
    assert reply.status == 200 and reply.elapsed < 2.5  # the ack stands: not "unhandled"
    assert "could not be saved" in reply.json()["errors"]["case_number"]
    assert count_cases(bot) == 0 and fake.calls_to("chat.postMessage")[-1]["channel"] == "U0AGENT01"
    assert "Something went wrong on our side" in fake.dms("U0AGENT01")[-1]["text"]
