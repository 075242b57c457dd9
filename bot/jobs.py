"""Background work of a running bot."""

from __future__ import annotations

import logging

from apscheduler.schedulers.background import BackgroundScheduler
from slack_sdk import WebClient

from bot.context import Swarm
from workflows.intake import publish_pending

log = logging.getLogger(__name__)

RETRY_CARDS_EVERY = 60  # seconds


def retry_pending_cards(swarm: Swarm, client: WebClient) -> None:
    """Post the cards (and filer notes) that Slack did not take earlier."""
    posted = publish_pending(swarm.uow, swarm.config, swarm.slack(client), swarm.clock)
    if posted:
        log.info("posted %d pending case card(s)", posted)


def start_jobs(swarm: Swarm, client: WebClient) -> BackgroundScheduler:
    """Start the scheduler: pending cards now and every minute."""
    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.add_job(
        retry_pending_cards,
        "interval",
        seconds=RETRY_CARDS_EVERY,
        args=[swarm, client],
        id="cards:retry",
        replace_existing=True,
        next_run_time=swarm.clock.now(),
        max_instances=1,
        coalesce=True,
    )
    scheduler.start()
    return scheduler
