"""Who swarms a case and who owns it: Join, Claim, assign."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from storage.domain import CaseStatus, ParticipantRole
from storage.models import Case
from workflows.access import require_can_see, require_may_be_given
from workflows.announcements import THREAD, deliver
from workflows.cases import find_case, refresh_card
from workflows.errors import NotALead, SwarmError
from workflows.routing import is_admin, is_lead
from workflows.services import Services
from workflows.snapshot import CaseSnapshot
from workflows.text import escape

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What a swarm action did: the case after it, what to tell the user, and whether it changed."""

    card: CaseSnapshot
    text: str
    changed: bool


def _refuse_resolved(case: Case, what: str) -> None:
    if case.status is CaseStatus.RESOLVED:
        raise SwarmError(
            f"Case {escape(case.case_number)} is resolved; `/swarm reopen "
            f"{escape(case.case_number)}` it before you {what}."
        )


def start_swarming(case: Case) -> bool:
    """An open case that someone joined or answered is swarming now."""
    if case.status is CaseStatus.OPEN:
        case.status = CaseStatus.SWARMING
        return True
    return False


def join(
    services: Services,
    *,
    team_id: str,
    user_id: str,
    case_id: int | None = None,
    case_number: str | None = None,
) -> Outcome:
    """Join the swarm of a case (Join button)."""
    visible = require_can_see(
        services, team_id=team_id, user_id=user_id, case_id=case_id, case_number=case_number
    )
    now = services.clock.now()
    with services.uow() as uow:
        case = find_case(uow, team_id=team_id, case_id=visible.case_id, for_update=True)
        _refuse_resolved(case, "join it")
        number = escape(case.case_number)
        added = uow.cases.add_participant(
            case=case, user_id=user_id, role=ParticipantRole.JOINED, at=now
        )
        if added is None:
            return Outcome(
                CaseSnapshot.of(case, services.config),
                f"You already are in the swarm of case {number}.",
                False,
            )
        swarming = start_swarming(case)
        uow.cases.add_event(
            case=case,
            kind="joined",
            at=now,
            actor_id=user_id,
            data={"status": case.status.value} if swarming else {},
        )
        uow.commit()
        card = CaseSnapshot.of(case, services.config)
    services.timers.case_changed(card.case_id)
    refresh_card(services, card)
    return Outcome(card, f"You joined the swarm of case {number}.", True)


def claim(
    services: Services,
    *,
    team_id: str,
    user_id: str,
    case_id: int | None = None,
    case_number: str | None = None,
) -> Outcome:
    """Assign a case to yourself (Claim button, `/swarm claim`).

    Anyone may claim an unassigned case; taking it from someone else is a reassignment,
    which only leads may do.
    """
    return _assign(
        services,
        team_id=team_id,
        actor_id=user_id,
        user_id=user_id,
        case_id=case_id,
        case_number=case_number,
    )


def assign(
    services: Services,
    *,
    team_id: str,
    actor_id: str,
    user_id: str,
    case_number: str,
) -> Outcome:
    """`/swarm assign <case> @user`: leads (and admins) only, unless you assign yourself."""
    return _assign(
        services,
        team_id=team_id,
        actor_id=actor_id,
        user_id=user_id,
        case_number=case_number,
    )


def _assign(
    services: Services,
    *,
    team_id: str,
    actor_id: str,
    user_id: str,
    case_id: int | None = None,
    case_number: str | None = None,
) -> Outcome:
    visible = require_can_see(
        services, team_id=team_id, user_id=actor_id, case_id=case_id, case_number=case_number
    )
    if user_id != actor_id:
        require_may_be_given(services, visible, user_id)
    now = services.clock.now()
    admin = is_admin(services.config, services.slack, actor_id)
    with services.uow() as uow:
        case = find_case(uow, team_id=team_id, case_id=visible.case_id, for_update=True)
        number = escape(case.case_number)
        _refuse_resolved(case, "assign it")
        if case.assignee_id == user_id:
            who = "you" if user_id == actor_id else f"<@{user_id}>"
            return Outcome(
                CaseSnapshot.of(case, services.config),
                f"Case {number} already is assigned to {who}.",
                False,
            )
        taking_over = case.assignee_id is not None and case.assignee_id != actor_id
        if (user_id != actor_id or taking_over) and not is_lead(
            uow,
            services.config,
            admin=admin,
            team_id=team_id,
            user_id=actor_id,
            topic_key=case.topic_key,
        ):
            what = (
                f"take case {number} from <@{case.assignee_id}>"
                if user_id == actor_id
                else "assign cases to someone else"
            )
            raise NotALead(what, case.topic_key)
        previous = case.assignee_id
        case.assignee_id = user_id
        uow.cases.add_participant(case=case, user_id=user_id, role=ParticipantRole.ASSIGNEE, at=now)
        swarming = start_swarming(case)
        data: dict[str, str | None] = {"assignee": user_id, "previous": previous}
        if swarming:
            data["status"] = case.status.value
        uow.cases.add_event(
            case=case,
            kind="claimed" if user_id == actor_id else "assigned",
            at=now,
            actor_id=actor_id,
            data=data,
        )
        note = (
            f"<@{user_id}> claimed this case."
            if user_id == actor_id
            else f"<@{actor_id}> assigned this case to <@{user_id}>."
        )
        # Owed with the change: sent now, or later once the card's thread exists.
        post = uow.cases.owe_post(
            case=case, kind=THREAD, channel_id=case.channel_id, text=note, at=now
        )
        uow.commit()
        card = CaseSnapshot.of(case, services.config)
        post_id = post.id
    services.timers.case_changed(card.case_id)
    refresh_card(services, card)
    for problem in deliver(services, [post_id]):
        log.warning("case %s: assignment note not posted yet: %s", card.case_number, problem)
    if user_id == actor_id:
        return Outcome(card, f"Case {number} is yours now.", True)
    return Outcome(card, f"Case {number} is assigned to <@{user_id}>.", True)
