"""The WSGI application in front of Bolt: /slack/events, with guards Bolt lacks."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from slack_bolt import App, BoltRequest
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import text

from storage.uow import UnitOfWorkFactory

log = logging.getLogger(__name__)

PATH = "/slack/events"
MAX_BODY = 1 << 20  # Slack payloads are far smaller; refuse anything larger.

StartResponse = Callable[..., Any]


class SlackHTTP:
    """Verifies, parses and dispatches Slack requests; malformed bodies get 400, not 500."""

    def __init__(
        self, app: App, signing_secret: str, uow: UnitOfWorkFactory | None = None, path: str = PATH
    ) -> None:
        self.app = app
        self.verifier = SignatureVerifier(signing_secret)
        self.uow = uow
        self.path = path

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "")
        if path == "/healthz" and method == "GET":
            return self._health(start_response)
        if path != self.path:
            return _reply(start_response, 404, "not found")
        if method != "POST":
            return _reply(start_response, 405, "use POST")
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return _reply(start_response, 400, "bad content-length")
        if length > MAX_BODY:
            return _reply(start_response, 413, "body too large")
        raw = environ["wsgi.input"].read(length) if length else b""
        headers = _headers(environ)
        timestamp = _first(headers, "x-slack-request-timestamp")
        signature = _first(headers, "x-slack-signature")
        if not self._signed(raw, timestamp, signature):
            return _reply(start_response, 401, "invalid signature")
        try:
            body = raw.decode("utf-8")
            request = BoltRequest(body=body, query=environ.get("QUERY_STRING", ""), headers=headers)
        except (ValueError, TypeError, KeyError, AttributeError):
            log.warning("malformed request body (%d bytes)", len(raw))
            return _reply(start_response, 400, "malformed body")
        if not isinstance(request.body, dict) or not request.body:
            return _reply(start_response, 400, "malformed body")
        response = self.app.dispatch(request)
        header_list = [(k, v) for k, values in response.headers.items() for v in values]
        payload = response.body.encode("utf-8") if isinstance(response.body, str) else b""
        start_response(_status(response.status), header_list)
        return [payload]

    def _signed(self, raw: bytes, timestamp: str, signature: str) -> bool:
        if not timestamp.isdigit() or not signature:
            return False
        return self.verifier.is_valid(raw, timestamp, signature)

    def _health(self, start_response: StartResponse) -> Iterable[bytes]:
        if self.uow is not None:
            try:
                with self.uow() as uow:
                    uow.session.execute(text("SELECT 1"))
            except Exception as exc:
                log.warning("health check: database unavailable: %s", exc)
                return _reply(start_response, 503, "database unavailable")
        return _reply(start_response, 200, "ok")


def _headers(environ: dict[str, Any]) -> dict[str, list[str]]:
    headers: dict[str, list[str]] = {}
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers[key[5:].replace("_", "-").lower()] = [value]
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = [environ["CONTENT_TYPE"]]
    return headers


def _first(headers: dict[str, list[str]], name: str) -> str:
    values = headers.get(name) or [""]
    return values[0]


def _status(code: int) -> str:
    try:
        return f"{code} {HTTPStatus(code).phrase}"
    except ValueError:
        return f"{code} Unknown"


def _reply(start_response: StartResponse, code: int, message: str) -> Iterable[bytes]:
    start_response(_status(code), [("Content-Type", "text/plain; charset=utf-8")])
    return [message.encode()]
