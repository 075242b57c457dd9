"""The ticketing system hears every status change of a case: a signed POST per change.

Changes are recorded in `status_events` by the database itself, in the transaction of the
change (see storage.models.StatusEvent). `deliver_due` drains that outbox from the scheduler
leader: per case in order, each event claimed before it is sent and marked delivered only
after a 2xx, with exponential backoff (capped) while the receiver fails. A crash between the
receiver's 2xx and the mark sends that event again: delivery is at least once, and receivers
deduplicate by `event_id`.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from storage.models import Case, StatusEvent
from storage.uow import UnitOfWorkFactory
from workflows import signing
from workflows.clock import Clock
from workflows.config import SwarmConfig
from workflows.services import Services

log = logging.getLogger(__name__)

BACKOFF_FIRST = timedelta(seconds=10)
BACKOFF_CAP = timedelta(hours=1)
SENDING_LEASE = timedelta(minutes=2)  # a sender that died gives its event back after this
KEEP_DELIVERED = timedelta(days=30)
BATCH = 100
FAILURES_PER_RUN = 3  # a receiver that is down is not hammered with every case in one run
TIMEOUT_SECONDS = 10.0
ERROR_MAX = 500


@dataclass(frozen=True)
class Receiver:
    """Where status events go and the secret they are signed with."""

    url: str
    secret: str
    timeout: float = TIMEOUT_SECONDS


@dataclass(frozen=True)
class Drained:
    delivered: int
    failed: int


class DeliveryFailed(Exception):
    """The receiver did not answer 2xx; the message says what it did."""


Send = Callable[[Receiver, bytes, dict[str, str]], None]


def kind_of(event: StatusEvent) -> str:
    """What happened: filed, swarming, escalated, severity_changed, resolved or reopened."""
    if event.old_status is None:
        return "filed"
    if event.status == "resolved":
        return "resolved"
    if event.old_status == "resolved":
        return "reopened"
    if event.status == event.old_status:
        return "severity_changed"
    return event.status  # swarming, escalated (open only at filing)


def payload_of(event: StatusEvent, case: Case, config: SwarmConfig) -> dict[str, Any]:
    """The JSON body of one event: what happened, to which case, when, and where to look."""
    kind = kind_of(event)
    body: dict[str, Any] = {
        "event_id": event.event_id,
        "event": kind,
        "occurred_at": _iso(event.created_at),
        "case_number": case.case_number,
        "status": event.status,
        "previous_status": event.old_status,
        "severity": event.severity,
        "urgency": case.urgency.value,
        "topic": case.topic_key,
        "summary": case.summary,
        "filed_at": _iso(case.created_at),
        "links": {
            "case_url": config.case.case_url(case.case_number),
            "thread_permalink": case.permalink,
            "incident_channel": _channel_link(case.team_id, event.incident_channel_id),
        },
    }
    if kind == "severity_changed":
        body["previous_severity"] = event.old_severity
    if kind == "resolved":
        body["resolution"] = {
            "resolution": event.resolution,
            "root_cause": event.root_cause,
            "workaround": event.workaround,
            "kb_link": event.kb_link,
            "resolved_by": event.resolved_by,
        }
    return body


def deliver_due(
    services: Services, receiver: Receiver, *, send: Send | None = None, limit: int = BATCH
) -> Drained:
    """Send the events that are due, each case's in order; return how many went and failed."""
    send = send or post
    uow_factory, config, clock = services.uow, services.config, services.clock
    delivered = failed = 0
    while delivered + failed < limit and failed < FAILURES_PER_RUN:
        now = clock.now()
        with uow_factory() as uow:
            due = uow.status_events.due(now=now, limit=min(limit, BATCH))
            ids = [event.id for event in due]
        if not ids:
            break
        progressed = False
        for event_id in ids:
            if delivered + failed >= limit or failed >= FAILURES_PER_RUN:
                break
            claimed = _claim(uow_factory, config, clock, event_id)
            if claimed is None:
                continue
            progressed = True
            body, headers = claimed
            try:
                send(receiver, body, headers)
            except DeliveryFailed as exc:
                failed += 1
                _failed(uow_factory, clock, event_id, str(exc))
            else:
                delivered += 1
                _delivered(uow_factory, clock, event_id)
        if not progressed:
            break
    return Drained(delivered, failed)


