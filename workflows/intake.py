"""Intake: validate a filed case, store it, then post its card in the swarm channel."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError

from storage.domain import CaseStatus, ParticipantRole, Urgency
from storage.models import Case
from storage.uow import UnitOfWork
from workflows.access import can_see, channels_of
from workflows.announcements import OUTAGE_AFTER, deliver
from workflows.config import SwarmConfig
from workflows.embedding import ModelUnavailable
from workflows.errors import DuplicateCase, InvalidCase, SlackUnavailable
from workflows.routing import channel_for
from workflows.services import Services
from workflows.similarity import offer_in_thread
from workflows.snapshot import CaseSnapshot
from workflows.text import CONTROL_ERROR, escape, has_control

log = logging.getLogger(__name__)

SUMMARY_MAX = 150
DETAILS_MAX = 3000
CUSTOMER_MAX = 255
CASE_NUMBER_MAX = 64
# A card being posted by one worker is left alone this long before another may retry it.
CARD_LEASE = timedelta(minutes=2)


@dataclass(frozen=True)
class CaseDraft:
    """What the intake modal submitted."""

    team_id: str
    filer_id: str  # "": filed by a ticketing system for no one in this workspace
    case_number: str
    urgency: str
    topic_key: str
    summary: str
    region: str = ""
    details: str = ""
    customer: str = ""
    origin_channel_id: str | None = None
    source_channel_id: str | None = None
    source_ts: str | None = None
    intake_view_id: str | None = None


@dataclass(frozen=True)
class Filed:
    """The outcome of a submission: the case, and whether this submission created it."""

    case_id: int
    case_number: str
    channel_id: str
    created: bool


def validate(draft: CaseDraft, config: SwarmConfig) -> dict[str, str]:
    """Field errors by field name; empty when the draft can be filed."""
    errors: dict[str, str] = {}
    number = draft.case_number.strip()
    if not number:
        errors["case_number"] = "Enter the case number."
    elif len(number) > CASE_NUMBER_MAX or not re.fullmatch(config.case.number_pattern, number):
        errors["case_number"] = (
            f"“{number[:40]}” is not a case number here (expected {config.case.number_pattern})."
        )
    if draft.urgency not in {u.value for u in Urgency}:
        errors["urgency"] = "Choose low, medium, high or critical."
    topic = config.topic(draft.topic_key)
    if topic is None:
        errors["topic"] = "Choose a topic."
    elif draft.region and draft.region not in topic.regions:
        if topic.regions:
            errors["region"] = f"{topic.title} has regions {', '.join(topic.regions)}."
        else:
            errors["region"] = f"{topic.title} has no regions; leave this empty."
    summary = draft.summary.strip()
    if not summary:
        errors["summary"] = "Write a one-line summary."
    elif len(summary) > SUMMARY_MAX:
        errors["summary"] = f"Keep the summary to {SUMMARY_MAX} characters ({len(summary)} now)."
    if len(draft.details) > DETAILS_MAX:
        errors["details"] = (
            f"Details are limited to {DETAILS_MAX} characters ({len(draft.details)})."
        )
    if len(draft.customer) > CUSTOMER_MAX:
        errors["customer"] = f"Keep the customer to {CUSTOMER_MAX} characters."
    for name in ("case_number", "summary", "details", "customer"):
        if name not in errors and has_control(getattr(draft, name)):
            errors[name] = CONTROL_ERROR
    return errors


def file_case(services: Services, draft: CaseDraft, *, arm: bool = True) -> Filed:
    """Store a new case (before any Slack call). A retried submission returns the same case.

    Its SLA timers are armed too, unless `arm` is False: the modal's submission stores the
    case inside its ack (so a taken number can come back as a field error) and arms the
    timers after it (`services.timers.case_changed`); should the process die in between,
    the leader's reconciliation arms them within five minutes.
    """
    errors = validate(draft, services.config)
    if errors:
        raise InvalidCase(errors)
    number = draft.case_number.strip()
    now = services.clock.now()
    try:
        filed = _store(services, draft, number, now)
    except DuplicateCase as exc:
        # The number is taken either way; its thread is named only to those who may see it.
        if draft.filer_id and not can_see(services.slack, draft.filer_id, exc.channels):
            raise DuplicateCase(number, None, exc.resolved, hidden=True) from None
        raise
    if arm and filed.created:
        services.timers.case_changed(filed.case_id)
    return filed


def _store(services: Services, draft: CaseDraft, number: str, now: datetime) -> Filed:
    with services.uow() as uow:
        earlier = _earlier_submission(uow, draft, number)
        if earlier is not None:
            return earlier
        uow.cases.ensure_workspace(team_id=draft.team_id)
        channel_id = channel_for(
            uow,
            services.config,
            team_id=draft.team_id,
            topic_key=draft.topic_key,
            region=draft.region,
        )
        target = services.config.sla.target(draft.urgency)
        case = uow.cases.add(
            Case(
                team_id=draft.team_id,
                case_number=number,
                summary=draft.summary.strip(),
                details=draft.details.strip(),
                customer=draft.customer.strip(),
                urgency=Urgency(draft.urgency),
                topic_key=draft.topic_key,
                region=draft.region,
                status=CaseStatus.OPEN,
                filer_id=draft.filer_id,
                origin_channel_id=draft.origin_channel_id,
                source_channel_id=draft.source_channel_id,
                source_ts=draft.source_ts,
                intake_view_id=draft.intake_view_id,
                channel_id=channel_id,
                created_at=now,
                updated_at=now,
                first_response_due=now + target.first_response,
                resolution_due=now + target.resolution,
            )
        )
        try:
            uow.flush()
        except IntegrityError:
            # Someone filed the same number (or this submission) a moment ago.
            uow.session.rollback()
            earlier = _earlier_submission(uow, draft, number)
            if earlier is not None:
                return earlier
            raise
        if draft.filer_id:
            uow.cases.add_participant(
                case=case, user_id=draft.filer_id, role=ParticipantRole.FILER, at=now
            )
        uow.cases.add_event(
            case=case,
            kind="filed",
            at=now,
            actor_id=draft.filer_id,
            data={
                "urgency": draft.urgency,
                "topic": draft.topic_key,
                "region": draft.region,
                "channel": channel_id,
            },
        )
        uow.commit()
        return Filed(case.id, number, channel_id, created=True)


def _earlier_submission(uow: UnitOfWork, draft: CaseDraft, number: str) -> Filed | None:
    """The case this very submission made before, or DuplicateCase for another filing."""
    if draft.intake_view_id:
        mine = uow.cases.by_intake_view(view_id=draft.intake_view_id)
        if mine is not None:
            return Filed(mine.id, mine.case_number, mine.channel_id, created=False)
    existing = uow.cases.by_number(team_id=draft.team_id, case_number=number)
    if existing is not None:
        raise DuplicateCase(
            number,
            existing.permalink,
            resolved=not existing.is_open,
            channels=tuple(channels_of(existing.channel_id, existing.incident_channel_id)),
        )
    return None


def publish_card(
    services: Services,
    case_id: int,
) -> str | None:
    """Post the card of a stored case (once, across retries and workers); return the thread ts."""
    now = services.clock.now()
    with services.uow() as uow:
        if not uow.cases.claim_card(case_id=case_id, now=now, stale_before=now - CARD_LEASE):
            case = uow.cases.get(case_id)
            return case.thread_ts if case else None
        uow.commit()
        case = uow.cases.get(case_id)
        assert case is not None
        attempts = case.card_attempts
        source = (case.source_channel_id, case.source_ts) if not case.source_permalink else None
    if source and source[0] and source[1]:
        source_permalink = services.slack.permalink(source[0], source[1])
        with services.uow() as uow:
            case = uow.cases.get(case_id)
            assert case is not None
            case.source_permalink = source_permalink
            uow.commit()
    with services.uow() as uow:
        case = uow.cases.get(case_id)
        assert case is not None
        card = CaseSnapshot.of(case, services.config)
    try:
        ts = services.slack.find_case_card(card) if attempts > 1 else None
        ts = ts or services.slack.post_case_card(card)
    except SlackUnavailable:
        log.warning("case %s: card not posted yet, will retry", card.case_number)
        with services.uow() as uow:
            case = uow.cases.get(case_id)
            assert case is not None
            case.card_claimed_at = None
            uow.cases.add_event(
                case=case, kind="card_failed", at=services.clock.now(), data={"attempt": attempts}
            )
            uow.commit()
        return None
    continuation = services.slack.card_continuation(card)
    # The card is the case thread from this moment: its ts is committed before anything else
    # (a reply in the thread must find the case); the rest is owed work.
    with services.uow() as uow:
        case = uow.cases.get(case_id)
        assert case is not None
        now = services.clock.now()
        case.thread_ts = ts
        case.card_claimed_at = None
        uow.cases.add_event(
            case=case, kind="card_posted", at=now, data={"channel": card.channel_id, "ts": ts}
        )
        owed = [
            uow.cases.owe_post(case=case, channel_id=card.channel_id, thread_ts=ts, text=t, at=now)
            for t in continuation
        ]
        uow.commit()
        post_ids = [post.id for post in owed]
    post_ids += follow_up(services, case_id)
    deliver(services, post_ids)
    # After the card and the filer's note, never before them: similar resolved cases.
    try:
        offer_in_thread(services, case_id)
    except ModelUnavailable as exc:  # the case is posted; the reply stays owed to the sweep
        log.warning("case %s: no similar cases offered: %s", card.case_number, exc)
    return ts


def follow_up(services: Services, case_id: int) -> list[int]:
    """After the card: its permalink (while Slack will not give one, later) and the filer's
    note, owed once. Returns the ids of the posts it owed."""
    return _follow_up(services, case_id)[0]


def _follow_up(services: Services, case_id: int) -> tuple[list[int], bool]:
    """follow_up, and whether Slack was asked for a permalink and gave none."""
    with services.uow.read() as uow:
        case = uow.cases.get(case_id)
        if case is None or case.thread_ts is None:
            return [], False
        if case.permalink is not None and case.filer_notified_at is not None:
            return [], False
        where = (case.channel_id, case.thread_ts) if case.permalink is None else None
    permalink = services.slack.permalink(*where) if where else None
    with services.uow() as uow:
        case = uow.cases.get(case_id)
        assert case is not None
        if permalink and case.permalink is None:
            case.permalink = permalink
        owed = []
        if case.filer_notified_at is None:
            case.filer_notified_at = services.clock.now()  # owed now: sent exactly once
            if case.filer_id:  # someone in Slack to tell
                link = case.permalink or f"<#{case.channel_id}>"
                owed.append(
                    uow.cases.owe_post(
                        case=case,
                        channel_id=case.filer_id,
                        via_channel_id=case.origin_channel_id,
                        text=f"Case {escape(case.case_number)} is in <#{case.channel_id}>: {link}",
                        at=services.clock.now(),
                    )
                )
        uow.commit()
        return [post.id for post in owed], where is not None and permalink is None


def publish_pending(services: Services) -> int:
    """Post every card that an earlier attempt (or process) could not; return how many.

    When Slack fails OUTAGE_AFTER cases in a row, the run stops and the rest wait for the
    next one: during an outage each case would otherwise spend the client's retries in turn.
    """
    now = services.clock.now()
    with services.uow() as uow:
        pending = uow.cases.cards_to_post(stale_before=now - CARD_LEASE)
        unfinished = uow.cases.cards_to_follow_up()
    posted = failed = 0
    for n, case_id in enumerate(pending):
        if publish_card(services, case_id):
            posted, failed = posted + 1, 0
        else:
            failed += 1
        if failed >= OUTAGE_AFTER:
            log.warning("Slack is not taking cards: %d left for the next run", len(pending) - n - 1)
            return posted
    owed: list[int] = []
    for n, case_id in enumerate(unfinished):
        ids, missed = _follow_up(services, case_id)
        owed += ids
        failed = failed + 1 if missed else 0
        if failed >= OUTAGE_AFTER:
            left = len(unfinished) - n - 1
            log.warning("Slack gives no permalinks: %d card(s) left for the next run", left)
            break
    deliver(services, owed)
    return posted
