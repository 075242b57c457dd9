"""`swarmbot`: run the bot, migrate the database, check the configuration."""

from __future__ import annotations

import logging
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn

import click
from slack_sdk.errors import SlackApiError, SlackClientError

from bot import redaction
from bot.settings import Settings, SettingsError, load_settings
from workflows.config import (
    ConfigError,
    SwarmConfig,
    config_warnings,
    load_config,
    parse_config,
    read_config_text,
)

log = logging.getLogger("swarm")

SECRET_VARIABLES = (
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "SWARM_WEBHOOK_SECRET",
)


def fail(message: str, code: int = 2) -> NoReturn:
    """One line on stderr (secrets redacted), then exit."""
    click.echo(f"swarmbot: {redaction.redact(' '.join(message.split()))}", err=True)
    sys.exit(code)


def settings_or_exit() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        fail(str(exc))


def config_or_exit(path: Path) -> SwarmConfig:
    try:
        config = load_config(path)
    except ConfigError as exc:
        click.echo(f"swarmbot: {exc.source} has {len(exc.problems)} problem(s):", err=True)
        for problem in exc.problems:
            click.echo(f"  {problem}", err=True)
        sys.exit(2)
    for warning in config_warnings(read_config_text(path), config):
        log.warning("%s: %s", path, warning)
    return config


def database_or_exit(settings: Settings) -> None:
    """Exit with one line unless DATABASE_URL is an existing, migrated database.

    For commands that only read or update: they must never create a database on a mistyped
    URL, nor fail with a traceback on one that was never migrated.
    """
    from storage.db import DatabaseUnusable, create_db_engine, require_existing
    from storage.migrate import require_migrated

    try:
        require_existing(settings.database_url)
        engine = create_db_engine(settings.database_url)
        try:
            require_migrated(engine)
        finally:
            engine.dispose()
    except DatabaseUnusable as exc:
        fail(f"DATABASE_URL: {exc}")
    except Exception as exc:  # an unreachable database is an operator problem, not a bug
        fail(f"DATABASE_URL: cannot open the database ({_why(exc)})")


def _why(error: BaseException) -> str:
    """The kind and first line of an error, for a one-line message."""
    return f"{type(error).__name__}: {next(iter(str(error).strip().splitlines()), '')}"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="swarmbot", prog_name="swarmbot")
def main() -> None:
    """Swarm: Slack-native case swarming."""
    redaction.install(os.environ.get(name) for name in SECRET_VARIABLES)


def secrets_of(settings: Settings, config: SwarmConfig) -> list[str]:
    """Every secret to keep out of the logs; stops when the status webhook's is missing."""
    hook = config.integrations.status_webhook
    if hook is None:
        return settings.secrets
    secret = os.environ.get(hook.secret_env, "")
    if not secret:
        fail(
            f"{hook.secret_env} is not set: it holds the secret of "
            f"integrations.status_webhook in {settings.swarm_config}"
        )
    return [*settings.secrets, secret]


@main.command()
def run() -> None:
    """Apply pending migrations, then serve (Socket Mode with SLACK_APP_TOKEN, else HTTP)."""
    from bot.runtime import configure_logging

    settings = settings_or_exit()
    configure_logging(settings.log_level, settings.secrets)
    try:
        settings.require_serving()
    except SettingsError as exc:
        fail(str(exc))
    config = config_or_exit(settings.swarm_config)
    configure_logging(settings.log_level, secrets_of(settings, config))

    from bot.channels import resolve_channel_names
    from bot.gateway import web_client
    from storage.db import create_db_engine
    from storage.migrate import upgrade

    engine = create_db_engine(settings.database_url)
    try:
        upgrade(engine)
        from scheduling.scheduler import ensure_job_table

        ensure_job_table(engine)  # once here, before several workers start their schedulers
    except Exception as exc:  # an unreachable database is an operator problem, not a bug
        fail(f"DATABASE_URL: cannot migrate the database ({_why(exc)})")
    engine.dispose()
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    client = web_client(token, settings.slack_api_url)
    try:
        identity = client.auth_test()
    except SlackApiError as exc:
        fail(f"SLACK_BOT_TOKEN: Slack rejected the token ({exc.response.get('error')})")
    except (SlackClientError, OSError) as exc:
        fail(f"SLACK_API_URL: cannot reach Slack at {settings.slack_api_url} ({exc})")
    log.info("connected to workspace %s as %s", identity.get("team"), identity.get("user"))
    try:
        config = resolve_channel_names(config, client)
    except ConfigError as exc:
        fail("; ".join(str(p) for p in exc.problems))
    if settings.socket_mode:
        _serve_socket_mode(settings, config)
    else:
        _serve_http(settings, config)


