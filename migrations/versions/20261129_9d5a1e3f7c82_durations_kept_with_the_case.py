"""Keep each case's microseconds to first response and to resolution, and let the figures'
indexes hold every column the figures read (cases and messages).

Revision ID: 9d5a1e3f7c82
Revises: 8c4f0d2e6b71
Create Date: 2026-11-29 11:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9d5a1e3f7c82"
down_revision: str | None = "8c4f0d2e6b71"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = {
    "ix_cases_team_created": ["team_id", "created_at"],
    "ix_cases_team_first_response": ["team_id", "first_response_at"],
    "ix_cases_team_resolved": ["team_id", "resolved_at"],
    "ix_cases_team_escalated": ["team_id", "escalated_at"],
}
AFTER = {
    "ix_cases_team_created": ["team_id", "created_at", "topic_key", "escalated_at"],
    "ix_cases_team_first_response": [
        "team_id",
        "first_response_at",
        "topic_key",
        "first_response_micros",
        "first_responder_id",
    ],
    "ix_cases_team_resolved": [
        "team_id",
        "resolved_at",
        "topic_key",
        "resolution_micros",
        "created_at",
        "resolution_due",
        "escalated_at",
        "resolved_by",
    ],
    "ix_cases_team_escalated": ["team_id", "escalated_at", "topic_key"],
}

MESSAGES = ["team_id", "posted_at", "user_id", "is_bot", "deleted_at", "case_id"]


def _micros(end: str, start: str) -> str:
    """Whole microseconds from `start` to `end`, exact, in this database's SQL."""
    if op.get_bind().dialect.name == "postgresql":
        return f"CAST(EXTRACT(EPOCH FROM ({end} - {start})) * 1000000 AS BIGINT)"
    # SQLite stores 'YYYY-MM-DD HH:MM:SS.ffffff': whole seconds, then the microseconds.
    return (
        f"((CAST(strftime('%s', {end}) AS INTEGER) - CAST(strftime('%s', {start}) AS INTEGER))"
        f" * 1000000 + CAST(substr({end}, 21, 6) AS INTEGER)"
        f" - CAST(substr({start}, 21, 6) AS INTEGER))"
    )


def upgrade() -> None:
    op.add_column("cases", sa.Column("first_response_micros", sa.BigInteger(), nullable=True))
    op.add_column("cases", sa.Column("resolution_micros", sa.BigInteger(), nullable=True))
    op.execute(
        "UPDATE cases SET first_response_micros = "
        f"{_micros('first_response_at', 'created_at')} WHERE first_response_at IS NOT NULL"
    )
    op.execute(
        f"UPDATE cases SET resolution_micros = {_micros('resolved_at', 'created_at')} "
        "WHERE resolved_at IS NOT NULL"
    )
    for name, columns in AFTER.items():
        op.drop_index(name, table_name="cases")
        op.create_index(name, "cases", columns)
    op.drop_index("ix_messages_team_posted", table_name="messages")
    op.create_index("ix_messages_team_posted", "messages", MESSAGES)


def downgrade() -> None:
    op.drop_index("ix_messages_team_posted", table_name="messages")
    op.create_index("ix_messages_team_posted", "messages", ["team_id", "posted_at", "user_id"])
    for name, columns in BEFORE.items():
        op.drop_index(name, table_name="cases")
        op.create_index(name, "cases", columns)
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("resolution_micros")
        batch.drop_column("first_response_micros")
