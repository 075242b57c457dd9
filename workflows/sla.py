"""SLA: deadlines per urgency, reminders before breach, alerts at breach, nudges and digests."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any, Protocol

from storage.domain import CaseStatus, Urgency
from storage.uow import UnitOfWork
from workflows.access import require_can_see
from workflows.announcements import CARD, THREAD, deliver
from workflows.config import SwarmConfig
from workflows.errors import CaseNotFound, NotALead, SlackUnavailable, SwarmError
from workflows.routing import channel_for, is_admin, is_lead, leads_of
from workflows.services import Services
from workflows.snapshot import CaseSnapshot
from workflows.text import case_link, duration, escape

log = logging.getLogger(__name__)

# Remind in the thread when this share of a target has passed.
REMIND_AT = 0.8

FIRST_RESPONSE_REMINDER = "first-response-reminder"
FIRST_RESPONSE = "first-response"
RESOLUTION_REMINDER = "resolution-reminder"
RESOLUTION = "resolution"
KINDS = (FIRST_RESPONSE_REMINDER, FIRST_RESPONSE, RESOLUTION_REMINDER, RESOLUTION)

# The case column each timer sets when it fires (once: whoever sets it sends).
MARK = {
    FIRST_RESPONSE_REMINDER: "first_response_reminded_at",
    FIRST_RESPONSE: "first_response_breached_at",
    RESOLUTION_REMINDER: "resolution_reminded_at",
    RESOLUTION: "resolution_breached_at",
}
# Timeline events the bot writes itself: they are not activity of the swarm.
OWN_EVENTS = ("sla_reminded", "sla_breached", "stale_nudged", "card_posted", "card_failed")


class TimedCase(Protocol):
    """The case fields timers are computed from (a Case, or a row of them)."""

    id: int
    urgency: Urgency | str
    status: CaseStatus | str
    first_response_due: datetime | None
    resolution_due: datetime | None
    first_response_at: datetime | None
    first_response_reminded_at: datetime | None
    resolution_reminded_at: datetime | None
    first_response_breached_at: datetime | None
    resolution_breached_at: datetime | None


@dataclass(frozen=True)
class Timer:
    """One pending SLA timer of a case."""

    case_id: int
    kind: str
    due: datetime

    @property
    def job_id(self) -> str:
        return job_id(self.case_id, self.kind)


def job_id(case_id: int, kind: str) -> str:
    """The stable scheduler id of a case's timer: re-arming replaces, never duplicates."""
    return f"sla:{case_id}:{kind}"


def parse_job_id(value: str) -> tuple[int, str] | None:
    """(case id, kind) of an SLA timer's job id, or None for other jobs."""
    parts = value.split(":")
    if len(parts) != 3 or parts[0] != "sla" or not parts[1].isdigit() or parts[2] not in KINDS:
        return None
    return int(parts[1]), parts[2]


def timers_of(case: TimedCase, config: SwarmConfig) -> list[Timer]:
    """The timers a case needs now: none once resolved, none for what is done or breached."""
    if str(case.status) == CaseStatus.RESOLVED:
        return []
    target = config.sla.target(str(case.urgency))
    timers: list[Timer] = []
    due = case.first_response_due
    if due is not None and case.first_response_at is None and not case.first_response_breached_at:
        if case.first_response_reminded_at is None:
            lead = target.first_response * (1 - REMIND_AT)
            timers.append(Timer(case.id, FIRST_RESPONSE_REMINDER, due - lead))
        timers.append(Timer(case.id, FIRST_RESPONSE, due))
    due = case.resolution_due
    if due is not None and not case.resolution_breached_at:
        if case.resolution_reminded_at is None:
            lead = target.resolution * (1 - REMIND_AT)
            timers.append(Timer(case.id, RESOLUTION_REMINDER, due - lead))
        timers.append(Timer(case.id, RESOLUTION, due))
    return timers


