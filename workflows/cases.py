"""Reading cases: one case, and the open queue of a channel."""

from __future__ import annotations

from storage.uow import UnitOfWorkFactory
from workflows.config import SwarmConfig
from workflows.errors import CaseNotFound
from workflows.ports import CaseCard


def case_card(
    uow_factory: UnitOfWorkFactory, config: SwarmConfig, *, team_id: str, case_number: str
) -> CaseCard:
    """One case by number, or CaseNotFound."""
    with uow_factory() as uow:
        case = uow.cases.by_number(team_id=team_id, case_number=case_number.strip())
        if case is None:
            raise CaseNotFound(case_number)
        return CaseCard.of(case, config)


def open_queue(
    uow_factory: UnitOfWorkFactory,
    config: SwarmConfig,
    *,
    team_id: str,
    channel_id: str | None = None,
) -> list[CaseCard]:
    """Open cases (escalated included), oldest first, optionally of one channel."""
    with uow_factory() as uow:
        return [
            CaseCard.of(c, config)
            for c in uow.cases.open_queue(team_id=team_id, channel_id=channel_id)
        ]
