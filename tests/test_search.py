"""`/swarm search`: ranked full-text search over case fields and thread messages, on both
databases, with filters, paging and the access rule."""

from __future__ import annotations

import json
from itertools import count

from sqlalchemy import select

from storage.domain import CaseStatus
from storage.models import Case
from tests.conftest import RunningBot
from tests.fakeslack import FakeSlack
from tests.scenario import changed_event, deleted_event, filed_case, reply_event

_ts = count(1)


def say(
    bot: RunningBot, fake: FakeSlack, case: Case, text: str, *, user: str = "U0EXP0001", **extra
) -> str:
    ts = f"18000{next(_ts):05d}.000100"
    channel = extra.get("channel", case.channel_id)
    fake.add_message(channel, user=user, text=text, ts=ts, thread_ts=case.thread_ts)
    bot.driver.event(reply_event(case, text, user=user, ts=ts, **extra))
    return ts


def search(bot: RunningBot, fake: FakeSlack, text: str, *, user: str = "U0AGENT01") -> dict:
    reply = bot.driver.command(f"search {text}", user=user)
    assert reply.status == 200
    return fake.responses()[-1]["body"]


def sections(answer: dict) -> list[str]:
    """The result sections of an answer (an empty list when it says there are none)."""
    texts = [b["text"]["text"] for b in answer.get("blocks") or [] if b["type"] == "section"]
    return [t for t in texts if not t.startswith("No results")]


def more_button(answer: dict) -> dict | None:
    for block in answer.get("blocks") or []:
        if block["type"] == "actions":
            return block["elements"][0]
    return None


def set_case(bot: RunningBot, case: Case, **values) -> None:
    with bot.uow() as uow:
        stored = uow.cases.get(case.id)
        for key, value in values.items():
            setattr(stored, key, value)
        uow.commit()


def test_a_thread_message_is_found_with_its_match_marked_and_a_permalink(
    bot: RunningBot, fake: FakeSlack
) -> None:
    case = filed_case(bot, fake)
    ts = say(bot, fake, case, "The webhook retries pile up behind the rate limiter")
    answer = search(bot, fake, "rate limiter")
    [hit] = sections(answer)
    assert "*limiter*" in hit and "*rate*" in hit
    assert f"Case {case.case_number}" in hit and "<@U0EXP0001>" in hit
    assert f"p{ts.replace('.', '')}" in hit  # the message's own permalink
    assert answer["response_type"] == "ephemeral"


def test_case_fields_are_searchable_and_rank_above_passing_mentions(
    bot: RunningBot, fake: FakeSlack
) -> None:
    case = filed_case(bot, fake, summary="Invoices render blank", customer="Globex")
    other = filed_case(bot, fake, case_number="27344", summary="Login loop", details="")
    say(bot, fake, other, "unrelated, but Globex mentioned invoices once")
    set_case(bot, case, resolution="Cleared the PDF template cache")
    hits = sections(search(bot, fake, "invoices"))
    assert len(hits) == 2 and "Case 27343" in hits[0]
    assert "Case 27343" in sections(search(bot, fake, "Globex"))[0]
    assert "Case 27343" in sections(search(bot, fake, "template cache"))[0]
    [by_number] = sections(search(bot, fake, "27344"))
    assert "Case 27344" in by_number


def test_an_edited_message_is_found_by_its_new_text_only(bot: RunningBot, fake: FakeSlack) -> None:
    case = filed_case(bot, fake)
    ts = say(bot, fake, case, "flush the memcached fleet")
    bot.driver.event(changed_event(case, ts, "restart the redis cluster"))
    assert sections(search(bot, fake, "memcached")) == []
    assert len(sections(search(bot, fake, "redis"))) == 1


def test_a_deleted_message_is_no_longer_found(bot: RunningBot, fake: FakeSlack) -> None:
    case = filed_case(bot, fake)
    ts = say(bot, fake, case, "the staging password is hunter2")
    assert len(sections(search(bot, fake, "hunter2"))) == 1
    bot.driver.event(deleted_event(case, ts))
    answer = search(bot, fake, "hunter2")
    assert sections(answer) == [] and answer["text"].startswith("No results for `hunter2`")


def test_a_retried_delivery_is_one_result(bot: RunningBot, fake: FakeSlack) -> None:
    case = filed_case(bot, fake)
    event = reply_event(case, "kafka consumer lag", ts="1800099999.000100")
    bot.driver.event(event)
    bot.driver.event(dict(event), retry_num=1)
    assert len(sections(search(bot, fake, "kafka"))) == 1


