"""Escalation: a lead moves a case into its own severity-named incident channel."""

from __future__ import annotations

import threading

from sqlalchemy import select

from storage.domain import CaseStatus, ParticipantRole
from storage.models import Case, Participant
from tests.conftest import RunningBot
from tests.fakeslack import FakeSlack
from tests.scenario import (
    FILER,
    LEAD,
    RecordingTimers,
    cards,
    case_of,
    escalate,
    fake_client,
    file,
    filed,
    kinds,
)
from workflows.incident_room import resume_interrupted
from workflows.services import Services


def test_a_lead_escalates_into_a_severity_named_channel_with_the_swarm_in_it(
    bot: RunningBot, fake: FakeSlack
) -> None:
    case = filed(bot, fake)  # urgency high -> sev2
    timers = RecordingTimers()
    bot.swarm.timers = timers
    text = escalate(bot, fake)
    room = fake.channel_by_name("help-api-sev2-27343")
    assert room is not None and not room["is_private"] and not room["is_archived"]
    assert f"<#{room['id']}>" in text and "escalated to sev2" in text
    assert set(room["members"]) >= {FILER, LEAD, "U0EXP0001", "U0EXP0002", fake.bot_user_id}
    assert "27343" in room["topic"] and "Webhooks time out" in room["purpose"]
    # The case summary, linked to the thread, is pinned in the room.
    [summary] = [m for m in fake.messages(room["id"]) if m["ts"] in fake.pins(room["id"])]
    assert "Webhooks time out" in summary["text"] and case.permalink in summary["text"]
    # The thread links to the room; the card shows severity and room.
    thread = fake.thread("C0API0001", case.thread_ts)
    assert any(f"<#{room['id']}>" in m["text"] and "sev2" in m["text"] for m in thread[1:])
    [card] = cards(fake, "C0API0001")
    status = str(card["blocks"])
    assert "Escalated (sev2)" in status and f"<#{room['id']}>" in status
    after = case_of(bot)
    assert after.status is CaseStatus.ESCALATED and after.severity == 2
    assert after.incident_channel_id == room["id"]
    assert after.incident_channel_name == "help-api-sev2-27343"
    invited = {p.user_id for p in after.participants if p.role is ParticipantRole.INVITED}
    assert invited == {LEAD, "U0EXP0001", "U0EXP0002"}  # the filer was already in the swarm
    assert kinds(bot, case)[-1] == "escalated"
    assert timers.changed == [case.id]
    # sev2 has no stakeholder channels configured.
    assert fake.messages("C0LEGAL01") == []


def test_severity_defaults_from_urgency(bot: RunningBot, fake: FakeSlack) -> None:
    for number, urgency, sev in (
        ("1001", "critical", 1),
        ("1002", "medium", 3),
        ("1003", "low", 4),
    ):
        file(bot, fake, {"case_number": number, "urgency": urgency})
        escalate(bot, fake, f"escalate {number}")
        assert fake.channel_by_name(f"help-api-sev{sev}-{number}") is not None


def test_a_sev1_escalation_tells_the_stakeholder_channels(bot: RunningBot, fake: FakeSlack) -> None:
    filed(bot, fake)
    escalate(bot, fake, "escalate 27343 sev1")
    room = fake.channel_by_name("help-api-sev1-27343")
    assert room is not None
    [note] = fake.messages("C0LEGAL01")
    assert f"<#{room['id']}>" in note["text"] and "sev1" in note["text"]


def test_only_leads_and_admins_escalate(bot: RunningBot, fake: FakeSlack) -> None:
    filed(bot, fake)
    text = escalate(bot, fake, user=FILER)
    assert "Only swarm leads of topic `api` or workspace admins can escalate" in text
    assert fake.calls_to("conversations.create") == []
    assert case_of(bot).status is CaseStatus.OPEN
    assert "escalated to sev2" in escalate(bot, fake, user="U0ADMIN01")


