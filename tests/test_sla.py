"""SLA decisions on a clock the tests move: reminders at 80 %, breaches, nudges, digests."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from storage.domain import CaseStatus
from storage.models import Case, CaseEvent, Message, PendingPost
from storage.uow import UnitOfWorkFactory
from tests.conftest import TEAM, FakeClock, RunningBot
from tests.fakeslack import FakeSlack
from tests.scenario import RecordingTimers, gateway
from workflows import sla
from workflows.announcements import deliver_owed
from workflows.config import SwarmConfig
from workflows.errors import NotALead, SwarmError
from workflows.intake import CaseDraft, file_case, publish_card
from workflows.services import Services
from workflows.text import duration


def open_case(
    uow: UnitOfWorkFactory,
    config: SwarmConfig,
    clock: FakeClock,
    fake: FakeSlack,
    number: str = "27343",
    urgency: str = "high",
    topic: str = "api",
) -> Case:
    """A filed case whose card is posted (so it has a thread)."""
    draft = CaseDraft(
        team_id=TEAM,
        filer_id="U0AGENT01",
        case_number=number,
        urgency=urgency,
        topic_key=topic,
        summary=f"Webhooks time out <!channel> {number}",
    )
    filed = file_case(Services(uow, config, gateway(fake), clock), draft)
    publish_card(Services(uow, config, gateway(fake), clock), filed.case_id)
    return get(uow, filed.case_id)


def get(uow: UnitOfWorkFactory, case_id: int) -> Case:
    with uow() as unit:
        case = unit.cases.get(case_id)
        assert case is not None
        return case


def events(uow: UnitOfWorkFactory, case_id: int, kind: str) -> list[CaseEvent]:
    with uow() as unit:
        return list(
            unit.session.scalars(
                select(CaseEvent).where(CaseEvent.case_id == case_id, CaseEvent.kind == kind)
            )
        )


def replies(fake: FakeSlack, case: Case) -> list[str]:
    assert case.thread_ts
    return [m["text"] for m in fake.thread(case.channel_id, case.thread_ts)[1:]]


def test_deadlines_follow_the_urgency_targets(
    bot: RunningBot, fake: FakeSlack, clock: FakeClock
) -> None:
    case = open_case(bot.uow, bot.config, clock, fake, urgency="critical")
    assert case.first_response_due == case.created_at + timedelta(minutes=15)
    assert case.resolution_due == case.created_at + timedelta(hours=4)
    timers = {t.kind: t.due for t in sla.timers_of(case, bot.config)}
    assert timers == {
        "first-response-reminder": case.created_at + timedelta(minutes=12),
        "first-response": case.created_at + timedelta(minutes=15),
        "resolution-reminder": case.created_at + timedelta(hours=3, minutes=12),
        "resolution": case.created_at + timedelta(hours=4),
    }
    assert sla.job_id(case.id, "first-response") == f"sla:{case.id}:first-response"
    assert sla.parse_job_id(f"sla:{case.id}:resolution") == (case.id, "resolution")
    assert sla.parse_job_id("cards:retry") is None


def test_first_response_reminder_comes_at_80_percent_once(
    bot: RunningBot, fake: FakeSlack, clock: FakeClock
) -> None:
    case = open_case(bot.uow, bot.config, clock, fake)  # high: first response within 1h
    slack = gateway(fake)
    clock.advance(minutes=47)
    assert not sla.fire_timer(
        Services(bot.uow, bot.config, slack, clock),
        case.id,
        sla.FIRST_RESPONSE_REMINDER,
    )
    assert replies(fake, case) == []
    clock.advance(minutes=1)
    assert sla.fire_timer(
        Services(bot.uow, bot.config, slack, clock),
        case.id,
        sla.FIRST_RESPONSE_REMINDER,
    )
    assert not sla.fire_timer(
        Services(bot.uow, bot.config, slack, clock),
        case.id,
        sla.FIRST_RESPONSE_REMINDER,
    )
    [reminder] = replies(fake, case)
    assert "No reply yet to case 27343" in reminder and "breached in 12m" in reminder
    assert get(bot.uow, case.id).first_response_reminded_at == clock.now()
    [event] = events(bot.uow, case.id, "sla_reminded")
    assert event.data["target"] == "first response"
    kinds = [t.kind for t in sla.timers_of(get(bot.uow, case.id), bot.config)]
    assert kinds == ["first-response", "resolution-reminder", "resolution"]


def test_breach_alerts_the_leads_marks_the_case_and_shows_on_the_card(
    bot: RunningBot, fake: FakeSlack, clock: FakeClock
) -> None:
    case = open_case(bot.uow, bot.config, clock, fake)
    slack = gateway(fake)
    clock.advance(minutes=59)
    assert not sla.fire_timer(
        Services(bot.uow, bot.config, slack, clock), case.id, sla.FIRST_RESPONSE
    )
    clock.advance(minutes=3)
    assert sla.fire_timer(Services(bot.uow, bot.config, slack, clock), case.id, sla.FIRST_RESPONSE)
    assert not sla.fire_timer(
        Services(bot.uow, bot.config, slack, clock), case.id, sla.FIRST_RESPONSE
    )
    [alert] = [m["text"] for m in fake.dms("U0LEAD001")]
    assert "breached its first response SLA of 1h (2m ago)" in alert
    assert "&lt;!channel&gt;" in alert and "<!channel>" not in alert
    assert fake.dms("U0LEAD002") == []  # billing's lead is not told about an API case
    stored = get(bot.uow, case.id)
    assert stored.first_response_breached_at == clock.now()
    assert len(events(bot.uow, case.id, "sla_breached")) == 1
    [update] = fake.calls_to("chat.update")
    assert "SLA breached: first response" in str(update["blocks"])
    # A breached target has no timers left; the resolution ones go on.
    assert [t.kind for t in sla.timers_of(stored, bot.config)] == [
        "resolution-reminder",
        "resolution",
    ]


def test_a_case_already_answered_gets_no_first_response_reminder(
    bot: RunningBot, fake: FakeSlack, clock: FakeClock
) -> None:
    case = open_case(bot.uow, bot.config, clock, fake)
    with bot.uow() as uow:
        stored = uow.cases.get(case.id)
        stored.first_response_at = clock.advance(minutes=10)
        stored.first_responder_id = "U0EXP0001"
        stored.status = CaseStatus.SWARMING
        uow.commit()
    clock.advance(hours=2)
    slack = gateway(fake)
    for kind in (sla.FIRST_RESPONSE_REMINDER, sla.FIRST_RESPONSE):
        assert not sla.fire_timer(Services(bot.uow, bot.config, slack, clock), case.id, kind)
    assert replies(fake, case) == [] and fake.dms("U0LEAD001") == []
    assert [t.kind for t in sla.timers_of(get(bot.uow, case.id), bot.config)] == [
        "resolution-reminder",
        "resolution",
    ]


def test_a_resolved_case_has_no_timers_and_a_late_job_sends_nothing(
    bot: RunningBot, fake: FakeSlack, clock: FakeClock
) -> None:
    case = open_case(bot.uow, bot.config, clock, fake)
    with bot.uow() as uow:
        stored = uow.cases.get(case.id)
        stored.status = CaseStatus.RESOLVED
        stored.resolved_at = clock.advance(minutes=5)
        uow.commit()
    assert sla.timers_of(get(bot.uow, case.id), bot.config) == []
    clock.advance(days=3)
    for kind in sla.KINDS:
        assert not sla.fire_timer(
            Services(bot.uow, bot.config, gateway(fake), clock), case.id, kind
        )
    assert replies(fake, case) == [] and fake.dms("U0LEAD001") == []


def test_reopening_restarts_the_resolution_clock(
    bot: RunningBot, fake: FakeSlack, clock: FakeClock
) -> None:
    case = open_case(bot.uow, bot.config, clock, fake)
    clock.advance(days=2)
    assert sla.fire_timer(
        Services(bot.uow, bot.config, gateway(fake), clock),
        case.id,
        sla.RESOLUTION,
    )
    with bot.uow() as uow:
        stored = uow.cases.get(case.id)
        stored.status = CaseStatus.OPEN
        sla.restart_resolution_clock(uow, bot.config, stored, clock.now())
        uow.commit()
    reopened = get(bot.uow, case.id)
    assert reopened.resolution_due == clock.now() + timedelta(days=1)
    assert reopened.resolution_breached_at is None
    assert {t.kind for t in sla.timers_of(reopened, bot.config)} >= {"resolution"}


def test_changing_urgency_moves_the_deadlines_and_tells_the_timers(
    bot: RunningBot, fake: FakeSlack, clock: FakeClock
) -> None:
    case = open_case(bot.uow, bot.config, clock, fake, urgency="low")
    timers = RecordingTimers()
    changed = sla.change_urgency(
        Services(bot.uow, bot.config, gateway(fake), clock, timers),
        team_id=TEAM,
        actor_id="U0LEAD001",
        case_number="27343",
        urgency="critical",
    )
    assert (changed.previous, changed.urgency) == ("low", "critical")
    stored = get(bot.uow, case.id)
    assert stored.urgency == "critical"
    assert stored.first_response_due == stored.created_at + timedelta(minutes=15)
    assert stored.resolution_due == stored.created_at + timedelta(hours=4)
    assert timers.changed == [case.id]
    [event] = events(bot.uow, case.id, "urgency_changed")
    assert event.data == {"from": "low", "to": "critical"} and event.actor_id == "U0LEAD001"
    assert fake.calls_to("chat.update")  # the card shows the new urgency


def test_only_leads_and_the_filer_change_urgency(
    bot: RunningBot, fake: FakeSlack, clock: FakeClock
) -> None:
    case = open_case(bot.uow, bot.config, clock, fake, urgency="low")
    timers = RecordingTimers()
    services = Services(bot.uow, bot.config, gateway(fake), clock, timers)
    with pytest.raises(NotALead):
        sla.change_urgency(
            services, team_id=TEAM, actor_id="U0EXP0001", case_number="27343", urgency="critical"
        )
    with pytest.raises(SwarmError, match="not an urgency"):
        sla.change_urgency(
            services, team_id=TEAM, actor_id="U0AGENT01", case_number="27343", urgency="urgent"
        )
    sla.change_urgency(
        services, team_id=TEAM, actor_id="U0AGENT01", case_number="27343", urgency="medium"
    )
    assert get(bot.uow, case.id).urgency == "medium" and timers.changed == [case.id]


def test_a_reminder_slack_does_not_take_is_owed_and_sent_once_later(
    bot: RunningBot, fake: FakeSlack, clock: FakeClock
) -> None:
    case = open_case(bot.uow, bot.config, clock, fake)
    clock.advance(minutes=50)
    fake.inject("chat.postMessage", status=500, times=1)
    services = Services(bot.uow, bot.config, gateway(fake, retries=0), clock)
    assert sla.fire_timer(services, case.id, sla.FIRST_RESPONSE_REMINDER)
    assert get(bot.uow, case.id).first_response_reminded_at == clock.now()  # owed, not lost
    assert replies(fake, case) == []
    assert not sla.fire_timer(services, case.id, sla.FIRST_RESPONSE_REMINDER)
    clock.advance(minutes=1)
    assert deliver_owed(services) == 1
    assert deliver_owed(services) == 0
    assert len(replies(fake, case)) == 1


def test_a_quiet_thread_is_nudged_once_per_quiet_spell(
    bot: RunningBot, fake: FakeSlack, clock: FakeClock
) -> None:
    case = open_case(bot.uow, bot.config, clock, fake)  # stale_after defaults to 2h
    slack = gateway(fake)
    clock.advance(hours=1, minutes=59)
    assert sla.nudge_stale(Services(bot.uow, bot.config, slack, clock)) == 0
    clock.advance(minutes=1)
    assert sla.nudge_stale(Services(bot.uow, bot.config, slack, clock)) == 1
    assert sla.nudge_stale(Services(bot.uow, bot.config, slack, clock)) == 0
    [nudge] = replies(fake, case)
    assert "<@U0LEAD001>" in nudge and "quiet for 2h" in nudge
    # Someone speaks in the thread: the quiet time starts again from there.
    clock.advance(minutes=30)
    with bot.uow() as uow:
        uow.session.add(
            Message(
                team_id=TEAM,
                case_id=case.id,
                channel_id=case.channel_id,
                ts="1800000000.000100",
                thread_ts=case.thread_ts,
                user_id="U0EXP0001",
                text="looking",
                posted_at=clock.now(),
            )
        )
        uow.commit()
    clock.advance(hours=1, minutes=59)
    assert sla.nudge_stale(Services(bot.uow, bot.config, slack, clock)) == 0
    clock.advance(minutes=1)
    assert sla.nudge_stale(Services(bot.uow, bot.config, slack, clock)) == 1
    assert len(replies(fake, case)) == 2
    assert len(events(bot.uow, case.id, "stale_nudged")) == 2


def test_a_resolved_or_cardless_case_is_never_nudged(
    bot: RunningBot, fake: FakeSlack, clock: FakeClock
) -> None:
    case = open_case(bot.uow, bot.config, clock, fake)
    with bot.uow() as uow:
        uow.cases.get(case.id).status = CaseStatus.RESOLVED
        uow.commit()
    fake.inject("chat.postMessage", status=500, times=10)
    file_case(
        Services(bot.uow, bot.config, gateway(fake), clock),
        CaseDraft(TEAM, "U0AGENT01", "555", "low", "api", "Card never posted"),
    )
    clock.advance(days=1)
    assert sla.nudge_stale(Services(bot.uow, bot.config, gateway(fake, retries=0), clock)) == 0


def test_the_daily_digest_goes_to_each_swarm_channel_once_a_day(
    bot: RunningBot, fake: FakeSlack, clock: FakeClock
) -> None:
    first = open_case(bot.uow, bot.config, clock, fake, number="1001", urgency="critical")
    clock.advance(hours=1)
    open_case(bot.uow, bot.config, clock, fake, number="1002")
    done = open_case(bot.uow, bot.config, clock, fake, number="1003", topic="billing")
    slack = gateway(fake)
    assert sla.fire_timer(Services(bot.uow, bot.config, slack, clock), first.id, sla.FIRST_RESPONSE)
    with bot.uow() as uow:
        resolved = uow.cases.get(done.id)
        resolved.status = CaseStatus.RESOLVED
        resolved.resolved_at = clock.now()
        uow.commit()
    clock.advance(days=1)
    # api, its apac region channel, billing: each once.
    assert sla.send_digests(Services(bot.uow, bot.config, slack, clock)) == 3
    assert sla.send_digests(Services(bot.uow, bot.config, slack, clock)) == 0
    api = fake.messages("C0API0001")[-1]["text"]
    assert "Open queue: 2 case(s); oldest waiting 1d 1h (case 1001)" in api
    assert "SLA breaches: 1 (1001)" in api and "Resolved yesterday: 0" in api
    billing = fake.messages("C0BILL001")[-1]["text"]
    assert "Open queue: empty" in billing and "Resolved yesterday: 1" in billing
    assert "Open queue: empty" in fake.messages("C0APIAPAC")[-1]["text"]
    clock.advance(days=1)
    assert sla.send_digests(Services(bot.uow, bot.config, slack, clock)) == 3


def test_a_digest_slack_refused_is_posted_on_the_next_run(
    bot: RunningBot, fake: FakeSlack, clock: FakeClock
) -> None:
    open_case(bot.uow, bot.config, clock, fake)
    fake.inject("chat.postMessage", status=500, times=1)
    slack = gateway(fake, retries=0)
    assert sla.send_digests(Services(bot.uow, bot.config, slack, clock)) == 2
    assert sla.send_digests(Services(bot.uow, bot.config, slack, clock)) == 1
    with bot.uow() as uow:
        assert uow.session.scalar(select(Case.id)) is not None


def test_durations_read_like_a_person_would_say_them() -> None:
    assert duration(timedelta(seconds=45)) == "45s"
    assert duration(timedelta(minutes=48)) == "48m"
    assert duration(timedelta(hours=1, minutes=12)) == "1h 12m"
    assert duration(timedelta(days=2, hours=4, minutes=3)) == "2d 4h"
    assert duration(timedelta(hours=3)) == "3h"
    assert duration(timedelta(minutes=17, seconds=5)) == "17m"
    assert duration(timedelta(days=7)) == "7d"
    assert duration(timedelta(days=14), exact=True) == "2w"


def test_swarm_urgency_by_a_lead_moves_the_deadlines_and_rearms(
    bot: RunningBot, fake: FakeSlack, clock: FakeClock
) -> None:
    timers = RecordingTimers()
    bot.swarm.timers = timers
    case = open_case(bot.uow, bot.config, clock, fake, urgency="low")
    bot.driver.command("urgency 27343 CRITICAL", user="U0LEAD001", channel="C0API0001")
    body = fake.responses()[-1]["body"]
    assert body["response_type"] == "ephemeral"
    assert "Case 27343 is now *critical* (was low)" in body["text"]
    assert "first response due <!date^" in body["text"]
    stored = get(bot.uow, case.id)
    assert stored.urgency == "critical"
    assert stored.first_response_due == stored.created_at + timedelta(minutes=15)
    assert timers.changed == [case.id]


def test_swarm_urgency_is_refused_to_others_and_checks_its_arguments(
    bot: RunningBot, fake: FakeSlack, clock: FakeClock
) -> None:
    case = open_case(bot.uow, bot.config, clock, fake, urgency="low")
    bot.driver.command("urgency 27343 critical", user="U0EXP0001", channel="C0API0001")
    assert "Only swarm leads" in fake.responses()[-1]["body"]["text"]
    reply = bot.driver.command("urgency 27343 panic", user="U0LEAD001")
    assert "Usage: `/swarm urgency <case> <low|medium|high|critical>`" in reply.json()["text"]
    bot.driver.command("urgency 99999 high", user="U0LEAD001")
    assert "No case 99999" in fake.responses()[-1]["body"]["text"]
    assert get(bot.uow, case.id).urgency == "low"


def test_a_breach_in_a_topic_nobody_leads_is_told_in_the_thread(
    bot: RunningBot, fake: FakeSlack, clock: FakeClock
) -> None:
    config = bot.config.model_copy(
        update={
            "topics": [
                t.model_copy(update={"leads": []}) if t.key == "billing" else t
                for t in bot.config.topics
            ]
        }
    )
    case = open_case(bot.uow, config, clock, fake, topic="billing")
    clock.advance(hours=1)
    assert sla.fire_timer(
        Services(bot.uow, config, gateway(fake), clock),
        case.id,
        sla.FIRST_RESPONSE,
    )
    [alert] = replies(fake, case)
    assert "breached its first response SLA of 1h" in alert
    assert fake.dms("U0LEAD002") == []


def test_a_breach_dm_goes_only_to_leads_who_may_see_the_private_case(
    bot: RunningBot, fake: FakeSlack, clock: FakeClock
) -> None:
    """Private stays private, for the bot's own DMs too: a lead who is not in the case's
    private channel is not shown it by an alert; the DM is given up, logged, and never sent."""
    config = bot.config.model_copy(
        update={
            "topics": [
                t.model_copy(update={"leads": ["U0LEAD001", "U0LEAD002"]}) if t.key == "api" else t
                for t in bot.config.topics
            ]
        }
    )
    fake.add_channel(
        "C0API0001",
        "swarm-api",
        is_private=True,
        members=[fake.bot_user_id, "U0AGENT01", "U0LEAD001"],
    )
    case = open_case(bot.uow, config, clock, fake)
    clock.advance(hours=1)
    services = Services(bot.uow, config, gateway(fake), clock)
    assert sla.fire_timer(services, case.id, sla.FIRST_RESPONSE)
    [alert] = [m["text"] for m in fake.dms("U0LEAD001")]
    assert "breached its first response SLA" in alert
    assert fake.dms("U0LEAD002") == []  # leads api too, but is not in the private channel
    with bot.uow() as uow:
        [refused] = uow.session.scalars(
            select(PendingPost).where(PendingPost.channel_id == "U0LEAD002")
        ).all()
        assert refused.sent_at is None and refused.given_up_at == clock.now()
        assert "may not see case 27343" in (refused.last_error or "")
    clock.advance(hours=1)
    assert deliver_owed(services) == 0  # given up: never tried again
    assert fake.dms("U0LEAD002") == []
