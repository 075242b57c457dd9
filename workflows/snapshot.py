"""A case, read once and detached from its session: what the card and the replies show."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from storage.domain import CaseStatus, Urgency
from storage.models import Case
from workflows.config import SwarmConfig


@dataclass(frozen=True)
class CaseSnapshot:
    """A case as Slack is shown it (card, modals, replies), detached from the database session."""

    case_id: int
    team_id: str
    case_number: str
    case_url: str | None
    summary: str
    details: str
    customer: str
    urgency: Urgency
    topic_key: str
    topic_label: str
    region: str
    status: CaseStatus
    filer_id: str  # "" when no one in Slack filed it
    assignee_id: str | None
    channel_id: str
    thread_ts: str | None
    permalink: str | None
    source_permalink: str | None
    participants: tuple[str, ...] = ()
    severity: int | None = None
    incident_channel_id: str | None = None
    resolution: str | None = None
    resolved_by: str | None = None
    created_at: datetime | None = None
    breached: tuple[str, ...] = field(default=())

    @classmethod
    def of(cls, case: Case, config: SwarmConfig) -> CaseSnapshot:
        """Snapshot a case for Slack."""
        topic = config.topic(case.topic_key)
        breached = tuple(
            name
            for name, at in (
                ("first response", case.first_response_breached_at),
                ("resolution", case.resolution_breached_at),
            )
            if at is not None
        )
        return cls(
            case_id=case.id,
            team_id=case.team_id,
            case_number=case.case_number,
            case_url=config.case.case_url(case.case_number),
            summary=case.summary,
            details=case.details,
            customer=case.customer,
            urgency=case.urgency,
            topic_key=case.topic_key,
            topic_label=topic.title if topic else case.topic_key,
            region=case.region,
            status=case.status,
            filer_id=case.filer_id,
            assignee_id=case.assignee_id,
            channel_id=case.channel_id,
            thread_ts=case.thread_ts,
            permalink=case.permalink,
            source_permalink=case.source_permalink,
            participants=tuple(p.user_id for p in case.participants),
            severity=case.severity,
            incident_channel_id=case.incident_channel_id,
            resolution=case.resolution,
            resolved_by=case.resolved_by,
            created_at=case.created_at,
            breached=breached,
        )
