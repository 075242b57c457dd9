"""Bolt listeners, one module per Slack surface, each with `register(app)`."""

from __future__ import annotations

from slack_bolt import App

from bot.listeners import actions, commands, errors, events, functions, home, shortcuts, views

EVENTS: dict[str, object] = {**events.EVENTS, **home.EVENTS}


def register(app: App) -> None:
    """Attach every listener and the one error handler."""
    for surface in (shortcuts, commands, views, actions, events, home, functions, errors):
        surface.register(app)


def registered() -> dict[str, set[str]]:
    """What the app listens to, in the manifest's terms (kept in step with app.yaml)."""
    return {
        "global_shortcuts": {str(k) for k in shortcuts.GLOBAL_SHORTCUTS},
        "message_shortcuts": {str(k) for k in shortcuts.MESSAGE_SHORTCUTS},
        "commands": set(commands.COMMANDS),
        # Workflow Builder steps arrive as function_executed events.
        "events": set(EVENTS) | ({"function_executed"} if functions.FUNCTIONS else set()),
        "functions": {str(k) for k in functions.FUNCTIONS},
    }
