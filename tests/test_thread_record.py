"""Case threads as the case record: capture, edits, deletes, retries; joining and claiming."""

from __future__ import annotations

import copy

import pytest
from sqlalchemy import select

from storage.domain import CaseStatus
from storage.models import Case, CaseEvent, Message, Participant
from tests.conftest import RunningBot
from tests.fakeslack import FakeSlack
from tests.scenario import changed_event, deleted_event, filed_case, reply_event
from tests.slackdriver import payload

CHANNEL = "C0API0001"


def stored(bot: RunningBot) -> list[Message]:
    with bot.uow() as uow:
        return list(uow.session.scalars(select(Message).order_by(Message.ts)))


def reload(bot: RunningBot, case: Case) -> Case:
    with bot.uow() as uow:
        fresh = uow.cases.get(case.id)
        assert fresh is not None
        fresh.participants, fresh.events  # noqa: B018 - load before the session closes
        return fresh


def timeline(bot: RunningBot, case: Case) -> list[str]:
    with bot.uow() as uow:
        return list(
            uow.session.scalars(
                select(CaseEvent.kind).where(CaseEvent.case_id == case.id).order_by(CaseEvent.id)
            )
        )


def card_blocks(fake: FakeSlack, case: Case) -> str:
    [card] = [m for m in fake.messages(case.channel_id) if m["ts"] == case.thread_ts]
    return str(card["blocks"])


# -- capture -----------------------------------------------------------------------------------
def test_a_reply_in_the_case_thread_is_stored_with_author_thread_and_files(
    bot: RunningBot, fake: FakeSlack
) -> None:
    case = filed_case(bot, fake)
    files = [{"id": "F1", "name": "trace.har", "title": "HAR of the timeout", "url": "x"}]
    reply = bot.driver.event(reply_event(case, "Seeing 504s from eu-west", files=files))
    assert reply.status == 200
    [message] = stored(bot)
    assert (message.case_id, message.channel_id, message.thread_ts) == (
        case.id,
        CHANNEL,
        case.thread_ts,
    )
    assert (message.user_id, message.is_bot, message.text) == (
        "U0EXP0001",
        False,
        "Seeing 504s from eu-west",
    )
    assert message.files == [{"name": "trace.har", "title": "HAR of the timeout"}]
    assert message.posted_at.timestamp() == pytest.approx(1800000001.0001)


def test_messages_outside_case_threads_are_not_stored(bot: RunningBot, fake: FakeSlack) -> None:
    case = filed_case(bot, fake)
    top_level = payload("event_message.json")["event"]
    top_level.update(channel=CHANNEL, ts="1800000002.000100", user="U0EXP0001")
    bot.driver.event(top_level)
    other_thread = reply_event(case, "other", ts="1800000003.000100", thread_ts="1700000000.1")
    bot.driver.event(other_thread)
    elsewhere = reply_event(case, "elsewhere", ts="1800000004.000100", channel="C0GENERAL")
    bot.driver.event(elsewhere)
    joined = reply_event(case, "", ts="1800000005.000100", subtype="channel_join")
    bot.driver.event(joined)
    assert stored(bot) == []


def test_a_retried_delivery_is_stored_once(bot: RunningBot, fake: FakeSlack) -> None:
    case = filed_case(bot, fake)
    event = reply_event(case, "Rolling back the gateway")
    bot.driver.event(event, event_id="Ev0RETRY1")
    bot.driver.event(copy.deepcopy(event), event_id="Ev0RETRY1", retry_num=1)
    bot.driver.event(copy.deepcopy(event), event_id="Ev0RETRY1", retry_num=2)
    assert [m.text for m in stored(bot)] == ["Rolling back the gateway"]
    assert timeline(bot, case).count("first_response") == 1


def test_edits_replace_the_text_and_deletions_drop_it(bot: RunningBot, fake: FakeSlack) -> None:
    case = filed_case(bot, fake)
    ts = "1800000001.000100"
    bot.driver.event(reply_event(case, "restart the pods", ts=ts))
    bot.driver.event(changed_event(case, ts, "drain the pods first"))
    [message] = stored(bot)
    assert message.text == "drain the pods first" and message.edited_at is not None
    bot.driver.event(deleted_event(case, ts))
    [message] = stored(bot)
    assert (message.text, message.files, message.deleted_at is not None) == ("", [], True)
    # A late edit of a deleted message does not bring its text back.
    bot.driver.event(changed_event(case, ts, "drain the pods first"))
    assert stored(bot)[0].text == ""


