"""Escalation: a case gets its own severity-named incident channel with the right people in it.

Every step after `conversations.create` is recorded on the case timeline, so a retry (the same
delivery twice, a second click, a rerun after Slack failed half-way) resumes where the last
attempt stopped and never makes a second channel.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from storage.domain import CaseStatus, ParticipantRole, Urgency
from storage.models import Case
from storage.uow import UnitOfWork, UnitOfWorkFactory
from workflows.cases import find_case, refresh_card
from workflows.clock import Clock
from workflows.config import SwarmConfig
from workflows.errors import NotALead, SlackRefused, SlackUnavailable, SwarmError
from workflows.naming import channel_name
from workflows.ports import CaseCard, SlackGateway
from workflows.routing import experts_of, is_lead, leads_of
from workflows.text import clip, escape, storable

log = logging.getLogger(__name__)

SEVERITY_BY_URGENCY = {Urgency.CRITICAL: 1, Urgency.HIGH: 2, Urgency.MEDIUM: 3, Urgency.LOW: 4}
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


class EscalationIncomplete(SwarmError):
    """Slack stopped answering half-way; what was done is kept and a retry resumes."""


def default_severity(urgency: Urgency) -> int:
    """critical 1, high 2, medium 3, low 4."""
    return SEVERITY_BY_URGENCY[Urgency(urgency)]


def require_lead(
    uow: UnitOfWork, config: SwarmConfig, slack: SlackGateway, case: Case, user_id: str, what: str
) -> None:
    """NotALead unless the user leads the case's topic (or is an admin)."""
    if not is_lead(
        uow, config, slack, team_id=case.team_id, user_id=user_id, topic_key=case.topic_key
    ):
        raise NotALead(what, case.topic_key)


def escalate(
    uow_factory: UnitOfWorkFactory,
    config: SwarmConfig,
    slack: SlackGateway,
    clock: Clock,
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
    with uow_factory() as uow:
        case = find_case(uow, team_id=team_id, case_number=case_number, case_id=case_id)
        require_lead(uow, config, slack, case, user_id, "escalate cases")
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
            uow_factory,
            config,
            slack,
            clock,
            team_id=team_id,
            user_id=user_id,
            case_id=case_id,
            severity=severity,
        )
    now = clock.now()
    with uow_factory() as uow:
        if not uow.cases.claim_escalation(case_id=case_id, now=now, stale_before=now - LEASE):
            raise SwarmError(
                f"Case {escape(number)} is being escalated right now; "
                "its incident channel will be linked in the thread."
            )
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
        uow.commit()
    try:
        result = _carry_out(uow_factory, config, slack, clock, case_id, user_id, severity)
    except SlackUnavailable as exc:
        _interrupted(uow_factory, clock, case_id, str(exc), retry=True)
        raise EscalationIncomplete(
            f"Escalating case {escape(number)} stopped half-way: {exc}. What was done is kept "
            f"and finished automatically when Slack answers again (or run "
            f"`/swarm escalate {number}` again); no second channel is made."
        ) from exc
    except SwarmError as exc:
        _interrupted(uow_factory, clock, case_id, str(exc), retry=False)
        raise
    finally:
        _release(uow_factory, case_id)
    if result.severity != severity:
        # A retry asked for another severity than the attempt it finished.
        return change_severity(
            uow_factory,
            config,
            slack,
            clock,
            team_id=team_id,
            user_id=user_id,
            case_id=case_id,
            severity=severity,
        )
    return result


