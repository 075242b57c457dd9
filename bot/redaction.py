"""Secrets never reach a log line: Slack tokens, the configured secrets, database passwords.

Redaction happens when a log record is made (a record factory), so it covers every logger and
every handler of the process (Bolt's, slack_sdk's, gunicorn's own error log) and the text of
tracebacks and stack traces, not only the formatted message. Uncaught exceptions go through
logging too, so they are redacted the same way.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import traceback
from collections.abc import Iterable
from types import TracebackType
from typing import Any

# Bot, user, app-level, workflow, refresh and rotated tokens: xoxb-, xoxp-, xoxe-, xoxe.xoxp-,
# xapp-, xwfp- (and the rest of Slack's xox? family).
TOKEN = re.compile(r"\b(xox[a-z](?:\.xox[a-z])?|xapp|xwfp)-[A-Za-z0-9-]+")
URL_PASSWORD = re.compile(r"(?<=://)([^:/@\s]*):[^@\s/]+@")
SHORT_SECRET = 8  # configured secrets shorter than this are not searched for (too many hits)

_secrets: tuple[str, ...] = ()
_base_factory = logging.getLogRecordFactory()


def redact(text: str) -> str:
    """`text` with every token, configured secret and URL password replaced."""
    text = TOKEN.sub(lambda m: f"{m.group(1)}-[redacted]", text)
    text = URL_PASSWORD.sub(r"\1:[redacted]@", text)
    for secret in _secrets:
        text = text.replace(secret, "[redacted]")
    return text


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """Redact a record's message, traceback and stack in place."""
    try:
        message = record.getMessage()
    except Exception:  # bad arguments: keep the evidence, without what may be secret
        message = f"{record.msg} {record.args!r}"
    clean = redact(message)
    if clean != message or record.args:
        record.msg, record.args = clean, None
    if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
        record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)).rstrip())
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    return record


def _factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
    return redact_record(_base_factory(*args, **kwargs))


def _uncaught(kind: type[BaseException], error: BaseException, tb: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, error, tb)
        return
    logging.getLogger("swarm").critical("uncaught exception", exc_info=(kind, error, tb))


def _uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    logging.getLogger("swarm").critical(
        "uncaught exception in thread %s",
        args.thread.name if args.thread else "?",
        exc_info=(args.exc_type, args.exc_value or args.exc_type(), args.exc_traceback),
    )


def install(secrets: Iterable[str | None] = ()) -> None:
    """Redact every log record from now on, also those of uncaught exceptions."""
    global _secrets
    found = {s for s in secrets if s and len(s) >= SHORT_SECRET}
    _secrets = tuple(sorted(found, key=len, reverse=True))
    logging.setLogRecordFactory(_factory)
    sys.excepthook = _uncaught
    threading.excepthook = _uncaught_in_thread
