"""Scheduler start-up and memory with many open cases: `python benchmarks/scheduler.py`.

    python benchmarks/scheduler.py [--cases 100000] [--runs 3]

Seeds `--cases` open, unanswered cases (four SLA timers each) into SQLite and, when
PostgreSQL is installed, a throwaway PostgreSQL server. Then, each in a fresh process:
- first start: a leader on an empty job store arms every timer (the start after an upgrade);
- restart: a leader on the filled store checks that nothing is missing and resumes;
- case changed: a non-leading process re-arms one case (median of 200).
Prints a Markdown table of medians: seconds, and the process's resident memory (RSS) after
start, its growth over the same process before the scheduler started, and its peak.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, text  # noqa: E402

from storage.db import create_db_engine  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import Case, Workspace  # noqa: E402
from tests.pgcluster import throwaway_postgres  # noqa: E402

TEAM = "T111"
NOWHERE = "http://127.0.0.1:9/api/"  # no job is due during the run: Slack is never called


def rss_mb() -> float:
    """Resident memory of this process now, in MiB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    import os

    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def seed(db_url: str, cases: int) -> None:
    engine = create_db_engine(db_url)
    upgrade(engine)
    now = datetime.now(UTC)
    rng = random.Random(7)
    with engine.begin() as connection:
        connection.execute(insert(Workspace), [{"team_id": TEAM, "created_at": now}])
        for start in range(0, cases, 5000):
            rows = []
            for i in range(start, min(start + 5000, cases)):
                created = now - timedelta(seconds=rng.randrange(3600))
                urgency = "low" if i % 2 else "medium"
                first, resolution = (
                    (timedelta(days=1), timedelta(days=7))
                    if urgency == "low"
                    else (timedelta(hours=4), timedelta(days=3))
                )
                rows.append(
                    {
                        "team_id": TEAM,
                        "case_number": str(100000 + i),
                        "summary": f"Benchmark case {i}",
                        "details": "",
                        "customer": "",
                        "urgency": urgency,
                        "topic_key": "api",
                        "region": "",
                        "status": "open",
                        "filer_id": "U0AGENT01",
                        "confidential": False,
                        "channel_id": "C0API0001",
                        "thread_ts": f"{1700000000 + i}.000100",
                        "card_attempts": 1,
                        "filer_notified_at": created,
                        "created_at": created,
                        "updated_at": created,
                        "first_response_due": created + first,
                        "resolution_due": created + resolution,
                    }
                )
            connection.execute(insert(Case), rows)
    engine.dispose()


def child(mode: str, db_url: str) -> None:
    """One measurement in this (fresh) process; prints JSON."""
    from bot.gateway import web_client
    from bot.runtime import build_swarm
    from bot.settings import Settings
    from scheduling.scheduler import JOB_TABLE, SwarmScheduler
    from tests.conftest import TEST_CONFIG
    from workflows.config import parse_config

    settings = Settings(slack_bot_token="xoxb-bench", slack_api_url=NOWHERE, database_url=db_url)
    swarm = build_swarm(settings, config=parse_config(TEST_CONFIG))
    if mode == "first":
        engine = create_db_engine(db_url)
        with engine.begin() as connection:
            connection.execute(text(f"DROP TABLE IF EXISTS {JOB_TABLE}"))
        engine.dispose()
    client = web_client("xoxb-bench", NOWHERE)
    before = rss_mb()
    started = time.perf_counter()
    if mode == "changed":
        scheduler = SwarmScheduler(swarm, client, lead=False).start()
        timings = []
        for case_id in range(1, 201):
            t0 = time.perf_counter()
            scheduler.timers.case_changed(case_id)
            timings.append(time.perf_counter() - t0)
        seconds = statistics.median(timings)
    else:
        scheduler = SwarmScheduler(swarm, client).start()
        seconds = time.perf_counter() - started
        assert scheduler.leading
    after = rss_mb()
    with scheduler.engine.connect() as connection:
        jobs = connection.scalar(text(f"SELECT count(*) FROM {JOB_TABLE}"))
    scheduler.shutdown()
    print(
        json.dumps(
            {
                "seconds": seconds,
                "rss": after,
                "growth": after - before,
                "peak": peak_mb(),
                "jobs": jobs,
            }
        )
    )


def measure(mode: str, db_url: str) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--url", db_url],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.url)
        return
    with tempfile.TemporaryDirectory() as tmp, throwaway_postgres() as pg_url:
        backends = [("SQLite", f"sqlite:///{tmp}/bench.db")]
        if pg_url is not None:
            backends.append(("PostgreSQL", pg_url))
        print(f"{args.cases} open cases, {args.runs} run(s) each, medians\n")
        print("| database | step | seconds | jobs | RSS after (MiB) | growth (MiB) | peak (MiB) |")
        print("|---|---|---|---|---|---|---|")
        for name, url in backends:
            t0 = time.perf_counter()
            seed(url, args.cases)
            print(f"<!-- seeded {name} in {time.perf_counter() - t0:.1f}s -->", file=sys.stderr)
            for mode, label in (
                ("first", "first start: arm every timer"),
                ("restart", "restart: store already filled"),
                ("changed", "one case re-armed (case_changed)"),
            ):
                runs = [measure(mode, url) for _ in range(args.runs)]
                cell = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
                seconds = (
                    f"{cell['seconds'] * 1000:.1f} ms"
                    if mode == "changed"
                    else f"{cell['seconds']:.2f}"
                )
                print(
                    f"| {name} | {label} | {seconds} | {int(cell['jobs'])} | "
                    f"{cell['rss']:.0f} | {cell['growth']:.0f} | {cell['peak']:.0f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
