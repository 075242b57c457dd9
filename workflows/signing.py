"""Signatures of the swarm's own webhooks, both ways: HMAC-SHA256 of "{timestamp}.{body}"."""

from __future__ import annotations

import hashlib
import hmac

VERSION = "v1"
WINDOW_SECONDS = 300  # a signature older (or newer) than this is refused: no replays


def signature(secret: str, timestamp: int | str, body: bytes) -> str:
    """The `X-Swarm-Signature` value of a body sent at `timestamp` (unix seconds)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"{VERSION}={mac.hexdigest()}"


def verify(secret: str, timestamp: str, given: str, body: bytes, *, now: float) -> bool:
    """Whether `given` signs `body` at `timestamp`, and that moment is within the window."""
    if not secret or not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        return False
    if abs(now - int(timestamp)) > WINDOW_SECONDS:
        return False
    expected = signature(secret, timestamp, body).encode()
    return hmac.compare_digest(expected, given.encode("utf-8", "surrogateescape"))
