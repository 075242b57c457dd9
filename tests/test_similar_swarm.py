"""Similar resolved cases in the swarm: the intake reply, `/swarm similar`, access, vectors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select, update

from bot.gateway import web_client
from storage.db import create_db_engine
from storage.models import Case, CaseVector, PendingPost
from tests.conftest import BOT_TOKEN, RunningBot
from tests.fakeslack import FakeSlack
from tests.scenario import answer, file, reply_event, swarmbot
from tests.similar_eval import load_resolved, load_set
from workflows import similarity
from workflows.announcements import deliver_owed
from workflows.services import Services

pytestmark = pytest.mark.usefixtures("no_slack_call_inside_a_transaction")

TEAM = "T111"
EXPERTS = {"U0EXP0000": "Ana García", "U0EXP0003": "Bo Lindqvist", "U0EXP0004": "Chidi Okafor"}
# A held-out repeat of R41 (charged twice) and of R01 (webhook timeouts), as a filer writes them.
CHARGED_TWICE = {
    "case_number": "51001",
    "topic": "billing",
    "summary": "Bank statement shows the same payment to you two times",
    "details": "Finance noticed we paid the same amount twice this month but there is only "
    "one bill in the account.",
}
WEBHOOKS = {
    "case_number": "51002",
    "summary": "Webhooks failing, endpoint is slow to respond",
    "details": "Our endpoint needs about 15 seconds per order event and the dashboard marks "
    "every delivery as failed, then it retries.",
}
UNRELATED = {
    "case_number": "51003",
    "summary": "Feature request - dark mode for the agent workspace",
    "details": "Several agents asked whether the web app can offer a dark theme for night shifts.",
}


@pytest.fixture
def solved(bot: RunningBot, fake: FakeSlack, db_url: str) -> dict[str, int]:
    """The evaluation set's resolved cases, with permalinks and their vectors made."""
    engine = create_db_engine(db_url)
    ids = load_resolved(engine, load_set(), TEAM)
    with engine.begin() as connection:
        for case_id in ids.values():
            connection.execute(
                update(Case)
                .where(Case.id == case_id)
                .values(permalink=f"https://example.slack.com/archives/thread/p{case_id}")
            )
    engine.dispose()
    for user_id, name in EXPERTS.items():
        fake.add_user(user_id, name=name)
    assert bot.swarm.similar.embed_due(bot.uow, bot.swarm.clock) == len(ids)
    return ids


def swarm_services(bot: RunningBot, fake: FakeSlack) -> Services:
    """What the leader's sweeps work with: the bot's own services, similar cases included."""
    return bot.swarm.services(web_client(BOT_TOKEN, fake.url))


def thread_replies(fake: FakeSlack, case: Case) -> list[dict]:
    assert case.thread_ts
    return [m for m in fake.thread(case.channel_id, case.thread_ts) if m["ts"] != case.thread_ts]


def new_case(bot: RunningBot, number: str) -> Case:
    with bot.uow() as uow:
        case = uow.cases.by_number(team_id=TEAM, case_number=number)
        assert case is not None
        return case


def case_row(bot: RunningBot, case_id: int) -> Case:
    with bot.uow() as uow:
        case = uow.cases.get(case_id)
        assert case is not None
        return case


def test_a_case_solved_before_gets_the_earlier_answer_and_its_experts_in_its_thread(
    bot: RunningBot, fake: FakeSlack, solved: dict[str, int]
) -> None:
    file(bot, fake, CHARGED_TWICE)
    case = new_case(bot, "51001")

    replies = thread_replies(fake, case)
    assert len(replies) == 1
    text = replies[0]["text"]
    earlier = case_row(bot, solved["R41"])
    # Number linked to its thread, summary, first line of the resolution, knowledge article.
    assert f"<{earlier.permalink}|{earlier.case_number}>" in text
    assert "Customer charged twice for monthly subscription" in text
    assert "Refunded the duplicate charge" in text
    assert "<https://kb.example.com/articles/duplicate-charges|knowledge article>" in text
    # Experts by name, never a mention that pings them; at most three cases and experts.
    assert "Suggested experts" in text
    assert any(name in text for name in EXPERTS.values())
    assert "<@" not in text and "<!" not in text
    assert text.count("\n• ") <= 3
    # The card came first; the reply is in its thread, once, and it is recorded as owed work.
    posts = fake.calls_to("chat.postMessage")
    assert posts[0].get("thread_ts") is None and posts[0]["channel"] == case.channel_id
    with bot.uow() as uow:
        owed = uow.session.scalars(select(PendingPost).where(PendingPost.case_id == case.id)).all()
        in_thread = [p for p in owed if p.channel_id == case.channel_id]  # not the filer's note
        assert [p.sent_at is not None for p in in_thread] == [True]
        assert uow.cases.get(case.id).similar_offered_at is not None


