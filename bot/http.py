"""The WSGI application in front of Bolt: /slack/events, with guards Bolt lacks."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from slack_bolt import App, BoltRequest
from sqlalchemy import text

from bot import payloads
from storage.uow import UnitOfWorkFactory

log = logging.getLogger(__name__)

PATH = "/slack/events"
MAX_BODY = 1 << 20  # Slack payloads are far smaller; refuse anything larger.
MAX_AGE = 5 * 60  # seconds a signed request stays valid (Slack's own rule)
CONTENT_TYPES = ("application/json", "application/x-www-form-urlencoded")
TIMESTAMP = re.compile(r"[0-9]{1,12}")
SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class SlackHTTP:
    """Verifies, parses and dispatches Slack requests.

    The signature is checked on the raw bytes before anything is decoded or parsed (unsigned,
    forged or stale: 401); then the content type (415), the encoding and syntax (400) and the
    payload's shape (400, see bot.payloads). Each refusal is one log line; Bolt sees only
    well-formed, signed payloads.
    """

    def __init__(
        self,
        app: App,
        signing_secret: str,
        uow: UnitOfWorkFactory | None = None,
        path: str = PATH,
        hooks: dict[str, WSGIApp] | None = None,
    ) -> None:
        self.app = app
        self.secret = signing_secret.encode("utf-8")
        self.uow = uow
        self.path = path
        self.hooks = hooks or {}  # other senders' webhooks, each verifying its own signature

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "")
        if path == "/healthz" and method == "GET":
            return self._health(start_response)
        if path in self.hooks:
            return self.hooks[path](environ, start_response)
        if path != self.path:
            return _reply(start_response, 404, "not found")
        if method != "POST":
            return _reply(start_response, 405, "use POST")
        declared = environ.get("CONTENT_LENGTH") or "0"
        if not declared.isascii() or not declared.isdigit():
            return _refuse(start_response, 400, "bad content-length")
        length = int(declared)
        if length > MAX_BODY:
            return _refuse(start_response, 413, f"body too large ({length} bytes)")
        raw = environ["wsgi.input"].read(length) if length else b""
        headers = _headers(environ)
        timestamp = _first(headers, "x-slack-request-timestamp")
        signature = _first(headers, "x-slack-signature")
        if not self._signed(raw, timestamp, signature):
            return _refuse(start_response, 401, "invalid signature")
        media_type = _first(headers, "content-type").split(";")[0].strip().lower()
        if media_type not in CONTENT_TYPES:
            return _refuse(start_response, 415, "unsupported content type")
        try:
            body = raw.decode("utf-8")
            request = BoltRequest(
                body=body,
                query=environ.get("QUERY_STRING", ""),
                headers={**headers, "content-type": [media_type]},
            )
            payloads.check(request.body)
        except payloads.Malformed as exc:
            return _refuse(start_response, 400, f"malformed payload: {exc}")
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
            return _refuse(start_response, 400, f"malformed body ({len(raw)} bytes)")
        response = self.app.dispatch(request)
        header_list = [(k, v) for k, values in response.headers.items() for v in values]
        payload = response.body.encode("utf-8") if isinstance(response.body, str) else b""
        start_response(_status(response.status), header_list)
        return [payload]

    def _signed(self, raw: bytes, timestamp: str, signature: str) -> bool:
        """Slack's v0 signature over the raw bytes, within MAX_AGE of now."""
        if not TIMESTAMP.fullmatch(timestamp) or not SIGNATURE.fullmatch(signature):
            return False
        if abs(time.time() - int(timestamp)) > MAX_AGE:
            return False
        base = b"v0:" + timestamp.encode("ascii") + b":" + raw
        expected = "v0=" + hmac.new(self.secret, base, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, signature)

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


def _refuse(start_response: StartResponse, code: int, reason: str) -> Iterable[bytes]:
    """A refused request: one log line, and the reason as the answer."""
    log.warning("refused a request with %d: %s", code, reason)
    return _reply(start_response, code, reason)


def _reply(start_response: StartResponse, code: int, message: str) -> Iterable[bytes]:
    start_response(_status(code), [("Content-Type", "text/plain; charset=utf-8")])
    return [message.encode()]