# -- urgency ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class UrgencyChanged:
    case_number: str
    previous: str
    urgency: str
    first_response_due: datetime | None
    resolution_due: datetime


def change_urgency(
    services: Services,
    *,
    team_id: str,
    actor_id: str,
    case_number: str,
    urgency: str,
) -> UrgencyChanged:
    """Set a case's urgency (leads and the filer) and move its SLA deadlines with it."""
    if urgency not in {u.value for u in Urgency}:
        raise SwarmError(f"`{escape(urgency)}` is not an urgency (low, medium, high, critical).")
    visible = require_can_see(services, team_id=team_id, user_id=actor_id, case_number=case_number)
    now = services.clock.now()
    admin = is_admin(services.config, services.slack, actor_id)
    with services.uow() as uow:
        case = uow.cases.get(visible.case_id)
        if case is None:
            raise CaseNotFound(case_number)
        if actor_id != case.filer_id and not is_lead(
            uow,
            services.config,
            admin=admin,
            team_id=team_id,
            user_id=actor_id,
            topic_key=case.topic_key,
        ):
            raise NotALead("change the urgency", case.topic_key)
        if not case.is_open:
            raise SwarmError(f"Case {escape(case.case_number)} is resolved; reopen it first.")
        previous = str(case.urgency)
        target = services.config.sla.target(urgency)
        case.urgency = Urgency(urgency)
        # Targets count from filing; a case already answered keeps its first response.
        if case.first_response_at is None and case.first_response_breached_at is None:
            case.first_response_due = case.created_at + target.first_response
            case.first_response_reminded_at = None
        if case.resolution_breached_at is None:
            case.resolution_due = case.created_at + target.resolution
            case.resolution_reminded_at = None
        uow.cases.add_event(
            case=case,
            kind="urgency_changed",
            at=now,
            actor_id=actor_id,
            data={"from": previous, "to": urgency},
        )
        uow.commit()
        changed = UrgencyChanged(
            case.case_number,
            previous,
            urgency,
            None if case.first_response_at else case.first_response_due,
            case.resolution_due,  # type: ignore[arg-type]
        )
        card = CaseSnapshot.of(case, services.config)
        case_id = case.id
    services.timers.case_changed(case_id)
    try:
        services.slack.update_case_card(card)
    except SwarmError as exc:
        log.warning("case %s: card not updated after urgency change: %s", card.case_number, exc)
    return changed


def restart_resolution_clock(
    uow: UnitOfWork, config: SwarmConfig, case: Any, now: datetime
) -> None:
    """On reopen: a fresh resolution target from now (the caller commits, then case_changed)."""
    target = config.sla.target(str(case.urgency))
    case.resolution_due = now + target.resolution
    case.resolution_reminded_at = None
    case.resolution_breached_at = None
    case.stale_nudged_at = None


