"""Full-text search of case records: one API, SQLite FTS5 and PostgreSQL tsvector backends.

The indexes are kept by the database itself (FTS5 triggers; a generated tsvector column with a
GIN index), both created by the same alembic revision, so every write path is indexed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
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
SEARCH_INDEXES = ("ix_messages_search", "ix_cases_search")

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


def _filters(query: SearchQuery, params: dict[str, Any], at: str, team: str = "c") -> str:
    clauses = [f"{team}.team_id = :team_id"]
    params["team_id"] = query.team_id
    if query.topic:
        clauses.append("c.topic_key = :topic")
        params["topic"] = query.topic
    if query.statuses:
        names = []
        for i, status in enumerate(query.statuses):
            params[f"status{i}"] = status.value
            names.append(f":status{i}")
        clauses.append(f"c.status IN ({', '.join(names)})")
    if query.severity is not None:
        clauses.append("c.severity = :severity")
        params["severity"] = query.severity
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


# SQLite ranks among the newest this many matches (that pass the filters): bm25 and the joins
# cost per matching row, and a word in 60,000 of a million messages would otherwise take
# 150 ms. Newer answers are the likelier ones; a query matching fewer rows ranks them all.
SQLITE_RANK_WINDOW = 4000


class SQLiteFTS5:
    """FTS5 with bm25 ranking (case numbers and summaries weigh most)."""

    @staticmethod
    def match(words: str) -> str:
        return " AND ".join(f'"{w}"' for w in terms(words))

    def hits(self, session: Session, query: SearchQuery, kind: str, limit: int) -> list[Hit]:
        params: dict[str, Any] = {
            "match": self.match(query.words),
            "limit": limit,
            "window": SQLITE_RANK_WINDOW,
        }
        if kind == "message":
            by_case = bool(query.topic or query.statuses or query.severity is not None)
            where = _filters(query, params, "m.posted_at", team="c" if by_case else "m")
            where += _hidden(query, params, "m.channel_id")
            cases = "JOIN cases c ON c.id = m.case_id" if by_case else ""
            sql = f"""
                WITH newest AS MATERIALIZED (
                    SELECT messages_fts.rowid AS id FROM messages_fts
                    JOIN messages m ON m.id = messages_fts.rowid {cases}
                    WHERE messages_fts MATCH :match AND {where}
                    ORDER BY messages_fts.rowid DESC LIMIT :window),
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
            where = _filters(query, params, "c.created_at") + _hidden(query, params, "c.channel_id")
            weights = "10.0, 5.0, 1.0, 2.0, 2.0"
            sql = f"""
                WITH newest AS MATERIALIZED (
                    SELECT cases_fts.rowid AS id FROM cases_fts
                    JOIN cases c ON c.id = cases_fts.rowid
                    WHERE cases_fts MATCH :match AND {where}
                    ORDER BY cases_fts.rowid DESC LIMIT :window),
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


class PostgresFullText:
    """tsvector columns with GIN indexes; ts_rank_cd ranking, ts_headline snippets."""

    HEADLINE = (
        "StartSel=" + MARK + ", StopSel=" + END_MARK + ", MaxWords=30, MinWords=12, "
        'MaxFragments=2, FragmentDelimiter=" … "'
    )

    def hits(self, session: Session, query: SearchQuery, kind: str, limit: int) -> list[Hit]:
        params: dict[str, Any] = {
            "words": " ".join(terms(query.words)),
            "limit": limit,
            "headline": self.HEADLINE,
        }
        if kind == "message":
            where = _filters(query, params, "m.posted_at") + _hidden(query, params, "m.channel_id")
            sql = f"""
                WITH q AS (SELECT plainto_tsquery('english', :words) AS q),
                ranked AS (
                    SELECT m.id, ts_rank_cd(m.search_vector, q.q) AS score
                    FROM messages m JOIN cases c ON c.id = m.case_id, q
                    WHERE m.search_vector @@ q.q AND m.deleted_at IS NULL AND {where}
                    ORDER BY score DESC, m.id DESC LIMIT :limit)
                SELECT m.id AS row_id, m.case_id, c.case_number, c.summary, c.status,
                       c.topic_key, m.channel_id,
                       m.ts, m.thread_ts, m.posted_at AS at, m.user_id, c.permalink,
                       ts_headline('english', m.text, q.q, :headline) AS snippet, ranked.score
                FROM ranked JOIN messages m ON m.id = ranked.id JOIN cases c ON c.id = m.case_id, q
                ORDER BY ranked.score DESC, m.id DESC"""
        else:
            where = _filters(query, params, "c.created_at") + _hidden(query, params, "c.channel_id")
            sql = f"""
                WITH q AS (SELECT plainto_tsquery('english', :words) AS english,
                                  plainto_tsquery('simple', :words) AS simple),
                ranked AS (
                    SELECT c.id, ts_rank_cd(c.search_vector, q.english) + ts_rank_cd(
                               c.search_vector, q.simple) AS score
                    FROM cases c, q
                    WHERE (c.search_vector @@ q.english OR c.search_vector @@ q.simple)
                      AND {where}
                    ORDER BY score DESC, c.id DESC LIMIT :limit)
                SELECT c.id AS row_id, c.id AS case_id, c.case_number, c.summary, c.status,
                       c.topic_key,
                       c.channel_id, NULL AS ts, c.thread_ts, c.created_at AS at, c.permalink,
                       ts_headline('english',
                           concat_ws(' · ', c.case_number, c.summary, nullif(c.customer, ''),
                                     nullif(c.details, ''), c.resolution),
                           q.english || q.simple, :headline) AS snippet,
                       ranked.score
                FROM ranked JOIN cases c ON c.id = ranked.id, q
                ORDER BY ranked.score DESC, c.id DESC"""
        return [_hit(kind, row) for row in _run(session, sql, params)]


def backend_for(session: Session) -> Backend:
    """The backend of the session's database."""
    bind = session.get_bind()
    return PostgresFullText() if bind.dialect.name == "postgresql" else SQLiteFTS5()


@dataclass(frozen=True)
class SearchPage:
    """One page of hits, best first, and whether more follow."""

    hits: Sequence[Hit]
    more: bool


def search(session: Session, query: SearchQuery) -> SearchPage:
    """Rank case and message hits together; cases first among equal scores, then the newest."""
    if not terms(query.words):
        return SearchPage((), False)
    backend = backend_for(session)
    wanted = query.offset + query.limit + 1
    merged = backend.hits(session, query, "case", wanted) + backend.hits(
        session, query, "message", wanted
    )
    # The same order as each backend's SQL (score, then the newest row), so pages never overlap.
    merged.sort(key=lambda h: (-h.score, h.kind != "case", -h.row_id))
    page = merged[query.offset : query.offset + query.limit]
    return SearchPage(tuple(page), len(merged) > query.offset + query.limit)