def test_an_unknown_case_or_a_resolved_one_is_not_escalated(
    bot: RunningBot, fake: FakeSlack
) -> None:
    assert "No case 99999" in escalate(bot, fake, "escalate 99999")
    filed(bot, fake)
    bot.driver.command("resolve 27343 restarted the gateway", user=FILER)
    assert "is resolved" in escalate(bot, fake)
    assert fake.calls_to("conversations.create") == []


def test_a_taken_name_even_of_an_archived_channel_moves_to_the_next_suffix(
    bot: RunningBot, fake: FakeSlack
) -> None:
    fake.add_channel("C0OLD0001", "help-api-sev2-27343", is_archived=True)
    fake.add_channel("C0OLD0002", "help-api-sev2-27343-2")
    filed(bot, fake)
    escalate(bot, fake)
    created = fake.calls_to("conversations.create")
    assert [c["name"] for c in created] == [
        "help-api-sev2-27343",
        "help-api-sev2-27343-2",
        "help-api-sev2-27343-3",
    ]
    assert case_of(bot).incident_channel_name == "help-api-sev2-27343-3"


def test_a_refused_name_is_reported_and_nothing_is_left_half_done(
    bot: RunningBot, fake: FakeSlack
) -> None:
    case = filed(bot, fake)
    fake.inject("conversations.create", error="invalid_name_specials")
    text = escalate(bot, fake)
    assert "`invalid_name_specials`" in text and "characters Slack does not allow" in text
    after = case_of(bot)
    assert after.status is CaseStatus.OPEN and after.incident_channel_id is None
    assert "escalation_interrupted" in kinds(bot, case)
    # Nothing blocks the next attempt.
    assert "escalated to sev2" in escalate(bot, fake)


def test_restricted_private_channel_creation_says_what_happened(
    bot: RunningBot, fake: FakeSlack
) -> None:
    filed(bot, fake)
    view_modal = open_escalate_modal(bot, fake)
    fake.inject("conversations.create", error="restricted_action")
    bot.driver.submit(view_modal, {"severity": "1", "confidential": "yes"}, user=LEAD)
    [told] = fake.ephemerals(user=LEAD) or fake.dms(LEAD)
    assert "`restricted_action`" in told["text"] and "Nothing else was changed" in told["text"]
    assert case_of(bot).incident_channel_id is None
    assert [c["is_private"] for c in fake.calls_to("conversations.create")] in ([True], ["1"])
    # Once the workspace allows it, the same form succeeds with a private room.
    bot.driver.submit(view_modal, {"severity": "1", "confidential": "yes"}, user=LEAD)
    room = fake.channel_by_name("help-api-sev1-27343")
    assert room is not None and room["is_private"] and room["id"].startswith("G")
    assert case_of(bot).confidential is True


def test_people_who_cannot_be_invited_are_listed_not_fatal(
    bot: RunningBot, fake: FakeSlack
) -> None:
    fake.add_user("U0EXP0002", name="guest-expert", is_restricted=True)
    case = filed(bot, fake)
    with bot.uow() as uow:
        stored = uow.cases.get(case.id)
        assert stored is not None
        now = bot.swarm.clock.now()
        for user in ("U0GONE001", fake.bot_user_id):
            uow.cases.add_participant(
                case=stored, user_id=user, role=ParticipantRole.REPLIED, at=now
            )
        uow.commit()
    text = escalate(bot, fake)
    assert "<@U0EXP0002> (user_is_restricted)" in text
    assert "<@U0GONE001> (user_not_found)" in text
    assert fake.bot_user_id not in text  # cant_invite_self is not a problem
    room = fake.channel_by_name("help-api-sev2-27343")
    assert room is not None
    assert set(room["members"]) >= {FILER, LEAD, "U0EXP0001"}
    assert "U0EXP0002" not in room["members"]
    [invite] = fake.calls_to("conversations.invite")
    assert invite["force"] in (True, "true", "1")
    assert fake.pins(room["id"])  # the rest went on