def test_a_thread_broadcast_is_stored_once(bot: RunningBot, fake: FakeSlack) -> None:
    case = filed_case(bot, fake)
    event = payload("event_message_thread_broadcast.json")["event"]
    event.update(
        channel=CHANNEL, thread_ts=case.thread_ts, user="U0EXP0002", ts="1800000009.000100"
    )
    event["root"].update(ts=case.thread_ts, thread_ts=case.thread_ts)
    bot.driver.event(event)
    bot.driver.event(copy.deepcopy(event), retry_num=1)
    [message] = stored(bot)
    assert (message.subtype, message.text, message.user_id) == (
        "thread_broadcast",
        "Hi there!",
        "U0EXP0002",
    )


def test_the_bots_own_thread_posts_are_recorded_as_bot_messages(
    bot: RunningBot, fake: FakeSlack
) -> None:
    case = filed_case(bot, fake)
    event = reply_event(case, "Reminder: first response due", user=fake.bot_user_id)
    event["bot_id"] = "B0SWARM01"
    bot.driver.event(event)
    [message] = stored(bot)
    assert message.is_bot and message.user_id == fake.bot_user_id
    fresh = reload(bot, case)
    assert fresh.first_response_at is None and fresh.status is CaseStatus.OPEN
    assert fake.bot_user_id not in {p.user_id for p in fresh.participants}


def test_incident_channel_messages_are_part_of_the_record(bot: RunningBot, fake: FakeSlack) -> None:
    case = filed_case(bot, fake)
    with bot.uow() as uow:
        uow.cases.get(case.id).incident_channel_id = "C0INCIDNT"
        uow.commit()
    event = reply_event(case, "bridge is open", channel="C0INCIDNT", ts="1800000020.000100")
    del event["thread_ts"]
    bot.driver.event(event)
    [message] = stored(bot)
    assert (message.channel_id, message.case_id) == ("C0INCIDNT", case.id)
    assert "U0EXP0001" in {p.user_id for p in reload(bot, case).participants}


# -- first response ------------------------------------------------------------------------
def test_the_filers_own_reply_is_not_a_first_response(bot: RunningBot, fake: FakeSlack) -> None:
    case = filed_case(bot, fake)
    bot.driver.event(reply_event(case, "More detail: only EU", user=case.filer_id))
    fresh = reload(bot, case)
    assert fresh.first_response_at is None and fresh.status is CaseStatus.OPEN
    assert len(stored(bot)) == 1


def test_the_first_human_reply_by_someone_else_is_the_first_response(
    bot: RunningBot, fake: FakeSlack, clock
) -> None:
    case = filed_case(bot, fake)
    clock.advance(minutes=7)
    bot.driver.event(reply_event(case, "On it", user="U0EXP0002", ts="1800000001.000100"))
    clock.advance(minutes=3)
    bot.driver.event(reply_event(case, "Me too", user="U0EXP0001", ts="1800000002.000100"))
    fresh = reload(bot, case)
    assert fresh.first_responder_id == "U0EXP0002"
    assert (fresh.first_response_at - case.created_at).total_seconds() == 7 * 60
    assert fresh.status is CaseStatus.SWARMING
    users = {p.user_id: p.role.value for p in fresh.participants}
    assert users == {case.filer_id: "filer", "U0EXP0002": "replied", "U0EXP0001": "replied"}
    assert timeline(bot, case)[-3:] == ["joined", "first_response", "joined"]
    assert "U0EXP0002" in card_blocks(fake, case) and "Swarming" in card_blocks(fake, case)


