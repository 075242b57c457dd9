"""Domain errors; the bot turns each into a message for the person who asked."""

from __future__ import annotations

from workflows.text import escape


class SwarmError(Exception):
    """A request that cannot be done; `str(error)` is what the user is told."""


class CaseNotFound(SwarmError):
    def __init__(self, case_number: str) -> None:
        shown = escape(case_number[:40])
        super().__init__(f"No case {shown} here. `/swarm status` lists the open queue.")
        self.case_number = case_number


class NotALead(SwarmError):
    def __init__(self, action: str, topic: str | None = None) -> None:
        where = f" of topic `{topic}`" if topic else ""
        super().__init__(f"Only swarm leads{where} or workspace admins can {action}.")


class NotAnAdmin(SwarmError):
    def __init__(self, action: str) -> None:
        super().__init__(f"Only workspace admins can {action}.")


class UnknownTopic(SwarmError):
    def __init__(self, topic: str, known: list[str]) -> None:
        choices = ", ".join(f"`{k}`" for k in known) or "none configured"
        super().__init__(f"Unknown topic `{escape(topic[:40])}`. Topics: {choices}.")


class DuplicateCase(SwarmError):
    """A case with this number is already filed."""

    def __init__(
        self,
        case_number: str,
        permalink: str | None,
        resolved: bool,
        *,
        channels: tuple[str, ...] = (),
        hidden: bool = False,
    ) -> None:
        self.case_number = case_number
        self.permalink = permalink
        self.resolved = resolved
        self.channels = channels  # where the case lives, for the access rule
        where = permalink or "its card is being posted"
        if hidden:
            text = f"Case {case_number} is already filed, in a private channel you are not in."
        elif resolved:
            text = f"Case {case_number} was already filed and resolved: {where}"
            text += f" (use /swarm reopen {case_number})"
        else:
            text = f"Case {case_number} is already open: {where}"
        super().__init__(text)


class InvalidCase(SwarmError):
    """Field errors of an intake form, by field name."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


class SlackUnavailable(SwarmError):
    """Slack could not be reached after retries; the work is kept and retried later."""


class SlackRefused(SwarmError):
    """Slack answered a call with an error that retrying will not fix (`name_taken`, ...)."""

    def __init__(self, what: str, error: str) -> None:
        super().__init__(f"Slack refused {what}: `{error}`.")
        self.what = what
        self.error = error


class NotAllowed(SwarmError):
    """The user may not do this to this case."""


class EscalationIncomplete(SwarmError):
    """Slack stopped answering half-way; what was done is kept and a retry resumes."""
