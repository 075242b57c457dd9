"""Hostile input, through the real HTTP stack and the Socket Mode handler.

For every request someone could forge or mangle: a clear answer (a 4xx, or an ephemeral
answer / field error), no crash, no state change where none is due, one log line at most and
never a traceback or a secret, and what is stored reads back byte for byte.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.client
import json
import logging
import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from slack_sdk.socket_mode.client import BaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from sqlalchemy import func, select

from bot import payloads
from bot.app import create_app
from bot.command_parser import USAGE, UsageError, parse
from bot.http import MAX_BODY
from bot.runtime import build_swarm
from bot.server import CheckedSocketModeHandler
from storage.models import Base, Case
from tests.conftest import BOT_TOKEN, SIGNING_SECRET, TEST_CONFIG, RunningBot, settings_for
from tests.fakeslack import FakeSlack
from tests.scenario import GOOD, open_modal
from tests.slackdriver import PAYLOADS, Reply, SlackDriver, payload
from workflows.config import SwarmConfig, parse_config

SECRETS = (SIGNING_SECRET, BOT_TOKEN)


# -- sending raw bytes -------------------------------------------------------------------------
def sign(raw: bytes, timestamp: str, secret: str = SIGNING_SECRET) -> str:
    base = b"v0:" + timestamp.encode("latin-1") + b":" + raw
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def post(
    bot: RunningBot,
    raw: bytes,
    content_type: str | None = "application/json",
    *,
    signed: bool = True,
    timestamp: str | None = None,
    signature: str | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    """POST exact bytes to /slack/events (signed unless told otherwise) and wait for the work."""
    url = urlsplit(bot.url)
    timestamp = timestamp if timestamp is not None else str(int(time.time()))
    all_headers = dict(headers or {})
    if content_type is not None:
        all_headers["Content-Type"] = content_type
    if signed:
        all_headers["X-Slack-Request-Timestamp"] = timestamp
        all_headers["X-Slack-Signature"] = signature or sign(raw, timestamp)
    all_headers.setdefault("Content-Length", str(len(raw)))
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    started = time.perf_counter()
    try:
        connection.putrequest("POST", url.path, skip_accept_encoding=True)
        for name, value in all_headers.items():
            connection.putheader(name, value.encode("latin-1"))
        connection.endheaders(raw)
        response = connection.getresponse()
        reply = Reply(
            response.status,
            response.read().decode("utf-8", "replace"),
            time.perf_counter() - started,
        )
    finally:
        connection.close()
    bot.driver.executor.wait_idle()
    return reply


def form(fields: dict[str, str]) -> bytes:
    return urlencode(fields).encode()


def interaction(body: Any) -> bytes:
    return f"payload={quote(json.dumps(body))}".encode()


def command_fields(text: str, **overrides: str) -> dict[str, str]:
    body = payload("slash_command.json")
    body.update(
        team_id="T111",
        channel_id="C0API0001",
        user_id="U0AGENT01",
        command="/swarm",
        text=text,
        response_url="http://127.0.0.1:9/respond",
        trigger_id="1.trigger",
    )
    body.update(overrides)
    return {k: str(v) for k, v in body.items()}


# -- what must not change ----------------------------------------------------------------------
def state(bot: RunningBot, fake: FakeSlack) -> dict[str, int]:
    """Rows in every table, and the Web API calls the app made."""
    counts = {"slack calls": len(fake.calls)}
    with bot.uow() as uow:
        for table in Base.metadata.sorted_tables:
            counts[table.name] = uow.session.scalar(select(func.count()).select_from(table))
    return counts


def assert_quiet_log(caplog: pytest.LogCaptureFixture, *, at_most: int = 1) -> None:
    """No traceback, no error, no secret; at most `at_most` warning lines."""
    records = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not [r for r in records if r.exc_info or r.levelno >= logging.ERROR], [
        r.getMessage() for r in records
    ]
    assert len(records) <= at_most, [r.getMessage() for r in records]
    for secret in SECRETS:
        assert secret not in caplog.text


@pytest.fixture
def log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.INFO)
    yield caplog


# -- forged, replayed, stale -------------------------------------------------------------------
def _forgeries() -> list[tuple[str, dict[str, Any]]]:
    now = str(int(time.time()))
    other = sign(b"text=help", now)
    return [
        ("no signature", {"signed": False}),
        ("zeros", {"signature": "v0=" + "0" * 64}),
        ("signature of another body", {"signature": other}),
        ("another secret", {"signature": sign(form(command_fields("new")), now, "guess")}),
        ("upper-case hex", {"signature": "V0=" + "A" * 64}),
        ("not ASCII", {"signature": "v0=" + "é" * 64}),
        ("no v0 prefix", {"signature": "0" * 67}),
        ("empty", {"signature": " "}),
        ("timestamp not a number", {"timestamp": "soon"}),
        ("timestamp of other digits", {"timestamp": "¹²³"}),
        ("negative timestamp", {"timestamp": "-1"}),
        ("huge timestamp", {"timestamp": "9" * 40}),
        ("stale by ten minutes", {"timestamp": str(int(time.time()) - 600)}),
        ("ten minutes ahead", {"timestamp": str(int(time.time()) + 600)}),
    ]


def test_forged_and_stale_signatures_get_401_and_change_nothing(
    bot: RunningBot, fake: FakeSlack, log: pytest.LogCaptureFixture
) -> None:
    before = state(bot, fake)
    answers = {}
    for name, options in _forgeries():
        raw = form(command_fields("new 27343"))
        answers[name] = post(bot, raw, "application/x-www-form-urlencoded", **options).status
    assert answers == {name: 401 for name in answers}
    assert state(bot, fake) == before
    assert_quiet_log(log, at_most=len(answers))


def test_a_request_replayed_after_five_minutes_is_refused(
    bot: RunningBot, fake: FakeSlack, log: pytest.LogCaptureFixture
) -> None:
    raw = form(command_fields("new 27343"))
    old = str(int(time.time()) - 301)
    before = state(bot, fake)
    assert post(bot, raw, "application/x-www-form-urlencoded", timestamp=old).status == 401
    assert state(bot, fake) == before
    assert_quiet_log(log)


def test_a_submission_replayed_inside_the_window_files_one_case(
    bot: RunningBot, fake: FakeSlack
) -> None:
    view = open_modal(bot, fake)
    timestamp = int(time.time())
    # The same bytes with the same timestamp, so the same signature: an exact replay.
    first = bot.driver.submit(view, GOOD, timestamp=timestamp)
    again = bot.driver.submit(view, GOOD, timestamp=timestamp)
    assert first.status == again.status == 200
    with bot.uow() as uow:
        assert uow.session.scalar(select(func.count(Case.id))) == 1
    assert len([c for c in fake.calls_to("chat.postMessage") if c.get("blocks")]) == 1


# -- sizes, encodings, content types -----------------------------------------------------------
def test_a_body_over_the_size_limit_gets_413_unread(
    bot: RunningBot, fake: FakeSlack, log: pytest.LogCaptureFixture
) -> None:
    before = state(bot, fake)
    reply = post(bot, b"x" * 100, headers={"Content-Length": str(MAX_BODY + 1)})
    assert reply.status == 413
    assert state(bot, fake) == before
    assert_quiet_log(log)


def test_a_bad_content_length_gets_400(
    bot: RunningBot, fake: FakeSlack, log: pytest.LogCaptureFixture
) -> None:
    before = state(bot, fake)
    lengths = ["-5", "12abc", "1e3", "+5", "0x10"]
    answers = {n: post(bot, b"{}", headers={"Content-Length": n}).status for n in lengths}
    assert answers == dict.fromkeys(lengths, 400)
    assert state(bot, fake) == before
    assert_quiet_log(log, at_most=len(lengths))


NOT_UTF8 = b"payload=\xff\xfe\xc3\x28{\x80}"


def test_non_utf8_bytes_with_a_fresh_timestamp_and_any_signature_get_401(
    bot: RunningBot, fake: FakeSlack, log: pytest.LogCaptureFixture
) -> None:
    before = state(bot, fake)
    reply = post(bot, NOT_UTF8, "application/x-www-form-urlencoded", signature="v0=" + "1" * 64)
    assert reply.status == 401
    assert state(bot, fake) == before
    assert_quiet_log(log)


def test_signed_non_utf8_bytes_get_400(
    bot: RunningBot, fake: FakeSlack, log: pytest.LogCaptureFixture
) -> None:
    before = state(bot, fake)
    for raw, content_type in (
        (NOT_UTF8, "application/x-www-form-urlencoded"),
        (
            b'{"type": "event_callback", "event": {"type": "message", "text": "\xff"}}',
            "application/json",
        ),
        ('{"x": 1}'.encode("utf-16"), "application/json"),
    ):
        assert post(bot, raw, content_type).status == 400
    assert state(bot, fake) == before
    assert_quiet_log(log, at_most=3)


OTHER_CONTENT_TYPES = [
    None,
    "",
    "text/plain",
    "multipart/form-data; boundary=x",
    "application/xml",
    "text/html",
    "application/octet-stream",
    "application/json-patch+json",
    "*/*",
    "é",
]


def test_content_types_slack_never_sends_get_415(
    bot: RunningBot, fake: FakeSlack, log: pytest.LogCaptureFixture
) -> None:
    before = state(bot, fake)
    raw = form(command_fields("new 27343"))
    answers = {str(t): post(bot, raw, t).status for t in OTHER_CONTENT_TYPES}
    assert answers == dict.fromkeys(answers, 415)
    assert state(bot, fake) == before
    assert_quiet_log(log, at_most=len(answers))


def test_the_form_content_type_is_read_in_any_spelling(bot: RunningBot) -> None:
    for content_type in (
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded; charset=utf-8",
        "Application/X-WWW-Form-Urlencoded",
    ):
        reply = post(bot, form(command_fields("help")), content_type)
        assert reply.status == 200 and "/swarm" in reply.body, content_type


# -- malformed and unknown payloads, signed ----------------------------------------------------
def _event(event: Any, **extra: Any) -> bytes:
    return json.dumps(
        {"type": "event_callback", "team_id": "T111", "event": event, **extra}
    ).encode()


SHORTCUT = payload("shortcut_global.json") | {"callback_id": "file-swarm-case"}
MALFORMED: dict[str, tuple[bytes, str]] = {
    "event is a string": (_event("x"), "application/json"),
    "event is null": (_event(None), "application/json"),
    "event is a list": (_event([1]), "application/json"),
    "event without type": (_event({}), "application/json"),
    "no event": (json.dumps({"type": "event_callback"}).encode(), "application/json"),
    "message ts is a number": (
        _event({"type": "message", "channel": "C0API0001", "ts": 5}),
        "application/json",
    ),
    "message text is a list": (
        _event({"type": "message", "channel": "C0API0001", "ts": "1.2", "text": ["x"]}),
        "application/json",
    ),
    "edited message is a string": (
        _event(
            {
                "type": "message",
                "subtype": "message_changed",
                "channel": "C0API0001",
                "message": "x",
            }
        ),
        "application/json",
    ),
    "a JSON list": (b"[]", "application/json"),
    "a JSON string": (b'"str"', "application/json"),
    "a JSON number": (b"1", "application/json"),
    "JSON null": (b"null", "application/json"),
    "an empty object": (b"{}", "application/json"),
    "deeply nested": (b"[" * 100_000 + b"]" * 100_000, "application/json"),
    "nested inside payload=": (b"payload=" + b"%5B" * 50_000, "application/x-www-form-urlencoded"),
    "view without type": (
        interaction(
            {
                "type": "view_submission",
                "user": {"id": "U0AGENT01"},
                "view": {"id": "V1", "callback_id": "swarm-intake"},
            }
        ),
        "application/x-www-form-urlencoded",
    ),
    "view is a string": (
        interaction({"type": "view_submission", "user": {"id": "U0AGENT01"}, "view": "x"}),
        "application/x-www-form-urlencoded",
    ),
    "view state values are strings": (
        interaction(
            {
                "type": "view_submission",
                "user": {"id": "U0AGENT01"},
                "view": {
                    "id": "V1",
                    "type": "modal",
                    "callback_id": "swarm-intake",
                    "state": {"values": {"case_number": "27343"}},
                },
            }
        ),
        "application/x-www-form-urlencoded",
    ),
    "no view": (
        interaction({"type": "view_submission", "user": {"id": "U0AGENT01"}}),
        "application/x-www-form-urlencoded",
    ),
    "no user": (
        interaction({"type": "shortcut", "callback_id": "file-swarm-case", "trigger_id": "1.t"}),
        "application/x-www-form-urlencoded",
    ),
    "user is a string": (
        interaction(SHORTCUT | {"user": "U0AGENT01"}),
        "application/x-www-form-urlencoded",
    ),
    "shortcut without trigger": (
        interaction({k: v for k, v in SHORTCUT.items() if k != "trigger_id"}),
        "application/x-www-form-urlencoded",
    ),
    "message shortcut without trigger": (
        interaction(
            {
                "type": "message_action",
                "callback_id": "swarm-this-message",
                "user": {"id": "U0AGENT01"},
            }
        ),
        "application/x-www-form-urlencoded",
    ),
    "callback id is a number": (
        interaction(SHORTCUT | {"callback_id": 5}),
        "application/x-www-form-urlencoded",
    ),
    "actions missing": (
        interaction({"type": "block_actions", "user": {"id": "U0AGENT01"}}),
        "application/x-www-form-urlencoded",
    ),
    "actions is a string": (
        interaction({"type": "block_actions", "user": {"id": "U0AGENT01"}, "actions": "x"}),
        "application/x-www-form-urlencoded",
    ),
    "an action is a number": (
        interaction({"type": "block_actions", "user": {"id": "U0AGENT01"}, "actions": [1]}),
        "application/x-www-form-urlencoded",
    ),
    "payload is a list": (interaction([1]), "application/x-www-form-urlencoded"),
    "payload is a string": (interaction("x"), "application/x-www-form-urlencoded"),
    "payload is not JSON": (b"payload=%7Bnot-json", "application/x-www-form-urlencoded"),
    "truncated payload": (interaction(SHORTCUT)[:-20], "application/x-www-form-urlencoded"),
    "command only": (b"command=/swarm", "application/x-www-form-urlencoded"),
    "command without trigger": (
        form({k: v for k, v in command_fields("new").items() if k != "trigger_id"}),
        "application/x-www-form-urlencoded",
    ),
    "command without user": (
        form({k: v for k, v in command_fields("status 27343").items() if k != "user_id"}),
        "application/x-www-form-urlencoded",
    ),
    "a form that is not a command": (b"a=b", "application/x-www-form-urlencoded"),
}
UNKNOWN: dict[str, tuple[bytes, str]] = {
    "type nope": (json.dumps({"type": "nope"}).encode(), "application/json"),
    "type is a number": (interaction({"type": 5}), "application/x-www-form-urlencoded"),
    "type is an object": (json.dumps({"type": {"a": 1}}).encode(), "application/json"),
    "no type": (json.dumps({"x": 1}).encode(), "application/json"),
    "type with control characters": (
        json.dumps({"type": "\u202eevil\x00\n<!channel>"}).encode(),
        "application/json",
    ),
}


def test_signed_but_malformed_payloads_get_400_and_change_nothing(
    bot: RunningBot, fake: FakeSlack, log: pytest.LogCaptureFixture
) -> None:
    before = state(bot, fake)
    answers = {name: post(bot, *MALFORMED[name]).status for name in MALFORMED}
    assert answers == dict.fromkeys(MALFORMED, 400)
    assert state(bot, fake) == before
    assert_quiet_log(log, at_most=len(MALFORMED))


def test_unknown_payload_types_get_400(
    bot: RunningBot, fake: FakeSlack, log: pytest.LogCaptureFixture
) -> None:
    before = state(bot, fake)
    for name, (raw, content_type) in UNKNOWN.items():
        reply = post(bot, raw, content_type)
        assert reply.status == 400 and "unknown payload type" in reply.body, name
        assert reply.body.isascii() and "<!channel>" not in reply.body, name
    assert state(bot, fake) == before
    assert_quiet_log(log, at_most=len(UNKNOWN))
    assert "<!channel>" not in log.text and "\u202e" not in log.text


def test_truncated_json_at_every_cut_gets_400(bot: RunningBot, fake: FakeSlack) -> None:
    whole = json.dumps(payload("event_message.json")).encode()
    before = state(bot, fake)
    for cut in range(1, len(whole), max(1, len(whole) // 25)):
        reply = post(bot, whole[:cut], "application/json")
        assert reply.status == 400, (cut, reply)
    assert state(bot, fake) == before


def test_every_real_slack_payload_passes_the_shape_check() -> None:
    """The check refuses what Bolt cannot read, never what Slack really sends."""
    for path in sorted(PAYLOADS.glob("*.json")):
        body = json.loads(path.read_text())
        if path.name.startswith("socket_mode_envelope"):
            body = body["payload"]
        payloads.check(body)


# -- Socket Mode -------------------------------------------------------------------------------
class RecordingSocketClient(BaseSocketModeClient):
    """The Socket Mode client's sending side, recording acknowledgements instead of a socket."""

    def __init__(self) -> None:
        self.logger = logging.getLogger("tests.socket")
        self.sent: list[dict[str, Any]] = []

    def send_message(self, message: str) -> None:
        self.sent.append(json.loads(message))


