"""A narrow index of each case's topic by its id, for counting a topic's replies.

Revision ID: b7d2f4a8e915
Revises: a3e6b2c9d104
Create Date: 2026-11-29 12:05:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "b7d2f4a8e915"
down_revision: str | None = "a3e6b2c9d104"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_cases_topic_of", "cases", ["id", "team_id", "topic_key"])


def downgrade() -> None:
    op.drop_index("ix_cases_topic_of", table_name="cases")
