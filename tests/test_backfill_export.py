"""`swarmbot reindex` (backfill from Slack, resumable) and `swarmbot export` (the whole record)."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from storage.domain import CaseStatus
from storage.models import Message
from tests.conftest import RunningBot
from tests.fakeslack import FakeSlack
from tests.scenario import changed_event, deleted_event, filed_case, reply_event, swarmbot


def stored(bot: RunningBot) -> list[Message]:
    with bot.uow() as uow:
        return list(uow.session.scalars(select(Message).order_by(Message.channel_id, Message.ts)))


def test_reindex_loads_threads_from_slack_across_pages_once(
    bot: RunningBot, fake: FakeSlack, db_url: str, tmp_path: Path
) -> None:
    case = filed_case(bot, fake)
    fake.add_message(
        CHANNEL := case.channel_id,
        user=case.filer_id,
        text="more context",
        thread_ts=case.thread_ts,
    )
    for i in range(204):
        fake.add_message(CHANNEL, user="U0EXP0001", text=f"step {i}", thread_ts=case.thread_ts)
    fake.add_message(CHANNEL, user="U0AGENT02", text="not in a thread")
    state = tmp_path / "state.json"
    result = swarmbot(fake, db_url, tmp_path, "reindex", "--state", str(state))
    assert result.exit_code == 0, result.output
    assert "reindexed 1 case(s): 205 message(s)" in result.output
    messages = stored(bot)
    assert len(messages) == 205 and {m.thread_ts for m in messages} == {case.thread_ts}
    assert len(fake.calls_to("conversations.replies")) >= 2  # more than one page
    with bot.uow() as uow:
        fresh = uow.cases.get(case.id)
        assert fresh.first_responder_id == "U0EXP0001"  # the filer's reply does not count
        assert fresh.status is CaseStatus.SWARMING
    again = swarmbot(fake, db_url, tmp_path, "reindex", "--state", str(state))
    assert "0 message(s)" in again.output and len(stored(bot)) == 205
    assert not state.exists()


def test_an_interrupted_reindex_resumes_after_the_cases_it_finished(
    bot: RunningBot, fake: FakeSlack, db_url: str, tmp_path: Path
) -> None:
    cases = [filed_case(bot, fake, case_number=str(40000 + i)) for i in range(3)]
    for case in cases:
        for i in range(3):
            fake.add_message(
                case.channel_id,
                user="U0EXP0002",
                text=f"{case.case_number} note {i}",
                thread_ts=case.thread_ts,
            )
    second = cases[1].thread_ts
    fake.inject(
        "conversations.replies", error="internal_error", when=lambda p: p.get("ts") == second
    )
    state = tmp_path / "state.json"
    first = swarmbot(fake, db_url, tmp_path, "reindex", "--state", str(state))
    assert first.exit_code == 1 and "Run the same command again to resume" in first.output
    assert json.loads(state.read_text())["done"] == [cases[0].id]
    assert len(stored(bot)) == 3
    fake.calls.clear()
    resumed = swarmbot(fake, db_url, tmp_path, "reindex", "--state", str(state))
    assert resumed.exit_code == 0, resumed.output
    assert "resuming: 1 of 3 case(s) already done" in resumed.output
    assert {c["ts"] for c in fake.calls_to("conversations.replies")} == {
        cases[1].thread_ts,
        cases[2].thread_ts,
    }
    texts = [m.text for m in stored(bot)]
    assert len(texts) == 9 == len(set(texts))
    assert not state.exists()


def test_reindex_waits_out_rate_limits_and_filters_by_channel_and_date(
    bot: RunningBot, fake: FakeSlack, db_url: str, tmp_path: Path
) -> None:
    api = filed_case(bot, fake)
    billing = filed_case(bot, fake, case_number="30001", topic="billing", region="")
    for case in (api, billing):
        fake.add_message(case.channel_id, user="U0EXP0001", text="hi", thread_ts=case.thread_ts)
    fake.inject("conversations.replies", status=429, retry_after=1)
    result = swarmbot(
        fake,
        db_url,
        tmp_path,
        "reindex",
        "--channel",
        billing.channel_id,
        "--state",
        str(tmp_path / "s.json"),
    )
    assert result.exit_code == 0, result.output
    assert [m.case_id for m in stored(bot)] == [billing.id]
    later = swarmbot(
        fake,
        db_url,
        tmp_path,
        "reindex",
        "--since",
        "2999-01-01",
        "--state",
        str(tmp_path / "s.json"),
    )
    assert "reindexed 0 case(s)" in later.output


def test_reindex_records_incident_channel_messages_and_edits(
    bot: RunningBot, fake: FakeSlack, db_url: str, tmp_path: Path
) -> None:
    case = filed_case(bot, fake)
    fake.add_channel("C0INCID01", "help-api-sev2-27343", members=[fake.bot_user_id])
    with bot.uow() as uow:
        uow.cases.get(case.id).incident_channel_id = "C0INCID01"
        uow.commit()
    top = fake.add_message("C0INCID01", user="U0LEAD001", text="bridge open")
    fake.add_message("C0INCID01", user="U0EXP0001", text="in a side thread", thread_ts=top["ts"])
    result = swarmbot(fake, db_url, tmp_path, "reindex", "--state", str(tmp_path / "s.json"))
    assert result.exit_code == 0, result.output
    assert sorted(m.text for m in stored(bot)) == ["bridge open", "in a side thread"]


def test_export_has_fields_timeline_messages_and_resolution(
    bot: RunningBot, fake: FakeSlack, db_url: str, tmp_path: Path
) -> None:
    case = filed_case(bot, fake)
    bot.driver.event(reply_event(case, "try <b>this</b> & that", ts="1800000001.000100"))
    bot.driver.event(reply_event(case, "oops", ts="1800000002.000100", user="U0EXP0002"))
    bot.driver.event(deleted_event(case, "1800000002.000100"))
    bot.driver.event(changed_event(case, "1800000001.000100", "try the retry header"))
    with bot.uow() as uow:
        stored_case = uow.cases.get(case.id)
        stored_case.status = CaseStatus.RESOLVED
        stored_case.resolution = "Raised the webhook timeout to 30 s"
        stored_case.resolved_by = "U0EXP0001"
        stored_case.resolved_at = stored_case.created_at
        uow.commit()
    as_json = swarmbot(fake, db_url, tmp_path, "export", case.case_number, "--format", "json")
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.output)
    assert data["case"]["summary"] == "Webhooks time out" and data["case"]["status"] == "resolved"
    assert [e["kind"] for e in data["timeline"]][:2] == ["filed", "card_posted"]
    assert [(m["author"], m["text"]) for m in data["messages"]] == [
        ("U0EXP0001", "try the retry header"),
        ("U0EXP0002", ""),
    ]
    assert data["messages"][1]["deleted_at"] and data["messages"][0]["edited_at"]
    assert data["resolution"]["resolution"] == "Raised the webhook timeout to 30 s"
    out = tmp_path / "case.md"
    as_md = swarmbot(fake, db_url, tmp_path, "export", case.case_number, "-o", str(out))
    assert as_md.exit_code == 0, as_md.output
    md = out.read_text()
    assert md.startswith("# Case [27343](https://support.example.com/cases/27343): Webhooks")
    for expected in (
        "## Timeline",
        "first_response by U0EXP0001",
        "**U0EXP0001** ·",
        "> try the retry header",
        "_deleted ",
        "## Resolution",
        "Raised the webhook timeout to 30 s",
        "2026-" if False else "UTC",
    ):
        assert expected in md, expected
    missing = swarmbot(fake, db_url, tmp_path, "export", "99999")
    assert missing.exit_code == 1 and "No case 99999" in missing.output


def test_export_of_an_open_case_has_no_resolution(
    bot: RunningBot, fake: FakeSlack, db_url: str, tmp_path: Path
) -> None:
    case = filed_case(bot, fake)
    data = json.loads(
        swarmbot(fake, db_url, tmp_path, "export", case.case_number, "--format", "json").output
    )
    assert data["resolution"] is None and data["messages"] == []
    md = swarmbot(fake, db_url, tmp_path, "export", case.case_number).output
    assert "## Resolution" not in md and "## Messages (0)" in md
