"""Serving: gunicorn workers over HTTP, or Socket Mode."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from gunicorn.app.base import BaseApplication
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk.socket_mode.client import BaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from bot import payloads

log = logging.getLogger(__name__)

# Socket Mode envelope types that carry a payload for Bolt.
ENVELOPES = ("events_api", "interactive", "slash_commands")


class Gunicorn(BaseApplication):  # type: ignore[misc]
    """Gunicorn, configured in code; each worker builds its own app after the fork."""

    def __init__(self, factory: Callable[[], Any], options: dict[str, Any]) -> None:
        self.factory = factory
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return self.factory()


def serve_http(
    factory: Callable[[], Any],
    *,
    port: int,
    workers: int,
    threads: int = 8,
    host: str = "0.0.0.0",
) -> None:
    """Serve /slack/events with gunicorn's threaded workers until stopped."""
    Gunicorn(
        factory,
        {
            "bind": f"{host}:{port}",
            "workers": workers,
            "worker_class": "gthread",
            "threads": threads,
            "timeout": 30,
            "graceful_timeout": 20,
            "accesslog": None,
            "preload_app": False,
        },
    ).run()


class CheckedSocketModeHandler(SocketModeHandler):  # type: ignore[misc]
    """Socket Mode with the same payload checks as HTTP: what Bolt cannot read never reaches it.

    A refused envelope is acknowledged (so Slack does not redeliver it) and logged in one line.
    """

    def handle(self, client: BaseSocketModeClient, req: SocketModeRequest) -> None:
        try:
            if req.type not in ENVELOPES:
                raise payloads.Malformed("unknown envelope type")
            payloads.check(req.payload)
        except payloads.Malformed as exc:
            log.warning("refused a Socket Mode envelope: %s", exc)
            client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))
            return
        super().handle(client, req)
