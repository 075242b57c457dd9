"""Search latency side by side on SQLite and PostgreSQL, /swarm search against its floor,
message-event ingestion and peak memory, on a synthetic case record.

    python benchmarks/search.py --events 0            # 100k cases, 1M messages (the target)
    python benchmarks/search.py --cases 10000 --messages 100000 --queries 300

Builds the same synthetic corpus (seeded: the same words every run) on SQLite and, when
PostgreSQL is installed, on a private PostgreSQL server; both migrated by alembic, so the
FTS5 triggers and the tsvector columns index every row as it is inserted. Both are kept under
benchmarks/out and reused by later runs of the same size (`--fresh` rebuilds). Then:

- search: `--queries` queries through `storage.search.search` (the one storage API) on both
  databases in turn, `--runs` times: one common word, two common words, one rare word, or
  two or three rare words from one message, each with no filter or a topic, status, date or
  severity filter; p50/p95/max in ms (medians over the runs), by query class; and whether
  both databases rank the same rows (`storage.search.window`).
- /swarm search: the first `--commands` queries sent as signed slash commands to the real
  app, timed until the results reach the response_url, each next to the storage search it
  wraps; p95 ratio.
- ingestion: `--events` signed `message` events (thread replies) POSTed by 4 client threads
  to the real WSGI app, which stores them (and updates cards on the fake Slack Web API);
  events per second until every one is stored, then removed again.
- peak memory: the benchmark process's maximum resident set (corpus generation, the app,
  the queries); PostgreSQL's own memory is not counted.

Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, insert, select, text  # noqa: E402

from bot.command_parser import parse  # noqa: E402
from bot.runtime import build_swarm  # noqa: E402
from storage.db import create_db_engine, session_factory  # noqa: E402
from storage.domain import CaseStatus  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import Case, Message, Workspace  # noqa: E402
from storage.search import SearchQuery, search, window  # noqa: E402
from tests.conftest import (  # noqa: E402
    CHANNELS,
    TEAM,
    TEST_CONFIG,
    USERS,
    serve_app,
    settings_for,
)
from tests.fakeslack import FakeSlack  # noqa: E402
from tests.pgcluster import kept_postgres  # noqa: E402
from tests.slackdriver import SlackDriver, payload  # noqa: E402
from workflows.config import parse_config  # noqa: E402
from workflows.search import build_query  # noqa: E402

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
OUT = Path(__file__).resolve().parent / "out"
INGESTED_TS = "1900000000"  # the ingestion step's messages, removed again after it
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

    def queries(self, count: int, samples: list[str]) -> list[tuple[str, SearchQuery]]:
        """(class, query) pairs, the classes in turn: one common word (ranks 0-200 of the
        vocabulary: up to most messages), two common words, one rare word (ranks 200-5000),
        and two or three rare words that occur together in one of the sampled message texts;
        each class with no filter, or a topic, status, date or severity filter."""
        rng = random.Random(11)
        rank = {word: n for n, word in enumerate(self.words)}
        filters: list[dict[str, Any]] = [
            {},
            {"topic": "billing"},
            {"statuses": (CaseStatus.RESOLVED,)},
            {},
            {"after": START + timedelta(days=30), "before": START + timedelta(days=200)},
            {"statuses": (CaseStatus.ESCALATED,), "severity": 2},
        ]
        out = []
        for n in range(count):
            shape = n % 4
            if shape == 0:
                name, words = "common word", [self.words[rng.randrange(0, 200)]]
            elif shape == 1:
                name, words = "two common words", [self.words[rng.randrange(20, 500)] for _ in "ab"]
            elif shape == 2:
                name, words = "rare word", [self.words[rng.randrange(200, 5000)]]
            else:
                name, words = "rare words", []
                while len(words) < 2:
                    rare = sorted({w for w in rng.choice(samples).split() if rank[w] >= 200})
                    words = rng.sample(rare, min(len(rare), rng.choice((2, 3))))
            extra = filters[(n // 4) % len(filters)]
            query = SearchQuery(team_id=TEAM, words=" ".join(words), limit=5, **extra)
            out.append((name, query))
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
    if engine.dialect.name == "postgresql":  # what autovacuum would have done by now
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))
    else:
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO messages_fts(messages_fts) VALUES ('optimize')"))
            connection.execute(text("INSERT INTO cases_fts(cases_fts) VALUES ('optimize')"))
            connection.execute(text("ANALYZE"))
    return time.perf_counter() - started


def samples(engine, every: int = 997) -> list[str]:
    """Texts of a fixed sample of messages (the same on both databases)."""
    with engine.connect() as connection:
        return list(
            connection.scalars(
                select(Message.text).where(Message.id % every == 0).order_by(Message.id)
            )
        )


def search_side_by_side(
    engines: dict[str, Any], queries: list[tuple[str, SearchQuery]], runs: int
) -> dict[str, Any]:
    """Every query on every database in turn (the order alternating), `runs` times; the times
    in ms by database and run, and each query's pages by database (from the first run)."""
    sessions = {name: session_factory(engine)() for name, engine in engines.items()}
    names = list(engines)
    times: dict[str, list[list[float]]] = {name: [] for name in names}
    pages: dict[str, list[tuple]] = {name: [] for name in names}
    try:
        for name in names:
            search(sessions[name], queries[0][1])  # warm the connection
        for run_number in range(runs):
            for name in names:
                times[name].append([])
            for n, (_, query) in enumerate(queries):
                order = names if n % 2 == 0 else names[::-1]
                for name in order:
                    started = time.perf_counter()
                    page = search(sessions[name], query)
                    times[name][-1].append((time.perf_counter() - started) * 1000)
                    if run_number == 0:
                        pages[name].append(tuple((h.kind, h.row_id) for h in page.hits))
                    sessions[name].rollback()
            print(
                f"  run {run_number + 1}: "
                + ", ".join(
                    f"{name} p50 {statistics.median(times[name][-1]):.1f} ms "
                    f"p95 {p95(times[name][-1]):.1f} ms max {max(times[name][-1]):.1f} ms"
                    for name in names
                ),
                flush=True,
            )
        windows: dict[str, list[tuple]] = {name: [] for name in names}
        for _, query in queries:  # the rows each database ranks, untimed
            for name in names:
                windows[name].append(
                    tuple(
                        tuple(window(sessions[name], query, kind)) for kind in ("case", "message")
                    )
                )
                sessions[name].rollback()
    finally:
        for session in sessions.values():
            session.close()
    return {"times": times, "pages": pages, "windows": windows}