def _carry_out(
    uow_factory: UnitOfWorkFactory,
    config: SwarmConfig,
    slack: SlackGateway,
    clock: Clock,
    case_id: int,
    user_id: str,
    severity: int,
) -> Escalated:
    """Do each step not yet on the timeline, recording each as it is done.

    The summary is posted and pinned before anyone is invited, so people arrive to it.
    """
    with uow_factory() as uow:
        case = uow.cases.get(case_id)
        assert case is not None
        events = uow.cases.events_of(case_id=case_id, kinds=STEPS)
        requested = [e for e in events if e.kind == REQUESTED]
        done = {e.kind: e.data for e in events if e.id > requested[-1].id} if requested else {}
        reason = requested[-1].data.get("reason", "") if requested else ""
        if case.incident_channel_id and case.severity:
            severity = case.severity  # resume what was started; a new severity renames after
        card = CaseCard.of(case, config)
        people = [case.filer_id, case.assignee_id, *(p.user_id for p in case.participants)]
        people += leads_of(uow, config, team_id=case.team_id, topic_key=case.topic_key)
        people += experts_of(uow, config, team_id=case.team_id, topic_key=case.topic_key)
        people = [u for u in dict.fromkeys(people) if u]
        private = config.escalation.private or case.confidential
        channel_id, name = case.incident_channel_id, case.incident_channel_name
    created = False
    if channel_id is None:
        channel_id, name = _create(slack, config, card, severity, private)
        created = True
        with uow_factory() as uow:
            case = uow.cases.get(case_id)
            assert case is not None
            case.incident_channel_id = channel_id
            case.incident_channel_name = name
            case.severity = severity
            case.incident_archived_at = None
            uow.cases.add_event(
                case=case,
                kind=CREATED,
                at=clock.now(),
                actor_id=user_id,
                data={"channel": channel_id, "name": name, "private": private},
            )
            uow.commit()
    assert name is not None
    if SUMMARY in done:
        summary_ts = done[SUMMARY]["ts"]
    else:
        summary_ts = slack.post_message(channel_id, summary_text(card, severity, reason, user_id))
        _record(uow_factory, clock, case_id, SUMMARY, {"channel": channel_id, "ts": summary_ts})
    if PINNED not in done:
        slack.pin(channel_id, summary_ts)
        _record(uow_factory, clock, case_id, PINNED, {"channel": channel_id, "ts": summary_ts})
    if DESCRIBED not in done:
        topic = clip(escape(f"Case {card.case_number} (sev{severity}): {card.summary}"), TOPIC_MAX)
        purpose = clip(
            escape(f"Incident room of case {card.case_number}: {card.summary}")
            + (f" · thread: {card.permalink}" if card.permalink else ""),
            TOPIC_MAX,
        )
        slack.describe_channel(channel_id, topic=topic, purpose=purpose)
        _record(uow_factory, clock, case_id, DESCRIBED, {"channel": channel_id})
    skipped: dict[str, str] = dict(done.get(INVITED, {}).get("skipped", {}))
    if INVITED not in done:
        skipped = slack.invite(channel_id, people)
        invited = [u for u in people if u not in skipped]
        with uow_factory() as uow:
            case = uow.cases.get(case_id)
            assert case is not None
            now = clock.now()
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
    if LINKED not in done and card.thread_ts:
        slack.post_in_thread(
            card.channel_id,
            card.thread_ts,
            f":rotating_light: <@{user_id}> escalated this case to *sev{severity}*: "
            f"<#{channel_id}>",
        )
        _record(uow_factory, clock, case_id, LINKED, {"channel": channel_id})
    unnotified = _notify_stakeholders(uow_factory, config, slack, clock, card, severity, channel_id)
    with uow_factory() as uow:
        case = uow.cases.get(case_id)
        assert case is not None
        now = clock.now()
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
        card = CaseCard.of(case, config)
    refresh_card(slack, card)
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
    slack: SlackGateway, config: SwarmConfig, card: CaseCard, severity: int, private: bool
) -> tuple[str, str]:
    """Create the channel under the first free name: the plain one, then `-2`, `-3`, ..."""
    for n in range(1, NAME_ATTEMPTS + 1):
        name = channel_name(config.naming, card.topic_key, severity, card.case_number, n)
        try:
            return slack.create_channel(name, private=private), name
        except SlackRefused as exc:
            if exc.error == "name_taken":
                continue
            raise _refused("create", name, exc) from exc
    first = channel_name(config.naming, card.topic_key, severity, card.case_number)
    raise SwarmError(
        f"Every name from `{first}` to `-{NAME_ATTEMPTS}` is taken "
        "(archived channels count); rename or delete old ones."
    )


