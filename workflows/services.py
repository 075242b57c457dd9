"""What every workflow works with, passed as one argument."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from storage.uow import UnitOfWorkFactory
from workflows.clock import Clock, SystemClock
from workflows.config import SwarmConfig
from workflows.ports import NoTimers, SlackGateway, Timers

if TYPE_CHECKING:  # similarity imports the workflows that import this module
    from workflows.similarity import SimilarCases


@dataclass(frozen=True)
class Services:
    """Storage (a unit of work per step), configuration, Slack, the time, SLA timers, and the
    process's similar-cases index (None: no similar cases offered)."""

    uow: UnitOfWorkFactory
    config: SwarmConfig
    slack: SlackGateway
    clock: Clock = field(default_factory=SystemClock)
    timers: Timers = field(default_factory=NoTimers)
    similar: SimilarCases | None = None
