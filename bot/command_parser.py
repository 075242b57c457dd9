"""`/swarm` text parsed into typed commands, and the help generated from the same table.

Each subcommand is one row of SUBCOMMANDS: its arguments, what it does, who may use it, and
the function that parses it. A new subcommand is a new row (and a handler in
bot.listeners.commands); `/swarm help` lists every row the app has a handler for.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from workflows.text import CONTROL, escape

USER_MENTION = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")
SEVERITY = re.compile(r"^(?:sev)?([1-4])$", re.IGNORECASE)
URGENCIES = ("low", "medium", "high", "critical")
ECHO_MAX = 40  # characters of the user's own text repeated in an answer


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


@dataclass(frozen=True)
class Subcommand:
    """One row of the table: how it is written, what it does, who may, how it is parsed."""

    arguments: str
    does: str
    who: str
    parse: Callable[[str, str, list[str]], Command]

    def usage(self, name: str) -> str:
        return f"/swarm {name} {self.arguments}".rstrip()


def echo(text: str) -> str:
    """The user's own text, shortened and escaped, safe inside `code` in an answer."""
    return escape(text[:ECHO_MAX].replace("`", "'"))


def _usage(name: str, problem: str = "") -> UsageError:
    prefix = f"{problem} " if problem else ""
    return UsageError(f"{prefix}Usage: `{SUBCOMMANDS[name].usage(name)}`")


def _user(token: str, name: str) -> str:
    match = USER_MENTION.match(token)
    if not match:
        raise _usage(name, f"`{echo(token)}` is not a @mention.")
    return match.group(1)


def _severity(token: str, name: str) -> int:
    match = SEVERITY.match(token)
    if not match:
        raise _usage(name, f"`{echo(token)}` is not a severity (sev1 to sev4).")
    return int(match.group(1))


def _counted(*allowed: int) -> Callable[[str, list[str]], None]:
    def check(name: str, args: list[str]) -> None:
        if len(args) not in allowed:
            raise _usage(name)

    return check


def _bare(name: str, rest: str, args: list[str]) -> Command:
    return Command(name)


def _optional_case(name: str, rest: str, args: list[str]) -> Command:
    _counted(0, 1)(name, args)
    return Command(name, case_number=args[0] if args else None)


def _case(name: str, rest: str, args: list[str]) -> Command:
    _counted(1)(name, args)
    return Command(name, case_number=args[0])


def _assign(name: str, rest: str, args: list[str]) -> Command:
    _counted(2)(name, args)
    return Command(name, case_number=args[0], user_id=_user(args[1], name))


def _escalate(name: str, rest: str, args: list[str]) -> Command:
    _counted(1, 2)(name, args)
    severity = _severity(args[1], name) if len(args) == 2 else None
    return Command(name, case_number=args[0], severity=severity)


def _sev(name: str, rest: str, args: list[str]) -> Command:
    _counted(2)(name, args)
    return Command(name, case_number=args[0], severity=_severity(args[1], name))


def _urgency(name: str, rest: str, args: list[str]) -> Command:
    _counted(2)(name, args)
    level = args[1].lower()
    if level not in URGENCIES:
        raise _usage(name, f"`{echo(args[1])}` is not an urgency.")
    return Command(name, case_number=args[0], text=level)


def _resolve(name: str, rest: str, args: list[str]) -> Command:
    if not args:
        raise _usage(name)
    return Command(name, case_number=args[0], text=rest[len(args[0]) :].strip())


FILTER = re.compile(r"^(topic|status|sev|after|before):(.+)$", re.IGNORECASE)


def _search(name: str, rest: str, args: list[str]) -> Command:
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
        raise _usage(name)
    return Command(name, text=" ".join(words), filters=filters)


def _stats(name: str, rest: str, args: list[str]) -> Command:
    if len(args) > 2:
        raise _usage(name)
    period, topic = None, None
    for arg in args:
        if re.fullmatch(r"\d+d|all", arg.lower()) and period is None:
            if arg.lower() not in ("7d", "30d", "90d", "all"):
                raise _usage(name, f"`{echo(arg)}` is not a period.")
            period = arg.lower()
        elif topic is None:
            topic = arg.lower()
        else:
            raise _usage(name)
    return Command(name, period=period or "7d", topic=topic)


def _route(name: str, rest: str, args: list[str]) -> Command:
    _counted(1, 2)(name, args)
    return Command(name, topic=args[0].lower(), region=args[1].lower() if len(args) == 2 else "")


