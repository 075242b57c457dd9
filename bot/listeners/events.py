"""Message events: case threads and incident channels become the case record."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App, BoltContext
from slack_sdk import WebClient

from bot.context import Swarm, swarm_of, team_of
from bot.listeners.errors import guarded
from workflows import record
from workflows.cases import refresh_card
from workflows.ports import CaseCard

log = logging.getLogger(__name__)

SAID = record.SAID


def on_message(
    event: dict[str, Any], body: dict[str, Any], client: WebClient, context: BoltContext
) -> None:
    """Record, edit or delete a message of a case record; others are left alone."""
    swarm = swarm_of(context)
    team_id = team_of(body, context)
    channel_id = event.get("channel")
    if not channel_id:
        return
    subtype = event.get("subtype")
    if subtype == "message_changed":
        current = event.get("message") or {}
        previous = event.get("previous_message") or {}
        ts = current.get("ts") or previous.get("ts")
        if not ts:
            return
        if current.get("subtype") == "tombstone":
            record.delete(swarm.uow, swarm.clock, channel_id=channel_id, ts=ts)
            return
        message = record.from_slack(team_id, channel_id, {**previous, **current, "ts": ts})
        edited = (current.get("edited") or {}).get("ts")
        done = record.edit(swarm.uow, swarm.clock, message, edited_ts=edited)
    elif subtype == "message_deleted":
        ts = event.get("deleted_ts") or (event.get("previous_message") or {}).get("ts")
        if ts:
            record.delete(swarm.uow, swarm.clock, channel_id=channel_id, ts=ts)
        return
    elif subtype in SAID and event.get("ts"):
        done = record.record(swarm.uow, swarm.clock, record.from_slack(team_id, channel_id, event))
    else:
        return
    if done is not None and done.changed:
        case_changed(swarm, client, done.case_id)


def case_changed(swarm: Swarm, client: WebClient, case_id: int) -> None:
    """After a committed change: the card shows it and the SLA timers follow it."""
    with swarm.uow() as uow:
        case = uow.cases.get(case_id)
        if case is None:
            return
        card = CaseCard.of(case, swarm.config)
    refresh_card(swarm.slack(client), card)
    swarm.timers.case_changed(case_id)


EVENTS = {"message": on_message}
MANIFEST_EVENTS = ("message.channels", "message.groups")


def register(app: App) -> None:
    for event, listener in EVENTS.items():
        app.event(event)(guarded(listener))