def test_a_private_incident_channel_is_searched_by_its_members_only(
    bot: RunningBot, fake: FakeSlack
) -> None:
    case = filed_case(bot, fake)
    fake.add_channel(
        "C0INCID01",
        "help-api-sev1-27343",
        is_private=True,
        members=[fake.bot_user_id, "U0EXP0001"],
    )
    set_case(bot, case, incident_channel_id="C0INCID01", severity=1)
    event = reply_event(case, "root cause: expired zanzibar certificate", channel="C0INCID01")
    del event["thread_ts"]
    bot.driver.event(event)
    outsider = search(bot, fake, "zanzibar", user="U0EXP0002")
    assert sections(outsider) == [] and outsider["text"].startswith("No results")
    assert "zanzibar" not in json.dumps(outsider).replace("`zanzibar`", "")
    assert "certificate" not in json.dumps(outsider)
    member = search(bot, fake, "zanzibar", user="U0EXP0001")
    assert "*zanzibar*" in sections(member)[0]
    members_calls = fake.calls_to("conversations.members")
    search(bot, fake, "zanzibar", user="U0EXP0002")
    assert len(fake.calls_to("conversations.members")) == len(members_calls)  # cached


def test_filters_narrow_by_topic_status_severity_and_date(
    bot: RunningBot, fake: FakeSlack, clock
) -> None:
    api = filed_case(bot, fake)
    billing = filed_case(bot, fake, case_number="30001", topic="billing", region="")
    say(bot, fake, api, "gateway throttling again")
    say(bot, fake, billing, "gateway throttling on invoices")
    set_case(bot, billing, status=CaseStatus.RESOLVED)
    set_case(bot, api, status=CaseStatus.ESCALATED, severity=1)

    def numbers(text: str) -> list[str]:
        # By the link's label: a permalink's digits may contain a case number by chance.
        found = sections(search(bot, fake, text))
        return [n for s in found for n in ("27343", "30001") if f"|Case {n}>" in s]

    assert sorted(numbers("throttling")) == ["27343", "30001"]
    assert numbers("throttling topic:billing") == ["30001"]
    assert numbers("throttling status:resolved") == ["30001"]
    assert numbers("throttling status:escalated") == ["27343"]
    assert numbers("throttling status:open") == []
    assert numbers("throttling sev:1") == ["27343"]
    assert numbers("throttling after:2000-01-01 before:2001-01-01") == []
    assert sorted(numbers("throttling after:2020-01-01")) == ["27343", "30001"]
    bad = search(bot, fake, "throttling status:sleeping")
    assert "status:" in bad["text"] and "open" in bad["text"]
    bad = search(bot, fake, "throttling topic:nope")
    assert "Unknown topic" in bad["text"]


def test_more_pages_through_the_results(bot: RunningBot, fake: FakeSlack) -> None:
    case = filed_case(bot, fake, summary="Queue stalls")
    for i in range(7):
        say(bot, fake, case, f"heartbeat number {i} missed")
    first = search(bot, fake, "heartbeat")
    assert len(sections(first)) == 5
    button = more_button(first)
    assert button is not None
    bot.driver.click(button["action_id"], button["value"], user="U0AGENT01")
    second = fake.responses()[-1]["body"]
    assert second["replace_original"] is True
    assert len(sections(second)) == 2 and more_button(second) is None
    seen = {s.split("heartbeat number *")[0] for s in sections(first) + sections(second)}
    assert len(sections(first) + sections(second)) == 7 and seen
    texts = " ".join(sections(first) + sections(second))
    assert all(f"number {i} missed" in texts for i in range(7)), texts


def test_user_text_in_results_is_escaped(bot: RunningBot, fake: FakeSlack) -> None:
    case = filed_case(bot, fake)
    say(bot, fake, case, "ping <!channel> about the outage & <@U0LEAD001>")
    [hit] = sections(search(bot, fake, "outage"))
    assert "<!channel>" not in hit and "&lt;!channel&gt;" in hit and "&amp;" in hit
    assert "<@U0LEAD001>" not in hit


def test_searching_without_words_gets_a_usage_line(bot: RunningBot, fake: FakeSlack) -> None:
    answer = bot.driver.command("search status:open").json()
    answer = answer or fake.responses()[-1]["body"]
    assert "Search for some words" in answer["text"]
    with bot.uow() as uow:
        assert uow.session.scalars(select(Case)).all() == []
