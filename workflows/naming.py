"""Incident channel names: `{prefix}-{topic}-{severity_word}{N}-{case}`, as Slack accepts them."""

from __future__ import annotations

import hashlib
import re
import unicodedata

from workflows.config import Naming

NAME_MAX = 80
NOT_ALLOWED = re.compile(r"[^a-z0-9_-]+")
DASHES = re.compile(r"-{2,}")


def slug(text: str) -> str:
    """Lowercase ASCII, every run of other characters turned into one '-', none at the ends."""
    text = "".join(str(unicodedata.decimal(c)) if c.isdecimal() else c for c in text)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    text = NOT_ALLOWED.sub("-", text.lower())
    return DASHES.sub("-", text).strip("-")


def case_slug(case_number: str) -> str:
    """The case number as it appears in names; one with no usable character gets a digest."""
    return slug(case_number) or "case-" + hashlib.sha1(case_number.encode()).hexdigest()[:8]


def channel_name(
    naming: Naming, topic_key: str, severity: int, case_number: str, n: int = 1
) -> str:
    """The n-th candidate name (n > 1 adds `-n`); at most 80 chars, the case number kept whole.

    When too long the topic is cut first, then the prefix, then the severity word.
    """
    case = case_slug(case_number)
    tail = f"-{n}" if n > 1 else ""
    parts = [slug(naming.prefix), slug(topic_key), slug(naming.severity_word)]
    sev_digit = str(severity)

    def build() -> str:
        head = "-".join(p for p in parts[:2] if p)
        severity_part = parts[2] + sev_digit
        return "-".join(p for p in (head, severity_part, case) if p) + tail

    for index in (1, 0, 2):  # topic, then prefix, then the severity word
        excess = len(build()) - NAME_MAX
        if excess <= 0:
            break
        parts[index] = parts[index][: max(len(parts[index]) - excess, 0)].rstrip("-_")
    name = build()
    # Only a case number longer than Slack allows could still overflow: its end is kept.
    return name if len(name) <= NAME_MAX else name[-NAME_MAX:].lstrip("-_")