def test_429s_during_invites_stop_half_way_and_a_retry_resumes_without_a_second_channel(
    bot: RunningBot, fake: FakeSlack
) -> None:
    case = filed(bot, fake)
    fake.inject("conversations.invite", status=429, retry_after=0, times=4)
    text = escalate(bot, fake)
    assert "stopped half-way" in text and "`/swarm escalate 27343` again" in text
    half = case_of(bot)
    assert half.incident_channel_id is not None and half.status is CaseStatus.OPEN
    assert half.escalation_claimed_at is None
    assert len(fake.calls_to("conversations.invite")) == 4  # the first try and 3 retries
    text = escalate(bot, fake)
    assert "escalated to sev2" in text and "finished" in text
    assert len(fake.calls_to("conversations.create")) == 1
    room = fake.channel(half.incident_channel_id)
    assert set(room["members"]) >= {FILER, LEAD, "U0EXP0001", "U0EXP0002"}
    assert len(fake.pins(room["id"])) == 1
    assert len(fake.messages(room["id"])) == 1
    links = [m for m in fake.thread("C0API0001", case.thread_ts) if "escalated" in m["text"]]
    assert len(links) == 1
    assert case_of(bot).status is CaseStatus.ESCALATED


def test_an_escalation_slack_stopped_is_finished_in_the_background(
    bot: RunningBot, fake: FakeSlack
) -> None:
    case = filed(bot, fake)
    fake.inject("conversations.invite", status=429, retry_after=0, times=4)
    assert "finished automatically when Slack answers again" in escalate(bot, fake)
    # The leader's sweep (at start and every minute, in whichever process leads) finishes it.
    slack = bot.swarm.slack(fake_client(fake))
    assert resume_interrupted(Services(bot.uow, bot.config, slack, bot.swarm.clock)) == 1
    assert resume_interrupted(Services(bot.uow, bot.config, slack, bot.swarm.clock)) == 0
    after = case_of(bot)
    assert after.status is CaseStatus.ESCALATED and after.severity == 2
    assert len(fake.calls_to("conversations.create")) == 1
    room = fake.channel(after.incident_channel_id)
    assert set(room["members"]) >= {FILER, LEAD, "U0EXP0001"}
    assert len(fake.pins(room["id"])) == 1 and len(fake.messages(room["id"])) == 1
    links = [m for m in fake.thread("C0API0001", case.thread_ts) if "escalated" in m["text"]]
    assert len(links) == 1
    assert "Escalation of case 27343 is complete" in fake.dms(LEAD)[-1]["text"]


def test_an_escalation_whose_process_died_is_finished_after_its_lease(
    bot: RunningBot, fake: FakeSlack, clock
) -> None:
    filed(bot, fake)
    fake.inject("conversations.setTopic", status=503, times=4)
    escalate(bot, fake)
    with bot.uow() as uow:  # as if the process died mid-way: lease held, no interruption noted
        stored = uow.cases.by_number(team_id="T111", case_number="27343")
        assert stored is not None
        stored.escalation_claimed_at = clock.now()
        for event in uow.cases.events_of(case_id=stored.id, kinds=("escalation_interrupted",)):
            uow.session.delete(event)
        uow.commit()
    slack = bot.swarm.slack(fake_client(fake))
    assert (
        resume_interrupted(Services(bot.uow, bot.config, slack, bot.swarm.clock)) == 0
    )  # lease held
    clock.advance(minutes=3)
    assert resume_interrupted(Services(bot.uow, bot.config, slack, bot.swarm.clock)) == 1
    assert case_of(bot).status is CaseStatus.ESCALATED
    assert len(fake.calls_to("conversations.create")) == 1


