"""The incident room of an escalated case, built step by step, and the sweep that finishes it.

Every step after `conversations.create` is recorded on the case timeline, so a retry (the same
delivery twice, a second click, a rerun after Slack failed half-way, the `escalations:resume`
sweep after a restart) resumes where the last attempt stopped and never makes a second channel.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from storage.domain import CaseStatus, ParticipantRole
from storage.models import Case, PendingPost
from storage.uow import UnitOfWork
from workflows.announcements import LINK, PERMALINK, THREAD, deliver
from workflows.cases import refresh_card
from workflows.config import SwarmConfig
from workflows.errors import SlackRefused, SlackUnavailable, SwarmError
from workflows.naming import channel_name
from workflows.ports import SlackGateway
from workflows.routing import experts_of, leads_of
from workflows.services import Services
from workflows.snapshot import CaseSnapshot
from workflows.text import case_link, clip, escape

log = logging.getLogger(__name__)

# An escalation in progress is left alone this long before another request may take it over.
LEASE = timedelta(minutes=2)
# How many `-2`, `-3`, ... suffixes to try when a name is taken.
NAME_ATTEMPTS = 20
TOPIC_MAX = 250

# Timeline kinds of the steps of one escalation, in order.
REQUESTED = "escalation_requested"
CREATED = "incident_created"
SUMMARY = "incident_summary_posted"
PINNED = "incident_summary_pinned"
DESCRIBED = "incident_described"
INVITED = "incident_invited"
LINKED = "incident_linked_in_thread"
NOTIFIED = "stakeholders_notified"
ESCALATED = "escalated"
INTERRUPTED = "escalation_interrupted"
STEPS = (REQUESTED, CREATED, SUMMARY, PINNED, DESCRIBED, INVITED, LINKED, NOTIFIED, ESCALATED)

REFUSALS = {
    "restricted_action": "this workspace lets only some members create channels "
    "(a workspace setting); ask an admin to allow the app, or set `escalation.private` "
    "to match what is allowed",
    "invalid_name_specials": "the channel name has characters Slack does not allow "
    "(check `naming.prefix` and `naming.severity_word`)",
    "invalid_name_maxlength": "the channel name is too long",
    "invalid_name_punctuation": "the channel name is only punctuation",
    "invalid_name_required": "the channel name is empty",
}


@dataclass(frozen=True)
class Escalated:
    """What an escalation (or a severity change) did."""

    case_id: int
    case_number: str
    severity: int
    channel_id: str
    channel_name: str
    created: bool = False
    renamed_from: str | None = None
    unchanged: bool = False
    skipped: dict[str, str] = field(default_factory=dict)
    unnotified: dict[str, str] = field(default_factory=dict)
    # A severity asked for while an escalation was running: applied once it completes.
    pending: bool = False


def build(
    services: Services,
    case_id: int,
    user_id: str,
    severity: int,
) -> Escalated:
    """Do each step not yet on the timeline, recording each as it is done.

    The summary is posted and pinned before anyone is invited, so people arrive to it.
    """
    with services.uow() as uow:
        case = uow.cases.get(case_id)
        assert case is not None
        events = uow.cases.events_of(case_id=case_id, kinds=STEPS)
        requested = [e for e in events if e.kind == REQUESTED]
        done = {e.kind: e.data for e in events if e.id > requested[-1].id} if requested else {}
        reason = requested[-1].data.get("reason", "") if requested else ""
        if case.incident_channel_id and case.severity:
            severity = case.severity  # resume what was started; a new severity renames after
        card = CaseSnapshot.of(case, services.config)
        people = [case.filer_id, case.assignee_id, *(p.user_id for p in case.participants)]
        people += leads_of(uow, services.config, team_id=case.team_id, topic_key=case.topic_key)
        people += experts_of(uow, services.config, team_id=case.team_id, topic_key=case.topic_key)
        people = [u for u in dict.fromkeys(people) if u]
        private = services.config.escalation.private or case.confidential
        channel_id, name = case.incident_channel_id, case.incident_channel_name
    created = False
    if channel_id is None:
        channel_id, name = _create(services.slack, services.config, card, severity, private)
        created = True
        with services.uow() as uow:
            case = uow.cases.get(case_id)
            assert case is not None
            case.incident_channel_id = channel_id
            case.incident_channel_name = name
            case.severity = severity
            case.incident_archived_at = None
            uow.cases.add_event(
                case=case,
                kind=CREATED,
                at=services.clock.now(),
                actor_id=user_id,
                data={"channel": channel_id, "name": name, "private": private},
            )
            uow.commit()
    assert name is not None
    if SUMMARY in done:
        summary_ts = done[SUMMARY]["ts"]
    else:
        summary_ts = services.slack.post_message(
            channel_id, summary_text(card, severity, reason, user_id)
        )
        _record(services, case_id, SUMMARY, {"channel": channel_id, "ts": summary_ts})
    if PINNED not in done:
        services.slack.pin(channel_id, summary_ts)
        _record(services, case_id, PINNED, {"channel": channel_id, "ts": summary_ts})
    if DESCRIBED not in done:
        topic = clip(escape(f"Case {card.case_number} (sev{severity}): {card.summary}"), TOPIC_MAX)
        purpose = clip(
            escape(f"Incident room of case {card.case_number}: {card.summary}")
            + (f" · thread: {card.permalink}" if card.permalink else ""),
            TOPIC_MAX,
        )
        services.slack.describe_channel(channel_id, topic=topic, purpose=purpose)
        _record(services, case_id, DESCRIBED, {"channel": channel_id})
    skipped: dict[str, str] = dict(done.get(INVITED, {}).get("skipped", {}))
    if INVITED not in done:
        skipped = services.slack.invite(channel_id, people)
        invited = [u for u in people if u not in skipped]
        with services.uow() as uow:
            case = uow.cases.get(case_id)
            assert case is not None
            now = services.clock.now()
            for user in invited:
                uow.cases.add_participant(
                    case=case, user_id=user, role=ParticipantRole.INVITED, at=now
                )
            uow.cases.add_event(
                case=case,
                kind=INVITED,
                at=now,
                data={"channel": channel_id, "invited": invited, "skipped": skipped},
            )
            uow.commit()
    if LINKED not in done:
        # Owed, so a case whose card is not posted yet gets its link once the card is there;
        # a summary pinned before the card existed gets the original thread's link the same way.
        with services.uow() as uow:
            case = uow.cases.get(case_id)
            assert case is not None
            now = services.clock.now()
            link = f":rotating_light: <@{user_id}> escalated this case to *sev{severity}*: "
            owed = [
                uow.cases.owe_post(
                    case=case,
                    kind=THREAD,
                    channel_id=case.channel_id,
                    text=f"{link}<#{channel_id}>",
                    at=now,
                )
            ]
            if not card.permalink:
                owed.append(
                    uow.cases.owe_post(
                        case=case,
                        kind=LINK,
                        channel_id=channel_id,
                        text=f"Original thread of case {escape(card.case_number)}: {PERMALINK}",
                        at=now,
                    )
                )
            uow.cases.add_event(case=case, kind=LINKED, at=now, data={"channel": channel_id})
            uow.commit()
            post_ids = [post.id for post in owed]
        deliver(services, post_ids)
    unnotified = notify_stakeholders(services, card, severity, channel_id)
    with services.uow() as uow:
        case = uow.cases.get(case_id)
        assert case is not None
        now = services.clock.now()
        case.status = CaseStatus.ESCALATED
        case.escalated_at = case.escalated_at or now
        uow.cases.add_event(
            case=case,
            kind=ESCALATED,
            at=now,
            actor_id=user_id,
            data={"severity": severity, "channel": channel_id, "name": name},
        )
        uow.commit()
        card = CaseSnapshot.of(case, services.config)
    refresh_card(services, card)
    return Escalated(
        case_id,
        card.case_number,
        severity,
        channel_id,
        name,
        created=created,
        skipped=skipped,
        unnotified=unnotified,
    )


def _create(
    slack: SlackGateway, config: SwarmConfig, card: CaseSnapshot, severity: int, private: bool
) -> tuple[str, str]:
    """Create the channel under the first free name: the plain one, then `-2`, `-3`, ..."""
    for n in range(1, NAME_ATTEMPTS + 1):
        name = channel_name(config.naming, card.topic_key, severity, card.case_number, n)
        try:
            return slack.create_channel(name, private=private), name
        except SlackRefused as exc:
            if exc.error == "name_taken":
                continue
            raise refused("create", name, exc) from exc
    first = channel_name(config.naming, card.topic_key, severity, card.case_number)
    raise SwarmError(
        f"Every name from `{first}` to `-{NAME_ATTEMPTS}` is taken "
        "(archived channels count); rename or delete old ones."
    )


def refused(what: str, name: str, exc: SlackRefused) -> SwarmError:
    why = REFUSALS.get(exc.error, "")
    return SwarmError(
        f"Slack refused to {what} the incident channel `#{name}`: `{exc.error}`"
        + (f" ({why})" if why else "")
        + ". Nothing else was changed."
    )


def stakeholder_note(card: CaseSnapshot, severity: int, channel_id: str) -> str:
    """What a severity's stakeholder channels are told."""
    link = case_link(card.case_number, card.case_url)
    return (
        f":rotating_light: Case {link} escalated to *sev{severity}*: "
        f"{escape(clip(card.summary, 150))} — <#{channel_id}>"
    )


