"""Full-text search of case records: one API, SQLite FTS5 and PostgreSQL tsvector backends.

The indexes are kept by the database itself (FTS5 triggers; a generated tsvector column with a
GIN index), both created by the same alembic revision, so every write path is indexed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from storage.domain import CaseStatus
from storage.types import UTCDateTime

# Snippet match markers: control characters no Slack message carries; the bot turns them into
# its own bold markers after escaping the text around them.
MARK = "\x02"
END_MARK = "\x03"

# Objects of the search indexes that the models do not describe (alembic must leave them be).
SEARCH_TABLES = ("messages_fts", "cases_fts")
SEARCH_COLUMNS = ("search_vector",)
SEARCH_INDEXES = (
    "ix_messages_search",
    "ix_cases_search",
    "ix_cases_search_topic",
    "ix_cases_search_status",
    "ix_messages_newest",
    "ix_cases_newest",
)

WORD = re.compile(r"\w+", re.UNICODE)


def managed_by_search(name: str | None) -> bool:
    """Whether a table, column or index belongs to the search indexes."""
    if not name:
        return False
    return (
        name in SEARCH_COLUMNS
        or name in SEARCH_INDEXES
        or any(name == t or name.startswith(f"{t}_") for t in SEARCH_TABLES)
    )


@dataclass(frozen=True)
class SearchQuery:
    """Words (all must match) and filters; hidden channels are left out of the results."""

    team_id: str
    words: str
    topic: str | None = None
    statuses: tuple[CaseStatus, ...] = ()
    severity: int | None = None
    after: datetime | None = None
    before: datetime | None = None
    hidden_channels: frozenset[str] = field(default_factory=frozenset)
    offset: int = 0
    limit: int = 5
    window: int = 0  # rank among the newest this many matches; 0: RANK_WINDOW


@dataclass(frozen=True)
class Hit:
    """A case (its fields matched) or one of its messages; `snippet` carries MARK..END_MARK."""

    kind: str  # "case" | "message"
    case_id: int
    case_number: str
    summary: str
    status: CaseStatus
    topic_key: str
    channel_id: str
    ts: str | None
    thread_ts: str | None
    at: datetime
    snippet: str
    score: float
    row_id: int = 0
    user_id: str | None = None
    case_permalink: str | None = None


def terms(words: str) -> list[str]:
    """The words of a query, as the indexes see them (punctuation is a separator)."""
    return [w.lower() for w in WORD.findall(words)][:32]


class Backend(Protocol):
    def hits(self, session: Session, query: SearchQuery, kind: str, limit: int) -> list[Hit]: ...

    def window(self, session: Session, query: SearchQuery, kind: str) -> list[int]: ...

    def searching(self, session: Session) -> AbstractContextManager[None]: ...


def _case_conditions(query: SearchQuery, params: dict[str, Any]) -> list[str]:
    """The case filters (topic, status, severity) as conditions on alias `c`."""
    conditions = []
    if query.topic:
        conditions.append("c.topic_key = :topic")
        params["topic"] = query.topic
    if query.statuses:
        names = []
        for i, status in enumerate(query.statuses):
            params[f"status{i}"] = status.value
            names.append(f":status{i}")
        conditions.append(f"c.status IN ({', '.join(names)})")
    if query.severity is not None:
        conditions.append("c.severity = :severity")
        params["severity"] = query.severity
    return conditions


def _passing_cases(query: SearchQuery, params: dict[str, Any]) -> str:
    """SELECT of the ids of the cases that pass the case filters."""
    conditions = ["c.team_id = :team_id", *_case_conditions(query, params)]
    params["team_id"] = query.team_id
    return f"SELECT c.id FROM cases c WHERE {' AND '.join(conditions)}"


def _filters(
    query: SearchQuery,
    params: dict[str, Any],
    at: str,
    team: str = "c",
    cases: str | None = None,
) -> str:
    """The filters as SQL on alias `c` (cases), or, with `cases` (a case id column), the case
    filters as the set of the case ids that pass them, followed by a /*cases*/ marker (see
    PostgresFullText._windowed)."""
    clauses = [f"{team}.team_id = :team_id"]
    params["team_id"] = query.team_id
    of_case = _case_conditions(query, params)
    if of_case and cases:
        clauses.append(f"({cases} IN ({_passing_cases(query, params)})) /*cases*/")
    else:
        clauses += of_case
    if query.after is not None:
        clauses.append(f"{at} >= :after")
        params["after"] = query.after
    if query.before is not None:
        clauses.append(f"{at} < :before")
        params["before"] = query.before
    return " AND ".join(clauses)


def _hidden(query: SearchQuery, params: dict[str, Any], column: str) -> str:
    if not query.hidden_channels:
        return ""
    names = []
    for i, channel in enumerate(sorted(query.hidden_channels)):
        params[f"hidden{i}"] = channel
        names.append(f":hidden{i}")
    return f" AND {column} NOT IN ({', '.join(names)})"


def _time(value: Any) -> datetime:
    if isinstance(value, str):  # SQLite hands textual SQL its stored ISO text
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _run(session: Session, sql: str, params: dict[str, Any]) -> Any:
    times = [bindparam(k, type_=UTCDateTime()) for k in ("after", "before") if k in params]
    return session.execute(text(sql).bindparams(*times), params)


def _hit(kind: str, row: Any) -> Hit:
    return Hit(
        kind=kind,
        case_id=row.case_id,
        case_number=row.case_number,
        summary=row.summary,
        status=CaseStatus(row.status),
        topic_key=row.topic_key,
        channel_id=row.channel_id,
        ts=row.ts,
        thread_ts=row.thread_ts,
        at=_time(row.at),
        snippet=row.snippet or "",
        score=float(row.score),
        row_id=row.row_id,
        user_id=getattr(row, "user_id", None),
        case_permalink=row.permalink,
    )


def _plain(sql: str) -> str:
    """`sql` with its markers as plain SQL (what the planner estimates best)."""
    return sql.replace("/*cases*/", "")


# Both backends rank among the newest this many matches (that pass the filters): ranking and
# the joins cost per matching row, and a word in 60,000 of a million messages would otherwise
# take 150 ms on SQLite and seconds on PostgreSQL. Newer answers are the likelier ones; a
# query matching fewer rows ranks them all. Both backends choose the same rows (`window`), so
# they rank the same candidates, each with its own ranking function.
RANK_WINDOW = 1000


class SQLiteFTS5:
    """FTS5 with bm25 ranking (case numbers and summaries weigh most)."""

    @staticmethod
    def match(words: str) -> str:
        return " AND ".join(f'"{w}"' for w in terms(words))

    def _params(self, query: SearchQuery) -> dict[str, Any]:
        return {"match": self.match(query.words), "window": query.window or RANK_WINDOW}

    def searching(self, session: Session) -> AbstractContextManager[None]:
        return nullcontext()

    @staticmethod
    def _newest(query: SearchQuery, kind: str, params: dict[str, Any]) -> str:
        """The window: ids of the newest :window matches that pass the filters (FTS5 walks a
        word's rows newest first and stops there)."""
        if kind == "message":
            by_case = bool(query.topic or query.statuses or query.severity is not None)
            where = _filters(query, params, "m.posted_at", team="c" if by_case else "m")
            where += _hidden(query, params, "m.channel_id")
            cases = "JOIN cases c ON c.id = m.case_id" if by_case else ""
            return f"""
                SELECT messages_fts.rowid AS id FROM messages_fts
                JOIN messages m ON m.id = messages_fts.rowid {cases}
                WHERE messages_fts MATCH :match AND {where}
                ORDER BY messages_fts.rowid DESC LIMIT :window"""
        where = _filters(query, params, "c.created_at") + _hidden(query, params, "c.channel_id")
        return f"""
            SELECT cases_fts.rowid AS id FROM cases_fts
            JOIN cases c ON c.id = cases_fts.rowid
            WHERE cases_fts MATCH :match AND {where}
            ORDER BY cases_fts.rowid DESC LIMIT :window"""

    def window(self, session: Session, query: SearchQuery, kind: str) -> list[int]:
        params = self._params(query)
        return list(_run(session, self._newest(query, kind, params), params).scalars())

    def hits(self, session: Session, query: SearchQuery, kind: str, limit: int) -> list[Hit]:
        params = {**self._params(query), "limit": limit}
        newest = self._newest(query, kind, params)
        if kind == "message":
            sql = f"""
                WITH newest AS MATERIALIZED ({newest}),
                -- The outer query walks the few top rows (CROSS JOIN keeps that order) for
                -- their snippets, instead of every match.
                top AS MATERIALIZED (
                    SELECT messages_fts.rowid AS id, bm25(messages_fts) AS rank
                    FROM messages_fts
                    WHERE messages_fts MATCH :match
                      AND messages_fts.rowid >= (SELECT coalesce(min(id), 0) FROM newest)
                      AND +messages_fts.rowid IN (SELECT id FROM newest)
                    ORDER BY rank, messages_fts.rowid DESC LIMIT :limit)
                SELECT m.id AS row_id, m.case_id, c.case_number, c.summary, c.status,
                       c.topic_key, m.channel_id, m.ts, m.thread_ts, m.posted_at AS at,
                       m.user_id, c.permalink,
                       snippet(messages_fts, 0, char(2), char(3), '…', 24) AS snippet,
                       -top.rank AS score
                FROM top
                CROSS JOIN messages_fts
                CROSS JOIN messages m
                CROSS JOIN cases c
                WHERE messages_fts.rowid = top.id AND messages_fts MATCH :match
                  AND m.id = top.id AND c.id = m.case_id
                ORDER BY top.rank, top.id DESC"""
        else:
            weights = "10.0, 5.0, 1.0, 2.0, 2.0"
            sql = f"""
                WITH newest AS MATERIALIZED ({newest}),
                -- The outer query walks the few top rows (CROSS JOIN keeps that order) for
                -- their snippets, instead of every match.
                top AS MATERIALIZED (
                    SELECT cases_fts.rowid AS id, bm25(cases_fts, {weights}) AS rank
                    FROM cases_fts
                    WHERE cases_fts MATCH :match
                      AND cases_fts.rowid >= (SELECT coalesce(min(id), 0) FROM newest)
                      AND +cases_fts.rowid IN (SELECT id FROM newest)
                    ORDER BY rank, cases_fts.rowid DESC LIMIT :limit)
                SELECT c.id AS row_id, c.id AS case_id, c.case_number, c.summary, c.status,
                       c.topic_key, c.channel_id, NULL AS ts, c.thread_ts, c.created_at AS at,
                       c.permalink, snippet(cases_fts, -1, char(2), char(3), '…', 24) AS snippet,
                       -top.rank AS score
                FROM top
                CROSS JOIN cases_fts
                CROSS JOIN cases c
                WHERE cases_fts.rowid = top.id AND cases_fts MATCH :match AND c.id = top.id
                ORDER BY top.rank, top.id DESC"""
        return [_hit(kind, row) for row in _run(session, sql, params)]


@dataclass(frozen=True)
class _Try:
    """One try at the window: the rows with an id above `low` (0: every row), by walking the
    primary key newest first ("walk"), through the GIN bitmap ("bitmap"), or through the
    messages of the cases that pass the case filters ("cases"); complete when it fills the
    window or looked at every row."""

    low: int
    how: str


# Costs in microseconds, measured on the benchmark corpus (PostgreSQL 15): a row visited by
# walking the primary key, a GIN posting put in a bitmap, a match fetched through the bitmap
# (with the other rows of its block, rechecked: the id range's bitmap is by block), and a
# message of a passing case put in a bitmap by case id.
WALK_ROW_US = 0.8
POSTING_US = 0.14
FETCH_US = 5.3
CASE_ROW_US = 0.8


def _tries(
    matches: float, word_matches: float, newest_id: int, window: int, case_rows: float | None
) -> list[_Try]:
    """The tries that find the newest `window` matches, from the planner's estimates:
    `matches` pass every condition, `word_matches` all but the case filters, `case_rows` are
    the messages of the cases that pass them (None: no case filter). The first try spans the
    rows expected to hold one and a half windows, each further one eight times more, the last
    every row. A walk costs per row visited, the bitmap per posting of the words and per match
    fetched, the case-first try per message of a passing case and per posting and match:
    the first try takes the cheapest; after a try came up short (sparser matches than
    estimated), the bitmap."""
    word_matches = max(word_matches, matches)
    span = int(1.5 * window * newest_id / max(matches, 1.0)) + 1
    costs = {
        "walk": min(span, newest_id) * WALK_ROW_US,
        "bitmap": word_matches * POSTING_US
        + min(1.5 * window * word_matches / max(matches, 1.0), word_matches) * FETCH_US,
    }
    if case_rows is not None:
        costs["cases"] = case_rows * CASE_ROW_US + word_matches * POSTING_US + matches * FETCH_US
    how = min(costs, key=costs.__getitem__)
    if how == "cases" or matches <= 2 * window or newest_id <= 4 * window:
        return [_Try(0, "cases" if how == "cases" else "bitmap")]
    tries = []
    while span < newest_id // 2:
        tries.append(_Try(newest_id - span, how))
        how = "bitmap"
        span *= 8
    return [*tries, _Try(0, "bitmap")]


class PostgresFullText:
    """tsvector columns with GIN indexes; ts_rank_cd ranking, ts_headline snippets.

    The window (the newest matches) is found in tries over growing id ranges sized from the
    planner's estimate of the matches: a common word walks the newest rows of the primary key;
    a rarer one intersects its GIN bitmap with a block-range bitmap of the id range, so only
    the matches in the range are fetched; a selective case filter intersects it with the
    messages of its few cases. Otherwise case filters are a hashed set of the case ids that
    pass them, read from a covering index, not a join per match.
    """

    HEADLINE = (
        "StartSel=" + MARK + ", StopSel=" + END_MARK + ", MaxWords=30, MinWords=12, "
        'MaxFragments=2, FragmentDelimiter=" … "'
    )

    @staticmethod
    def _matches(query: SearchQuery, kind: str, params: dict[str, Any]) -> str:
        """FROM and WHERE of the rows matching the words and filters (no window bound), with
        the /*cases*/ marker each try fills in."""
        if kind == "message":
            where = _filters(query, params, "m.posted_at", team="m", cases="m.case_id")
            where += _hidden(query, params, "m.channel_id")
            return f"""messages m
                WHERE m.search_vector @@ plainto_tsquery('english', :words)
                  AND m.deleted_at IS NULL AND {where}"""
        where = _filters(query, params, "c.created_at") + _hidden(query, params, "c.channel_id")
        return f"""cases c
            WHERE (c.search_vector @@ plainto_tsquery('english', :words)
                   OR c.search_vector @@ plainto_tsquery('simple', :words))
              AND {where}"""

    @staticmethod
    def _estimate(session: Session, sql: str, params: dict[str, Any]) -> float:
        """The planner's estimate of the rows of `SELECT 1 FROM <sql>`."""
        plan = _run(session, f"EXPLAIN (FORMAT JSON) SELECT 1 FROM {_plain(sql)}", params)
        found = plan.scalar_one()
        found = json.loads(found) if isinstance(found, str) else found
        return float(found[0]["Plan"]["Plan Rows"])

    def _estimates(
        self, session: Session, query: SearchQuery, kind: str
    ) -> tuple[float, float, float | None]:
        """Estimated rows matching `query`, matching all but its case filters, and messages of
        the cases passing its case filters (None without case filters)."""
        params: dict[str, Any] = {"words": " ".join(terms(query.words))}
        matches = self._estimate(session, self._matches(query, kind, params), params)
        if kind != "message" or not (query.topic or query.statuses or query.severity is not None):
            return matches, matches, None
        unfiltered = replace(query, topic=None, statuses=(), severity=None)
        word_matches = self._estimate(session, self._matches(unfiltered, kind, params), params)
        of_case = _filters(replace(query, after=None, before=None), params, "c.created_at")
        cases = self._estimate(session, f"cases c WHERE {of_case}", params)
        return matches, word_matches, cases * self._per_case

    @contextmanager
    def searching(self, session: Session) -> Iterator[None]:
        """Planner settings for the statements of one search, and the tables' newest ids.

        Each statement is planned for its own words (never a generic plan), in one process
        (parallel workers cost more than they save at this size), and never by reading a
        whole table: a try over every row, which the estimates say holds few matches, uses
        the GIN bitmap even when the planner misjudges. Restored afterwards; a failed
        transaction's rollback restores them anyway."""
        was = session.execute(
            text(
                "SELECT current_setting('enable_seqscan') AS seqscan,"
                " current_setting('plan_cache_mode') AS plans,"
                " current_setting('max_parallel_workers_per_gather') AS workers,"
                " set_config('enable_seqscan', 'off', true),"
                " set_config('plan_cache_mode', 'force_custom_plan', true),"
                " set_config('max_parallel_workers_per_gather', '0', true),"
                " (SELECT coalesce(max(id), 0) FROM messages) AS messages,"
                " (SELECT coalesce(max(id), 0) FROM cases) AS cases"
            )
        ).one()
        self._newest_ids = {"message": int(was.messages), "case": int(was.cases)}
        self._per_case = int(was.messages) / max(int(was.cases), 1)  # messages per case
        yield
        session.execute(
            text(
                "SELECT set_config('enable_seqscan', :seqscan, true),"
                " set_config('plan_cache_mode', :plans, true),"
                " set_config('max_parallel_workers_per_gather', :workers, true)"
            ),
            {"seqscan": was.seqscan, "plans": was.plans, "workers": was.workers},
        )

    def _windowed(
        self, session: Session, query: SearchQuery, kind: str, params: dict[str, Any], sql: str
    ) -> list[Any]:
        """Run `sql` over the tries until one fills the window or looks at every row (within
        `searching`). `sql` reports the window's size as window_size; its markers are filled in
        per try. /*range*/ and /*newest*/: the id range and order, the primary key's for a
        walk, else `id::bigint`, which only the block-range index covers, so the planner can
        neither walk nor read every match. /*cases*/ follows the case filter: `IS TRUE` keeps
        the passing case ids a hashed set, built once and probed per row (as a join, the
        planner may scan the matches once per case when it expects few, say with stale
        statistics); the case-first try instead reads those ids first and hands them over as
        an array, whose messages' bitmap (by case id) the planner intersects with the words'."""
        alias = "m" if kind == "message" else "c"
        window = params["window"]
        matches, word_matches, case_rows = self._estimates(session, query, kind)
        rows: list[Any] = []
        for attempt in _tries(matches, word_matches, self._newest_ids[kind], window, case_rows):
            column = f"{alias}.id" if attempt.how == "walk" else f"{alias}.id::bigint"
            statement = sql.replace("/*range*/", f"{column} > :low")
            statement = statement.replace("/*newest*/", column)
            values = {**params, "low": attempt.low}
            if attempt.how == "cases":
                passing = _passing_cases(query, {})
                values["case_ids"] = list(_run(session, passing, params).scalars())
                statement = statement.replace(
                    f"(m.case_id IN ({passing})) /*cases*/", "m.case_id = ANY(:case_ids)"
                )
            else:
                statement = statement.replace("/*cases*/", "IS TRUE")
            rows = _run(session, statement, values).all()
            if attempt.low == 0 or (rows and rows[0].window_size >= window):
                break
        return rows

    def _params(self, query: SearchQuery) -> dict[str, Any]:
        return {"words": " ".join(terms(query.words)), "window": query.window or RANK_WINDOW}

    def _newest(self, query: SearchQuery, kind: str, params: dict[str, Any]) -> str:
        """The window: the newest :window matches that pass the filters, with their vectors;
        each try fills in the id range and the order."""
        alias = "m" if kind == "message" else "c"
        return f"""
            SELECT {alias}.id, {alias}.search_vector FROM {self._matches(query, kind, params)}
              AND /*range*/ ORDER BY /*newest*/ DESC LIMIT :window"""

    def window(self, session: Session, query: SearchQuery, kind: str) -> list[int]:
        params = self._params(query)
        sql = f"""
            WITH newest AS MATERIALIZED ({self._newest(query, kind, params)})
            SELECT (SELECT count(*) FROM newest) AS window_size, id FROM newest"""
        return [row.id for row in self._windowed(session, query, kind, params, sql)]

    def hits(self, session: Session, query: SearchQuery, kind: str, limit: int) -> list[Hit]:
        params = {**self._params(query), "limit": limit, "headline": self.HEADLINE}
        newest = self._newest(query, kind, params)
        if kind == "message":
            sql = f"""
                WITH newest AS MATERIALIZED ({newest}),
                q AS (SELECT plainto_tsquery('english', :words) AS q),
                ranked AS (
                    SELECT newest.id, ts_rank_cd(newest.search_vector, q.q) AS score
                    FROM newest, q ORDER BY score DESC, newest.id DESC LIMIT :limit)
                SELECT (SELECT count(*) FROM newest) AS window_size,
                       m.id AS row_id, m.case_id, c.case_number, c.summary, c.status,
                       c.topic_key, m.channel_id,
                       m.ts, m.thread_ts, m.posted_at AS at, m.user_id, c.permalink,
                       ts_headline('english', m.text, q.q, :headline) AS snippet, ranked.score
                FROM ranked JOIN messages m ON m.id = ranked.id JOIN cases c ON c.id = m.case_id, q
                ORDER BY ranked.score DESC, m.id DESC"""
        else:
            sql = f"""
                WITH newest AS MATERIALIZED ({newest}),
                q AS (SELECT plainto_tsquery('english', :words) AS english,
                             plainto_tsquery('simple', :words) AS simple),
                ranked AS (
                    SELECT newest.id, ts_rank_cd(newest.search_vector, q.english)
                           + ts_rank_cd(newest.search_vector, q.simple) AS score
                    FROM newest, q ORDER BY score DESC, newest.id DESC LIMIT :limit)
                SELECT (SELECT count(*) FROM newest) AS window_size,
                       c.id AS row_id, c.id AS case_id, c.case_number, c.summary, c.status,
                       c.topic_key,
                       c.channel_id, NULL AS ts, c.thread_ts, c.created_at AS at, c.permalink,
                       ts_headline('english',
                           concat_ws(' · ', c.case_number, c.summary, nullif(c.customer, ''),
                                     nullif(c.details, ''), c.resolution),
                           q.english || q.simple, :headline) AS snippet,
                       ranked.score
                FROM ranked JOIN cases c ON c.id = ranked.id, q
                ORDER BY ranked.score DESC, c.id DESC"""
        return [_hit(kind, row) for row in self._windowed(session, query, kind, params, sql)]


def backend_for(session: Session) -> Backend:
    """The backend of the session's database."""
    bind = session.get_bind()
    return PostgresFullText() if bind.dialect.name == "postgresql" else SQLiteFTS5()


@dataclass(frozen=True)
class SearchPage:
    """One page of hits, best first, and whether more follow."""

    hits: Sequence[Hit]
    more: bool


def window(session: Session, query: SearchQuery, kind: str) -> list[int]:
    """Ids of the rows a search ranks, newest first: its newest `window` matching cases
    (`kind` "case") or messages ("message") that pass its filters. The same on both backends."""
    if not terms(query.words):
        return []
    backend = backend_for(session)
    with backend.searching(session):
        return backend.window(session, query, kind)


def search(session: Session, query: SearchQuery) -> SearchPage:
    """Rank case and message hits together; cases first among equal scores, then the newest."""
    if not terms(query.words):
        return SearchPage((), False)
    backend = backend_for(session)
    wanted = query.offset + query.limit + 1
    with backend.searching(session):
        merged = backend.hits(session, query, "case", wanted) + backend.hits(
            session, query, "message", wanted
        )
    # The same order as each backend's SQL (score, then the newest row), so pages never overlap.
    merged.sort(key=lambda h: (-h.score, h.kind != "case", -h.row_id))
    page = merged[query.offset : query.offset + query.limit]
    return SearchPage(tuple(page), len(merged) > query.offset + query.limit)