@contextmanager
def running_app(db_url: str, engine, fake: FakeSlack) -> Iterator[tuple[SlackDriver, list]]:
    """The real app over HTTP on the database, talking to the fake Slack; the driver sending it
    signed requests, and the case threads whose cards the fake Slack holds."""
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
    running = serve_app(swarm, fake)
    server, driver, executor = running.server, running.driver, running.driver.executor
    try:
        yield driver, threads
    finally:
        server.shutdown()
        server.server_close()
        executor.shutdown(wait=True)


def command_text(query: SearchQuery) -> str:
    """`/swarm search` text for a benchmark query."""
    parts = [query.words]
    if query.topic:
        parts.append(f"topic:{query.topic}")
    if query.statuses:
        parts.append(f"status:{query.statuses[0].value}")
    if query.severity is not None:
        parts.append(f"sev:{query.severity}")
    if query.after:
        parts.append(f"after:{query.after.date().isoformat()}")
    if query.before:
        parts.append(f"before:{query.before.date().isoformat()}")
    return "search " + " ".join(parts)


def command_and_floor(
    db_url: str, engine, fake: FakeSlack, queries: list[tuple[str, SearchQuery]]
) -> dict[str, list[float]]:
    """Each query as `/swarm search` through the app (signed request sent -> results posted to
    the response_url) and, just before it, the storage search it wraps (the same SearchQuery,
    built from the same text by the workflow's own parser) on an open session: ms each."""
    config = parse_config(TEST_CONFIG)
    out: dict[str, list[float]] = {"command": [], "storage": []}
    session = session_factory(engine)()
    with running_app(db_url, engine, fake) as (driver, _):
        for n, (_, bench_query) in enumerate(queries):
            text_ = command_text(bench_query)
            parsed = parse(text_)
            query = build_query(config, team_id=TEAM, words=parsed.text, filters=parsed.filters)
            started = time.perf_counter()
            search(session, query)
            out["storage"].append((time.perf_counter() - started) * 1000)
            session.rollback()
            before = len(fake.responses())
            sent = time.monotonic()
            reply = driver.command(text_)
            assert reply.status == 200, reply.body
            answers = fake.responses()[before:]
            assert answers and answers[-1]["body"].get("blocks"), (text_, answers)
            out["command"].append((answers[-1]["at"] - sent) * 1000)
            if n == 0:  # the first command fills the app's channel cache: not counted
                out["command"].pop()
                out["storage"].pop()
    session.close()
    return out


