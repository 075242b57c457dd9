"""`/swarm stats` and App Home latency on a year of cases, SQLite and PostgreSQL side by side.

    python benchmarks/stats.py                          # 100k cases, 1M messages (the target)
    python benchmarks/stats.py --cases 20000 --messages 200000 --runs 20

Seeds (the same every run) `--cases` cases filed every few minutes over the year up to now,
each with its timeline — filed, first response (most), claimed (half), escalated (one in
ten), resolved (all but the newest), some reopened and resolved again — and `--messages`
human replies spread over their threads, into a fresh SQLite file and a throwaway
PostgreSQL server, both migrated by alembic. Then, on each database:

- figures: `workflows.metrics.report` for 7d, 30d, 90d and all, per-person figures included
  (what a lead gets), p50/p95 in ms over `--runs` runs;
- `/swarm stats 90d`: the signed slash command POSTed to the real WSGI app by a lead, until
  the answer reaches the fake Slack's response URL;
- App Home: a signed `app_home_opened` event for a lead of every topic, until the fake Slack
  receives `views.publish`.

Prints a Markdown table; medians and p95 of `--runs` runs each.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from slack_sdk import WebClient  # noqa: E402
from sqlalchemy import insert, text  # noqa: E402

from bot.gateway import AdminCache, WebSlack  # noqa: E402
from bot.runtime import build_swarm  # noqa: E402
from storage.db import create_db_engine, session_factory  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import (  # noqa: E402
    Case,
    CaseEvent,
    Message,
    Participant,
    Workspace,
    micros_between,
)
from storage.uow import UnitOfWorkFactory  # noqa: E402
from tests.conftest import (  # noqa: E402
    CHANNELS,
    TEAM,
    TEST_CONFIG,
    USERS,
    serve_app,
    settings_for,
)
from tests.fakeslack import FakeSlack  # noqa: E402
from tests.pgcluster import throwaway_postgres  # noqa: E402
from workflows import metrics  # noqa: E402
from workflows.config import parse_config  # noqa: E402
from workflows.services import Services  # noqa: E402

BATCH = 5000
SLA = {  # seconds: first response, resolution (as in the test configuration)
    "critical": (15 * 60, 4 * 3600),
    "high": (3600, 86400),
    "medium": (4 * 3600, 3 * 86400),
    "low": (86400, 7 * 86400),
}
EXPERTS = [f"U0EXP{n:04d}" for n in range(60)]
OPTIONAL = (
    "first_response_micros",
    "resolution_micros",
    "first_response_at",
    "first_responder_id",
    "assignee_id",
    "escalated_at",
    "severity",
    "incident_channel_id",
    "resolved_at",
    "resolved_by",
)
WORDS = ["the", "webhook", "gateway", "times", "out", "again", "after", "deploy", "fixed"]


class FixedClock:
    def __init__(self, now: datetime) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current


class Year:
    """Seeded cases with timelines and replies, filed over the year before `now`."""

    def __init__(self, cases: int, messages: int, now: datetime, seed: int = 5) -> None:
        self.rng = random.Random(seed)
        self.cases = cases
        self.messages = messages
        self.now = now
        self.step = timedelta(days=365) / cases
        self.threads: list[tuple[int, str, datetime, str]] = []  # id, channel, filed, topic

    def rows(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """("case" | "event" | "participant", row), cases before their timelines."""
        rng = self.rng
        start = self.now - timedelta(days=365)
        event_id = 0
        for i in range(self.cases):
            case_id = i + 1
            filed = start + self.step * i + timedelta(microseconds=rng.randrange(1_000_000))
            topic = "api" if i % 3 else "billing"
            channel = "C0API0001" if topic == "api" else "C0BILL001"
            urgency = rng.choice(["low", "medium", "medium", "high", "high", "critical"])
            first_target, resolve_target = SLA[urgency]
            age = (self.now - filed).total_seconds()
            filer = f"U0AGENT{i % 40:02d}"
            events: list[tuple[datetime, str, str | None]] = [(filed, "filed", filer)]
            row: dict[str, Any] = {
                "id": case_id,
                "team_id": TEAM,
                "case_number": str(100000 + i),
                "summary": f"Webhooks time out for customer {i % 997}",
                "details": "",
                "customer": f"Customer {i % 997}",
                "urgency": urgency,
                "topic_key": topic,
                "region": "",
                "status": "open",
                "filer_id": filer,
                "channel_id": channel,
                "thread_ts": f"{filed.timestamp():.6f}",
                "permalink": f"https://example.slack.com/archives/{channel}/p{case_id}",
                "confidential": False,
                "card_attempts": 1,
                "created_at": filed,
                "updated_at": filed,
                "first_response_due": filed + timedelta(seconds=first_target),
                "resolution_due": filed + timedelta(seconds=resolve_target),
                **dict.fromkeys(OPTIONAL),
            }
            responder = rng.choice(EXPERTS)
            answered = rng.random() < 0.95
            first = rng.expovariate(1 / (first_target * 0.6))
            if answered and first < age:
                at = filed + timedelta(seconds=first)
                row.update(first_response_at=at, first_responder_id=responder, status="swarming")
                events.append((at, "first_response", responder))
            if rng.random() < 0.5 and first < age:
                at = filed + timedelta(seconds=first + 60)
                row.update(assignee_id=responder, status="swarming")
                events.append((at, "claimed", responder))
            took = rng.expovariate(1 / (resolve_target * 0.7))
            if rng.random() < 0.1 and took / 3 < age:
                at = filed + timedelta(seconds=took / 3)
                row.update(
                    escalated_at=at,
                    status="escalated",
                    severity=rng.randint(1, 4),
                    incident_channel_id=f"CINC{case_id:07d}",
                )
                events.append((at, "escalated", "U0LEAD001"))
            if took < age:
                at = filed + timedelta(seconds=took)
                if rng.random() < 0.03 and took * 1.5 < age:
                    events.append((at, "resolved", responder))
                    events.append((filed + timedelta(seconds=took * 1.2), "reopened", responder))
                    at = filed + timedelta(seconds=took * 1.5)
                    row["resolution_due"] = at + timedelta(seconds=resolve_target)
                row.update(status="resolved", resolved_at=at, resolved_by=responder)
                events.append((at, "resolved", responder))
            # A bulk insert skips the ORM, which keeps these with the times.
            row["first_response_micros"] = micros_between(filed, row["first_response_at"])
            row["resolution_micros"] = micros_between(filed, row["resolved_at"])
            yield "case", row
            yield (
                "participant",
                {
                    "case_id": case_id,
                    "user_id": filer,
                    "role": "filer",
                    "joined_at": filed,
                },
            )
            if row.get("assignee_id"):
                yield (
                    "participant",
                    {
                        "case_id": case_id,
                        "user_id": responder,
                        "role": "assignee",
                        "joined_at": filed,
                    },
                )
            for at, kind, actor in events:
                event_id += 1
                yield (
                    "event",
                    {
                        "id": event_id,
                        "case_id": case_id,
                        "at": at,
                        "kind": kind,
                        "actor_id": actor,
                        "data": {},
                    },
                )
            self.threads.append((case_id, channel, filed, topic))

    def message_rows(self) -> Iterator[dict[str, Any]]:
        rng = self.rng
        for n in range(self.messages):
            case_id, channel, filed, _topic = self.threads[rng.randrange(len(self.threads))]
            room = (self.now - filed).total_seconds()
            posted = filed + timedelta(seconds=min(rng.expovariate(1 / 7200), room * 0.99))
            yield {
                "team_id": TEAM,
                "case_id": case_id,
                "channel_id": channel,
                "ts": f"{int(posted.timestamp())}.{n:07d}",
                "thread_ts": f"{filed.timestamp():.6f}",
                "user_id": rng.choice(EXPERTS),
                "is_bot": False,
                "text": " ".join(rng.choices(WORDS, k=6)),
                "files": [],
                "posted_at": posted,
            }


def load(engine: Any, year: Year) -> float:
    started = time.perf_counter()
    with engine.begin() as connection:
        connection.execute(insert(Workspace.__table__), [{"team_id": TEAM, "created_at": year.now}])
    tables = {"case": Case.__table__, "event": CaseEvent.__table__}
    tables["participant"] = Participant.__table__
    batches: dict[str, list[dict[str, Any]]] = {name: [] for name in tables}

    def flush(names: list[str]) -> None:
        with engine.begin() as connection:
            for name in names:
                if batches[name]:
                    connection.execute(insert(tables[name]), batches[name])
                    batches[name] = []

    for name, row in year.rows():
        batches[name].append(row)
        if len(batches["case"]) >= BATCH:
            flush(["case", "participant", "event"])
    flush(["case", "participant", "event"])
    batch: list[dict[str, Any]] = []
    for row in year.message_rows():
        batch.append(row)
        if len(batch) == BATCH:
            with engine.begin() as connection:
                connection.execute(insert(Message.__table__), batch)
            batch = []
    if batch:
        with engine.begin() as connection:
            connection.execute(insert(Message.__table__), batch)
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            for table in ("cases", "case_events"):
                connection.execute(text(f"SELECT setval('{table}_id_seq', max(id)) FROM {table}"))
            connection.execute(text("VACUUM ANALYZE"))  # index-only scans need the visibility map
    else:
        with engine.begin() as connection:
            connection.execute(text("ANALYZE"))
    return time.perf_counter() - started


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(int(round(len(ordered) * 0.95)) - 1, 0)]


def figures_latency(engine: Any, now: datetime, runs: int) -> dict[str, tuple[float, float]]:
    # The report reads only the database: the gateway is there because every workflow gets one.
    services = Services(
        UnitOfWorkFactory(session_factory(engine)),
        parse_config(TEST_CONFIG),
        WebSlack(WebClient(), AdminCache()),
        FixedClock(now),
    )
    out = {}
    for period in ("7d", "30d", "90d", "all"):
        metrics.report(services, team_id=TEAM, period=period, people_topics=None)
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            metrics.report(services, team_id=TEAM, period=period, people_topics=None)
            times.append((time.perf_counter() - started) * 1000)
        out[period] = (statistics.median(times), p95(times))
    return out


LEAD = "U0LEAD001"  # leads api: two thirds of the cases


def app_latency(db_url: str, fake: FakeSlack, now: datetime, runs: int) -> dict[str, Any]:
    """`/swarm stats 90d` (as a lead: per-person figures too) and an App Home publish, through
    the real HTTP app, timed until the fake Slack receives the answer."""
    fake.reset()
    for user_id, attrs in USERS.items():
        fake.add_user(user_id, **attrs)
    for channel_id, name in CHANNELS.items():
        fake.add_channel(channel_id, name, members=[fake.bot_user_id, *USERS])
    swarm = build_swarm(
        settings_for(fake, db_url), config=parse_config(TEST_CONFIG), clock=FixedClock(now)
    )
    running = serve_app(swarm, fake)
    server, driver, executor = running.server, running.driver, running.driver.executor
    stats_ms: list[float] = []
    agent_ms: list[float] = []
    home_ms: list[float] = []
    floor_ms: list[float] = []
    try:
        for n in range(runs + 1):
            # The floor: one case by number (one indexed read, the same answer path).
            started = time.monotonic()
            driver.command("status 100000", user=LEAD)
            if n:
                floor_ms.append((fake.responses()[-1]["at"] - started) * 1000)
            started = time.monotonic()
            driver.command("stats 90d", user=LEAD)
            answer = fake.responses()[-1]
            assert "Per person" in json.dumps(answer["body"].get("blocks")), answer
            if n:  # the first run warms caches and connections
                stats_ms.append((answer["at"] - started) * 1000)
            # Someone who leads nothing: the same figures without the per-person part.
            started = time.monotonic()
            driver.command("stats 90d", user="U0AGENT01")
            if n:
                agent_ms.append((fake.responses()[-1]["at"] - started) * 1000)
            started = time.monotonic()
            driver.event(
                {
                    "type": "app_home_opened",
                    "user": LEAD,
                    "channel": f"D{LEAD}",
                    "tab": "home",
                    "event_ts": f"{time.time():.6f}",
                }
            )
            publish = [c for c in fake.calls if c.method == "views.publish"][-1]
            if n:
                home_ms.append((publish.at - started) * 1000)
        view = fake.views[f"home:{LEAD}"]
    finally:
        server.shutdown()
        server.server_close()
        executor.shutdown()
    return {
        "floor": (statistics.median(floor_ms), p95(floor_ms)),
        "stats": (statistics.median(stats_ms), p95(stats_ms)),
        "agent": (statistics.median(agent_ms), p95(agent_ms)),
        "home": (statistics.median(home_ms), p95(home_ms)),
        "view": view,
    }


def home_as_text(view: dict[str, Any]) -> str:
    """A Home view's blocks as plain text, roughly as Slack lays them out."""
    lines: list[str] = []
    for block in view["blocks"]:
        kind = block["type"]
        if kind == "header":
            lines += [block["text"]["text"].upper(), ""]
        elif kind == "divider":
            lines.append("-" * 78)
        elif kind == "section":
            if block.get("text"):
                lines.append(block["text"]["text"])
            fields = [f["text"].replace("\n", ": ") for f in block.get("fields", [])]
            for i in range(0, len(fields), 2):
                lines.append("   ".join(f"{f:<38}" for f in fields[i : i + 2]).rstrip())
        elif kind == "context":
            lines.append("  " + " ".join(e.get("text", "") for e in block["elements"]))
        elif kind == "actions":
            labels = []
            for element in block["elements"]:
                if element["type"] == "button":
                    labels.append(f"[ {element['text']['text']} ]")
                else:
                    labels.append(f"[ {element.get('placeholder', {}).get('text', 'select')} v ]")
            lines += ["  " + " ".join(labels), ""]
    return "\n".join(lines)


