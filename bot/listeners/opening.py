"""Opening a modal before anything slow: a trigger lives 3 s, role checks may take longer."""

from __future__ import annotations

from collections.abc import Callable

from slack_sdk import WebClient
from slack_sdk.models.views import View

from bot.blocks.modals import waiting_modal
from workflows.errors import SwarmError

UNAVAILABLE = "This could not be opened just now; Swarm sent you a message saying why."


def open_first(client: WebClient, trigger_id: str, title: str, prepare: Callable[[], View]) -> None:
    """Open a waiting modal at once, then put the prepared one in its place.

    `prepare` reads the database and asks Slack (who may do this?) after the modal is open;
    a refusal replaces the form with its reason, so the user is told where they are looking.
    """
    opened = client.views_open(trigger_id=trigger_id, view=waiting_modal(title))
    view_id = opened["view"]["id"]
    try:
        view = prepare()
    except SwarmError as exc:
        client.views_update(view_id=view_id, view=waiting_modal(title, str(exc)))
        return
    except Exception:
        client.views_update(view_id=view_id, view=waiting_modal(title, UNAVAILABLE))
        raise  # the error handler tells the user what happened
    client.views_update(view_id=view_id, view=view)
