"""Reading cases: one case, and the open queue of a channel; keeping their cards current."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from storage.domain import CaseStatus
from storage.models import Case
from storage.uow import UnitOfWork
from workflows.access import can_see, channels_of, require_can_see
from workflows.announcements import CARD
from workflows.errors import CaseNotFound, SlackUnavailable, SwarmError
from workflows.services import Services
from workflows.snapshot import CaseSnapshot

log = logging.getLogger(__name__)


def find_case(
    uow: UnitOfWork,
    *,
    team_id: str,
    case_number: str | None = None,
    case_id: int | None = None,
    for_update: bool = False,
) -> Case:
    """A case of this workspace by id or number (locked for update if asked), or CaseNotFound."""
    case = None
    if case_id is not None:
        case = uow.cases.get(case_id, for_update=for_update)
        if case is not None and case.team_id != team_id:
            case = None
    elif case_number is not None:
        case = uow.cases.by_number(team_id=team_id, case_number=case_number.strip())
        if case is not None and for_update:
            case = uow.cases.get(case.id, for_update=True)
    if case is None:
        raise CaseNotFound(case_number or str(case_id))
    return case


def record_changed(case: Case, now: datetime) -> None:
    """The record of a resolved case changed: its similar-cases vector is owed again."""
    if case.status is CaseStatus.RESOLVED:
        case.vector_due_at = now


def refresh_card(services: Services, card: CaseSnapshot) -> str | None:
    """Re-render the card; when Slack will not, log it and say why.

    A card Slack cannot take now is owed a re-render (from the case as it is then); one Slack
    refuses for good (its channel archived, the card deleted) is left as it is.
    """
    try:
        services.slack.update_case_card(card)
    except SlackUnavailable as exc:
        log.warning("case %s: card not updated yet, owed: %s", card.case_number, exc)
        owe_card_update(services, card.case_id)
        return str(exc)
    except SwarmError as exc:
        log.warning("case %s: card not updated: %s", card.case_number, exc)
        return str(exc)
    return None


def owe_card_update(services: Services, case_id: int) -> None:
    """Owe a re-render of a case's card (once: one already owed covers it)."""
    with services.uow() as uow:
        case = uow.cases.get(case_id)
        if case is None or uow.cases.card_update_owed(case_id=case_id):
            return
        uow.cases.owe_post(
            case=case, kind=CARD, channel_id=case.channel_id, text="", at=services.clock.now()
        )
        uow.commit()


def case_card(services: Services, *, team_id: str, case_number: str, user_id: str) -> CaseSnapshot:
    """One case by number, or CaseNotFound (also when the user may not see it)."""
    visible = require_can_see(services, team_id=team_id, user_id=user_id, case_number=case_number)
    with services.uow.read() as uow:
        return CaseSnapshot.of(
            find_case(uow, team_id=team_id, case_id=visible.case_id), services.config
        )


@dataclass(frozen=True)
class QueuePage:
    """The first cases of an open queue the user may see, and how many they may see in all."""

    cases: list[CaseSnapshot]
    total: int


def open_queue(
    services: Services,
    *,
    team_id: str,
    user_id: str,
    channel_id: str | None = None,
    limit: int | None = None,
) -> QueuePage:
    """Open cases the user may see (escalated included), oldest first, optionally of a channel:
    the first `limit` of them (all when None) and their number.

    Who may see a case depends only on its swarm and incident channels, so the queue is
    counted per pair of channels, each pair is checked once (with no transaction open), and
    only the cases shown are loaded.
    """
    with services.uow.read() as uow:
        places = uow.cases.open_places(team_id=team_id, channel_id=channel_id)
    hidden = [
        (swarm, incident)
        for swarm, incident, _n in places
        if not can_see(services.slack, user_id, channels_of(swarm, incident))
    ]
    total = sum(n for swarm, incident, n in places if (swarm, incident) not in hidden)
    if total == 0:
        return QueuePage([], 0)
    with services.uow.read() as uow:
        shown = [
            CaseSnapshot.of(c, services.config)
            for c in uow.cases.open_queue(
                team_id=team_id, channel_id=channel_id, hidden=hidden, limit=limit
            )
        ]
    return QueuePage(shown, total)


def workspaces(services: Services) -> list[str]:
    """The workspaces this database serves (those with a case)."""
    with services.uow() as uow:
        return list(uow.schedule.team_ids())
