"""What every workflow works with, passed as one argument."""

from __future__ import annotations

from dataclasses import dataclass, field

from storage.uow import UnitOfWorkFactory
from workflows.clock import Clock, SystemClock
from workflows.config import SwarmConfig
from workflows.ports import NoTimers, SlackGateway, Timers


@dataclass(frozen=True)
class Services:
    """Storage (a unit of work per step), configuration, Slack, the time, and SLA timers."""

    uow: UnitOfWorkFactory
    config: SwarmConfig
    slack: SlackGateway
    clock: Clock = field(default_factory=SystemClock)
    timers: Timers = field(default_factory=NoTimers)
