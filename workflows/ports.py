"""What the swarm needs from the world around it: Slack, and SLA timers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from workflows.snapshot import CaseSnapshot


class SlackGateway(Protocol):
    """The small interface through which workflows talk to Slack (implemented in bot/)."""

    def post_case_card(self, card: CaseSnapshot) -> str:
        """Post the card as a top-level message in card.channel_id; return its ts."""
        ...

    def card_continuation(self, card: CaseSnapshot) -> list[str]:
        """Thread replies carrying what does not fit on the card (none when it all fits)."""
        ...

    def find_case_card(self, card: CaseSnapshot) -> str | None:
        """The ts of this case's card if an earlier attempt did post it, else None."""
        ...

    def update_case_card(self, card: CaseSnapshot) -> None:
        """Re-render the card in place."""
        ...

    def post_in_thread(self, channel_id: str, thread_ts: str, text: str) -> str:
        """Reply in a thread; return the reply's ts."""
        ...

    def permalink(self, channel_id: str, ts: str) -> str | None:
        """A link to a message, or None when Slack cannot give one."""
        ...

    def tell(self, user_id: str, text: str, *, channel_id: str | None = None) -> None:
        """An ephemeral message in a channel, or a DM when there is none or it fails."""
        ...

    def is_workspace_admin(self, user_id: str) -> bool:
        """Whether Slack says this user is a workspace admin or owner."""
        ...

    def user_by_email(self, email: str) -> str | None:
        """The id of the workspace member with this email, or None when there is none."""
        ...

    def can_read(self, user_id: str, channel_id: str) -> bool:
        """Whether a user may read a channel: any public one, a private one only as a member."""
        ...

    def is_public(self, channel_id: str) -> bool:
        """Whether a channel is public (every member of the workspace may read it)."""
        ...

    def user_name(self, user_id: str) -> str | None:
        """A user's display name (to name without a mention), or None when Slack will not say."""
        ...

    def thread_replies(self, channel_id: str, thread_ts: str) -> Iterator[dict[str, Any]]:
        """Every message of a thread, parent first (Slack's message shape), all pages."""
        ...

    def channel_history(
        self, channel_id: str, oldest: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every top-level message of a channel since `oldest`, newest first, all pages."""
        ...

    def create_channel(self, name: str, *, private: bool) -> str:
        """Create a channel the bot is in; return its id (SlackRefused `name_taken`, ...)."""
        ...

    def rename_channel(self, channel_id: str, name: str) -> None:
        """Rename a channel (SlackRefused `name_taken`, ...)."""
        ...

    def describe_channel(self, channel_id: str, *, topic: str, purpose: str) -> None:
        """Set a channel's topic and purpose."""
        ...

    def invite(self, channel_id: str, user_ids: list[str]) -> dict[str, str]:
        """Invite users; return the error of each user who could not be invited.

        Users already in the channel count as invited.
        """
        ...

    def post_message(self, channel_id: str, text: str) -> str:
        """A top-level message in a channel (joining a public one first when needed); its ts.

        SlackRefused when Slack will not take it (archived, private without the bot, ...).
        """
        ...

    def pin(self, channel_id: str, ts: str) -> None:
        """Pin a message (already pinned is fine)."""
        ...

    def archive_channel(self, channel_id: str) -> None:
        """Archive a channel (already archived is fine)."""
        ...

    def unarchive_channel(self, channel_id: str) -> None:
        """Bring an archived channel back (not archived is fine)."""
        ...

    def upload_file(
        self,
        channel_id: str,
        data: bytes,
        *,
        filename: str,
        title: str,
        alt_text: str,
        comment: str = "",
    ) -> None:
        """Share a file in a channel (Slack's upload v2 flow), with alt text for images."""
        ...


class Timers(Protocol):
    """SLA timers of cases, kept in step with each case's stored state."""

    def case_changed(self, case_id: int) -> None:
        """Re-arm or cancel the timers of a case after it changed (call after commit)."""
        ...


class NoTimers:
    """Timers that do nothing: for tools and tests that run no scheduler."""

    def case_changed(self, case_id: int) -> None:
        return None
