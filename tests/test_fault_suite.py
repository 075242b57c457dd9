"""The fault suite: Slack down for a while and back, and 429 storms, on both databases.

Each scenario drives the app through signed requests while the fake Slack fails, then lets
the leader's sweeps run as they would once Slack answers again, and checks that every card,
thread post, invite, DM and card update landed exactly once. The client retries once here
(SLACK_RETRIES=1) to keep the suite fast; Retry-After is 1 s.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from bot.gateway import web_client
from scheduling.sweeps import SWEEPS, Runtime
from storage.domain import CaseStatus
from tests.conftest import BOT_TOKEN, RunningBot
from tests.fakeslack import FakeSlack
from tests.scenario import FILER, GOOD, LEAD, cards, case_of, file, filed, open_modal

EXPERT = "U0EXP0001"
BILLING_LEAD = "U0LEAD002"


@pytest.fixture
def bot_settings() -> dict[str, Any]:
    return {"slack_retries": 1}


def leader_runs_its_sweeps(bot: RunningBot, rounds: int = 3) -> None:
    """What the leader does at start and then every minute: every at-start sweep, a few times
    (the clock moves past each post's backoff in between)."""
    runtime = Runtime(
        bot.swarm, web_client(BOT_TOKEN, bot.swarm.settings.slack_api_url), scheduler=None
    )  # type: ignore[arg-type]
    for _ in range(rounds):
        bot.swarm.clock.advance(minutes=20)
        for sweep in SWEEPS:
            if sweep.at_start:
                sweep.run(runtime)


def thread_texts(fake: FakeSlack, channel: str, ts: str | None, words: str) -> list[str]:
    assert ts is not None
    return [m["text"] for m in fake.thread(channel, ts)[1:] if words in m["text"]]


def card_of(fake: FakeSlack, channel: str, number: str) -> dict:
    [card] = [c for c in cards(fake, channel) if f"{number}" in c.get("text", "")]
    return card


def test_slack_down_for_a_while_then_back_every_message_lands_exactly_once(
    bot: RunningBot, fake: FakeSlack
) -> None:
    swarmed = filed(bot, fake)  # 27343, API
    file(bot, fake, {"case_number": "27344", "topic": "billing"})
    billing = case_of(bot, "27344")
    view = open_modal(bot, fake)  # the filer has the form open when Slack goes down
    # Who may see the two channels is remembered from before the outage (access checks ask
    # Slack; what they learnt stays valid for two minutes).
    for number in ("27343", "27344"):
        bot.driver.command(f"status {number}", user=BILLING_LEAD)

    fake.outage(600, status=503)
    bot.driver.submit(view, {**GOOD, "case_number": "27345", "summary": "Exports fail"})
    bot.driver.click("case-claim", str(swarmed.id), user=EXPERT)
    bot.driver.command("resolve 27344 Refunded twice by mistake; reversed", user=BILLING_LEAD)
    bot.driver.command("escalate 27343 sev2", user=LEAD)
    assert case_of(bot, "27345").thread_ts is None  # stored, not lost
    assert case_of(bot, "27344").status is CaseStatus.RESOLVED
    assert case_of(bot).assignee_id == EXPERT

    fake.reset_faults()  # Slack is back
    leader_runs_its_sweeps(bot)

    # Cards: one each.
    assert len(cards(fake, "C0API0001")) == 2 and len(cards(fake, "C0BILL001")) == 1
    late = case_of(bot, "27345")
    assert late.thread_ts == card_of(fake, "C0API0001", "27345")["ts"]
    assert len([m for m in fake.dms(FILER) if "27345" in m["text"]]) == 1  # the filer is told
    # Thread posts and DMs: one each.
    assert len(thread_texts(fake, "C0API0001", swarmed.thread_ts, "claimed this case")) == 1
    assert len(thread_texts(fake, "C0BILL001", billing.thread_ts, "resolved case 27344")) == 1
    assert len([m for m in fake.dms(FILER) if "27344 was resolved by" in m["text"]]) == 1
    # The escalation: one channel, its people invited once, linked in the thread once.
    escalated = case_of(bot)
    assert escalated.status is CaseStatus.ESCALATED and escalated.incident_channel_id
    assert len(fake.calls_to("conversations.create")) >= 1
    assert fake.channel_by_name("help-api-sev2-27343") is not None
    assert fake.channel_by_name("help-api-sev2-27343-2") is None
    assert len(thread_texts(fake, "C0API0001", swarmed.thread_ts, "escalated this case")) == 1
    members = fake.channel(escalated.incident_channel_id)["members"]
    assert {FILER, EXPERT, LEAD} <= set(members)
    # Card updates: each card shows where its case is now.
    api_card = str(card_of(fake, "C0API0001", "27343")["blocks"])
    assert f"<@{EXPERT}>" in api_card and "Escalated" in api_card
    assert "Resolved" in str(card_of(fake, "C0BILL001", "27344")["blocks"])
    # And nothing more goes out on the next runs.
    calls = len(fake.calls_to("chat.postMessage"))
    leader_runs_its_sweeps(bot, rounds=1)
    assert len(fake.calls_to("chat.postMessage")) == calls


def test_a_429_storm_is_waited_out_as_slack_asks_and_everything_lands_once(
    bot: RunningBot, fake: FakeSlack
) -> None:
    # Every method answers 429 (Retry-After: 1) to its first call.
    for method in ("chat.postMessage", "chat.getPermalink", "chat.update", "views.open"):
        fake.inject(method, status=429, retry_after=1, times=1)
    case = filed(bot, fake)
    bot.driver.click("case-join", str(case.id), user=EXPERT)
    bot.driver.command("resolve 27343 Fixed upstream", user=LEAD)
    for method in ("chat.postMessage", "chat.getPermalink", "chat.update", "views.open"):
        times = [c.at for c in fake.calls if c.method == method]
        assert len(times) >= 2 and times[1] - times[0] >= 1.0, method  # Retry-After honoured
    assert len(cards(fake, "C0API0001")) == 1
    assert len(thread_texts(fake, "C0API0001", case.thread_ts, "resolved case 27343")) == 1
    assert len([m for m in fake.dms(FILER) if "resolved by" in m["text"]]) == 1
    assert "Resolved" in str(cards(fake, "C0API0001")[0]["blocks"])
    started = time.monotonic()
    leader_runs_its_sweeps(bot, rounds=1)
    assert time.monotonic() - started < 5
    assert len(thread_texts(fake, "C0API0001", case.thread_ts, "resolved case 27343")) == 1
