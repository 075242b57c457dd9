"""Filing a case: shortcut or /swarm new -> modal -> stored case -> card in its swarm channel."""

from __future__ import annotations

import threading
import time

from sqlalchemy import func, select

from storage.domain import CaseStatus
from storage.models import Case, CaseEvent, Participant
from tests.conftest import RunningBot
from tests.fakeslack import FakeSlack
from tests.scenario import GOOD, cards, file, open_modal, services
from workflows.intake import publish_pending


def cases(bot: RunningBot) -> list[Case]:
    with bot.uow() as uow:
        return list(uow.session.scalars(select(Case).order_by(Case.id)))


def test_global_shortcut_opens_the_intake_modal(bot: RunningBot, fake: FakeSlack) -> None:
    reply = bot.driver.global_shortcut()
    assert reply.status == 200
    call = fake.calls_to("views.open")[0]
    view = fake.opened_views()[0]
    assert view["callback_id"] == "swarm-intake"
    blocks = {b["block_id"] for b in view["blocks"]}
    assert blocks == {"case_number", "urgency", "topic", "region", "summary", "details", "customer"}
    topics = next(b for b in view["blocks"] if b["block_id"] == "topic")
    assert [o["value"] for o in topics["element"]["options"]] == ["api", "billing"]
    assert call["trigger_id"].endswith(".trigger")


def test_choosing_a_topic_offers_only_its_regions(bot: RunningBot, fake: FakeSlack) -> None:
    view = open_modal(bot, fake)
    assert bot.driver.select_in_view(view, "topic", "billing").status == 200
    updated = fake.views[view["id"]]
    assert "region" not in {b["block_id"] for b in updated["blocks"]}
    bot.driver.select_in_view(updated, "topic", "api")
    updated = fake.views[view["id"]]
    region = next(b for b in updated["blocks"] if b["block_id"] == "region")
    assert [o["value"] for o in region["element"]["options"]] == ["emea", "amer", "apac"]
    assert updated["private_metadata"] == view["private_metadata"]
    reply = bot.driver.submit(updated, {**GOOD, "region": "apac"})
    assert reply.status == 200 and len(cards(fake, "C0APIAPAC")) == 1


def test_a_stale_topic_choice_is_ignored(bot: RunningBot, fake: FakeSlack) -> None:
    view = open_modal(bot, fake)
    fake.inject("views.update", error="hash_conflict")
    assert bot.driver.select_in_view(view, "topic", "billing").status == 200
    assert fake.dms("U0AGENT01") == []  # nothing to tell: the newer choice wins


def test_filing_posts_the_card_in_the_topic_channel_and_dms_the_filer(
    bot: RunningBot, fake: FakeSlack
) -> None:
    _view, reply = file(bot, fake)
    assert reply.status == 200 and reply.body == ""  # the modal closes
    [case] = cases(bot)
    assert (case.case_number, case.urgency, case.topic_key, case.status) == (
        "27343",
        "high",
        "api",
        CaseStatus.OPEN,
    )
    assert case.channel_id == "C0API0001" and case.filer_id == "U0AGENT01"
    [card] = cards(fake, "C0API0001")
    assert case.thread_ts == card["ts"]
    assert case.permalink and card["ts"].replace(".", "") in case.permalink
    text = str(card["blocks"])
    assert "<https://support.example.com/cases/27343|27343>" in text
    assert "Webhooks time out" in text and "<@U0AGENT01>" in text and "ACME" in text
    buttons = [
        e["action_id"] for b in card["blocks"] if b["type"] == "actions" for e in b["elements"]
    ]
    assert buttons == ["case-join", "case-claim", "case-escalate", "case-resolve"]
    assert card["metadata"]["event_payload"]["case_id"] == case.id
    [dm] = fake.dms("U0AGENT01")
    assert case.permalink in dm["text"] and "<#C0API0001>" in dm["text"]
    with bot.uow() as uow:
        kinds = list(uow.session.scalars(select(CaseEvent.kind).order_by(CaseEvent.id)))
        participants = list(uow.session.scalars(select(Participant.user_id)))
    assert kinds == ["filed", "card_posted"]
    assert participants == ["U0AGENT01"]
    assert case.first_response_due is not None and case.resolution_due is not None
    assert (case.first_response_due - case.created_at).total_seconds() == 3600