# -- timers firing ---------------------------------------------------------------------------
def fire_timer(
    services: Services,
    case_id: int,
    kind: str,
) -> bool:
    """Remind or alert for one timer if the case still needs it; True when this call sent it."""
    now = services.clock.now()
    with services.uow() as uow:
        case = uow.cases.get(case_id)
        if case is None:
            return False
        timer = next((t for t in timers_of(case, services.config) if t.kind == kind), None)
        if timer is None or timer.due > now:
            return False  # handled meanwhile, or moved later (its re-armed job will come)
        if kind in (FIRST_RESPONSE_REMINDER, RESOLUTION_REMINDER) and _due_of(case, kind) <= now:
            return False  # too late to warn (the bot was down): the breach alert says it all
        if not uow.schedule.claim_mark(case_id=case_id, column=MARK[kind], now=now):
            return False  # another process sent it
        uow.session.refresh(case)
        target_name = "first response" if kind.startswith("first-response") else "resolution"
        target = services.config.sla.target(str(case.urgency))
        length = target.first_response if target_name == "first response" else target.resolution
        breach = kind in (FIRST_RESPONSE, RESOLUTION)
        uow.cases.add_event(
            case=case,
            kind="sla_breached" if breach else "sla_reminded",
            at=now,
            data={"target": target_name, "due": timer.due.isoformat(), "job": timer.job_id},
        )
        leads = leads_of(uow, services.config, team_id=case.team_id, topic_key=case.topic_key)
        card = CaseSnapshot.of(case, services.config)
        due = timer.due if breach else _due_of(case, kind)
        # Owed with the mark, in one transaction: each message is sent exactly once, each on
        # its own (one lead Slack refuses does not cost the others their alert).
        if breach:
            text = _alert_text(card, target_name, length, now - due)
            owed = [
                uow.cases.owe_post(case=case, channel_id=lead, text=text, at=now) for lead in leads
            ]
            if not leads:  # a topic nobody leads: the swarm itself is told
                owed.append(
                    uow.cases.owe_post(
                        case=case, kind=THREAD, channel_id=case.channel_id, text=text, at=now
                    )
                )
            owed.append(
                uow.cases.owe_post(
                    case=case, kind=CARD, channel_id=case.channel_id, text="", at=now
                )
            )
        elif case.thread_ts:
            text = _reminder_text(card, target_name, length, due - now)
            owed = [
                uow.cases.owe_post(
                    case=case, kind=THREAD, channel_id=case.channel_id, text=text, at=now
                )
            ]
        else:
            owed = []
        uow.commit()
        post_ids = [post.id for post in owed]
    for problem in deliver(services, post_ids):
        log.warning("case %s: %s not all sent yet: %s", card.case_number, kind, problem)
    return True


def _due_of(case: Any, kind: str) -> datetime:
    return case.first_response_due if kind == FIRST_RESPONSE_REMINDER else case.resolution_due


def _reminder_text(card: CaseSnapshot, target: str, length: timedelta, left: timedelta) -> str:
    if target == "first response":
        return (
            f":hourglass_flowing_sand: No reply yet to case {escape(card.case_number)}: the "
            f"{target} SLA ({duration(length)}, {card.urgency}) is breached in {duration(left)}. "
            "Can someone take it?"
        )
    who = f"<@{card.assignee_id}>" if card.assignee_id else "Swarm"
    return (
        f":hourglass_flowing_sand: {who}, case {escape(card.case_number)} must be resolved "
        f"within {duration(left)} to meet its {target} SLA "
        f"({duration(length)}, {card.urgency})."
    )


def _alert_text(card: CaseSnapshot, target: str, length: timedelta, late: timedelta) -> str:
    late_text = f" ({duration(late)} ago)" if late >= timedelta(minutes=1) else ""
    link = case_link(card.case_number, card.permalink)
    return (
        f":rotating_light: Case {link} ({card.urgency}, {escape(card.topic_label)}) "
        f"breached its {target} SLA of {duration(length)}{late_text}: {escape(card.summary)}"
    )


# -- quiet swarms ----------------------------------------------------------------------------
def nudge_stale(services: Services) -> int:
    """Nudge every open case thread quiet for `reminders.stale_after`, once per quiet spell."""
    now = services.clock.now()
    quiet = services.config.reminders.stale_after
    with services.uow() as uow:
        threads = uow.schedule.quiet_threads(ignore_events=OWN_EVENTS)
    nudged = 0
    for case_id, last_activity, nudged_at in threads:
        since = max(last_activity, nudged_at) if nudged_at else last_activity
        if now - since < quiet:
            continue
        with services.uow() as uow:
            if not uow.schedule.claim_mark(
                case_id=case_id, column="stale_nudged_at", now=now, expected=nudged_at
            ):
                continue
            case = uow.cases.get(case_id)
            assert case is not None
            uow.session.refresh(case)
            uow.cases.add_event(
                case=case, kind="stale_nudged", at=now, data={"quiet_since": since.isoformat()}
            )
            leads = leads_of(uow, services.config, team_id=case.team_id, topic_key=case.topic_key)
            card = CaseSnapshot.of(case, services.config)
            uow.commit()
        who = [card.assignee_id] if card.assignee_id else leads
        mentions = " ".join(f"<@{u}>" for u in who) or "Swarm"
        text = (
            f":zzz: {mentions}: case {escape(card.case_number)} has been quiet for "
            f"{duration(now - last_activity)} and is still {card.status}. "
            "Where does it stand?"
        )
        assert card.thread_ts is not None
        try:
            services.slack.post_in_thread(card.channel_id, card.thread_ts, text)
        except SlackUnavailable as exc:
            log.warning("case %s: stale nudge not sent yet: %s", card.case_number, exc)
            with services.uow() as uow:
                uow.schedule.claim_mark(
                    case_id=case_id, column="stale_nudged_at", now=nudged_at, expected=now
                )
                uow.commit()
            continue
        except Exception:
            log.exception("case %s: stale nudge could not be sent", card.case_number)
            continue
        nudged += 1
    return nudged


