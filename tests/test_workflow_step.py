"""The File a swarm case step of Workflow Builder: function_executed -> case -> card -> outputs."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from sqlalchemy import select

from storage.models import Case, CaseEvent
from tests.conftest import RunningBot
from tests.fakeslack import FakeSlack
from tests.scenario import services
from tests.slackdriver import payload
from workflows.announcements import deliver_owed
from workflows.intake import publish_pending

ROOT = Path(__file__).resolve().parent.parent
STEP = "file_swarm_case"
INPUTS = {
    "case_number": "27343",
    "urgency": "high",
    "topic": "api",
    "summary": "Webhooks time out",
    "details": "Since 09:00 every webhook to EU endpoints times out.",
    "customer": "ACME",
    "filer": "U0AGENT01",
}


def parameters() -> tuple[list[dict], list[dict]]:
    """The step's parameters as function_executed lists them, from the manifest."""
    step = yaml.safe_load((ROOT / "app.yaml").read_text())["functions"][STEP]

    def listed(section: dict) -> list[dict]:
        required = set(section.get("required", []))
        return [
            {**{k: v for k, v in p.items() if k != "is_required"}, "name": name}
            | {"is_required": name in required}
            for name, p in section["properties"].items()
        ]

    return listed(step["input_parameters"]), listed(step["output_parameters"])


def run_step(bot: RunningBot, fake: FakeSlack, inputs: dict | None = None, **kwargs) -> dict:
    """Start an execution as Slack does, deliver it, and return the execution afterwards."""
    execution_id, token = fake.start_function(STEP, required_outputs=["case_number"])
    reply = bot.driver.function_executed(
        STEP,
        {**INPUTS, **(inputs or {})},
        execution_id=execution_id,
        token=token,
        parameters=parameters(),
        **kwargs,
    )
    assert reply.status == 200
    return fake.execution(execution_id)


def cases(bot: RunningBot) -> list[Case]:
    with bot.uow() as uow:
        return list(uow.session.scalars(select(Case).order_by(Case.id)))


def cards(fake: FakeSlack, channel: str) -> list[dict]:
    return [m for m in fake.messages(channel) if m.get("blocks") and not m.get("thread_ts")]


def test_the_step_files_the_case_posts_its_card_and_completes_with_where_it_landed(
    bot: RunningBot, fake: FakeSlack
) -> None:
    execution = run_step(bot, fake)
    [case] = cases(bot)
    assert (case.case_number, case.urgency, case.topic_key, case.filer_id) == (
        "27343",
        "high",
        "api",
        "U0AGENT01",
    )
    [card] = cards(fake, "C0API0001")
    assert case.thread_ts == card["ts"] and "Webhooks time out" in str(card["blocks"])
    assert execution["state"] == "completed"
    assert execution["outputs"] == {
        "case_number": "27343",
        "case_url": "https://support.example.com/cases/27343",
        "thread_permalink": case.permalink,
    }
    [dm] = fake.dms("U0AGENT01")
    assert case.permalink in dm["text"]


def test_calls_made_for_the_step_use_the_executions_own_token(
    bot: RunningBot, fake: FakeSlack
) -> None:
    execution = run_step(bot, fake)
    step_calls = [
        c
        for c in fake.calls
        if c.method in ("chat.postMessage", "chat.getPermalink", "functions.completeSuccess")
    ]
    assert step_calls and {c.token for c in step_calls} == {execution["token"]}


def test_a_redelivered_execution_files_one_case_and_posts_one_card(
    bot: RunningBot, fake: FakeSlack
) -> None:
    execution_id, token = fake.start_function(STEP, required_outputs=["case_number"])
    for retry in (None, 1, 2):
        reply = bot.driver.function_executed(
            STEP,
            INPUTS,
            execution_id=execution_id,
            token=token,
            parameters=parameters(),
            event_id="Ev0STEP0001",
            retry_num=retry,
        )
        assert reply.status == 200
    assert len(cases(bot)) == 1
    assert len(cards(fake, "C0API0001")) == 1
    assert len(fake.dms("U0AGENT01")) == 1
    assert fake.execution(execution_id)["state"] == "completed"
    # The redeliveries tried to complete again; Slack's "already completed" is not an error.
    assert len(fake.calls_to("functions.completeSuccess")) == 3