def test_the_case_is_stored_before_slack_is_called(bot: RunningBot, fake: FakeSlack) -> None:
    seen: list[int] = []

    def card_posted_with_case_stored(params: dict) -> bool:
        with bot.uow() as uow:
            seen.append(uow.session.scalar(select(func.count(Case.id))))
        return False

    fake.inject("chat.postMessage", when=card_posted_with_case_stored, times=None)
    file(bot, fake)
    assert seen and seen[0] == 1


def test_message_shortcut_prefills_and_keeps_the_permalink(
    bot: RunningBot, fake: FakeSlack
) -> None:
    source = fake.add_message(
        "C0GENERAL",
        user="U0CUST001",
        text="Checkout API returns 502\nfor all EU merchants since 9am",
    )
    view = open_modal(
        bot, fake, how="message", text=source["text"], channel="C0GENERAL", message_ts=source["ts"]
    )
    values = {b["block_id"]: b["element"].get("initial_value") for b in view["blocks"]}
    assert values["summary"] == "Checkout API returns 502"
    assert values["details"] == source["text"]
    reply = bot.driver.submit(
        view, {**GOOD, "summary": values["summary"], "details": values["details"]}
    )
    assert reply.status == 200
    [case] = cases(bot)
    assert case.source_channel_id == "C0GENERAL" and case.source_ts == source["ts"]
    assert case.source_permalink and source["ts"].replace(".", "") in case.source_permalink
    [card] = cards(fake, "C0API0001")
    assert case.source_permalink in str(card["blocks"])
    [note] = fake.ephemerals(channel="C0GENERAL", user="U0AGENT01")
    assert case.permalink in note["text"]
    assert fake.dms("U0AGENT01") == []


def test_swarm_new_prefills_the_number_and_answers_where_it_ran(
    bot: RunningBot, fake: FakeSlack
) -> None:
    view = open_modal(bot, fake, how="command", case_number="55501", channel="C0OTHER01")
    number = next(b for b in view["blocks"] if b["block_id"] == "case_number")
    assert number["element"]["initial_value"] == "55501"
    bot.driver.submit(view, {**GOOD, "case_number": "55501"})
    [note] = fake.ephemerals(channel="C0OTHER01", user="U0AGENT01")
    assert "55501" in note["text"]


def test_the_filer_gets_a_dm_when_the_ephemeral_cannot_reach_them(
    bot: RunningBot, fake: FakeSlack
) -> None:
    fake.add_channel("G0SECRET1", "secret-team", is_private=True, members=["U0AGENT01"])
    view = open_modal(bot, fake, how="command", case_number="55502", channel="G0SECRET1")
    bot.driver.submit(view, {**GOOD, "case_number": "55502"})
    assert fake.ephemerals(channel="G0SECRET1") == []
    [dm] = fake.dms("U0AGENT01")
    assert "55502" in dm["text"]


def test_a_region_with_its_own_channel_gets_the_card_there_only(
    bot: RunningBot, fake: FakeSlack
) -> None:
    file(bot, fake, {"region": "apac"})
    assert len(cards(fake, "C0APIAPAC")) == 1
    assert cards(fake, "C0API0001") == []
    file(bot, fake, {"case_number": "27344", "region": "emea"})
    assert len(cards(fake, "C0API0001")) == 1


def test_invalid_fields_come_back_inline_and_nothing_is_stored(
    bot: RunningBot, fake: FakeSlack
) -> None:
    view = open_modal(bot, fake)
    reply = bot.driver.submit(
        view,
        {
            **GOOD,
            "case_number": "27A",
            "summary": "   ",
            "details": "x" * 3001,
            "topic": "billing",
            "region": "apac",
        },
    )
    assert reply.status == 200
    answer = reply.json()
    assert answer["response_action"] == "errors"
    assert set(answer["errors"]) == {"case_number", "summary", "details", "region"}
    assert "27A" in answer["errors"]["case_number"]
    assert cases(bot) == []
    assert fake.calls_to("chat.postMessage") == []


