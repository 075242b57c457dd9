"""Job store rows for SLA timers, written without APScheduler's per-job machinery.

A first start arms every open case's four timers: 400,000 rows for 100,000 cases. Building a
`Job` for each took most of that start; pickling each job's state took most of what was left
(about 6.5 µs a row, mostly the trigger's and the due time's reduce). Here a timer's row is
made from a template: the pickled state of the first timer of its shape (its kind, the number
of digits of its case id, and how pickle encodes that id), in which only the case id, the job
id and the due time differ from one timer to the next, each of a fixed length for that shape.
Filling in those bytes gives what `pickle.dumps` gives, byte for byte: each template is proven
on a second timer of its shape against `pickle.dumps` itself before it is used, and a shape
whose template cannot be proven is pickled the ordinary way.
"""

from __future__ import annotations

import pickle
import struct
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from apscheduler.triggers.date import DateTrigger

from workflows import sla

# A stored timer's job state but for its id, name, trigger, args and due time (Job.__getstate__
# of APScheduler 3; a test checks the two agree).
TIMER_FUNC = "scheduling.sweeps:run_timer"
JOB_DEFAULTS = {"misfire_grace_time": None, "coalesce": True, "max_instances": 1}
TIMER_STATE = {
    "version": 1,
    "func": TIMER_FUNC,
    "executor": "default",
    "kwargs": {},
    **JOB_DEFAULTS,
}
PROTOCOL = pickle.HIGHEST_PROTOCOL

Row = tuple[str, float, bytes]  # (job id, next run time as a timestamp, pickled job state)


def job_state(timer: sla.Timer) -> dict[str, Any]:
    """The state APScheduler stores for a timer's job."""
    trigger = DateTrigger.__new__(DateTrigger)
    trigger.run_date = timer.due
    job_id = timer.job_id
    return {
        **TIMER_STATE,
        "id": job_id,
        "name": job_id,
        "trigger": trigger,
        "args": (timer.case_id, timer.kind),
        "next_run_time": timer.due,
    }


def _int_opcode(value: int) -> bytes | None:
    """How pickle writes a non-negative int (protocol 2 and up), or None past 32 bits."""
    if 0 <= value <= 0xFF:
        return b"K" + struct.pack("<B", value)
    if 0 <= value <= 0xFFFF:
        return b"M" + struct.pack("<H", value)
    if 0 <= value <= 0x7FFFFFFF:
        return b"J" + struct.pack("<i", value)
    return None


def _text(value: str) -> bytes:
    encoded = value.encode()
    return b"\x8c" + bytes([len(encoded)]) + encoded  # SHORT_BINUNICODE (under 256 bytes)


def _moment(value: datetime) -> bytes:
    state = value.__reduce_ex__(PROTOCOL)[1][0]  # the 10 bytes of a datetime's state
    return b"C" + bytes([len(state)]) + state  # SHORT_BINBYTES


def _parts(timer: sla.Timer) -> tuple[bytes, bytes, bytes] | None:
    number = _int_opcode(timer.case_id)
    if number is None:
        return None
    return _text(timer.job_id), number, _moment(timer.due)


@dataclass(frozen=True)
class _Template:
    pickled: bytes
    spans: list[tuple[int, int, int]]  # (start, length, which part)

    def fill(self, parts: tuple[bytes, bytes, bytes]) -> bytes:
        out = bytearray(self.pickled)
        for start, length, which in self.spans:
            out[start : start + length] = parts[which]
        return bytes(out)


def _spans(pickled: bytes, parts: tuple[bytes, ...]) -> list[tuple[int, int, int]] | None:
    """Where each part occurs in the pickle; None unless they occur apart from each other."""
    spans: list[tuple[int, int, int]] = []
    for which, part in enumerate(parts):
        at = pickled.find(part)
        if at < 0:
            return None
        while at >= 0:
            spans.append((at, len(part), which))
            at = pickled.find(part, at + len(part))
    spans.sort()
    if any(a + n > b for (a, n, _w), (b, _m, _v) in zip(spans, spans[1:], strict=False)):
        return None
    return spans


class JobRows:
    """Rows of the job store's table for SLA timers, as APScheduler would write them."""

    def __init__(self) -> None:
        self._templates: dict[tuple[Any, ...], _Template | None] = {}

    def row(self, timer: sla.Timer) -> Row:
        """(id, next run time, pickled state) of a timer's job."""
        # What datetime_to_utc_timestamp gives, 20x faster.
        return timer.job_id, timer.due.timestamp(), self.state(timer)

    def state(self, timer: sla.Timer) -> bytes:
        """The pickled job state of a timer: `pickle.dumps(job_state(timer))`, faster."""
        parts = _parts(timer)
        if parts is None or timer.due.tzinfo is None:
            return pickle.dumps(job_state(timer), PROTOCOL)
        key = (timer.kind, len(parts[0]), parts[1][:1], timer.due.tzinfo)
        if key not in self._templates:
            self._templates[key] = _template_for(timer, parts)
        template = self._templates[key]
        if template is None:
            return pickle.dumps(job_state(timer), PROTOCOL)
        return template.fill(parts)


def _template_for(timer: sla.Timer, parts: tuple[bytes, bytes, bytes]) -> _Template | None:
    """The template of a timer's shape, proven on another timer of that shape whose every
    variable part differs (so no byte that merely looks like one is taken for it); None when
    the proof fails."""
    pickled = pickle.dumps(job_state(timer), PROTOCOL)
    spans = _spans(pickled, parts)
    if spans is None:
        return None
    template = _Template(pickled, spans)
    # The lowest bit flipped keeps the number of digits and pickle's encoding of the id.
    probe = sla.Timer(
        case_id=timer.case_id ^ 1,
        kind=timer.kind,
        due=timer.due + timedelta(days=1, microseconds=1),
    )
    probe_parts = _parts(probe)
    if probe_parts is None or any(
        len(a) != len(b) for a, b in zip(parts, probe_parts, strict=True)
    ):
        return None
    if template.fill(probe_parts) != pickle.dumps(job_state(probe), PROTOCOL):
        return None
    return template