def ingestion(db_url: str, engine, fake: FakeSlack, events: int) -> float:
    with running_app(db_url, engine, fake) as (driver, threads):
        return _ingest(engine, driver, threads, events)


def _ingest(engine, driver: SlackDriver, threads: list, events: int) -> float:
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
                ts=f"{int(INGESTED_TS) + n}.{worker:06d}",
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
    driver.executor.wait_idle(timeout=600)
    elapsed = time.perf_counter() - started
    with engine.connect() as connection:
        after = connection.scalar(select(func.count()).select_from(Message))
    assert after - before == events, (after - before, events)
    return events / elapsed


def prepared(name: str, db_url: str, corpus: Corpus, done: Path):
    """An engine on the corpus: loaded now, or kept from an earlier run (`done` marks a complete
    load); pending migrations are applied either way. Returns the engine and the load time."""
    engine = create_db_engine(db_url)
    upgrade(engine)
    if done.exists():
        print(f"[{name}] reusing the corpus loaded earlier ({done.parent.name})", flush=True)
        return engine, float(done.read_text())
    print(f"[{name}] loading {corpus.cases} cases, {corpus.messages} messages …", flush=True)
    loaded = load(engine, corpus)
    done.write_text(f"{loaded:.1f}")
    print(f"[{name}] loaded in {loaded:.0f} s", flush=True)
    return engine, loaded


def forget_ingested(engine) -> None:
    """Remove what the ingestion step stored, so a kept corpus stays the same between runs."""
    with engine.begin() as connection:
        connection.execute(text(f"DELETE FROM messages WHERE ts >= '{INGESTED_TS}'"))


@contextmanager
def sqlite_corpus(path: Path, fresh: bool) -> Iterator[tuple[str, Path]]:
    done = path.with_suffix(".loaded")
    if fresh or not done.exists():
        done.unlink(missing_ok=True)
        for leftover in path.parent.glob(path.name + "*"):
            leftover.unlink()
    yield f"sqlite:///{path}", done


@contextmanager
def postgres_corpus(
    directory: Path, fresh: bool, shared_buffers: str
) -> Iterator[tuple[str, Path] | None]:
    done = directory / "loaded"
    if fresh or not done.exists():
        shutil.rmtree(directory, ignore_errors=True)
    with kept_postgres(directory, shared_buffers=shared_buffers) as url:
        yield None if url is None else (url, done)


