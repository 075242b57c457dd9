"""App Home and `/swarm stats` through the app: a lead runs the queue from Home with the same
workflows and checks as the commands; pages, private cases, refresh after changes."""

from __future__ import annotations

import copy
import json
import time
import uuid
from datetime import timedelta

import pytest

from bot.ids import HOME_CASE_BLOCK, Action
from scheduling.sweeps import Runtime, refresh_homes
from storage.domain import CaseStatus, Urgency
from storage.models import Case
from tests.conftest import TEAM, FakeClock, RunningBot
from tests.fakeslack import FakeSlack
from tests.scenario import LEAD, case_of, fake_client, file
from tests.slackdriver import payload

EXPERT = "U0EXP0001"
pytestmark = pytest.mark.usefixtures("no_slack_call_inside_a_transaction")


def open_home(bot: RunningBot, fake: FakeSlack, user: str) -> dict:
    """The user opens the Home tab; the view Slack now shows them."""
    event = {
        "type": "app_home_opened",
        "user": user,
        "channel": f"D{user}",
        "tab": "home",
        "event_ts": f"{time.time():.6f}",
    }
    assert bot.driver.event(event).status == 200
    return fake.views[f"home:{user}"]


def home_action(bot: RunningBot, fake: FakeSlack, user: str, action: dict) -> None:
    """A click on the user's Home view, as Slack sends it (no channel, no response_url)."""
    view = fake.views[f"home:{user}"]
    body = payload("block_actions.json")
    body["team"]["id"] = TEAM
    body["user"].update(id=user, team_id=TEAM)
    body.pop("channel", None)
    body.pop("response_url", None)
    body["container"] = {"type": "view", "view_id": view["id"]}
    body["view"] = copy.deepcopy(view)
    body["actions"] = [{"action_ts": f"{time.time():.6f}", **action}]
    body["trigger_id"] = f"{uuid.uuid4().hex[:8]}.trigger"
    assert bot.driver.interactive(body).status == 200


def click(bot: RunningBot, fake: FakeSlack, user: str, action_id: str, case: Case) -> None:
    home_action(
        bot,
        fake,
        user,
        {
            "type": "button",
            "action_id": action_id,
            "value": str(case.id),
            "block_id": f"{HOME_CASE_BLOCK}{case.id}",
        },
    )


def text_of(view: dict) -> str:
    return json.dumps(view["blocks"], ensure_ascii=False)


def publishes(fake: FakeSlack, user: str) -> list[dict]:
    return [c for c in fake.calls_to("views.publish") if c.get("user_id") == user]


def file_at(bot: RunningBot, fake: FakeSlack, clock: FakeClock, number: str, **values: str) -> Case:
    file(bot, fake, {"case_number": number, "summary": f"Case {number} summary", **values})
    return case_of(bot, number)


def test_a_lead_sees_the_queue_of_their_topics_oldest_first_with_sla_states(
    bot: RunningBot, fake: FakeSlack, clock: FakeClock
) -> None:
    oldest = file_at(bot, fake, clock, "1001", urgency="high")  # first response due in 1h
    clock.advance(minutes=10)
    file_at(bot, fake, clock, "1002", urgency="critical")  # due in 15m
    file_at(bot, fake, clock, "2001", topic="billing")
    clock.advance(minutes=45)  # 1001: 55m of 60 (at risk); 1002: 45m of 15 (breached)
    started = time.perf_counter()
    view = open_home(bot, fake, LEAD)
    assert time.perf_counter() - started < 3
    text = text_of(view)
    assert view["type"] == "home" and len(view["blocks"]) <= 100
    assert text.index("1001") < text.index("1002") and "2001" not in text  # api only
    assert "Open queue of api*: 2 cases" in text
    assert ":warning: at risk (first response due in 5m)" in text
    assert ":red_circle: breached (first response breached 30m ago)" in text
    assert "waiting 55m" in text and "unassigned" in text and "Swarming" not in text
    assert oldest.permalink and oldest.permalink in text  # linked to its thread
    assert "Last 7 days" in text and "Cases filed" in text
    actions = [b for b in view["blocks"] if b.get("block_id") == f"{HOME_CASE_BLOCK}{oldest.id}"]
    assert [e["action_id"] for e in actions[0]["elements"]] == [
        Action.HOME_CLAIM,
        Action.HOME_ASSIGN,
        Action.HOME_ESCALATE,
    ]


def test_everyone_sees_their_own_cases_and_the_week_but_no_queue(
    bot: RunningBot, fake: FakeSlack, clock: FakeClock
) -> None:
    file_at(bot, fake, clock, "1001")
    view = open_home(bot, fake, "U0AGENT01")  # the filer, no lead
    text = text_of(view)
    assert "Open queue of" not in text and Action.HOME_CLAIM not in text
    assert "My cases*: 1 open" in text and "1001" in text
    assert "Last 7 days" in text
    assert "My cases*: 0 open" in text_of(open_home(bot, fake, "U0EXP0002"))


