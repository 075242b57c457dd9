"""The ticketing system hears every status change: a signed POST per change, from an outbox."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from bot.cli import main
from bot.gateway import web_client
from bot.runtime import build_swarm
from scheduling.scheduler import start_scheduler
from scheduling.sweeps import SWEEPS
from storage.models import Case, StatusEvent
from tests.conftest import BOT_TOKEN, TEST_CONFIG, FakeClock, RunningBot, settings_for
from tests.fakeslack import FakeSlack
from tests.scenario import FILER, LEAD, case_of, escalate, file, filed
from tests.test_scheduler import wait_for
from workflows import signing, status_webhook
from workflows.config import parse_config
from workflows.services import Services
from workflows.status_webhook import Receiver, backoff, deliver_due, undelivered

SECRET = "status-webhook-shared-secret"


class TicketingSystem:
    """A receiver on 127.0.0.1 that checks signatures, records events and can be made to fail."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.refused: list[str] = []
        self.fail_next = 0
        self.slow = 0.0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                ok = signing.verify(
                    SECRET,
                    self.headers.get("X-Swarm-Timestamp", ""),
                    self.headers.get("X-Swarm-Signature", ""),
                    raw,
                    now=time.time(),
                )
                time.sleep(receiver.slow)
                with receiver.lock:
                    if not ok:
                        receiver.refused.append("signature")
                        status = 401
                    elif receiver.fail_next > 0:
                        receiver.fail_next -= 1
                        receiver.refused.append("down")
                        status = 503
                    else:
                        event = json.loads(raw)
                        assert self.headers["X-Swarm-Event-Id"] == event["event_id"]
                        receiver.events.append(event)
                        status = 204
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/swarm-events"

    def kinds(self, case_number: str | None = None) -> list[str]:
        return [e["event"] for e in self.events if case_number in (None, e["case_number"])]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[TicketingSystem]:
    system = TicketingSystem()
    yield system
    system.stop()


def services(bot: RunningBot, clock: FakeClock | None = None) -> Services:
    """The app's services (no Slack is called here)."""
    swarm = bot.swarm
    slack = swarm.slack(web_client(BOT_TOKEN, swarm.settings.slack_api_url))
    return Services(swarm.uow, swarm.config, slack, clock or swarm.clock)


def drain(bot: RunningBot, url: str) -> status_webhook.Drained:
    return deliver_due(services(bot), Receiver(url, SECRET, timeout=5))


def events(bot: RunningBot) -> list[StatusEvent]:
    with bot.uow() as uow:
        return list(uow.session.scalars(select(StatusEvent).order_by(StatusEvent.id)))


def test_every_status_change_reaches_the_ticketing_system_in_order(
    bot: RunningBot, fake: FakeSlack, receiver: TicketingSystem
) -> None:
    case = filed(bot, fake)
    bot.driver.click("case-join", str(case.id), user="U0EXP0001")
    escalate(bot, fake, "escalate 27343 sev2")
    bot.driver.command("sev 27343 sev1", user=LEAD)
    bot.driver.command("resolve 27343", user=FILER)
    bot.driver.submit(
        fake.opened_views()[-1],
        {"resolution": "Rotated the cert", "root_cause": "Expired TLS certificate"},
        user=FILER,
    )
    bot.driver.command("reopen 27343", user=FILER)
    assert drain(bot, receiver.url) == status_webhook.Drained(delivered=6, failed=0)
    assert receiver.kinds() == [
        "filed",
        "swarming",
        "escalated",
        "severity_changed",
        "resolved",
        "reopened",
    ]
    filed_event, swarming, escalated, sev, resolved, reopened = receiver.events
    case = case_of(bot)
    assert filed_event["case_number"] == "27343" and filed_event["status"] == "open"
    assert filed_event["links"] == {
        "case_url": "https://support.example.com/cases/27343",
        "thread_permalink": case.permalink,
        "incident_channel": None,
    }
    assert (swarming["previous_status"], swarming["status"]) == ("open", "swarming")
    assert (escalated["status"], escalated["severity"]) == ("escalated", 2)
    assert escalated["links"]["incident_channel"].endswith(f"channel={case.incident_channel_id}")
    assert (sev["previous_severity"], sev["severity"]) == (2, 1)
    assert resolved["resolution"]["resolution"] == "Rotated the cert"
    assert resolved["resolution"]["root_cause"] == "Expired TLS certificate"
    assert resolved["resolution"]["resolved_by"] == FILER
    assert (reopened["previous_status"], reopened["status"]) == ("resolved", "escalated")
    assert len({e["event_id"] for e in receiver.events}) == 6
    for event in receiver.events:
        assert event["occurred_at"].endswith("Z") and event["filed_at"].endswith("Z")
    # Nothing is sent twice.
    assert drain(bot, receiver.url) == status_webhook.Drained(0, 0)
    assert len(receiver.events) == 6