def _refused(what: str, name: str, exc: SlackRefused) -> SwarmError:
    why = REFUSALS.get(exc.error, "")
    return SwarmError(
        f"Slack refused to {what} the incident channel `#{name}`: `{exc.error}`"
        + (f" ({why})" if why else "")
        + ". Nothing else was changed."
    )


def _notify_stakeholders(
    uow_factory: UnitOfWorkFactory,
    config: SwarmConfig,
    slack: SlackGateway,
    clock: Clock,
    card: CaseCard,
    severity: int,
    channel_id: str,
) -> dict[str, str]:
    """Tell the severity's stakeholder channels, each once; return those Slack refused."""
    targets = list(config.escalation.notify.get(f"sev{severity}", []))  # type: ignore[call-overload]
    with uow_factory() as uow:
        told = {
            e.data.get("stakeholder")
            for e in uow.cases.events_of(case_id=card.case_id, kinds=[NOTIFIED])
            if e.data.get("channel") == channel_id and e.data.get("severity") == severity
        }
    failed: dict[str, str] = {}
    text = (
        f":rotating_light: Case {_case_ref(card)} escalated to *sev{severity}*: "
        f"{escape(clip(card.summary, 150))} — <#{channel_id}>"
    )
    for target in targets:
        if target in told:
            continue
        try:
            slack.post_message(target, text)
        except SlackRefused as exc:
            log.warning("case %s: stakeholder %s not told: %s", card.case_number, target, exc)
            failed[target] = exc.error
            continue
        _record(
            uow_factory,
            clock,
            card.case_id,
            NOTIFIED,
            {"channel": channel_id, "severity": severity, "stakeholder": target},
        )
    return failed


def change_severity(
    uow_factory: UnitOfWorkFactory,
    config: SwarmConfig,
    slack: SlackGateway,
    clock: Clock,
    *,
    team_id: str,
    user_id: str,
    severity: int,
    case_number: str | None = None,
    case_id: int | None = None,
) -> Escalated:
    """`/swarm sev`: lead only; renames the incident channel and says so in it and the thread."""
    with uow_factory() as uow:
        case = find_case(uow, team_id=team_id, case_number=case_number, case_id=case_id)
        require_lead(uow, config, slack, case, user_id, "change the severity")
        number = case.case_number
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
        card = CaseCard.of(case, config)
        case_id, channel_id, old_name, old_severity = (
            case.id,
            case.incident_channel_id,
            case.incident_channel_name,
            case.severity,
        )
    name = _rename(slack, config, card, severity, channel_id, old_name)
    with uow_factory() as uow:
        case = uow.cases.get(case_id)
        assert case is not None
        case.severity = severity
        case.incident_channel_name = name
        uow.cases.add_event(
            case=case,
            kind="severity_changed",
            at=clock.now(),
            actor_id=user_id,
            data={"from": old_severity, "to": severity, "channel": channel_id, "name": name},
        )
        uow.commit()
        card = CaseCard.of(case, config)
    text = (
        f":rotating_light: <@{user_id}> changed the severity of case {_case_ref(card)} "
        f"from sev{old_severity} to *sev{severity}*; the incident channel is now <#{channel_id}>."
    )
    slack.post_message(channel_id, text)
    if card.thread_ts:
        slack.post_in_thread(card.channel_id, card.thread_ts, text)
    _notify_stakeholders(uow_factory, config, slack, clock, card, severity, channel_id)
    refresh_card(slack, card)
    return Escalated(case_id, number, severity, channel_id, name, renamed_from=old_name)


