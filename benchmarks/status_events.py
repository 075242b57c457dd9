"""What the status webhook costs: the trigger on each case write, and delivery throughput.

    python benchmarks/status_events.py [--cases 100] [--rounds 7] [--events 500]

On SQLite and, when PostgreSQL is installed, a throwaway PostgreSQL server, two migrated
databases side by side: one as shipped, one with the status triggers dropped (the floor).
Rounds alternate between them; each round files `--cases` cases through `intake.file_case`
and then moves each to swarming in its own unit of work, as a Join does. Prints medians of the
per-operation times (milliseconds) and the ratio to the floor. Then `--events` events are
delivered to a receiver on 127.0.0.1 that answers 204 at once: events per second.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text  # noqa: E402

from storage.db import create_db_engine, session_factory  # noqa: E402
from storage.domain import CaseStatus  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.uow import UnitOfWorkFactory  # noqa: E402
from tests.conftest import TEAM, TEST_CONFIG  # noqa: E402
from tests.pgcluster import throwaway_postgres  # noqa: E402
from workflows import status_webhook  # noqa: E402
from workflows.clock import SystemClock  # noqa: E402
from workflows.config import parse_config  # noqa: E402
from workflows.intake import CaseDraft, file_case  # noqa: E402
from workflows.services import Services  # noqa: E402

DRAFT = CaseDraft(TEAM, "U0AGENT01", "", "high", "api", "Webhooks time out")


class Nothing:
    """A Slack gateway nobody calls: filing a case does not talk to Slack."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"no Slack call expected ({name})")


def services(url: str) -> Services:
    engine = create_db_engine(url)
    return Services(
        UnitOfWorkFactory(session_factory(engine)),
        parse_config(TEST_CONFIG),
        Nothing(),  # type: ignore[arg-type]
        SystemClock(),
    )


def drop_triggers(url: str) -> None:
    engine = create_db_engine(url)
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("DROP TRIGGER cases_status_event ON cases"))
        else:
            connection.execute(text("DROP TRIGGER cases_status_filed"))
            connection.execute(text("DROP TRIGGER cases_status_changed"))
    engine.dispose()


def one_round(svc: Services, first: int, cases: int) -> tuple[list[float], list[float]]:
    """Per-case milliseconds to file, and to move to swarming."""
    filing, moving, ids = [], [], []
    for number in range(first, first + cases):
        started = time.perf_counter()
        filed = file_case(svc, replace(DRAFT, case_number=str(number)))
        filing.append((time.perf_counter() - started) * 1000)
        ids.append(filed.case_id)
    for case_id in ids:
        started = time.perf_counter()
        with svc.uow() as uow:
            case = uow.cases.get(case_id)
            assert case is not None
            case.status = CaseStatus.SWARMING
            uow.commit()
        moving.append((time.perf_counter() - started) * 1000)
    return filing, moving


class Quick(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


def delivery_rate(svc: Services, events: int) -> float:
    """Events per second through deliver_due to a receiver that answers at once."""
    with svc.uow() as uow:
        pending = uow.status_events.undelivered(limit=0)[1]
    assert pending >= events, (pending, events)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Quick)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    receiver = status_webhook.Receiver(f"http://127.0.0.1:{server.server_port}/", "bench-secret")
    try:
        started = time.perf_counter()
        sent = 0
        while sent < events:
            sent += status_webhook.deliver_due(svc, receiver, limit=events - sent).delivered
        return sent / (time.perf_counter() - started)
    finally:
        server.shutdown()
        server.server_close()


def measure(name: str, urls: dict[str, str], args: argparse.Namespace) -> None:
    for url in urls.values():
        upgrade(create_db_engine(url))
    drop_triggers(urls["floor"])
    svcs = {kind: services(url) for kind, url in urls.items()}
    times: dict[str, dict[str, list[float]]] = {k: {"file": [], "move": []} for k in urls}
    number = 100000
    for _ in range(args.rounds):
        for kind in ("shipped", "floor"):  # interleaved, side by side
            filing, moving = one_round(svcs[kind], number, args.cases)
            number += args.cases
            times[kind]["file"].append(statistics.median(filing))
            times[kind]["move"].append(statistics.median(moving))
    rate = delivery_rate(svcs["shipped"], args.events)
    med = {k: {op: statistics.median(v) for op, v in ops.items()} for k, ops in times.items()}
    for op, label in (("file", "file a case"), ("move", "status change (Join)")):
        shipped, floor = med["shipped"][op], med["floor"][op]
        print(
            f"| {name} | {label} | {floor:.2f} | {shipped:.2f} | {shipped / floor:.2f}x "
            f"| {rate:.0f} |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    args.events = min(args.events, args.cases * args.rounds * 2)
    print(f"{args.rounds} rounds of {args.cases} cases each; medians in milliseconds\n")
    print(
        "| database | operation | without trigger (floor) | with trigger | ratio "
        "| delivered events/s |"
    )
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        measure(
            "SQLite",
            {kind: f"sqlite:///{tmp}/{kind}.db" for kind in ("shipped", "floor")},
            args,
        )
    with throwaway_postgres("shipped", wanted=not args.no_postgres) as pg_url:
        if pg_url is None:
            print("(PostgreSQL not installed: skipped)")
            return
        admin = create_db_engine(pg_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text("CREATE DATABASE floor"))
        admin.dispose()
        floor = pg_url.rsplit("/", 1)[0] + "/floor"
        measure("PostgreSQL", {"shipped": pg_url, "floor": floor}, args)


if __name__ == "__main__":
    main()
