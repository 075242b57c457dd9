"""Intake latency: shortcut -> views.open and submit -> card posted, through the real HTTP app.

    python benchmarks/intake.py [--runs 40] [--latency 0.0]

Runs the whole app (WSGI on 127.0.0.1, real WebClient, the tests' fake Slack Web API) on
SQLite and, when PostgreSQL is installed, on a throwaway PostgreSQL server, side by side.
Prints a Markdown table of medians and p95 in milliseconds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.runtime import build_swarm  # noqa: E402
from storage.db import create_db_engine  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
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
from tests.scenario import GOOD as VALUES  # noqa: E402  the intake form's values
from workflows.config import parse_config  # noqa: E402


def p95(values: list[float]) -> float:
    return sorted(values)[max(int(len(values) * 0.95) - 1, 0)]


def measure(db_url: str, fake: FakeSlack, runs: int, latency: float) -> dict[str, list[float]]:
    fake.reset()
    for user_id, attrs in USERS.items():
        fake.add_user(user_id, **attrs)
    for channel_id, name in CHANNELS.items():
        fake.add_channel(channel_id, name, members=[fake.bot_user_id, *USERS])
    fake.set_latency(latency)
    swarm = build_swarm(settings_for(fake, db_url), config=parse_config(TEST_CONFIG))
    running = serve_app(swarm, fake)
    server, driver, executor = running.server, running.driver, running.driver.executor
    results: dict[str, list[float]] = {"ack": [], "open": [], "card": [], "filed": []}
    try:
        for run in range(runs):
            started = time.monotonic()
            reply = driver.global_shortcut()
            results["ack"].append(reply.elapsed)
            view_call = [c for c in fake.calls if c.method == "views.open"][-1]
            results["open"].append(view_call.at - started)
            view = fake.opened_views()[-1]
            started = time.monotonic()
            driver.submit(view, {**VALUES, "case_number": str(100000 + run)})
            card = [
                c
                for c in fake.calls
                if c.method == "chat.postMessage" and c.params.get("channel") == "C0API0001"
            ][-1]
            results["card"].append(card.at - started)
            results["filed"].append(time.monotonic() - started)
    finally:
        server.shutdown()
        server.server_close()
        executor.shutdown()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument(
        "--latency", type=float, default=0.0, help="seconds the fake Slack waits before each answer"
    )
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="swarm-bench-"))
    rows = []
    with throwaway_postgres() as pg_url, FakeSlack(team_id=TEAM) as fake:
        backends = {"sqlite": f"sqlite:///{tmp / 'bench.db'}", "postgresql": pg_url}
        for name, url in backends.items():
            if url is not None:
                upgrade(create_db_engine(url))
                rows.append((name, measure(url, fake, args.runs, args.latency)))
    print(f"runs={args.runs} fake Slack latency={args.latency * 1000:.0f} ms per call\n")
    print(
        "| database | shortcut ack | shortcut -> views.open | submit -> card posted |"
        " submit -> filer told |"
    )
    print("|---|---|---|---|---|")
    for name, r in rows:
        cells = [
            f"{statistics.median(r[k]) * 1000:.1f} / {p95(r[k]) * 1000:.1f}"
            for k in ("ack", "open", "card", "filed")
        ]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print("\n(median / p95, milliseconds)")


if __name__ == "__main__":
    main()
