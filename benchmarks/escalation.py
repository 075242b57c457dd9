"""Escalation latency: `/swarm escalate` -> case summary pinned in the new incident channel.

    python benchmarks/escalation.py [--runs 7]

Runs the whole app (WSGI on 127.0.0.1, real WebClient, the tests' fake Slack Web API) on
SQLite and, when PostgreSQL is installed, on a throwaway PostgreSQL server; each with the fake
answering at once and with 100 ms added to every call, side by side. Prints a Markdown table of
medians (milliseconds), the Slack calls made up to the pin, and the time until the whole
escalation (invites, thread link, card, the lead's answer) is done.
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

LATENCIES = (0.0, 0.1)


def measure(db_url: str, fake: FakeSlack, runs: int) -> dict[float, dict[str, list[float]]]:
    fake.reset()
    for user_id, attrs in USERS.items():
        fake.add_user(user_id, **attrs)
    for channel_id, name in CHANNELS.items():
        fake.add_channel(channel_id, name, members=[fake.bot_user_id, *USERS])
    swarm = build_swarm(settings_for(fake, db_url), config=parse_config(TEST_CONFIG))
    running = serve_app(swarm, fake)
    server, driver, executor = running.server, running.driver, running.driver.executor
    results: dict[float, dict[str, list[float]]] = {
        latency: {"ack": [], "pinned": [], "calls": [], "done": []} for latency in LATENCIES
    }
    number = 200000
    try:
        for _ in range(runs):
            for latency in LATENCIES:  # side by side, interleaved
                number += 1
                fake.set_latency(0)
                driver.global_shortcut()
                driver.submit(fake.opened_views()[-1], {**VALUES, "case_number": str(number)})
                fake.set_latency(latency)
                calls_before = len(fake.calls)
                started = time.monotonic()
                reply = driver.command(f"escalate {number}", user="U0LEAD001", wait=False)
                results[latency]["ack"].append(reply.elapsed)
                while True:
                    pins = [c for c in fake.calls[calls_before:] if c.method == "pins.add"]
                    if pins and fake.pins(pins[0].params["channel"]):
                        break
                    time.sleep(0.001)
                results[latency]["pinned"].append(time.monotonic() - started)
                index = fake.calls.index(pins[0])
                results[latency]["calls"].append(index - calls_before + 1)
                executor.wait_idle(timeout=60)
                results[latency]["done"].append(time.monotonic() - started)
    finally:
        fake.set_latency(0)
        server.shutdown()
        server.server_close()
        executor.shutdown()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="swarm-bench-"))
    rows = []
    with throwaway_postgres() as pg_url, FakeSlack(team_id=TEAM) as fake:
        backends = {"sqlite": f"sqlite:///{tmp / 'bench.db'}", "postgresql": pg_url}
        for name, url in backends.items():
            if url is not None:
                upgrade(create_db_engine(url))
                rows.append((name, measure(url, fake, args.runs)))
    print(f"runs={args.runs} per cell, medians in milliseconds\n")
    print(
        "| database | fake Slack latency | command ack | escalate -> summary pinned |"
        " Slack calls up to the pin | ratio to 0 ms | escalate -> all done |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, results in rows:
        base = statistics.median(results[LATENCIES[0]]["pinned"])
        for latency in LATENCIES:
            r = results[latency]
            pinned = statistics.median(r["pinned"])
            print(
                f"| {name} | {latency * 1000:.0f} ms | {statistics.median(r['ack']) * 1000:.1f} | "
                f"{pinned * 1000:.1f} | {statistics.median(r['calls']):.0f} | "
                f"{pinned / base:.1f}x | {statistics.median(r['done']) * 1000:.1f} |"
            )


if __name__ == "__main__":
    main()
