"""Modal submissions."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.exc import SQLAlchemyError

from bot.blocks.modals import (
    case_metadata_of,
    escalation_answer,
    intake_draft,
    intake_modal,
    metadata_of,
    resolution_answer,
)
from bot.blocks.replies import escalated_text
from bot.context import services_of, swarm_of, team_of
from bot.ids import VALUE, Callback, EscalateField, Field, ResolveField
from bot.listeners.errors import guarded
from workflows import escalation, resolution
from workflows.errors import DuplicateCase, InvalidCase, SwarmError
from workflows.intake import file_case, publish_card
from workflows.text import escape

log = logging.getLogger(__name__)


def submit_intake(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext
) -> None:
    """Store the case, close the modal, then post the card and tell the filer."""
    services = services_of(context)
    draft = intake_draft(view, team_id=team_of(body, context), filer_id=body["user"]["id"])
    try:
        filed = file_case(services, draft, arm=False)  # inside the ack: only the store
    except InvalidCase as exc:
        ack(response_action="errors", errors=_on_blocks(exc.errors, view))
        return
    except DuplicateCase as exc:
        ack(response_action="errors", errors={Field.CASE_NUMBER: str(exc)})
        return
    except SQLAlchemyError:
        ack(
            response_action="errors",
            errors={
                Field.CASE_NUMBER: "The case could not be saved just now. Your form is kept: "
                "press File case again in a moment."
            },
        )
        raise
    ack()
    if filed.created:
        services.timers.case_changed(filed.case_id)
    publish_card(services, filed.case_id)


def choose_topic(
    ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient, context: BoltContext
) -> None:
    """A topic was chosen in the intake modal: offer only that topic's regions."""
    ack()
    view = body["view"]
    topic_key = (action.get("selected_option") or {}).get("value")
    modal = intake_modal(swarm_of(context).config, metadata=metadata_of(view), topic_key=topic_key)
    try:
        client.views_update(view_id=view["id"], hash=view.get("hash"), view=modal)
    except SlackApiError as exc:
        if exc.response.get("error") != "hash_conflict":  # the user changed it again meanwhile
            raise


def _on_blocks(errors: dict[str, str], view: dict[str, Any]) -> dict[str, str]:
    """Field errors keyed by the modal's block ids (unknown fields go on the first block)."""
    present = {b.get("block_id") for b in view.get("blocks", [])}
    out: dict[str, str] = {}
    for field, message in errors.items():
        block = field if field in present or not present else Field.CASE_NUMBER
        out[block] = f"{out[block]} {message}" if block in out else message
    return out


def submit_escalation(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext
) -> None:
    """Close the modal, escalate (or rename), then tell the lead what happened."""
    metadata = case_metadata_of(view)
    if metadata is None:
        ack(response_action="errors", errors={EscalateField.SEVERITY: "This form is out of date."})
        return
    ack()
    services = services_of(context)
    answer = escalation_answer(view)
    user_id = body["user"]["id"]
    result = escalation.escalate(
        services,
        team_id=team_of(body, context),
        user_id=user_id,
        case_id=metadata.case_id,
        severity=answer.severity,
        reason=answer.reason,
        confidential=answer.confidential,
    )
    services.slack.tell(user_id, escalated_text(result), channel_id=metadata.origin_channel_id)


def submit_resolution(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext
) -> None:
    """Field errors inline; else close the modal and resolve."""
    metadata = case_metadata_of(view)
    answer = resolution_answer(view)
    errors = resolution.validate(answer)
    if metadata is None:
        errors[ResolveField.RESOLUTION] = "This form is out of date."
    if errors or metadata is None:
        ack(response_action="errors", errors=errors)
        return
    ack()
    changed = resolution.resolve(
        services_of(context),
        answer,
        team_id=team_of(body, context),
        user_id=body["user"]["id"],
        case_id=metadata.case_id,
    )
    if changed.problems:
        raise SwarmError(
            f"Case {escape(changed.case_number)} is resolved, but Slack did not take everything: "
            + "; ".join(changed.problems)
        )


def register(app: App) -> None:
    app.view_submission(Callback.INTAKE_VIEW)(guarded(submit_intake))
    app.view_submission(Callback.ESCALATE_VIEW)(guarded(submit_escalation))
    app.view_submission(Callback.RESOLVE_VIEW)(guarded(submit_resolution))
    app.block_action({"block_id": Field.TOPIC, "action_id": VALUE})(guarded(choose_topic))
