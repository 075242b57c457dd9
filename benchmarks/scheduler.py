"""Scheduler start-up and memory with many open cases: `python benchmarks/scheduler.py`.

    python benchmarks/scheduler.py [--cases 100000] [--runs 3]

Seeds `--cases` open, unanswered cases (four SLA timers each) into SQLite and, when
PostgreSQL is installed, a throwaway PostgreSQL server. Then, each in a fresh process:
- first start: a leader on an empty job store arms every timer (the start after an upgrade);
- restart: a leader on the filled store checks that nothing is missing and resumes;
- reconcile: the 5-minute reconciliation on the filled store, in a process already running;
- case changed: a non-leading process re-arms one case (median of 200).
Prints a Markdown table of medians: seconds, and the process's resident memory (RSS) after
start, its growth over the same process before the scheduler started, its peak, and the
temporary memory of the step (its high-water mark above the RSS before it).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The code measured: this checkout, or (in a child, for --before) another one.
CODE = Path(os.environ.get("SWARM_BENCH_CODE", ROOT))
sys.path.insert(0, str(CODE))

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
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak() -> None:
    """Start this process's high-water mark (VmHWM) afresh (Linux)."""
    Path("/proc/self/clear_refs").write_text("5")


def high_water_mb() -> float:
    """The resident high-water mark since the last reset_peak(), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


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
                        "permalink": f"https://example.slack.com/archives/C0API0001/p{i}",
                        "similar_offered_at": created,
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
    if mode == "reconcile":  # the 5-minute sweep on a filled store, in a process already up
        scheduler = SwarmScheduler(swarm, client, lead=False).start()
        before = rss_mb()
        reset_peak()
        started = time.perf_counter()
        armed = scheduler.reconcile()
        seconds = time.perf_counter() - started
        assert armed == 0, armed
        temporary = high_water_mb() - before
    elif mode == "changed":
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
    if mode != "reconcile":
        temporary = peak_mb() - before
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
                "temporary": temporary,
                "jobs": jobs,
            }
        )
    )


def measure(mode: str, db_url: str, code: Path) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--url", db_url],
        capture_output=True,
        text=True,
        check=True,
        cwd=code,
        env={**os.environ, "SWARM_BENCH_CODE": str(code)},
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--before",
        type=Path,
        help="another checkout (say `git worktree add --detach ../before main`) measured in "
        "turn with this one, on the same databases",
    )
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
        codes = [("this", ROOT)] + ([("before", args.before.resolve())] if args.before else [])
        print(
            "| database | step | code | seconds | jobs | RSS after (MiB) | growth (MiB) "
            "| peak (MiB) | temporary (MiB) |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for name, url in backends:
            t0 = time.perf_counter()
            seed(url, args.cases)
            print(f"<!-- seeded {name} in {time.perf_counter() - t0:.1f}s -->", file=sys.stderr)
            for mode, label in (
                ("first", "first start: arm every timer"),
                ("restart", "restart: store already filled"),
                ("reconcile", "5-minute reconcile, store filled"),
                ("changed", "one case re-armed (case_changed)"),
            ):
                runs: dict[str, list[dict]] = {code: [] for code, _ in codes}
                for _ in range(args.runs):  # in turn, so both see the same machine
                    for code, where in codes:
                        runs[code].append(measure(mode, url, where))
                for code, _ in codes:
                    cell = {k: statistics.median(r[k] for r in runs[code]) for k in runs[code][0]}
                    seconds = (
                        f"{cell['seconds'] * 1000:.1f} ms"
                        if mode == "changed"
                        else f"{cell['seconds']:.2f}"
                    )
                    print(
                        f"| {name} | {label} | {code} | {seconds} | {int(cell['jobs'])} | "
                        f"{cell['rss']:.0f} | {cell['growth']:.0f} | {cell['peak']:.0f} "
                        f"| {cell['temporary']:.0f} |",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