def test_claim_and_assign_from_home_go_through_the_same_checks_as_the_commands(
    bot: RunningBot, fake: FakeSlack, clock: FakeClock
) -> None:
    case = file_at(bot, fake, clock, "1001")
    open_home(bot, fake, LEAD)
    click(bot, fake, LEAD, Action.HOME_CLAIM, case)
    assert case_of(bot, "1001").assignee_id == LEAD
    view = fake.views[f"home:{LEAD}"]
    assert "Case 1001 is yours now." in text_of(view) and f"<@{LEAD}>" in text_of(view)
    assert any("claimed this case" in m["text"] for m in fake.messages(case.channel_id))
    # An expert cannot take the case from its assignee, from Home either.
    open_home(bot, fake, EXPERT)
    click(bot, fake, EXPERT, Action.HOME_CLAIM, case)
    assert case_of(bot, "1001").assignee_id == LEAD
    assert "take case 1001 from" in text_of(fake.views[f"home:{EXPERT}"])
    # Assigning to someone else is for leads.
    home_action(
        bot,
        fake,
        EXPERT,
        {
            "type": "users_select",
            "action_id": Action.HOME_ASSIGN,
            "block_id": f"{HOME_CASE_BLOCK}{case.id}",
            "selected_user": "U0EXP0002",
        },
    )
    assert case_of(bot, "1001").assignee_id == LEAD
    home_action(
        bot,
        fake,
        LEAD,
        {
            "type": "users_select",
            "action_id": Action.HOME_ASSIGN,
            "block_id": f"{HOME_CASE_BLOCK}{case.id}",
            "selected_user": "U0EXP0002",
        },
    )
    assert case_of(bot, "1001").assignee_id == "U0EXP0002"
    assert "assigned to <@U0EXP0002>" in text_of(fake.views[f"home:{LEAD}"])


def test_escalate_from_home_opens_the_escalation_form_for_leads_only(
    bot: RunningBot, fake: FakeSlack, clock: FakeClock
) -> None:
    case = file_at(bot, fake, clock, "1001")
    open_home(bot, fake, EXPERT)
    click(bot, fake, EXPERT, Action.HOME_ESCALATE, case)
    assert all(v.get("callback_id") != "swarm-escalate" for v in fake.opened_views())
    # The modal opens at once (a trigger lives 3 s), then says why there is no form.
    assert "lead" in str(fake.opened_views()[-1]["blocks"])
    open_home(bot, fake, LEAD)
    click(bot, fake, LEAD, Action.HOME_ESCALATE, case)
    assert fake.opened_views()[-1]["callback_id"] == "swarm-escalate"


def seed_open_cases(bot: RunningBot, clock: FakeClock, count: int, **values) -> None:  # type: ignore[no-untyped-def]
    start = clock.now() - timedelta(days=2)
    with bot.uow() as uow:
        uow.cases.ensure_workspace(team_id=TEAM)
        for n in range(count):
            filed = start + timedelta(minutes=n)
            uow.cases.add(
                Case(
                    team_id=TEAM,
                    case_number=str(60000 + n),
                    summary=f"Seeded case {n} <!channel>",
                    urgency=Urgency.MEDIUM,
                    topic_key="api",
                    status=CaseStatus.OPEN,
                    filer_id="U0AGENT02",
                    channel_id="C0API0001",
                    created_at=filed,
                    updated_at=filed,
                    first_response_due=filed + timedelta(hours=4),
                    resolution_due=filed + timedelta(days=3),
                    **values,
                )
            )
        uow.commit()


def test_a_queue_of_500_cases_is_paged_within_slacks_100_blocks(
    bot: RunningBot, fake: FakeSlack, clock: FakeClock
) -> None:
    seed_open_cases(bot, clock, 500)
    view = open_home(bot, fake, LEAD)
    text = text_of(view)
    assert len(view["blocks"]) <= 100
    assert "500 cases" in text and "Page 1 of 25: cases 1–20 of 500" in text
    assert "60000" in text and "60020" not in text
    assert "&lt;!channel&gt;" in text and "<!channel>" not in text
    home_action(
        bot, fake, LEAD, {"type": "button", "action_id": Action.HOME_PAGE_NEXT, "value": "1"}
    )
    text = text_of(fake.views[f"home:{LEAD}"])
    assert "Page 2 of 25: cases 21–40 of 500" in text and "60020" in text and "60019" not in text
    home_action(
        bot, fake, LEAD, {"type": "button", "action_id": Action.HOME_PAGE_NEXT, "value": "24"}
    )
    last = fake.views[f"home:{LEAD}"]
    assert "Page 25 of 25: cases 481–500" in text_of(last) and len(last["blocks"]) <= 100
    assert Action.HOME_PAGE_NEXT not in text_of(last)
    assert all(c.get("error") is None for c in fake.calls_to("views.publish"))


