"""Schema migrations (alembic) run from code: `swarmbot migrate` and start-up."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

import migrations
from storage.db import DatabaseUnusable, normalise_url

# Tables created by libraries (the scheduler's job store), not by our migrations.
FOREIGN_TABLES = ("apscheduler_jobs",)


def alembic_config(url: str) -> Config:
    """An alembic Config for our migrations on `url`, independent of the working directory."""
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    config.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    config.attributes["foreign_tables"] = FOREIGN_TABLES
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply pending migrations."""
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def require_migrated(engine: Engine) -> None:
    """DatabaseUnusable unless the database is at the code's revision."""
    current, head = current_revision(engine), head_revision()
    if current is None:
        raise DatabaseUnusable("the database has no tables yet: run `swarmbot migrate` first")
    if current != head:
        raise DatabaseUnusable(
            f"the database is at revision {current}, the code needs {head}: "
            "run `swarmbot migrate` first"
        )


def head_revision() -> str | None:
    """The newest revision in the code."""
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