# -- Join, Claim, assign ----------------------------------------------------------------------
def test_join_adds_you_updates_the_card_and_starts_the_swarm(
    bot: RunningBot, fake: FakeSlack
) -> None:
    case = filed_case(bot, fake)
    reply = bot.driver.click("case-join", str(case.id), user="U0EXP0001")
    assert reply.status == 200
    assert "You joined the swarm" in fake.responses()[-1]["body"]["text"]
    fresh = reload(bot, case)
    assert fresh.status is CaseStatus.SWARMING
    assert "U0EXP0001" in {p.user_id for p in fresh.participants}
    assert "U0EXP0001" in card_blocks(fake, case)
    bot.driver.click("case-join", str(case.id), user="U0EXP0001")
    assert "already are in the swarm" in fake.responses()[-1]["body"]["text"]
    assert timeline(bot, case).count("joined") == 1


def test_claim_button_and_command_assign_the_case_to_you(bot: RunningBot, fake: FakeSlack) -> None:
    case = filed_case(bot, fake)
    bot.driver.click("case-claim", str(case.id), user="U0EXP0001")
    fresh = reload(bot, case)
    assert fresh.assignee_id == "U0EXP0001" and fresh.status is CaseStatus.SWARMING
    assert "<@U0EXP0001>" in card_blocks(fake, case)
    assert any("claimed this case" in m["text"] for m in fake.thread(CHANNEL, case.thread_ts))
    bot.driver.command(f"claim {case.case_number}", user="U0EXP0001")
    assert "already is assigned to you" in fake.responses()[-1]["body"]["text"]
    # Taking a claimed case from someone else is a reassignment: leads only.
    bot.driver.command(f"claim {case.case_number}", user="U0EXP0002")
    assert "Only swarm leads" in fake.responses()[-1]["body"]["text"]
    assert reload(bot, case).assignee_id == "U0EXP0001"
    assert timeline(bot, case).count("claimed") == 1


def test_only_leads_assign_to_someone_else(bot: RunningBot, fake: FakeSlack) -> None:
    case = filed_case(bot, fake)
    bot.driver.command(f"assign {case.case_number} <@U0EXP0002|e2>", user="U0EXP0001")
    assert "Only swarm leads of topic `api`" in fake.responses()[-1]["body"]["text"]
    assert reload(bot, case).assignee_id is None
    bot.driver.command(f"assign {case.case_number} <@U0EXP0002|e2>", user="U0LEAD002")
    assert "Only swarm leads" in fake.responses()[-1]["body"]["text"]  # billing's lead
    bot.driver.command(f"assign {case.case_number} <@U0EXP0002|e2>", user="U0LEAD001")
    assert "assigned to <@U0EXP0002>" in fake.responses()[-1]["body"]["text"]
    fresh = reload(bot, case)
    assert fresh.assignee_id == "U0EXP0002"
    [event] = [e for e in fresh.events if e.kind == "assigned"]
    assert (event.actor_id, event.data["assignee"]) == ("U0LEAD001", "U0EXP0002")
    bot.driver.command(f"assign {case.case_number} <@U0EXP0001|e1>", user="U0ADMIN01")
    assert reload(bot, case).assignee_id == "U0EXP0001"


def test_claiming_an_unknown_or_foreign_case_is_refused(bot: RunningBot, fake: FakeSlack) -> None:
    case = filed_case(bot, fake)
    bot.driver.command("claim 99999", user="U0EXP0001")
    assert "No case 99999" in fake.responses()[-1]["body"]["text"]
    bot.driver.click("case-claim", str(case.id + 100), user="U0EXP0001")
    assert "No case" in fake.responses()[-1]["body"]["text"]
    assert reload(bot, case).assignee_id is None


def test_a_resolved_case_cannot_be_joined_or_claimed(bot: RunningBot, fake: FakeSlack) -> None:
    case = filed_case(bot, fake)
    with bot.uow() as uow:
        uow.cases.get(case.id).status = CaseStatus.RESOLVED
        uow.commit()
    bot.driver.click("case-join", str(case.id), user="U0EXP0001")
    assert "is resolved" in fake.responses()[-1]["body"]["text"]
    bot.driver.command(f"claim {case.case_number}", user="U0EXP0001")
    assert "is resolved" in fake.responses()[-1]["body"]["text"]
    with bot.uow() as uow:
        assert uow.session.scalars(select(Participant.user_id)).all() == [case.filer_id]