def run(name: str, db_url: str, args: argparse.Namespace, now: datetime) -> dict[str, Any]:
    engine = create_db_engine(db_url)
    upgrade(engine)
    year = Year(args.cases, args.messages, now)
    print(f"[{name}] loading {args.cases} cases, {args.messages} messages …", flush=True)
    loaded = load(engine, year)
    print(f"[{name}] loaded in {loaded:.0f} s", flush=True)
    figures = figures_latency(engine, now, args.runs)
    for period, (p50, p95_) in figures.items():
        print(f"[{name}] report {period}: p50 {p50:.1f} ms, p95 {p95_:.1f} ms", flush=True)
    engine.dispose()
    with FakeSlack(team_id=TEAM) as fake:
        app = app_latency(db_url, fake, now, args.runs)
    print(
        f"[{name}] /swarm stats 90d: p50 {app['stats'][0]:.1f} ms, p95 {app['stats'][1]:.1f} ms;"
        f" no lead p50 {app['agent'][0]:.1f} ms, p95 {app['agent'][1]:.1f} ms;"
        f" Home publish: p50 {app['home'][0]:.1f} ms, p95 {app['home'][1]:.1f} ms;"
        f" floor (/swarm status <case>): p50 {app['floor'][0]:.1f} ms",
        flush=True,
    )
    return {"name": name, "load": loaded, "figures": figures, **app}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--show-home", action="store_true", help="print the lead's Home as text")
    args = parser.parse_args()
    now = datetime.now(UTC).replace(microsecond=0)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        if not args.no_sqlite:
            results.append(run("SQLite", f"sqlite:///{tmp}/stats.db", args, now))
        with throwaway_postgres(wanted=not args.no_postgres) as pg_url:
            if pg_url is not None:
                results.append(run("PostgreSQL", pg_url, args, now))
    print()
    print(
        f"{args.cases:,} cases, {args.messages:,} messages, medians and p95 of {args.runs} "
        f"runs; {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}"
    )
    print()
    print(
        "| database | load (s) | figures 7d | 30d | 90d | all | floor: `/swarm status <case>` "
        "| `/swarm stats 90d` (lead) | `/swarm stats 90d` (no lead) | App Home publish (lead) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        cells = " | ".join(f"{p50:.1f} / {p95_:.1f}" for p50, p95_ in r["figures"].values())
        app = " | ".join(
            f"{r[k][0]:.1f} / {r[k][1]:.1f}" for k in ("floor", "stats", "agent", "home")
        )
        print(f"| {r['name']} | {r['load']:.0f} | {cells} | {app} |")
    print("\n(median / p95 in milliseconds)")
    for r in results:
        print(
            f"{r['name']}: /swarm stats 90d is {r['stats'][0] / r['floor'][0]:.1f}x the floor, "
            f"a Home publish {r['home'][0] / r['floor'][0]:.1f}x (medians)"
        )
    if args.show_home and results:
        print("\nThe lead's Home, as text:\n")
        print(home_as_text(results[-1]["view"]))


if __name__ == "__main__":
    main()
