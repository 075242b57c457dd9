"""Who may see a case: the one rule for every path that shows or changes one.

A case lives in its swarm channel and, once escalated, in its incident channel. When either
is private, only members of that channel see the case (status, the queue, search, Join,
Claim, assign, escalate, severity, urgency, resolve, reopen); everyone else is told what they
would be told about a case that does not exist. Membership is what search already uses
(`SlackGateway.can_read`: `conversations.info` and `conversations.members`, cached briefly).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from workflows.errors import CaseNotFound, SlackUnavailable, SwarmError
from workflows.ports import SlackGateway
from workflows.services import Services
from workflows.text import escape

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Visible:
    """A case the user may see: its id and number (read in a transaction already closed)."""

    case_id: int
    case_number: str


def channels_of(channel_id: str | None, incident_channel_id: str | None) -> list[str]:
    """The channels a case lives in."""
    return [c for c in (channel_id, incident_channel_id) if c]


class AccessUnknown(SwarmError):
    """Slack could not say who may see a case, so nothing was shown or changed."""

    def __init__(self, case_number: str) -> None:
        super().__init__(
            f"Slack is not answering, so I cannot check who may see case {escape(case_number)}. "
            "Nothing was changed; please try again in a minute."
        )


def can_see(slack: SlackGateway, user_id: str, channels: Iterable[str]) -> bool:
    """Whether the user reads every channel the case lives in (public ones: everyone)."""
    return all(slack.can_read(user_id, channel) for channel in channels)


def _checked(slack: SlackGateway, user_id: str, channels: list[str], case_number: str) -> bool:
    """can_see, or AccessUnknown when Slack cannot be asked (never a guess either way)."""
    try:
        return can_see(slack, user_id, channels)
    except SlackUnavailable:
        log.warning("access to case %s unknown: Slack unavailable", case_number)
        raise AccessUnknown(case_number) from None


def require_can_see(
    services: Services,
    *,
    team_id: str,
    user_id: str,
    case_number: str | None = None,
    case_id: int | None = None,
) -> Visible:
    """The case when `user_id` may see it; else CaseNotFound, as if it did not exist.

    The case's channels are read in a short transaction; Slack is asked after it is closed.
    """
    with services.uow.read() as uow:
        if case_id is not None:
            case = uow.cases.get(case_id)
            case = case if case is not None and case.team_id == team_id else None
        else:
            case = uow.cases.by_number(team_id=team_id, case_number=(case_number or "").strip())
        if case is None:
            raise CaseNotFound(case_number or str(case_id))
        visible = Visible(case.id, case.case_number)
        channels = channels_of(case.channel_id, case.incident_channel_id)
    if not _checked(services.slack, user_id, channels, visible.case_number):
        log.info("case %s hidden from %s (private channel)", visible.case_id, user_id)
        raise CaseNotFound(case_number if case_number is not None else visible.case_number)
    return visible


def require_may_be_given(services: Services, visible: Visible, user_id: str) -> None:
    """Refuse handing a case to someone who may not see it (assign, and so the next invite)."""
    with services.uow.read() as uow:
        case = uow.cases.get(visible.case_id)
        channels = channels_of(case.channel_id, case.incident_channel_id) if case else []
    if not _checked(services.slack, user_id, channels, visible.case_number):
        raise SwarmError(
            f"<@{user_id}> is not a member of the private channel of case "
            f"{escape(visible.case_number)}; invite them there first."
        )