def _serve_socket_mode(settings: Settings, config: SwarmConfig) -> None:
    from bot.app import create_app
    from bot.runtime import build_swarm
    from bot.server import CheckedSocketModeHandler
    from scheduling.scheduler import start_scheduler

    swarm = build_swarm(settings, config=config)
    app = create_app(swarm)
    start_scheduler(swarm, app.client)
    log.info("serving in Socket Mode")
    assert settings.slack_app_token is not None
    try:
        # Each envelope holds a handler thread only until its ack; listeners run on the app's
        # own executor (LISTENER_THREADS), so slow Slack calls never hold up an ack.
        CheckedSocketModeHandler(
            app, settings.slack_app_token.get_secret_value(), concurrency=settings.web_threads
        ).start()
    except SlackApiError as exc:
        fail(
            f"SLACK_APP_TOKEN: Slack refused the Socket Mode connection "
            f"({exc.response.get('error')})"
        )


def _serve_http(settings: Settings, config: SwarmConfig) -> None:
    from bot.server import serve_http

    def factory():  # type: ignore[no-untyped-def]
        from bot.runtime import build_http, build_swarm, configure_logging
        from scheduling.scheduler import start_scheduler

        configure_logging(settings.log_level, secrets_of(settings, config))
        swarm = build_swarm(settings, config=config)
        app, http = build_http(swarm)
        start_scheduler(swarm, app.client)
        return http

    log.info(
        "serving HTTP on port %s at /slack/events with %d worker(s) of %d thread(s), "
        "%d listener thread(s) each",
        settings.port,
        settings.web_concurrency,
        settings.web_threads,
        settings.listener_threads,
    )
    serve_http(
        factory,
        port=settings.port,
        workers=settings.web_concurrency,
        threads=settings.web_threads,
    )


@main.command()
def migrate() -> None:
    """Apply pending migrations to DATABASE_URL (alembic upgrade head)."""
    from storage.db import create_db_engine
    from storage.migrate import current_revision, upgrade

    settings = settings_or_exit()
    engine = create_db_engine(settings.database_url)
    try:
        upgrade(engine)
    except Exception as exc:
        fail(f"DATABASE_URL: cannot migrate the database ({_why(exc)})")
    click.echo(f"database is at revision {current_revision(engine)}")


@main.command()
@click.option("--limit", default=50, show_default=True, help="Show at most this many (0: all).")
def jobs(limit: int) -> None:
    """List pending timers and scheduled work by due time: due (UTC), case, kind."""
    from scheduling.listing import pending_jobs
    from storage.db import create_db_engine

    settings = settings_or_exit()
    database_or_exit(settings)
    engine = create_db_engine(settings.database_url)
    try:
        rows, total = pending_jobs(engine, limit=limit or None)
    except Exception as exc:  # an unreachable database is an operator problem, not a bug
        fail(f"DATABASE_URL: cannot read the scheduled jobs ({_why(exc)})")
    finally:
        engine.dispose()
    if not rows:
        click.echo("no pending jobs")
        return
    click.echo(f"{'due (UTC)':<20}  {'case':<12}  kind")
    for row in rows:
        due = row.due.strftime("%Y-%m-%d %H:%M:%S") if row.due else "paused"
        click.echo(f"{due:<20}  {row.case_number or '-':<12}  {row.kind}")
    if total > len(rows):
        click.echo(f"... {total - len(rows)} more (--limit 0 shows all)")


