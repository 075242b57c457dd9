"""The answer to Slack goes out at the ack, not when the listener's work is done."""

from __future__ import annotations

import time

from tests.conftest import RunningBot
from tests.fakeslack import FakeSlack
from tests.scenario import LEAD

SLOW = 2.0


def test_an_event_is_answered_before_its_listener_calls_slack(
    bot: RunningBot, fake: FakeSlack
) -> None:
    fake.inject("views.publish", delay=SLOW, times=None)
    event = {
        "type": "app_home_opened",
        "user": LEAD,
        "channel": f"D{LEAD}",
        "tab": "home",
        "event_ts": f"{time.time():.6f}",
    }
    reply = bot.driver.event(event, wait=False)
    assert reply.status == 200
    assert reply.elapsed < SLOW / 2, reply.elapsed
    bot.driver.executor.wait_idle()
    assert fake.calls_to("views.publish")


def test_a_command_is_answered_at_its_ack_while_its_slack_calls_go_on(
    bot: RunningBot, fake: FakeSlack
) -> None:
    fake.inject("views.open", delay=SLOW, times=None)
    reply = bot.driver.command("new", user=LEAD, wait=False)
    assert reply.status == 200
    assert reply.elapsed < SLOW / 2, reply.elapsed
    bot.driver.executor.wait_idle()
    assert fake.calls_to("views.open")