def test_a_refused_escalation_is_not_retried_in_the_background(
    bot: RunningBot, fake: FakeSlack
) -> None:
    filed(bot, fake)
    fake.inject("conversations.create", error="restricted_action")
    assert "`restricted_action`" in escalate(bot, fake)
    slack = bot.swarm.slack(fake_client(fake))
    assert resume_interrupted(Services(bot.uow, bot.config, slack, bot.swarm.clock)) == 0
    assert len(fake.calls_to("conversations.create")) == 1
    assert case_of(bot).incident_channel_id is None


def test_a_5xx_at_the_pin_resumes_with_one_summary_and_one_pin(
    bot: RunningBot, fake: FakeSlack
) -> None:
    filed(bot, fake)
    fake.inject("pins.add", status=503, times=4)
    assert "stopped half-way" in escalate(bot, fake)
    fake.inject("conversations.invite", error="already_in_channel")  # a retried invite
    assert "escalated to sev2" in escalate(bot, fake)
    room_id = case_of(bot).incident_channel_id
    assert room_id is not None
    assert len(fake.messages(room_id)) == 1 and len(fake.pins(room_id)) == 1
    assert len(fake.calls_to("conversations.invite")) == 1  # done before the failure: not redone
    assert len(fake.calls_to("conversations.setTopic")) == 1


def test_the_same_escalation_twice_makes_one_channel(bot: RunningBot, fake: FakeSlack) -> None:
    filed(bot, fake)
    escalate(bot, fake)
    text = escalate(bot, fake)
    assert "already is sev2" in text
    assert len(fake.calls_to("conversations.create")) == 1
    assert fake.calls_to("conversations.rename") == []


# -- the card button and its modal -----------------------------------------------------------
def open_escalate_modal(bot: RunningBot, fake: FakeSlack, user: str = LEAD) -> dict:
    case = case_of(bot)
    before = len(fake.opened_views())
    reply = bot.driver.click("case-escalate", str(case.id), user=user, message_ts=case.thread_ts)
    assert reply.status == 200
    views = fake.opened_views()
    assert len(views) == before + 1
    return views[-1]


def test_the_escalate_button_opens_a_modal_that_escalates(bot: RunningBot, fake: FakeSlack) -> None:
    filed(bot, fake)
    view = open_escalate_modal(bot, fake)
    assert view["callback_id"] == "swarm-escalate"
    severity = next(b for b in view["blocks"] if b.get("block_id") == "severity")
    assert severity["element"]["initial_option"]["value"] == "2"
    reply = bot.driver.submit(
        view, {"severity": "1", "reason": "All EU <!channel> customers down"}, user=LEAD
    )
    assert reply.status == 200 and reply.body == ""
    room = fake.channel_by_name("help-api-sev1-27343")
    assert room is not None and not room["is_private"]
    [summary] = fake.messages(room["id"])
    assert "All EU &lt;!channel&gt; customers down" in summary["text"]
    told = fake.ephemerals(channel="C0API0001", user=LEAD)
    assert "escalated to sev1" in told[-1]["text"]
    # The same submission delivered again changes nothing.
    bot.driver.submit(view, {"severity": "1"}, user=LEAD)
    assert len(fake.calls_to("conversations.create")) == 1


def test_the_escalate_button_refuses_non_leads(bot: RunningBot, fake: FakeSlack) -> None:
    case = filed(bot, fake)
    bot.driver.click("case-escalate", str(case.id), user=FILER)
    shown = fake.opened_views()[-1]  # opened at once, then it says why there is no form
    assert shown.get("callback_id") != "swarm-escalate" and not shown.get("submit")
    assert "Only swarm leads" in str(shown["blocks"])


