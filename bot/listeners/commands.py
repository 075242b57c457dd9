"""The `/swarm` slash command."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient

from bot.blocks.modals import CaseMetadata, IntakeMetadata, intake_modal, resolve_modal
from bot.blocks.replies import case_status, escalated_text, queue_status, search_results
from bot.command_parser import Command, UsageError, help_text, parse
from bot.context import Swarm, swarm_of, team_of
from bot.ids import COMMAND
from bot.listeners.errors import guarded
from storage.domain import Role
from workflows import cases, escalation, resolution, routing, search, sla, swarming
from workflows.text import escape

# A handler answers (text, public) or, with Block Kit, (text, public, blocks); None when it
# opened a modal instead.
Handler = Callable[[Swarm, WebClient, dict[str, Any], Command], tuple[Any, ...] | None]


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
        ack(text=help_text({"help", "new", *HANDLERS}), response_type="ephemeral")
        return
    services = swarm_of(context)
    if parsed.name == "new":
        ack()
        metadata = IntakeMetadata(origin_channel_id=command.get("channel_id"))
        view = intake_modal(
            services.config, metadata=metadata, case_number=parsed.case_number or ""
        )
        client.views_open(trigger_id=command["trigger_id"], view=view)
        return
    handler = HANDLERS.get(parsed.name)
    if handler is None:
        ack(text=f"`/swarm {parsed.name}` is not available yet.", response_type="ephemeral")
        return
    ack()
    answer = handler(services, client, command, parsed)
    if answer is None:
        return
    text, public, *blocks = answer
    respond(
        text=text,
        blocks=blocks[0] if blocks else None,
        response_type="in_channel" if public else "ephemeral",
    )


def status(
    services: Swarm, client: WebClient, command: dict[str, Any], parsed: Command
) -> tuple[str, bool]:
    """One case, or this channel's open queue."""
    team_id = team_of(command, None)
    now = services.clock.now()
    if parsed.case_number:
        card = cases.case_card(
            services.uow, services.config, team_id=team_id, case_number=parsed.case_number
        )
        return case_status(card, now), False
    channel_id = command["channel_id"]
    queue = cases.open_queue(services.uow, services.config, team_id=team_id, channel_id=channel_id)
    return queue_status(queue, now, channel_id), False


def route(
    services: Swarm, client: WebClient, command: dict[str, Any], parsed: Command
) -> tuple[str, bool]:
    """Make this channel the swarm channel of a topic (and region)."""
    assert parsed.topic is not None
    result = routing.set_route(
        services.uow,
        services.config,
        services.slack(client),
        services.clock,
        team_id=team_of(command, None),
        user_id=command["user_id"],
        topic_key=parsed.topic,
        region=parsed.region or "",
        channel_id=command["channel_id"],
    )
    topic = services.config.topic(result.topic_key)
    label = topic.title if topic else result.topic_key
    where = f" ({result.region})" if result.region else ""
    return (
        f"<@{command['user_id']}> made <#{result.channel_id}> the swarm channel for "
        f"*{label}*{where} (was <#{result.previous_channel_id}>). New cases land here."
    ), True


def role(
    services: Swarm, client: WebClient, command: dict[str, Any], parsed: Command
) -> tuple[str, bool]:
    """`/swarm lead @user [topic]` and `/swarm expert @user <topic>`."""
    assert parsed.user_id is not None
    kind = Role.LEAD if parsed.name == "lead" else Role.EXPERT
    added = routing.add_role(
        services.uow,
        services.config,
        services.slack(client),
        services.clock,
        team_id=team_of(command, None),
        actor_id=command["user_id"],
        user_id=parsed.user_id,
        role=kind,
        topic_key=parsed.topic or "",
    )
    scope = f"topic `{parsed.topic}`" if parsed.topic else "every topic"
    title = "a lead" if kind is Role.LEAD else "an expert"
    if not added:
        return f"<@{parsed.user_id}> already is {title} of {scope}.", False
    return f"<@{parsed.user_id}> is now {title} of {scope}.", False


def claim(
    services: Swarm, client: WebClient, command: dict[str, Any], parsed: Command
) -> tuple[str, bool]:
    """`/swarm claim <case>` and `/swarm assign <case> @user` (leads only)."""
    assert parsed.case_number is not None
    common = dict(team_id=team_of(command, None), case_number=parsed.case_number)
    slack = services.slack(client)
    if parsed.name == "assign":
        assert parsed.user_id is not None
        outcome = swarming.assign(
            services.uow,
            services.config,
            slack,
            services.clock,
            actor_id=command["user_id"],
            user_id=parsed.user_id,
            **common,
        )
    else:
        outcome = swarming.claim(
            services.uow,
            services.config,
            slack,
            services.clock,
            user_id=command["user_id"],
            **common,
        )
    if outcome.changed:
        services.timers.case_changed(outcome.card.case_id)
    return outcome.text, False


