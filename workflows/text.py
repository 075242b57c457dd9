"""Text for Slack: mrkdwn escaping, length limits, case links and durations (pure functions)."""

from __future__ import annotations

import re
from datetime import timedelta

ELLIPSIS = "…"
# C0 controls other than tab, newline and carriage return, and DEL: nobody types them, and
# PostgreSQL cannot store NUL at all.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
CONTROL_ERROR = "Remove the control characters (pasted from a terminal?): they cannot be stored."


def has_control(text: str) -> bool:
    """Whether text holds characters that are refused in what people type."""
    return CONTROL.search(text) is not None


def storable(text: str) -> str:
    """Text Slack sent that must be kept whatever it holds: NUL becomes U+FFFD."""
    return text.replace("\x00", "\ufffd")


def escape(text: str) -> str:
    """Escape user text for mrkdwn so it cannot form links, mentions or `<!channel>`."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int, *, more: str = "") -> str:
    """At most `limit` characters; when cut, end with an ellipsis and the `more` pointer."""
    if len(text) <= limit:
        return text
    tail = ELLIPSIS + (f" {more}" if more else "")
    keep = max(limit - len(tail), 0)
    cut = text[:keep]
    # Never leave half an escape entity (&amp; &lt; &gt;) at the cut.
    amp = cut.rfind("&", max(0, len(cut) - 5))
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + tail


def split(text: str, size: int) -> list[str]:
    """Cut text into pieces of at most `size` characters, at line breaks where possible."""
    pieces: list[str] = []
    while len(text) > size:
        cut = text.rfind("\n", 0, size)
        if cut <= size // 2:
            cut = size
        pieces.append(text[:cut])
        text = text[cut:].lstrip("\n")
    if text:
        pieces.append(text)
    return pieces


def case_link(case_number: str, url: str | None, *, bold: bool = False) -> str:
    """The case number, escaped, linked to `url` (support system, thread) when there is one."""
    number = f"*{escape(case_number)}*" if bold else escape(case_number)
    return f"<{url}|{number}>" if url else number


DURATION_UNITS = (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def duration(delta: timedelta, *, exact: bool = False, to_the_second: bool = False) -> str:
    """A duration for people: `45s`, `48m`, `1h 12m`, `2d 4h` (seconds only under a minute).

    `exact`: the configuration's spelling, one unit that loses nothing: `90s`, `2h`, `1w`.
    `to_the_second`: under an hour, the seconds too (`48m 12s`), as the figures show them.
    """
    seconds = max(0, int(delta.total_seconds()))
    if exact:
        unit, size = next((u, n) for u, n in DURATION_UNITS if seconds % n == 0)
        return f"{seconds // size}{unit}"
    parts = []
    for unit, size in DURATION_UNITS[1:]:  # weeks read worse than days in a sentence
        count, seconds = divmod(seconds, size)
        if count or parts:
            parts.append((count, unit))
    shown = parts[:2] or [(0, "s")]
    if len(shown) == 2 and (shown[1][0] == 0 or (shown[1][1] == "s" and not to_the_second)):
        shown = shown[:1]
    return " ".join(f"{count}{unit}" for count, unit in shown)
