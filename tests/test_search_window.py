"""Both databases rank the same rows: for every kind of query (a word in half the messages, a
common word, several rare words, each filter, hidden channels) the newest matches a search
ranks are the same on SQLite and PostgreSQL, and the ones a plain reading of the record says.

PostgreSQL finds them in tries over growing id ranges sized from the planner's estimates, so
the corpus is large enough for every kind of try, and the answer is checked both with fresh
statistics and with none (estimates far off must cost time, never change the answer)."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, text

from storage.db import create_db_engine, session_factory
from storage.domain import CaseStatus
from storage.migrate import upgrade
from storage.models import Case, Message, Workspace
from storage.search import SearchQuery, search, window
from tests.conftest import Databases

TEAM = "T111"
START = datetime(2026, 1, 1, tzinfo=UTC)
CASES = 120
MESSAGES = 3000
WINDOW = 40  # small, so a few thousand messages hold many windows of a common word
CHANNELS = {"api": "C0API0001", "billing": "C0BILL001"}
INCIDENT = "C0INC0001"  # the incident channel of some cases, hidden from some searches


@dataclass(frozen=True)
class Row:
    id: int
    kind: str
    case_id: int
    words: frozenset[str]
    channel_id: str
    at: datetime
    deleted: bool = False


def _text(rng: random.Random, frequent: dict[str, float]) -> list[str]:
    """Filler words (w100..w199, each rare) and the frequent words, each with its chance."""
    words = [f"w{rng.randrange(100, 200)}" for _ in range(rng.randint(3, 8))]
    words += [word for word, chance in frequent.items() if rng.random() < chance]
    rng.shuffle(words)
    return words


FREQUENT = {"kafka": 0.5, "webhook": 0.08, "gateway": 0.03}


@dataclass
class Corpus:
    cases: list[dict]
    messages: list[dict]
    rows: list[Row]


def build() -> Corpus:
    rng = random.Random(5)
    cases, messages, rows = [], [], []
    for i in range(CASES):
        topic = "billing" if i % 3 == 0 else "api"
        status = [CaseStatus.OPEN, CaseStatus.SWARMING, CaseStatus.ESCALATED, CaseStatus.RESOLVED][
            i % 4
        ]
        words = _text(rng, {"kafka": 0.5, "webhook": 0.2})
        cases.append(
            {
                "id": i + 1,
                "team_id": TEAM,
                "case_number": str(50000 + i),
                "summary": " ".join(words[:4]),
                "details": " ".join(words[4:]),
                "customer": "",
                "urgency": "medium",
                "topic_key": topic,
                "region": "",
                "status": status,
                "filer_id": "U0AGENT01",
                "channel_id": CHANNELS[topic],
                "thread_ts": f"{1767225600 + i}.000100",
                "confidential": False,
                "card_attempts": 1,
                "severity": 1 + i % 2 if status == CaseStatus.ESCALATED else None,
                "incident_channel_id": INCIDENT if status == CaseStatus.ESCALATED else None,
                "created_at": START + timedelta(hours=i),
                "updated_at": START + timedelta(hours=i),
            }
        )
        rows.append(
            Row(i + 1, "case", i + 1, frozenset(words), CHANNELS[topic], START + timedelta(hours=i))
        )
    for n in range(MESSAGES):
        case = cases[rng.randrange(CASES)]
        words = _text(rng, FREQUENT)
        if n % 50 == 7:
            words += ["outage", "replica", "failover"]  # several rare words together
        if n < MESSAGES * 2 // 3 and rng.random() < 0.5:
            words.append("legacy")  # common, but not among the newest: the first try is short
        channel = (
            INCIDENT if case["incident_channel_id"] and rng.random() < 0.5 else case["channel_id"]
        )
        at = START + timedelta(minutes=7 * n)
        deleted = n % 97 == 3
        messages.append(
            {
                "id": n + 1,
                "team_id": TEAM,
                "case_id": case["id"],
                "channel_id": channel,
                "ts": f"{1767225600 + n}.000200",
                "thread_ts": case["thread_ts"],
                "user_id": "U0EXP0001",
                "is_bot": False,
                "text": " ".join(words),
                "files": [],
                "posted_at": at,
                "deleted_at": at if deleted else None,
            }
        )
        rows.append(Row(n + 1, "message", case["id"], frozenset(words), channel, at, deleted))
    return Corpus(cases, messages, rows)


def expected(corpus: Corpus, query: SearchQuery, kind: str) -> list[int]:
    """The newest WINDOW matches, read off the corpus itself."""
    wanted = set(query.words.split())
    cases = {c["id"]: c for c in corpus.cases}
    found = []
    for row in corpus.rows:
        case = cases[row.case_id]
        if (
            row.kind != kind
            or row.deleted
            or not wanted <= row.words
            or (query.topic and case["topic_key"] != query.topic)
            or (query.statuses and case["status"] not in query.statuses)
            or (query.severity is not None and case["severity"] != query.severity)
            or (query.after and row.at < query.after)
            or (query.before and row.at >= query.before)
            or row.channel_id in query.hidden_channels
        ):
            continue
        found.append(row.id)
    return sorted(found, reverse=True)[:WINDOW]


def load(url: str, corpus: Corpus, analyze: bool) -> None:
    engine = create_db_engine(url)
    upgrade(engine)
    with engine.begin() as connection:
        connection.execute(insert(Workspace.__table__), [{"team_id": TEAM, "created_at": START}])
        connection.execute(insert(Case.__table__), corpus.cases)
        connection.execute(insert(Message.__table__), corpus.messages)
    if analyze:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE" if url.startswith("postgres") else "ANALYZE"))
    engine.dispose()


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return build()


@pytest.fixture(scope="module")
def stores(
    databases: Databases, corpus: Corpus, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, object]]:
    """The corpus on SQLite, on PostgreSQL with fresh statistics, and on PostgreSQL without."""
    tmp: Path = tmp_path_factory.mktemp("window")
    urls = {"SQLite": f"sqlite:///{tmp / 'window.db'}"}
    admin = create_db_engine(databases.admin_url(), isolation_level="AUTOCOMMIT")
    base = databases.admin_url().rsplit("/", 1)[0]
    for name in ("PostgreSQL", "PostgreSQL, no statistics"):
        database = f"w_{uuid.uuid4().hex[:10]}"
        with admin.connect() as connection:
            connection.execute(text(f"CREATE DATABASE {database}"))
        urls[name] = f"{base}/{database}"
    admin.dispose()
    for name, url in urls.items():
        load(url, corpus, analyze="no statistics" not in name)
    engines = {name: create_db_engine(url) for name, url in urls.items()}
    yield engines
    for engine in engines.values():
        engine.dispose()


def query(words: str, **filters: object) -> SearchQuery:
    return SearchQuery(team_id=TEAM, words=words, window=WINDOW, **filters)  # type: ignore[arg-type]


QUERIES = {
    "a word in half the messages": query("kafka"),
    "a common word": query("webhook"),
    "a less common word": query("gateway"),
    "two common words": query("kafka webhook"),
    "several rare words": query("failover outage replica"),
    "a rare word": query("w150"),
    "a common word in one topic": query("webhook", topic="billing"),
    "a word in half the messages of resolved cases": query(
        "kafka", statuses=(CaseStatus.RESOLVED,)
    ),
    "a common word of sev1 incidents": query("kafka", statuses=(CaseStatus.ESCALATED,), severity=1),
    "a common word in a month": query(
        "webhook", after=START + timedelta(days=3), before=START + timedelta(days=9)
    ),
    "a word in half the messages, the incident channel hidden": query(
        "kafka", hidden_channels=frozenset({INCIDENT})
    ),
    "a word the newest messages no longer use": query("legacy"),
    "a word no message has": query("nowhere"),
}


@pytest.mark.parametrize("name", list(QUERIES))
def test_both_databases_rank_the_newest_matches_of_every_kind_of_query(
    stores: dict[str, object], corpus: Corpus, name: str
) -> None:
    wanted = QUERIES[name]
    for kind in ("message", "case"):
        truth = expected(corpus, wanted, kind)
        for store, engine in stores.items():
            with session_factory(engine)() as session:  # type: ignore[arg-type]
                assert window(session, wanted, kind) == truth, (store, kind)
    if name == "a word in half the messages":  # the window is full: it was worth bounding
        assert len(expected(corpus, wanted, "message")) == WINDOW


@pytest.mark.parametrize("name", ["a word in half the messages", "a common word in one topic"])
def test_both_databases_show_hits_from_the_window_and_page_alike(
    stores: dict[str, object], corpus: Corpus, name: str
) -> None:
    wanted = QUERIES[name]
    in_window = {
        (kind, row_id) for kind in ("case", "message") for row_id in expected(corpus, wanted, kind)
    }
    pages = {}
    for store, engine in stores.items():
        with session_factory(engine)() as session:  # type: ignore[arg-type]
            first = search(session, wanted)
            second = search(session, replace(wanted, offset=5))
        shown = [(h.kind, h.row_id) for h in (*first.hits, *second.hits)]
        assert len(shown) == 10 and len(set(shown)) == 10, store  # pages never overlap
        assert set(shown) <= in_window, store
        assert first.more and second.more
        pages[store] = shown
    assert pages["PostgreSQL"] == pages["PostgreSQL, no statistics"]
