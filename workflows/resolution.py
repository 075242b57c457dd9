"""Resolving and reopening a case, and archiving incident channels after resolution."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from storage.domain import CaseStatus
from storage.models import Case
from storage.uow import UnitOfWork
from workflows.access import require_can_see
from workflows.announcements import deliver
from workflows.cases import find_case, record_changed, refresh_card
from workflows.config import SwarmConfig
from workflows.errors import InvalidCase, NotAllowed, SwarmError
from workflows.routing import is_admin, is_lead
from workflows.services import Services
from workflows.sla import restart_resolution_clock
from workflows.snapshot import CaseSnapshot
from workflows.text import CONTROL_ERROR, clip, duration, escape, has_control

log = logging.getLogger(__name__)

# A resolve that loses to another this recent is told who just resolved the case.
JUST_NOW = timedelta(minutes=5)
RESOLUTION_MAX = 3000
NOTE_MAX = 3000
URL_MAX = 1024


@dataclass(frozen=True)
class Resolution:
    """What the resolve modal (or `/swarm resolve <case> <text>`) says."""

    resolution: str
    root_cause: str = ""
    workaround: str = ""
    kb_link: str = ""


@dataclass(frozen=True)
class Changed:
    """The case after a resolve or reopen, and what Slack could not be told."""

    case_id: int
    case_number: str
    status: CaseStatus
    incident_channel_id: str | None
    problems: tuple[str, ...] = ()


def validate(resolution: Resolution) -> dict[str, str]:
    """Field errors by field name; empty when the resolution can be stored."""
    errors: dict[str, str] = {}
    if not resolution.resolution.strip():
        errors["resolution"] = "Say how the case was resolved."
    elif len(resolution.resolution) > RESOLUTION_MAX:
        errors["resolution"] = f"Keep the resolution to {RESOLUTION_MAX} characters."
    for name in ("root_cause", "workaround"):
        if len(getattr(resolution, name)) > NOTE_MAX:
            errors[name] = f"Keep this to {NOTE_MAX} characters."
    link = resolution.kb_link.strip()
    if link:
        parts = urlsplit(link)
        if (
            parts.scheme not in ("http", "https")
            or not parts.netloc
            or len(link) > URL_MAX
            or any(c in link for c in " <>|\n\t")
        ):
            errors["kb_link"] = "Enter a full http(s) link to the knowledge article."
    for name in ("resolution", "root_cause", "workaround", "kb_link"):
        if name not in errors and has_control(getattr(resolution, name)):
            errors[name] = CONTROL_ERROR
    return errors


def may_act(uow: UnitOfWork, config: SwarmConfig, case: Case, user_id: str, admin: bool) -> bool:
    """The filer, the assignee, a participant, or a lead of the topic (admins included)."""
    if user_id in (case.filer_id, case.assignee_id):
        return True
    if any(p.user_id == user_id for p in case.participants):
        return True
    return is_lead(
        uow, config, admin=admin, team_id=case.team_id, user_id=user_id, topic_key=case.topic_key
    )


def require_may_resolve(
    services: Services,
    *,
    team_id: str,
    user_id: str,
    case_number: str | None = None,
    case_id: int | None = None,
) -> CaseSnapshot:
    """The open case the user may resolve, or why not (checked before the modal opens)."""
    visible = require_can_see(
        services, team_id=team_id, user_id=user_id, case_number=case_number, case_id=case_id
    )
    admin = is_admin(services.config, services.slack, user_id)
    with services.uow.read() as uow:
        case = find_case(uow, team_id=team_id, case_id=visible.case_id)
        _check(uow, services.config, case, user_id, "resolve", admin)
        if not case.is_open:
            raise SwarmError(f"Case {escape(case.case_number)} is already resolved.")
        return CaseSnapshot.of(case, services.config)


def _check(
    uow: UnitOfWork, config: SwarmConfig, case: Case, user_id: str, what: str, admin: bool
) -> None:
    if not may_act(uow, config, case, user_id, admin):
        raise NotAllowed(
            f"Only the filer, the assignee, the swarm of case {escape(case.case_number)} "
            f"and its leads can {what} it. Join the case first."
        )


def resolve(
    services: Services,
    resolution: Resolution,
    *,
    team_id: str,
    user_id: str,
    case_number: str | None = None,
    case_id: int | None = None,
) -> Changed:
    """Store the resolution (before any Slack call), then say it in the thread and the room."""
    errors = validate(resolution)
    if errors:
        raise InvalidCase(errors)
    now = services.clock.now()
    visible = require_can_see(
        services, team_id=team_id, user_id=user_id, case_number=case_number, case_id=case_id
    )
    admin = is_admin(services.config, services.slack, user_id)
    with services.uow() as uow:
        case = find_case(uow, team_id=team_id, case_id=visible.case_id)
        _check(uow, services.config, case, user_id, "resolve", admin)
        # A conditional update: of two resolves at once, one wins and the other is told.
        # The whole resolution in that one update: what watches status changes sees all of it.
        stored = {
            "resolution": resolution.resolution.strip(),
            "root_cause": resolution.root_cause.strip() or None,
            "workaround": resolution.workaround.strip() or None,
            "kb_link": resolution.kb_link.strip() or None,
        }
        if not case.is_open or not uow.cases.mark_resolved(
            case_id=case.id, at=now, by=user_id, **stored
        ):
            raise _already_resolved(uow, case, now)
        uow.session.refresh(case)
        case.resolved_at = now  # through the model too: it keeps the case's durations
        record_changed(case, now)  # its vector is made in the background
        uow.cases.add_event(
            case=case,
            kind="resolved",
            at=now,
            actor_id=user_id,
            data={"kb_link": case.kb_link, "incident_channel": case.incident_channel_id},
        )
        text = resolution_text(case, user_id)
        owed = []
        if case.thread_ts:
            owed.append(
                uow.cases.owe_post(
                    case=case,
                    channel_id=case.channel_id,
                    text=text,
                    thread_ts=case.thread_ts,
                    at=now,
                )
            )
        if case.incident_channel_id:
            after = services.config.escalation.archive_after
            owed.append(
                uow.cases.owe_post(
                    case=case,
                    channel_id=case.incident_channel_id,
                    at=now,
                    text=f"{text}\nThis channel will be archived in {duration(after)}.",
                )
            )
        if case.filer_id and case.filer_id != user_id:
            link = case.permalink or f"<#{case.channel_id}>"
            owed.append(
                uow.cases.owe_post(
                    case=case,
                    channel_id=case.filer_id,
                    at=now,
                    text=f":white_check_mark: Your case {escape(case.case_number)} was resolved by "
                    f"<@{user_id}>: {link}",
                )
            )
        uow.commit()
        card = CaseSnapshot.of(case, services.config)
        post_ids = [post.id for post in owed]
    problems = deliver(services, post_ids)
    problem = refresh_card(services, card)
    problems += [problem] if problem else []
    services.timers.case_changed(card.case_id)
    return Changed(
        card.case_id, card.case_number, card.status, card.incident_channel_id, tuple(problems)
    )


def _already_resolved(uow: UnitOfWork, case: Case, now: datetime) -> SwarmError:
    """Why a resolve lost: who resolved the case (just now, or earlier)."""
    uow.session.refresh(case)  # what the winner committed
    number = escape(case.case_number)
    if case.resolved_by and case.resolved_at and now - case.resolved_at < JUST_NOW:
        return SwarmError(f"Case {number} was just resolved by <@{case.resolved_by}>.")
    return SwarmError(f"Case {number} is already resolved.")


def resolution_text(case: Case, user_id: str) -> str:
    """The resolution as posted in the thread and the incident channel."""
    lines = [
        f":white_check_mark: <@{user_id}> resolved case {escape(case.case_number)}: "
        f"{escape(case.resolution or '')}"
    ]
    if case.root_cause:
        lines.append(f"*Root cause:* {escape(case.root_cause)}")
    if case.workaround:
        lines.append(f"*Workaround:* {escape(case.workaround)}")
    if case.kb_link:
        lines.append(f"*Knowledge article:* <{case.kb_link}>")
    return clip("\n".join(lines), 3900, more="(full text on the case record)")


def reopen(
    services: Services,
    *,
    team_id: str,
    user_id: str,
    case_number: str | None = None,
    case_id: int | None = None,
) -> Changed:
    """`/swarm reopen`: back to swarming (or escalated), the incident channel unarchived."""
    now = services.clock.now()
    visible = require_can_see(
        services, team_id=team_id, user_id=user_id, case_number=case_number, case_id=case_id
    )
    admin = is_admin(services.config, services.slack, user_id)
    with services.uow() as uow:
        case = find_case(uow, team_id=team_id, case_id=visible.case_id)
        _check(uow, services.config, case, user_id, "reopen", admin)
        status = CaseStatus.ESCALATED if case.incident_channel_id else CaseStatus.SWARMING
        resolved_at = case.resolved_at
        # A conditional update, like resolve: of two reopens at once, one does it.
        if case.is_open or not uow.cases.mark_reopened(case_id=case.id, status=status):
            raise SwarmError(f"Case {escape(case.case_number)} is not resolved.")
        uow.session.refresh(case)
        case.resolved_at = None  # through the model too: it keeps the case's durations
        uow.cases.add_event(
            case=case,
            kind="reopened",
            at=now,
            actor_id=user_id,
            data={"resolved_at": resolved_at.isoformat() if resolved_at else None},
        )
        restart_resolution_clock(uow, services.config, case, now)
        text = f":leftwards_arrow_with_hook: <@{user_id}> reopened case {escape(case.case_number)}."
        owed = []
        if case.thread_ts:
            owed.append(
                uow.cases.owe_post(
                    case=case,
                    channel_id=case.channel_id,
                    text=text,
                    thread_ts=case.thread_ts,
                    at=now,
                )
            )
        if case.incident_channel_id:
            owed.append(
                uow.cases.owe_post(
                    case=case, channel_id=case.incident_channel_id, text=text, at=now
                )
            )
        uow.commit()
        card = CaseSnapshot.of(case, services.config)
        post_ids = [post.id for post in owed]
    problems: list[str] = []
    if card.incident_channel_id:
        try:
            services.slack.unarchive_channel(card.incident_channel_id)
        except SwarmError as exc:
            problems.append(str(exc))
        else:
            with services.uow() as uow:
                case = uow.cases.get(card.case_id)
                assert case is not None
                if case.incident_archived_at is not None:
                    case.incident_archived_at = None
                    uow.cases.add_event(
                        case=case,
                        kind="incident_unarchived",
                        at=services.clock.now(),
                        data={"channel": card.incident_channel_id},
                    )
                uow.commit()
    problems += deliver(services, post_ids)
    problem = refresh_card(services, card)
    problems += [problem] if problem else []
    services.timers.case_changed(card.case_id)
    return Changed(
        card.case_id, card.case_number, card.status, card.incident_channel_id, tuple(problems)
    )


def archive_resolved_incidents(services: Services) -> int:
    """Archive every incident channel resolved at least `archive_after` ago; return how many."""
    now = services.clock.now()
    with services.uow() as uow:
        due = uow.cases.incidents_to_archive(
            resolved_before=now - services.config.escalation.archive_after
        )
    archived = 0
    for case_id in due:
        with services.uow() as uow:
            case = uow.cases.get(case_id)
            if case is None or case.is_open or case.incident_archived_at is not None:
                continue
            channel_id, number = case.incident_channel_id, case.case_number
        assert channel_id is not None
        try:
            services.slack.archive_channel(channel_id)
        except SwarmError as exc:
            log.warning("case %s: incident channel %s not archived: %s", number, channel_id, exc)
            continue
        with services.uow() as uow:
            case = uow.cases.get(case_id)
            assert case is not None
            reopened = case.is_open
            if not reopened:
                case.incident_archived_at = services.clock.now()
                uow.cases.add_event(
                    case=case,
                    kind="incident_archived",
                    at=services.clock.now(),
                    data={"channel": channel_id},
                )
                uow.commit()
        if reopened:
            # Reopened while this was archiving it: the case needs its room back.
            services.slack.unarchive_channel(channel_id)
            continue
        archived += 1
    return archived
