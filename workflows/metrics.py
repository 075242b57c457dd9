"""The swarm's figures per period and topic, each compared with the period before it.

Every figure is computed by the database from aggregates (see storage/metrics.py); the
definitions are in the README ("Metrics"). Durations are seconds (floats, to the
microsecond), rates are shares between 0 and 1, and a figure that has nothing to be
computed from (a mean of no cases, a share of zero cases) is None, never 0.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from storage.metrics import ALL, COUNTERS, Queue, Window
from workflows import text
from workflows.errors import SwarmError
from workflows.routing import is_admin, leads_of, require_topic
from workflows.services import Services

PERIODS: dict[str, timedelta | None] = {
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
    "all": None,
}
DEFAULT_PERIOD = "7d"

Kind = Literal["count", "duration", "days", "rate"]


@dataclass(frozen=True)
class Figure:
    """What a figure is called, how it is shown, and which way is better (+1 up, -1 down)."""

    name: str
    label: str
    kind: Kind
    better: int


FIGURES = (
    Figure("filed", "Cases filed", "count", 0),
    Figure("resolved", "Cases resolved", "count", +1),
    Figure("open_queue", "Open queue", "count", -1),
    Figure("oldest_wait", "Oldest wait", "duration", -1),
    Figure("first_response_mean", "Time to first response (mean)", "duration", -1),
    Figure("first_response_median", "Time to first response (median)", "duration", -1),
    Figure("resolution_mean", "Time to resolution (mean)", "duration", -1),
    Figure("resolution_median", "Time to resolution (median)", "duration", -1),
    Figure("days_to_close", "Days to close", "days", -1),
    Figure("same_day_rate", "Same-day resolution rate", "rate", +1),
    Figure("within_sla_rate", "Resolved within SLA", "rate", +1),
    Figure("escalations", "Escalations", "count", -1),
    Figure("escalation_rate", "Escalation rate", "rate", -1),
    Figure("first_swarm_rate", "First-swarm resolution rate", "rate", +1),
)
BY_NAME = {f.name: f for f in FIGURES}
PERSON_FIGURES = ("replies", "claims", "first_responses", "resolutions")


@dataclass(frozen=True)
class Figures:
    """Every figure of one period (and topic, or all topics)."""

    filed: int
    resolved: int
    open_queue: int
    oldest_wait: float | None
    first_response_mean: float | None
    first_response_median: float | None
    resolution_mean: float | None
    resolution_median: float | None
    days_to_close: float | None
    same_day_rate: float | None
    within_sla_rate: float | None
    escalations: int
    escalation_rate: float | None
    first_swarm_rate: float | None
    # What the means and shares are of (shown in json and csv, for checking).
    responded: int = 0
    with_deadline: int = 0

    def value(self, name: str) -> float | int | None:
        return getattr(self, name)


@dataclass(frozen=True)
class Change:
    """One figure against the period before: which way it went and whether that is better."""

    figure: str
    current: float | int | None
    previous: float | int | None
    direction: Literal["up", "down", "same"] | None
    better: bool | None


@dataclass(frozen=True)
class Person:
    """What one person did in the period."""

    user_id: str
    replies: int = 0
    claims: int = 0
    first_responses: int = 0
    resolutions: int = 0

    @property
    def total(self) -> int:
        return self.replies + self.claims + self.first_responses + self.resolutions


@dataclass(frozen=True)
class Report:
    """The figures of a period, the period before, per topic, and (for leads) per person."""

    period: str
    window: Window
    previous_window: Window | None
    topic: str | None
    figures: Figures
    previous: Figures | None
    topics: dict[str, Figures]
    topic_labels: dict[str, str]
    people: tuple[Person, ...] | None = None
    people_topics: tuple[str, ...] | None = field(default=None)

    @property
    def changes(self) -> list[Change]:
        """Each figure against the period before (empty for `all`)."""
        if self.previous is None:
            return []
        return [
            compare(f, self.figures.value(f.name), self.previous.value(f.name)) for f in FIGURES
        ]


def compare(figure: Figure, current: float | int | None, previous: float | int | None) -> Change:
    """Up, down or the same, and whether that is better (None when either side is missing,
    when nothing changed, or when the figure has no better direction)."""
    if current is None or previous is None:
        return Change(figure.name, current, previous, None, None)
    if current == previous:
        return Change(figure.name, current, previous, "same", None)
    direction: Literal["up", "down"] = "up" if current > previous else "down"
    better = None if figure.better == 0 else (direction == "up") == (figure.better > 0)
    return Change(figure.name, current, previous, direction, better)


def parse_period(value: str | None) -> str:
    """A known period name (`7d`, `30d`, `90d`, `all`), or SwarmError."""
    period = (value or DEFAULT_PERIOD).strip().lower()
    if period not in PERIODS:
        raise SwarmError(f"`{period}` is not a period: use {', '.join(PERIODS)}.")
    return period


def windows_of(period: str, now: datetime) -> tuple[Window, Window | None]:
    """The period ending now, and the one as long just before it (none for `all`)."""
    span = PERIODS[period]
    if span is None:
        return Window(None, now), None
    return Window(now - span, now), Window(now - 2 * span, now - span)


def _figures(
    counters: dict[str, int],
    medians: dict[str, float],
    queue: Queue,
    at: datetime,
) -> Figures:
    def share(part: int, whole: int) -> float | None:
        return part / whole if whole else None

    def mean(total_us: int, n: int) -> float | None:
        return total_us / n / 1e6 if n else None

    resolved = counters["resolved"]
    resolution_mean = mean(counters["resolution_us"], resolved)
    return Figures(
        filed=counters["filed"],
        resolved=resolved,
        open_queue=queue.count,
        oldest_wait=(at - queue.oldest).total_seconds() if queue.oldest else None,
        first_response_mean=mean(counters["response_us"], counters["responded"]),
        first_response_median=(medians["response"] / 1e6 if "response" in medians else None),
        resolution_mean=resolution_mean,
        resolution_median=(medians["resolution"] / 1e6 if "resolution" in medians else None),
        days_to_close=resolution_mean / 86400 if resolution_mean is not None else None,
        same_day_rate=share(counters["same_day"], resolved),
        within_sla_rate=share(counters["within_sla"], counters["with_deadline"]),
        escalations=counters["escalations"],
        escalation_rate=share(counters["filed_escalated"], counters["filed"]),
        first_swarm_rate=share(counters["first_swarm"], resolved),
        responded=counters["responded"],
        with_deadline=counters["with_deadline"],
    )


def _sum(per_topic: dict[str, dict[str, int]]) -> dict[str, int]:
    return {k: sum(c[k] for c in per_topic.values()) for k in COUNTERS}


def _queue_sum(queues: dict[str, Queue]) -> Queue:
    oldest = [q.oldest for q in queues.values() if q.oldest is not None]
    return Queue(sum(q.count for q in queues.values()), min(oldest) if oldest else None)


EMPTY_COUNTERS = dict.fromkeys(COUNTERS, 0)
EMPTY_QUEUE = Queue(0, None)


def report(
    services: Services,
    *,
    team_id: str,
    period: str = DEFAULT_PERIOD,
    topic: str | None = None,
    people_topics: Sequence[str] | None | Literal[False] = False,
    until: datetime | None = None,
) -> Report:
    """Every figure of the period ending now (or `until`), and of the period before it, per
    topic too.

    `people_topics`: False for no per-person figures, None for them over every topic, or the
    topics they cover.
    """
    period = parse_period(period)
    if topic is not None:
        require_topic(services.config, topic)
    topics = [topic] if topic is not None else None
    scope: list[str] | None = None
    if people_topics is not False:
        scope = [topic] if topic is not None else people_topics and list(people_topics)
    window, previous = windows_of(period, until or services.clock.now())
    windows = [window] if previous is None else [window, previous]
    with services.uow.read() as uow:
        tally = uow.metrics.tally(team_id=team_id, topics=topics, windows=windows)
        queue_now = (
            uow.metrics.open_now(team_id=team_id, topics=topics)
            if until is None
            else uow.metrics.open_at(team_id=team_id, topics=topics, at=until)
        )
        queue_then = (
            uow.metrics.open_at(team_id=team_id, topics=topics, at=window.start)
            if previous is not None and window.start is not None
            else {}
        )
        people = (
            uow.metrics.people(team_id=team_id, topics=scope, window=window)
            if people_topics is not False
            else None
        )

    def medians_of(i: int, key: str) -> dict[str, float]:
        return {what: v for (what, w, t), v in tally.medians.items() if w == i and t == key}

    counters: list[dict[str, dict[str, int]]] = [{} for _ in windows]
    for (i, key), values in tally.counters.items():
        counters[i][key] = values

    keys = [topic] if topic is not None else [t.key for t in services.config.topics]
    seen = {k for c in counters for k in c} | set(queue_now)
    keys += sorted(seen - set(keys))
    per_topic = {
        key: _figures(
            counters[0].get(key, EMPTY_COUNTERS),
            medians_of(0, key),
            queue_now.get(key, EMPTY_QUEUE),
            window.end,
        )
        for key in keys
    }
    figures = _figures(_sum(counters[0]), medians_of(0, ALL), _queue_sum(queue_now), window.end)
    before = None
    if previous is not None:
        before = _figures(
            _sum(counters[1]), medians_of(1, ALL), _queue_sum(queue_then), previous.end
        )
    labels = {}
    for key in keys:
        configured = services.config.topic(key)
        labels[key] = configured.title if configured else key
    persons = None
    if people is not None:
        persons = tuple(
            sorted(
                (Person(user_id=user, **done) for user, done in people.items()),
                key=lambda p: (-p.total, p.user_id),
            )
        )
    return Report(
        period=period,
        window=window,
        previous_window=previous,
        topic=topic,
        figures=figures,
        previous=before,
        topics=per_topic,
        topic_labels=labels,
        people=persons,
        people_topics=None if scope is None else tuple(scope),
    )


def people_scope(
    services: Services,
    *,
    team_id: str,
    user_id: str,
    topic: str | None,
) -> list[str] | None | Literal[False]:
    """Which topics' per-person figures a user may see: those they lead (None: all, for
    admins and leads of every topic), or False when they lead none of the asked ones."""
    if is_admin(services.config, services.slack, user_id):
        return [topic] if topic else None
    with services.uow.read() as uow:
        led = [
            t.key
            for t in services.config.topics
            if user_id in leads_of(uow, services.config, team_id=team_id, topic_key=t.key)
        ]
    if topic is not None:
        return [topic] if topic in led else False
    if not led:
        return False
    return None if len(led) == len(services.config.topics) else led


def stats(
    services: Services,
    *,
    team_id: str,
    user_id: str,
    period: str | None = None,
    topic: str | None = None,
) -> Report:
    """`/swarm stats [period] [topic]`: the report, with per-person figures for leads only."""
    period = parse_period(period)
    if topic is not None:
        require_topic(services.config, topic)
    scope = people_scope(services, team_id=team_id, user_id=user_id, topic=topic)
    return report(
        services,
        team_id=team_id,
        period=period,
        topic=topic,
        people_topics=scope,
    )


# -- showing figures ---------------------------------------------------------------------------
def duration(seconds: float) -> str:
    """A figure's duration: to the nearest second (halves up), shown to the second under an
    hour (`42m 17s`), then hours and minutes, then days and hours."""
    return text.duration(
        timedelta(seconds=int(seconds + 0.5) if seconds > 0 else 0), to_the_second=True
    )


def show(figure: Figure, value: float | int | None) -> str:
    """A figure's value for people; `—` when there is nothing to compute it from."""
    if value is None:
        return "—"
    if figure.kind == "duration":
        return duration(float(value))
    if figure.kind == "days":
        return f"{value:.2f}"
    if figure.kind == "rate":
        return f"{value * 100:.1f}%"
    return str(value)


