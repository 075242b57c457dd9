"""Cases filed from outside the intake modal: a Workflow Builder step, a ticketing system.

Both go through `intake.file_case` and `intake.publish_card`, exactly as a modal submission
does: same validation, same card, same idempotency.
"""

from __future__ import annotations

from dataclasses import dataclass

from storage.uow import UnitOfWorkFactory
from workflows.clock import Clock
from workflows.config import SwarmConfig
from workflows.intake import CaseDraft, file_case, publish_card
from workflows.ports import SlackGateway, Timers

# A Workflow Builder execution id in place of a modal's view id: a redelivered
# function_executed event finds the case its first delivery filed.
STEP_SUBMISSION = "step:"


@dataclass(frozen=True)
class Landed:
    """A filed case as the outside world sees it."""

    case_id: int
    case_number: str
    case_url: str | None
    thread_permalink: str | None
    created: bool


def file_and_post(
    uow_factory: UnitOfWorkFactory,
    config: SwarmConfig,
    slack: SlackGateway,
    clock: Clock,
    timers: Timers,
    draft: CaseDraft,
) -> Landed:
    """File the case (InvalidCase, DuplicateCase as the modal), post its card, say where."""
    filed = file_case(uow_factory, config, clock, draft)
    if filed.created:
        timers.case_changed(filed.case_id)
    publish_card(uow_factory, config, slack, clock, filed.case_id)
    return landed(uow_factory, config, filed.case_id, created=filed.created)


def landed(
    uow_factory: UnitOfWorkFactory, config: SwarmConfig, case_id: int, *, created: bool
) -> Landed:
    """Where a stored case is: its number, its link in the support system, its thread."""
    with uow_factory() as uow:
        case = uow.cases.get(case_id)
        assert case is not None
        return Landed(
            case_id=case.id,
            case_number=case.case_number,
            case_url=config.case.case_url(case.case_number),
            thread_permalink=case.permalink,
            created=created,
        )
