"""Tokens and secrets never reach a log line: messages, tracebacks, gunicorn's own log."""

from __future__ import annotations

import logging
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from gunicorn.config import Config
from gunicorn.glogging import Logger as GunicornLogger

from bot import redaction
from tests.conftest import BOT_TOKEN, SIGNING_SECRET
from tests.fakeslack import FakeSlack
from tests.pgcluster import free_port
from tests.scenario import start, wait_for, wait_healthy
from tests.slackdriver import SlackDriver, TrackingExecutor

TOKENS = {
    "bot": "xoxb-1234-5678-AbCdEf",
    "user": "xoxp-1234-5678-AbCdEf",
    "refresh": "xoxe-1-My0xLTEyMzQ",
    "rotated": "xoxe.xoxp-1-Mi0yLTEyMzQtNTY3OA",
    "app-level": "xapp-1-A0123-4567-abcdef",
    "workflow": "xwfp-1234-abcdef",
}
SECRETS = {*TOKENS.values(), BOT_TOKEN, SIGNING_SECRET}


@pytest.fixture
def redacting() -> Iterator[None]:
    """Redaction installed as `swarmbot` installs it, undone afterwards."""
    factory = logging.getLogRecordFactory()
    hooks = (__import__("sys").excepthook, threading.excepthook)
    redaction.install([BOT_TOKEN, SIGNING_SECRET])
    yield
    logging.setLogRecordFactory(factory)
    __import__("sys").excepthook, threading.excepthook = hooks
    redaction.install(())
    logging.setLogRecordFactory(factory)


def handler_to(path: Path) -> logging.Handler:
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    return handler


def assert_clean(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text
    assert "[redacted]" in text


@pytest.mark.parametrize("kind", list(TOKENS))
def test_every_kind_of_slack_token_is_redacted(kind: str) -> None:
    text = redaction.redact(f"calling with token={TOKENS[kind]}&x=1")
    assert TOKENS[kind] not in text and "[redacted]&x=1" in text


def test_database_passwords_are_redacted() -> None:
    text = redaction.redact("cannot connect to postgresql://swarm:s3cr%40t@db:5432/swarm")
    assert "s3cr" not in text and "postgresql://swarm:[redacted]@db:5432/swarm" in text


def test_tracebacks_and_arguments_are_redacted(redacting: None, tmp_path: Path) -> None:
    log = logging.getLogger("tests.redaction")
    handler = handler_to(tmp_path / "log")
    log.addHandler(handler)
    try:
        try:
            raise RuntimeError(f"Slack said no to {TOKENS['rotated']} and {TOKENS['workflow']}")
        except RuntimeError:
            log.exception("call failed with %s (secret %s)", TOKENS["bot"], SIGNING_SECRET)
        log.warning("stack", stack_info=True, extra={"token": BOT_TOKEN})
        log.error("bad arguments %s %s", TOKENS["app-level"])  # one argument short
    finally:
        log.removeHandler(handler)
        handler.close()
    text = (tmp_path / "log").read_text()
    assert "Traceback" in text and "RuntimeError" in text
    assert_clean(text)


def test_gunicorns_own_error_log_is_redacted(redacting: None, tmp_path: Path) -> None:
    config = Config()
    config.set("errorlog", str(tmp_path / "gunicorn.log"))
    logger = GunicornLogger(config)
    try:
        raise OSError(f"worker could not boot with {TOKENS['refresh']} {BOT_TOKEN}")
    except OSError:
        logger.exception("Exception in worker process")
    logger.error("token %s", TOKENS["user"])
    for handler in logger.error_log.handlers:
        handler.flush()
    text = (tmp_path / "gunicorn.log").read_text()
    assert "Exception in worker process" in text and "OSError" in text
    assert_clean(text)


def test_an_uncaught_exception_in_a_thread_is_logged_redacted(
    redacting: None, caplog: pytest.LogCaptureFixture
) -> None:
    def boom() -> None:
        raise ValueError(f"leaked {TOKENS['app-level']}")

    thread = threading.Thread(target=boom, name="listener-1")
    thread.start()
    thread.join()
    record = next(r for r in caplog.records if "uncaught exception in thread" in r.getMessage())
    assert record.exc_text and "ValueError" in record.exc_text
    assert_clean(record.exc_text)


def test_a_running_bot_redacts_tokens_in_an_unhandled_errors_traceback(
    tmp_path: Path, fake: FakeSlack, db_url: str
) -> None:
    """The real `swarmbot run` (gunicorn workers): a Slack error quoting tokens back."""
    port = free_port()
    process = start(tmp_path, fake, db_url, PORT=str(port), WEB_CONCURRENCY="1")
    try:
        wait_healthy(port, process)
        quoted = " ".join(TOKENS.values())
        fake.inject("views.open", error=f"invalid_arguments {quoted} {BOT_TOKEN} {SIGNING_SECRET}")
        driver = SlackDriver(
            f"http://127.0.0.1:{port}/slack/events",
            SIGNING_SECRET,
            fake.respond_url,
            TrackingExecutor(),
        )
        assert driver.global_shortcut().status == 200
        wait_for(lambda: fake.dms("U0AGENT01"))  # the user is told; the log has the rest
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            out, _ = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            out, _ = process.communicate()
    assert "unhandled error" in out and "Traceback" in out
    assert_clean(out)
