"""Buttons on the case card."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, Respond

from bot.ids import Action
from bot.listeners.errors import guarded

PENDING = {
    Action.JOIN: "Joining from the card",
    Action.CLAIM: "Claiming from the card",
    Action.ESCALATE: "Escalating from the card",
    Action.RESOLVE: "Resolving from the card",
}


def not_yet(ack: Ack, action: dict[str, Any], respond: Respond) -> None:
    """A card button whose workflow has not landed yet says so, ephemerally."""
    ack()
    what = PENDING.get(Action(action["action_id"]), "This button")
    respond(text=f"{what} is not available yet.", response_type="ephemeral", replace_original=False)


def register(app: App) -> None:
    for action_id in PENDING:
        app.action(action_id)(guarded(not_yet))
