"""Indexes for the swarm's figures: cases by filing, first response, resolution and
escalation time; timeline entries by kind and time; messages by time.

Revision ID: 7b3e9c1d5a60
Revises: 9368a0c13a64
Create Date: 2026-11-29 11:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "7b3e9c1d5a60"
down_revision: str | None = "9368a0c13a64"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    ("ix_cases_team_created", "cases", ["team_id", "created_at"]),
    ("ix_cases_team_first_response", "cases", ["team_id", "first_response_at"]),
    ("ix_cases_team_resolved", "cases", ["team_id", "resolved_at"]),
    ("ix_cases_team_escalated", "cases", ["team_id", "escalated_at"]),
    ("ix_case_events_kind_at", "case_events", ["kind", "at"]),
    ("ix_messages_team_posted", "messages", ["team_id", "posted_at", "user_id"]),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _columns in reversed(INDEXES):
        op.drop_index(name, table_name=table)