def urgency(
    services: Swarm, client: WebClient, command: dict[str, Any], parsed: Command
) -> tuple[str, bool]:
    """`/swarm urgency <case> <level>`: leads and the filer; the SLA deadlines move with it."""
    assert parsed.case_number is not None
    changed = sla.change_urgency(
        services.uow,
        services.config,
        services.slack(client),
        services.clock,
        services.timers,
        team_id=team_of(command, None),
        actor_id=command["user_id"],
        case_number=parsed.case_number,
        urgency=parsed.text,
    )
    due = [
        f"{name} due {_when(at)}"
        for name, at in (
            ("first response", changed.first_response_due),
            ("resolution", changed.resolution_due),
        )
        if at is not None
    ]
    return (
        f"Case {escape(changed.case_number)} is now *{changed.urgency}* "
        f"(was {changed.previous}): {', '.join(due)}."
    ), False


def _when(at: datetime) -> str:
    fallback = at.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(at.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def find(
    services: Swarm, client: WebClient, command: dict[str, Any], parsed: Command
) -> tuple[Any, ...]:
    """`/swarm search`: the first page of results, ephemeral."""
    results = search.search(
        services.uow,
        services.config,
        services.slack(client),
        team_id=team_of(command, None),
        user_id=command["user_id"],
        words=parsed.text,
        filters=parsed.filters,
    )
    labels = {t.key: t.title for t in services.config.topics}
    text, blocks = search_results(results, labels)
    return text, False, blocks


def escalate(
    services: Swarm, client: WebClient, command: dict[str, Any], parsed: Command
) -> tuple[str, bool]:
    """`/swarm escalate <case> [sevN]` (lead only): the incident channel, or a rename."""
    slack = services.slack(client)
    result = escalation.escalate(
        services.uow,
        services.config,
        slack,
        services.clock,
        team_id=team_of(command, None),
        user_id=command["user_id"],
        case_number=parsed.case_number,
        severity=parsed.severity,
    )
    if not result.unchanged:
        services.timers.case_changed(result.case_id)
    return escalated_text(result), False


def sev(
    services: Swarm, client: WebClient, command: dict[str, Any], parsed: Command
) -> tuple[str, bool]:
    """`/swarm sev <case> <sevN>` (lead only): rename the incident channel."""
    assert parsed.severity is not None
    result = escalation.change_severity(
        services.uow,
        services.config,
        services.slack(client),
        services.clock,
        team_id=team_of(command, None),
        user_id=command["user_id"],
        case_number=parsed.case_number,
        severity=parsed.severity,
    )
    if not result.unchanged:
        services.timers.case_changed(result.case_id)
    return escalated_text(result), False


def resolve(
    services: Swarm, client: WebClient, command: dict[str, Any], parsed: Command
) -> tuple[str, bool] | None:
    """`/swarm resolve <case> [text]`: resolve with the text, or open the resolve modal."""
    slack = services.slack(client)
    team_id = team_of(command, None)
    if not parsed.text:
        card = resolution.require_may_resolve(
            services.uow,
            services.config,
            slack,
            team_id=team_id,
            user_id=command["user_id"],
            case_number=parsed.case_number,
        )
        metadata = CaseMetadata(case_id=card.case_id, origin_channel_id=command.get("channel_id"))
        client.views_open(
            trigger_id=command["trigger_id"], view=resolve_modal(card, metadata=metadata)
        )
        return None
    changed = resolution.resolve(
        services.uow,
        services.config,
        slack,
        services.clock,
        resolution.Resolution(resolution=parsed.text),
        team_id=team_id,
        user_id=command["user_id"],
        case_number=parsed.case_number,
    )
    services.timers.case_changed(changed.case_id)
    return _changed_text(changed, "resolved"), False


def reopen(
    services: Swarm, client: WebClient, command: dict[str, Any], parsed: Command
) -> tuple[str, bool]:
    """`/swarm reopen <case>`: back to the swarm, the incident channel unarchived."""
    changed = resolution.reopen(
        services.uow,
        services.config,
        services.slack(client),
        services.clock,
        team_id=team_of(command, None),
        user_id=command["user_id"],
        case_number=parsed.case_number,
    )
    services.timers.case_changed(changed.case_id)
    return _changed_text(changed, f"reopened ({changed.status.value})"), False


def _changed_text(changed: resolution.Changed, what: str) -> str:
    text = f"Case {changed.case_number} {what}."
    if changed.problems:
        text += " Slack did not take everything: " + "; ".join(changed.problems)
    return text


HANDLERS: dict[str, Handler] = {
    "urgency": urgency,
    "search": find,
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
