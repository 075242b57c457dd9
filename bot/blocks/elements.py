"""Small Block Kit pieces every builder shares, and Slack's limits as named constants."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel
from slack_sdk.models.blocks import Block, InputBlock, Option, PlainTextInputElement
from slack_sdk.models.views import View

from bot.ids import VALUE
from workflows.text import clip

# Slack limits (https://api.slack.com/reference/block-kit/blocks).
SECTION_TEXT_MAX = 3000
FIELD_TEXT_MAX = 2000
HEADER_MAX = 150
CONTEXT_TEXT_MAX = 2000
MESSAGE_TEXT_MAX = 3000  # notification fallback text; Slack truncates longer ones
OPTIONS_MAX = 100
OPTION_TEXT_MAX = 75


def options(pairs: Sequence[tuple[str, str]]) -> list[Option]:
    """Select options from (value, label) pairs, within Slack's limits."""
    return [Option(value=v, text=clip(label, OPTION_TEXT_MAX)) for v, label in pairs[:OPTIONS_MAX]]


def text_input(
    block_id: str,
    label: str,
    *,
    optional: bool = False,
    multiline: bool = False,
    max_length: int | None = None,
    initial_value: str | None = None,
    placeholder: str | None = None,
    hint: str | None = None,
) -> InputBlock:
    """A plain-text input block whose value is read back under `VALUE`."""
    return InputBlock(
        block_id=block_id,
        label=label,
        optional=True if optional else None,
        hint=hint,
        element=PlainTextInputElement(
            action_id=VALUE,
            multiline=True if multiline else None,
            max_length=max_length,
            initial_value=initial_value,
            placeholder=placeholder,
        ),
    )


def modal(
    callback_id: str, *, title: str, submit: str, blocks: list[Block], metadata: BaseModel
) -> View:
    """A modal with a Cancel button that carries its metadata to the submission."""
    return View(
        type="modal",
        callback_id=callback_id,
        title=title,
        submit=submit,
        close="Cancel",
        blocks=blocks,
        private_metadata=metadata.model_dump_json(exclude_none=True),
    )
