"""A stateful fake of the Slack Web API served over real HTTP on 127.0.0.1.

The app talks to it through the real `slack_sdk.WebClient(base_url=fake.url)`. It keeps
users, channels, messages, ephemerals, pins and views, answers with Slack's own method
names, response shapes and error codes, records every call, and can inject rate limits,
server errors, Slack errors and slowness. It also receives `response_url` posts.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import email.parser
import email.policy
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

JSON_FIELDS = ("blocks", "view", "attachments", "metadata")
LIST_FIELDS = ("users",)
PERMALINK_BASE = "https://fake.slack.com"
NAME_RE = re.compile(r"^[a-z0-9_-]+$")
SERVER_ERRORS = {
    500: "internal_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "request_timeout",
}
MAX_TEXT = 40_000
MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_TOPIC = 250


@dataclass
class Call:
    """One Web API request as the fake received it (params normalised, token apart)."""

    method: str
    params: dict[str, Any]
    at: float
    token: str | None


@dataclass
class _Fault:
    """An injected misbehaviour for calls to one method (or "*")."""

    method: str
    status: int | None
    retry_after: int | None
    error: str | None
    delay: float
    times: int | None
    when: Callable[[dict], bool] | None
    used: int = field(default=0)
    until: float | None = None  # time.monotonic() after which the rule is over

    def live(self) -> bool:
        """Whether the rule still has matches left (and time, for a timed one)."""
        if self.until is not None and time.monotonic() >= self.until:
            return False
        return self.times is None or self.used < self.times


class SlackError(Exception):
    """A Slack `{"ok": false}` answer raised from inside a method handler."""

    def __init__(self, error: str, *, detail: str | None = None, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra
        if detail:
            self.extra["response_metadata"] = {"messages": [f"[ERROR] {detail}"]}


def _flag(value: Any) -> bool:
    """A Slack boolean from JSON (true) or a form ("1", "true")."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


def _int(value: Any, default: int) -> int:
    """An integer param, `default` when absent."""
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise SlackError("invalid_arguments", detail=f"not an integer: {value!r}") from None


def _str(params: dict[str, Any], key: str) -> str:
    """A string param, empty when absent."""
    value = params.get(key)
    return "" if value is None else str(value)


def _ts_key(ts: str) -> Decimal:
    """Sort key of a Slack timestamp."""
    try:
        return Decimal(ts)
    except InvalidOperation:
        raise SlackError("invalid_ts_latest", detail=f"not a timestamp: {ts!r}") from None


def _cursor(kind: str, value: str | int) -> str:
    """An opaque pagination cursor in Slack's base64 style."""
    return base64.b64encode(f"{kind}:{value}".encode()).decode()


