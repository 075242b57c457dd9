"""`/swarm` text parsed into typed commands."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

USER_MENTION = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")
SEVERITY = re.compile(r"^(?:sev)?([1-4])$", re.IGNORECASE)

USAGE = {
    "help": "/swarm help",
    "new": "/swarm new [case]",
    "status": "/swarm status [case]",
    "claim": "/swarm claim <case>",
    "assign": "/swarm assign <case> @user",
    "escalate": "/swarm escalate <case> [sev1-4]",
    "sev": "/swarm sev <case> <sev1-4>",
    "resolve": "/swarm resolve <case> [text]",
    "reopen": "/swarm reopen <case>",
    "urgency": "/swarm urgency <case> <low|medium|high|critical>",
    "search": "/swarm search <words> [topic:api] [status:open|resolved|escalated] [sev:1] "
    "[after:2026-01-01] [before:2026-02-01]",
    "stats": "/swarm stats [7d|30d|90d|all] [topic]",
    "route": "/swarm route <topic> [region]",
    "lead": "/swarm lead @user [topic]",
    "expert": "/swarm expert @user <topic>",
}


class UsageError(Exception):
    """Bad arguments: the message is the usage line to show."""


@dataclass(frozen=True)
class Command:
    """A parsed `/swarm` invocation."""

    name: str
    case_number: str | None = None
    user_id: str | None = None
    severity: int | None = None
    topic: str | None = None
    region: str | None = None
    period: str | None = None
    text: str = ""
    filters: dict[str, str] = field(default_factory=dict)


def _usage(name: str, problem: str = "") -> UsageError:
    prefix = f"{problem} " if problem else ""
    return UsageError(f"{prefix}Usage: `{USAGE[name]}`")


def _user(token: str, name: str) -> str:
    match = USER_MENTION.match(token)
    if not match:
        raise _usage(name, f"`{token}` is not a @mention.")
    return match.group(1)


def _severity(token: str, name: str) -> int:
    match = SEVERITY.match(token)
    if not match:
        raise _usage(name, f"`{token}` is not a severity (sev1 to sev4).")
    return int(match.group(1))


def parse(text: str) -> Command:
    """Parse the text after `/swarm`; UsageError for unknown subcommands or bad arguments."""
    text = (text or "").strip()
    if not text:
        return Command("help")
    head, _, rest = text.partition(" ")
    name = head.lower()
    rest = rest.strip()
    args = rest.split()
    if name == "help":
        return Command("help")
    if name == "new":
        if len(args) > 1:
            raise _usage(name)
        return Command(name, case_number=args[0] if args else None)
    if name == "status":
        if len(args) > 1:
            raise _usage(name)
        return Command(name, case_number=args[0] if args else None)
    if name in ("claim", "reopen"):
        if len(args) != 1:
            raise _usage(name)
        return Command(name, case_number=args[0])
    if name == "assign":
        if len(args) != 2:
            raise _usage(name)
        return Command(name, case_number=args[0], user_id=_user(args[1], name))
    if name == "escalate":
        if len(args) not in (1, 2):
            raise _usage(name)
        severity = _severity(args[1], name) if len(args) == 2 else None
        return Command(name, case_number=args[0], severity=severity)
    if name == "urgency":
        if len(args) != 2:
            raise _usage(name)
        level = args[1].lower()
        if level not in ("low", "medium", "high", "critical"):
            raise _usage(name, f"`{args[1][:20]}` is not an urgency.")
        return Command(name, case_number=args[0], text=level)
    if name == "sev":
        if len(args) != 2:
            raise _usage(name)
        return Command(name, case_number=args[0], severity=_severity(args[1], name))
    if name == "resolve":
        if not args:
            raise _usage(name)
        return Command(name, case_number=args[0], text=rest[len(args[0]) :].strip())
    if name == "search":
        return _search(rest)
    if name == "stats":
        if len(args) > 2:
            raise _usage(name)
        period, topic = None, None
        for arg in args:
            if re.fullmatch(r"\d+d|all", arg.lower()):
                period = arg.lower()
            elif topic is None:
                topic = arg
            else:
                raise _usage(name)
        return Command(name, period=period or "30d", topic=topic)
    if name == "route":
        if len(args) not in (1, 2):
            raise _usage(name)
        return Command(
            name, topic=args[0].lower(), region=args[1].lower() if len(args) == 2 else ""
        )
    if name == "lead":
        if len(args) not in (1, 2):
            raise _usage(name)
        return Command(
            name, user_id=_user(args[0], name), topic=args[1].lower() if len(args) == 2 else ""
        )
    if name == "expert":
        if len(args) != 2:
            raise _usage(name)
        return Command(name, user_id=_user(args[0], name), topic=args[1].lower())
    raise UsageError(f"Unknown subcommand `{head[:40]}`. Try `/swarm help`.")


FILTER = re.compile(r"^(topic|status|sev|after|before):(.+)$", re.IGNORECASE)


def _search(rest: str) -> Command:
    try:
        tokens = shlex.split(rest)
    except ValueError:
        tokens = rest.split()
    words, filters = [], {}
    for token in tokens:
        match = FILTER.match(token)
        if match:
            filters[match.group(1).lower()] = match.group(2)
        else:
            words.append(token)
    if not words and not filters:
        raise _usage("search")
    return Command("search", text=" ".join(words), filters=filters)


COMMAND_HELP = """*Swarm*: file a case, swarm it in its thread, escalate when it needs a room.
• *File a swarm case* (shortcut menu) or `/swarm new [case]` — open the intake form
• *Swarm this message* (message menu) — file a case from a message
""" + "\n".join(f"• `{line}`" for line in USAGE.values())
