"""App Home: published when a user opens it, kept current, and its queue actions (Claim,
Assign, Escalate, pages), which go through the same workflows and checks as the commands."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.blocks.home import home_view
from bot.context import Swarm, swarm_of, team_of
from bot.ids import HOME_CASE_BLOCK, Action
from bot.listeners import actions
from bot.listeners.errors import guarded
from workflows import home, swarming
from workflows.errors import SwarmError

log = logging.getLogger(__name__)


def publish_home(
    swarm: Swarm,
    client: WebClient,
    *,
    team_id: str,
    user_id: str,
    page: int | None = None,
    notice: str | None = None,
) -> bool:
    """Build and publish a user's Home with `views.publish`, passing the hash of the view
    last published so that a build older than what Slack shows never replaces it. On
    `hash_conflict` someone published meanwhile: build again (now newer than theirs) and
    publish on their hash, or on none when they did not record one. False when Slack refused.
    """
    services = swarm.services(client)
    conflicted: str | None = None
    for _attempt in range(2):
        last_page, known_hash = home.last_published(services, team_id=team_id, user_id=user_id)
        if conflicted is not None and known_hash == conflicted:
            known_hash = None
        shown = home.home(
            services, team_id=team_id, user_id=user_id, page=last_page if page is None else page
        )
        view = home_view(shown, notice=notice)
        try:
            answer = client.views_publish(
                user_id=user_id, view=view, **({"hash": known_hash} if known_hash else {})
            )
        except SlackApiError as exc:
            if exc.response.get("error") == "hash_conflict" and conflicted is None:
                conflicted = known_hash
                continue
            log.warning("home of %s not published: %s", user_id, exc.response.get("error"))
            return False
        home.published(services, shown, view_hash=answer["view"].get("hash"))
        return True
    return False


def home_opened(
    event: dict[str, Any], body: dict[str, Any], client: WebClient, context: BoltContext
) -> None:
    """The user opened the Home tab: publish it (acked already; Slack waits for nothing)."""
    if event.get("tab") != "home":
        return
    swarm = swarm_of(context)
    team_id = team_of(body, context)
    home.opened(swarm.services(client), team_id=team_id, user_id=event["user"])
    publish_home(swarm, client, team_id=team_id, user_id=event["user"], page=0)


def _case_id(action: dict[str, Any]) -> int:
    raw = action.get("value") or action.get("block_id", "").removeprefix(HOME_CASE_BLOCK)
    try:
        return int(raw)
    except ValueError:
        raise SwarmError("This Home view is out of date; open the Home tab again.") from None


def _act(swarm: Swarm, client: WebClient, body: dict[str, Any], context: BoltContext, do) -> None:  # type: ignore[no-untyped-def]
    """Run a queue action; its answer, or why it was refused, shows at the top of Home."""
    team_id = team_of(body, context)
    user_id = body["user"]["id"]
    try:
        notice = do(team_id, user_id).text  # the workflow re-arms the case's timers itself
    except SwarmError as exc:
        notice = f":no_entry: {exc}"
    publish_home(swarm, client, team_id=team_id, user_id=user_id, notice=notice)


def claim(
    ack: Ack, action: dict[str, Any], body: dict[str, Any], client: WebClient, context: BoltContext
) -> None:
    """Claim from the queue: as the card's Claim and `/swarm claim`."""
    ack()
    swarm = swarm_of(context)
    case_id = _case_id(action)
    _act(
        swarm,
        client,
        body,
        context,
        lambda team_id, user_id: swarming.claim(
            swarm.services(client), team_id=team_id, user_id=user_id, case_id=case_id
        ),
    )


def assign(
    ack: Ack, action: dict[str, Any], body: dict[str, Any], client: WebClient, context: BoltContext
) -> None:
    """Assign from the queue: as `/swarm assign` (leads only, unless you pick yourself)."""
    ack()
    swarm = swarm_of(context)
    case_id = _case_id({"block_id": action.get("block_id", "")})
    assignee = action.get("selected_user")
    if not assignee:
        return

    def do(team_id: str, user_id: str):  # type: ignore[no-untyped-def]
        services = swarm.services(client)
        number = home.case_number(services, team_id=team_id, case_id=case_id)
        return swarming.assign(
            services,
            team_id=team_id,
            actor_id=user_id,
            user_id=assignee,
            case_number=number,
        )

    _act(swarm, client, body, context, do)


def page(
    ack: Ack, action: dict[str, Any], body: dict[str, Any], client: WebClient, context: BoltContext
) -> None:
    """Another page of the queue."""
    ack()
    try:
        wanted = max(int(action.get("value") or 0), 0)
    except ValueError:
        wanted = 0
    publish_home(
        swarm_of(context),
        client,
        team_id=team_of(body, context),
        user_id=body["user"]["id"],
        page=wanted,
    )


EVENTS = {"app_home_opened": home_opened}


def register(app: App) -> None:
    for event, listener in EVENTS.items():
        app.event(event)(guarded(listener))
    app.action(Action.HOME_CLAIM)(guarded(claim))
    app.action(Action.HOME_ASSIGN)(guarded(assign))
    # Escalate opens the same modal, with the same lead check, as the card's button.
    app.action(Action.HOME_ESCALATE)(guarded(actions.escalate))
    for action_id in (Action.HOME_PAGE_PREVIOUS, Action.HOME_PAGE_NEXT):
        app.action(action_id)(guarded(page))
