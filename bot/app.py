"""The Bolt app factory."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

from slack_bolt import App, BoltContext
from slack_sdk import WebClient

from bot import listeners
from bot.context import KEY, Swarm
from bot.gateway import web_client

log = logging.getLogger(__name__)


def create_app(
    swarm: Swarm, *, client: WebClient | None = None, executor: Executor | None = None
) -> App:
    """A Bolt app wired to the swarm services; nothing is built at import time."""
    settings = swarm.settings
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    secret = (
        settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None
    )
    client = client or web_client(token, settings.slack_api_url, retries=settings.slack_retries)
    if executor is None:
        # Listeners ack first and then wait on Slack; with Bolt's 5 threads, a 6th slow
        # interaction would wait for a free thread past Slack's 3 s and never be acked.
        executor = ThreadPoolExecutor(
            max_workers=settings.listener_threads, thread_name_prefix="swarm-listener"
        )
    app = App(
        name="swarm",
        client=client,
        signing_secret=secret,
        request_verification_enabled=not settings.socket_mode,
        # auth.test now, while the process starts, not inside the first request's 3 s.
        token_verification_enabled=bool(token),
        logger=logging.getLogger("swarm.bolt"),
        listener_executor=executor,
        # Bolt answers when the listener function returns; bot.listeners.errors.guarded returns
        # as soon as the listener acks and leaves the rest running on the executor. Without
        # this, Bolt polls every 10 ms for the ack (see benchmarks/load.py).
        process_before_response=True,
        # The bot's own thread posts (resolutions, notes) belong in the case record, marked as
        # bot messages; no listener answers a message, so there is no loop to guard against.
        ignoring_self_events_enabled=False,
    )

    @app.middleware
    def _services(context: BoltContext, next: Callable[[], Any]) -> Any:  # noqa: A002
        context[KEY] = swarm
        return next()

    listeners.register(app)
    return app
