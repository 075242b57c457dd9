"""Escalation: a lead moves a case into its own severity-named incident channel, or changes
the severity of one it has (the channel is renamed). The room itself is built in
incident_room.py."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from storage.domain import CaseStatus, Urgency
from storage.models import Case
from storage.uow import UnitOfWork
from workflows.access import require_can_see
from workflows.announcements import THREAD, deliver
from workflows.cases import find_case, refresh_card
from workflows.config import SwarmConfig
from workflows.errors import (
    EscalationIncomplete,
    NotALead,
    SlackRefused,
    SlackUnavailable,
    SwarmError,
)
from workflows.incident_room import (
    LEASE,
    NAME_ATTEMPTS,
    REQUESTED,
    Escalated,
    build,
    interrupted,
    owe_stakeholder_notes,
    refused,
    release,
)
from workflows.naming import channel_name
from workflows.ports import SlackGateway
from workflows.routing import is_admin, is_lead
from workflows.services import Services
from workflows.snapshot import CaseSnapshot
from workflows.text import case_link, escape, storable

log = logging.getLogger(__name__)

# Timeline kinds of severity changes: asked for during an escalation, and done.
SEVERITY_REQUESTED = "severity_requested"
SEVERITY_CHANGED = "severity_changed"

SEVERITY_BY_URGENCY = {Urgency.CRITICAL: 1, Urgency.HIGH: 2, Urgency.MEDIUM: 3, Urgency.LOW: 4}


@dataclass(frozen=True)
class EscalationForm:
    """What the Escalate modal starts from: the case, and the severity to offer first."""

    card: CaseSnapshot
    severity: int


def default_severity(urgency: Urgency) -> int:
    """critical 1, high 2, medium 3, low 4."""
    return SEVERITY_BY_URGENCY[Urgency(urgency)]


def require_lead(
    uow: UnitOfWork, config: SwarmConfig, case: Case, user_id: str, what: str, admin: bool
) -> None:
    """NotALead unless the user leads the case's topic (or is an admin)."""
    if not is_lead(
        uow, config, admin=admin, team_id=case.team_id, user_id=user_id, topic_key=case.topic_key
    ):
        raise NotALead(what, case.topic_key)


def escalation_form(
    services: Services, *, team_id: str, user_id: str, case_id: int
) -> EscalationForm:
    """The Escalate button (leads only, open cases only): the case and its severity."""
    visible = require_can_see(services, team_id=team_id, user_id=user_id, case_id=case_id)
    admin = is_admin(services.config, services.slack, user_id)
    with services.uow.read() as uow:
        case = find_case(uow, team_id=team_id, case_id=visible.case_id)
        require_lead(uow, services.config, case, user_id, "escalate cases", admin)
        if not case.is_open:
            raise SwarmError(f"Case {escape(case.case_number)} is resolved; reopen it first.")
        severity = case.severity or default_severity(case.urgency)
        return EscalationForm(CaseSnapshot.of(case, services.config), severity)


def escalate(
    services: Services,
    *,
    team_id: str,
    user_id: str,
    case_number: str | None = None,
    case_id: int | None = None,
    severity: int | None = None,
    reason: str = "",
    confidential: bool = False,
) -> Escalated:
    """`/swarm escalate` and the Escalate modal: lead only; renames when already escalated."""
    visible = require_can_see(
        services, team_id=team_id, user_id=user_id, case_number=case_number, case_id=case_id
    )
    admin = is_admin(services.config, services.slack, user_id)
    with services.uow.read() as uow:
        case = find_case(uow, team_id=team_id, case_id=visible.case_id)
        require_lead(uow, services.config, case, user_id, "escalate cases", admin)
        number = case.case_number
        if not case.is_open:
            raise SwarmError(f"Case {escape(number)} is resolved; `/swarm reopen {number}` first.")
        severity = severity or default_severity(case.urgency)
        case_id = case.id
        done = case.status is CaseStatus.ESCALATED and case.incident_channel_id is not None
        if done:
            assert case.incident_channel_id and case.incident_channel_name and case.severity
            current = Escalated(
                case.id,
                number,
                case.severity,
                case.incident_channel_id,
                case.incident_channel_name,
                unchanged=True,
            )
    if done:
        if severity == current.severity:
            return current
        return change_severity(
            services,
            team_id=team_id,
            user_id=user_id,
            case_id=case_id,
            severity=severity,
        )
    now = services.clock.now()
    with services.uow() as uow:
        if not uow.cases.claim_escalation(case_id=case_id, now=now, stale_before=now - LEASE):
            busy = True
        else:
            busy = False
        case = uow.cases.get(case_id)
        assert case is not None
        if case.incident_channel_id is None:
            case.confidential = case.confidential or confidential
            uow.cases.add_event(
                case=case,
                kind=REQUESTED,
                at=now,
                actor_id=user_id,
                data={
                    "severity": severity,
                    "reason": storable(reason),
                    "confidential": confidential,
                },
            )
        if not busy:
            uow.commit()
    if busy:
        # Another request is escalating it now: this severity is applied after, not refused.
        return request_severity(services, case_id, user_id, severity)
    try:
        result = build(services, case_id, user_id, severity)
    except SlackUnavailable as exc:
        interrupted(services, case_id, str(exc), retry=True)
        raise EscalationIncomplete(
            f"Escalating case {escape(number)} stopped half-way: {exc}. What was done is kept "
            f"and finished automatically when Slack answers again (or run "
            f"`/swarm escalate {number}` again); no second channel is made."
        ) from exc
    except SwarmError as exc:
        interrupted(services, case_id, str(exc), retry=False)
        raise
    finally:
        release(services, case_id)
    if result.severity != severity:
        # A retry asked for another severity than the attempt it finished.
        return change_severity(
            services,
            team_id=team_id,
            user_id=user_id,
            case_id=case_id,
            severity=severity,
        )
    services.timers.case_changed(case_id)
    apply_requested_severity(services, case_id)
    return result


