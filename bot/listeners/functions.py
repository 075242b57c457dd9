"""Workflow Builder steps (`function_executed`): File a swarm case from a workflow."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App, BoltContext, Complete, Fail
from slack_sdk.errors import SlackApiError

from bot.context import services_of, team_of
from bot.ids import Step, StepInput, StepOutput
from bot.listeners.errors import guarded
from workflows import sources
from workflows.errors import DuplicateCase, InvalidCase
from workflows.intake import CaseDraft

log = logging.getLogger(__name__)

REASON_MAX = 300  # Slack shows the reason to the workflow's user in one Slackbot message
# Slack forgets an execution once it is completed: a redelivery finds nothing to complete.
ALREADY_COMPLETED = "function_execution_not_found"


def file_swarm_case(
    event: dict[str, Any],
    body: dict[str, Any],
    context: BoltContext,
    complete: Complete,
    fail: Fail,
) -> None:
    """File the case as the intake modal does; complete with where it landed, or fail."""
    inputs = event.get("inputs") or {}
    filer = _text(inputs, StepInput.FILER)
    if not filer:
        _finish(fail, "filer: choose who files the case (a person in this workspace).")
        return
    draft = CaseDraft(
        team_id=team_of(body, context),
        filer_id=filer,
        case_number=_text(inputs, StepInput.CASE_NUMBER),
        urgency=_text(inputs, StepInput.URGENCY).lower(),
        topic_key=_text(inputs, StepInput.TOPIC),
        region=_text(inputs, StepInput.REGION),
        summary=_text(inputs, StepInput.SUMMARY),
        details=_text(inputs, StepInput.DETAILS),
        customer=_text(inputs, StepInput.CUSTOMER),
        intake_view_id=f"{sources.STEP_SUBMISSION}{event['function_execution_id']}",
    )
    try:
        # context.client carries the execution's own token (Bolt's AttachingFunctionToken).
        landed = sources.file_and_post(services_of(context), draft)
    except (InvalidCase, DuplicateCase) as exc:
        _finish(fail, str(exc))
        return
    except Exception:
        _finish(fail, "Swarm could not file the case just now; run the workflow again shortly.")
        raise
    outputs = {StepOutput.CASE_NUMBER.value: landed.case_number}
    if landed.case_url:
        outputs[StepOutput.CASE_URL.value] = landed.case_url
    if landed.thread_permalink:
        outputs[StepOutput.THREAD_PERMALINK.value] = landed.thread_permalink
    _finish(complete, outputs=outputs)


def _text(inputs: dict[str, Any], name: StepInput) -> str:
    value = inputs.get(name.value)
    return "" if value is None else str(value).strip()


def _finish(end: Complete | Fail, reason: str | None = None, **kwargs: Any) -> None:
    """Complete or fail the execution once; a redelivery of a finished one is left alone."""
    try:
        if reason is not None:
            end(" ".join(reason.split())[:REASON_MAX])
        else:
            end(**kwargs)
    except SlackApiError as exc:
        if exc.response.get("error") != ALREADY_COMPLETED:
            raise
        log.info("step execution %s was already completed", end.function_execution_id)


FUNCTIONS = {Step.FILE_CASE: file_swarm_case}


def register(app: App) -> None:
    for callback_id, listener in FUNCTIONS.items():
        app.function(callback_id)(guarded(listener))
