"""The `/swarm` slash command: parse, call one workflow, answer with a Reply."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient
from slack_sdk.models.views import View

from bot.blocks.home import stats_message
from bot.blocks.modals import CaseMetadata, IntakeMetadata, intake_modal, resolve_modal
from bot.blocks.replies import (
    QUEUE_SHOWN,
    Reply,
    case_status,
    changed_text,
    escalated_text,
    queue_status,
    role_text,
    route_text,
    search_results,
    urgency_text,
)
from bot.command_parser import Command, UsageError, help_text, parse
from bot.context import services_of, team_of
from bot.ids import COMMAND
from bot.listeners.errors import guarded
from bot.listeners.opening import open_first
from storage.domain import Role
from workflows import (
    cases,
    escalation,
    metrics,
    resolution,
    routing,
    search,
    similarity,
    sla,
    swarming,
)
from workflows.services import Services

# A handler answers with a Reply, or None when it opened a modal instead.
Handler = Callable[[Services, WebClient, dict[str, Any], Command], Reply | None]


def swarm(
    ack: Ack, command: dict[str, Any], client: WebClient, context: BoltContext, respond: Respond
) -> None:
    """Parse, acknowledge at once, then answer (ephemeral unless public by nature)."""
    try:
        parsed = parse(command.get("text", ""))
    except UsageError as exc:
        ack(text=str(exc), response_type="ephemeral")
        return
    if parsed.name == "help":
        ack(text=help_text({"help", *HANDLERS}), response_type="ephemeral")
        return
    handler = HANDLERS[parsed.name]
    ack()
    reply = handler(services_of(context), client, command, parsed)
    if reply is not None:
        respond(
            text=reply.text,
            blocks=reply.blocks,
            response_type="in_channel" if reply.public else "ephemeral",
        )


def new(services: Services, client: WebClient, command: dict[str, Any], parsed: Command) -> None:
    """`/swarm new [case]`: the intake modal, the case number filled in."""
    metadata = IntakeMetadata(origin_channel_id=command.get("channel_id"))
    view = intake_modal(services.config, metadata=metadata, case_number=parsed.case_number or "")
    client.views_open(trigger_id=command["trigger_id"], view=view)


def status(
    services: Services, client: WebClient, command: dict[str, Any], parsed: Command
) -> Reply:
    """One case, or this channel's open queue."""
    team_id = team_of(command, None)
    now = services.clock.now()
    if parsed.case_number:
        card = cases.case_card(
            services, team_id=team_id, case_number=parsed.case_number, user_id=command["user_id"]
        )
        return Reply(case_status(card, now))
    channel_id = command["channel_id"]
    queue = cases.open_queue(
        services,
        team_id=team_id,
        user_id=command["user_id"],
        channel_id=channel_id,
        limit=QUEUE_SHOWN,
    )
    return Reply(queue_status(queue, now, channel_id))


def route(services: Services, client: WebClient, command: dict[str, Any], parsed: Command) -> Reply:
    """Make this channel the swarm channel of a topic (and region); the channel is told."""
    assert parsed.topic is not None
    result = routing.set_route(
        services,
        team_id=team_of(command, None),
        user_id=command["user_id"],
        topic_key=parsed.topic,
        region=parsed.region or "",
        channel_id=command["channel_id"],
    )
    return Reply(route_text(result, services.config, command["user_id"]), public=True)


def role(services: Services, client: WebClient, command: dict[str, Any], parsed: Command) -> Reply:
    """`/swarm lead @user [topic]` and `/swarm expert @user <topic>`."""
    assert parsed.user_id is not None
    kind = Role.LEAD if parsed.name == "lead" else Role.EXPERT
    added = routing.add_role(
        services,
        team_id=team_of(command, None),
        actor_id=command["user_id"],
        user_id=parsed.user_id,
        role=kind,
        topic_key=parsed.topic or "",
    )
    return Reply(role_text(parsed.user_id, kind, parsed.topic, added=added))


def claim(services: Services, client: WebClient, command: dict[str, Any], parsed: Command) -> Reply:
    """`/swarm claim <case>` and `/swarm assign <case> @user` (leads only)."""
    assert parsed.case_number is not None
    team_id = team_of(command, None)
    if parsed.name == "assign":
        assert parsed.user_id is not None
        outcome = swarming.assign(
            services,
            team_id=team_id,
            case_number=parsed.case_number,
            actor_id=command["user_id"],
            user_id=parsed.user_id,
        )
    else:
        outcome = swarming.claim(
            services, team_id=team_id, case_number=parsed.case_number, user_id=command["user_id"]
        )
    return Reply(outcome.text)


