"""Search latency, message-event ingestion rate and peak memory on a synthetic case record.

    python benchmarks/search.py                       # 100k cases, 1M messages (the target)
    python benchmarks/search.py --cases 10000 --messages 100000 --queries 300

Builds the same synthetic corpus (seeded: the same words every run) on SQLite and, when
PostgreSQL is installed, on a throwaway PostgreSQL server; both migrated by alembic, so the
FTS5 triggers and the tsvector columns index every row as it is inserted. Then:

- search: `--queries` queries through `storage.search.search` (the one storage API), two to
  three words drawn from the corpus's own vocabulary by frequency band, a quarter with a
  filter (topic, status, date); p50/p95/max in ms.
- ingestion: `--events` signed `message` events (thread replies) POSTed by 4 client threads
  to the real WSGI app, which stores them (and updates cards on the fake Slack Web API);
  events per second until every one is stored.
- peak memory: the benchmark process's maximum resident set (corpus generation, the app,
  the queries); PostgreSQL's own memory is not counted.

Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import resource
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from wsgiref.simple_server import make_server

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, insert, select, text  # noqa: E402

from bot.runtime import build_http, build_swarm  # noqa: E402
from storage.db import create_db_engine, session_factory  # noqa: E402
from storage.domain import CaseStatus  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import Case, Message, Workspace  # noqa: E402
from storage.search import SearchQuery, search  # noqa: E402
from tests.conftest import (  # noqa: E402
    CHANNELS,
    SIGNING_SECRET,
    TEAM,
    TEST_CONFIG,
    USERS,
    QuietHandler,
    ThreadingWSGIServer,
    settings_for,
)
from tests.fakeslack import FakeSlack  # noqa: E402
from tests.pgcluster import throwaway_postgres  # noqa: E402
from tests.slackdriver import SlackDriver, TrackingExecutor, payload  # noqa: E402
from workflows.config import parse_config  # noqa: E402

SYLLABLES = [
    "ka", "lo", "mi", "ne", "ru", "ta", "vo", "shi", "den", "gar", "pol", "qua", "rix", "sen",
    "tor", "ul", "ven", "wex", "yo", "zan", "bri", "cla", "dro", "fen",
]  # fmt: skip
SUPPORT_WORDS = [
    "webhook", "timeout", "gateway", "certificate", "invoice", "refund", "login", "token",
    "oauth", "latency", "retry", "queue", "cluster", "database", "replica", "migration",
    "deploy", "rollback", "dns", "proxy", "cache", "memory", "disk", "export", "import",
    "billing", "payment", "outage", "error", "crash", "restart", "upgrade", "customer",
    "tenant",
]  # fmt: skip
START = datetime(2025, 1, 1, tzinfo=UTC)
BATCH = 5000


def p95(values: list[float]) -> float:
    return sorted(values)[max(int(len(values) * 0.95) - 1, 0)]


def vocabulary(rng: random.Random, size: int = 30000) -> list[str]:
    words = set(SUPPORT_WORDS)
    while len(words) < size:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))))
    ordered = sorted(words)
    rng.shuffle(ordered)
    return ordered


class Corpus:
    """Seeded synthetic cases and thread messages with a Zipf-like word distribution."""

    def __init__(self, cases: int, messages: int, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.cases = cases
        self.messages = messages
        self.words = vocabulary(self.rng)
        self.weights = [1 / (rank + 1) for rank in range(len(self.words))]
        self.cum = []
        total = 0.0
        for weight in self.weights:
            total += weight
            self.cum.append(total)

    def sentence(self, low: int, high: int) -> str:
        picks = self.rng.choices(self.words, cum_weights=self.cum, k=self.rng.randint(low, high))
        return " ".join(picks)

    def case_rows(self):
        statuses = ["open", "swarming", "escalated", "resolved", "resolved", "resolved"]
        for i in range(self.cases):
            created = START + timedelta(minutes=5 * i)
            status = self.rng.choice(statuses)
            topic = "api" if i % 3 else "billing"
            yield {
                "id": i + 1,
                "team_id": TEAM,
                "case_number": str(100000 + i),
                "summary": self.sentence(4, 9)[:150],
                "details": self.sentence(10, 40),
                "customer": f"Customer {i % 997}",
                "urgency": self.rng.choice(["low", "medium", "high", "critical"]),
                "topic_key": topic,
                "region": "",
                "status": status,
                "filer_id": "U0AGENT01",
                "channel_id": "C0API0001" if topic == "api" else "C0BILL001",
                "thread_ts": f"{1735689600 + i * 300}.000100",
                "confidential": False,
                "card_attempts": 1,
                "severity": self.rng.randint(1, 4) if status == "escalated" else None,
                "resolution": self.sentence(5, 15) if status == "resolved" else None,
                "created_at": created,
                "updated_at": created,
            }

    def message_rows(self):
        for i in range(self.messages):
            case = self.rng.randrange(self.cases)
            topic = "api" if case % 3 else "billing"
            thread = 1735689600 + case * 300
            yield {
                "team_id": TEAM,
                "case_id": case + 1,
                "channel_id": "C0API0001" if topic == "api" else "C0BILL001",
                "ts": f"{thread + 1 + i // 1000}.{i % 1000:03d}{case % 1000:03d}",
                "thread_ts": f"{thread}.000100",
                "user_id": f"U0EXP{self.rng.randrange(200):04d}",
                "is_bot": False,
                "text": self.sentence(6, 30),
                "files": [],
                "posted_at": START + timedelta(minutes=5 * case, seconds=i % 86400),
            }

    def queries(self, count: int) -> list[SearchQuery]:
        """One common word (large result sets), two common words, or one rarer word; a
        quarter of the queries carry a filter."""
        rng = random.Random(11)
        shapes = [((20, 200), 1), ((20, 500), 2), ((200, 5000), 1)]
        out = []
        for n in range(count):
            (low, high), size = shapes[n % 3]
            words = " ".join(self.words[rng.randrange(low, high)] for _ in range(size))
            extra: dict[str, Any] = {}
            if n % 4 == 1:
                extra = {"topic": "billing"}
            elif n % 4 == 2:
                extra = {"statuses": (CaseStatus.RESOLVED,)}
            elif n % 4 == 3:
                extra = {"after": START + timedelta(days=30), "before": START + timedelta(days=200)}
            out.append(SearchQuery(team_id=TEAM, words=words, limit=5, **extra))
        return out


def load(engine, corpus: Corpus) -> float:
    started = time.perf_counter()
    with engine.begin() as connection:
        connection.execute(insert(Workspace.__table__), [{"team_id": TEAM, "created_at": START}])
    for table, rows in (
        (Case.__table__, corpus.case_rows()),
        (Message.__table__, corpus.message_rows()),
    ):
        batch = []
        for row in rows:
            batch.append(row)
            if len(batch) == BATCH:
                with engine.begin() as connection:
                    connection.execute(insert(table), batch)
                batch = []
        if batch:
            with engine.begin() as connection:
                connection.execute(insert(table), batch)
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.execute(text("COMMIT"))
            connection.execute(text("ANALYZE"))
    else:
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO messages_fts(messages_fts) VALUES ('optimize')"))
            connection.execute(text("INSERT INTO cases_fts(cases_fts) VALUES ('optimize')"))
            connection.execute(text("ANALYZE"))
    return time.perf_counter() - started


def search_latency(engine, corpus: Corpus, count: int) -> tuple[list[float], float]:
    sessions = session_factory(engine)
    queries = corpus.queries(count)
    times, hits = [], 0
    with sessions() as session:
        search(session, queries[0])  # warm the connection and the page cache
        for query in queries:
            started = time.perf_counter()
            page = search(session, query)
            times.append((time.perf_counter() - started) * 1000)
            hits += len(page.hits)
    return times, hits / len(queries)


def ingestion(db_url: str, engine, fake: FakeSlack, events: int) -> float:
    fake.reset()
    for user_id, attrs in USERS.items():
        fake.add_user(user_id, **attrs)
    for channel_id, name in CHANNELS.items():
        fake.add_channel(channel_id, name, members=[fake.bot_user_id, *USERS])
    with engine.connect() as connection:
        threads = connection.execute(
            select(Case.channel_id, Case.thread_ts).order_by(Case.id).limit(50)
        ).all()
    for channel_id, thread_ts in threads:  # the cards the app re-renders when the swarm grows
        fake.add_message(channel_id, user=fake.bot_user_id, text="card", ts=thread_ts)
    swarm = build_swarm(settings_for(fake, db_url), config=parse_config(TEST_CONFIG))
    executor = TrackingExecutor()
    _app, http = build_http(swarm, executor=executor)
    server = make_server(
        "127.0.0.1", 0, http, server_class=ThreadingWSGIServer, handler_class=QuietHandler
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    driver = SlackDriver(
        f"http://127.0.0.1:{server.server_port}/slack/events",
        SIGNING_SECRET,
        fake.respond_url,
        executor,
        team_id=TEAM,
    )
    with engine.connect() as connection:
        before = connection.scalar(select(func.count()).select_from(Message))
    template = payload("event_message_thread_reply.json")

    def send(worker: int) -> None:
        rng = random.Random(worker)
        for n in range(worker, events, 4):
            channel_id, thread_ts = threads[n % len(threads)]
            event = dict(template["event"])
            event.update(
                channel=channel_id,
                thread_ts=thread_ts,
                ts=f"{1900000000 + n}.{worker:06d}",
                user=f"U0ING{rng.randrange(20):04d}",
                text=f"ingested reply {n} about the gateway timeout",
            )
            body = dict(template, team_id=TEAM, event=event, event_id=f"EvBENCH{n}")
            reply = driver.send(json.dumps(body), "application/json", wait=False)
            assert reply.status == 200, reply.body

    started = time.perf_counter()
    workers = [threading.Thread(target=send, args=(w,)) for w in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    executor.wait_idle(timeout=600)
    elapsed = time.perf_counter() - started
    with engine.connect() as connection:
        after = connection.scalar(select(func.count()).select_from(Message))
    server.shutdown()
    server.server_close()
    executor.shutdown(wait=True)
    assert after - before == events, (after - before, events)
    return events / elapsed


def run(name: str, db_url: str, corpus: Corpus, args, fake: FakeSlack) -> dict:
    engine = create_db_engine(db_url)
    upgrade(engine)
    print(f"[{name}] loading {corpus.cases} cases, {corpus.messages} messages …", flush=True)
    loaded = load(engine, corpus)
    print(f"[{name}] loaded in {loaded:.0f} s; searching …", flush=True)
    times, mean_hits = search_latency(engine, corpus, args.queries)
    print(
        f"[{name}] search p50 {statistics.median(times):.1f} ms, p95 {p95(times):.1f} ms; "
        f"ingesting {args.events} events …",
        flush=True,
    )
    rate = ingestion(db_url, engine, fake, args.events)
    engine.dispose()
    result = {
        "name": name,
        "load_s": loaded,
        "p50": statistics.median(times),
        "p95": p95(times),
        "max": max(times),
        "hits": mean_hits,
        "rate": rate,
    }
    print(f"[{name}] {row(result)}", flush=True)
    return result


def row(r: dict) -> str:
    return (
        f"| {r['name']} | {r['load_s']:.0f} | {r['p50']:.1f} | {r['p95']:.1f} | {r['max']:.1f} "
        f"| {r['hits']:.1f} | {r['rate']:.0f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    corpus_args = (args.cases, args.messages)
    results = []
    with tempfile.TemporaryDirectory() as tmp, FakeSlack(team_id=TEAM) as fake:
        results.append(run("SQLite", f"sqlite:///{tmp}/bench.db", Corpus(*corpus_args), args, fake))
        with throwaway_postgres(wanted=not args.no_postgres) as pg_url:
            if pg_url is not None:
                results.append(run("PostgreSQL", pg_url, Corpus(*corpus_args), args, fake))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print()
    print(
        f"{args.cases:,} cases, {args.messages:,} messages, {args.queries} queries, "
        f"{args.events} events; {platform.processor() or platform.machine()}, "
        f"{__import__('os').cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print()
    print(
        "| database | load (s) | search p50 (ms) | p95 (ms) | max (ms) | hits/query "
        "| ingestion (events/s) |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(row(r))
    if len(results) == 2:
        sqlite, pg = results
        print()
        print(
            f"PostgreSQL / SQLite: search p50 {pg['p50'] / sqlite['p50']:.2f}x, "
            f"p95 {pg['p95'] / sqlite['p95']:.2f}x, ingestion {pg['rate'] / sqlite['rate']:.2f}x"
        )
    print(f"peak memory of the benchmark process: {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
