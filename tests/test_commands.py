"""`/swarm help|status|route|lead|expert` and usage lines."""

from __future__ import annotations

import pytest

from bot.command_parser import SUBCOMMANDS, UsageError, help_text, parse
from bot.listeners.commands import HANDLERS
from tests.conftest import RunningBot
from tests.fakeslack import FakeSlack
from tests.scenario import cards, file


def answer(fake: FakeSlack) -> dict:
    return fake.responses()[-1]["body"]


def test_help_is_the_parsers_table_with_meaning_and_who_may(bot: RunningBot) -> None:
    reply = bot.driver.command("help")
    assert reply.status == 200
    text = reply.json()["text"]
    answered = {"new", *HANDLERS}
    for name, row in SUBCOMMANDS.items():
        shown = f"`/swarm {name}"
        if name in answered:
            assert text.count(shown) == 1, name  # once: `new` was listed twice
            line = next(line for line in text.splitlines() if shown in line)
            assert row.does in line and f"_({row.who})_" in line, line
        elif name != "help":
            assert shown not in text, name  # not advertised before it is answered
    assert "status:open|swarming|escalated|resolved" in text
    assert "_(admins)_" in text and "leads of the case's topic, admins" in text
    for button in ("*Join*", "*Claim*", "*Escalate*", "*Resolve*"):
        assert button in text
    assert bot.driver.command("").json()["text"] == text


def test_help_lists_a_subcommand_as_soon_as_it_is_answered() -> None:
    assert "`/swarm stats" in help_text({"stats"})
    assert "`/swarm stats" not in help_text({"status"})


def test_unknown_subcommands_and_bad_arguments_get_a_usage_line(bot: RunningBot) -> None:
    assert "Unknown subcommand `dance`" in bot.driver.command("dance").json()["text"]
    assert "Usage: `/swarm assign <case> @user`" in bot.driver.command("assign 1").json()["text"]
    assert "is not a severity" in bot.driver.command("escalate 27343 sev9").json()["text"]


def test_status_of_one_case(bot: RunningBot, fake: FakeSlack) -> None:
    file(bot, fake)
    bot.driver.command("status 27343")
    body = answer(fake)
    assert body["response_type"] == "ephemeral"
    assert "27343" in body["text"] and "Webhooks time out" in body["text"]
    assert "https://fake.slack.com/archives/C0API0001" in body["text"]


def test_status_of_an_unknown_case(bot: RunningBot, fake: FakeSlack) -> None:
    bot.driver.command("status 99999")
    assert "No case 99999" in answer(fake)["text"]


def test_status_lists_this_channels_open_queue_oldest_first(
    bot: RunningBot, fake: FakeSlack, clock
) -> None:
    file(bot, fake)
    clock.advance(minutes=5)
    file(bot, fake, {"case_number": "27344", "summary": "Second"})
    file(bot, fake, {"case_number": "27345", "topic": "billing", "summary": "Elsewhere"})
    bot.driver.command("status", channel="C0API0001")
    text = answer(fake)["text"]
    assert "2 open cases" in text and "oldest waiting 5m" in text
    assert text.index("27343") < text.index("27344") and "27345" not in text
    bot.driver.command("status", channel="C0OTHER01")
    assert "No open cases" in answer(fake)["text"]


def test_route_by_a_lead_moves_new_cases_and_is_persisted(bot: RunningBot, fake: FakeSlack) -> None:
    bot.driver.command("route api", user="U0LEAD001", channel="C0OTHER01")
    body = answer(fake)
    assert body["response_type"] == "in_channel"
    assert "<#C0OTHER01>" in body["text"] and "<#C0API0001>" in body["text"]
    file(bot, fake)
    assert len(cards(fake, "C0OTHER01")) == 1 and cards(fake, "C0API0001") == []
    with bot.uow() as uow:
        route = uow.routing.route(team_id="T111", topic_key="api")
        assert route is not None and route.set_by == "U0LEAD001"


def test_route_a_region(bot: RunningBot, fake: FakeSlack) -> None:
    bot.driver.command("route api emea", user="U0LEAD001", channel="C0OTHER01")
    file(bot, fake, {"region": "emea"})
    file(bot, fake, {"case_number": "27344", "region": "amer"})
    assert len(cards(fake, "C0OTHER01")) == 1 and len(cards(fake, "C0API0001")) == 1


def test_route_is_refused_to_non_leads_and_changes_nothing(
    bot: RunningBot, fake: FakeSlack
) -> None:
    bot.driver.command("route api", user="U0AGENT01", channel="C0OTHER01")
    assert "Only swarm leads" in answer(fake)["text"]
    bot.driver.command("route api", user="U0LEAD002", channel="C0OTHER01")  # billing's lead
    assert "Only swarm leads" in answer(fake)["text"]
    with bot.uow() as uow:
        assert uow.routing.routes(team_id="T111") == []


def test_workspace_admins_count_as_leads(bot: RunningBot, fake: FakeSlack) -> None:
    bot.driver.command("route billing", user="U0ADMIN01", channel="C0OTHER01")
    assert "made <#C0OTHER01> the swarm channel" in answer(fake)["text"]


def test_route_rejects_unknown_topics_and_regions(bot: RunningBot, fake: FakeSlack) -> None:
    bot.driver.command("route nope", user="U0LEAD001")
    assert "Unknown topic `nope`" in answer(fake)["text"]
    bot.driver.command("route api mars", user="U0LEAD001")
    assert "no region `mars`" in answer(fake)["text"]


def test_leads_and_experts_are_named_at_run_time(bot: RunningBot, fake: FakeSlack) -> None:
    bot.driver.command("lead <@U0AGENT02|a2> billing", user="U0LEAD001")
    assert "Only workspace admins" in answer(fake)["text"]
    bot.driver.command("lead <@U0AGENT02|a2> billing", user="U0ADMIN01")
    assert "now a lead of topic `billing`" in answer(fake)["text"]
    bot.driver.command("route billing", user="U0AGENT02", channel="C0OTHER01")
    assert "made <#C0OTHER01>" in answer(fake)["text"]
    bot.driver.command("expert <@U0AGENT01> billing", user="U0AGENT02")
    assert "now an expert of topic `billing`" in answer(fake)["text"]


def test_parse() -> None:
    assert parse("").name == "help"
    assert parse("new").case_number is None
    assert parse("escalate 27343 sev2").severity == 2
    assert parse("escalate 27343 3").severity == 3
    assert parse("assign 27343 <@U0EXP0001|expert>").user_id == "U0EXP0001"
    cmd = parse('search "time out" topic:api status:open sev:1 after:2026-01-01')
    assert cmd.text == "time out" and cmd.filters == {
        "topic": "api",
        "status": "open",
        "sev": "1",
        "after": "2026-01-01",
    }
    assert parse("resolve 27343 fixed the & thing").text == "fixed the & thing"
    assert parse("stats 7d api").period == "7d"
    assert parse("stats api").period == "7d" and parse("stats all").topic is None
    with pytest.raises(UsageError, match="not a period"):
        parse("stats 14d")
    with pytest.raises(UsageError):
        parse("sev 27343")
    with pytest.raises(UsageError):
        parse("assign 27343 bob")
