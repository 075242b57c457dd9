"""Full-text search of case records: FTS5 tables on SQLite, tsvector columns with GIN on PostgreSQL.

Revision ID: 5e4c1a7b9d20
Revises: 5a1c7e3b9d20
Create Date: 2026-11-23 08:45:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "5e4c1a7b9d20"
down_revision: str | None = "5a1c7e3b9d20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# What a message is found by: its text and the names and titles of its files.
SQLITE_MESSAGE_BODY = """
    {row}.text || ' ' || coalesce((
        SELECT group_concat(
            coalesce(json_extract(f.value, '$.name'), '') || ' '
            || coalesce(json_extract(f.value, '$.title'), ''), ' ')
        FROM json_each(CASE WHEN json_valid({row}.files) THEN {row}.files ELSE '[]' END) AS f
    ), '')
"""
SQLITE_CASE_COLUMNS = "case_number, summary, details, customer, resolution"
SQLITE_CASE_VALUES = (
    "{row}.case_number, {row}.summary, {row}.details, {row}.customer, "
    "coalesce({row}.resolution, '')"
)

PG_MESSAGE_VECTOR = """
    to_tsvector('english'::regconfig,
        coalesce(text, '') || ' ' ||
        coalesce(jsonb_path_query_array(files::jsonb, '$[*].name')::text, '') || ' ' ||
        coalesce(jsonb_path_query_array(files::jsonb, '$[*].title')::text, ''))
"""
PG_CASE_VECTOR = """
    setweight(to_tsvector('simple'::regconfig, coalesce(case_number, '')), 'A') ||
    setweight(to_tsvector('english'::regconfig, coalesce(summary, '')), 'A') ||
    setweight(to_tsvector('english'::regconfig, coalesce(customer, '')), 'B') ||
    setweight(to_tsvector('english'::regconfig, coalesce(resolution, '')), 'B') ||
    setweight(to_tsvector('english'::regconfig, coalesce(details, '')), 'C')
"""


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        _upgrade_postgresql()
    else:
        _upgrade_sqlite()


def _upgrade_sqlite() -> None:
    message_body = SQLITE_MESSAGE_BODY.format(row="new")
    op.execute("CREATE VIRTUAL TABLE messages_fts USING fts5(body, tokenize = 'porter unicode61')")
    op.execute(
        f"""CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages
        WHEN new.deleted_at IS NULL BEGIN
            INSERT INTO messages_fts (rowid, body) VALUES (new.id, {message_body});
        END"""
    )
    op.execute(
        f"""CREATE TRIGGER messages_fts_update AFTER UPDATE OF text, files, deleted_at
        ON messages BEGIN
            DELETE FROM messages_fts WHERE rowid = old.id;
            INSERT INTO messages_fts (rowid, body)
                SELECT new.id, {message_body} WHERE new.deleted_at IS NULL;
        END"""
    )
    op.execute(
        """CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
            DELETE FROM messages_fts WHERE rowid = old.id;
        END"""
    )
    op.execute(
        f"""INSERT INTO messages_fts (rowid, body)
        SELECT messages.id, {SQLITE_MESSAGE_BODY.format(row="messages")}
        FROM messages WHERE messages.deleted_at IS NULL"""
    )

    op.execute(
        f"CREATE VIRTUAL TABLE cases_fts USING fts5({SQLITE_CASE_COLUMNS}, "
        "tokenize = 'porter unicode61')"
    )
    case_values = SQLITE_CASE_VALUES.format(row="new")
    op.execute(
        f"""CREATE TRIGGER cases_fts_insert AFTER INSERT ON cases BEGIN
            INSERT INTO cases_fts (rowid, {SQLITE_CASE_COLUMNS}) VALUES (new.id, {case_values});
        END"""
    )
    op.execute(
        f"""CREATE TRIGGER cases_fts_update
        AFTER UPDATE OF case_number, summary, details, customer, resolution ON cases BEGIN
            DELETE FROM cases_fts WHERE rowid = old.id;
            INSERT INTO cases_fts (rowid, {SQLITE_CASE_COLUMNS}) VALUES (new.id, {case_values});
        END"""
    )
    op.execute(
        """CREATE TRIGGER cases_fts_delete AFTER DELETE ON cases BEGIN
            DELETE FROM cases_fts WHERE rowid = old.id;
        END"""
    )
    op.execute(
        f"""INSERT INTO cases_fts (rowid, {SQLITE_CASE_COLUMNS})
        SELECT cases.id, {SQLITE_CASE_VALUES.format(row="cases")} FROM cases"""
    )


def _upgrade_postgresql() -> None:
    op.execute(
        f"ALTER TABLE messages ADD COLUMN search_vector tsvector "
        f"GENERATED ALWAYS AS ({PG_MESSAGE_VECTOR}) STORED"
    )
    op.execute("CREATE INDEX ix_messages_search ON messages USING gin (search_vector)")
    op.execute(
        f"ALTER TABLE cases ADD COLUMN search_vector tsvector "
        f"GENERATED ALWAYS AS ({PG_CASE_VECTOR}) STORED"
    )
    op.execute("CREATE INDEX ix_cases_search ON cases USING gin (search_vector)")


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_cases_search")
        op.execute("ALTER TABLE cases DROP COLUMN search_vector")
        op.execute("DROP INDEX ix_messages_search")
        op.execute("ALTER TABLE messages DROP COLUMN search_vector")
        return
    for table in ("messages", "cases"):
        for when in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER {table}_fts_{when}")
        op.execute(f"DROP TABLE {table}_fts")