@pytest.fixture
def socket_mode(
    fake: FakeSlack, db_url: str, config: SwarmConfig
) -> Iterator[tuple[CheckedSocketModeHandler, Any]]:
    swarm = build_swarm(settings_for(fake, db_url, slack_app_token="xapp-1-test"), config=config)
    app = create_app(swarm)
    handler = CheckedSocketModeHandler(app, "xapp-1-test")
    try:
        yield handler, swarm
    finally:
        handler.client.close()


def _socket_payload(raw: bytes, content_type: str) -> Any:
    """What the same bytes would be as a Socket Mode envelope's payload."""
    from slack_bolt.request.internals import parse_body

    try:
        return parse_body(raw.decode(), content_type)
    except (ValueError, RecursionError):
        return raw.decode(errors="replace")


# Envelopes whose payload is neither an object nor a string cannot be built: slack_sdk's
# SocketModeRequest refuses them before any handler runs.
NOT_AN_ENVELOPE = {"a JSON list", "a JSON number", "JSON null", "payload is a list"}


def test_socket_mode_refuses_the_same_payloads_without_a_traceback(
    socket_mode: tuple[CheckedSocketModeHandler, Any],
    fake: FakeSlack,
    log: pytest.LogCaptureFixture,
) -> None:
    handler, swarm = socket_mode
    calls = len(fake.calls)
    names = sorted(set(MALFORMED) - NOT_AN_ENVELOPE) + list(UNKNOWN)
    for index, name in enumerate(names):
        raw, content_type = {**MALFORMED, **UNKNOWN}[name]
        kind = "events_api" if content_type == "application/json" else "interactive"
        client = RecordingSocketClient()
        envelope = f"e-{index}"
        payload_ = _socket_payload(raw, content_type)
        handler.handle(client, SocketModeRequest(type=kind, envelope_id=envelope, payload=payload_))
        # Acknowledged, so Slack does not redeliver it, and nothing else.
        assert client.sent == [{"envelope_id": envelope}], name
    assert len(fake.calls) == calls
    with swarm.uow() as uow:
        assert uow.session.scalar(select(func.count(Case.id))) == 0
    assert_quiet_log(log, at_most=len(names))