def test_cases_of_a_private_channel_show_only_to_its_members(
    bot: RunningBot, fake: FakeSlack, clock: FakeClock
) -> None:
    members = [fake.bot_user_id, "U0EXP0002", "U0ADMIN01"]
    fake.add_channel("C0SECRET1", "help-api-sev1-1", is_private=True, members=members)
    seed_open_cases(bot, clock, 1, incident_channel_id="C0SECRET1")
    file_at(bot, fake, clock, "1001")
    text = text_of(open_home(bot, fake, LEAD))
    assert "60000" not in text and "1001" in text
    text = text_of(open_home(bot, fake, "U0ADMIN01"))  # an admin leads every topic
    assert "60000" in text and "1001" in text


def test_an_open_home_is_refreshed_once_per_burst_of_changes(
    bot: RunningBot, fake: FakeSlack, clock: FakeClock
) -> None:
    case = file_at(bot, fake, clock, "1001")
    runtime = Runtime(bot.swarm, fake_client(fake), scheduler=None)  # type: ignore[arg-type]
    refresh_homes(runtime)  # starts reading the timeline from now
    open_home(bot, fake, LEAD)
    open_home(bot, fake, "U0EXP0002")  # no lead, not in this case's swarm
    assert publishes(fake, LEAD)
    bot.driver.command("claim 1001", user=EXPERT)
    bot.driver.command("urgency 1001 critical", user=LEAD)
    bot.driver.click(Action.JOIN, str(case.id), user="U0AGENT02")
    before = len(fake.calls_to("views.publish"))
    shown_hash = fake.views[f"home:{LEAD}"]["hash"]
    refresh_homes(runtime)
    refreshed = fake.calls_to("views.publish")[before:]
    assert [c["user_id"] for c in refreshed] == [LEAD]  # once, and only for who shows it
    assert refreshed[0]["hash"] == shown_hash  # never over a view newer than the one built on
    text = text_of(fake.views[f"home:{LEAD}"])
    assert f"<@{EXPERT}>" in text and "critical" in text
    refresh_homes(runtime)
    assert len(fake.calls_to("views.publish")) == before + 1  # nothing new, nothing sent


def test_a_home_built_on_a_stale_hash_is_built_again(
    bot: RunningBot, fake: FakeSlack, clock: FakeClock
) -> None:
    file_at(bot, fake, clock, "1001")
    open_home(bot, fake, LEAD)
    # Another process published meanwhile: the stored hash is stale now.
    fake_client(fake).views_publish(
        user_id=LEAD, view={"type": "home", "blocks": []}, hash=fake.views[f"home:{LEAD}"]["hash"]
    )
    bot.driver.command("claim 1001", user=LEAD)
    runtime = Runtime(bot.swarm, fake_client(fake), scheduler=None)  # type: ignore[arg-type]
    from bot.listeners.home import publish_home

    assert publish_home(bot.swarm, runtime.client, team_id=TEAM, user_id=LEAD)
    assert "1001" in text_of(fake.views[f"home:{LEAD}"])
    del runtime


# -- /swarm stats ----------------------------------------------------------------------------
def stats_answer(bot: RunningBot, fake: FakeSlack, text: str, user: str) -> dict:
    assert bot.driver.command(text, user=user).status == 200
    return fake.responses()[-1]["body"]


def test_swarm_stats_answers_every_figure_and_per_person_for_leads_only(
    bot: RunningBot, fake: FakeSlack, clock: FakeClock
) -> None:
    case = file_at(bot, fake, clock, "1001", urgency="high")
    clock.advance(minutes=12, seconds=7)
    bot.driver.command("claim 1001", user=EXPERT)
    bot.driver.command("resolve 1001 restarted the gateway", user=EXPERT)
    clock.advance(seconds=1)  # periods end just before the moment asked: [start, now)
    body = stats_answer(bot, fake, "stats 7d", LEAD)
    assert body["response_type"] == "ephemeral"
    blocks = json.dumps(body["blocks"], ensure_ascii=False)
    for figure in (
        "Cases filed*: 1",
        "Open queue*: 0",
        "Time to resolution (median)*: 12m 7s",
        "Same-day resolution rate*: 100.0%",
        "Resolved within SLA*: 100.0%",
        "Escalations*: 0",
        "First-swarm resolution rate*: 100.0%",
        "Per topic",
        "Per person",
        f"<@{EXPERT}>: 0 replies, 1 claims, 0 first responses, 1 resolutions",
    ):
        assert figure in blocks, figure
    assert "▲" in blocks  # against the week before, when nothing was filed
    agent = json.dumps(stats_answer(bot, fake, "stats 30d api", "U0AGENT01")["blocks"])
    assert "Per person" not in agent and "topic API" in agent
    assert "Per person" in json.dumps(stats_answer(bot, fake, "stats api", LEAD)["blocks"])
    assert "Per person" not in json.dumps(
        stats_answer(bot, fake, "stats billing", LEAD)["blocks"]  # leads api, not billing
    )
    assert "not a period" in bot.driver.command("stats 14d", user=LEAD).json()["text"]
    assert "nope" in stats_answer(bot, fake, "stats nope", LEAD)["text"]
    assert case.id
