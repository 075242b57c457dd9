"""Resolving a case, reopening it, and archiving its incident channel after resolution."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from click.testing import CliRunner

from bot.cli import main
from bot.gateway import web_client
from storage.domain import CaseStatus
from tests.conftest import BOT_TOKEN, TEST_CONFIG, RunningBot
from tests.fakeslack import FakeSlack
from tests.scenario import (
    FILER,
    LEAD,
    RecordingTimers,
    answer,
    cards,
    case_of,
    escalate,
    filed,
    kinds,
)
from workflows.announcements import deliver_owed
from workflows.resolution import archive_resolved_incidents
from workflows.services import Services


def archive(bot: RunningBot) -> int:
    slack = bot.swarm.slack(web_client(BOT_TOKEN, bot.swarm.settings.slack_api_url))
    return archive_resolved_incidents(Services(bot.uow, bot.config, slack, bot.swarm.clock))


def test_the_filer_resolves_with_text_and_the_card_thread_and_room_show_it(
    bot: RunningBot, fake: FakeSlack
) -> None:
    case = filed(bot, fake)
    escalate(bot, fake)
    room_id = case_of(bot).incident_channel_id
    assert room_id is not None
    timers = RecordingTimers()
    bot.swarm.timers = timers
    bot.driver.command("resolve 27343 Restarted the <!channel> EU gateway", user=FILER)
    assert answer(fake) == "Case 27343 resolved."
    after = case_of(bot)
    assert after.status is CaseStatus.RESOLVED and after.resolved_by == FILER
    assert after.resolution == "Restarted the <!channel> EU gateway"
    assert after.resolved_at == bot.swarm.clock.now()
    said = "Restarted the &lt;!channel&gt; EU gateway"
    assert said in fake.thread("C0API0001", case.thread_ts)[-1]["text"]
    assert said in fake.messages(room_id)[-1]["text"]
    assert "archived in 7d" in fake.messages(room_id)[-1]["text"]
    [card] = cards(fake, "C0API0001")
    blocks = str(card["blocks"])
    assert "Resolved" in blocks and said in blocks and "case-escalate" not in blocks
    assert timers.changed == [case.id]
    assert kinds(bot, case)[-1] == "resolved"
    assert fake.dms(FILER) == [] or all("resolved by" not in m["text"] for m in fake.dms(FILER))


def test_resolution_posts_slack_would_not_take_are_sent_later_once(
    bot: RunningBot, fake: FakeSlack
) -> None:
    case = filed(bot, fake)
    escalate(bot, fake)
    room_id = case_of(bot).incident_channel_id
    fake.inject("chat.postMessage", error="internal_error", times=None)
    bot.driver.command("resolve 27343 Rolled back the deploy", user=LEAD)
    assert case_of(bot).status is CaseStatus.RESOLVED  # stored first, whatever Slack says
    assert not any("Rolled back" in m["text"] for m in fake.messages(room_id))
    fake.reset_faults()
    bot.swarm.clock.advance(minutes=1)  # each post backs off after its failure
    # The leader's posts:retry sweep (every minute, and at start after a restart).
    slack = bot.swarm.slack(web_client(BOT_TOKEN, bot.swarm.settings.slack_api_url))
    assert deliver_owed(Services(bot.uow, bot.config, slack, bot.swarm.clock)) == 3
    assert deliver_owed(Services(bot.uow, bot.config, slack, bot.swarm.clock)) == 0
    thread = [m for m in fake.thread("C0API0001", case.thread_ts) if "Rolled back" in m["text"]]
    room = [m for m in fake.messages(room_id) if "Rolled back" in m["text"]]
    told = [m for m in fake.dms(FILER) if "was resolved by" in m["text"]]
    assert len(thread) == len(room) == len(told) == 1


def test_a_post_slack_refuses_for_good_is_given_up_not_retried(
    bot: RunningBot, fake: FakeSlack
) -> None:
    filed(bot, fake)
    escalate(bot, fake)
    room_id = case_of(bot).incident_channel_id
    fake.inject("chat.postMessage", error="is_archived", when=lambda p: p["channel"] == room_id)
    bot.driver.command("resolve 27343 Fixed", user=LEAD)
    slack = bot.swarm.slack(web_client(BOT_TOKEN, bot.swarm.settings.slack_api_url))
    assert deliver_owed(Services(bot.uow, bot.config, slack, bot.swarm.clock)) == 0
    assert not any(c["channel"] == room_id for c in fake.calls_to("chat.postMessage")[-1:])


def test_a_lead_resolving_tells_the_filer(bot: RunningBot, fake: FakeSlack) -> None:
    filed(bot, fake)
    bot.driver.command("resolve 27343 Fixed upstream", user=LEAD)
    assert any(f"resolved by <@{LEAD}>" in m["text"] for m in fake.dms(FILER))


def test_strangers_cannot_resolve_or_reopen(bot: RunningBot, fake: FakeSlack) -> None:
    filed(bot, fake)
    bot.driver.command("resolve 27343 nope", user="U0AGENT02")
    assert "Only the filer, the assignee, the swarm" in answer(fake)
    assert case_of(bot).status is CaseStatus.OPEN
    bot.driver.command("resolve 27343 done", user=FILER)
    bot.driver.command("reopen 27343", user="U0AGENT02")
    assert "Only the filer" in answer(fake)
    assert case_of(bot).status is CaseStatus.RESOLVED


def test_resolve_without_text_opens_the_modal_which_checks_the_link(
    bot: RunningBot, fake: FakeSlack
) -> None:
    filed(bot, fake)
    bot.driver.command("resolve 27343", user=FILER)
    view = fake.opened_views()[-1]
    assert view["callback_id"] == "swarm-resolve"
    assert {b.get("block_id") for b in view["blocks"]} >= {
        "resolution",
        "root_cause",
        "workaround",
        "kb_link",
    }
    reply = bot.driver.submit(
        view, {"resolution": "Rotated the cert", "kb_link": "javascript:alert(1)"}, user=FILER
    )
    assert reply.json()["response_action"] == "errors"
    assert "kb_link" in reply.json()["errors"]
    assert case_of(bot).status is CaseStatus.OPEN
    reply = bot.driver.submit(
        view,
        {
            "resolution": "Rotated the cert",
            "root_cause": "Expired TLS certificate",
            "workaround": "Pin the old endpoint",
            "kb_link": "https://kb.example.com/articles/42",
        },
        user=FILER,
    )
    assert reply.status == 200 and reply.body == ""
    after = case_of(bot)
    assert after.status is CaseStatus.RESOLVED
    assert (after.root_cause, after.workaround, after.kb_link) == (
        "Expired TLS certificate",
        "Pin the old endpoint",
        "https://kb.example.com/articles/42",
    )
    posted = fake.thread("C0API0001", after.thread_ts)[-1]["text"]
    assert "*Root cause:* Expired TLS certificate" in posted
    assert "<https://kb.example.com/articles/42>" in posted
    # The same submission again does not resolve twice.
    bot.driver.submit(view, {"resolution": "Rotated the cert"}, user=FILER)
    assert kinds(bot, after).count("resolved") == 1


def test_the_resolve_button_opens_the_modal_for_the_swarm_only(
    bot: RunningBot, fake: FakeSlack
) -> None:
    case = filed(bot, fake)
    bot.driver.click("case-resolve", str(case.id), user="U0AGENT02")
    assert "Only the filer" in str(fake.opened_views()[-1]["blocks"])
    bot.driver.click("case-resolve", str(case.id), user=LEAD)
    assert fake.opened_views()[-1]["callback_id"] == "swarm-resolve"
    bot.driver.submit(fake.opened_views()[-1], {"resolution": "Config fix"}, user=LEAD)
    assert case_of(bot).resolution == "Config fix"


def test_the_incident_channel_is_archived_once_archive_after_has_passed(
    bot: RunningBot, fake: FakeSlack, clock
) -> None:
    filed(bot, fake)
    escalate(bot, fake)
    room_id = case_of(bot).incident_channel_id
    assert room_id is not None
    bot.driver.command("resolve 27343 Fixed", user=LEAD)
    clock.advance(days=6, hours=23)
    assert archive(bot) == 0 and not fake.channel(room_id)["is_archived"]
    clock.advance(hours=1)
    assert archive(bot) == 1 and fake.channel(room_id)["is_archived"]
    assert archive(bot) == 0  # idempotent
    assert case_of(bot).incident_archived_at == clock.now()
    assert len(fake.calls_to("conversations.archive")) == 1


def test_a_channel_archived_by_hand_counts_as_archived(
    bot: RunningBot, fake: FakeSlack, clock
) -> None:
    filed(bot, fake)
    escalate(bot, fake)
    bot.driver.command("resolve 27343 Fixed", user=LEAD)
    fake.inject("conversations.archive", error="already_archived")
    clock.advance(days=8)
    assert archive(bot) == 1
    assert case_of(bot).incident_archived_at is not None


def test_a_slack_failure_while_archiving_is_retried_next_run(
    bot: RunningBot, fake: FakeSlack, clock
) -> None:
    filed(bot, fake)
    escalate(bot, fake)
    bot.driver.command("resolve 27343 Fixed", user=LEAD)
    clock.advance(days=8)
    fake.inject("conversations.archive", status=500, times=4)
    assert archive(bot) == 0 and case_of(bot).incident_archived_at is None
    assert archive(bot) == 1


def test_reopening_unarchives_the_room_and_puts_the_case_back(
    bot: RunningBot, fake: FakeSlack, clock
) -> None:
    case = filed(bot, fake)
    escalate(bot, fake)
    room_id = case_of(bot).incident_channel_id
    assert room_id is not None
    bot.driver.command("resolve 27343 Fixed", user=LEAD)
    clock.advance(days=8)
    archive(bot)
    timers = RecordingTimers()
    bot.swarm.timers = timers
    bot.driver.command("reopen 27343", user=FILER)
    assert answer(fake) == "Case 27343 reopened (escalated)."
    after = case_of(bot)
    assert after.status is CaseStatus.ESCALATED and after.resolved_at is None
    assert after.resolution_due == clock.now() + timedelta(days=1)  # high: a fresh 1d target
    assert after.incident_archived_at is None
    assert not fake.channel(room_id)["is_archived"]
    assert "reopened" in fake.messages(room_id)[-1]["text"]
    assert "reopened" in fake.thread("C0API0001", case.thread_ts)[-1]["text"]
    assert "case-escalate" in str(cards(fake, "C0API0001")[0]["blocks"])
    assert timers.changed == [case.id]
    assert {"reopened", "incident_unarchived"} <= set(kinds(bot, case))
    # A reopened case is not archived by the next run.
    clock.advance(days=30)
    assert archive(bot) == 0


def test_reopening_a_case_never_escalated_returns_it_to_the_swarm(
    bot: RunningBot, fake: FakeSlack
) -> None:
    filed(bot, fake)
    bot.driver.command("reopen 27343", user=FILER)
    assert "is not resolved" in answer(fake)
    bot.driver.command("resolve 27343 Fixed", user=FILER)
    bot.driver.command("reopen 27343", user=FILER)
    assert case_of(bot).status is CaseStatus.SWARMING
    assert fake.calls_to("conversations.unarchive") == []


def test_swarmbot_archive_incidents_runs_the_archiving(
    bot: RunningBot, fake: FakeSlack, db_url: str, tmp_path: Path
) -> None:
    filed(bot, fake)
    escalate(bot, fake)
    bot.driver.command("resolve 27343 Fixed", user=LEAD)
    room_id = case_of(bot).incident_channel_id
    with bot.uow() as uow:
        case = uow.cases.by_number(team_id="T111", case_number="27343")
        assert case is not None and case.resolved_at is not None
        case.resolved_at -= timedelta(days=8)
        uow.commit()
    config = tmp_path / "swarm.yaml"
    config.write_text(TEST_CONFIG)
    env = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_API_URL": fake.url,
        "DATABASE_URL": db_url,
        "SWARM_CONFIG": str(config),
    }
    result = CliRunner().invoke(main, ["archive-incidents"], env=env)
    assert result.exit_code == 0, result.output
    assert "archived 1 incident channel(s)" in result.output
    assert fake.channel(room_id)["is_archived"]
