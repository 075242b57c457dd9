"""An index of the open queue alone (a partial index on cases not resolved), oldest first.

Revision ID: a3e6b2c9d104
Revises: 7c3e9a1f5b60
Create Date: 2026-11-29 11:50:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a3e6b2c9d104"
down_revision: str | None = "7c3e9a1f5b60"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN_CASES = "status != 'resolved'"


def upgrade() -> None:
    op.create_index(
        "ix_cases_team_open",
        "cases",
        ["team_id", "created_at", "topic_key"],
        sqlite_where=sa.text(OPEN_CASES),
        postgresql_where=sa.text(OPEN_CASES),
    )


def downgrade() -> None:
    op.drop_index("ix_cases_team_open", table_name="cases")
