"""Bolt listeners, one module per Slack surface, each with `register(app)`."""

from __future__ import annotations

from slack_bolt import App

from bot.listeners import actions, commands, errors, shortcuts, views


def register(app: App) -> None:
    """Attach every listener and the one error handler."""
    for surface in (shortcuts, commands, views, actions, errors):
        surface.register(app)