def test_invalid_input_fails_the_step_with_one_line_naming_the_fields(
    bot: RunningBot, fake: FakeSlack
) -> None:
    execution = run_step(
        bot, fake, {"case_number": "12", "urgency": "whenever", "summary": "x" * 151}
    )
    assert execution["state"] == "failed"
    reason = execution["error"]
    assert "\n" not in reason and len(reason) <= 300
    for field in ("case_number", "urgency", "summary"):
        assert field in reason
    assert cases(bot) == [] and cards(fake, "C0API0001") == []


def test_an_unknown_topic_or_a_region_the_topic_lacks_fails_the_step(
    bot: RunningBot, fake: FakeSlack
) -> None:
    assert "topic" in run_step(bot, fake, {"topic": "nope"})["error"]
    assert "region" in run_step(bot, fake, {"topic": "billing", "region": "emea"})["error"]
    assert cases(bot) == []


def test_a_region_routes_the_card_like_the_modal(bot: RunningBot, fake: FakeSlack) -> None:
    execution = run_step(bot, fake, {"region": "apac"})
    assert execution["state"] == "completed"
    assert len(cards(fake, "C0APIAPAC")) == 1 and cards(fake, "C0API0001") == []


def test_a_case_already_open_fails_the_step_with_a_link_to_its_thread(
    bot: RunningBot, fake: FakeSlack
) -> None:
    first = run_step(bot, fake)
    second = run_step(bot, fake, {"summary": "Same case again"})
    assert first["state"] == "completed" and second["state"] == "failed"
    assert "27343 is already open" in second["error"]
    assert first["outputs"]["thread_permalink"] in second["error"]
    assert len(cases(bot)) == 1


def test_a_step_without_a_filer_fails(bot: RunningBot, fake: FakeSlack) -> None:
    execution = run_step(bot, fake, {"filer": ""})
    assert execution["state"] == "failed" and "filer" in execution["error"]
    assert cases(bot) == []


def test_when_slack_refuses_the_card_the_step_completes_and_the_card_follows(
    bot: RunningBot, fake: FakeSlack
) -> None:
    fake.inject("chat.postMessage", status=503, times=4)  # the client's retries run out
    execution = run_step(bot, fake)
    assert execution["state"] == "completed"
    assert execution["outputs"] == {
        "case_number": "27343",
        "case_url": "https://support.example.com/cases/27343",
    }
    assert cards(fake, "C0API0001") == []
    posted = publish_pending(services(bot))
    assert posted == 1 and len(cards(fake, "C0API0001")) == 1
    with bot.uow() as uow:
        kinds = list(uow.session.scalars(select(CaseEvent.kind).order_by(CaseEvent.id)))
    assert kinds == ["filed", "card_failed", "card_posted"]


def test_an_unsigned_step_execution_is_refused_and_changes_nothing(
    bot: RunningBot, fake: FakeSlack
) -> None:
    execution_id, token = fake.start_function(STEP)
    reply = bot.driver.function_executed(
        STEP, INPUTS, execution_id=execution_id, token=token, sign=False
    )
    assert reply.status == 401
    assert cases(bot) == [] and fake.execution(execution_id)["state"] == "running"


def test_a_signed_step_execution_of_the_wrong_shape_is_refused_and_changes_nothing(
    bot: RunningBot, fake: FakeSlack
) -> None:
    execution_id, token = fake.start_function(STEP)
    for broken in ({"inputs": "not an object"}, {"function_execution_id": 42}):
        body = payload("event_function_executed.json")
        body["event"].update(
            function_execution_id=execution_id, bot_access_token=token, inputs=INPUTS
        )
        body["event"]["function"]["callback_id"] = STEP
        body["event"].update(broken)
        reply = bot.driver.send(json.dumps(body), "application/json")
        assert reply.status == 400
    assert cases(bot) == [] and fake.execution(execution_id)["state"] == "running"


def test_when_the_filers_note_fails_the_step_still_completes_and_the_note_follows(
    bot: RunningBot, fake: FakeSlack
) -> None:
    fake.inject("chat.postMessage", status=503, times=4, when=lambda p: p["channel"] == "U0AGENT01")
    execution = run_step(bot, fake)
    [case] = cases(bot)
    assert execution["state"] == "completed"
    assert execution["outputs"]["thread_permalink"] == case.permalink
    assert fake.dms("U0AGENT01") == []  # the note is owed, not lost
    bot.swarm.clock.advance(minutes=1)  # it backs off after its failure
    publish_pending(services(bot))
    deliver_owed(services(bot))  # the posts:retry sweep
    assert len(fake.dms("U0AGENT01")) == 1