def test_socket_mode_still_answers_a_good_command(
    socket_mode: tuple[CheckedSocketModeHandler, Any], log: pytest.LogCaptureFixture
) -> None:
    handler, _swarm = socket_mode
    client = RecordingSocketClient()
    request = SocketModeRequest(
        type="slash_commands", envelope_id="e-2", payload=command_fields("help")
    )
    handler.handle(client, request)
    assert client.sent and client.sent[0]["envelope_id"] == "e-2"
    assert "/swarm" in json.dumps(client.sent[0].get("payload"))
    assert_quiet_log(log, at_most=0)


def test_socket_mode_refuses_unknown_envelope_types(
    socket_mode: tuple[CheckedSocketModeHandler, Any], log: pytest.LogCaptureFixture
) -> None:
    handler, _swarm = socket_mode
    client = RecordingSocketClient()
    handler.handle(client, SocketModeRequest(type="hello", envelope_id="e-3", payload={"x": 1}))
    assert client.sent == [{"envelope_id": "e-3"}]
    assert_quiet_log(log)


# -- case numbers --------------------------------------------------------------------------------
def test_an_unanchored_pattern_still_matches_the_whole_case_number(
    bot: RunningBot, fake: FakeSlack
) -> None:
    """`'\\d{5}'` once let `12345><!channel>` through intake, and the card pinged the channel."""
    bot.swarm.config = parse_config(
        TEST_CONFIG.replace("number_pattern: '^\\d{3,10}$'", "number_pattern: '\\d{5}'")
    )
    assert bot.swarm.config.case.number_pattern == "\\d{5}"
    for number in ("12345><!channel>", "<!channel>12345", "123456", "12345 6", "x12345"):
        view = open_modal(bot, fake)
        reply = bot.driver.submit(view, {**GOOD, "case_number": number})
        assert reply.status == 200 and "case_number" in reply.json()["errors"], number
    with bot.uow() as uow:
        assert uow.session.scalar(select(func.count(Case.id))) == 0
    view = open_modal(bot, fake)
    assert bot.driver.submit(view, {**GOOD, "case_number": "12345"}).body == ""
    with bot.uow() as uow:
        assert uow.session.scalars(select(Case.case_number)).all() == ["12345"]


