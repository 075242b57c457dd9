"""Drives the app the way Slack does: signed HTTP requests shaped like Slack's payloads.

Payload shapes come from tests/payloads/ (Slack's own Bolt test fixtures, see SOURCES.md).
"""

from __future__ import annotations

import copy
import json
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.error import HTTPError
from urllib.parse import quote, urlencode
from urllib.request import Request, urlopen

from slack_sdk.signature import SignatureVerifier

PAYLOADS = Path(__file__).parent / "payloads"


def payload(name: str) -> dict[str, Any]:
    """A fresh copy of one of Slack's example payloads."""
    return json.loads((PAYLOADS / name).read_text())


class TrackingExecutor(ThreadPoolExecutor):
    """Bolt's listener executor, counting work in flight so tests can wait for it."""

    def __init__(self) -> None:
        super().__init__(max_workers=16, thread_name_prefix="listener")
        self._lock = threading.Lock()
        self._pending = 0
        self.errors: list[BaseException] = []

    def submit(self, fn, /, *args, **kwargs) -> Future:  # type: ignore[no-untyped-def]
        with self._lock:
            self._pending += 1
        future = super().submit(fn, *args, **kwargs)
        future.add_done_callback(self._done)
        return future

    def _done(self, future: Future) -> None:
        if future.exception() is not None:
            self.errors.append(future.exception())  # type: ignore[arg-type]
        with self._lock:
            self._pending -= 1

    def wait_idle(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self._pending == 0:
                    return
            time.sleep(0.005)
        raise TimeoutError("listeners still running")


@dataclass
class Reply:
    status: int
    body: str
    elapsed: float

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class SlackDriver:
    """Sends signed requests to the app's /slack/events and waits for its background work."""

    def __init__(
        self,
        events_url: str,
        signing_secret: str,
        respond_base: str,
        executor: TrackingExecutor,
        team_id: str = "T111",
    ) -> None:
        self.events_url = events_url
        self.verifier = SignatureVerifier(signing_secret)
        self.respond_base = respond_base
        self.executor = executor
        self.team_id = team_id

    # -- transport ---------------------------------------------------------------------------
    def send(
        self,
        body: str,
        content_type: str,
        *,
        sign: bool = True,
        timestamp: int | None = None,
        signature: str | None = None,
        headers: dict[str, str] | None = None,
        wait: bool = True,
    ) -> Reply:
        ts = str(timestamp if timestamp is not None else int(time.time()))
        all_headers = {"Content-Type": content_type, **(headers or {})}
        if sign:
            all_headers["X-Slack-Request-Timestamp"] = ts
            all_headers["X-Slack-Signature"] = signature or self.verifier.generate_signature(
                timestamp=ts, body=body
            )
        request = Request(self.events_url, data=body.encode(), headers=all_headers, method="POST")
        started = time.perf_counter()
        try:
            with urlopen(request, timeout=30) as response:
                reply = Reply(
                    response.status, response.read().decode(), time.perf_counter() - started
                )
        except HTTPError as exc:
            reply = Reply(exc.code, exc.read().decode(), time.perf_counter() - started)
        if wait:
            self.executor.wait_idle()
        return reply

    def interactive(self, body: dict[str, Any], **kwargs: Any) -> Reply:
        """An interactivity payload: form field payload=<url-encoded JSON>."""
        return self.send(
            f"payload={quote(json.dumps(body))}", "application/x-www-form-urlencoded", **kwargs
        )

    def response_url(self) -> str:
        return f"{self.respond_base}{uuid.uuid4().hex}"

    # -- Slack surfaces ----------------------------------------------------------------------
    def command(
        self, text: str, *, user: str = "U0AGENT01", channel: str = "C0API0001", **kwargs: Any
    ) -> Reply:
        """`/swarm <text>` as Slack sends it (form-encoded)."""
        body = payload("slash_command.json")
        body.update(
            team_id=self.team_id,
            channel_id=channel,
            user_id=user,
            command="/swarm",
            text=text,
            response_url=self.response_url(),
            trigger_id=f"{uuid.uuid4().hex[:8]}.trigger",
        )
        return self.send(urlencode(body), "application/x-www-form-urlencoded", **kwargs)

    def global_shortcut(
        self, *, user: str = "U0AGENT01", callback_id: str = "file-swarm-case", **kwargs: Any
    ) -> Reply:
        body = payload("shortcut_global.json")
        body["team"]["id"] = self.team_id
        body["user"].update(id=user, team_id=self.team_id)
        body.update(callback_id=callback_id, trigger_id=f"{uuid.uuid4().hex[:8]}.trigger")
        return self.interactive(body, **kwargs)

    def message_shortcut(
        self,
        *,
        text: str,
        channel: str = "C0GENERAL",
        user: str = "U0AGENT01",
        message_ts: str = "1700000000.000100",
        author: str = "U0CUST001",
        **kwargs: Any,
    ) -> Reply:
        body = payload("shortcut_message.json")
        body["team"]["id"] = self.team_id
        body["user"]["id"] = user
        body["channel"]["id"] = channel
        body["message"].update(text=text, ts=message_ts, user=author, team=self.team_id)
        body["message"].pop("blocks", None)
        body.update(
            callback_id="swarm-this-message",
            message_ts=message_ts,
            trigger_id=f"{uuid.uuid4().hex[:8]}.trigger",
            response_url=self.response_url(),
        )
        return self.interactive(body, **kwargs)

    def submit(
        self,
        view: dict[str, Any],
        values: dict[str, str | None],
        *,
        user: str = "U0AGENT01",
        **kwargs: Any,
    ) -> Reply:
        """Submit an opened modal with `values` by block id (selects take the option value)."""
        return self.interactive(self.submission(view, values, user=user), **kwargs)

    def submission(
        self, view: dict[str, Any], values: dict[str, str | None], *, user: str = "U0AGENT01"
    ) -> dict[str, Any]:
        """The view_submission payload of an opened modal filled with `values`."""
        body = payload("view_submission.json")
        body["team"]["id"] = self.team_id
        body["user"].update(id=user, team_id=self.team_id)
        submitted = copy.deepcopy(view)
        state: dict[str, Any] = {}
        for block in submitted.get("blocks", []):
            block_id = block.get("block_id")
            element = block.get("element") or {}
            if block.get("type") != "input" or block_id not in values:
                continue
            value = values[block_id]
            if element.get("type") == "checkboxes":
                chosen = [o for o in element.get("options", []) if o["value"] in (value or "")]
                state[block_id] = {
                    element["action_id"]: {"type": "checkboxes", "selected_options": chosen}
                }
            elif element.get("type") == "static_select":
                option = (
                    None
                    if value is None
                    else {"text": {"type": "plain_text", "text": value}, "value": value}
                )
                state[block_id] = {
                    element["action_id"]: {"type": "static_select", "selected_option": option}
                }
            else:
                state[block_id] = {
                    element["action_id"]: {"type": element.get("type"), "value": value}
                }
        submitted["state"] = {"values": state}
        submitted.setdefault("hash", "1596530361.3wRYuk3R")
        submitted["team_id"] = self.team_id
        body["view"] = {**body["view"], **submitted}
        return body

    def click(
        self,
        action_id: str,
        value: str,
        *,
        user: str = "U0AGENT01",
        channel: str = "C0API0001",
        message_ts: str = "111.222",
        **kwargs: Any,
    ) -> Reply:
        body = self.click_body(action_id, value, user=user, channel=channel, message_ts=message_ts)
        return self.interactive(body, **kwargs)

    def click_body(
        self,
        action_id: str,
        value: str,
        *,
        user: str = "U0AGENT01",
        channel: str = "C0API0001",
        message_ts: str = "111.222",
    ) -> dict[str, Any]:
        """The block_actions payload of a button click on a card."""
        body = payload("block_actions.json")
        body["team"]["id"] = self.team_id
        body["user"].update(id=user, team_id=self.team_id)
        body["channel"]["id"] = channel
        body["container"].update(channel_id=channel, message_ts=message_ts, is_ephemeral=False)
        body["actions"][0].update(
            action_id=action_id, value=value, block_id=f"case-actions-{value}"
        )
        body.update(response_url=self.response_url(), trigger_id=f"{uuid.uuid4().hex[:8]}.trigger")
        return body

    def select_in_view(
        self,
        view: dict[str, Any],
        block_id: str,
        value: str,
        *,
        user: str = "U0AGENT01",
        **kwargs: Any,
    ) -> Reply:
        """Choose an option of a select in an open modal (a block_actions with a view)."""
        body = payload("block_actions.json")
        body["team"]["id"] = self.team_id
        body["user"].update(id=user, team_id=self.team_id)
        body.pop("channel", None)
        body.pop("response_url", None)
        body["container"] = {"type": "view", "view_id": view["id"]}
        body["view"] = copy.deepcopy(view)
        body["actions"] = [
            {
                "type": "static_select",
                "action_id": "value",
                "block_id": block_id,
                "selected_option": {"text": {"type": "plain_text", "text": value}, "value": value},
                "action_ts": f"{time.time():.6f}",
            }
        ]
        body["trigger_id"] = f"{uuid.uuid4().hex[:8]}.trigger"
        return self.interactive(body, **kwargs)

    def event(
        self,
        event: dict[str, Any],
        *,
        retry_num: int | None = None,
        event_id: str | None = None,
        **kwargs: Any,
    ) -> Reply:
        """An Events API callback (JSON body) wrapping `event`."""
        body = payload("event_message.json")
        body.update(
            team_id=self.team_id,
            event=event,
            event_id=event_id or f"Ev{uuid.uuid4().hex[:10].upper()}",
            event_time=int(time.time()),
        )
        headers = kwargs.pop("headers", {}) or {}
        if retry_num is not None:
            headers.update(
                {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"}
            )
        return self.send(json.dumps(body), "application/json", headers=headers, **kwargs)

    def function_executed(
        self,
        callback_id: str,
        inputs: dict[str, Any],
        *,
        execution_id: str,
        token: str,
        parameters: tuple[list[dict], list[dict]] = ([], []),
        retry_num: int | None = None,
        event_id: str | None = None,
        **kwargs: Any,
    ) -> Reply:
        """A Workflow Builder step run: function_executed with the execution's own token."""
        body = payload("event_function_executed.json")
        event = body["event"]
        event["function"].update(
            callback_id=callback_id,
            title=callback_id.replace("_", " ").capitalize(),
            description="",
            input_parameters=parameters[0],
            output_parameters=parameters[1],
        )
        event.update(
            inputs=inputs,
            function_execution_id=execution_id,
            bot_access_token=token,
            event_ts=f"{time.time():.6f}",
        )
        body.update(
            team_id=self.team_id,
            event_id=event_id or f"Ev{uuid.uuid4().hex[:10].upper()}",
            event_time=int(time.time()),
        )
        headers = kwargs.pop("headers", {}) or {}
        if retry_num is not None:
            headers.update(
                {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"}
            )
        return self.send(json.dumps(body), "application/json", headers=headers, **kwargs)