def urgency(
    services: Services, client: WebClient, command: dict[str, Any], parsed: Command
) -> Reply:
    """`/swarm urgency <case> <level>`: leads and the filer; the SLA deadlines move with it."""
    assert parsed.case_number is not None
    changed = sla.change_urgency(
        services,
        team_id=team_of(command, None),
        actor_id=command["user_id"],
        case_number=parsed.case_number,
        urgency=parsed.text,
    )
    return Reply(urgency_text(changed))


def find(services: Services, client: WebClient, command: dict[str, Any], parsed: Command) -> Reply:
    """`/swarm search`: the first page of results, ephemeral."""
    results = search.search(
        services,
        team_id=team_of(command, None),
        user_id=command["user_id"],
        words=parsed.text,
        filters=parsed.filters,
    )
    return search_results(results, services.config)


def similar(
    services: Services, client: WebClient, command: dict[str, Any], parsed: Command
) -> Reply:
    """`/swarm similar <case>`: similar resolved cases and experts, within the caller's access."""
    assert parsed.case_number is not None
    answer = similarity.similar_for(
        services,
        team_id=team_of(command, None),
        user_id=command["user_id"],
        case_number=parsed.case_number,
    )
    return Reply(answer.text())


def escalate(
    services: Services, client: WebClient, command: dict[str, Any], parsed: Command
) -> Reply:
    """`/swarm escalate <case> [sevN]` (lead only): the incident channel, or a rename."""
    result = escalation.escalate(
        services,
        team_id=team_of(command, None),
        user_id=command["user_id"],
        case_number=parsed.case_number,
        severity=parsed.severity,
    )
    return Reply(escalated_text(result))


def sev(services: Services, client: WebClient, command: dict[str, Any], parsed: Command) -> Reply:
    """`/swarm sev <case> <sevN>` (lead only): rename the incident channel."""
    assert parsed.severity is not None
    result = escalation.change_severity(
        services,
        team_id=team_of(command, None),
        user_id=command["user_id"],
        case_number=parsed.case_number,
        severity=parsed.severity,
    )
    return Reply(escalated_text(result))


def resolve(
    services: Services, client: WebClient, command: dict[str, Any], parsed: Command
) -> Reply | None:
    """`/swarm resolve <case> [text]`: resolve with the text, or open the resolve modal."""
    team_id = team_of(command, None)
    if not parsed.text:

        def prepare() -> View:
            card = resolution.require_may_resolve(
                services,
                team_id=team_id,
                user_id=command["user_id"],
                case_number=parsed.case_number,
            )
            origin = command.get("channel_id")
            return resolve_modal(
                card, metadata=CaseMetadata(case_id=card.case_id, origin_channel_id=origin)
            )

        open_first(client, command["trigger_id"], "Resolve case", prepare)
        return None
    changed = resolution.resolve(
        services,
        resolution.Resolution(resolution=parsed.text),
        team_id=team_id,
        user_id=command["user_id"],
        case_number=parsed.case_number,
    )
    return Reply(changed_text(changed, "resolved"))


def reopen(
    services: Services, client: WebClient, command: dict[str, Any], parsed: Command
) -> Reply:
    """`/swarm reopen <case>`: back to the swarm, the incident channel unarchived."""
    changed = resolution.reopen(
        services,
        team_id=team_of(command, None),
        user_id=command["user_id"],
        case_number=parsed.case_number,
    )
    return Reply(changed_text(changed, f"reopened ({changed.status.value})"))


def stats(services: Services, client: WebClient, command: dict[str, Any], parsed: Command) -> Reply:
    """`/swarm stats [period] [topic]`: every figure against the period before; leads also
    see each person's work."""
    report = metrics.stats(
        services,
        team_id=team_of(command, None),
        user_id=command["user_id"],
        period=parsed.period,
        topic=parsed.topic,
    )
    text, blocks = stats_message(report)
    return Reply(text, blocks=blocks)


HANDLERS: dict[str, Handler] = {
    "new": new,
    "stats": stats,
    "urgency": urgency,
    "search": find,
    "similar": similar,
    "status": status,
    "claim": claim,
    "assign": claim,
    "route": route,
    "lead": role,
    "expert": role,
    "escalate": escalate,
    "sev": sev,
    "resolve": resolve,
    "reopen": reopen,
}


COMMANDS = {COMMAND: swarm}


def register(app: App) -> None:
    for command, listener in COMMANDS.items():
        app.command(command)(guarded(listener))