def test_case_links_url_encode_the_number() -> None:
    rules = parse_config(TEST_CONFIG).case
    assert rules.case_url("12345") == "https://support.example.com/cases/12345"
    assert (
        rules.case_url("1|<!channel>&a=b/c d")
        == "https://support.example.com/cases/1%7C%3C%21channel%3E%26a%3Db%2Fc%20d"
    )


# -- what users type: Unicode, length, mrkdwn and mention injection ----------------------------
RTL = "\u202e\u200f\u061c"  # right-to-left override, right-to-left mark, Arabic letter mark
ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff"
EMOJI = "🐝👩‍💻🇪🇺✅"
FOUR_BYTE = "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𠜎𠜱"
INJECTION = (
    "<!channel> <!here> <!everyone> <@U0EVIL01> <#C0EVIL01> <!subteam^S0EVIL01> "
    "<https://evil.example/|click me> &lt;!channel&gt; *bold* `code`"
)
NASTY = f"{RTL}{ZERO_WIDTH}{EMOJI} {FOUR_BYTE} {INJECTION} مرحبا {ZERO_WIDTH}"
RAW = (
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "<@U0EVIL01>",
    "<#C0EVIL01>",
    "<!subteam",
    "<https://evil",
)
# Slack surfaces whose text is read as mrkdwn (plain_text objects and input values are not).
RENDERING = (
    "views.publish",
    "chat.postMessage",
    "chat.update",
    "chat.postEphemeral",
    "conversations.setTopic",
    "conversations.setPurpose",
    "views.open",
    "views.update",
    "views.push",
)
NOT_RENDERED = {
    "metadata",
    "private_metadata",
    "initial_value",
    "value",
    "action_id",
    "block_id",
    "callback_id",
    "placeholder",
    "initial_option",
    "options",
    "url",
}


