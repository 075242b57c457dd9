"""Replies by person, topic and UTC day, kept by triggers on messages, for the figures.

Revision ID: c8e1f5a2b306
Revises: 7b3e9c1d2a40
Create Date: 2026-11-29 12:15:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c8e1f5a2b306"
down_revision: str | None = "7b3e9c1d2a40"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A message counts when a person wrote it and it is not deleted; an edit of its text changes
# nothing, a deletion uncounts it.
CHANGES = "deleted_at, is_bot, user_id, posted_at, case_id"
COUNTS = "{m}.is_bot = {false} AND {m}.user_id IS NOT NULL AND {m}.deleted_at IS NULL"

SQLITE_DAY = "substr({m}.posted_at, 1, 10)"
SQLITE_TOPIC = "(SELECT topic_key FROM cases WHERE id = {m}.case_id)"
SQLITE = [
    f"""CREATE TRIGGER reply_days_insert AFTER INSERT ON messages
    WHEN {COUNTS.format(m="NEW", false=0)}
    BEGIN
        INSERT INTO reply_days (team_id, day, topic_key, user_id, replies)
        VALUES (NEW.team_id, {SQLITE_DAY.format(m="NEW")}, {SQLITE_TOPIC.format(m="NEW")},
                NEW.user_id, 1)
        ON CONFLICT (team_id, day, topic_key, user_id) DO UPDATE SET replies = replies + 1;
    END""",
    f"""CREATE TRIGGER reply_days_delete AFTER DELETE ON messages
    WHEN {COUNTS.format(m="OLD", false=0)}
    BEGIN
        UPDATE reply_days SET replies = replies - 1
        WHERE team_id = OLD.team_id AND day = {SQLITE_DAY.format(m="OLD")}
          AND topic_key = {SQLITE_TOPIC.format(m="OLD")} AND user_id = OLD.user_id;
    END""",
    f"""CREATE TRIGGER reply_days_uncount AFTER UPDATE OF {CHANGES} ON messages
    WHEN {COUNTS.format(m="OLD", false=0)}
    BEGIN
        UPDATE reply_days SET replies = replies - 1
        WHERE team_id = OLD.team_id AND day = {SQLITE_DAY.format(m="OLD")}
          AND topic_key = {SQLITE_TOPIC.format(m="OLD")} AND user_id = OLD.user_id;
    END""",
    f"""CREATE TRIGGER reply_days_count AFTER UPDATE OF {CHANGES} ON messages
    WHEN {COUNTS.format(m="NEW", false=0)}
    BEGIN
        INSERT INTO reply_days (team_id, day, topic_key, user_id, replies)
        VALUES (NEW.team_id, {SQLITE_DAY.format(m="NEW")}, {SQLITE_TOPIC.format(m="NEW")},
                NEW.user_id, 1)
        ON CONFLICT (team_id, day, topic_key, user_id) DO UPDATE SET replies = replies + 1;
    END""",
]
SQLITE_TRIGGERS = (
    "reply_days_insert",
    "reply_days_delete",
    "reply_days_uncount",
    "reply_days_count",
)

PG_DAY = "to_char({m}.posted_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
POSTGRESQL = [
    f"""CREATE FUNCTION reply_days_keep() RETURNS trigger AS $$
    BEGIN
        IF TG_OP IN ('UPDATE', 'DELETE') AND {COUNTS.format(m="OLD", false="false")} THEN
            UPDATE reply_days SET replies = replies - 1
            WHERE team_id = OLD.team_id AND day = {PG_DAY.format(m="OLD")}
              AND topic_key = (SELECT topic_key FROM cases WHERE id = OLD.case_id)
              AND user_id = OLD.user_id;
        END IF;
        IF TG_OP IN ('UPDATE', 'INSERT') AND {COUNTS.format(m="NEW", false="false")} THEN
            INSERT INTO reply_days (team_id, day, topic_key, user_id, replies)
            VALUES (NEW.team_id, {PG_DAY.format(m="NEW")},
                    (SELECT topic_key FROM cases WHERE id = NEW.case_id), NEW.user_id, 1)
            ON CONFLICT (team_id, day, topic_key, user_id)
            DO UPDATE SET replies = reply_days.replies + 1;
        END IF;
        RETURN NULL;
    END
    $$ LANGUAGE plpgsql""",
    f"""CREATE TRIGGER reply_days_keep AFTER INSERT OR UPDATE OF {CHANGES} OR DELETE ON messages
    FOR EACH ROW EXECUTE FUNCTION reply_days_keep()""",
]


def upgrade() -> None:
    op.create_table(
        "reply_days",
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("topic_key", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("replies", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "team_id", "day", "topic_key", "user_id", name=op.f("pk_reply_days")
        ),
    )
    postgresql = op.get_bind().dialect.name == "postgresql"
    day = PG_DAY if postgresql else SQLITE_DAY
    op.execute(
        "INSERT INTO reply_days (team_id, day, topic_key, user_id, replies) "
        f"SELECT m.team_id, {day.format(m='m')}, c.topic_key, m.user_id, count(*) "
        "FROM messages m JOIN cases c ON c.id = m.case_id "
        f"WHERE {COUNTS.format(m='m', false='false' if postgresql else 0)} "
        f"GROUP BY m.team_id, {day.format(m='m')}, c.topic_key, m.user_id"
    )
    for statement in POSTGRESQL if postgresql else SQLITE:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER reply_days_keep ON messages")
        op.execute("DROP FUNCTION reply_days_keep()")
    else:
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER {name}")
    op.drop_table("reply_days")
