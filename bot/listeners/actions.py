"""Buttons on the case card."""

from __future__ import annotations

import json
from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient

from bot.context import swarm_of, team_of
from bot.ids import Action
from bot.listeners.errors import guarded
from bot.views import search_results
from workflows import search, swarming

PENDING = {
    Action.ESCALATE: "Escalating from the card",
    Action.RESOLVE: "Resolving from the card",
}


def not_yet(ack: Ack, action: dict[str, Any], respond: Respond) -> None:
    """A card button whose workflow has not landed yet says so, ephemerally."""
    ack()
    what = PENDING.get(Action(action["action_id"]), "This button")
    respond(text=f"{what} is not available yet.", response_type="ephemeral", replace_original=False)


def swarm_button(
    ack: Ack,
    action: dict[str, Any],
    body: dict[str, Any],
    client: WebClient,
    context: BoltContext,
    respond: Respond,
) -> None:
    """Join or Claim on a card: the card updates for everyone, the clicker gets a word."""
    ack()
    services = swarm_of(context)
    do = swarming.join if action["action_id"] == Action.JOIN else swarming.claim
    outcome = do(
        services.uow,
        services.config,
        services.slack(client),
        services.clock,
        team_id=team_of(body, context),
        user_id=body["user"]["id"],
        case_id=int(action["value"]),
    )
    if outcome.changed:
        services.timers.case_changed(outcome.card.case_id)
    respond(text=outcome.text, response_type="ephemeral", replace_original=False)


def search_more(
    ack: Ack,
    action: dict[str, Any],
    body: dict[str, Any],
    client: WebClient,
    context: BoltContext,
    respond: Respond,
) -> None:
    """The next page of a search, in place of the one shown (access is checked again)."""
    ack()
    services = swarm_of(context)
    try:
        state = json.loads(action["value"])
        words, filters, offset = str(state["w"]), dict(state["f"]), int(state["o"])
    except (ValueError, KeyError, TypeError):
        respond(text="That search has expired; run it again.", replace_original=False)
        return
    results = search.search(
        services.uow,
        services.config,
        services.slack(client),
        team_id=team_of(body, context),
        user_id=body["user"]["id"],
        words=words,
        filters={str(k): str(v) for k, v in filters.items()},
        offset=offset,
    )
    labels = {t.key: t.title for t in services.config.topics}
    text, blocks = search_results(results, labels)
    respond(text=text, blocks=blocks, response_type="ephemeral", replace_original=True)


def register(app: App) -> None:
    for action_id in (Action.JOIN, Action.CLAIM):
        app.action(action_id)(guarded(swarm_button))
    app.action(Action.SEARCH_MORE)(guarded(search_more))
    for action_id in PENDING:
        app.action(action_id)(guarded(not_yet))
