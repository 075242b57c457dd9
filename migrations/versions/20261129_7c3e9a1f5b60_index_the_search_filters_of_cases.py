"""Indexes for PostgreSQL search: newest rows first, and the case ids a search filter passes.

Revision ID: 7c3e9a1f5b60
Revises: c94889a31023
Create Date: 2026-11-29 11:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "7c3e9a1f5b60"
down_revision: str | None = "c94889a31023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    # Covering (the case id is in the index): the set of cases a search filter passes is read
    # from the index alone, by topic, or by status when there is no topic.
    "ix_cases_search_topic": "ON cases (team_id, topic_key, status, severity, id)",
    "ix_cases_search_status": "ON cases (team_id, status, severity, topic_key, id)",
    # Block ranges of ids (rows are appended in id order): a bitmap of the newest rows to
    # intersect with a word's GIN bitmap. On `id::bigint`, which the primary key does not
    # cover, so the planner cannot turn the range into a walk of the key.
    "ix_messages_newest": "ON messages USING brin ((id::bigint)) "
    "WITH (pages_per_range = 4, autosummarize = on)",
    "ix_cases_newest": "ON cases USING brin ((id::bigint)) "
    "WITH (pages_per_range = 4, autosummarize = on)",
}


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return  # SQLite filters each match through the case's primary key
    for name, definition in INDEXES.items():
        op.execute(f"CREATE INDEX {name} {definition}")


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    for name in INDEXES:
        op.execute(f"DROP INDEX {name}")
