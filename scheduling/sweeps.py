"""What the scheduled jobs run: SLA timers and the one table of periodic sweeps.

The job store refers to `run_timer` and `run_sweep` by name; they run against the leader's
`Runtime`, set while this process leads.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, timedelta
from typing import TYPE_CHECKING

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from slack_sdk import WebClient

from bot.context import Swarm
from bot.listeners.home import publish_home
from workflows import (
    announcements,
    escalation,
    home,
    incident_room,
    reports,
    resolution,
    similarity,
    sla,
    status_webhook,
)
from workflows.config import SwarmConfig
from workflows.intake import publish_pending
from workflows.services import Services

if TYPE_CHECKING:
    from scheduling.scheduler import SwarmScheduler

log = logging.getLogger(__name__)

STALE_SWEEP_MAX = timedelta(minutes=5)
HOME_REFRESH_SECONDS = 3
# Resolved cases embedded per `vectors:embed` run (tens of ms each: a run stays in seconds).
EMBED_BATCH = 300


@dataclass
class Runtime:
    """What job bodies need: the services, a Slack client and the leading scheduler."""

    swarm: Swarm
    client: WebClient
    scheduler: SwarmScheduler
    # The last timeline entry the Home refresh has looked at (None: not yet, start from now).
    home_cursor: int | None = None

    def services(self) -> Services:
        return self.swarm.services(self.client)


_active: Runtime | None = None
_active_lock = threading.Lock()


def _runtime() -> Runtime:
    with _active_lock:
        if _active is None:
            raise RuntimeError("a scheduled job ran in a process that is not the leader")
        return _active


def set_runtime(runtime: Runtime | None) -> None:
    """Make `runtime` the one job bodies run against (None: this process does not lead)."""
    global _active
    with _active_lock:
        _active = runtime


def run_timer(case_id: int, kind: str) -> None:
    """Job body of an SLA timer (referenced by name from the job store)."""
    sla.fire_timer(_runtime().services(), case_id, kind)


def run_sweep(name: str) -> None:
    """Job body of a periodic sweep (referenced by name from the job store)."""
    BY_NAME[name].run(_runtime())


# -- the sweeps ------------------------------------------------------------------------------
def retry_pending_cards(rt: Runtime) -> None:
    """Post the cards (and filer notes) that Slack did not take earlier."""
    posted = publish_pending(rt.services())
    if posted:
        log.info("posted %d pending case card(s)", posted)


def reconcile_timers(rt: Runtime) -> None:
    """Arm the timers open cases need but the store lacks; drop those no case needs."""
    rt.scheduler.reconcile()


def nudge_stale_swarms(rt: Runtime) -> None:
    nudged = sla.nudge_stale(rt.services())
    if nudged:
        log.info("nudged %d quiet case thread(s)", nudged)


def post_digests(rt: Runtime) -> None:
    sent = sla.send_digests(rt.services())
    log.info("posted the daily digest to %d swarm channel(s)", sent)


def archive_incidents(rt: Runtime) -> None:
    archived = resolution.archive_resolved_incidents(rt.services())
    if archived:
        log.info("archived %d incident channel(s)", archived)


def resume_escalations(rt: Runtime) -> None:
    """Finish escalations Slack stopped half-way (also those of a process that died)."""
    finished = incident_room.resume_interrupted(
        rt.services(), then=escalation.apply_requested_severity
    )
    if finished:
        log.info("finished %d interrupted escalation(s)", finished)


def retry_owed_posts(rt: Runtime) -> None:
    """Send the messages (resolutions, reopen notes) Slack did not take earlier."""
    sent = announcements.deliver_owed(rt.services())
    if sent:
        log.info("sent %d owed message(s)", sent)


def post_weekly_charts(rt: Runtime) -> None:
    """Each swarm channel's chart of the last four weeks (once per channel and week)."""
    if not rt.swarm.config.reports.weekly.enabled:
        return
    sent = reports.post_weekly_charts(rt.services())
    log.info("posted the weekly chart to %d swarm channel(s)", sent)


