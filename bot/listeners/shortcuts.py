"""Global and message shortcuts: both open the intake modal."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient

from bot.blocks.modals import IntakeMetadata, intake_modal
from bot.context import swarm_of
from bot.ids import Callback
from bot.listeners.errors import guarded


def file_case(ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    """Global shortcut: an empty intake form; the filer hears back by DM."""
    ack()
    view = intake_modal(swarm_of(context).config, metadata=IntakeMetadata())
    client.views_open(trigger_id=body["trigger_id"], view=view)


def swarm_message(ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    """Message shortcut: the form prefilled from the message, its permalink kept."""
    ack()
    message = body.get("message") or {}
    channel_id = (body.get("channel") or {}).get("id")
    text = message.get("text") or ""
    first_line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    metadata = IntakeMetadata(
        origin_channel_id=channel_id, source_channel_id=channel_id, source_ts=message.get("ts")
    )
    view = intake_modal(
        swarm_of(context).config, metadata=metadata, summary=first_line, details=text
    )
    client.views_open(trigger_id=body["trigger_id"], view=view)


GLOBAL_SHORTCUTS = {Callback.FILE_CASE: file_case}
MESSAGE_SHORTCUTS = {Callback.SWARM_MESSAGE: swarm_message}


def register(app: App) -> None:
    for callback_id, listener in GLOBAL_SHORTCUTS.items():
        app.global_shortcut(callback_id)(guarded(listener))
    for callback_id, listener in MESSAGE_SHORTCUTS.items():
        app.message_shortcut(callback_id)(guarded(listener))
