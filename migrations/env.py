"""Alembic environment: runs on the connection or URL handed over by storage.migrate."""

from __future__ import annotations

from alembic import context

from storage.db import create_db_engine
from storage.models import Base
from storage.search import managed_by_search

config = context.config
target_metadata = Base.metadata


def include_object(obj, name, type_, reflected, compare_to) -> bool:  # type: ignore[no-untyped-def]
    """Tables we do not own (the scheduler's job store) and the search indexes (made by hand in
    their revision: FTS5 tables, tsvector columns, GIN indexes) are left alone."""
    if reflected and compare_to is None and managed_by_search(name):
        return False
    return not (
        type_ == "table"
        and reflected
        and compare_to is None
        and name in config.attributes.get("foreign_tables", ())
    )


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_db_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        include_object=include_object,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