def owe_stakeholder_notes(
    uow: UnitOfWork,
    services: Services,
    case: Case,
    card: CaseSnapshot,
    severity: int,
    channel_id: str,
) -> list[PendingPost]:
    """Owe a note to each stakeholder channel of the severity not yet told (in `uow`)."""
    targets = list(services.config.escalation.notify.get(f"sev{severity}", []))  # type: ignore[call-overload]
    told = {
        e.data.get("stakeholder")
        for e in uow.cases.events_of(case_id=case.id, kinds=[NOTIFIED])
        if e.data.get("channel") == channel_id and e.data.get("severity") == severity
    }
    now = services.clock.now()
    owed = []
    for target in targets:
        if target in told:
            continue
        owed.append(
            uow.cases.owe_post(
                case=case,
                channel_id=target,
                text=stakeholder_note(card, severity, channel_id),
                at=now,
            )
        )
        uow.cases.add_event(
            case=case,
            kind=NOTIFIED,
            at=now,
            data={"channel": channel_id, "severity": severity, "stakeholder": target},
        )
    return owed


def notify_stakeholders(
    services: Services,
    card: CaseSnapshot,
    severity: int,
    channel_id: str,
) -> dict[str, str]:
    """Tell the severity's stakeholder channels, each once; return those Slack refused."""
    targets = list(services.config.escalation.notify.get(f"sev{severity}", []))  # type: ignore[call-overload]
    with services.uow() as uow:
        told = {
            e.data.get("stakeholder")
            for e in uow.cases.events_of(case_id=card.case_id, kinds=[NOTIFIED])
            if e.data.get("channel") == channel_id and e.data.get("severity") == severity
        }
    failed: dict[str, str] = {}
    text = stakeholder_note(card, severity, channel_id)
    for target in targets:
        if target in told:
            continue
        try:
            services.slack.post_message(target, text)
        except SlackRefused as exc:
            log.warning("case %s: stakeholder %s not told: %s", card.case_number, target, exc)
            failed[target] = exc.error
            continue
        _record(
            services,
            card.case_id,
            NOTIFIED,
            {"channel": channel_id, "severity": severity, "stakeholder": target},
        )
    return failed