def _uncursor(cursor: str, kind: str) -> str:
    """The value inside a cursor made by `_cursor`; invalid_cursor otherwise."""
    try:
        prefix, _, value = base64.b64decode(cursor.encode(), validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        raise SlackError("invalid_cursor") from None
    if prefix != kind or not value:
        raise SlackError("invalid_cursor")
    return value


def _page(items: list[Any], params: dict[str, Any], default_limit: int) -> tuple[list[Any], str]:
    """Offset pagination: one page and the next cursor ("" when done)."""
    limit = _int(params.get("limit"), default_limit)
    if limit <= 0:
        limit = default_limit if default_limit > 0 else max(len(items), 1)
    cursor = _str(params, "cursor")
    start = 0
    if cursor:
        try:
            start = int(_uncursor(cursor, "offset"))
        except ValueError:
            raise SlackError("invalid_cursor") from None
    end = start + limit
    return items[start:end], (_cursor("offset", end) if end < len(items) else "")


def _text_len(obj: Any) -> int:
    """Length of a text object's text (0 when absent)."""
    if isinstance(obj, dict):
        return len(str(obj.get("text", "")))
    return 0


def _check_text(obj: Any, where: str, limit: int, *, plain_only: bool = False) -> None:
    """A composition text object: the right shape and at most `limit` characters."""
    if obj is None:
        return
    if not isinstance(obj, dict) or obj.get("type") not in ("plain_text", "mrkdwn"):
        raise _BlockError(f"{where} must be a text object")
    if plain_only and obj["type"] != "plain_text":
        raise _BlockError(f"{where} must be plain_text")
    if _text_len(obj) > limit:
        raise _BlockError(f"{where} must be less than {limit + 1} characters")


class _BlockError(Exception):
    """A Block Kit rule a payload broke."""


def _check_element(element: Any, where: str) -> None:
    """The basic limits of an interactive element."""
    if not isinstance(element, dict) or not element.get("type"):
        raise _BlockError(f"{where} must be an element with a type")
    if len(str(element.get("action_id", ""))) > 255:
        raise _BlockError(f"{where}.action_id must be less than 256 characters")
    if element["type"] == "button":
        _check_text(element.get("text"), f"{where}.text", 75, plain_only=True)
        if len(str(element.get("value", ""))) > 2000:
            raise _BlockError(f"{where}.value must be less than 2001 characters")
        if len(str(element.get("url", ""))) > 3000:
            raise _BlockError(f"{where}.url must be less than 3001 characters")
    _check_text(element.get("placeholder"), f"{where}.placeholder", 150, plain_only=True)
    options = list(element.get("options") or [])
    for group in element.get("option_groups") or []:
        options.extend(group.get("options") or [])
    if len(options) > 100:
        raise _BlockError(f"{where}.options must have no more than 100 items")
    for i, option in enumerate(options):
        _check_text(option.get("text"), f"{where}.options[{i}].text", 75)
        if len(str(option.get("value", ""))) > 150:
            raise _BlockError(f"{where}.options[{i}].value must be less than 151 characters")


def _check_blocks(blocks: Any, max_blocks: int) -> None:
    """Block Kit basics: a list, count, ids, section/header/input/actions/context limits."""
    if not isinstance(blocks, list):
        raise _BlockError("blocks must be an array")
    if len(blocks) > max_blocks:
        raise _BlockError(f"blocks must have no more than {max_blocks} items")
    seen: set[str] = set()
    for i, block in enumerate(blocks):
        where = f"blocks[{i}]"
        if not isinstance(block, dict) or not block.get("type"):
            raise _BlockError(f"{where} must be a block with a type")
        block_id = block.get("block_id")
        if block_id is not None:
            if len(str(block_id)) > 255:
                raise _BlockError(f"{where}.block_id must be less than 256 characters")
            if block_id in seen:
                raise _BlockError(f"{where}.block_id {block_id!r} is not unique")
            seen.add(block_id)
        kind = block["type"]
        if kind == "section":
            if block.get("text") is None and not block.get("fields"):
                raise _BlockError(f"{where} needs text or fields")
            _check_text(block.get("text"), f"{where}.text", 3000)
            fields = block.get("fields") or []
            if len(fields) > 10:
                raise _BlockError(f"{where}.fields must have no more than 10 items")
            for j, item in enumerate(fields):
                _check_text(item, f"{where}.fields[{j}]", 2000)
            if block.get("accessory") is not None:
                _check_element(block["accessory"], f"{where}.accessory")
        elif kind == "header":
            _check_text(block.get("text"), f"{where}.text", 150, plain_only=True)
            if block.get("text") is None:
                raise _BlockError(f"{where}.text is required")
        elif kind == "context":
            elements = block.get("elements") or []
            if not elements or len(elements) > 10:
                raise _BlockError(f"{where}.elements must have 1 to 10 items")
            for j, element in enumerate(elements):
                if element.get("type") in ("plain_text", "mrkdwn"):
                    _check_text(element, f"{where}.elements[{j}]", 3000)
        elif kind == "actions":
            elements = block.get("elements") or []
            if not elements or len(elements) > 25:
                raise _BlockError(f"{where}.elements must have 1 to 25 items")
            for j, element in enumerate(elements):
                _check_element(element, f"{where}.elements[{j}]")
        elif kind == "input":
            _check_text(block.get("label"), f"{where}.label", 2000, plain_only=True)
            _check_text(block.get("hint"), f"{where}.hint", 2000, plain_only=True)
            if block.get("label") is None:
                raise _BlockError(f"{where}.label is required")
            _check_element(block.get("element"), f"{where}.element")


class _Server(ThreadingHTTPServer):
    """A threading HTTP server with a backlog deep enough for bursts of calls."""

    daemon_threads = True
    request_queue_size = 128


class _Handler(BaseHTTPRequestHandler):
    """Hands every request to the FakeSlack that owns the server."""

    server_version = "FakeSlack/1.0"

    def do_POST(self) -> None:  # noqa: N802
        """Serve a POST."""
        self.server.fake._serve(self)  # type: ignore[attr-defined]

    def do_GET(self) -> None:  # noqa: N802
        """Serve a GET."""
        self.server.fake._serve(self)  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Stay quiet."""


class FakeSlack:
    """The fake Slack workspace and its Web API server."""

    def __init__(
        self,
        *,
        token: str = "xoxb-test-token",
        team_id: str = "T111",
        bot_user_id: str = "UBOT",
        bot_id: str = "BBOT",
    ) -> None:
        self.token = token
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.app_id = "A0FAKEAPP"
        # Without the chat:write.public scope a bot must be a member to post in a channel.
        self.chat_write_public = False
        self._lock = threading.RLock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.calls: list[Call] = []
        self.views: dict[str, dict] = {}
        self.errors: list[str] = []
        self._users: dict[str, dict] = {}
        self._channels: dict[str, dict] = {}
        self._messages: dict[str, dict[str, dict]] = {}
        self._ephemerals: list[dict] = []
        # Workflow Builder step executions by function_execution_id, with their own token.
        self._executions: dict[str, dict] = {}
        self._pins: dict[str, list[str]] = {}
        self._opened: list[str] = []
        self._used_triggers: set[str] = set()
        self._expired_triggers: set[str] = set()
        self._faults: list[_Fault] = []
        self._latency = 0.0
        self._responses: list[dict] = []
        # files.getUploadURLExternal -> POST to the upload URL -> files.completeUploadExternal
        self._uploads: dict[str, dict] = {}
        self._last_us = 0
        self._view_counter = 0
        self._seed()
        self._methods: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "api.test": self._api_test,
            "apps.connections.open": self._apps_connections_open,
            "auth.test": self._auth_test,
            "bots.info": self._bots_info,
            "chat.delete": self._chat_delete,
            "chat.getPermalink": self._chat_get_permalink,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "conversations.archive": self._conversations_archive,
            "conversations.create": self._conversations_create,
            "conversations.history": self._conversations_history,
            "conversations.info": self._conversations_info,
            "conversations.invite": self._conversations_invite,
            "conversations.join": self._conversations_join,
            "conversations.kick": self._conversations_kick,
            "conversations.leave": self._conversations_leave,
            "conversations.list": self._conversations_list,
            "conversations.members": self._conversations_members,
            "conversations.open": self._conversations_open,
            "conversations.rename": self._conversations_rename,
            "conversations.replies": self._conversations_replies,
            "conversations.setPurpose": self._conversations_set_purpose,
            "conversations.setTopic": self._conversations_set_topic,
            "conversations.unarchive": self._conversations_unarchive,
            "functions.completeError": self._functions_complete_error,
            "functions.completeSuccess": self._functions_complete_success,
            "pins.add": self._pins_add,
            "pins.list": self._pins_list,
            "pins.remove": self._pins_remove,
            "reactions.add": self._reactions_add,
            "team.info": self._team_info,
            "users.info": self._users_info,
            "users.list": self._users_list,
            "users.lookupByEmail": self._users_lookup_by_email,
            "views.open": self._views_open,
            "views.publish": self._views_publish,
            "files.getUploadURLExternal": self._files_get_upload_url_external,
            "files.completeUploadExternal": self._files_complete_upload_external,
            "views.push": self._views_push,
            "views.update": self._views_update,
        }

    # -- server --------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The base_url for WebClient, with a trailing slash."""
        return f"{self._root()}/api/"

    @property
    def respond_url(self) -> str:
        """A prefix for response_url values; append any id (posts land in `responses()`)."""
        return f"{self._root()}/respond/"

    def _root(self) -> str:
        """http://127.0.0.1:port of the running server."""
        if self._server is None:
            raise RuntimeError("FakeSlack is not started")
        return f"http://127.0.0.1:{self._server.server_port}"

    def start(self) -> FakeSlack:
        """Serve on 127.0.0.1 on a free port from a daemon thread."""
        if self._server is not None:
            return self
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name="fakeslack", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port."""
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget all state, calls, responses and faults; the server keeps running."""
        with self._lock:
            self.calls.clear()
            self.views.clear()
            self.errors.clear()
            self._users.clear()
            self._channels.clear()
            self._messages.clear()
            self._ephemerals.clear()
            self._pins.clear()
            self._opened.clear()
            self._used_triggers.clear()
            self._expired_triggers.clear()
            self._faults.clear()
            self._latency = 0.0
            self._responses.clear()
            self._uploads.clear()
            self._executions.clear()
            self._view_counter = 0
            self._seed()

    def _seed(self) -> None:
        """The bot's own user."""
        self.add_user(self.bot_user_id, name="swarm", is_bot=True)

    # -- seeding -------------------------------------------------------------------------------
    def add_user(
        self,
        user_id: str,
        *,
        name: str | None = None,
        is_admin: bool = False,
        is_owner: bool = False,
        is_restricted: bool = False,
        deleted: bool = False,
        is_bot: bool = False,
        tz: str = "UTC",
    ) -> dict:
        """Add (or replace) a workspace user."""
        name = name or user_id.lower()
        try:
            offset = ZoneInfo(tz).utcoffset(datetime.now())
            tz_offset = int(offset.total_seconds()) if offset is not None else 0
        except (ZoneInfoNotFoundError, ValueError):
            tz_offset = 0
        user = {
            "id": user_id,
            "team_id": self.team_id,
            "name": name,
            "real_name": name.title(),
            "deleted": deleted,
            "is_admin": is_admin or is_owner,
            "is_owner": is_owner,
            "is_primary_owner": False,
            "is_restricted": is_restricted,
            "is_ultra_restricted": False,
            "is_bot": is_bot,
            "is_app_user": False,
            "tz": tz,
            "tz_label": tz,
            "tz_offset": tz_offset,
            "profile": {
                "display_name": name,
                "real_name": name.title(),
                "email": None if is_bot else f"{name}@example.com",
                "team": self.team_id,
            },
        }
        if is_bot and user_id == self.bot_user_id:
            user["profile"]["bot_id"] = self.bot_id
        with self._lock:
            self._users[user_id] = user
            return copy.deepcopy(user)

    def add_channel(
        self,
        channel_id: str,
        name: str,
        *,
        is_private: bool = False,
        members: Iterable[str] = (),
        is_archived: bool = False,
    ) -> dict:
        """Add (or replace) a channel; include bot_user_id in members for the bot to be in it."""
        record = {
            "id": channel_id,
            "name": name,
            "is_private": is_private,
            "is_archived": is_archived,
            "members": list(dict.fromkeys(members)),
            "topic": "",
            "purpose": "",
            "created": int(time.time()),
            "creator": self.bot_user_id,
            "previous_names": [],
        }
        with self._lock:
            self._channels[channel_id] = record
            self._messages.setdefault(channel_id, {})
            return copy.deepcopy(record)

    def add_message(
        self,
        channel: str,
        *,
        user: str,
        text: str,
        ts: str | None = None,
        thread_ts: str | None = None,
        bot_id: str | None = None,
        files: list | None = None,
    ) -> dict:
        """Put a message in a channel as if `user` had posted it."""
        with self._lock:
            cid = self._dm_id(channel)
            if cid.startswith("D"):
                self._im(cid[1:])
            if cid not in self._channels:
                raise KeyError(f"unknown channel {channel}")
            message: dict[str, Any] = {
                "type": "message",
                "user": user,
                "text": text,
                "team": self.team_id,
            }
            if bot_id:
                message["bot_id"] = bot_id
            if files:
                message["files"] = copy.deepcopy(files)
                message["upload"] = False
            if thread_ts:
                message["thread_ts"] = thread_ts
            return copy.deepcopy(self._store(cid, message, ts=ts))

    # -- inspection ----------------------------------------------------------------------------
    def calls_to(self, method: str) -> list[dict]:
        """The params of every call to `method`, in order."""
        with self._lock:
            return [copy.deepcopy(c.params) for c in self.calls if c.method == method]

    def channel(self, channel_id: str) -> dict:
        """A channel's record (KeyError when unknown)."""
        with self._lock:
            return copy.deepcopy(self._channels[self._dm_id(channel_id)])

    def channel_by_name(self, name: str) -> dict | None:
        """The channel now called `name`, or None."""
        with self._lock:
            found = self._named(name.lstrip("#"))
            return copy.deepcopy(found) if found else None

    def messages(self, channel: str) -> list[dict]:
        """Every stored message of a channel (top level and replies), in ts order."""
        with self._lock:
            stored = self._messages.get(self._dm_id(channel), {})
            return [
                copy.deepcopy(m) for m in sorted(stored.values(), key=lambda m: _ts_key(m["ts"]))
            ]

    def thread(self, channel: str, ts: str) -> list[dict]:
        """A thread's parent and replies, in ts order."""
        return [m for m in self.messages(channel) if m["ts"] == ts or m.get("thread_ts") == ts]

    def start_function(
        self, callback_id: str, *, required_outputs: Iterable[str] = ()
    ) -> tuple[str, str]:
        """A running step execution, as Slack starts one: its id and its `xwfp-` token."""
        with self._lock:
            execution_id = f"Fx{secrets.token_hex(5).upper()}"
            token = f"xwfp-{secrets.token_hex(12)}"
            self._executions[execution_id] = {
                "id": execution_id,
                "callback_id": callback_id,
                "token": token,
                "state": "running",
                "required_outputs": tuple(required_outputs),
                "outputs": None,
                "error": None,
            }
            return execution_id, token

    def execution(self, execution_id: str) -> dict:
        """A step execution: state (running, completed, failed), outputs or error."""
        with self._lock:
            return copy.deepcopy(self._executions[execution_id])

    def ephemerals(self, channel: str | None = None, user: str | None = None) -> list[dict]:
        """Ephemeral messages, optionally only those in `channel` and/or to `user`."""
        with self._lock:
            wanted = self._dm_id(channel) if channel else None
            return [
                copy.deepcopy(e)
                for e in self._ephemerals
                if (wanted is None or e["channel"] == wanted)
                and (user is None or e["user"] == user)
            ]

    def dms(self, user: str) -> list[dict]:
        """Messages posted in the bot's DM with `user`."""
        return self.messages(f"D{user}")

    def files(self, channel: str) -> list[dict]:
        """Files shared in a channel through the upload v2 flow: id, name, title, alt_txt and
        the bytes received at the upload URL."""
        with self._lock:
            return [
                copy.deepcopy(u)
                for u in self._uploads.values()
                if u["completed"] and u["channel"] == self._dm_id(channel)
            ]

    def pins(self, channel: str) -> list[str]:
        """Timestamps of the channel's pinned messages."""
        with self._lock:
            return list(self._pins.get(self._dm_id(channel), []))

    def opened_views(self) -> list[dict]:
        """Current state of every view opened with views.open, in the order opened."""
        with self._lock:
            return [copy.deepcopy(self.views[v]) for v in self._opened if v in self.views]

    def responses(self) -> list[dict]:
        """Posts to response_url values under `respond_url`: {id, url, body, at}, in order."""
        with self._lock:
            return copy.deepcopy(self._responses)

    def users(self) -> list[dict]:
        """Every user record, the bot's included."""
        with self._lock:
            return copy.deepcopy(list(self._users.values()))

    # -- faults --------------------------------------------------------------------------------
    def inject(
        self,
        method: str,
        *,
        status: int | None = None,
        retry_after: int | None = None,
        error: str | None = None,
        delay: float = 0.0,
        times: int | None = 1,
        when: Callable[[dict], bool] | None = None,
    ) -> None:
        """Make the next `times` matching calls to `method` ("*": any) misbehave."""
        with self._lock:
            self._faults.append(_Fault(method, status, retry_after, error, delay, times, when))

    def outage(
        self,
        seconds: float,
        *,
        method: str = "*",
        status: int = 503,
        retry_after: int | None = None,
        error: str | None = None,
    ) -> None:
        """Every call to `method` ("*": any) fails with `status` for the next `seconds`."""
        with self._lock:
            self._faults.append(
                _Fault(
                    method,
                    status,
                    retry_after,
                    error,
                    0.0,
                    None,
                    None,
                    until=time.monotonic() + seconds,
                )
            )

    def archive(self, channel_id: str) -> None:
        """Archive a channel as a person would in the Slack client."""
        with self._lock:
            self._channels[self._dm_id(channel_id)]["is_archived"] = True

    def delete_message(self, channel_id: str, ts: str) -> None:
        """Delete a message as a person (or an admin) would in the Slack client."""
        with self._lock:
            self._messages[self._dm_id(channel_id)].pop(ts, None)

    def reset_faults(self) -> None:
        """Drop every injected fault and the added latency."""
        with self._lock:
            self._faults.clear()
            self._latency = 0.0

    def set_latency(self, seconds: float) -> None:
        """Add `seconds` to every call's answer time."""
        with self._lock:
            self._latency = max(0.0, seconds)

    def expire_trigger(self, trigger_id: str) -> None:
        """Let views.open/push with this trigger fail with expired_trigger_id."""
        with self._lock:
            self._expired_triggers.add(trigger_id)

    def _match_fault(self, method: str, params: dict[str, Any]) -> _Fault | None:
        """The first live rule for this call, consumed by one; `when` runs outside the lock."""
        with self._lock:
            candidates = [f for f in self._faults if f.method in (method, "*") and f.live()]
        for fault in candidates:
            if fault.when is not None and not fault.when(copy.deepcopy(params)):
                continue
            with self._lock:
                if not fault.live():
                    continue
                fault.used += 1
                if not fault.live() and fault in self._faults:
                    self._faults.remove(fault)
                return fault
        return None

    # -- HTTP ----------------------------------------------------------------------------------
    def _serve(self, req: BaseHTTPRequestHandler) -> None:
        """Answer one HTTP request."""
        try:
            parts = urlsplit(req.path)
            length = int(req.headers.get("Content-Length") or 0)
            raw = req.rfile.read(length) if length else b""
            if parts.path.startswith("/respond/"):
                self._record_response(req, parts.path, raw)
                self._send(req, 200, b"ok", "text/plain; charset=utf-8")
                return
            if parts.path.startswith("/upload/"):
                status, answer = self._receive_upload(parts.path[len("/upload/") :], raw)
                self._send(req, status, answer.encode(), "text/plain; charset=utf-8")
                return
            if not parts.path.startswith("/api/"):
                self._send_json(req, 404, {"ok": False, "error": "not_found"})
                return
            method = parts.path[len("/api/") :]
            try:
                params = self._params(parts.query, req.headers.get("Content-Type") or "", raw)
            except (ValueError, UnicodeDecodeError):
                self._send_json(req, 200, {"ok": False, "error": "invalid_json"})
                return
            token = params.pop("token", None)
            auth = req.headers.get("Authorization") or ""
            if auth.lower().startswith("bearer "):
                token = auth[7:].strip()
            with self._lock:
                self.calls.append(
                    Call(
                        method,
                        copy.deepcopy(params),
                        time.monotonic(),
                        None if token is None else str(token),
                    )
                )
                latency = self._latency
            fault = self._match_fault(method, params)
            pause = latency + (fault.delay if fault else 0.0)
            if pause > 0:
                time.sleep(pause)
            if fault is not None and fault.status not in (None, 200):
                self._send_fault(req, fault)
                return
            if fault is not None and fault.error:
                self._send_json(req, 200, {"ok": False, "error": fault.error})
                return
            self._send_json(req, 200, self._answer(method, params, token))
        except Exception as exc:  # the fake itself failed: say so loudly
            with self._lock:
                self.errors.append(f"{req.path}: {exc!r}")
            self._send_json(
                req, 500, {"ok": False, "error": "fake_internal_error", "detail": repr(exc)}
            )

    def _send_fault(self, req: BaseHTTPRequestHandler, fault: _Fault) -> None:
        """An HTTP error status, with Retry-After for 429."""
        status = int(fault.status or 500)
        if status == 429:
            retry = fault.retry_after if fault.retry_after is not None else 1
            self._send_json(
                req,
                429,
                {"ok": False, "error": fault.error or "ratelimited"},
                {"Retry-After": str(retry)},
            )
            return
        error = fault.error or SERVER_ERRORS.get(status, f"http_{status}")
        headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
        self._send_json(req, status, {"ok": False, "error": error}, headers)

    def _send_json(
        self,
        req: BaseHTTPRequestHandler,
        status: int,
        body: dict[str, Any],
        headers: dict[str, str] | None = None,
    ) -> None:
        """A JSON answer."""
        self._send(
            req, status, json.dumps(body).encode(), "application/json; charset=utf-8", headers
        )

    @staticmethod
    def _send(
        req: BaseHTTPRequestHandler,
        status: int,
        data: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Write status, headers and body."""
        req.send_response(status)
        req.send_header("Content-Type", content_type)
        req.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            req.send_header(name, value)
        req.end_headers()
        req.wfile.write(data)

    @staticmethod
    def _params(query: str, content_type: str, raw: bytes) -> dict[str, Any]:
        """Query string plus JSON, form or multipart body, normalised."""
        params: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
        kind = content_type.split(";")[0].strip().lower()
        if raw and kind == "application/json":
            body = json.loads(raw.decode("utf-8"))
            if isinstance(body, dict):
                params.update(body)
        elif raw and kind == "multipart/form-data":
            message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                f"Content-Type: {content_type}\r\n\r\n".encode() + raw
            )
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                if not name:
                    continue
                payload = part.get_payload(decode=True) or b""
                if part.get_filename():
                    params[str(name)] = {"filename": part.get_filename(), "content": payload}
                else:
                    params[str(name)] = payload.decode("utf-8")
        elif raw:
            params.update(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        for key in JSON_FIELDS:
            value = params.get(key)
            if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
                with contextlib.suppress(json.JSONDecodeError):
                    params[key] = json.loads(value)
        for key in LIST_FIELDS:
            value = params.get(key)
            if isinstance(value, str):
                params[key] = [u.strip() for u in value.split(",") if u.strip()]
        return params

    def _record_response(self, req: BaseHTTPRequestHandler, path: str, raw: bytes) -> None:
        """Keep a post to a response_url."""
        text = raw.decode("utf-8") if raw else ""
        try:
            body: Any = json.loads(text) if text else {}
        except json.JSONDecodeError:
            body = dict(parse_qsl(text, keep_blank_values=True))
        with self._lock:
            self._responses.append(
                {
                    "id": path[len("/respond/") :],
                    "url": f"{self._root()}{path}",
                    "body": body,
                    "at": time.monotonic(),
                }
            )

    def _answer(self, method: str, params: dict[str, Any], token: str | None) -> dict[str, Any]:
        """The JSON answer of one Web API call."""
        handler = self._methods.get(method)
        if handler is None:
            return {"ok": False, "error": "unknown_method"}
        if not token:
            return {"ok": False, "error": "not_authed"}
        if token != self.token and not self._execution_token(token):
            return {"ok": False, "error": "invalid_auth"}
        with self._lock:
            try:
                return {"ok": True, **handler(params)}
            except SlackError as err:
                return {"ok": False, "error": err.error, **err.extra}

    # -- internals -----------------------------------------------------------------------------
    def _next_ts(self, wanted: str | None = None) -> str:
        """A unique timestamp that follows real time and never goes backwards."""
        if wanted is not None:
            us = int(_ts_key(wanted) * 1_000_000)
            self._last_us = max(self._last_us, us)
            return wanted
        us = max(time.time_ns() // 1000, self._last_us + 1)
        self._last_us = us
        return f"{us // 1_000_000}.{us % 1_000_000:06d}"

    def _dm_id(self, channel: str) -> str:
        """A user id becomes the id of the bot's DM with that user."""
        return f"D{channel}" if channel[:1] in ("U", "W") else channel

    def _im(self, user: str) -> dict:
        """The bot's DM channel with `user`, made on first use."""
        cid = f"D{user}"
        record = self._channels.get(cid)
        if record is None:
            record = {
                "id": cid,
                "is_im": True,
                "user": user,
                "is_private": True,
                "is_archived": False,
                "members": [user, self.bot_user_id],
                "created": int(time.time()),
            }
            self._channels[cid] = record
            self._messages.setdefault(cid, {})
        return record

    def _named(self, name: str) -> dict | None:
        """The non-DM channel now called `name`."""
        return next(
            (c for c in self._channels.values() if not c.get("is_im") and c.get("name") == name),
            None,
        )

    def _visible(self, channel: Any) -> dict:
        """A channel the bot can see: any public one, private ones it is in, its DMs."""
        cid = str(channel or "")
        if not cid:
            raise SlackError("channel_not_found")
        if cid[:1] in ("U", "W") or (cid.startswith("D") and cid not in self._channels):
            return self._im(cid[1:] if cid.startswith("D") else cid)
        record = self._channels.get(cid)
        if record is None and (cid.startswith("#") or not cid[:1].isupper()):
            record = self._named(cid.lstrip("#"))
        if record is None:
            raise SlackError("channel_not_found")
        if record["is_private"] and self.bot_user_id not in record["members"]:
            raise SlackError("channel_not_found")
        return record

    def _member(self, channel: Any, *, writable: bool = True) -> dict:
        """A visible channel the bot is in (and, if writable, not archived)."""
        record = self._visible(channel)
        if writable and record["is_archived"]:
            raise SlackError("is_archived")
        if self.bot_user_id not in record["members"]:
            raise SlackError("not_in_channel")
        return record

    def _message(self, cid: str, ts: Any) -> dict:
        """A stored message; message_not_found otherwise."""
        found = self._messages.get(cid, {}).get(str(ts or ""))
        if found is None:
            raise SlackError("message_not_found")
        return found

    def _store(self, cid: str, message: dict[str, Any], ts: str | None = None) -> dict:
        """Give a message its ts, keep it, and update its thread's parent."""
        message["ts"] = self._next_ts(ts)
        message["channel"] = cid
        thread_ts = message.get("thread_ts")
        if thread_ts:
            parent = self._messages.get(cid, {}).get(thread_ts)
            if parent is not None and parent.get("thread_ts") not in (None, thread_ts):
                message["thread_ts"] = thread_ts = parent["thread_ts"]
        self._messages.setdefault(cid, {})[message["ts"]] = message
        if thread_ts:
            self._refresh_parent(cid, thread_ts)
        return message

    def _refresh_parent(self, cid: str, thread_ts: str) -> None:
        """Recount a parent's replies."""
        stored = self._messages.get(cid, {})
        parent = stored.get(thread_ts)
        if parent is None:
            return
        replies = sorted(
            (
                m
                for m in stored.values()
                if m.get("thread_ts") == thread_ts and m["ts"] != thread_ts
            ),
            key=lambda m: _ts_key(m["ts"]),
        )
        if not replies:
            for key in ("reply_count", "reply_users_count", "reply_users", "latest_reply"):
                parent.pop(key, None)
            return
        users = list(dict.fromkeys(m.get("user") for m in replies if m.get("user")))
        parent.update(
            reply_count=len(replies),
            reply_users_count=len(users),
            reply_users=users,
            latest_reply=replies[-1]["ts"],
        )

    def _out(self, message: dict, *, metadata: bool = True) -> dict:
        """A stored message as the Web API shows it."""
        shown = copy.deepcopy(message)
        shown.pop("channel", None)
        if shown.get("reply_count"):
            shown["thread_ts"] = shown["ts"]
        if not metadata:
            shown.pop("metadata", None)
        return shown

    def _blocks(self, params: dict[str, Any]) -> list | None:
        """Validated message blocks, None when not given."""
        blocks = params.get("blocks")
        if blocks is None or blocks == "":
            return None
        if isinstance(blocks, str):
            raise SlackError("invalid_blocks_format", detail="blocks must be a JSON array")
        try:
            _check_blocks(blocks, MAX_MESSAGE_BLOCKS)
        except _BlockError as exc:
            raise SlackError("invalid_blocks", detail=str(exc)) from None
        return copy.deepcopy(blocks)

    @staticmethod
    def _attachments(params: dict[str, Any]) -> list | None:
        """Message attachments, None when not given."""
        attachments = params.get("attachments")
        if attachments is None or attachments == "":
            return None
        if not isinstance(attachments, list):
            raise SlackError("invalid_attachments")
        return copy.deepcopy(attachments)

    @staticmethod
    def _metadata(params: dict[str, Any]) -> dict | None:
        """Message metadata {event_type, event_payload}, None when not given."""
        metadata = params.get("metadata")
        if metadata is None or metadata == "":
            return None
        if (
            not isinstance(metadata, dict)
            or not isinstance(metadata.get("event_type"), str)
            or not isinstance(metadata.get("event_payload"), dict)
        ):
            raise SlackError(
                "invalid_metadata_format",
                detail="metadata needs event_type and an event_payload object",
            )
        return copy.deepcopy(metadata)

    def _info(self, record: dict) -> dict:
        """A channel as conversations.info shows it."""
        if record.get("is_im"):
            return {
                "id": record["id"],
                "created": record["created"],
                "is_im": True,
                "is_org_shared": False,
                "user": record["user"],
                "is_user_deleted": bool(self._users.get(record["user"], {}).get("deleted")),
                "priority": 0,
            }
        private = record["is_private"]
        return {
            "id": record["id"],
            "name": record["name"],
            "name_normalized": record["name"],
            "is_channel": not private,
            "is_group": private,
            "is_im": False,
            "is_mpim": False,
            "is_private": private,
            "is_archived": record["is_archived"],
            "is_general": record["name"] == "general",
            "is_shared": False,
            "is_ext_shared": False,
            "is_org_shared": False,
            "context_team_id": self.team_id,
            "created": record["created"],
            "creator": record["creator"],
            "is_member": self.bot_user_id in record["members"],
            "topic": {"value": record["topic"], "creator": "", "last_set": 0},
            "purpose": {"value": record["purpose"], "creator": "", "last_set": 0},
            "previous_names": list(record["previous_names"]),
            "num_members": len(record["members"]),
        }

    def _check_name(self, name: Any, *, own: str | None = None) -> str:
        """Slack's channel name rules; name_taken counts archived channels too."""
        name = str(name or "")
        if not name:
            raise SlackError("invalid_name_required")
        if len(name) > 80:
            raise SlackError("invalid_name_maxlength")
        if not NAME_RE.match(name):
            raise SlackError("invalid_name_specials")
        if not name.strip("-_"):
            raise SlackError("invalid_name_punctuation")
        taken = self._named(name)
        if taken is not None and taken["id"] != own:
            raise SlackError("name_taken")
        return name

    def _new_channel_id(self, private: bool) -> str:
        """A fresh id: C (or G for private) and 10 uppercase letters or digits."""
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
        while True:
            cid = ("G" if private else "C") + "".join(secrets.choice(alphabet) for _ in range(10))
            if cid not in self._channels:
                return cid

    # -- api / auth / team ---------------------------------------------------------------------
    def _api_test(self, params: dict[str, Any]) -> dict[str, Any]:
        """api.test echoes its arguments."""
        return {"args": copy.deepcopy(params)}

    def _apps_connections_open(self, params: dict[str, Any]) -> dict[str, Any]:
        """apps.connections.open: needs an app-level (xapp-) token, never a bot token."""
        raise SlackError("not_allowed_token_type")

    def _auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        """auth.test: who the token is."""
        return {
            "url": f"{PERMALINK_BASE}/",
            "team": "Fake Workspace",
            "team_id": self.team_id,
            "user": self._users.get(self.bot_user_id, {}).get("name", "swarm"),
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _team_info(self, params: dict[str, Any]) -> dict[str, Any]:
        """team.info."""
        return {
            "team": {
                "id": self.team_id,
                "name": "Fake Workspace",
                "domain": "fake",
                "email_domain": "example.com",
                "icon": {},
            }
        }

    def _bots_info(self, params: dict[str, Any]) -> dict[str, Any]:
        """bots.info for the bot itself (any other id: bot_not_found)."""
        if _str(params, "bot") not in ("", self.bot_id):
            raise SlackError("bot_not_found")
        return {
            "bot": {
                "id": self.bot_id,
                "deleted": False,
                "name": "swarm",
                "updated": int(time.time()),
                "app_id": self.app_id,
                "user_id": self.bot_user_id,
                "icons": {},
            }
        }

    # -- chat ----------------------------------------------------------------------------------
    def _post_target(self, channel: Any) -> dict:
        """Where chat.postMessage may post: checks existence, archive and membership."""
        record = self._visible(channel)
        if record["is_archived"]:
            raise SlackError("is_archived")
        if self.bot_user_id not in record["members"] and not self.chat_write_public:
            raise SlackError("not_in_channel")
        return record

    @staticmethod
    def _text(params: dict[str, Any]) -> str:
        """The message text (markdown_text counts as text)."""
        text = _str(params, "text") or _str(params, "markdown_text")
        if len(text) > MAX_TEXT:
            raise SlackError("msg_too_long")
        return text

    def _chat_post_message(self, params: dict[str, Any]) -> dict[str, Any]:
        """chat.postMessage."""
        record = self._post_target(params.get("channel"))
        text = self._text(params)
        blocks = self._blocks(params)
        attachments = self._attachments(params)
        metadata = self._metadata(params)
        if not text and not blocks and not attachments:
            raise SlackError("no_text")
        message: dict[str, Any] = {
            "type": "message",
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "text": text,
            "team": self.team_id,
        }
        if blocks is not None:
            message["blocks"] = blocks
        if attachments is not None:
            message["attachments"] = attachments
        if metadata is not None:
            message["metadata"] = metadata
        thread_ts = _str(params, "thread_ts")
        if thread_ts:
            message["thread_ts"] = thread_ts
            if _flag(params.get("reply_broadcast")):
                message["subtype"] = "thread_broadcast"
        stored = self._store(record["id"], message)
        return {"channel": record["id"], "ts": stored["ts"], "message": self._out(stored)}

    def _chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        """chat.update: only the bot's own messages."""
        record = self._visible(params.get("channel"))
        message = self._message(record["id"], params.get("ts"))
        if message.get("user") != self.bot_user_id and message.get("bot_id") != self.bot_id:
            raise SlackError("cant_update_message")
        if record["is_archived"]:
            raise SlackError("is_archived")
        text = self._text(params)
        blocks = self._blocks(params)
        attachments = self._attachments(params)
        metadata = self._metadata(params)
        if not text and not blocks and not attachments and not message.get("blocks"):
            raise SlackError("no_text")
        if "text" in params or "markdown_text" in params:
            message["text"] = text
        for key, value in (
            ("blocks", blocks),
            ("attachments", attachments),
            ("metadata", metadata),
        ):
            if value is not None:
                message[key] = value
        message["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
        return {
            "channel": record["id"],
            "ts": message["ts"],
            "text": message["text"],
            "message": self._out(message),
        }

    def _chat_delete(self, params: dict[str, Any]) -> dict[str, Any]:
        """chat.delete: only the bot's own messages."""
        record = self._visible(params.get("channel"))
        message = self._message(record["id"], params.get("ts"))
        if message.get("user") != self.bot_user_id and message.get("bot_id") != self.bot_id:
            raise SlackError("cant_delete_message")
        del self._messages[record["id"]][message["ts"]]
        pins = self._pins.get(record["id"], [])
        if message["ts"] in pins:
            pins.remove(message["ts"])
        if message.get("thread_ts") and message["thread_ts"] != message["ts"]:
            self._refresh_parent(record["id"], message["thread_ts"])
        return {"channel": record["id"], "ts": message["ts"]}

    def _chat_post_ephemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        """chat.postEphemeral: kept apart from channel messages."""
        record = self._visible(params.get("channel"))
        if record["is_archived"]:
            raise SlackError("is_archived")
        user = _str(params, "user")
        if not user:
            raise SlackError("user_not_found")
        known = self._users.get(user)
        if known is not None and known["deleted"]:
            raise SlackError("user_not_found")
        if record["is_private"] and not record.get("is_im") and user not in record["members"]:
            raise SlackError("user_not_in_channel")
        text = self._text(params)
        blocks = self._blocks(params)
        attachments = self._attachments(params)
        if not text and not blocks and not attachments:
            raise SlackError("no_text")
        ephemeral: dict[str, Any] = {
            "type": "message",
            "ts": self._next_ts(),
            "channel": record["id"],
            "user": user,
            "text": text,
            "bot_id": self.bot_id,
        }
        if blocks is not None:
            ephemeral["blocks"] = blocks
        if attachments is not None:
            ephemeral["attachments"] = attachments
        if params.get("thread_ts"):
            ephemeral["thread_ts"] = _str(params, "thread_ts")
        self._ephemerals.append(ephemeral)
        return {"message_ts": ephemeral["ts"]}

    def _chat_get_permalink(self, params: dict[str, Any]) -> dict[str, Any]:
        """chat.getPermalink."""
        record = self._visible(params.get("channel"))
        message = self._message(record["id"], params.get("message_ts"))
        link = f"{PERMALINK_BASE}/archives/{record['id']}/p{message['ts'].replace('.', '')}"
        thread_ts = message.get("thread_ts")
        if thread_ts and thread_ts != message["ts"]:
            link += f"?thread_ts={thread_ts}&cid={record['id']}"
        return {"channel": record["id"], "permalink": link}

    # -- conversations -------------------------------------------------------------------------
    def _conversations_open(self, params: dict[str, Any]) -> dict[str, Any]:
        """conversations.open: the bot's DM with one user."""
        users = params.get("users") or []
        if not users and params.get("channel"):
            record = self._visible(params.get("channel"))
            return {"channel": {"id": record["id"]}, "no_op": True, "already_open": True}
        if not users:
            raise SlackError("users_list_not_supplied")
        if len(users) > 1:
            raise SlackError("not_supported", detail="this fake opens one-to-one DMs only")
        user = users[0]
        known = self._users.get(user)
        if known is not None and known["deleted"]:
            raise SlackError("user_disabled")
        existed = f"D{user}" in self._channels
        record = self._im(user)
        answer: dict[str, Any] = {"channel": {"id": record["id"]}}
        if existed:
            answer.update(no_op=True, already_open=True)
        return answer

    def _conversations_create(self, params: dict[str, Any]) -> dict[str, Any]:
        """conversations.create: the bot creates and joins."""
        name = self._check_name(params.get("name"))
        private = _flag(params.get("is_private"))
        cid = self._new_channel_id(private)
        self.add_channel(cid, name, is_private=private, members=[self.bot_user_id])
        return {"channel": self._info(self._channels[cid])}

    def _conversations_rename(self, params: dict[str, Any]) -> dict[str, Any]:
        """conversations.rename."""
        record = self._visible(params.get("channel"))
        if record.get("is_im"):
            raise SlackError("method_not_supported_for_channel_type")
        if record["is_archived"]:
            raise SlackError("is_archived")
        if self.bot_user_id not in record["members"]:
            raise SlackError("not_in_channel")
        name = self._check_name(params.get("name"), own=record["id"])
        if name != record["name"]:
            record["previous_names"].insert(0, record["name"])
            record["name"] = name
        return {"channel": self._info(record)}

    def _conversations_invite(self, params: dict[str, Any]) -> dict[str, Any]:
        """conversations.invite, with Slack's per-user errors and `force`."""
        record = self._member(params.get("channel"))
        if record.get("is_im"):
            raise SlackError("method_not_supported_for_channel_type")
        users = list(dict.fromkeys(params.get("users") or []))
        if not users:
            raise SlackError("no_user")
        if len(users) > 1000:
            raise SlackError("too_many_users")
        errors: list[dict[str, Any]] = []
        valid: list[str] = []
        for user in users:
            known = self._users.get(user)
            if user == self.bot_user_id:
                error = "cant_invite_self"
            elif known is None or known["deleted"]:
                error = "user_not_found"
            elif known["is_restricted"]:
                error = "user_is_restricted"
            elif user in record["members"]:
                error = "already_in_channel"
            else:
                valid.append(user)
                continue
            errors.append({"user": user, "ok": False, "error": error})
        if errors and (not _flag(params.get("force")) or not valid):
            raise SlackError(errors[0]["error"], errors=errors)
        record["members"].extend(valid)
        answer: dict[str, Any] = {"channel": self._info(record)}
        if errors:
            answer["errors"] = errors
        return answer

    def _conversations_kick(self, params: dict[str, Any]) -> dict[str, Any]:
        """conversations.kick."""
        record = self._member(params.get("channel"))
        user = _str(params, "user")
        if user == self.bot_user_id:
            raise SlackError("cant_kick_self")
        if user not in self._users:
            raise SlackError("user_not_found")
        if user not in record["members"]:
            raise SlackError("not_in_channel")
        record["members"].remove(user)
        return {}

    def _conversations_join(self, params: dict[str, Any]) -> dict[str, Any]:
        """conversations.join: public channels only."""
        record = self._visible(params.get("channel"))
        if record.get("is_im") or record["is_private"]:
            raise SlackError("method_not_supported_for_channel_type")
        if record["is_archived"]:
            raise SlackError("is_archived")
        answer: dict[str, Any] = {}
        if self.bot_user_id in record["members"]:
            answer["warning"] = "already_in_channel"
            answer["response_metadata"] = {"warnings": ["already_in_channel"]}
        else:
            record["members"].append(self.bot_user_id)
        answer["channel"] = self._info(record)
        return answer

    def _conversations_leave(self, params: dict[str, Any]) -> dict[str, Any]:
        """conversations.leave."""
        record = self._visible(params.get("channel"))
        if record.get("is_im"):
            raise SlackError("method_not_supported_for_channel_type")
        if record["is_archived"]:
            raise SlackError("is_archived")
        if self.bot_user_id not in record["members"]:
            return {"not_in_channel": True}
        record["members"].remove(self.bot_user_id)
        return {}

    def _conversations_archive(self, params: dict[str, Any]) -> dict[str, Any]:
        """conversations.archive."""
        record = self._visible(params.get("channel"))
        if record.get("is_im"):
            raise SlackError("method_not_supported_for_channel_type")
        if record["is_archived"]:
            raise SlackError("already_archived")
        if self.bot_user_id not in record["members"]:
            raise SlackError("not_in_channel")
        if record["name"] == "general":
            raise SlackError("cant_archive_general")
        record["is_archived"] = True
        return {}

    def _conversations_unarchive(self, params: dict[str, Any]) -> dict[str, Any]:
        """conversations.unarchive."""
        record = self._visible(params.get("channel"))
        if not record["is_archived"]:
            raise SlackError("not_archived")
        record["is_archived"] = False
        return {}

    def _set_text(self, params: dict[str, Any], key: str) -> dict[str, Any]:
        """setTopic/setPurpose."""
        record = self._member(params.get("channel"))
        if record.get("is_im"):
            raise SlackError("method_not_supported_for_channel_type")
        value = _str(params, key)
        if len(value) > MAX_TOPIC:
            raise SlackError("too_long")
        record[key] = value
        return {"channel": self._info(record), key: value}

    def _conversations_set_topic(self, params: dict[str, Any]) -> dict[str, Any]:
        """conversations.setTopic."""
        return self._set_text(params, "topic")

    def _conversations_set_purpose(self, params: dict[str, Any]) -> dict[str, Any]:
        """conversations.setPurpose."""
        return self._set_text(params, "purpose")

    def _conversations_info(self, params: dict[str, Any]) -> dict[str, Any]:
        """conversations.info."""
        return {"channel": self._info(self._visible(params.get("channel")))}

    def _conversations_members(self, params: dict[str, Any]) -> dict[str, Any]:
        """conversations.members, paginated."""
        record = self._visible(params.get("channel"))
        page, cursor = _page(list(record["members"]), params, 100)
        return {"members": page, "response_metadata": {"next_cursor": cursor}}

    def _conversations_list(self, params: dict[str, Any]) -> dict[str, Any]:
        """conversations.list: by types, optionally without archived, paginated."""
        types = {t.strip() for t in (_str(params, "types") or "public_channel").split(",")}
        exclude_archived = _flag(params.get("exclude_archived"))
        found = []
        for record in self._channels.values():
            if record.get("is_im"):
                kind = "im"
            else:
                kind = "private_channel" if record["is_private"] else "public_channel"
            if kind not in types or (exclude_archived and record["is_archived"]):
                continue
            if kind != "public_channel" and self.bot_user_id not in record["members"]:
                continue
            found.append(self._info(record))
        page, cursor = _page(found, params, 100)
        return {"channels": page, "response_metadata": {"next_cursor": cursor}}

    def _readable(self, params: dict[str, Any]) -> dict:
        """A channel whose history the bot may read (it must be a member)."""
        record = self._visible(params.get("channel"))
        if self.bot_user_id not in record["members"]:
            raise SlackError("not_in_channel")
        return record

    @staticmethod
    def _window(params: dict[str, Any]) -> Callable[[dict], bool]:
        """The oldest/latest/inclusive filter of history and replies."""
        oldest = _ts_key(_str(params, "oldest") or "0")
        latest = _ts_key(_str(params, "latest")) if params.get("latest") else None
        inclusive = _flag(params.get("inclusive"))

        def inside(message: dict) -> bool:
            ts = _ts_key(message["ts"])
            if ts < oldest or (ts == oldest and not inclusive and oldest > 0):
                return False
            return latest is None or ts < latest or (ts == latest and inclusive)

        return inside

    def _conversations_history(self, params: dict[str, Any]) -> dict[str, Any]:
        """conversations.history: top-level messages, newest first, paginated."""
        record = self._readable(params)
        inside = self._window(params)
        messages = [
            m
            for m in self._messages.get(record["id"], {}).values()
            if (
                not m.get("thread_ts")
                or m["thread_ts"] == m["ts"]
                or m.get("subtype") == "thread_broadcast"
            )
            and inside(m)
        ]
        messages.sort(key=lambda m: _ts_key(m["ts"]), reverse=True)
        cursor = _str(params, "cursor")
        if cursor:
            before = _ts_key(_uncursor(cursor, "before"))
            messages = [m for m in messages if _ts_key(m["ts"]) < before]
        limit = _int(params.get("limit"), 100)
        limit = 100 if limit <= 0 else min(limit, 999)
        page, more = messages[:limit], len(messages) > limit
        metadata = _flag(params.get("include_all_metadata"))
        return {
            "messages": [self._out(m, metadata=metadata) for m in page],
            "has_more": more,
            "pin_count": len(self._pins.get(record["id"], [])),
            "response_metadata": {"next_cursor": _cursor("before", page[-1]["ts"]) if more else ""},
        }

    def _conversations_replies(self, params: dict[str, Any]) -> dict[str, Any]:
        """conversations.replies: parent first, then replies in ts order, paginated."""
        record = self._readable(params)
        ts = _str(params, "ts")
        stored = self._messages.get(record["id"], {})
        parent = stored.get(ts)
        if parent is None:
            raise SlackError("thread_not_found")
        root = parent.get("thread_ts") or ts
        inside = self._window(params)
        thread = [
            m
            for m in stored.values()
            if m["ts"] == root or (m.get("thread_ts") == root and inside(m))
        ]
        thread.sort(key=lambda m: _ts_key(m["ts"]))
        cursor = _str(params, "cursor")
        if cursor:
            after = _ts_key(_uncursor(cursor, "after"))
            thread = [m for m in thread if _ts_key(m["ts"]) > after]
        limit = _int(params.get("limit"), 1000)
        limit = 1000 if limit <= 0 else limit
        page, more = thread[:limit], len(thread) > limit
        metadata = _flag(params.get("include_all_metadata"))
        return {
            "messages": [self._out(m, metadata=metadata) for m in page],
            "has_more": more,
            "response_metadata": {"next_cursor": _cursor("after", page[-1]["ts"]) if more else ""},
        }

    # -- pins / reactions ----------------------------------------------------------------------
    def _pins_add(self, params: dict[str, Any]) -> dict[str, Any]:
        """pins.add."""
        record = self._member(params.get("channel"))
        message = self._message(record["id"], params.get("timestamp"))
        pins = self._pins.setdefault(record["id"], [])
        if message["ts"] in pins:
            raise SlackError("already_pinned")
        pins.append(message["ts"])
        message.setdefault("pinned_to", []).append(record["id"])
        return {}

    def _pins_remove(self, params: dict[str, Any]) -> dict[str, Any]:
        """pins.remove."""
        record = self._member(params.get("channel"))
        message = self._message(record["id"], params.get("timestamp"))
        pins = self._pins.get(record["id"], [])
        if message["ts"] not in pins:
            raise SlackError("no_pin")
        pins.remove(message["ts"])
        message.pop("pinned_to", None)
        return {}

    def _pins_list(self, params: dict[str, Any]) -> dict[str, Any]:
        """pins.list."""
        record = self._visible(params.get("channel"))
        stored = self._messages.get(record["id"], {})
        items = [
            {
                "type": "message",
                "channel": record["id"],
                "created": int(time.time()),
                "created_by": self.bot_user_id,
                "message": self._out(stored[ts]),
            }
            for ts in self._pins.get(record["id"], [])
            if ts in stored
        ]
        return {"items": items}

    def _reactions_add(self, params: dict[str, Any]) -> dict[str, Any]:
        """reactions.add: recorded on the message when it is known."""
        name = _str(params, "name").strip(":")
        if not name:
            raise SlackError("invalid_name")
        record = self._visible(params.get("channel"))
        message = self._messages.get(record["id"], {}).get(_str(params, "timestamp"))
        if message is not None:
            reactions = message.setdefault("reactions", [])
            reaction = next((r for r in reactions if r["name"] == name), None)
            if reaction is None:
                reaction = {"name": name, "users": [], "count": 0}
                reactions.append(reaction)
            if self.bot_user_id in reaction["users"]:
                raise SlackError("already_reacted")
            reaction["users"].append(self.bot_user_id)
            reaction["count"] = len(reaction["users"])
        return {}

    # -- functions (Workflow Builder steps) -----------------------------------------------------
    def _execution_token(self, token: str) -> bool:
        """A step execution's own bot token (`bot_access_token` of function_executed)."""
        with self._lock:
            return any(e["token"] == token for e in self._executions.values())

    def _running(self, params: dict[str, Any]) -> dict:
        execution = self._executions.get(_str(params, "function_execution_id"))
        if execution is None:
            raise SlackError("function_execution_not_found")
        if execution["state"] != "running":
            # Slack forgets an execution once it is completed.
            raise SlackError("function_execution_not_found")
        return execution

    def _functions_complete_success(self, params: dict[str, Any]) -> dict[str, Any]:
        """functions.completeSuccess: outputs must be an object with every required output."""
        execution = self._running(params)
        outputs = params.get("outputs")
        if isinstance(outputs, str):
            with contextlib.suppress(json.JSONDecodeError):
                outputs = json.loads(outputs)
        if not isinstance(outputs, dict):
            raise SlackError("parameter_validation_failed", detail="outputs must be an object")
        missing = [k for k in execution["required_outputs"] if outputs.get(k) in (None, "")]
        if missing:
            raise SlackError(
                "parameter_validation_failed", detail=f"missing required outputs: {missing}"
            )
        execution.update(state="completed", outputs=copy.deepcopy(outputs))
        return {}

    def _functions_complete_error(self, params: dict[str, Any]) -> dict[str, Any]:
        """functions.completeError: the step fails with a message shown to the user."""
        execution = self._running(params)
        error = _str(params, "error")
        if not error:
            raise SlackError("invalid_arguments", detail="missing required field: error")
        execution.update(state="failed", error=error)
        return {}

    # -- users ---------------------------------------------------------------------------------
    def _users_info(self, params: dict[str, Any]) -> dict[str, Any]:
        """users.info."""
        user = self._users.get(_str(params, "user"))
        if user is None:
            raise SlackError("user_not_found")
        return {"user": copy.deepcopy(user)}

    def _users_list(self, params: dict[str, Any]) -> dict[str, Any]:
        """users.list (everyone unless limit is given), paginated."""
        page, cursor = _page([copy.deepcopy(u) for u in self._users.values()], params, 0)
        return {
            "members": page,
            "cache_ts": int(time.time()),
            "response_metadata": {"next_cursor": cursor},
        }

    def _users_lookup_by_email(self, params: dict[str, Any]) -> dict[str, Any]:
        """users.lookupByEmail."""
        email = _str(params, "email").lower()
        user = next(
            (
                u
                for u in self._users.values()
                if (u["profile"].get("email") or "").lower() == email and email
            ),
            None,
        )
        if user is None:
            raise SlackError("users_not_found")
        return {"user": copy.deepcopy(user)}

    # -- views ---------------------------------------------------------------------------------
    def _take_trigger(self, params: dict[str, Any]) -> str:
        """Check a trigger_id: missing, expired, or already exchanged."""
        trigger = _str(params, "trigger_id") or _str(params, "interactivity_pointer")
        if not trigger:
            raise SlackError("invalid_arguments", detail="missing required field: trigger_id")
        if trigger in self._expired_triggers:
            raise SlackError("expired_trigger_id")
        if trigger in self._used_triggers:
            raise SlackError("exchanged_trigger_id")
        return trigger

    @staticmethod
    def _check_view(view: Any, kind: str) -> dict:
        """Basic view rules: type, title, buttons, blocks, metadata sizes."""
        if not isinstance(view, dict):
            raise SlackError("invalid_arguments", detail="view must be an object")
        if view.get("type") != kind:
            raise SlackError("invalid_arguments", detail=f"view.type must be {kind}")
        try:
            if kind == "modal":
                if view.get("title") is None:
                    raise _BlockError("view.title is required")
                _check_text(view.get("title"), "view.title", 24, plain_only=True)
                _check_text(view.get("submit"), "view.submit", 24, plain_only=True)
                _check_text(view.get("close"), "view.close", 24, plain_only=True)
            blocks = view.get("blocks")
            if blocks is None:
                raise _BlockError("view.blocks is required")
            _check_blocks(blocks, MAX_VIEW_BLOCKS)
            if (
                kind == "modal"
                and view.get("submit") is None
                and any(b.get("type") == "input" for b in blocks)
            ):
                raise _BlockError("view.submit is required when blocks has input blocks")
        except _BlockError as exc:
            raise SlackError("invalid_arguments", detail=str(exc)) from None
        if len(str(view.get("private_metadata", ""))) > 3000:
            raise SlackError(
                "invalid_arguments",
                detail="view.private_metadata must be less than 3001 characters",
            )
        if len(str(view.get("callback_id", ""))) > 255:
            raise SlackError(
                "invalid_arguments", detail="view.callback_id must be less than 256 characters"
            )
        return copy.deepcopy(view)

    def _view_record(
        self, view: dict, *, root: str | None = None, previous: str | None = None
    ) -> dict:
        """A stored view as Slack returns it."""
        self._view_counter += 1
        view_id = f"V{self._view_counter:010d}"
        external_id = view.get("external_id") or ""
        if external_id and any(v.get("external_id") == external_id for v in self.views.values()):
            raise SlackError("duplicate_external_id")
        return {
            "id": view_id,
            "team_id": self.team_id,
            "type": view["type"],
            "title": view.get("title"),
            "submit": view.get("submit"),
            "close": view.get("close"),
            "blocks": view["blocks"],
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "external_id": external_id,
            "state": {"values": {}},
            "hash": self._view_hash(),
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "root_view_id": root or view_id,
            "previous_view_id": previous,
            "app_id": self.app_id,
            "bot_id": self.bot_id,
        }

    @staticmethod
    def _view_hash() -> str:
        """A fresh view hash in Slack's "seconds.hex" style."""
        return f"{int(time.time())}.{secrets.token_hex(4)}"

    def _views_open(self, params: dict[str, Any]) -> dict[str, Any]:
        """views.open: one modal per trigger."""
        trigger = self._take_trigger(params)
        view = self._check_view(params.get("view"), "modal")
        record = self._view_record(view)
        self._used_triggers.add(trigger)
        self.views[record["id"]] = record
        self._opened.append(record["id"])
        return {"view": copy.deepcopy(record)}

    def _views_push(self, params: dict[str, Any]) -> dict[str, Any]:
        """views.push: a modal on top of the open one."""
        trigger = self._take_trigger(params)
        view = self._check_view(params.get("view"), "modal")
        top = self.views[self._opened[-1]] if self._opened else None
        record = self._view_record(
            view, root=top["root_view_id"] if top else None, previous=top["id"] if top else None
        )
        self._used_triggers.add(trigger)
        self.views[record["id"]] = record
        return {"view": copy.deepcopy(record)}

    def _views_update(self, params: dict[str, Any]) -> dict[str, Any]:
        """views.update by view_id or external_id, guarded by hash."""
        view_id, external_id = _str(params, "view_id"), _str(params, "external_id")
        if not view_id and not external_id:
            raise SlackError("invalid_arguments", detail="view_id or external_id is required")
        current = (
            self.views.get(view_id)
            if view_id
            else next((v for v in self.views.values() if v.get("external_id") == external_id), None)
        )
        if current is None:
            raise SlackError("not_found")
        given_hash = _str(params, "hash")
        if given_hash and given_hash != current["hash"]:
            raise SlackError("hash_conflict")
        view = self._check_view(params.get("view"), current["type"])
        for key in ("title", "submit", "close", "blocks"):
            current[key] = view.get(key)
        for key, default in (("private_metadata", ""), ("callback_id", "")):
            current[key] = view.get(key, default)
        if view.get("external_id"):
            current["external_id"] = view["external_id"]
        current["hash"] = self._view_hash()
        return {"view": copy.deepcopy(current)}

    # -- files (upload v2) -------------------------------------------------------------------
    def _files_get_upload_url_external(self, params: dict[str, Any]) -> dict[str, Any]:
        """files.getUploadURLExternal: a URL to POST the file's bytes to, and its file id."""
        filename = _str(params, "filename")
        try:
            length = int(params.get("length") or 0)
        except (TypeError, ValueError):
            length = 0
        if not filename or length <= 0:
            raise SlackError("invalid_arguments")
        alt = _str(params, "alt_txt")
        if len(alt) > 1000:
            raise SlackError("invalid_arguments", detail="alt_txt must be at most 1000 characters")
        file_id = f"F{len(self._uploads) + 1:010d}"
        self._uploads[file_id] = {
            "id": file_id,
            "name": filename,
            "length": length,
            "alt_txt": alt,
            "data": None,
            "completed": False,
            "channel": None,
            "title": None,
        }
        return {"upload_url": f"{self._root()}/upload/{file_id}", "file_id": file_id}

    def _receive_upload(self, file_id: str, data: bytes) -> tuple[int, str]:
        """The POST of a file's bytes to its upload URL (as files.slack.com answers it)."""
        with self._lock:
            upload = self._uploads.get(file_id)
            if upload is None or upload["completed"]:
                return 404, "Not Found"
            if len(data) != upload["length"]:
                return 400, f"length mismatch: expected {upload['length']}, got {len(data)}"
            upload["data"] = data
        return 200, f"OK - {len(data)}"

    def _files_complete_upload_external(self, params: dict[str, Any]) -> dict[str, Any]:
        """files.completeUploadExternal: share uploaded files in a channel (a message with them)."""
        raw = params.get("files")
        try:
            files = json.loads(raw) if isinstance(raw, str) else raw
        except json.JSONDecodeError:
            raise SlackError("invalid_arguments", detail="files must be a JSON array") from None
        if not isinstance(files, list) or not files:
            raise SlackError("invalid_arguments", detail="files must be a non-empty array")
        uploads = []
        for item in files:
            upload = self._uploads.get(str((item or {}).get("id")))
            if upload is None or upload["data"] is None or upload["completed"]:
                raise SlackError("file_not_found")
            uploads.append((upload, item))
        channel = _str(params, "channel_id")
        record = self._post_target(channel) if channel else None
        shared = []
        for upload, item in uploads:
            upload.update(
                completed=True,
                title=item.get("title") or upload["name"],
                channel=record["id"] if record else None,
            )
            shared.append({k: upload[k] for k in ("id", "name", "title", "alt_txt")})
        if record is not None:
            message = {
                "type": "message",
                "user": self.bot_user_id,
                "bot_id": self.bot_id,
                "text": _str(params, "initial_comment"),
                "files": shared,
                "upload": True,
                "team": self.team_id,
            }
            self._store(record["id"], message)
        return {"files": shared}

    def _views_publish(self, params: dict[str, Any]) -> dict[str, Any]:
        """views.publish: a user's App Home, stored as "home:<user>"."""
        user = _str(params, "user_id")
        known = self._users.get(user)
        if not user or known is None or known["deleted"]:
            raise SlackError("user_not_found" if user else "invalid_arguments")
        view = self._check_view(params.get("view"), "home")
        key = f"home:{user}"
        current = self.views.get(key)
        given_hash = _str(params, "hash")
        if current is not None and given_hash and given_hash != current["hash"]:
            raise SlackError("hash_conflict")
        record = self._view_record(view)
        if current is not None:
            record["id"] = record["root_view_id"] = current["id"]
        self.views[key] = record
        return {"view": copy.deepcopy(record)}