def request_severity(services: Services, case_id: int, user_id: str, severity: int) -> Escalated:
    """Keep a severity asked for while the case is being escalated; it is applied, in order,
    when the escalation completes (or now, if it completed meanwhile)."""
    now = services.clock.now()
    with services.uow() as uow:
        case = uow.cases.get(case_id)
        assert case is not None
        uow.cases.add_event(
            case=case, kind=SEVERITY_REQUESTED, at=now, actor_id=user_id, data={"to": severity}
        )
        uow.commit()
        number = case.case_number
        channel_id, name = case.incident_channel_id or "", case.incident_channel_name or ""
        still_busy = case.escalation_claimed_at is not None
    if not still_busy:
        applied = apply_requested_severity(services, case_id)
        if applied is not None:
            return applied
    return Escalated(case_id, number, severity, channel_id, name, pending=True)


def apply_requested_severity(services: Services, case_id: int) -> Escalated | None:
    """After an escalation: the last severity asked for meanwhile, if it differs."""
    with services.uow.read() as uow:
        case = uow.cases.get(case_id)
        if case is None or case.escalation_claimed_at is not None:
            return None
        events = uow.cases.events_of(case_id=case_id, kinds=(SEVERITY_REQUESTED, SEVERITY_CHANGED))
        pending = [e for e in events if e.kind == SEVERITY_REQUESTED]
        settled = [e for e in events if e.kind == SEVERITY_CHANGED]
        if not pending or (settled and settled[-1].id > pending[-1].id):
            return None
        wanted, by = int(pending[-1].data.get("to") or 0), pending[-1].actor_id or ""
        if not wanted or wanted == case.severity or case.incident_channel_id is None:
            return None
        team_id = case.team_id
    return change_severity(services, team_id=team_id, user_id=by, case_id=case_id, severity=wanted)


def change_severity(
    services: Services,
    *,
    team_id: str,
    user_id: str,
    severity: int,
    case_number: str | None = None,
    case_id: int | None = None,
) -> Escalated:
    """`/swarm sev`: lead only; renames the incident channel and says so in it and the thread."""
    visible = require_can_see(
        services, team_id=team_id, user_id=user_id, case_number=case_number, case_id=case_id
    )
    admin = is_admin(services.config, services.slack, user_id)
    with services.uow.read() as uow:
        case = find_case(uow, team_id=team_id, case_id=visible.case_id)
        require_lead(uow, services.config, case, user_id, "change the severity", admin)
        number = case.case_number
        now = services.clock.now()
        busy = case.escalation_claimed_at is not None and case.escalation_claimed_at > now - LEASE
        case_id = case.id
    if busy:
        return request_severity(services, case_id, user_id, severity)
    with services.uow.read() as uow:
        case = find_case(uow, team_id=team_id, case_id=case_id)
        if case.incident_channel_id is None or case.incident_channel_name is None:
            raise SwarmError(
                f"Case {escape(number)} has no incident channel yet; "
                f"`/swarm escalate {number} sev{severity}` makes one."
            )
        if case.severity == severity:
            return Escalated(
                case.id,
                number,
                severity,
                case.incident_channel_id,
                case.incident_channel_name,
                unchanged=True,
            )
        card = CaseSnapshot.of(case, services.config)
        case_id, channel_id, old_name, old_severity = (
            case.id,
            case.incident_channel_id,
            case.incident_channel_name,
            case.severity,
        )
    name = _rename(services.slack, services.config, card, severity, channel_id, old_name)
    with services.uow() as uow:
        case = uow.cases.get(case_id)
        assert case is not None
        now = services.clock.now()
        case.severity = severity
        case.incident_channel_name = name
        uow.cases.add_event(
            case=case,
            kind=SEVERITY_CHANGED,
            at=now,
            actor_id=user_id,
            data={"from": old_severity, "to": severity, "channel": channel_id, "name": name},
        )
        card = CaseSnapshot.of(case, services.config)
        link = case_link(card.case_number, card.case_url)
        text = (
            f":rotating_light: <@{user_id}> changed the severity of case {link} from "
            f"sev{old_severity} to *sev{severity}*; the incident channel is now <#{channel_id}>."
        )
        # Owed with the change, so Slack failing now delays them but never loses them.
        owed = [
            uow.cases.owe_post(case=case, channel_id=channel_id, text=text, at=now),
            uow.cases.owe_post(
                case=case, kind=THREAD, channel_id=case.channel_id, text=text, at=now
            ),
            *owe_stakeholder_notes(uow, services, case, card, severity, channel_id),
        ]
        uow.commit()
        post_ids = [post.id for post in owed]
    for problem in deliver(services, post_ids):
        log.warning("case %s: severity change not told yet: %s", number, problem)
    refresh_card(services, card)
    services.timers.case_changed(case_id)
    return Escalated(case_id, number, severity, channel_id, name, renamed_from=old_name)


def _rename(
    slack: SlackGateway,
    config: SwarmConfig,
    card: CaseSnapshot,
    severity: int,
    channel_id: str,
    old_name: str,
) -> str:
    for n in range(1, NAME_ATTEMPTS + 1):
        name = channel_name(config.naming, card.topic_key, severity, card.case_number, n)
        if name == old_name:
            return name
        try:
            slack.rename_channel(channel_id, name)
            return name
        except SlackRefused as exc:
            if exc.error == "name_taken":
                continue
            raise refused("rename", old_name, exc) from exc
    raise SwarmError(f"No free name for `#{old_name}` at sev{severity}; nothing was renamed.")
