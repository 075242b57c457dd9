"""Assembling a running bot from settings: storage, services, Bolt app, WSGI app."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from concurrent.futures import Executor

from slack_bolt import App
from slack_sdk import WebClient

from bot import redaction
from bot.app import create_app
from bot.context import Swarm
from bot.gateway import web_client
from bot.hooks import PATH, case_hook
from bot.http import SlackHTTP
from bot.settings import Settings
from storage.db import create_db_engine, session_factory
from storage.uow import UnitOfWorkFactory
from workflows.clock import Clock, SystemClock
from workflows.config import SwarmConfig, load_config
from workflows.services import Services


def configure_logging(level: str = "INFO", secrets: Iterable[str | None] = ()) -> None:
    """One stderr handler; tokens and `secrets` redacted from every line (see bot.redaction)."""
    redaction.install(secrets)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


def build_swarm(
    settings: Settings, *, config: SwarmConfig | None = None, clock: Clock | None = None
) -> Swarm:
    """Services on the configured database and swarm.yaml."""
    config = config if config is not None else load_config(settings.swarm_config)
    engine = create_db_engine(settings.database_url)
    return Swarm(
        settings=settings,
        config=config,
        uow=UnitOfWorkFactory(session_factory(engine)),
        clock=clock or SystemClock(),
    )


def build_http(
    swarm: Swarm, *, client: WebClient | None = None, executor: Executor | None = None
) -> tuple[App, SlackHTTP]:
    """The Bolt app and the WSGI application serving it."""
    app = create_app(swarm, client=client, executor=executor)
    secret = swarm.settings.slack_signing_secret
    hooks = {PATH: case_hook(swarm, app.client)}
    http = SlackHTTP(app, secret.get_secret_value() if secret else "", uow=swarm.uow, hooks=hooks)
    return app, http


def tool_services(swarm: Swarm, *, retries: int = 3) -> Services:
    """What a command-line tool's workflows work with: Slack on the bot token, no timers."""
    token = swarm.settings.slack_bot_token
    client = web_client(
        token.get_secret_value() if token else None, swarm.settings.slack_api_url, retries=retries
    )
    return swarm.services(client)