def summary_text(card: CaseSnapshot, severity: int, reason: str, user_id: str) -> str:
    """The pinned case summary of an incident channel."""
    link = case_link(card.case_number, card.case_url)
    lines = [
        f":rotating_light: *Case {link} — sev{severity}*: {escape(card.summary)}",
        f"Urgency {card.urgency.value} · {escape(card.topic_label)}"
        + (f" · {escape(card.region)}" if card.region else "")
        + (f" · filed by <@{card.filer_id}>" if card.filer_id else " · from the ticketing system")
        + (f" · assigned to <@{card.assignee_id}>" if card.assignee_id else ""),
        f"Escalated by <@{user_id}>" + (f": {escape(reason)}" if reason else ""),
    ]
    if card.customer:
        lines.append(f"Customer: {escape(card.customer)}")
    if card.details:
        lines.append(clip(f">>> {escape(card.details)}", 2000, more="(full details in the thread)"))
    lines.append(f"Original thread: {card.permalink}" if card.permalink else "")
    return clip("\n".join(line for line in lines if line), 3000)


def _record(services: Services, case_id: int, kind: str, data: dict) -> None:
    with services.uow() as uow:
        case = uow.cases.get(case_id)
        assert case is not None
        uow.cases.add_event(case=case, kind=kind, at=services.clock.now(), data=data)
        uow.commit()


