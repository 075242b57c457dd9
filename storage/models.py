"""Tables of the swarm: workspaces, routing, roles, cases, participants, timeline, messages."""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    event,
    literal_column,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, validates

from storage.domain import CaseStatus, ParticipantRole, Role, Urgency
from storage.types import UTCDateTime, utcnow

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}


def _enum(cls: type[enum.StrEnum], name: str) -> Enum:
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda members: [m.value for m in members],
    )


class Workspace(Base):
    """A Slack workspace (team) the bot serves."""

    __tablename__ = "workspaces"

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(255))
    bot_user_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TopicRoute(Base):
    """Run-time routing set with `/swarm route`: wins over swarm.yaml for its topic and region."""

    __tablename__ = "topic_routes"
    __table_args__ = (UniqueConstraint("team_id", "topic_key", "region"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[str] = mapped_column(ForeignKey("workspaces.team_id"))
    topic_key: Mapped[str] = mapped_column(String(64))
    region: Mapped[str] = mapped_column(String(64), default="")  # "" = the topic's own channel
    channel_id: Mapped[str] = mapped_column(String(32))
    set_by: Mapped[str] = mapped_column(String(32))
    set_at: Mapped[datetime] = mapped_column(default=utcnow)


class TopicRole(Base):
    """A lead or expert named at run time (`/swarm lead`, `/swarm expert`); topic "" = all."""

    __tablename__ = "topic_roles"
    __table_args__ = (UniqueConstraint("team_id", "topic_key", "user_id", "role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[str] = mapped_column(ForeignKey("workspaces.team_id"))
    topic_key: Mapped[str] = mapped_column(String(64), default="")
    user_id: Mapped[str] = mapped_column(String(32))
    role: Mapped[Role] = mapped_column(_enum(Role, "topic_role"))
    added_by: Mapped[str] = mapped_column(String(32))
    added_at: Mapped[datetime] = mapped_column(default=utcnow)


# The predicate of the open-queue index, written out: a database uses a partial index only for
# a query whose WHERE has this very term, with the value inline rather than a parameter.
OPEN_CASES = "status != 'resolved'"


class Case(Base):
    """A support case being swarmed; its card's ts is the case thread."""

    __tablename__ = "cases"
    __table_args__ = (
        UniqueConstraint("team_id", "case_number"),
        UniqueConstraint("intake_view_id"),
        Index("ix_cases_team_status", "team_id", "status"),
        Index("ix_cases_channel_thread", "channel_id", "thread_ts"),
        Index("ix_cases_incident_channel", "incident_channel_id"),
        # The figures read cases by the moment something happened to them; each index holds
        # every column its figures need, so they are read from the index alone.
        Index("ix_cases_team_created", "team_id", "created_at", "topic_key", "escalated_at"),
        Index(
            "ix_cases_team_first_response",
            "team_id",
            "first_response_at",
            "topic_key",
            "first_response_micros",
            "first_responder_id",
        ),
        Index(
            "ix_cases_team_resolved",
            "team_id",
            "resolved_at",
            "topic_key",
            "resolution_micros",
            "created_at",
            "resolution_due",
            "escalated_at",
            "resolved_by",
        ),
        Index("ix_cases_team_escalated", "team_id", "escalated_at", "topic_key"),
        # A case's topic by its id, narrow: counting a topic's replies joins a message to it.
        Index("ix_cases_topic_of", "id", "team_id", "topic_key"),
        # The open queue (few of all cases) oldest first; queries say NOT_RESOLVED to use it.
        Index(
            "ix_cases_team_open",
            "team_id",
            "created_at",
            "topic_key",
            sqlite_where=text(OPEN_CASES),
            postgresql_where=text(OPEN_CASES),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[str] = mapped_column(ForeignKey("workspaces.team_id"))
    case_number: Mapped[str] = mapped_column(String(64))
    summary: Mapped[str] = mapped_column(String(150))
    details: Mapped[str] = mapped_column(Text, default="")
    customer: Mapped[str] = mapped_column(String(255), default="")
    urgency: Mapped[Urgency] = mapped_column(_enum(Urgency, "urgency"))
    topic_key: Mapped[str] = mapped_column(String(64))
    region: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[CaseStatus] = mapped_column(_enum(CaseStatus, "case_status"))
    # "" when a ticketing system filed it for no one in this workspace (SQLite cannot drop a
    # NOT NULL without rebuilding the table, which would take the search triggers with it).
    filer_id: Mapped[str] = mapped_column(String(32))
    assignee_id: Mapped[str | None] = mapped_column(String(32))
    confidential: Mapped[bool] = mapped_column(Boolean, default=False)

    # Where the filer started: a channel for the ephemeral permalink, or None for a DM.
    origin_channel_id: Mapped[str | None] = mapped_column(String(32))
    # The message a "Swarm this message" shortcut started from.
    source_channel_id: Mapped[str | None] = mapped_column(String(32))
    source_ts: Mapped[str | None] = mapped_column(String(32))
    source_permalink: Mapped[str | None] = mapped_column(String(1024))
    # The submission that created the case (a modal's view id, or "step:" and a Workflow
    # Builder execution id): a retried submission finds it again.
    intake_view_id: Mapped[str | None] = mapped_column(String(64))

    # The card: the routed swarm channel and the card's ts (= the case thread).
    channel_id: Mapped[str] = mapped_column(String(32))
    thread_ts: Mapped[str | None] = mapped_column(String(32))
    permalink: Mapped[str | None] = mapped_column(String(1024))
    card_claimed_at: Mapped[datetime | None] = mapped_column()
    card_attempts: Mapped[int] = mapped_column(Integer, default=0)
    filer_notified_at: Mapped[datetime | None] = mapped_column()

    # Escalation.
    severity: Mapped[int | None] = mapped_column(Integer)
    incident_channel_id: Mapped[str | None] = mapped_column(String(32))
    incident_channel_name: Mapped[str | None] = mapped_column(String(80))
    escalated_at: Mapped[datetime | None] = mapped_column()
    incident_archived_at: Mapped[datetime | None] = mapped_column()
    # Lease of the escalation in progress: a second click or delivery waits for it.
    escalation_claimed_at: Mapped[datetime | None] = mapped_column()

    # SLA.
    first_response_due: Mapped[datetime | None] = mapped_column()
    resolution_due: Mapped[datetime | None] = mapped_column()
    first_response_breached_at: Mapped[datetime | None] = mapped_column()
    resolution_breached_at: Mapped[datetime | None] = mapped_column()
    # Set in the transaction that decides to remind, so a reminder is sent at most once.
    first_response_reminded_at: Mapped[datetime | None] = mapped_column()
    resolution_reminded_at: Mapped[datetime | None] = mapped_column()
    stale_nudged_at: Mapped[datetime | None] = mapped_column()

    # Lifecycle.
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    first_response_at: Mapped[datetime | None] = mapped_column()
    first_responder_id: Mapped[str | None] = mapped_column(String(32))
    resolved_at: Mapped[datetime | None] = mapped_column()
    resolved_by: Mapped[str | None] = mapped_column(String(32))
    # Whole microseconds from filing to the first response and to the resolution, kept with
    # the times (see _keep_durations) so the figures sum and sort integers.
    first_response_micros: Mapped[int | None] = mapped_column(BigInteger)
    resolution_micros: Mapped[int | None] = mapped_column(BigInteger)
    resolution: Mapped[str | None] = mapped_column(Text)
    root_cause: Mapped[str | None] = mapped_column(Text)
    workaround: Mapped[str | None] = mapped_column(Text)
    kb_link: Mapped[str | None] = mapped_column(String(1024))

    # Similar cases: the record changed since its vector was made (owed re-embedding), and
    # the intake reply listing similar resolved cases was decided (posted, or nothing similar).
    vector_due_at: Mapped[datetime | None] = mapped_column()
    similar_offered_at: Mapped[datetime | None] = mapped_column()

    participants: Mapped[list[Participant]] = relationship(
        back_populates="case", cascade="all, delete-orphan", order_by="Participant.id"
    )
    events: Mapped[list[CaseEvent]] = relationship(
        back_populates="case", cascade="all, delete-orphan", order_by="CaseEvent.id"
    )

    @property
    def is_open(self) -> bool:
        """Not resolved (escalated cases are open)."""
        return self.status is not CaseStatus.RESOLVED

    @validates("created_at", "first_response_at", "resolved_at")
    def _keep_durations(self, key: str, value: datetime | None) -> datetime | None:
        times = {
            "created_at": self.created_at,
            "first_response_at": self.first_response_at,
            "resolved_at": self.resolved_at,
            key: value,
        }
        self.first_response_micros = micros_between(times["created_at"], times["first_response_at"])
        self.resolution_micros = micros_between(times["created_at"], times["resolved_at"])
        return value


def micros_between(start: datetime | None, end: datetime | None) -> int | None:
    """Whole microseconds from start to end (exact), None unless both are known."""
    if start is None or end is None:
        return None
    return (end - start) // timedelta(microseconds=1)


@event.listens_for(Case, "before_insert")
def _filed_now_unless_told(_mapper: Any, _connection: Any, case: Case) -> None:
    """A case stored without a filing time is filed now (and its durations count from it)."""
    if case.created_at is None:
        case.created_at = utcnow()


class Participant(Base):
    """Someone in the swarm of a case, and how they joined it."""

    __tablename__ = "participants"
    __table_args__ = (UniqueConstraint("case_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(String(32))
    role: Mapped[ParticipantRole] = mapped_column(_enum(ParticipantRole, "participant_role"))
    joined_at: Mapped[datetime] = mapped_column(default=utcnow)

    case: Mapped[Case] = relationship(back_populates="participants")


class CaseEvent(Base):
    """One entry of a case's append-only timeline."""

    __tablename__ = "case_events"
    __table_args__ = (
        Index("ix_case_events_case_at", "case_id", "at"),
        Index("ix_case_events_kind_at", "kind", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(32))
    actor_id: Mapped[str | None] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)

    case: Mapped[Case] = relationship(back_populates="events")


class Message(Base):
    """A message of a case thread or incident channel, as last seen (edits and deletes applied)."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("channel_id", "ts"),
        Index("ix_messages_case", "case_id", "ts"),
        Index(
            "ix_messages_team_posted",
            "team_id",
            "posted_at",
            "user_id",
            "is_bot",
            "deleted_at",
            "case_id",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    channel_id: Mapped[str] = mapped_column(String(32))
    ts: Mapped[str] = mapped_column(String(32))
    thread_ts: Mapped[str | None] = mapped_column(String(32))
    user_id: Mapped[str | None] = mapped_column(String(32))
    is_bot: Mapped[bool] = mapped_column(Boolean, default=False)
    subtype: Mapped[str | None] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text, default="")
    files: Mapped[list[Any]] = mapped_column(default=list)
    posted_at: Mapped[datetime] = mapped_column(default=utcnow)
    edited_at: Mapped[datetime | None] = mapped_column()
    deleted_at: Mapped[datetime | None] = mapped_column()


class ReplyDay(Base):
    """Replies a person made in one topic's case records on one UTC day: kept by database
    triggers on `messages` (a human's message not deleted counts), so the figures count days
    instead of messages."""

    __tablename__ = "reply_days"

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # YYYY-MM-DD, UTC
    topic_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    replies: Mapped[int] = mapped_column(Integer, default=0)


class ScheduledRun(Base):
    """A run of scheduled work that must happen once (a channel's daily digest), by key."""

    __tablename__ = "scheduled_runs"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    ran_at: Mapped[datetime] = mapped_column(default=utcnow)


class PendingPost(Base):
    """A message the swarm owes a channel, thread or person: stored before it is sent, so a
    Slack outage or a restart delays it but never loses it."""

    __tablename__ = "pending_posts"
    __table_args__ = (Index("ix_pending_posts_unsent", "sent_at", "given_up_at", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    # What is owed: a message (`post`), a reply in the case's thread once it exists (`thread`),
    # or a re-render of the case's card (`card`).
    kind: Mapped[str] = mapped_column(String(16), default="post", server_default="post")
    channel_id: Mapped[str] = mapped_column(String(32))  # a user id means a DM
    # For a person: the channel to tell them in (ephemeral), a DM when that fails.
    via_channel_id: Mapped[str | None] = mapped_column(String(32))
    thread_ts: Mapped[str | None] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Not before: set while a sender holds it (a lease) and after a transient failure (backoff).
    next_attempt_at: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(String(500))
    sent_at: Mapped[datetime | None] = mapped_column()
    given_up_at: Mapped[datetime | None] = mapped_column()


class HomeView(Base):
    """A user's App Home as last published: which page, which cases, and Slack's hash."""

    __tablename__ = "home_views"

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    page: Mapped[int] = mapped_column(Integer, default=0)
    # The topics whose queue it shows (the user leads them) and the cases on it.
    topics: Mapped[list[Any]] = mapped_column(default=list)
    case_ids: Mapped[list[Any]] = mapped_column(default=list)
    view_hash: Mapped[str | None] = mapped_column(String(64))
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column()


class StatusEvent(Base):
    """A status change of a case owed to the ticketing system's status webhook (the outbox).

    Rows are written by database triggers on `cases` (see the revision that made this table),
    in the transaction of the change itself, whichever code path made it. `delivered_at` is set
    once the receiver answered 2xx; until then `next_attempt_at` says when to try again.
    """

    __tablename__ = "status_events"
    __table_args__ = (
        UniqueConstraint("event_id"),
        Index("ix_status_events_undelivered", "delivered_at", "case_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(String(36))
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    old_status: Mapped[str | None] = mapped_column(String(16))  # None: the case was filed
    status: Mapped[str] = mapped_column(String(16))
    old_severity: Mapped[int | None] = mapped_column(Integer)
    severity: Mapped[int | None] = mapped_column(Integer)
    # What the case said at that moment, for a "resolved" event sent later.
    resolution: Mapped[str | None] = mapped_column(Text)
    root_cause: Mapped[str | None] = mapped_column(Text)
    workaround: Mapped[str | None] = mapped_column(Text)
    kb_link: Mapped[str | None] = mapped_column(String(1024))
    resolved_by: Mapped[str | None] = mapped_column(String(32))
    incident_channel_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(String(500))
    delivered_at: Mapped[datetime | None] = mapped_column()


# `Case.status != resolved` as the open-queue index's own predicate (see OPEN_CASES).
NOT_RESOLVED = literal_column("cases.status") != literal_column("'resolved'")


class CaseVector(Base):
    """A case record's sentence embedding (float32, L2-normalised), for similar cases."""

    __tablename__ = "case_vectors"
    __table_args__ = (Index("ix_case_vectors_embedded", "embedded_at"),)

    case_id: Mapped[int] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True
    )
    team_id: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(64))
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    embedded_at: Mapped[datetime] = mapped_column(default=utcnow)
