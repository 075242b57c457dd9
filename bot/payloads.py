"""The shapes of the Slack payloads the app reads, checked before Bolt sees them.

Bolt trusts a signed body: an `event` that is a string, a view without `type` or a shortcut
without `trigger_id` crashes its middleware or a listener (a 500 and a traceback). Every
request, over HTTP or Socket Mode, is checked here first; what does not fit is refused with one
line saying why. Fields the app does not read are left alone (Slack adds fields freely).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

# Payload types Slack sends that the app has no use for: accepted and left unanswered.
OTHER_TYPES = frozenset(
    {"app_rate_limited", "block_suggestion", "interactive_message", "dialog_submission"}
)


class Malformed(ValueError):
    """A payload the app cannot read; the message says why in one line."""


class Loose(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class Ref(Loose):
    id: str


class OptionalRef(Loose):
    id: str | None = None


class Message(Loose):
    ts: str | None = None
    thread_ts: str | None = None
    text: str | None = None
    user: str | None = None
    subtype: str | None = None
    bot_id: str | None = None
    files: list[dict[str, Any]] | None = None


class Event(Loose):
    type: str


class MessageEvent(Message):
    type: Literal["message"]
    channel: str | None = None
    deleted_ts: str | None = None
    message: Message | None = None
    previous_message: Message | None = None


class EventCallback(Loose):
    type: Literal["event_callback"]
    team_id: str | None = None
    event_id: str | None = None
    event: Event


class MessageEventCallback(EventCallback):
    event: MessageEvent


class StepFunction(Loose):
    callback_id: str


class FunctionExecuted(Loose):
    """A Workflow Builder step run (`app.function`)."""

    type: Literal["function_executed"]
    function_execution_id: str
    function: StepFunction
    inputs: dict[str, Any] = Field(default_factory=dict)
    bot_access_token: str | None = None


class FunctionEventCallback(EventCallback):
    event: FunctionExecuted


class UrlVerification(Loose):
    type: Literal["url_verification"]
    challenge: str


class SlashCommand(Loose):
    command: str
    text: str = ""
    team_id: str
    user_id: str
    channel_id: str
    trigger_id: str
    response_url: str


class Option(Loose):
    value: str | None = None


class FieldState(Loose):
    type: str | None = None
    value: str | None = None
    selected_option: Option | None = None
    selected_options: list[Option] | None = None


class ViewState(Loose):
    values: dict[str, dict[str, FieldState]] = Field(default_factory=dict)


class View(Loose):
    id: str
    type: str
    callback_id: str = ""
    private_metadata: str = ""
    hash: str | None = None
    state: ViewState | None = None


class Interaction(Loose):
    user: Ref
    team: OptionalRef | None = None


class GlobalShortcut(Interaction):
    type: Literal["shortcut"]
    callback_id: str
    trigger_id: str


class MessageShortcut(Interaction):
    type: Literal["message_action"]
    callback_id: str
    trigger_id: str
    channel: OptionalRef | None = None
    message: Message = Message()


class BlockAction(Loose):
    action_id: str
    block_id: str | None = None
    value: str | None = None
    selected_option: Option | None = None


class BlockActions(Interaction):
    type: Literal["block_actions"]
    actions: Annotated[list[BlockAction], Field(min_length=1)]
    trigger_id: str | None = None
    response_url: str | None = None
    channel: OptionalRef | None = None
    view: View | None = None


class ViewSubmission(Interaction):
    type: Literal["view_submission"]
    view: View


class ViewClosed(Interaction):
    type: Literal["view_closed"]
    view: View


SHAPES: dict[str, type[Loose]] = {
    "event_callback": EventCallback,
    "url_verification": UrlVerification,
    "shortcut": GlobalShortcut,
    "message_action": MessageShortcut,
    "block_actions": BlockActions,
    "view_submission": ViewSubmission,
    "view_closed": ViewClosed,
}


EVENT_SHAPES: dict[str, type[EventCallback]] = {
    "message": MessageEventCallback,
    "function_executed": FunctionEventCallback,
}


def check(body: Any) -> None:
    """Raise Malformed when `body` is not a payload the app can read."""
    if not isinstance(body, dict) or not body:
        raise Malformed("the body is not a JSON object or form")
    kind = body.get("type")
    if kind is None and "command" in body:
        shape: type[Loose] = SlashCommand
    elif isinstance(kind, str) and kind in SHAPES:
        shape = SHAPES[kind]
    elif isinstance(kind, str) and kind in OTHER_TYPES:
        return
    else:
        raise Malformed(f"unknown payload type {_shown(kind)}")
    event = body.get("event")
    if shape is EventCallback and isinstance(event, dict):
        shape = EVENT_SHAPES.get(event.get("type"), EventCallback)  # type: ignore[arg-type]
    try:
        shape.model_validate(body)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(_printable(str(part), 30) for part in error["loc"]) or "body"
        raise Malformed(f"{shape.__name__} payload: {where}: {error['msg']}") from None


def _shown(value: Any) -> str:
    """A value for a log line: short, printable ASCII, quoted."""
    return repr(_printable(value if isinstance(value, str) else repr(value), 40))


def _printable(text: str, limit: int) -> str:
    """Letters, digits and `_.-` only: nothing a log reader or Slack could take as markup."""
    return "".join(
        ch if ch.isascii() and (ch.isalnum() or ch in "_.-") else "?" for ch in text[:limit]
    )
