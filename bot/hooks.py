"""`POST /hooks/cases`: a ticketing system files a case (HTTP mode), signed with its secret.

Headers `X-Swarm-Timestamp` (unix seconds, within 5 minutes) and `X-Swarm-Signature:
v1=<hex HMAC-SHA256 of "{timestamp}.{body}">` keyed with SWARM_WEBHOOK_SECRET. Answers 201
(filed) or 200 (that case number was filed already) with `{"case_number",
"thread_permalink"}`, 400 with `{"errors": [{"field", "message"}]}`, 401, 405, 413, 503 while
the workspace is unknown, and 404 on every path when no secret is set.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from sqlalchemy.exc import SQLAlchemyError

from bot.context import Swarm
from workflows import cases, signing, sources
from workflows.errors import InvalidCase

log = logging.getLogger(__name__)

PATH = "/hooks/cases"
MAX_BODY = 1 << 20  # 1 MiB
RETRY_AFTER = "30"
# A sender still writing when the answer comes sees a broken pipe instead of the 413: read
# (and drop) a body up to this size first; anything larger just gets the answer.
DISCARD_MAX = 8 << 20

StartResponse = Callable[..., Any]


class CaseHook:
    """The inbound case webhook, as a WSGI application for its one path."""

    def __init__(
        self, swarm: Swarm, client: WebClient, secret: str | None, *, clock: Callable[[], float]
    ) -> None:
        self.swarm = swarm
        self.client = client
        self.secret = secret or ""
        self.clock = clock
        self._team: str | None = None
        self._team_lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if not self.secret:
            return _json(start_response, 404, {"error": "not found"})
        if environ.get("REQUEST_METHOD", "GET") != "POST":
            return _json(start_response, 405, {"error": "use POST"}, [("Allow", "POST")])
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return _json(start_response, 400, _errors({"body": "Bad Content-Length."}))
        if length > MAX_BODY:
            _discard(environ["wsgi.input"], min(length, DISCARD_MAX))
            return _json(start_response, 413, {"error": f"body over {MAX_BODY} bytes"})
        raw = environ["wsgi.input"].read(length) if length > 0 else b""
        timestamp = environ.get("HTTP_X_SWARM_TIMESTAMP", "")
        given = environ.get("HTTP_X_SWARM_SIGNATURE", "")
        if not signing.verify(self.secret, timestamp, given, raw, now=self.clock()):
            log.warning("case webhook: bad or stale signature (%d bytes)", len(raw))
            return _json(start_response, 401, {"error": "invalid or stale signature"})
        try:
            payload = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return _json(start_response, 400, _errors({"body": "Send a JSON object (UTF-8)."}))
        team_id = self.team_id()
        if team_id is None:
            return _json(
                start_response,
                503,
                {"error": "the workspace is not known yet; retry shortly"},
                [("Retry-After", RETRY_AFTER)],
            )
        try:
            landed = sources.file_from_ticket(
                self.swarm.services(self.client),
                team_id=team_id,
                payload=payload,
            )
        except InvalidCase as exc:
            return _json(start_response, 400, _errors(exc.errors))
        except SQLAlchemyError:
            log.exception("case webhook: the case could not be stored")
            return _json(
                start_response,
                503,
                {"error": "the case could not be stored just now; retry shortly"},
                [("Retry-After", RETRY_AFTER)],
            )
        body = {"case_number": landed.case_number, "thread_permalink": landed.thread_permalink}
        return _json(start_response, 201 if landed.created else 200, body)

    def team_id(self) -> str | None:
        """The workspace this bot serves: Slack's answer once, else the one in the database."""
        with self._team_lock:
            if self._team is not None:
                return self._team
        try:
            team = self.client.auth_test().get("team_id")
        except (SlackApiError, SlackClientError, OSError) as exc:
            log.warning("case webhook: auth.test failed (%s); using the stored workspace", exc)
            teams = cases.workspaces(self.swarm.services(self.client))
            return teams[0] if len(teams) == 1 else None
        with self._team_lock:
            self._team = team
        return team


def _discard(stream: Any, length: int) -> None:
    while length > 0:
        chunk = stream.read(min(length, 1 << 16))
        if not chunk:
            return
        length -= len(chunk)


def _errors(errors: dict[str, str]) -> dict[str, Any]:
    return {"errors": [{"field": field, "message": message} for field, message in errors.items()]}


def _json(
    start_response: StartResponse,
    code: int,
    body: dict[str, Any],
    headers: list[tuple[str, str]] | None = None,
) -> Iterable[bytes]:
    data = json.dumps(body).encode()
    start_response(
        f"{code} {HTTPStatus(code).phrase}",
        [
            ("Content-Type", "application/json; charset=utf-8"),
            ("Content-Length", str(len(data))),
            *(headers or []),
        ],
    )
    return [data]


def case_hook(swarm: Swarm, client: WebClient) -> CaseHook:
    """The hook with the secret from the settings (404 everywhere without one)."""
    secret = swarm.settings.swarm_webhook_secret
    return CaseHook(swarm, client, secret.get_secret_value() if secret else None, clock=time.time)