def test_two_clicks_at_once_make_one_channel(bot: RunningBot, fake: FakeSlack) -> None:
    filed(bot, fake)
    view = open_escalate_modal(bot, fake)
    fake.set_latency(0.05)
    submits = [
        threading.Thread(
            target=bot.driver.submit, args=(view, {"severity": "2"}), kwargs={"user": LEAD}
        )
        for _ in range(2)
    ]
    for t in submits:
        t.start()
    for t in submits:
        t.join()
    bot.driver.executor.wait_idle()
    fake.set_latency(0)
    assert len(fake.calls_to("conversations.create")) == 1
    assert case_of(bot).status is CaseStatus.ESCALATED
    told = [m["text"] for m in fake.ephemerals(user=LEAD) + fake.dms(LEAD)]
    assert any("escalated to sev2" in t for t in told)
    assert any("being escalated right now" in t or "already is sev2" in t for t in told)


# -- severity changes ------------------------------------------------------------------------
def test_sev_renames_the_channel_and_says_so_in_it_and_the_thread(
    bot: RunningBot, fake: FakeSlack
) -> None:
    case = filed(bot, fake)
    timers = RecordingTimers()
    bot.swarm.timers = timers
    escalate(bot, fake)
    room_id = case_of(bot).incident_channel_id
    text = escalate(bot, fake, "sev 27343 sev1")
    assert "`#help-api-sev2-27343` was renamed to `#help-api-sev1-27343`" in text
    room = fake.channel(room_id)
    assert room["name"] == "help-api-sev1-27343"
    assert "from sev2 to *sev1*" in fake.messages(room_id)[-1]["text"]
    assert "from sev2 to *sev1*" in fake.thread("C0API0001", case.thread_ts)[-1]["text"]
    assert fake.messages("C0LEGAL01")  # sev1 stakeholders are told
    after = case_of(bot)
    assert after.severity == 1 and after.incident_channel_name == "help-api-sev1-27343"
    assert "severity_changed" in kinds(bot, case)
    assert timers.changed == [case.id, case.id]
    assert "(sev1)" in str(cards(fake, "C0API0001")[0]["blocks"])


def test_escalating_an_escalated_case_renames_instead_of_creating(
    bot: RunningBot, fake: FakeSlack
) -> None:
    filed(bot, fake)
    escalate(bot, fake)
    fake.add_channel("C0OLD0003", "help-api-sev3-27343", is_archived=True)
    text = escalate(bot, fake, "escalate 27343 sev3")
    assert "renamed to `#help-api-sev3-27343-2`" in text
    assert len(fake.calls_to("conversations.create")) == 1
    assert [c["name"] for c in fake.calls_to("conversations.rename")] == [
        "help-api-sev3-27343",
        "help-api-sev3-27343-2",
    ]


def test_sev_needs_a_lead_and_an_incident_channel(bot: RunningBot, fake: FakeSlack) -> None:
    filed(bot, fake)
    assert "has no incident channel yet" in escalate(bot, fake, "sev 27343 sev1")
    escalate(bot, fake)
    assert "Only swarm leads" in escalate(bot, fake, "sev 27343 sev1", user=FILER)
    assert "already is sev2" in escalate(bot, fake, "sev 27343 sev2")
    assert fake.calls_to("conversations.rename") == []


def test_renaming_an_archived_channel_is_refused_clearly(bot: RunningBot, fake: FakeSlack) -> None:
    filed(bot, fake)
    escalate(bot, fake)
    room_id = case_of(bot).incident_channel_id
    bot.driver.executor.wait_idle()
    fake.channel(room_id)  # exists
    with fake._lock:
        fake._channels[room_id]["is_archived"] = True
    text = escalate(bot, fake, "sev 27343 sev1")
    assert "`is_archived`" in text
    assert case_of(bot).severity == 2


def test_both_databases_store_the_escalation(bot: RunningBot, fake: FakeSlack) -> None:
    filed(bot, fake)
    escalate(bot, fake)
    with bot.uow() as uow:
        roles = uow.session.scalars(select(Participant.role)).all()
        assert ParticipantRole.INVITED in roles
        case = uow.session.scalar(select(Case))
        assert case is not None and case.escalated_at is not None
        assert case.escalated_at.tzinfo is not None
