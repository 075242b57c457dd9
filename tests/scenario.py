"""Steps shared by the scenarios: filing a case, Slack events about its thread, escalating,
starting `swarmbot run` as a process and waiting for what it does."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.request import urlopen

from sqlalchemy import select, text

from bot.gateway import AdminCache, WebSlack, web_client
from storage.db import create_db_engine
from storage.models import Case, CaseEvent
from tests.conftest import BOT_TOKEN, SIGNING_SECRET, TEST_CONFIG, Databases, RunningBot
from tests.fakeslack import FakeSlack
from tests.slackdriver import payload
from workflows.services import Services

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


def services(bot: RunningBot, clock: Any = None) -> Services:
    """The services workflows get in a running bot, on the fake Slack and `clock`."""
    client = web_client(BOT_TOKEN, bot.swarm.settings.slack_api_url)
    return Services(bot.uow, bot.config, bot.swarm.slack(client), clock or bot.swarm.clock)


# -- the bot as a process ---------------------------------------------------------------
ROOT = Path(__file__).resolve().parent.parent
CLEAN = {
    k: v
    for k, v in os.environ.items()
    if not k.startswith(("SLACK_", "DATABASE_URL", "SWARM_", "PORT", "WEB_"))
}


def start(tmp_path: Path, fake: FakeSlack, db_url: str, **env: str) -> subprocess.Popen:
    """`swarmbot run` as a real process on the fake Slack and this database."""
    config = tmp_path / "swarm.yaml"
    # Billing's channel is given by name: it must be resolved at start.
    config.write_text(
        TEST_CONFIG.replace("swarm_channel: C0BILL001", "swarm_channel: '#swarm-billing'")
    )
    environment = {
        **CLEAN,
        "PYTHONPATH": str(ROOT),
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": fake.url,
        "DATABASE_URL": db_url,
        "SWARM_CONFIG": str(config),
        **env,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "run"],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_healthy(port: int, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"swarmbot run exited: {process.stdout.read()}")
        try:
            with urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("swarmbot run did not become healthy")


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    """Poll until the condition holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def fresh_url(databases: Databases, backend: str, tmp_path: Path) -> str:
    """An empty database of this backend: a file for SQLite, a new database on PostgreSQL."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'migrate.db'}"
    admin = create_db_engine(databases.admin_url(), isolation_level="AUTOCOMMIT")
    name = f"m_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return databases.admin_url().rsplit("/", 1)[0] + f"/{name}"


def swarmbot(fake: FakeSlack, db_url: str, tmp_path: Path, *args: str) -> Any:
    """Run a `swarmbot` command in-process on this database and fake Slack (a click Result)."""
    from click.testing import CliRunner

    from bot.cli import main

    config = tmp_path / "swarm.yaml"
    config.write_text(TEST_CONFIG)
    env = {
        "DATABASE_URL": db_url,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_API_URL": fake.url,
        "SWARM_CONFIG": str(config),
        "SLACK_APP_TOKEN": "",
        "SLACK_SIGNING_SECRET": "",
    }
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