@main.command()
@click.option("--limit", default=50, show_default=True, help="Show at most this many (0: all).")
def webhooks(limit: int) -> None:
    """List status events the ticketing system has not taken yet, oldest first."""
    from bot.runtime import build_swarm
    from workflows.status_webhook import undelivered

    settings = settings_or_exit()
    config = config_or_exit(settings.swarm_config)
    database_or_exit(settings)
    swarm = build_swarm(settings, config=config)
    try:
        rows, total = undelivered(swarm.uow, limit=limit or None)
    except Exception as exc:  # an unreachable database is an operator problem, not a bug
        fail(f"DATABASE_URL: cannot read the status events ({type(exc).__name__}: {exc})")
    if config.integrations.status_webhook is None:
        click.echo("no status webhook configured (integrations.status_webhook in swarm.yaml)")
    if not rows:
        click.echo("no undelivered status events")
        return
    click.echo(
        f"{'recorded (UTC)':<20}  {'case':<12}  {'event':<17}  {'tries':>5}  "
        f"{'next try (UTC)':<20}  last error"
    )
    for row in rows:
        then = row.next_attempt_at.strftime("%Y-%m-%d %H:%M:%S") if row.next_attempt_at else "now"
        click.echo(
            f"{row.created_at:%Y-%m-%d %H:%M:%S}  {row.case_number:<12}  {row.kind:<17}  "
            f"{row.attempts:>5}  {then:<20}  {row.last_error or '-'}"
        )
    if total > len(rows):
        click.echo(f"... {total - len(rows)} more (--limit 0 shows all)")


@main.command()
@click.option("--channel", help="Only cases in this channel (swarm or incident channel id).")
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Only cases filed on or after this date (UTC), e.g. 2026-01-31.",
)
@click.option(
    "--state",
    type=click.Path(path_type=Path, dir_okay=False),
    default=".swarmbot-reindex.json",
    show_default=True,
    help="Where progress is kept so an interrupted run resumes; removed when done.",
)
@click.option("--fresh", is_flag=True, help="Ignore the progress of an interrupted run.")
def reindex(channel: str | None, since: datetime | None, state: Path, fresh: bool) -> None:
    """Load existing case threads (and incident channels) from Slack into the record.

    Safe to interrupt (Ctrl-C, a Slack outage) and run again with the same options: it resumes
    after the cases already done and never stores a message twice.
    """
    from bot.runtime import build_swarm, tool_services
    from workflows import backfill
    from workflows.errors import SlackUnavailable

    settings = settings_or_exit()
    config = config_or_exit(settings.swarm_config)
    database_or_exit(settings)
    swarm = build_swarm(settings, config=config)
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    if not token:
        fail("SLACK_BOT_TOKEN: required to read threads from Slack")
    services = tool_services(swarm, retries=8)
    selection = backfill.Selection(
        channel_id=channel, since=since.replace(tzinfo=UTC) if since else None
    )
    try:
        case_ids = backfill.cases_to_reindex(services, selection)
    except Exception as exc:
        fail(f"DATABASE_URL: cannot read the cases ({_why(exc)})")
    checkpoint = backfill.Checkpoint.load(None if fresh else state, selection.key)
    if fresh:
        checkpoint.path = state
    resumed = len(checkpoint.done & set(case_ids))
    if resumed:
        click.echo(f"resuming: {resumed} of {len(case_ids)} case(s) already done")
    try:
        with click.progressbar(length=len(case_ids), label="Reindexing cases") as bar:
            cases, messages = backfill.reindex(services, case_ids, checkpoint, progress=bar.update)
    except SlackUnavailable as exc:
        fail(f"stopped: {exc}. Run the same command again to resume.", code=1)
    except KeyboardInterrupt:
        fail("interrupted. Run the same command again to resume.", code=130)
    click.echo(f"reindexed {cases} case(s): {messages} message(s) added or updated")


@main.command("embed-cases")
@click.option(
    "--all", "everything", is_flag=True, help="Embed every resolved case again, not only owed ones."
)
def embed_cases(everything: bool) -> None:
    """Make the similar-cases vectors of resolved cases, with a progress bar.

    Cases resolved before similar cases existed, or whose record changed since, are owed one
    (the bot also makes them in the background, a few hundred a minute). Safe to interrupt
    and run again: what is done stays done.
    """
    from bot.runtime import build_swarm
    from workflows.embedding import ModelUnavailable

    settings = settings_or_exit()
    config = config_or_exit(settings.swarm_config)
    swarm = build_swarm(settings, config=config)
    try:
        owed = swarm.similar.count_due(swarm.uow, everything=everything)
        with click.progressbar(length=owed, label="Embedding resolved cases") as bar:
            done = swarm.similar.embed_due(swarm.uow, swarm.clock, progress=bar.update)
    except ModelUnavailable as exc:
        fail(f"the embedding model is not installed: {exc}", code=1)
    except KeyboardInterrupt:
        fail("interrupted. Run the same command again to go on.", code=130)
    click.echo(f"embedded {done} resolved case(s)")