def test_an_unrelated_case_gets_no_reply(
    bot: RunningBot, fake: FakeSlack, solved: dict[str, int]
) -> None:
    file(bot, fake, UNRELATED)
    case = new_case(bot, "51003")
    assert thread_replies(fake, case) == []
    with bot.uow() as uow:  # decided: the sweep will not try again
        assert uow.cases.get(case.id).similar_offered_at is not None
    assert similarity.offer_owed(swarm_services(bot, fake)) == 0


def test_nothing_is_offered_before_any_case_is_resolved(bot: RunningBot, fake: FakeSlack) -> None:
    file(bot, fake, WEBHOOKS)
    case = new_case(bot, "51002")
    assert thread_replies(fake, case) == []
    assert len(bot.swarm.similar.index) == 0


def test_cases_others_in_the_channel_cannot_read_are_never_offered(
    bot: RunningBot, fake: FakeSlack, db_url: str, solved: dict[str, int]
) -> None:
    # R41 was swarmed in a private channel; R43 (a declined renewal) had a private incident
    # channel. Neither may be shown in the public billing channel's thread.
    fake.add_channel("C0SECRET1", "vip-billing", is_private=True, members=[fake.bot_user_id])
    fake.add_channel("C0INCPRIV", "help-billing-sev2-1", is_private=True, members=[])
    engine = create_db_engine(db_url)
    with engine.begin() as connection:
        connection.execute(
            update(Case).where(Case.id == solved["R41"]).values(channel_id="C0SECRET1")
        )
        connection.execute(
            update(Case).where(Case.id == solved["R43"]).values(incident_channel_id="C0INCPRIV")
        )
    engine.dispose()

    file(bot, fake, CHARGED_TWICE)
    case = new_case(bot, "51001")
    text = " ".join(m["text"] for m in thread_replies(fake, case))
    for key in ("R41", "R43"):
        assert case_row(bot, solved[key]).case_number not in text

    # Filed in that private channel itself, its own earlier case is fair game.
    reply = bot.driver.command("route billing", user="U0LEAD002", channel="C0SECRET1")
    assert reply.status == 200
    file(bot, fake, {**CHARGED_TWICE, "case_number": "51009"})
    case = new_case(bot, "51009")
    assert case.channel_id == "C0SECRET1"
    text = " ".join(m["text"] for m in thread_replies(fake, case))
    assert case_row(bot, solved["R41"]).case_number in text


def test_a_reply_slack_refuses_for_now_is_sent_later_exactly_once(
    bot: RunningBot, fake: FakeSlack, solved: dict[str, int]
) -> None:
    # The card goes through; the similar-cases reply meets 503s until the client gives up.
    fake.inject("chat.postMessage", status=503, times=None, when=lambda p: bool(p.get("thread_ts")))
    file(bot, fake, CHARGED_TWICE)
    case = new_case(bot, "51001")
    assert case.thread_ts and thread_replies(fake, case) == []
    fake.reset_faults()

    # The leader's posts:retry sweep (every minute, and at start after a restart), once the
    # post's back-off has passed.
    bot.swarm.clock.advance(minutes=1)
    assert deliver_owed(swarm_services(bot, fake)) == 1
    assert deliver_owed(swarm_services(bot, fake)) == 0
    assert similarity.offer_owed(swarm_services(bot, fake)) == 0
    replies = thread_replies(fake, case)
    assert len(replies) == 1 and case_row(bot, solved["R41"]).case_number in replies[0]["text"]


def test_a_case_whose_reply_was_never_worked_out_gets_it_from_the_sweep_once(
    bot: RunningBot, fake: FakeSlack, solved: dict[str, int]
) -> None:
    file(bot, fake, WEBHOOKS)
    case = new_case(bot, "51002")
    # As if the process had died between posting the card and working out the reply.
    with bot.uow() as uow:
        uow.session.execute(update(Case).where(Case.id == case.id).values(similar_offered_at=None))
        uow.session.execute(PendingPost.__table__.delete().where(PendingPost.case_id == case.id))
        uow.commit()
    fake.reset()
    fake.add_channel(case.channel_id, "swarm-api", members=[fake.bot_user_id])
    fake.add_message(case.channel_id, user=fake.bot_user_id, text="card", ts=case.thread_ts)

    assert similarity.offer_owed(swarm_services(bot, fake)) == 1
    assert similarity.offer_owed(swarm_services(bot, fake)) == 0
    replies = thread_replies(fake, case)
    assert len(replies) == 1
    assert case_row(bot, solved["R01"]).case_number in replies[0]["text"]