def test_a_summary_over_150_characters_is_refused(bot: RunningBot, fake: FakeSlack) -> None:
    view = open_modal(bot, fake)
    reply = bot.driver.submit(view, {**GOOD, "summary": "s" * 151})
    assert "150" in reply.json()["errors"]["summary"]


def test_an_open_case_number_is_refused_with_a_link_to_its_thread(
    bot: RunningBot, fake: FakeSlack
) -> None:
    file(bot, fake)
    [case] = cases(bot)
    _view, reply = file(bot, fake, {"summary": "Same case again"}, user="U0AGENT02")
    error = reply.json()["errors"]["case_number"]
    assert "already open" in error and case.permalink in error
    assert len(cases(bot)) == 1 and len(cards(fake, "C0API0001")) == 1


def test_a_retried_submission_creates_one_case_and_one_card(
    bot: RunningBot, fake: FakeSlack
) -> None:
    view = open_modal(bot, fake)
    first = bot.driver.submit(view, GOOD)
    again = bot.driver.submit(view, GOOD, headers={"X-Slack-Retry-Num": "1"})
    assert first.status == again.status == 200 and again.body == ""
    assert len(cases(bot)) == 1
    assert len(cards(fake, "C0API0001")) == 1
    assert len(fake.dms("U0AGENT01")) == 1