def test_the_event_is_written_with_the_change_whatever_writes_it(
    bot: RunningBot, fake: FakeSlack
) -> None:
    case = filed(bot, fake)
    with bot.uow() as uow:  # a conditional UPDATE, not an ORM change: the database still sees it
        uow.session.execute(
            update(Case).where(Case.id == case.id).values(status="swarming", severity=3)
        )
        uow.session.rollback()  # ... and a change rolled back leaves no event behind
        uow.session.execute(update(Case).where(Case.id == case.id).values(status="swarming"))
        uow.commit()
    with bot.uow() as uow:  # a severity set before escalating is not a change of its own
        uow.session.execute(update(Case).where(Case.id == case.id).values(severity=2))
        uow.commit()
    assert [(e.old_status, e.status) for e in events(bot)] == [
        (None, "open"),
        ("open", "swarming"),
    ]


def test_a_receiver_that_fails_gets_the_events_later_in_order_with_backoff(
    bot: RunningBot, fake: FakeSlack, receiver: TicketingSystem
) -> None:
    clock: FakeClock = bot.swarm.clock  # type: ignore[assignment]
    case = filed(bot, fake)
    bot.driver.click("case-join", str(case.id), user="U0EXP0001")
    file(bot, fake, {"case_number": "27344"})
    receiver.fail_next = 1
    first = drain(bot, receiver.url)
    # 27343's "filed" failed, so its "swarming" waits; 27344 is not held up by it.
    assert first == status_webhook.Drained(delivered=1, failed=1)
    assert receiver.kinds() == ["filed"] and receiver.events[0]["case_number"] == "27344"
    [waiting_filed, waiting_swarming] = [e for e in events(bot) if e.case_id == case.id]
    assert waiting_filed.attempts == 1 and waiting_filed.last_error == "HTTP 503"
    assert waiting_filed.next_attempt_at == clock.now() + timedelta(seconds=10)
    # Not due yet: nothing is tried.
    assert drain(bot, receiver.url) == status_webhook.Drained(0, 0)
    clock.advance(seconds=10)
    receiver.fail_next = 1
    assert drain(bot, receiver.url) == status_webhook.Drained(delivered=0, failed=1)
    again = next(e for e in events(bot) if e.id == waiting_filed.id)
    assert again.attempts == 2 and again.next_attempt_at == clock.now() + timedelta(seconds=20)
    clock.advance(seconds=20)
    assert drain(bot, receiver.url) == status_webhook.Drained(delivered=2, failed=0)
    assert receiver.kinds("27343") == ["filed", "swarming"]
    assert waiting_swarming.id > waiting_filed.id
    assert receiver.refused == ["down", "down"]


