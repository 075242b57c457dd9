"""Buttons on the case card, and More under search results."""

from __future__ import annotations

import json
from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient
from slack_sdk.models.views import View

from bot.blocks.modals import CaseMetadata, escalate_modal, resolve_modal
from bot.blocks.replies import search_results
from bot.context import services_of, team_of
from bot.ids import Action
from bot.listeners.errors import guarded
from bot.listeners.opening import open_first
from workflows import escalation, resolution, search, swarming
from workflows.errors import SwarmError


def swarm_button(
    ack: Ack, action: dict[str, Any], body: dict[str, Any], context: BoltContext, respond: Respond
) -> None:
    """Join or Claim on a card: the card updates for everyone, the clicker gets a word."""
    ack()
    do = swarming.join if action["action_id"] == Action.JOIN else swarming.claim
    outcome = do(
        services_of(context),
        team_id=team_of(body, context),
        user_id=body["user"]["id"],
        case_id=int(action["value"]),
    )
    respond(text=outcome.text, response_type="ephemeral", replace_original=False)


def search_more(
    ack: Ack, action: dict[str, Any], body: dict[str, Any], context: BoltContext, respond: Respond
) -> None:
    """The next page of a search, in place of the one shown (access is checked again)."""
    ack()
    try:
        state = json.loads(action["value"])
        words, filters, offset = str(state["w"]), dict(state["f"]), int(state["o"])
    except (ValueError, KeyError, TypeError):
        respond(text="That search has expired; run it again.", replace_original=False)
        return
    services = services_of(context)
    results = search.search(
        services,
        team_id=team_of(body, context),
        user_id=body["user"]["id"],
        words=words,
        filters={str(k): str(v) for k, v in filters.items()},
        offset=offset,
    )
    reply = search_results(results, services.config)
    respond(text=reply.text, blocks=reply.blocks, response_type="ephemeral", replace_original=True)


def _case_id(action: dict[str, Any]) -> int:
    try:
        return int(action.get("value") or "")
    except ValueError:
        raise SwarmError(
            "This card is out of date; use `/swarm status` to find the case."
        ) from None


def _origin(body: dict[str, Any]) -> str | None:
    return (body.get("channel") or {}).get("id")


def escalate(
    ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient, context: BoltContext
) -> None:
    """Escalate (leads only): the modal asking severity, reason and confidentiality."""
    ack()

    def prepare() -> View:
        form = escalation.escalation_form(
            services_of(context),
            team_id=team_of(body, context),
            user_id=body["user"]["id"],
            case_id=_case_id(action),
        )
        metadata = CaseMetadata(case_id=form.card.case_id, origin_channel_id=_origin(body))
        return escalate_modal(form.card, severity=form.severity, metadata=metadata)

    open_first(client, body["trigger_id"], "Escalate case", prepare)


def resolve(
    ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient, context: BoltContext
) -> None:
    """Resolve (filer, assignee, swarm, leads): the resolve modal."""
    ack()

    def prepare() -> View:
        card = resolution.require_may_resolve(
            services_of(context),
            team_id=team_of(body, context),
            user_id=body["user"]["id"],
            case_id=_case_id(action),
        )
        metadata = CaseMetadata(case_id=card.case_id, origin_channel_id=_origin(body))
        return resolve_modal(card, metadata=metadata)

    open_first(client, body["trigger_id"], "Resolve case", prepare)


def register(app: App) -> None:
    for action_id in (Action.JOIN, Action.CLAIM):
        app.action(action_id)(guarded(swarm_button))
    app.action(Action.SEARCH_MORE)(guarded(search_more))
    app.action(Action.ESCALATE)(guarded(escalate))
    app.action(Action.RESOLVE)(guarded(resolve))
