"""Message events: case threads and incident channels become the case record."""

from __future__ import annotations

from typing import Any

from slack_bolt import App, BoltContext

from bot.context import services_of, team_of
from bot.listeners.errors import guarded
from workflows import record

SAID = record.SAID


def on_message(event: dict[str, Any], body: dict[str, Any], context: BoltContext) -> None:
    """Record, edit or delete a message of a case record; others are left alone."""
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
            record.delete(services_of(context), channel_id=channel_id, ts=ts)
            return
        message = record.from_slack(team_id, channel_id, {**previous, **current, "ts": ts})
        edited = (current.get("edited") or {}).get("ts")
        record.edit(services_of(context), message, edited_ts=edited)
    elif subtype == "message_deleted":
        ts = event.get("deleted_ts") or (event.get("previous_message") or {}).get("ts")
        if ts:
            record.delete(services_of(context), channel_id=channel_id, ts=ts)
    elif subtype in SAID and event.get("ts"):
        message = record.from_slack(team_id, channel_id, event)
        record.record(services_of(context), message)


EVENTS = {"message": on_message}
MANIFEST_EVENTS = ("message.channels", "message.groups")


def register(app: App) -> None:
    for event, listener in EVENTS.items():
        app.event(event)(guarded(listener))