def refresh_homes(rt: Runtime) -> None:
    """Republish each open Home a case changed on since the last run: once per user however
    many changes (the sweep's interval is the debounce)."""
    users, rt.home_cursor = home.homes_to_refresh(rt.services(), after_event=rt.home_cursor)
    for team_id, user_id in users:
        publish_home(rt.swarm, rt.client, team_id=team_id, user_id=user_id)
    if users:
        log.info("refreshed %d App Home view(s)", len(users))


def deliver_status_events(rt: Runtime) -> None:
    """Tell the ticketing system about status changes (or forget them when none listens)."""
    services = rt.services()
    hook = services.config.integrations.status_webhook
    if hook is None:
        status_webhook.prune(services, configured=False)
        return
    secret = os.environ.get(hook.secret_env, "")
    if not secret:
        log.error("status webhook: %s is not set; events are kept until it is", hook.secret_env)
        return
    receiver = status_webhook.Receiver(hook.url, secret)
    drained = status_webhook.deliver_due(services, receiver)
    if drained.delivered or drained.failed:
        log.info(
            "status webhook: %d event(s) delivered, %d failed", drained.delivered, drained.failed
        )
    status_webhook.prune(services, configured=True)


def offer_similar_cases(rt: Runtime) -> None:
    """Reply with similar resolved cases in the threads of new cases still owed one."""
    offered = similarity.offer_owed(rt.services())
    if offered:
        log.info("offered similar cases in %d new case thread(s)", offered)


def embed_resolved_cases(rt: Runtime) -> None:
    """Make the vectors of resolved cases whose record changed (a few hundred per run)."""
    made = rt.swarm.similar.embed_due(rt.swarm.uow, rt.swarm.clock, limit=EMBED_BATCH)
    if made:
        log.info("embedded %d resolved case(s) for similar cases", made)


# -- when they run ---------------------------------------------------------------------------
Trigger = Callable[[SwarmConfig], BaseTrigger]


def every(**interval: float) -> Trigger:
    """A fixed interval, whatever the configuration."""
    seconds = timedelta(**interval).total_seconds()
    return lambda config: IntervalTrigger(seconds=seconds, timezone=UTC)


def stale_check(config: SwarmConfig) -> BaseTrigger:
    """Often enough to nudge a quiet thread close to `stale_after`, at most every 5 minutes."""
    stale = min(STALE_SWEEP_MAX, max(timedelta(seconds=1), config.reminders.stale_after / 4))
    return IntervalTrigger(seconds=stale.total_seconds(), timezone=UTC)


def daily_digest(config: SwarmConfig) -> BaseTrigger:
    return CronTrigger(hour=config.reminders.digest_hour, minute=0, timezone=UTC)


def weekly_report(config: SwarmConfig) -> BaseTrigger:
    weekly = config.reports.weekly
    return CronTrigger(day_of_week=weekly.day, hour=weekly.hour, minute=weekly.minute, timezone=UTC)


@dataclass(frozen=True)
class Sweep:
    """A periodic job: its stable id, its body, when it runs, and whether also at take-over."""

    name: str
    run: Callable[[Runtime], None]
    trigger: Trigger
    at_start: bool = False


SWEEPS: tuple[Sweep, ...] = (
    Sweep("cards:retry", retry_pending_cards, every(seconds=60), at_start=True),
    Sweep("sla:reconcile", reconcile_timers, every(minutes=5)),
    Sweep("sla:stale", nudge_stale_swarms, stale_check),
    Sweep("digest:daily", post_digests, daily_digest),
    Sweep("incidents:archive", archive_incidents, every(minutes=15)),
    Sweep("escalations:resume", resume_escalations, every(seconds=60), at_start=True),
    Sweep("posts:retry", retry_owed_posts, every(seconds=60), at_start=True),
    Sweep("reports:weekly", post_weekly_charts, weekly_report),
    Sweep("home:refresh", refresh_homes, every(seconds=HOME_REFRESH_SECONDS), at_start=True),
    Sweep("webhooks:deliver", deliver_status_events, every(seconds=10), at_start=True),
    Sweep("similar:offer", offer_similar_cases, every(seconds=60), at_start=True),
    Sweep("vectors:embed", embed_resolved_cases, every(seconds=30), at_start=True),
)
BY_NAME = {sweep.name: sweep for sweep in SWEEPS}