def test_swarm_similar_answers_privately_within_the_callers_access(
    bot: RunningBot, fake: FakeSlack, db_url: str, solved: dict[str, int]
) -> None:
    file(bot, fake, CHARGED_TWICE)
    reply = bot.driver.command("similar 51001", user="U0AGENT02")
    assert reply.status == 200
    body = fake.responses()[-1]["body"]
    assert body["response_type"] == "ephemeral"
    assert case_row(bot, solved["R41"]).case_number in body["text"]

    # R41 moves to a private channel the caller is not in: it disappears from their answer,
    # and asking about it directly is "not found", as if it did not exist for them.
    fake.add_channel("C0SECRET1", "vip-billing", is_private=True, members=[fake.bot_user_id])
    engine = create_db_engine(db_url)
    with engine.begin() as connection:
        connection.execute(
            update(Case).where(Case.id == solved["R41"]).values(channel_id="C0SECRET1")
        )
    engine.dispose()
    bot.swarm.channels._private.clear()  # Slack's answer is cached for two minutes
    bot.driver.command("similar 51001", user="U0AGENT02")
    assert case_row(bot, solved["R41"]).case_number not in answer(fake)
    bot.driver.command(f"similar {case_row(bot, solved['R41']).case_number}", user="U0AGENT02")
    assert "not found" in answer(fake).lower() or "no case" in answer(fake).lower()

    assert "Usage: `/swarm similar <case>`" in bot.driver.command("similar").json()["text"]


def test_a_thread_reply_on_a_resolved_case_makes_its_vector_again(
    bot: RunningBot, fake: FakeSlack, solved: dict[str, int]
) -> None:
    earlier = case_row(bot, solved["R09"])
    with bot.uow() as uow:
        before = uow.session.scalar(
            select(CaseVector.vector).where(CaseVector.case_id == earlier.id)
        )
    bot.driver.event(reply_event(earlier, "Same thing again: their DST parser was patched."))
    assert case_row(bot, earlier.id).vector_due_at is not None
    assert bot.swarm.similar.embed_due(bot.uow, bot.swarm.clock) == 1
    with bot.uow() as uow:
        after = uow.session.scalar(
            select(CaseVector.vector).where(CaseVector.case_id == earlier.id)
        )
    assert after != before
    assert case_row(bot, earlier.id).vector_due_at is None


def test_resolving_a_case_makes_it_an_answer_for_the_next_one(
    bot: RunningBot, fake: FakeSlack
) -> None:
    file(bot, fake, WEBHOOKS)
    reply = bot.driver.command(
        "resolve 51002 Customer now acks with 202 and queues the work; deliveries succeed.",
        user="U0AGENT01",
    )
    assert reply.status == 200
    assert case_row(bot, new_case(bot, "51002").id).vector_due_at is not None
    assert bot.swarm.similar.embed_due(bot.uow, bot.swarm.clock) == 1

    file(bot, fake, {**WEBHOOKS, "case_number": "51005"})
    text = " ".join(m["text"] for m in thread_replies(fake, new_case(bot, "51005")))
    assert "51002" in text and "acks with 202" in text


def test_embed_cases_backfills_cases_resolved_before_the_upgrade(
    bot: RunningBot, fake: FakeSlack, db_url: str, tmp_path: Path
) -> None:
    engine = create_db_engine(db_url)
    data = load_set()
    data["resolved"] = data["resolved"][:12]
    load_resolved(engine, data, TEAM)
    engine.dispose()
    result = swarmbot(fake, db_url, tmp_path, "embed-cases")
    assert result.exit_code == 0, result.output
    assert "Embedding resolved cases" in result.output
    assert re.search(r"embedded 12 resolved case\(s\)", result.output)
    again = swarmbot(fake, db_url, tmp_path, "embed-cases")
    assert "embedded 0 resolved case(s)" in again.output
    everything = swarmbot(fake, db_url, tmp_path, "embed-cases", "--all")
    assert "embedded 12 resolved case(s)" in everything.output
    with bot.uow() as uow:
        assert len(uow.session.scalars(select(CaseVector.case_id)).all()) == 12