def test_backoff_doubles_and_is_capped_at_an_hour() -> None:
    assert [backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [10, 20, 40, 80]
    assert backoff(9) == timedelta(seconds=2560)
    assert backoff(10) == timedelta(hours=1) and backoff(500) == timedelta(hours=1)


def test_a_receiver_that_is_down_stops_the_run_early_and_nothing_is_lost(
    bot: RunningBot, fake: FakeSlack
) -> None:
    for number in ("1001", "1002", "1003", "1004", "1005"):
        file(bot, fake, {"case_number": number})
    down = "http://127.0.0.1:9/nobody-listens"
    result = drain(bot, down)
    assert result == status_webhook.Drained(delivered=0, failed=status_webhook.FAILURES_PER_RUN)
    assert all(e.delivered_at is None for e in events(bot))
    assert "ConnectionRefusedError" in (events(bot)[0].last_error or "")


def test_undelivered_events_survive_a_restart_and_are_sent_by_the_next_process(
    bot: RunningBot, fake: FakeSlack, receiver: TicketingSystem, db_url: str
) -> None:
    filed(bot, fake)
    receiver.fail_next = 1
    assert drain(bot, receiver.url).failed == 1
    # A new process on the same database, later.
    later = FakeClock(bot.swarm.clock.now() + timedelta(minutes=5))
    swarm = build_swarm(settings_for(fake, db_url), config=bot.config, clock=later)
    fresh = Services(swarm.uow, swarm.config, swarm.slack(web_client(BOT_TOKEN, fake.url)), later)
    result = deliver_due(fresh, Receiver(receiver.url, SECRET))
    assert result == status_webhook.Drained(delivered=1, failed=0)
    assert receiver.kinds() == ["filed"]


def test_an_event_being_sent_by_one_run_is_not_sent_by_another(
    bot: RunningBot, fake: FakeSlack, receiver: TicketingSystem
) -> None:
    filed(bot, fake)
    receiver.slow = 0.5
    results: list[status_webhook.Drained] = []
    runs = [threading.Thread(target=lambda: results.append(drain(bot, receiver.url)))]
    runs.append(threading.Thread(target=lambda: results.append(drain(bot, receiver.url))))
    for run in runs:
        run.start()
    for run in runs:
        run.join()
    assert sorted(r.delivered for r in results) == [0, 1]
    assert receiver.kinds() == ["filed"]


def test_a_redirect_or_a_wrong_secret_is_not_a_delivery(
    bot: RunningBot, fake: FakeSlack, receiver: TicketingSystem
) -> None:
    filed(bot, fake)
    wrong = deliver_due(services(bot), Receiver(receiver.url, "not-it"))
    assert wrong.failed == 1 and receiver.refused == ["signature"]
    assert events(bot)[0].last_error == "HTTP 401"


def test_swarmbot_webhooks_lists_what_is_not_delivered_yet(
    bot: RunningBot, fake: FakeSlack, db_url: str, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    filed(bot, fake)
    drain(bot, "http://127.0.0.1:9/nobody-listens")
    file(bot, fake, {"case_number": "27344"})
    config = tmp_path / "swarm.yaml"
    config.write_text(
        TEST_CONFIG
        + "integrations:\n  status_webhook: {url: 'https://t.example.com/h', secret_env: X_KEY}\n"
    )
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("SWARM_CONFIG", str(config))
    result = CliRunner().invoke(main, ["webhooks"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:4] == ["recorded", "(UTC)", "case", "event"]
    assert [line.split()[2:5] for line in lines[1:]] == [
        ["27343", "filed", "1"],
        ["27344", "filed", "0"],
    ]
    assert "ConnectionRefusedError" in lines[1]
    assert "... 1 more" in CliRunner().invoke(main, ["webhooks", "--limit", "1"]).output
    rows, total = undelivered(bot.uow)
    assert total == 2 and rows[0].kind == "filed"


def test_without_a_receiver_the_events_are_not_kept(bot: RunningBot, fake: FakeSlack) -> None:
    filed(bot, fake)
    assert len(events(bot)) == 1
    status_webhook.prune(services(bot), configured=False)
    assert events(bot) == []


def test_delivered_events_are_forgotten_after_thirty_days(
    bot: RunningBot, fake: FakeSlack, receiver: TicketingSystem
) -> None:
    clock: FakeClock = bot.swarm.clock  # type: ignore[assignment]
    filed(bot, fake)
    drain(bot, receiver.url)
    file(bot, fake, {"case_number": "27344"})  # not delivered: kept however old
    clock.advance(days=31)
    assert status_webhook.prune(services(bot, clock), configured=True) == 1
    assert [e.delivered_at for e in events(bot)] == [None]


def test_the_configuration_is_validated_like_the_rest() -> None:
    ok = parse_config(
        TEST_CONFIG + "integrations:\n  status_webhook:\n    url: https://t.example.com/h\n"
        "    secret_env: SWARM_STATUS_SECRET\n"
    )
    assert ok.integrations.status_webhook is not None
    assert ok.integrations.status_webhook.secret_env == "SWARM_STATUS_SECRET"
    from workflows.config import ConfigError

    with pytest.raises(ConfigError) as info:
        parse_config(
            TEST_CONFIG + "integrations:\n  status_webhook:\n    url: ftp://t.example.com\n"
            "    secret_env: not a name\n    retries: 3\n"
        )
    text = "\n".join(str(p) for p in info.value.problems)
    assert "integrations.status_webhook.url" in text
    assert "integrations.status_webhook.secret_env" in text
    assert "integrations.status_webhook.retries" in text


# -- the scheduler drains it, beside the requests ---------------------------------------------
def test_the_leader_delivers_in_the_background_while_requests_go_on(
    bot: RunningBot, fake: FakeSlack, receiver: TicketingSystem, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWARM_TEST_STATUS_SECRET", SECRET)
    config = parse_config(
        TEST_CONFIG + "integrations:\n  status_webhook:\n"
        f"    url: {receiver.url}\n    secret_env: SWARM_TEST_STATUS_SECRET\n"
    )
    for number in ("1001", "1002", "1003"):
        file(bot, fake, {"case_number": number})
    receiver.slow = 0.7  # a slow ticketing system: about two seconds for the three events
    swarm = build_swarm(bot.swarm.settings, config=config)
    scheduler = start_scheduler(swarm, web_client(BOT_TOKEN, fake.url), poll=0.1, elect_every=0.1)
    try:
        wait_for(lambda: len(receiver.events) >= 1)
        started = time.perf_counter()
        _view, reply = file(bot, fake, {"case_number": "1004"})
        took = time.perf_counter() - started
        assert reply.status == 200 and took < 0.7  # not behind the receiver
        assert len(receiver.events) < 3  # the delivery was still under way
        wait_for(lambda: len(receiver.events) == 4)  # the new case's event follows
    finally:
        scheduler.shutdown()
    assert sorted(e["case_number"] for e in receiver.events) == ["1001", "1002", "1003", "1004"]
    assert "webhooks:deliver" in {s.name for s in SWEEPS}


def test_swarmbot_run_stops_with_one_line_when_the_receivers_secret_is_missing(tmp_path) -> None:
    config = tmp_path / "swarm.yaml"
    config.write_text(
        TEST_CONFIG + "integrations:\n  status_webhook:\n    url: https://t.example.com/h\n"
        "    secret_env: SWARM_TEST_MISSING_SECRET\n"
    )
    env = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": "x" * 16,
        "SLACK_APP_TOKEN": "",
        "SWARM_CONFIG": str(config),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'never-made.db'}",
        "SWARM_TEST_MISSING_SECRET": "",
    }
    result = CliRunner().invoke(main, ["run"], env=env)
    assert result.exit_code == 2 and not (tmp_path / "never-made.db").exists()
    assert result.output.strip().splitlines() == [
        f"swarmbot: SWARM_TEST_MISSING_SECRET is not set: it holds the secret of "
        f"integrations.status_webhook in {config}"
    ]
