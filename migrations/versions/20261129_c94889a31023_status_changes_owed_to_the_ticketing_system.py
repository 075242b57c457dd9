"""Status changes owed to the ticketing system, recorded by triggers on cases.

A trigger on `cases` writes a `status_events` row in the transaction of every change that the
status webhook reports: a case filed (insert), a new status, and a new severity of an
escalated case. Being in the database, it sees every code path (ORM flushes and conditional
UPDATE statements alike) and can never be committed without its event.

Revision ID: c94889a31023
Revises: 9d5a1e3f7c82
Create Date: 2026-11-29 11:01:29.740910
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "c94889a31023"
down_revision: str | None = "9d5a1e3f7c82"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COPIED = (
    "status, severity, resolution, root_cause, workaround, kb_link, resolved_by, "
    "incident_channel_id"
)
COPIED_FROM_NEW = ", ".join(f"NEW.{c.strip()}" for c in COPIED.split(","))
COLUMNS = f"event_id, case_id, old_status, old_severity, {COPIED}, created_at, attempts"
# A status change, or a new severity while the case stays escalated (a severity is also set
# just before a case becomes escalated; that change is reported with the escalation).
CHANGED = (
    "OLD.status IS NOT NEW.status OR (OLD.status = 'escalated' AND NEW.status = 'escalated' "
    "AND OLD.severity IS NOT NEW.severity)"
)


def upgrade() -> None:
    op.create_table(
        "status_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("old_status", sa.String(length=16), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("old_severity", sa.Integer(), nullable=True),
        sa.Column("severity", sa.Integer(), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.Column("root_cause", sa.Text(), nullable=True),
        sa.Column("workaround", sa.Text(), nullable=True),
        sa.Column("kb_link", sa.String(length=1024), nullable=True),
        sa.Column("resolved_by", sa.String(length=32), nullable=True),
        sa.Column("incident_channel_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("delivered_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_status_events_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_status_events")),
        sa.UniqueConstraint("event_id", name=op.f("uq_status_events_event_id")),
    )
    with op.batch_alter_table("status_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_status_events_undelivered", ["delivered_at", "case_id", "id"], unique=False
        )
    if op.get_context().dialect.name == "postgresql":
        _triggers_postgresql()
    else:
        _triggers_sqlite()


def _triggers_sqlite() -> None:
    event_id = "lower(hex(randomblob(16)))"
    op.execute(
        f"""CREATE TRIGGER cases_status_filed AFTER INSERT ON cases BEGIN
            INSERT INTO status_events ({COLUMNS})
            VALUES ({event_id}, NEW.id, NULL, NULL, {COPIED_FROM_NEW}, NEW.updated_at, 0);
        END"""
    )
    op.execute(
        f"""CREATE TRIGGER cases_status_changed AFTER UPDATE OF status, severity ON cases
        WHEN {CHANGED} BEGIN
            INSERT INTO status_events ({COLUMNS})
            VALUES ({event_id}, NEW.id, OLD.status, OLD.severity, {COPIED_FROM_NEW},
                    NEW.updated_at, 0);
        END"""
    )


def _triggers_postgresql() -> None:
    event_id = "replace(gen_random_uuid()::text, '-', '')"
    changed = CHANGED.replace("IS NOT", "IS DISTINCT FROM")
    op.execute(
        f"""CREATE FUNCTION cases_status_event() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                INSERT INTO status_events ({COLUMNS})
                VALUES ({event_id}, NEW.id, NULL, NULL, {COPIED_FROM_NEW}, NEW.updated_at, 0);
            ELSIF {changed} THEN
                INSERT INTO status_events ({COLUMNS})
                VALUES ({event_id}, NEW.id, OLD.status, OLD.severity, {COPIED_FROM_NEW},
                        NEW.updated_at, 0);
            END IF;
            RETURN NULL;
        END $$"""
    )
    op.execute(
        """CREATE TRIGGER cases_status_event AFTER INSERT OR UPDATE OF status, severity
        ON cases FOR EACH ROW EXECUTE FUNCTION cases_status_event()"""
    )


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP TRIGGER cases_status_event ON cases")
        op.execute("DROP FUNCTION cases_status_event()")
    else:
        op.execute("DROP TRIGGER cases_status_filed")
        op.execute("DROP TRIGGER cases_status_changed")
    with op.batch_alter_table("status_events", schema=None) as batch_op:
        batch_op.drop_index("ix_status_events_undelivered")
    op.drop_table("status_events")