@main.command()
@click.argument("case_number")
@click.option("--format", "fmt", type=click.Choice(["md", "json"]), default="md", show_default=True)
@click.option("--team", help="Workspace id, when the case number exists in several.")
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path, dir_okay=False),
    help="File (default: stdout).",
)
def export(case_number: str, fmt: str, team: str | None, output: Path | None) -> None:
    """Export a case: card fields, timeline, every message with author and time, resolution."""
    from bot.runtime import build_swarm, tool_services
    from workflows.errors import SwarmError
    from workflows.export import case_record, to_json, to_markdown

    settings = settings_or_exit()
    config = config_or_exit(settings.swarm_config)
    database_or_exit(settings)
    swarm = build_swarm(settings, config=config)
    try:
        record = case_record(tool_services(swarm), case_number=case_number, team_id=team)
    except SwarmError as exc:
        fail(str(exc), code=1)
    text = to_json(record) + "\n" if fmt == "json" else to_markdown(record)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)


@main.command()
@click.option(
    "--period",
    type=click.Choice(["7d", "30d", "90d", "all"]),
    default="7d",
    show_default=True,
    help="The period ending now; each figure is compared with the period before it.",
)
@click.option("--topic", help="Only this topic (default: all, with a per-topic breakdown).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
)
@click.option("--team", help="Workspace id, when the database serves several.")
@click.option(
    "--until",
    type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]),
    help="End the period at this moment (UTC) instead of now, e.g. 2026-11-23T09:00:00.",
)
def stats(
    period: str, topic: str | None, fmt: str, team: str | None, until: datetime | None
) -> None:
    """The swarm's figures: cases filed, open queue, response and resolution times, rates,
    escalations, per topic and per person."""
    from bot.runtime import build_swarm, tool_services
    from workflows import metrics
    from workflows.errors import SwarmError

    settings = settings_or_exit()
    config = config_or_exit(settings.swarm_config)
    database_or_exit(settings)
    swarm = build_swarm(settings, config=config)
    try:
        services = tool_services(swarm)
        team_id = team or _only_team(services)
        report = metrics.report(
            services,
            team_id=team_id,
            period=period,
            topic=topic,
            people_topics=None,
            until=until.replace(tzinfo=UTC) if until else None,
        )
    except SwarmError as exc:
        fail(str(exc), code=1)
    render = {"table": metrics.to_table, "csv": metrics.to_csv, "json": metrics.to_json}[fmt]
    text = render(report)
    click.echo(text, nl=not text.endswith("\n"))


def _only_team(services) -> str:  # type: ignore[no-untyped-def]
    """The one workspace of the database (`--team` picks one when there are several)."""
    from workflows.cases import workspaces
    from workflows.errors import SwarmError

    teams = workspaces(services)
    if len(teams) > 1:
        raise SwarmError(f"the database serves {len(teams)} workspaces: pick one with --team")
    if not teams:
        raise SwarmError("no cases yet: the database serves no workspace")
    return teams[0]


@main.command("check-config")
@click.argument("path", required=False, type=click.Path(path_type=Path))
def check_config(path: Path | None) -> None:
    """Validate swarm.yaml (or PATH); print each problem with its location. Exit 0 or 1."""
    if path is None:
        path = settings_or_exit().swarm_config
    try:
        text = read_config_text(path)
        config = parse_config(text, str(path))
    except ConfigError as exc:
        click.echo(f"{exc.source}: {len(exc.problems)} problem(s)")
        for problem in exc.problems:
            click.echo(f"  {problem}")
        sys.exit(1)
    warnings = config_warnings(text, config)
    for warning in warnings:
        click.echo(f"  warning: {warning}")
    noted = f", {len(warnings)} warning(s)" if warnings else ""
    click.echo(f"{path}: ok ({len(config.topics)} topic(s){noted})")


@main.command("archive-incidents")
def archive_incidents() -> None:
    """Archive incident channels of cases resolved at least `escalation.archive_after` ago."""
    from bot.runtime import build_swarm, configure_logging, tool_services
    from workflows.resolution import archive_resolved_incidents

    settings = settings_or_exit()
    config = config_or_exit(settings.swarm_config)
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    if not token:
        fail("SLACK_BOT_TOKEN: required to archive incident channels")
    database_or_exit(settings)
    configure_logging(settings.log_level, settings.secrets)
    swarm = build_swarm(settings, config=config)
    count = archive_resolved_incidents(tool_services(swarm))
    click.echo(f"archived {count} incident channel(s)")


if __name__ == "__main__":
    main()
