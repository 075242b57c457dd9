"""Steps shared by the scenarios: filing a case, Slack events about its thread, escalating."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bot.gateway import AdminCache, WebSlack, web_client
from storage.models import Case, CaseEvent
from tests.conftest import BOT_TOKEN, RunningBot
from tests.fakeslack import FakeSlack
from tests.slackdriver import payload

GOOD = {
    "case_number": "27343",
    "urgency": "high",
    "topic": "api",
    "summary": "Webhooks time out",
    "details": "Since 09:00 every webhook to EU endpoints times out.",
    "customer": "ACME",
}


LEAD = "U0LEAD001"


FILER = "U0AGENT01"


class RecordingTimers:
    """Timers that remember which cases changed."""

    def __init__(self) -> None:
        self.changed: list[int] = []

    def case_changed(self, case_id: int) -> None:
        self.changed.append(case_id)


def open_modal(bot: RunningBot, fake: FakeSlack, how: str = "global", **kwargs) -> dict:
    before = len(fake.opened_views())
    if how == "global":
        reply = bot.driver.global_shortcut(**kwargs)
    elif how == "message":
        reply = bot.driver.message_shortcut(**kwargs)
    else:
        reply = bot.driver.command(f"new {kwargs.pop('case_number', '')}".strip(), **kwargs)
    assert reply.status == 200
    views = fake.opened_views()
    assert len(views) == before + 1
    return views[-1]


def file(bot: RunningBot, fake: FakeSlack, values: dict | None = None, **kwargs) -> tuple:
    view = open_modal(bot, fake, **kwargs)
    reply = bot.driver.submit(view, {**GOOD, **(values or {})})
    return view, reply


def cards(fake: FakeSlack, channel: str) -> list[dict]:
    return [m for m in fake.messages(channel) if m.get("blocks") and not m.get("thread_ts")]


def fake_client(fake: FakeSlack):
    return web_client("xoxb-test-token", fake.url)


def gateway(fake: FakeSlack, retries: int = 3) -> WebSlack:
    return WebSlack(web_client(BOT_TOKEN, fake.url, retries=retries), AdminCache())


def filed(bot: RunningBot, fake: FakeSlack, **values: str) -> Case:
    file(bot, fake, values)
    return case_of(bot)


def case_of(bot: RunningBot, number: str = "27343") -> Case:
    with bot.uow() as uow:
        case = uow.cases.by_number(team_id="T111", case_number=number)
        assert case is not None
        case.participants, case.events  # noqa: B018 - loaded before the session closes
        return case


def filed_case(bot: RunningBot, fake: FakeSlack, **values: str) -> Case:
    file(bot, fake, values or None)
    with bot.uow() as uow:
        return uow.session.scalars(select(Case).order_by(Case.id.desc())).first()


def kinds(bot: RunningBot, case: Case) -> list[str]:
    with bot.uow() as uow:
        return list(
            uow.session.scalars(
                select(CaseEvent.kind).where(CaseEvent.case_id == case.id).order_by(CaseEvent.id)
            )
        )


def answer(fake: FakeSlack) -> str:
    return fake.responses()[-1]["body"]["text"]


def escalate(bot: RunningBot, fake: FakeSlack, text: str = "escalate 27343", **kw) -> str:
    reply = bot.driver.command(text, user=kw.pop("user", LEAD), **kw)
    assert reply.status == 200
    return answer(fake)


def reply_event(
    case: Case, text: str, *, user: str = "U0EXP0001", ts: str = "1800000001.000100", **extra: Any
) -> dict:
    event = payload("event_message_thread_reply.json")["event"]
    event.update(
        user=user,
        text=text,
        ts=ts,
        event_ts=ts,
        thread_ts=case.thread_ts,
        parent_user_id="UBOT",
        channel=case.channel_id,
        team="T111",
    )
    event.update(extra)
    return event


def changed_event(case: Case, ts: str, text: str, *, user: str = "U0EXP0001") -> dict:
    event = payload("event_message_changed.json")["event"]
    event["channel"] = case.channel_id
    event["message"].update(text=text, user=user, ts=ts, thread_ts=case.thread_ts)
    event["previous_message"].update(ts=ts, user=user, thread_ts=case.thread_ts)
    return event


def deleted_event(case: Case, ts: str) -> dict:
    event = payload("event_message_deleted.json")["event"]
    event["channel"] = case.channel_id
    event["deleted_ts"] = ts
    event["previous_message"].update(ts=ts, thread_ts=case.thread_ts)
    return event