def interrupted(services: Services, case_id: int, why: str, *, retry: bool) -> None:
    """Note why an escalation stopped; `retry` when Slack was unavailable (not a refusal)."""
    _record(services, case_id, INTERRUPTED, {"error": why[:500], "retry": retry})


def resume_interrupted(
    services: Services, then: Callable[[Services, int], object] | None = None
) -> int:
    """Finish escalations that Slack stopped half-way, also after a restart; return how many.

    Resumed: interruptions by an unavailable Slack, and escalations whose lease went stale
    (the process carrying them out died). Refusals wait for a person.
    """
    with services.uow() as uow:
        candidates = uow.cases.interrupted_escalations(kind=INTERRUPTED)
    finished = 0
    for case_id in candidates:
        now = services.clock.now()
        with services.uow() as uow:
            events = uow.cases.events_of(case_id=case_id, kinds=(REQUESTED, ESCALATED, INTERRUPTED))
            last = events[-1] if events else None
            requested = [e for e in events if e.kind == REQUESTED]
            case = uow.cases.get(case_id)
            died = (
                last is not None
                and last.kind == REQUESTED
                and case is not None
                and (case.escalation_claimed_at is not None)
            )
            slack_failed = last is not None and last.kind == INTERRUPTED and last.data.get("retry")
            if not (died or slack_failed):
                continue
            if not requested or not uow.cases.claim_escalation(
                case_id=case_id, now=now, stale_before=now - LEASE
            ):
                continue
            uow.commit()
            user_id = requested[-1].actor_id or ""
            severity = int(requested[-1].data.get("severity") or 0)
        try:
            result = build(services, case_id, user_id, severity)
        except SlackUnavailable as exc:
            interrupted(services, case_id, str(exc), retry=True)
            continue
        except SwarmError as exc:
            interrupted(services, case_id, str(exc), retry=False)
            continue
        finally:
            release(services, case_id)
        finished += 1
        if then is not None:  # what was asked for meanwhile (a new severity) comes after
            then(services, case_id)
        if user_id:
            try:
                services.slack.tell(
                    user_id,
                    f"Escalation of case {escape(result.case_number)} is complete: "
                    f"<#{result.channel_id}>",
                )
            except SwarmError as exc:
                log.info("could not tell %s that escalation finished: %s", user_id, exc)
    return finished


def release(services: Services, case_id: int) -> None:
    with services.uow() as uow:
        case = uow.cases.get(case_id)
        if case is not None:
            case.escalation_claimed_at = None
            uow.commit()
