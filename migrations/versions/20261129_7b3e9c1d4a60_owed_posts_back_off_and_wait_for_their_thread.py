"""Owed posts back off one by one, may wait for their case's thread, and may be card updates.

Revision ID: 7b3e9c1d4a60
Revises: 7b3e9c1d5a60
Create Date: 2026-11-29 11:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "7b3e9c1d4a60"
down_revision: str | None = "7b3e9c1d5a60"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("pending_posts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=16), nullable=False, server_default="post")
        )
        batch_op.add_column(sa.Column("via_channel_id", sa.String(length=32), nullable=True))
        batch_op.add_column(
            sa.Column("next_attempt_at", storage.types.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("pending_posts", schema=None) as batch_op:
        batch_op.drop_column("next_attempt_at")
        batch_op.drop_column("via_channel_id")
        batch_op.drop_column("kind")