def test_simultaneous_deliveries_of_one_submission_make_one_case(
    bot: RunningBot, fake: FakeSlack
) -> None:
    view = open_modal(bot, fake)
    fake.set_latency(0.05)
    replies = []
    threads = [
        threading.Thread(target=lambda: replies.append(bot.driver.submit(view, GOOD, wait=False)))
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bot.driver.executor.wait_idle()
    assert [r.status for r in replies] == [200] * 4
    assert len(cases(bot)) == 1
    assert len(cards(fake, "C0API0001")) == 1


def test_rate_limited_card_is_retried_after_retry_after(bot: RunningBot, fake: FakeSlack) -> None:
    fake.inject("chat.postMessage", status=429, retry_after=1, times=1)
    started = time.monotonic()
    _view, reply = file(bot, fake)
    assert reply.elapsed < 1.0  # the modal closes at once; the retry happens after the ack
    assert time.monotonic() - started >= 1.0
    assert len(cards(fake, "C0API0001")) == 1
    assert cases(bot)[0].thread_ts is not None


def test_server_errors_are_retried(bot: RunningBot, fake: FakeSlack) -> None:
    fake.inject("chat.postMessage", status=503, times=2)
    file(bot, fake)
    assert len(cards(fake, "C0API0001")) == 1


def test_a_card_slack_would_not_take_is_posted_after_a_restart(
    bot: RunningBot, fake: FakeSlack
) -> None:
    fake.inject("chat.postMessage", status=500, times=None)
    _view, reply = file(bot, fake)
    assert reply.status == 200 and reply.body == ""
    [case] = cases(bot)
    assert case.thread_ts is None  # kept, not lost
    fake.reset_faults()
    # A new process starts: the pending card is posted once, and the filer is told.
    posted = publish_pending(services(bot))
    assert posted == 1
    assert len(cards(fake, "C0API0001")) == 1
    assert cases(bot)[0].thread_ts is not None
    assert len(fake.dms("U0AGENT01")) == 1
    assert publish_pending(services(bot)) == 0
    with bot.uow() as uow:
        kinds = list(uow.session.scalars(select(CaseEvent.kind).order_by(CaseEvent.id)))
    assert kinds == ["filed", "card_failed", "card_posted"]


def test_during_an_outage_the_retry_sweep_stops_after_three_cases_in_a_row(
    bot: RunningBot, fake: FakeSlack
) -> None:
    """Cards Slack would not take (and cards without their link) wait for the next run once
    three in a row failed: during an outage each would otherwise spend the retries in turn."""
    fake.inject("chat.postMessage", status=500, times=None)
    for n in range(6):
        asked = len(fake.calls_to("chat.postMessage"))
        _view, reply = file(bot, fake, {"case_number": str(27343 + n)})
        assert reply.status == 200
        per_card = len(fake.calls_to("chat.postMessage")) - asked  # one try and its retries
    assert all(c.thread_ts is None for c in cases(bot))
    asked = len(fake.calls_to("chat.postMessage"))
    assert publish_pending(services(bot)) == 0
    assert len(fake.calls_to("chat.postMessage")) - asked == 3 * per_card  # not 6
    with bot.uow() as uow:
        failed = uow.session.scalars(select(CaseEvent).where(CaseEvent.kind == "card_failed"))
        assert len(list(failed)) == 6 + 3  # each at filing, then three of them in the sweep
    fake.reset_faults()
    assert publish_pending(services(bot)) == 6  # all of them once Slack is back
    assert len(cards(fake, "C0API0001")) == 6
    # Links: Slack takes the cards but gives no permalinks; three misses end the run too.
    with bot.uow() as uow:
        for case in uow.session.scalars(select(Case)):
            case.permalink = None
        uow.commit()
    fake.inject("chat.getPermalink", status=500, times=None)
    asked = len(fake.calls_to("chat.getPermalink"))
    publish_pending(services(bot))
    per_link = len(fake.calls_to("chat.getPermalink")) - asked
    assert per_link % 3 == 0 and per_link < 6 * (per_link // 3)
    fake.reset_faults()
    publish_pending(services(bot))
    assert all(c.permalink for c in cases(bot))


def test_a_card_posted_but_not_recorded_is_found_not_posted_twice(
    bot: RunningBot, fake: FakeSlack
) -> None:
    file(bot, fake)
    with bot.uow() as uow:  # as if the process died between Slack's answer and the commit
        case = uow.session.scalars(select(Case)).one()
        case.thread_ts, case.permalink = None, None
        uow.commit()
    publish_pending(services(bot))
    assert len(cards(fake, "C0API0001")) == 1
    assert cases(bot)[0].thread_ts == cards(fake, "C0API0001")[0]["ts"]


def test_an_expired_trigger_is_explained_to_the_user(bot: RunningBot, fake: FakeSlack) -> None:
    fake.inject("views.open", error="expired_trigger_id")
    reply = bot.driver.global_shortcut()
    assert reply.status == 200
    [dm] = fake.dms("U0AGENT01")
    assert "took too long" in dm["text"]


def test_user_text_cannot_ping_or_forge_mentions(bot: RunningBot, fake: FakeSlack) -> None:
    file(
        bot,
        fake,
        {"summary": "<!channel> down & <@U0LEAD001> <https://evil|bank>", "customer": "<!here>"},
    )
    [card] = cards(fake, "C0API0001")
    rendered = " ".join(mrkdwn_texts(card["blocks"])) + card["text"]  # plain_text is not parsed
    assert "<!channel>" not in rendered and "<!here>" not in rendered
    assert "<@U0LEAD001>" not in rendered and "<https://evil|bank>" not in rendered
    assert "&lt;!channel&gt; down &amp; &lt;@U0LEAD001&gt;" in rendered


def test_long_details_fit_the_card_and_continue_in_the_thread(
    bot: RunningBot, fake: FakeSlack
) -> None:
    details = ("a&b<c> " * 430)[:3000]
    file(bot, fake, {"details": details})
    [card] = cards(fake, "C0API0001")
    sections = [
        b["text"]["text"] for b in card["blocks"] if b["type"] == "section" and b.get("text")
    ]
    assert all(len(s) <= 3000 for s in sections)
    assert any("full details in the thread" in s for s in sections)
    replies = [m for m in fake.thread("C0API0001", card["ts"]) if m["ts"] != card["ts"]]
    assert replies and "a&amp;b&lt;c&gt;" in replies[0]["text"]


def mrkdwn_texts(node: object) -> list[str]:
    """Every mrkdwn string in a block tree (the ones Slack parses for mentions and links)."""
    if isinstance(node, list):
        return [t for item in node for t in mrkdwn_texts(item)]
    if isinstance(node, dict):
        if node.get("type") == "mrkdwn":
            return [node["text"]]
        return [t for value in node.values() for t in mrkdwn_texts(value)]
    return []