def _claim(
    uow_factory: UnitOfWorkFactory, config: SwarmConfig, clock: Clock, event_id: int
) -> tuple[bytes, dict[str, str]] | None:
    """Take the event for this run and build what is sent; None when someone else has it."""
    now = clock.now()
    with uow_factory() as uow:
        if not uow.status_events.claim(event_id=event_id, now=now, until=now + SENDING_LEASE):
            return None
        event = uow.status_events.get(event_id)
        assert event is not None
        case = uow.cases.get(event.case_id)
        assert case is not None
        body = json.dumps(payload_of(event, case, config)).encode()
        uow.commit()
        return body, {"X-Swarm-Event-Id": event.event_id}


def _delivered(uow_factory: UnitOfWorkFactory, clock: Clock, event_id: int) -> None:
    with uow_factory() as uow:
        event = uow.status_events.get(event_id)
        assert event is not None
        event.attempts += 1
        event.delivered_at = clock.now()
        event.next_attempt_at = None
        event.last_error = None
        uow.commit()


def _failed(uow_factory: UnitOfWorkFactory, clock: Clock, event_id: int, error: str) -> None:
    with uow_factory() as uow:
        event = uow.status_events.get(event_id)
        assert event is not None
        event.attempts += 1
        event.next_attempt_at = clock.now() + backoff(event.attempts)
        event.last_error = error[:ERROR_MAX]
        uow.commit()
    log.warning("status webhook: event %s not delivered (%s); will retry", event_id, error)


def backoff(attempts: int) -> timedelta:
    """How long to wait after the n-th failed attempt: 10 s, 20 s, 40 s ... at most an hour."""
    return min(BACKOFF_CAP, BACKOFF_FIRST * 2 ** max(0, min(attempts - 1, 20)))


def prune(services: Services, *, configured: bool) -> int:
    """Forget delivered events after a while, and every event when there is no receiver."""
    with services.uow() as uow:
        gone = uow.status_events.prune(
            delivered_before=services.clock.now() - KEEP_DELIVERED, undelivered_too=not configured
        )
        uow.commit()
    return gone


@dataclass(frozen=True)
class Undelivered:
    """One event the receiver has not taken yet, for the operator."""

    event_id: str
    case_number: str
    kind: str
    created_at: datetime
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None


def undelivered(
    uow_factory: UnitOfWorkFactory, *, limit: int | None = None
) -> tuple[list[Undelivered], int]:
    """Undelivered events, oldest first (the first `limit`), and how many there are."""
    with uow_factory() as uow:
        rows, total = uow.status_events.undelivered(limit=limit)
        return [
            Undelivered(
                event.event_id,
                number,
                kind_of(event),
                event.created_at,
                event.attempts,
                event.next_attempt_at,
                event.last_error,
            )
            for event, number in rows
        ], total


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a redirected POST is not delivered: the 3xx is reported as a failure


_opener = urllib.request.build_opener(_NoRedirects)


def post(receiver: Receiver, body: bytes, headers: dict[str, str]) -> None:
    """POST a signed body; DeliveryFailed unless the receiver answers 2xx."""
    timestamp = str(int(time.time()))
    request = urllib.request.Request(
        receiver.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "swarmbot-status-webhook",
            "X-Swarm-Timestamp": timestamp,
            "X-Swarm-Signature": signing.signature(receiver.secret, timestamp, body),
            **headers,
        },
    )
    try:
        with _opener.open(request, timeout=receiver.timeout) as response:
            response.read(65536)
            status = response.status
    except urllib.error.HTTPError as exc:
        raise DeliveryFailed(f"HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)  # URLError wraps the socket's own error
        cause = reason if isinstance(reason, BaseException) else exc
        raise DeliveryFailed(f"{type(cause).__name__}: {reason}") from None
    if not 200 <= status < 300:
        raise DeliveryFailed(f"HTTP {status}")


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def _channel_link(team_id: str, channel_id: str | None) -> str | None:
    if not channel_id:
        return None
    return f"https://slack.com/app_redirect?team={team_id}&channel={channel_id}"
