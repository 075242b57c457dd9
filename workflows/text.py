"""Safe text for Slack: mrkdwn escaping and length limits (pure string functions)."""

from __future__ import annotations

import re

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
