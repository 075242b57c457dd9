"""Add when an incident channel was archived and the lease of an escalation in progress.

Revision ID: 5e1c2a7b9d40
Revises: 5e4c1a7b9d20
Create Date: 2026-11-23 08:50:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "5e1c2a7b9d40"
down_revision: str | None = "5e4c1a7b9d20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(
            sa.Column("incident_archived_at", storage.types.UTCDateTime(timezone=True))
        )
        batch.add_column(
            sa.Column("escalation_claimed_at", storage.types.UTCDateTime(timezone=True))
        )


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("escalation_claimed_at")
        batch.drop_column("incident_archived_at")
