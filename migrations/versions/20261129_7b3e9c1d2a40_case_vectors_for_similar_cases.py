"""Case vectors for similar cases, and the owed re-embedding and intake-reply marks.

Revision ID: 7b3e9c1d2a40
Revises: b7d2f4a8e915
Create Date: 2026-11-29 11:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "7b3e9c1d2a40"
down_revision: str | None = "b7d2f4a8e915"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "case_vectors",
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("embedded_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_case_vectors_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("case_id", name=op.f("pk_case_vectors")),
    )
    with op.batch_alter_table("case_vectors", schema=None) as batch_op:
        batch_op.create_index("ix_case_vectors_embedded", ["embedded_at"], unique=False)
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("vector_due_at", storage.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("similar_offered_at", storage.types.UTCDateTime(timezone=True), nullable=True)
        )
    # Cases resolved before this upgrade are owed a vector (`swarmbot embed-cases` or the
    # background sweep makes them); cards already posted are not offered similar cases.
    op.execute(
        "UPDATE cases SET vector_due_at = coalesce(resolved_at, updated_at) "
        "WHERE status = 'resolved'"
    )
    op.execute("UPDATE cases SET similar_offered_at = created_at WHERE thread_ts IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("similar_offered_at")
        batch_op.drop_column("vector_due_at")
    with op.batch_alter_table("case_vectors", schema=None) as batch_op:
        batch_op.drop_index("ix_case_vectors_embedded")
    op.drop_table("case_vectors")
