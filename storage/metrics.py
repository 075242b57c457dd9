"""Aggregate queries behind the swarm's figures: counts, sums and exact medians, all in SQL.

Durations are whole microseconds computed by the database (`micros`), so sums and medians
are exact integers (a median of an even count is the mean of the two middle ones) and the
same on SQLite and PostgreSQL. Nothing here loads cases into Python.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    String,
    and_,
    case,
    func,
    literal,
    not_,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from storage.domain import CaseStatus
from storage.models import Case, CaseEvent, Message

ALL = "*"  # the key of figures over every selected topic


class micros(FunctionElement[int]):  # noqa: N801 - reads like the SQL function it renders
    """Whole microseconds from `start` to `end`: `micros(end, start)`."""

    type = BigInteger()
    name = "micros"
    inherit_cache = True


@compiles(micros, "sqlite")
def _micros_sqlite(element: micros, compiler: SQLCompiler, **kw: Any) -> str:
    # Stored as 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC): whole seconds from strftime, the
    # microseconds from the text, so no floating point (julianday) gets in the way.
    end, start = (compiler.process(c, **kw) for c in element.clauses)
    return (
        f"((CAST(strftime('%s', {end}) AS INTEGER) - CAST(strftime('%s', {start}) AS INTEGER))"
        f" * 1000000 + CAST(substr({end}, 21, 6) AS INTEGER)"
        f" - CAST(substr({start}, 21, 6) AS INTEGER))"
    )


@compiles(micros, "postgresql")
def _micros_postgresql(element: micros, compiler: SQLCompiler, **kw: Any) -> str:
    # EXTRACT(EPOCH ...) is numeric (exact) on PostgreSQL 14 and later.
    end, start = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST(EXTRACT(EPOCH FROM ({end} - {start})) * 1000000 AS BIGINT)"


class utc_day(FunctionElement[Any]):  # noqa: N801
    """The UTC calendar day of a timestamp, comparable on both databases."""

    type = String()
    name = "utc_day"
    inherit_cache = True


@compiles(utc_day, "sqlite")
def _utc_day_sqlite(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:
    (at,) = (compiler.process(c, **kw) for c in element.clauses)
    return f"substr({at}, 1, 10)"


@compiles(utc_day, "postgresql")
def _utc_day_postgresql(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:
    (at,) = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST(timezone('UTC', {at}) AS DATE)"


@dataclass(frozen=True)
class Window:
    """A half-open stretch of time [start, end); start None reaches back to the first case."""

    start: datetime | None
    end: datetime

    def holds(self, column: Any) -> ColumnElement[bool]:
        """`column` falls in this window."""
        lower = column.is_not(None) if self.start is None else column >= self.start
        return and_(lower, column < self.end)


# Counters of one window, summed per topic: the figures are ratios and means of these.
COUNTERS = (
    "filed",
    "filed_escalated",
    "escalations",
    "responded",
    "response_us",
    "resolved",
    "resolution_us",
    "same_day",
    "with_deadline",
    "within_sla",
    "first_swarm",
)


@dataclass(frozen=True)
class Queue:
    """Cases open at a moment, and the filing time of the oldest."""

    count: int
    oldest: datetime | None


class MetricsRepository:
    """Aggregates over cases, their timelines and their messages."""

    def __init__(self, session: Session) -> None:
        self.session = session

    # -- selection ---------------------------------------------------------------------------
    @staticmethod
    def _of(team_id: str, topics: Sequence[str] | None) -> list[ColumnElement[bool]]:
        where = [Case.team_id == team_id]
        if topics is not None:
            where.append(Case.topic_key.in_(list(topics)))
        return where

    @staticmethod
    def _touched(windows: Sequence[Window]) -> list[ColumnElement[bool]]:
        """Cases with anything counted in the windows (all cases when one has no start)."""
        starts = [w.start for w in windows]
        if any(start is None for start in starts):
            return []
        since = min(s for s in starts if s is not None)
        return [
            or_(
                Case.created_at >= since,
                Case.first_response_at >= since,
                Case.resolved_at >= since,
                Case.escalated_at >= since,
            )
        ]

    # -- counters ----------------------------------------------------------------------------
    def counters(
        self, *, team_id: str, topics: Sequence[str] | None, windows: Sequence[Window]
    ) -> list[dict[str, dict[str, int]]]:
        """For each window, per topic: the COUNTERS (cases filed, sums of durations, ...)."""

        def count(condition: ColumnElement[bool]) -> Any:
            return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

        def total(condition: ColumnElement[bool], value: Any) -> Any:
            return func.coalesce(func.sum(case((condition, value), else_=None)), 0)

        response = micros(Case.first_response_at, Case.created_at)
        resolution = micros(Case.resolved_at, Case.created_at)
        columns: list[Any] = [Case.topic_key]
        for i, window in enumerate(windows):
            filed = window.holds(Case.created_at)
            responded = window.holds(Case.first_response_at)
            resolved = and_(Case.status == CaseStatus.RESOLVED, window.holds(Case.resolved_at))
            columns += [
                count(filed).label(f"w{i}_filed"),
                count(and_(filed, Case.escalated_at.is_not(None))).label(f"w{i}_filed_escalated"),
                count(window.holds(Case.escalated_at)).label(f"w{i}_escalations"),
                count(responded).label(f"w{i}_responded"),
                total(responded, response).label(f"w{i}_response_us"),
                count(resolved).label(f"w{i}_resolved"),
                total(resolved, resolution).label(f"w{i}_resolution_us"),
                count(and_(resolved, utc_day(Case.resolved_at) == utc_day(Case.created_at))).label(
                    f"w{i}_same_day"
                ),
                count(and_(resolved, Case.resolution_due.is_not(None))).label(
                    f"w{i}_with_deadline"
                ),
                count(and_(resolved, Case.resolved_at <= Case.resolution_due)).label(
                    f"w{i}_within_sla"
                ),
                count(and_(resolved, Case.escalated_at.is_(None))).label(f"w{i}_first_swarm"),
            ]
        query = (
            select(*columns)
            .where(*self._of(team_id, topics), *self._touched(windows))
            .group_by(Case.topic_key)
        )
        out: list[dict[str, dict[str, int]]] = [{} for _ in windows]
        for row in self.session.execute(query).mappings():
            for i in range(len(windows)):
                out[i][row["topic_key"]] = {k: int(row[f"w{i}_{k}"]) for k in COUNTERS}
        return out

    # -- medians -----------------------------------------------------------------------------
    def medians(
        self,
        *,
        team_id: str,
        topics: Sequence[str] | None,
        windows: Sequence[Window],
    ) -> dict[tuple[str, int, str], float]:
        """Median microseconds to first response ("response") and to resolution
        ("resolution") of each window, per topic and over all (topic ALL): {(what, window,
        topic): value}. A cohort with no case has no entry."""
        cohorts: dict[tuple[str, int], tuple[Any, ColumnElement[bool]]] = {}
        for i, window in enumerate(windows):
            cohorts[("response", i)] = (
                micros(Case.first_response_at, Case.created_at),
                window.holds(Case.first_response_at),
            )
            cohorts[("resolution", i)] = (
                micros(Case.resolved_at, Case.created_at),
                and_(Case.status == CaseStatus.RESOLVED, window.holds(Case.resolved_at)),
            )
        where = [*self._of(team_id, topics), *self._touched(windows)]
        if self.session.get_bind().dialect.name == "postgresql":
            return self._medians_postgresql(cohorts, where)
        return self._medians_window(cohorts, where)

    def _medians_postgresql(
        self,
        cohorts: Mapping[tuple[str, int], tuple[Any, ColumnElement[bool]]],
        where: list[ColumnElement[bool]],
    ) -> dict[tuple[str, int, str], float]:
        keys = list(cohorts)
        aggregates = [
            func.percentile_cont(0.5).within_group(value).filter(condition).label(f"m{n}")
            for n, (value, condition) in enumerate(cohorts.values())
        ]
        out: dict[tuple[str, int, str], float] = {}
        by_topic = select(Case.topic_key, *aggregates).where(*where).group_by(Case.topic_key)
        overall = select(literal(ALL).label("topic_key"), *aggregates).where(*where)
        for query in (by_topic, overall):
            for row in self.session.execute(query).mappings():
                for n, (what, i) in enumerate(keys):
                    if row[f"m{n}"] is not None:
                        out[(what, i, row["topic_key"])] = float(row[f"m{n}"])
        return out

    def _medians_window(
        self,
        cohorts: Mapping[tuple[str, int], tuple[Any, ColumnElement[bool]]],
        where: list[ColumnElement[bool]],
    ) -> dict[tuple[str, int, str], float]:
        # Number each cohort's values in order; the median is the mean of the middle one
        # (odd count) or two (even count): positions (n + 1) / 2 and (n + 2) / 2.
        parts = [
            select(
                literal(f"{what}:{i}").label("cohort"),
                Case.topic_key.label("topic"),
                value.label("x"),
            ).where(*where, condition)
            for (what, i), (value, condition) in cohorts.items()
        ]
        values = union_all(*parts).subquery("cohort_values")
        out: dict[tuple[str, int, str], float] = {}
        for grouped in (True, False):
            partition = [values.c.cohort, values.c.topic] if grouped else [values.c.cohort]
            ranked = select(
                values.c.cohort,
                values.c.topic,
                values.c.x,
                func.row_number().over(partition_by=partition, order_by=values.c.x).label("rn"),
                func.count().over(partition_by=partition).label("n"),
            ).subquery("ranked")
            group = [ranked.c.cohort, ranked.c.topic] if grouped else [ranked.c.cohort]
            topic = ranked.c.topic if grouped else literal(ALL)
            query = (
                select(ranked.c.cohort, topic.label("topic"), func.avg(ranked.c.x).label("m"))
                .where(
                    ranked.c.rn.in_(
                        [
                            (ranked.c.n + 1) // 2,
                            (ranked.c.n + 2) // 2,
                        ]
                    )
                )
                .group_by(*group)
            )
            for cohort, topic_key, median in self.session.execute(query):
                what, i = cohort.split(":")
                out[(what, int(i), topic_key)] = float(median)
        return out

    # -- the open queue ----------------------------------------------------------------------
    def open_now(self, *, team_id: str, topics: Sequence[str] | None) -> dict[str, Queue]:
        """Per topic: cases not resolved now (escalated included) and the oldest filing."""
        rows = self.session.execute(
            select(Case.topic_key, func.count(Case.id), func.min(Case.created_at))
            .where(*self._of(team_id, topics), Case.status != CaseStatus.RESOLVED)
            .group_by(Case.topic_key)
        ).all()
        return {topic: Queue(int(n), oldest) for topic, n, oldest in rows}

    def open_at(
        self, *, team_id: str, topics: Sequence[str] | None, at: datetime
    ) -> dict[str, Queue]:
        """Per topic: cases open at a past moment (filed before it, not resolved by then).

        A case never reopened was resolved by then when its resolved_at is earlier. A reopened
        case was resolved by then when its timeline, up to then, has more `resolved` than
        `reopened` entries (they alternate, starting with a resolve).
        """
        reopened = select(CaseEvent.case_id).where(CaseEvent.kind == "reopened")
        net = (
            select(func.coalesce(func.sum(case((CaseEvent.kind == "resolved", 1), else_=-1)), 0))
            .where(
                CaseEvent.case_id == Case.id,
                CaseEvent.kind.in_(["resolved", "reopened"]),
                CaseEvent.at < at,
            )
            .scalar_subquery()
        )
        rows = self.session.execute(
            select(Case.topic_key, func.count(Case.id), func.min(Case.created_at))
            .where(
                *self._of(team_id, topics),
                Case.created_at < at,
                or_(
                    and_(
                        not_(Case.id.in_(reopened)),
                        or_(Case.resolved_at.is_(None), Case.resolved_at >= at),
                    ),
                    and_(Case.id.in_(reopened), net <= 0),
                ),
            )
            .group_by(Case.topic_key)
        ).all()
        return {topic: Queue(int(n), oldest) for topic, n, oldest in rows}

    # -- people ------------------------------------------------------------------------------
    def people(
        self, *, team_id: str, topics: Sequence[str] | None, window: Window
    ) -> dict[str, dict[str, int]]:
        """Per person: replies, claims, first responses and resolutions in a window."""
        of = self._of(team_id, topics)
        replies = (
            select(
                Message.user_id.label("user_id"),
                literal("replies").label("what"),
                func.count(Message.id).label("n"),
            )
            .join(Case, Case.id == Message.case_id)
            .where(
                *of,
                Message.team_id == team_id,
                window.holds(Message.posted_at),
                Message.is_bot.is_(False),
                Message.user_id.is_not(None),
                Message.deleted_at.is_(None),
            )
            .group_by(Message.user_id)
        )
        claims = (
            select(
                CaseEvent.actor_id.label("user_id"),
                literal("claims").label("what"),
                func.count(CaseEvent.id).label("n"),
            )
            .join(Case, Case.id == CaseEvent.case_id)
            .where(
                *of,
                CaseEvent.kind == "claimed",
                window.holds(CaseEvent.at),
                CaseEvent.actor_id.is_not(None),
            )
            .group_by(CaseEvent.actor_id)
        )
        first = (
            select(
                Case.first_responder_id.label("user_id"),
                literal("first_responses").label("what"),
                func.count(Case.id).label("n"),
            )
            .where(*of, window.holds(Case.first_response_at), Case.first_responder_id.is_not(None))
            .group_by(Case.first_responder_id)
        )
        resolutions = (
            select(
                Case.resolved_by.label("user_id"),
                literal("resolutions").label("what"),
                func.count(Case.id).label("n"),
            )
            .where(
                *of,
                Case.status == CaseStatus.RESOLVED,
                window.holds(Case.resolved_at),
                Case.resolved_by.is_not(None),
            )
            .group_by(Case.resolved_by)
        )
        out: dict[str, dict[str, int]] = {}
        for user_id, what, n in self.session.execute(
            union_all(replies, claims, first, resolutions)
        ):
            out.setdefault(user_id, {})[what] = int(n)
        return out
