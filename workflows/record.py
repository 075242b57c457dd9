"""The case record: every message of a case thread and of its incident channel, kept current."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from storage.domain import ParticipantRole
from storage.models import Case, Message
from storage.uow import UnitOfWork
from workflows.cases import record_changed, refresh_card
from workflows.services import Services
from workflows.snapshot import CaseSnapshot
from workflows.swarming import start_swarming
from workflows.text import storable

# Subtypes that are someone saying something; joins, topic changes and the like are not.
SAID = {None, "thread_broadcast", "bot_message", "file_share", "me_message"}


@dataclass(frozen=True)
class ThreadMessage:
    """One Slack message as the record keeps it."""

    team_id: str
    channel_id: str
    ts: str
    thread_ts: str | None
    user_id: str | None
    is_bot: bool
    text: str
    subtype: str | None = None
    files: tuple[dict[str, Any], ...] = field(default=())


def from_slack(team_id: str, channel_id: str, message: dict[str, Any]) -> ThreadMessage:
    """A Slack message (event or Web API shape) as the record keeps it: files by name and title."""
    files = tuple(
        {"name": storable(f.get("name") or ""), "title": storable(f.get("title") or "")}
        for f in message.get("files") or []
        if isinstance(f, dict)
    )
    subtype = message.get("subtype")
    return ThreadMessage(
        team_id=team_id,
        channel_id=channel_id,
        ts=message["ts"],
        thread_ts=message.get("thread_ts"),
        user_id=message.get("user"),
        is_bot=bool(message.get("bot_id")) or subtype == "bot_message",
        text=storable(message.get("text") or ""),
        subtype=subtype,
        files=files,
    )


@dataclass(frozen=True)
class Recorded:
    """A message stored in a case's record; `changed` when the case itself changed too."""

    case_id: int
    changed: bool


def ts_time(ts: str) -> datetime:
    """The time a Slack ts stands for."""
    return datetime.fromtimestamp(float(ts), UTC)


def case_of(uow: UnitOfWork, *, channel_id: str, ts: str, thread_ts: str | None) -> Case | None:
    """The case whose record a message belongs to: a reply in its thread, or in its incident
    channel. The card itself (the thread's parent) is the case, not a message of it."""
    if thread_ts and thread_ts != ts:
        case = uow.cases.by_thread(channel_id=channel_id, thread_ts=thread_ts)
        if case is not None:
            return case
    return uow.cases.by_incident_channel(channel_id=channel_id)


def _stored(uow: UnitOfWork, channel_id: str, ts: str) -> Message | None:
    return uow.session.scalar(
        select(Message).where(Message.channel_id == channel_id, Message.ts == ts)
    )


def record(services: Services, message: ThreadMessage, *, live: bool = True) -> Recorded | None:
    """Store a message of a case record once; None when it is not in one or already stored.

    A human replier joins the swarm; the first reply in the thread by a human other than the
    filer is the case's first response (live messages only: a backfill does not rewrite it
    unless it was never recorded), and an open case starts swarming. A live change of the
    case refreshes its card and re-arms its timers.
    """
    now = services.clock.now()
    with services.uow() as uow:
        case = case_of(
            uow, channel_id=message.channel_id, ts=message.ts, thread_ts=message.thread_ts
        )
        if case is None or _stored(uow, message.channel_id, message.ts) is not None:
            return None
        posted = ts_time(message.ts)
        try:
            with uow.session.begin_nested():
                uow.session.add(
                    Message(
                        team_id=message.team_id,
                        case_id=case.id,
                        channel_id=message.channel_id,
                        ts=message.ts,
                        thread_ts=message.thread_ts,
                        user_id=message.user_id,
                        is_bot=message.is_bot,
                        subtype=message.subtype,
                        text=message.text,
                        files=list(message.files),
                        posted_at=posted,
                    )
                )
        except IntegrityError:
            return None  # the same delivery, stored a moment ago by another worker
        changed = False
        human = message.user_id is not None and not message.is_bot
        at = now if live else posted
        if human and message.channel_id == case.channel_id:
            record_changed(case, now)
        if human:
            assert message.user_id is not None
            joined = uow.cases.add_participant(
                case=case, user_id=message.user_id, role=ParticipantRole.REPLIED, at=at
            )
            if joined is not None:
                changed = True
                uow.cases.add_event(
                    case=case,
                    kind="joined",
                    at=at,
                    actor_id=message.user_id,
                    data={"via": "reply", "ts": message.ts},
                )
        in_thread = message.thread_ts is not None and message.thread_ts == case.thread_ts
        if (
            human
            and in_thread
            and message.user_id != case.filer_id
            and case.first_response_at is None
        ):
            case.first_response_at = at
            case.first_responder_id = message.user_id
            data = {"ts": message.ts}
            if start_swarming(case):
                data["status"] = case.status.value
            uow.cases.add_event(
                case=case, kind="first_response", at=at, actor_id=message.user_id, data=data
            )
            changed = True
        uow.commit()
        done = Recorded(case.id, changed)
        card = CaseSnapshot.of(case, services.config) if changed and live else None
    if card is not None:
        # A live change of the case itself: the card shows it and the SLA timers follow it.
        refresh_card(services, card)
        services.timers.case_changed(done.case_id)
    return done


def _thread_changed(uow: UnitOfWork, message: Message, now: datetime) -> None:
    case = uow.cases.get(message.case_id)
    if case is not None and message.channel_id == case.channel_id and not message.is_bot:
        record_changed(case, now)


def edit(
    services: Services,
    message: ThreadMessage,
    *,
    edited_ts: str | None,
    live: bool = True,
) -> Recorded | None:
    """Apply an edit; an edited message the record never saw is recorded as it is now."""
    with services.uow() as uow:
        stored = _stored(uow, message.channel_id, message.ts)
        if stored is not None:
            if stored.deleted_at is not None or (
                stored.text == message.text and stored.files == list(message.files)
            ):
                return None
            stored.text = message.text
            stored.files = list(message.files)
            stored.edited_at = ts_time(edited_ts) if edited_ts else services.clock.now()
            _thread_changed(uow, stored, services.clock.now())
            uow.commit()
            return Recorded(stored.case_id, False)
    return record(services, message, live=live)


def delete(services: Services, *, channel_id: str, ts: str) -> Recorded | None:
    """Apply a deletion: the text and files are dropped, the fact of the message stays."""
    with services.uow() as uow:
        stored = _stored(uow, channel_id, ts)
        if stored is None or stored.deleted_at is not None:
            return None
        stored.text = ""
        stored.files = []
        stored.deleted_at = services.clock.now()
        _thread_changed(uow, stored, services.clock.now())
        uow.commit()
        return Recorded(stored.case_id, False)
