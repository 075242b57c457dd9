"""Private stays private: one access rule for every path that shows or changes a case.

A case whose swarm channel or incident channel is private is seen, joined, claimed, assigned,
escalated, resolved and reopened only by members of that channel; everyone else gets the
answer they would get for a case that does not exist, and nothing changes.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.gateway import ChannelAccess
from storage.models import Case, CaseEvent, Participant
from tests.conftest import RunningBot
from tests.fakeslack import FakeSlack
from tests.scenario import GOOD, LEAD, file, open_modal

# The membership check asks Slack: never while a transaction is open.
pytestmark = pytest.mark.usefixtures("no_slack_call_inside_a_transaction")

STRANGER = "U0AGENT02"  # in the workspace, not in the private channel
OTHER_LEAD = "U0LEAD002"  # a lead (of billing), not in the private channel
MEMBERS = ["U0AGENT01", "U0LEAD001", "U0EXP0001"]


def answer(fake: FakeSlack, before: int) -> str:
    """The one answer the last command got (through its response_url)."""
    responses = fake.responses()[before:]
    assert len(responses) == 1, responses
    return responses[0]["body"]["text"]


def said(bot: RunningBot, fake: FakeSlack, text: str, user: str) -> str:
    before = len(fake.responses())
    reply = bot.driver.command(text, user=user)
    assert reply.status == 200
    if reply.body:
        return reply.json()["text"]
    return answer(fake, before)


def snapshot(bot: RunningBot) -> tuple[int, ...]:
    with bot.uow() as uow:
        case = uow.session.scalars(select(Case)).one()
        return (
            uow.session.scalar(select(func.count(CaseEvent.id))),
            uow.session.scalar(select(func.count(Participant.id))),
            hash((case.status, case.assignee_id, case.urgency, case.severity, case.resolution)),
        )


@pytest.fixture
def private_case(bot: RunningBot, fake: FakeSlack) -> Case:
    """Case 27343, filed into the API swarm channel, which is private."""
    fake.add_channel(
        "C0API0001", "swarm-api", is_private=True, members=[fake.bot_user_id, *MEMBERS]
    )
    _view, reply = file(bot, fake)
    assert reply.body == ""
    with bot.uow() as uow:
        return uow.session.scalars(select(Case)).one()


CASE_COMMANDS = [
    "status {n}",
    "claim {n}",
    "assign {n} <@U0AGENT01>",
    "urgency {n} critical",
    "escalate {n} sev2",
    "sev {n} sev1",
    "resolve {n} fixed it",
    "reopen {n}",
    "similar {n}",
]


@pytest.mark.parametrize("who", [STRANGER, OTHER_LEAD])
def test_a_non_member_is_told_a_private_case_does_not_exist_and_changes_nothing(
    bot: RunningBot, fake: FakeSlack, private_case: Case, who: str
) -> None:
    before = snapshot(bot)
    calls = len(fake.calls_to("conversations.create")) + len(fake.calls_to("chat.update"))
    for template in CASE_COMMANDS:
        hidden = said(bot, fake, template.format(n="27343"), who)
        missing = said(bot, fake, template.format(n="99999"), who)
        assert hidden == missing.replace("99999", "27343"), template
        assert "summary" not in hidden.lower() and "Webhooks" not in hidden
    assert snapshot(bot) == before
    assert len(fake.calls_to("conversations.create")) + len(fake.calls_to("chat.update")) == calls


def test_the_card_buttons_are_refused_to_non_members(
    bot: RunningBot, fake: FakeSlack, private_case: Case
) -> None:
    before = snapshot(bot)
    for action in ("case-join", "case-claim", "case-escalate", "case-resolve"):
        responses = len(fake.responses())
        views = len(fake.opened_views())
        reply = bot.driver.click(
            action, str(private_case.id), user=OTHER_LEAD, message_ts=private_case.thread_ts
        )
        assert reply.status == 200
        if action in ("case-escalate", "case-resolve"):
            # The modal opens at once (a trigger lives 3 s), then says why: no form in it.
            shown = fake.opened_views()[-1]
            assert len(fake.opened_views()) == views + 1 and not shown.get("submit"), action
            assert "No case 27343 here." in str(shown["blocks"]), (action, shown["blocks"])
            continue
        assert len(fake.opened_views()) == views, action
        text = answer(fake, responses)
        assert text.startswith("No case 27343 here."), (action, text)
    assert snapshot(bot) == before


def test_members_still_see_and_work_the_case(
    bot: RunningBot, fake: FakeSlack, private_case: Case
) -> None:
    assert "Webhooks time out" in said(bot, fake, "status 27343", "U0EXP0001")
    assert "yours" in said(bot, fake, "claim 27343", "U0EXP0001").lower()
    with bot.uow() as uow:
        assert uow.session.get(Case, private_case.id).assignee_id == "U0EXP0001"


def test_a_lead_cannot_hand_a_private_case_to_a_non_member(
    bot: RunningBot, fake: FakeSlack, private_case: Case
) -> None:
    before = snapshot(bot)
    text = said(bot, fake, f"assign 27343 <@{STRANGER}>", LEAD)
    assert f"<@{STRANGER}> is not a member of the private channel" in text
    assert snapshot(bot) == before


def test_the_open_queue_leaves_out_cases_the_user_cannot_see(
    bot: RunningBot, fake: FakeSlack, private_case: Case
) -> None:
    fake.add_channel(
        "C0API0001", "swarm-api", is_private=True, members=[fake.bot_user_id, *MEMBERS]
    )
    assert "27343" in said(bot, fake, "status", "U0AGENT01")
    # Someone outside the channel cannot run /swarm there, but the rule holds all the same.
    assert "27343" not in said(bot, fake, "status", STRANGER)


def test_a_confidential_escalation_hides_the_case_from_the_public_swarm_channel(
    bot: RunningBot, fake: FakeSlack
) -> None:
    _view, reply = file(bot, fake, {**GOOD})
    assert reply.body == ""
    with bot.uow() as uow:
        case = uow.session.scalars(select(Case)).one()
    bot.driver.click("case-escalate", str(case.id), user=LEAD, message_ts=case.thread_ts)
    bot.driver.submit(fake.opened_views()[-1], {"severity": "1", "confidential": "yes"}, user=LEAD)
    with bot.uow() as uow:
        case = uow.session.get(Case, case.id)
        assert case.confidential and case.incident_channel_id
    assert fake.channel(case.incident_channel_id)["is_private"]
    invited = set(fake.channel(case.incident_channel_id)["members"])
    assert STRANGER not in invited and "U0AGENT01" in invited
    assert said(bot, fake, "status 27343", STRANGER).startswith("No case 27343 here.")
    assert "Webhooks time out" in said(bot, fake, "status 27343", "U0AGENT01")
    assert said(bot, fake, "search webhooks", "U0AGENT01").startswith("Results 1–")
    hidden = said(bot, fake, "search webhooks", STRANGER)
    assert not hidden.startswith("Results") and "27343" not in hidden, hidden


def test_filing_a_taken_number_names_its_thread_only_to_those_who_may_see_it(
    bot: RunningBot, fake: FakeSlack, private_case: Case
) -> None:
    with bot.uow() as uow:
        permalink = uow.session.get(Case, private_case.id).permalink
    assert permalink
    errors = {}
    for user in (STRANGER, "U0EXP0001"):
        view = open_modal(bot, fake, user=user)
        reply = bot.driver.submit(view, GOOD, user=user)
        errors[user] = reply.json()["errors"]["case_number"]
    assert errors[STRANGER] == "Case 27343 is already filed, in a private channel you are not in."
    assert permalink in errors["U0EXP0001"]
    with bot.uow() as uow:
        assert uow.session.scalar(select(func.count(Case.id))) == 1


def test_search_asks_slack_who_may_read_only_between_transactions(
    bot: RunningBot, fake: FakeSlack, private_case: Case
) -> None:
    """A cold membership cache: search asks Slack with no transaction open (the fixture)."""
    bot.swarm.channels = ChannelAccess()  # forget what was learnt about the channels
    assert said(bot, fake, "search webhooks", "U0AGENT01").startswith("Results 1–")
    assert fake.calls_to("conversations.members")
    assert not said(bot, fake, "search webhooks", STRANGER).startswith("Results")


def test_when_slack_cannot_say_who_may_see_a_case_nothing_changes_and_the_member_is_told(
    bot: RunningBot, fake: FakeSlack, private_case: Case
) -> None:
    bot.swarm.channels = ChannelAccess()  # nothing remembered: the rule must ask Slack
    before = snapshot(bot)
    fake.outage(60, method="conversations.info")
    fake.outage(60, method="conversations.members")
    text = said(bot, fake, "claim 27343", "U0AGENT01")
    assert "cannot check who may see case 27343" in text
    assert "Nothing was changed" in text and "saved" not in text
    assert snapshot(bot) == before


def test_a_long_queue_lists_its_oldest_forty_and_counts_only_what_the_user_may_see(
    bot: RunningBot, fake: FakeSlack
) -> None:
    """`/swarm status` loads only the cases it shows and asks Slack once per pair of channels
    (swarm, incident), however long the queue is."""
    fake.add_channel(
        "C0INC0001", "help-api-sev1-1", is_private=True, members=[fake.bot_user_id, *MEMBERS]
    )
    _view, reply = file(bot, fake)
    assert reply.body == ""
    with bot.uow() as uow:
        first = uow.session.scalars(select(Case)).one()
        columns = {c.key: getattr(first, c.key) for c in Case.__table__.columns if c.key != "id"}
        for n in range(1, 45):  # 44 more, newer; three of them escalated into a private room
            uow.session.add(
                Case(
                    **{
                        **columns,
                        "case_number": str(27343 + n),
                        "thread_ts": f"{float(first.thread_ts) + n:.6f}",
                        "intake_view_id": None,
                        "created_at": first.created_at + timedelta(minutes=n),
                        "incident_channel_id": "C0INC0001" if n in (2, 3, 4) else None,
                    }
                )
            )
        uow.commit()
    asked = len(fake.calls_to("conversations.members")) + len(fake.calls_to("conversations.info"))
    member = said(bot, fake, "status", "U0AGENT01")
    lines = member.split("\n")
    assert lines[0].startswith("*45 open cases*") and len(member) <= 3000
    assert 10 < len(lines) - 2 <= 40 and lines[-1] == f"… and {45 - (len(lines) - 2)} more."
    assert all(
        f"|{n}>" in lines[i] for i, n in ((1, 27343), (2, 27344), (3, 27345))
    )  # oldest first
    stranger = said(bot, fake, "status", STRANGER)
    lines = stranger.split("\n")
    assert lines[0].startswith("*42 open cases*")
    assert lines[-1] == f"… and {42 - (len(lines) - 2)} more."
    assert not any(f"|{n}>" in stranger for n in (27345, 27346, 27347))
    assert "|27344>" in lines[2] and "|27348>" in lines[3]
    calls = len(fake.calls_to("conversations.members")) + len(fake.calls_to("conversations.info"))
    assert calls - asked <= 8  # two pairs of channels, two users: not one call per case