def summary(times: list[list[float]]) -> dict[str, float]:
    """Medians over runs of each run's p50 and p95, and the slowest query of all runs."""
    return {
        "p50": statistics.median(statistics.median(run) for run in times),
        "p95": statistics.median(p95(run) for run in times),
        "max": max(max(run) for run in times),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument(
        "--commands", type=int, default=100, help="queries also sent as /swarm search"
    )
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--fresh", action="store_true", help="rebuild the kept corpus")
    parser.add_argument("--out", type=Path, default=OUT, help="where the corpus is kept")
    parser.add_argument(
        "--shared-buffers",
        default="1GB",
        help="PostgreSQL's page cache (a quarter of a 4 GB database host; its default is 128MB)",
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    key = f"search-{args.cases}x{args.messages}"
    engines: dict[str, Any] = {}
    loads: dict[str, float] = {}
    with ExitStack() as stack:
        fake = stack.enter_context(FakeSlack(team_id=TEAM))
        url, done = stack.enter_context(sqlite_corpus(args.out / f"{key}.db", args.fresh))
        engines["SQLite"], loads["SQLite"] = prepared(
            "SQLite", url, Corpus(args.cases, args.messages), done
        )
        if not args.no_postgres:
            pg = stack.enter_context(
                postgres_corpus(args.out / f"{key}-pg", args.fresh, args.shared_buffers)
            )
            if pg is not None:
                engines["PostgreSQL"], loads["PostgreSQL"] = prepared(
                    "PostgreSQL", pg[0], Corpus(args.cases, args.messages), pg[1]
                )
        queries = Corpus(args.cases, args.messages).queries(
            args.queries, samples(engines["SQLite"])
        )
        print(f"searching: {len(queries)} queries x {args.runs} runs, side by side", flush=True)
        measured = search_side_by_side(engines, queries, args.runs)
        rates: dict[str, float] = {}
        floors: dict[str, list[dict[str, list[float]]]] = {}
        for name, engine in engines.items():
            db_url = engine.url.render_as_string(hide_password=False)
            if args.commands:
                print(f"[{name}] /swarm search against storage.search …", flush=True)
                floors[name] = [
                    command_and_floor(db_url, engine, fake, queries[: args.commands + 1])
                    for _ in range(args.runs)
                ]
            if args.events:
                print(f"[{name}] ingesting {args.events} events …", flush=True)
                try:
                    rates[name] = ingestion(db_url, engine, fake, args.events)
                finally:
                    forget_ingested(engine)
            engine.dispose()
    report(args, queries, measured, loads, rates)
    if floors:
        report_floor(args, floors)


def report(args, queries, measured, loads, rates) -> None:
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    times, pages = measured["times"], measured["pages"]
    names = list(times)
    print()
    print(
        f"{args.cases:,} cases, {args.messages:,} messages, {len(queries)} queries x "
        f"{args.runs} runs, {args.events} events; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print()
    print(
        "| database | load (s) | search p50 (ms) | p95 (ms) | max (ms) | hits/query "
        "| ingestion (events/s) |"
    )
    print("|---|---|---|---|---|---|---|")
    for name in names:
        s = summary(times[name])
        hits = sum(len(p) for p in pages[name]) / len(pages[name])
        rate = f"{rates[name]:.0f}" if name in rates else "–"
        print(
            f"| {name} | {loads[name]:.0f} | {s['p50']:.1f} | {s['p95']:.1f} | {s['max']:.1f} "
            f"| {hits:.2f} | {rate} |"
        )
    print()
    classes = sorted({c for c, _ in queries}, key=[c for c, _ in queries].index)
    groups = {c: [n for n, (k, _) in enumerate(queries) if k == c] for c in classes}
    groups["filtered"] = [n for n, (_, q) in enumerate(queries) if _filtered(q)]
    groups["unfiltered"] = [n for n, (_, q) in enumerate(queries) if not _filtered(q)]
    print("| query class | queries | " + " | ".join(f"{n} p95 / max (ms)" for n in names) + " |")
    print("|---|---|" + "---|" * len(names))
    for label, members in groups.items():
        cells = []
        for name in names:
            s = summary([[run[n] for n in members] for run in times[name]])
            cells.append(f"{s['p95']:.1f} / {s['max']:.1f}")
        print(f"| {label} | {len(members)} | " + " | ".join(cells) + " |")
    print()
    for name in names:
        worst = sorted(range(len(queries)), key=lambda n: -max(run[n] for run in times[name]))[:3]
        print(
            f"{name} slowest: "
            + "; ".join(
                f"{command_text(queries[n][1])[7:]} ({max(run[n] for run in times[name]):.0f} ms)"
                for n in worst
            )
        )
    if len(names) == 2:
        a, b = names
        same = sum(pages[a][n] == pages[b][n] for n in range(len(queries)))
        same_count = sum(len(pages[a][n]) == len(pages[b][n]) for n in range(len(queries)))
        sa, sb = summary(times[a]), summary(times[b])
        print()
        print(
            f"{b} / {a}: search p50 {sb['p50'] / sa['p50']:.2f}x, p95 {sb['p95'] / sa['p95']:.2f}x"
            + (f", ingestion {rates[b] / rates[a]:.2f}x" if len(rates) == 2 else "")
        )
        windows = measured["windows"]
        same_window = sum(windows[a][n] == windows[b][n] for n in range(len(queries)))
        print(
            f"the same ranked rows (the newest matches of cases and messages) for {same_window} "
            f"of {len(queries)} queries; pages with the same number of hits for {same_count}, "
            f"the same hits in the same order for {same} (bm25 and ts_rank_cd differ)"
        )
    print(f"peak memory of the benchmark process: {peak_mb:.0f} MB")


def report_floor(args, floors: dict[str, list[dict[str, list[float]]]]) -> None:
    print()
    print(
        f"/swarm search (signed request -> results at the response_url) against the storage "
        f"search it wraps, {args.commands} queries x {args.runs} runs, each pair side by side:"
    )
    print()
    print(
        "| database | storage p50 (ms) | storage p95 (ms) | /swarm search p50 (ms) "
        "| /swarm search p95 (ms) | p95 ratio |"
    )
    print("|---|---|---|---|---|---|")
    for name, runs in floors.items():
        storage = summary([run["storage"] for run in runs])
        command = summary([run["command"] for run in runs])
        ratio = statistics.median(p95(run["command"]) / p95(run["storage"]) for run in runs)
        print(
            f"| {name} | {storage['p50']:.1f} | {storage['p95']:.1f} | {command['p50']:.1f} "
            f"| {command['p95']:.1f} | {ratio:.2f}x |"
        )


def _filtered(query: SearchQuery) -> bool:
    return bool(query.topic or query.statuses or query.after or query.before)


if __name__ == "__main__":
    main()