def rendered(obj: Any) -> Iterator[str]:
    """Every string of a Slack payload that Slack renders as mrkdwn."""
    if isinstance(obj, str) and obj[:1] in "[{":
        with contextlib.suppress(ValueError):
            obj = json.loads(obj)
    if isinstance(obj, dict):
        if obj.get("type") == "plain_text":
            return
        for key, value in obj.items():
            if key not in NOT_RENDERED:
                yield from rendered(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from rendered(value)
    elif isinstance(obj, str):
        yield obj


def assert_nothing_pings(fake: FakeSlack, *replies: Reply) -> None:
    """No user-typed mention, channel ping or link reached anything Slack renders."""
    texts = [t for c in fake.calls if c.method in RENDERING for t in rendered(c.params)]
    texts += [t for r in fake.responses() for t in rendered(r["body"])]
    texts += [t for r in replies if r.body for t in rendered(r.json())]
    leaks = [t for t in texts if any(raw in t for raw in RAW)]
    assert not leaks, leaks


def test_every_intake_field_keeps_unicode_byte_for_byte_and_pings_nobody(
    bot: RunningBot, fake: FakeSlack, log: pytest.LogCaptureFixture
) -> None:
    values = {
        **GOOD,
        "summary": NASTY[:150],
        "details": (NASTY + "\n") * 12,
        "customer": NASTY,
    }
    view = open_modal(bot, fake)
    reply = bot.driver.submit(view, values)
    assert reply.status == 200 and reply.body == "", reply
    with bot.uow() as uow:
        case = uow.session.scalars(select(Case)).one()
        assert case.summary == values["summary"].strip()
        assert case.details == values["details"].strip()
        assert case.customer == values["customer"].strip()
    assert fake.errors == []  # the fake checks Block Kit limits: every card and note fit
    assert_nothing_pings(fake, reply)
    assert_quiet_log(log, at_most=0)


def test_over_long_unicode_fields_come_back_as_field_errors(
    bot: RunningBot, fake: FakeSlack
) -> None:
    before = state(bot, fake)
    view = open_modal(bot, fake)
    reply = bot.driver.submit(
        view, {**GOOD, "summary": FOUR_BYTE * 20, "details": EMOJI * 800, "customer": "𠜎" * 300}
    )
    errors = reply.json()["errors"]
    assert set(errors) == {"summary", "details", "customer"}
    after = state(bot, fake)
    assert after["cases"] == before["cases"] == 0


def test_forged_select_values_are_field_errors(bot: RunningBot, fake: FakeSlack) -> None:
    view = open_modal(bot, fake)
    forged = {**GOOD, "urgency": "<!channel>", "topic": "../../etc", "region": "<@U0EVIL01>"}
    reply = bot.driver.submit(view, forged)
    assert {"urgency", "topic"} <= set(reply.json()["errors"])
    assert_nothing_pings(fake, reply)
    with bot.uow() as uow:
        assert uow.session.scalar(select(func.count(Case.id))) == 0


def test_escalate_and_resolve_forms_escape_every_field(
    bot: RunningBot, fake: FakeSlack, log: pytest.LogCaptureFixture
) -> None:
    view = open_modal(bot, fake)
    assert bot.driver.submit(view, {**GOOD, "summary": NASTY[:150]}).body == ""
    with bot.uow() as uow:
        case = uow.session.scalars(select(Case)).one()
    bot.driver.click("case-escalate", str(case.id), user="U0LEAD001", message_ts=case.thread_ts)
    escalate_view = fake.opened_views()[-1]
    reply = bot.driver.submit(
        escalate_view, {"severity": "1", "reason": NASTY[:500]}, user="U0LEAD001"
    )
    assert reply.status == 200 and reply.body == ""
    bot.driver.click("case-resolve", str(case.id), user="U0LEAD001", message_ts=case.thread_ts)
    resolve_view = fake.opened_views()[-1]
    answer = {
        "resolution": NASTY,
        "root_cause": NASTY,
        "workaround": NASTY,
        "kb_link": "https://kb.example/<!channel>|x",
    }
    refused = bot.driver.submit(resolve_view, answer, user="U0LEAD001")
    assert "kb_link" in refused.json()["errors"]
    done = bot.driver.submit(resolve_view, {**answer, "kb_link": ""}, user="U0LEAD001")
    assert done.status == 200 and done.body == ""
    with bot.uow() as uow:
        case = uow.session.get(Case, case.id)
        assert case.resolution == NASTY.strip()
        assert case.root_cause == NASTY.strip()
        assert case.workaround == NASTY.strip()
    assert_nothing_pings(fake, reply, refused, done)
    assert_quiet_log(log, at_most=0)


COMMAND_ARGUMENTS = [
    "status <!channel>",
    f"status {NASTY}",
    "claim <!channel>",
    "assign 27343 <!channel>",
    "assign 27343 <@U0EVIL01|<!channel>>",
    "escalate <!here> sev1",
    "escalate 27343 <!channel>",
    "sev 27343 <@U0EVIL01>",
    "urgency 27343 <!channel>",
    "urgency <!channel> high",
    "reopen <#C0EVIL01>",
    f"search {NASTY}",
    "search topic:<!channel> status:<!here> sev:<@U0EVIL01> after:<!x> before:2026-13-99",
    "route <!channel> <!here>",
    "lead <!channel>",
    "expert <@U0EVIL01> <!channel>",
    f"<!channel> {NASTY}",
    f"{NASTY}",
    "new <!channel>",
    "help <!channel>",
    "stats <!channel>",
    "stats 9999d <@U0EVIL01>",
    f"stats all {NASTY}",
    "x" * 4000,
]


def test_command_arguments_with_injection_get_clear_answers_and_ping_nobody(
    bot: RunningBot, fake: FakeSlack, log: pytest.LogCaptureFixture
) -> None:
    view = open_modal(bot, fake)
    assert bot.driver.submit(view, GOOD).body == ""
    before = state(bot, fake)
    replies = []
    for text in COMMAND_ARGUMENTS:
        for user in ("U0AGENT02", "U0LEAD001"):
            reply = bot.driver.command(text, user=user)
            assert reply.status == 200, text
            replies.append(reply)
    after = state(bot, fake)
    # Nothing about the case changed (the resolution of no case, no new role or route).
    for table in ("cases", "case_events", "participants", "topic_routes", "topic_roles"):
        assert after[table] == before[table], table
    assert_nothing_pings(fake, *replies)
    assert_quiet_log(log, at_most=0)


def test_a_resolution_typed_on_the_command_line_is_stored_byte_for_byte_and_escaped(
    bot: RunningBot, fake: FakeSlack
) -> None:
    view = open_modal(bot, fake)
    assert bot.driver.submit(view, GOOD).body == ""
    reply = bot.driver.command(f"resolve 27343 {NASTY}", user="U0AGENT01")
    assert reply.status == 200
    with bot.uow() as uow:
        case = uow.session.scalars(select(Case)).one()
        assert case.resolution == NASTY.strip()
    assert_nothing_pings(fake, reply)


def test_thread_messages_are_stored_byte_for_byte(bot: RunningBot, fake: FakeSlack) -> None:
    from storage.models import Message
    from tests.scenario import reply_event

    view = open_modal(bot, fake)
    assert bot.driver.submit(view, GOOD).body == ""
    with bot.uow() as uow:
        case = uow.session.scalars(select(Case)).one()
    texts = [NASTY, "\n".join([NASTY] * 50), f"  {EMOJI}  ", FOUR_BYTE * 500]
    for n, text in enumerate(texts):
        event = reply_event(case, text, ts=f"1800000001.{n:06d}")
        assert bot.driver.event(event).status == 200
    with bot.uow() as uow:
        stored = uow.session.scalars(
            select(Message.text).where(Message.case_id == case.id).order_by(Message.ts)
        ).all()
    assert [t for t in stored if t in texts] == texts
    assert_nothing_pings(fake)


CHANNEL_BREAKERS = ["ÄÖÜ-١٢٣-𝟙𝟚𝟛", "../../#general", "\u202eevil\u200b", "🐝🐝🐝", "-", "#", "__"]


def test_case_numbers_that_try_to_break_channel_names_still_escalate(
    bot: RunningBot, fake: FakeSlack
) -> None:
    bot.swarm.config = parse_config(
        TEST_CONFIG.replace("number_pattern: '^\\d{3,10}$'", "number_pattern: '^\\S{1,40}$'")
    )
    for number in CHANNEL_BREAKERS:
        view = open_modal(bot, fake)
        assert bot.driver.submit(view, {**GOOD, "case_number": number}).body == "", number
        with bot.uow() as uow:
            case = uow.cases.by_number(team_id="T111", case_number=number)
            assert case is not None, number  # stored byte for byte
        created = len(fake.calls_to("conversations.create"))
        reply = bot.driver.command(f"escalate {number}", user="U0LEAD001")
        assert reply.status == 200
        assert len(fake.calls_to("conversations.create")) == created + 1, number
        name = fake.calls_to("conversations.create")[-1]["name"]
        assert re.fullmatch(r"help-api-sev[1-4]-[a-z0-9_-]{1,60}", name), (number, name)
    assert_nothing_pings(fake)


CONTROLS = "a\x00b\x07c\x1bd\x7f"


def test_control_characters_in_typed_fields_are_field_errors_on_both_databases(
    bot: RunningBot, fake: FakeSlack, log: pytest.LogCaptureFixture
) -> None:
    """PostgreSQL cannot store NUL: it once failed the submission with a traceback."""
    view = open_modal(bot, fake)
    typed = {"summary": CONTROLS, "details": CONTROLS, "customer": CONTROLS}
    reply = bot.driver.submit(view, {**GOOD, **typed})
    assert set(reply.json()["errors"]) == set(typed)
    assert bot.driver.submit(view, GOOD).body == ""
    with bot.uow() as uow:
        case = uow.session.scalars(select(Case)).one()
    bot.driver.click("case-resolve", str(case.id), user="U0AGENT01", message_ts=case.thread_ts)
    resolve_view = fake.opened_views()[-1]
    refused = bot.driver.submit(resolve_view, {"resolution": CONTROLS}, user="U0AGENT01")
    assert "resolution" in refused.json()["errors"]
    assert bot.driver.command(f"resolve 27343 fixed{CONTROLS}", user="U0AGENT01").status == 200
    bot.driver.click("case-escalate", str(case.id), user="U0LEAD001", message_ts=case.thread_ts)
    assert_quiet_log(log, at_most=0)


def test_a_thread_message_with_nul_is_kept_with_a_replacement_character(
    bot: RunningBot, fake: FakeSlack
) -> None:
    from storage.models import Message
    from tests.scenario import reply_event

    view = open_modal(bot, fake)
    assert bot.driver.submit(view, GOOD).body == ""
    with bot.uow() as uow:
        case = uow.session.scalars(select(Case)).one()
    event = reply_event(case, "before\x00after \x07bell")
    event["files"] = [{"name": "a\x00.txt", "title": "t\x00"}]
    assert bot.driver.event(event).status == 200
    with bot.uow() as uow:
        stored = uow.session.scalars(select(Message).where(Message.case_id == case.id)).one()
        assert stored.text == "before\ufffdafter \x07bell"


# -- properties (pure functions, fast) ---------------------------------------------------------
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
KEYS = st.sampled_from(["type", "event", "view", "user", "actions", "command", "trigger_id", "id"])
SHAPED = st.dictionaries(KEYS, JSON | st.sampled_from(list(payloads.SHAPES)), max_size=6)


@settings(max_examples=200, deadline=None)
@given(st.one_of(JSON, SHAPED))
def test_the_shape_check_only_ever_says_malformed(body: Any) -> None:
    try:
        payloads.check(body)
    except payloads.Malformed as exc:
        assert str(exc).isascii() and "<" not in str(exc)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_the_command_parser_only_ever_says_usage_and_never_echoes_markup(text: str) -> None:
    try:
        parse(text)
    except UsageError as exc:
        message = str(exc)
        for usage in USAGE.values():  # the bot's own usage lines show <case> as it is
            message = message.replace(usage, "")
        assert "<" not in message and ">" not in message


def test_a_case_number_full_of_markup_is_escaped_and_url_encoded_wherever_it_shows(
    bot: RunningBot, fake: FakeSlack, log: pytest.LogCaptureFixture
) -> None:
    """A pattern that allows anything (the operator's choice) still pings nobody."""
    bot.swarm.config = parse_config(
        TEST_CONFIG.replace("number_pattern: '^\\d{3,10}$'", "number_pattern: '^\\S{1,40}$'")
    )
    number = "1><!channel>|<@U0EVIL01>"
    view = open_modal(bot, fake)
    assert bot.driver.submit(view, {**GOOD, "case_number": number}).body == ""
    card = json.dumps(cards_in(fake))
    assert "cases/1%3E%3C%21channel%3E%7C%3C%40U0EVIL01%3E|1&gt;&lt;!channel&gt;" in card
    replies = [
        bot.driver.command(f"{text} {number}", user="U0LEAD001")
        for text in ("status", "claim", "urgency", "escalate", "sev")
    ]
    replies.append(bot.driver.command(f"resolve {number} fixed", user="U0LEAD001"))
    replies.append(bot.driver.command(f"reopen {number}", user="U0LEAD001"))
    replies.append(bot.driver.command(f"resolve {number} fixed again", user="U0LEAD001"))
    replies.append(bot.driver.command(f"resolve {number} twice", user="U0LEAD001"))
    with bot.uow() as uow:
        assert uow.session.scalars(select(Case.case_number)).one() == number
    assert_nothing_pings(fake, *replies)
    assert_quiet_log(log, at_most=0)


def cards_in(fake: FakeSlack) -> list[Any]:
    return [c.params for c in fake.calls if c.method in ("chat.postMessage", "chat.update")]


def test_app_home_shows_typed_text_escaped(bot: RunningBot, fake: FakeSlack) -> None:
    view = open_modal(bot, fake)
    values = {**GOOD, "summary": NASTY[:150], "customer": NASTY}
    assert bot.driver.submit(view, values).body == ""
    for user in ("U0LEAD001", "U0AGENT01"):
        event = {
            "type": "app_home_opened",
            "user": user,
            "channel": f"D{user}",
            "tab": "home",
            "event_ts": f"{time.time():.6f}",
        }
        assert bot.driver.event(event).status == 200
    assert len(fake.calls_to("views.publish")) >= 2
    assert_nothing_pings(fake)


def wait_until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_socket_mode_files_unicode_and_injection_byte_for_byte(
    socket_mode: tuple[CheckedSocketModeHandler, Any], fake: FakeSlack
) -> None:
    """The same modal, submitted over Socket Mode: stored as typed, rendered escaped."""
    handler, swarm = socket_mode
    client = RecordingSocketClient()
    shortcut = payload("shortcut_global.json") | {"callback_id": "file-swarm-case"}
    shortcut["team"]["id"] = "T111"
    shortcut["user"].update(id="U0AGENT01", team_id="T111")
    opened = SocketModeRequest(type="interactive", envelope_id="e-1", payload=shortcut)
    handler.handle(client, opened)
    wait_until(fake.opened_views)
    values = {**GOOD, "summary": NASTY[:150], "details": NASTY * 5, "customer": NASTY}
    driver = SlackDriver("http://127.0.0.1:9/unused", SIGNING_SECRET, fake.respond_url, None)
    body = driver.submission(fake.opened_views()[-1], values)
    handler.handle(client, SocketModeRequest(type="interactive", envelope_id="e-2", payload=body))
    wait_until(
        lambda: any(c.params.get("blocks") for c in fake.calls if c.method == "chat.postMessage")
    )
    with swarm.uow() as uow:
        case = uow.session.scalars(select(Case)).one()
        assert (case.summary, case.details, case.customer) == (
            values["summary"].strip(),
            values["details"].strip(),
            values["customer"].strip(),
        )
    assert [m["envelope_id"] for m in client.sent] == ["e-1", "e-2"]
    assert_nothing_pings(fake)