def arrow(change: Change) -> str:
    """`▲`/`▼` (`=` unchanged), with `better`/`worse` when the figure has a better direction."""
    if change.direction is None:
        return ""
    mark = {"up": "▲", "down": "▼", "same": "="}[change.direction]
    if change.better is None:
        return mark
    return f"{mark} {'better' if change.better else 'worse'}"


def _window_json(window: Window | None) -> dict[str, str | None] | None:
    if window is None:
        return None
    return {
        "start": window.start.isoformat() if window.start else None,
        "end": window.end.isoformat(),
    }


def to_dict(report: Report) -> dict[str, Any]:
    """The report for machines (what `--format json` prints)."""
    return {
        "period": report.period,
        "topic": report.topic,
        "window": _window_json(report.window),
        "previous_window": _window_json(report.previous_window),
        "figures": asdict(report.figures),
        "previous": asdict(report.previous) if report.previous else None,
        "changes": {
            c.figure: {"direction": c.direction, "better": c.better} for c in report.changes
        },
        "topics": {key: asdict(f) for key, f in report.topics.items()},
        "people": ([asdict(p) for p in report.people] if report.people is not None else None),
    }


def to_json(report: Report) -> str:
    return json.dumps(to_dict(report), indent=2, ensure_ascii=False)


def to_csv(report: Report) -> str:
    """One row per figure: scope (`all`, `topic:<key>`, `person:<id>`), figure, value,
    previous, direction, better."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["scope", "figure", "value", "previous", "direction", "better"])
    changes = {c.figure: c for c in report.changes}
    for f in FIGURES:
        change = changes.get(f.name)
        writer.writerow(
            [
                "all",
                f.name,
                _csv(report.figures.value(f.name)),
                _csv(change.previous) if change else "",
                (change.direction or "") if change else "",
                _csv(change.better) if change else "",
            ]
        )
    for key, figures in report.topics.items():
        for f in FIGURES:
            writer.writerow([f"topic:{key}", f.name, _csv(figures.value(f.name)), "", "", ""])
    for person in report.people or ():
        for name in PERSON_FIGURES:
            writer.writerow([f"person:{person.user_id}", name, getattr(person, name), "", "", ""])
    return out.getvalue()


def _csv(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def describe_window(report: Report) -> str:
    """`last 7 days (2026-11-22 10:00 – 2026-11-29 10:00 UTC)` or `all time`."""
    if report.window.start is None:
        return f"all time, up to {report.window.end:%Y-%m-%d %H:%M} UTC"
    return (
        f"last {report.period[:-1]} days ({report.window.start:%Y-%m-%d %H:%M} – "
        f"{report.window.end:%Y-%m-%d %H:%M} UTC)"
    )


def to_table(report: Report) -> str:
    """The report as text tables (what `swarmbot stats` prints by default)."""
    scope = f"topic {report.topic}" if report.topic else "all topics"
    lines = [f"Swarm figures, {scope}, {describe_window(report)}", ""]
    changes = {c.figure: c for c in report.changes}
    rows = [["figure", "value"] + (["before", "change"] if report.previous else [])]
    for f in FIGURES:
        row = [f.label, show(f, report.figures.value(f.name))]
        if report.previous is not None:
            change = changes[f.name]
            row += [show(f, change.previous), arrow(change)]
        rows.append(row)
    lines += _grid(rows)
    if len(report.topics) > 1 or report.topic is None:
        lines += ["", "Per topic"]
        keys = list(report.topics)
        head = ["figure", *(report.topic_labels[k] for k in keys)]
        grid = [head] + [
            [f.label, *(show(f, report.topics[k].value(f.name)) for k in keys)] for f in FIGURES
        ]
        lines += _grid(grid)
    if report.people is not None:
        lines += ["", "Per person"]
        grid = [["person", "replies", "claims", "first responses", "resolutions"]]
        grid += [
            [p.user_id, str(p.replies), str(p.claims), str(p.first_responses), str(p.resolutions)]
            for p in report.people
        ]
        lines += _grid(grid) if report.people else ["(nobody did anything in the period)"]
    return "\n".join(lines) + "\n"


def _grid(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for n, row in enumerate(rows):
        cells = [
            cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)
        ]
        out.append("  ".join(cells).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return out
