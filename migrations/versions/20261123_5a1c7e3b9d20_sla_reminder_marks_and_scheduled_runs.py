"""Record SLA reminders, stale nudges and once-only scheduled runs.

Revision ID: 5a1c7e3b9d20
Revises: d0752491e578
Create Date: 2026-11-23 08:45:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "5a1c7e3b9d20"
down_revision: str | None = "d0752491e578"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        for name in ("first_response_reminded_at", "resolution_reminded_at", "stale_nudged_at"):
            batch.add_column(
                sa.Column(name, storage.types.UTCDateTime(timezone=True), nullable=True)
            )
    op.create_table(
        "scheduled_runs",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("ran_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_scheduled_runs")),
    )


def downgrade() -> None:
    op.drop_table("scheduled_runs")
    with op.batch_alter_table("cases") as batch:
        for name in ("stale_nudged_at", "resolution_reminded_at", "first_response_reminded_at"):
            batch.drop_column(name)
