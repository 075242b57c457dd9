"""The services every listener reaches through Bolt's context."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from slack_sdk import WebClient

from bot.gateway import AdminCache, ChannelAccess, WebSlack
from bot.settings import Settings
from storage.uow import UnitOfWorkFactory
from workflows.clock import Clock, SystemClock
from workflows.config import SwarmConfig
from workflows.ports import NoTimers, Timers
from workflows.services import Services
from workflows.similarity import SimilarCases

KEY = "swarm"


@dataclass
class Swarm:
    """Settings, configuration, storage and clock of one running bot."""

    settings: Settings
    config: SwarmConfig
    uow: UnitOfWorkFactory
    clock: Clock = field(default_factory=SystemClock)
    admins: AdminCache = field(default_factory=AdminCache)
    timers: Timers = field(default_factory=NoTimers)
    channels: ChannelAccess = field(default_factory=ChannelAccess)
    similar: SimilarCases = field(default_factory=SimilarCases)

    def slack(self, client: WebClient) -> WebSlack:
        """The gateway workflows use, on this request's client."""
        return WebSlack(client, self.admins, self.channels)

    def services(self, client: WebClient) -> Services:
        """What workflows work with, talking to Slack through this client."""
        return Services(
            self.uow, self.config, self.slack(client), self.clock, self.timers, self.similar
        )


def swarm_of(context: Any) -> Swarm:
    """The Swarm services of a Bolt context."""
    return context[KEY]


def services_of(context: Any) -> Services:
    """What workflows work with, on the client of this request (Bolt's context.client)."""
    return swarm_of(context).services(context.client)


def team_of(body: dict[str, Any], context: Any) -> str:
    """The workspace a request belongs to."""
    team = context.get("team_id") if context is not None else None
    if team:
        return team
    raw = body.get("team") or {}
    if isinstance(raw, dict) and raw.get("id"):
        return raw["id"]
    return body.get("team_id") or (body.get("user") or {}).get("team_id") or "T0"