def _lead(name: str, rest: str, args: list[str]) -> Command:
    _counted(1, 2)(name, args)
    return Command(
        name, user_id=_user(args[0], name), topic=args[1].lower() if len(args) == 2 else ""
    )


def _expert(name: str, rest: str, args: list[str]) -> Command:
    _counted(2)(name, args)
    return Command(name, user_id=_user(args[0], name), topic=args[1].lower())


ANYONE = "anyone"
LEADS = "leads of the case's topic, admins"
SWARM = "the filer, the assignee, the case's swarm, leads"

SUBCOMMANDS: dict[str, Subcommand] = {
    "help": Subcommand("", "this list", ANYONE, _bare),
    "new": Subcommand(
        "[case]", "open the intake form (case number prefilled)", ANYONE, _optional_case
    ),
    "status": Subcommand(
        "[case]", "one case, or this channel's open queue with waits", ANYONE, _optional_case
    ),
    "claim": Subcommand(
        "<case>", "assign the case to yourself", "anyone; from its assignee: leads", _case
    ),
    "assign": Subcommand("<case> @user", "assign the case to someone", LEADS, _assign),
    "urgency": Subcommand(
        "<case> <low|medium|high|critical>",
        "change the urgency; the SLA deadlines move with it",
        "leads of the topic, admins, the filer",
        _urgency,
    ),
    "escalate": Subcommand(
        "<case> [sev1-4]",
        "open an incident channel (severity from the urgency by default)",
        LEADS,
        _escalate,
    ),
    "sev": Subcommand(
        "<case> <sev1-4>", "change the severity; renames the incident channel", LEADS, _sev
    ),
    "resolve": Subcommand(
        "<case> [text]", "resolve with this text, or open the resolve form", SWARM, _resolve
    ),
    "reopen": Subcommand("<case>", "reopen a resolved case", SWARM, _case),
    "search": Subcommand(
        "<words> [topic:api] [status:open|swarming|escalated|resolved] [sev:1] "
        "[after:2026-01-01] [before:2026-02-01]",
        "search case records (only channels you can read)",
        ANYONE,
        _search,
    ),
    "stats": Subcommand(
        "[7d|30d|90d|all] [topic]",
        "the swarm's figures against the period before (default 7d); leads also see each person's",
        ANYONE,
        _stats,
    ),
    "similar": Subcommand(
        "<case>",
        "similar resolved cases and who solved them (only cases you can read)",
        "anyone who can read the case",
        _case,
    ),
    "route": Subcommand(
        "<topic> [region]",
        "make this channel the topic's swarm channel",
        "leads of the topic, admins",
        _route,
    ),
    "lead": Subcommand(
        "@user [topic]", "make someone a lead of a topic, or of all", "admins", _lead
    ),
    "expert": Subcommand(
        "@user <topic>", "make someone an expert of a topic", "leads of the topic, admins", _expert
    ),
}
USAGE = {name: row.usage(name) for name, row in SUBCOMMANDS.items()}


def parse(text: str) -> Command:
    """Parse the text after `/swarm`; UsageError for unknown subcommands or bad arguments."""
    text = CONTROL.sub(" ", text or "").strip()  # a command is one line of printable text
    if not text:
        return Command("help")
    head, _, rest = text.partition(" ")
    name = head.lower()
    row = SUBCOMMANDS.get(name)
    if row is None:
        raise UsageError(f"Unknown subcommand `{echo(head)}`. Try `/swarm help`.")
    rest = rest.strip()
    return row.parse(name, rest, rest.split())


CARD_BUTTONS = (
    "*On a case card:* *Join* adds you to the case's swarm (anyone) · *Claim* assigns it to "
    "you (anyone; taking it from someone: leads) · *Escalate* opens the incident form (leads) "
    "· *Resolve* opens the resolve form (the case's swarm, leads)"
)


PRIVATE_CASES = (
    "_A case whose swarm or incident channel is private exists only for that channel's members._"
)


def help_text(available: Collection[str]) -> str:
    """`/swarm help`: every subcommand the app answers, what it does and who may use it."""
    lines = [
        "*Swarm*: file a case, swarm it in its thread, escalate when it needs a room.",
        "• *File a swarm case* (shortcut menu): open the intake form",
        "• *Swarm this message* (message menu): file a case from a message",
    ]
    for name, row in SUBCOMMANDS.items():
        if name in available and name != "help":
            lines.append(f"• `{row.usage(name)}`: {row.does} _({row.who})_")
    lines.append(CARD_BUTTONS)
    lines.append(PRIVATE_CASES)
    return "\n".join(lines)