# -- daily digest ----------------------------------------------------------------------------
def swarm_channels(uow: UnitOfWork, config: SwarmConfig, *, team_id: str) -> list[str]:
    """Every channel a case can be routed to in a workspace (config and `/swarm route`)."""
    channels: dict[str, None] = {}
    for topic in config.topics:
        channels[channel_for(uow, config, team_id=team_id, topic_key=topic.key)] = None
        for region in topic.regions:
            channel = channel_for(uow, config, team_id=team_id, topic_key=topic.key, region=region)
            channels[channel] = None
    return [c for c in channels if not c.startswith("#")]


def every_swarm_channel(services: Services) -> list[tuple[str, str]]:
    """(workspace, channel) for every swarm channel the bot knows, read without a write lock."""
    with services.uow.read() as uow:
        return [
            (team, channel)
            for team in uow.schedule.team_ids()
            for channel in swarm_channels(uow, services.config, team_id=team)
        ]


def digest_text(
    open_cases: Sequence[Any], resolved_yesterday: int, now: datetime, *, show: int = 10
) -> str:
    """The daily digest of one swarm channel."""
    lines = ["*Daily swarm digest*"]
    if open_cases:
        oldest = open_cases[0]
        wait = duration(now - oldest.created_at)
        lines.append(
            f"• Open queue: {len(open_cases)} case(s); oldest waiting {wait}"
            f" (case {escape(oldest.case_number)})"
        )
    else:
        lines.append("• Open queue: empty")
    breached = [c for c in open_cases if c.first_response_breached_at or c.resolution_breached_at]
    if breached:
        names = ", ".join(escape(c.case_number) for c in breached[:show])
        more = f" and {len(breached) - show} more" if len(breached) > show else ""
        lines.append(f"• SLA breaches: {len(breached)} ({names}{more})")
    else:
        lines.append("• SLA breaches: none")
    lines.append(f"• Resolved yesterday: {resolved_yesterday}")
    return "\n".join(lines)


def send_digests(services: Services) -> int:
    """Post today's digest to each swarm channel that has not had it; return how many."""
    now = services.clock.now()
    today = datetime.combine(now.date(), time(0), tzinfo=now.tzinfo)
    sent = 0
    for team, channel in every_swarm_channel(services):
        key = f"digest:{team}:{channel}:{today.date().isoformat()}"
        with services.uow() as uow:
            if not uow.schedule.claim_run(key=key, at=now):
                continue
            open_cases, resolved = uow.schedule.digest_figures(
                team_id=team, channel_id=channel, since=today - timedelta(days=1), until=today
            )
            text = digest_text(open_cases, resolved, now)
            uow.commit()
        try:
            services.slack.post_message(channel, text)
        except Exception as exc:  # one channel refusing must not cost the others their digest
            log.warning("digest for %s not posted: %s", channel, exc)
            with services.uow() as uow:
                uow.schedule.forget_run(key=key)
                uow.commit()
            continue
        sent += 1
    return sent