def _rename(
    slack: SlackGateway,
    config: SwarmConfig,
    card: CaseCard,
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
            raise _refused("rename", old_name, exc) from exc
    raise SwarmError(f"No free name for `#{old_name}` at sev{severity}; nothing was renamed.")


def archive_resolved_incidents(
    uow_factory: UnitOfWorkFactory, config: SwarmConfig, slack: SlackGateway, clock: Clock
) -> int:
    """Archive every incident channel resolved at least `archive_after` ago; return how many."""
    now = clock.now()
    with uow_factory() as uow:
        due = uow.cases.incidents_to_archive(resolved_before=now - config.escalation.archive_after)
    archived = 0
    for case_id in due:
        with uow_factory() as uow:
            case = uow.cases.get(case_id)
            if case is None or case.is_open or case.incident_archived_at is not None:
                continue
            channel_id, number = case.incident_channel_id, case.case_number
        assert channel_id is not None
        try:
            slack.archive_channel(channel_id)
        except SwarmError as exc:
            log.warning("case %s: incident channel %s not archived: %s", number, channel_id, exc)
            continue
        with uow_factory() as uow:
            case = uow.cases.get(case_id)
            assert case is not None
            reopened = case.is_open
            if not reopened:
                case.incident_archived_at = clock.now()
                uow.cases.add_event(
                    case=case,
                    kind="incident_archived",
                    at=clock.now(),
                    data={"channel": channel_id},
                )
                uow.commit()
        if reopened:
            # Reopened while this was archiving it: the case needs its room back.
            slack.unarchive_channel(channel_id)
            continue
        archived += 1
    return archived


def summary_text(card: CaseCard, severity: int, reason: str, user_id: str) -> str:
    """The pinned case summary of an incident channel."""
    lines = [
        f":rotating_light: *Case {_case_ref(card)} — sev{severity}*: {escape(card.summary)}",
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


def _case_ref(card: CaseCard) -> str:
    number = escape(card.case_number)
    return f"<{card.case_url}|{number}>" if card.case_url else number


def _record(
    uow_factory: UnitOfWorkFactory, clock: Clock, case_id: int, kind: str, data: dict
) -> None:
    with uow_factory() as uow:
        case = uow.cases.get(case_id)
        assert case is not None
        uow.cases.add_event(case=case, kind=kind, at=clock.now(), data=data)
        uow.commit()


def _interrupted(
    uow_factory: UnitOfWorkFactory, clock: Clock, case_id: int, why: str, *, retry: bool
) -> None:
    """Note why an escalation stopped; `retry` when Slack was unavailable (not a refusal)."""
    _record(uow_factory, clock, case_id, INTERRUPTED, {"error": why[:500], "retry": retry})


def resume_interrupted(
    uow_factory: UnitOfWorkFactory, config: SwarmConfig, slack: SlackGateway, clock: Clock
) -> int:
    """Finish escalations that Slack stopped half-way, also after a restart; return how many.

    Resumed: interruptions by an unavailable Slack, and escalations whose lease went stale
    (the process carrying them out died). Refusals wait for a person.
    """
    with uow_factory() as uow:
        candidates = uow.cases.interrupted_escalations(kind=INTERRUPTED)
    finished = 0
    for case_id in candidates:
        now = clock.now()
        with uow_factory() as uow:
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
            result = _carry_out(uow_factory, config, slack, clock, case_id, user_id, severity)
        except SlackUnavailable as exc:
            _interrupted(uow_factory, clock, case_id, str(exc), retry=True)
            continue
        except SwarmError as exc:
            _interrupted(uow_factory, clock, case_id, str(exc), retry=False)
            continue
        finally:
            _release(uow_factory, case_id)
        finished += 1
        if user_id:
            try:
                slack.tell(
                    user_id,
                    f"Escalation of case {escape(result.case_number)} is complete: "
                    f"<#{result.channel_id}>",
                )
            except SwarmError as exc:
                log.info("could not tell %s that escalation finished: %s", user_id, exc)
    return finished


def _release(uow_factory: UnitOfWorkFactory, case_id: int) -> None:
    with uow_factory() as uow:
        case = uow.cases.get(case_id)
        if case is not None:
            case.escalation_claimed_at = None
            uow.commit()
