"""Ack latency under load: Swarm against a minimal Bolt app, side by side, served alike.

    python benchmarks/load.py [--rounds 3] [--requests 40] [--concurrency 8]
                              [--workers 2] [--threads 16] [--latency 0 1]

Three servers run at once, each under gunicorn exactly as `swarmbot run` serves HTTP
(bot.server.serve_http, the same workers and threads), bound to 127.0.0.1:

    swarm        the whole app (SlackHTTP, every listener), on SQLite and then PostgreSQL
    bolt         a minimal Bolt app whose listeners only ack, Bolt's default configuration
    bolt-pbr     the same app with process_before_response=True: the floor

All talk to the tests' fake Slack (answering at once, then after `--latency` seconds per
call). For each database and latency, each round sends `--requests` signed requests of each
kind (`/swarm status`, `/swarm help`, a Join click, an intake view submission, a thread
message event) at `--concurrency` to each server in turn, and prints p50 / p99 of the time
to the HTTP answer (the ack), the medians over rounds, and Swarm's ratio to bolt-pbr. Every
request counts and a run is bounded: rounds x kinds x requests x 3 servers.

`--socket-mode` also times Socket Mode envelope acks through the Socket Mode handler
(bot.server.CheckedSocketModeHandler against SocketModeHandler on the minimal apps), driven
in-process without a websocket: the time from handing the handler an envelope to its
send_socket_mode_response.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

# `--code DIR` (set by --before for its server): serve another checkout's Swarm.
ROOT = sys.argv[sys.argv.index("--code") + 1] if "--code" in sys.argv else None
sys.path.insert(0, ROOT or str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text  # noqa: E402

from bot.blocks.modals import IntakeMetadata, intake_modal  # noqa: E402
from bot.ids import Action  # noqa: E402
from storage.db import create_db_engine  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from tests.conftest import (  # noqa: E402
    BOT_TOKEN,
    CHANNELS,
    SIGNING_SECRET,
    TEAM,
    TEST_CONFIG,
    USERS,
)
from tests.fakeslack import FakeSlack  # noqa: E402
from tests.pgcluster import throwaway_postgres  # noqa: E402
from tests.scenario import GOOD as VALUES  # noqa: E402  the intake form's values
from tests.slackdriver import SlackDriver, TrackingExecutor  # noqa: E402
from workflows.config import parse_config  # noqa: E402

TARGETS = ("swarm", "bolt", "bolt-pbr")
KINDS = ("status", "help", "join", "submit", "message")
CHANNEL = "C0API0001"


# -- the servers (child processes) ---------------------------------------------------------
def minimal_app(fake_url: str, *, process_before_response: bool) -> Any:
    """A Bolt app that only acks what Swarm listens to; Bolt's defaults otherwise."""
    import re

    from slack_bolt import App
    from slack_sdk import WebClient

    app = App(
        client=WebClient(token=BOT_TOKEN, base_url=fake_url),
        signing_secret=SIGNING_SECRET,
        process_before_response=process_before_response,
    )

    def acknowledge(ack: Callable[[], Any]) -> None:
        ack()

    def nothing() -> None:
        pass

    app.command("/swarm")(acknowledge)
    app.action(re.compile(".+"))(acknowledge)
    app.view_submission(re.compile(".+"))(acknowledge)
    app.event("message")(nothing)
    return app


def serve(target: str, port: int, fake_url: str, db_url: str, workers: int, threads: int) -> None:
    from bot.server import serve_http

    def factory() -> Any:
        if target == "swarm":
            from bot.runtime import build_http, build_swarm
            from bot.settings import Settings

            settings = Settings(
                slack_bot_token=BOT_TOKEN,
                slack_signing_secret=SIGNING_SECRET,
                slack_api_url=fake_url,
                database_url=db_url,
            )
            _app, http = build_http(build_swarm(settings, config=parse_config(TEST_CONFIG)))
            return http
        from slack_bolt.adapter.wsgi import SlackRequestHandler

        return SlackRequestHandler(
            minimal_app(fake_url, process_before_response=target == "bolt-pbr")
        )

    serve_http(factory, port=port, workers=workers, threads=threads, host="127.0.0.1")


class Server:
    """One gunicorn master (and its workers) in a child process, stopped by its own pid."""

    def __init__(
        self, target: str, fake_url: str, db_url: str, workers: int, threads: int, before: str = ""
    ):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.target = target
        code = []
        if target == "swarm-before":
            target, code = "swarm", ["--code", before]
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve", target, "--port", str(self.port), *code]
            + ["--fake-url", fake_url, "--db", db_url]
            + ["--workers", str(workers), "--threads", str(threads)],
            env={**os.environ, "LOG_LEVEL": "WARNING"},
            # LOAD_SERVER_LOG=path keeps the servers' logs (warnings and up) there.
            stderr=open(os.environ["LOAD_SERVER_LOG"], "a")  # noqa: SIM115
            if os.environ.get("LOAD_SERVER_LOG")
            else subprocess.DEVNULL,
        )
        self.url = f"http://127.0.0.1:{self.port}/slack/events"

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.target} exited with {self.process.returncode}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"{self.target} did not listen within {timeout} s")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# -- the requests ---------------------------------------------------------------------------
class Requests:
    """Signed request bodies in Slack's shapes (the tests' SlackDriver builds them)."""

    def __init__(self, fake: FakeSlack) -> None:
        self.driver = SlackDriver("", SIGNING_SECRET, fake.respond_url, _NO_WAIT, team_id=TEAM)
        view = intake_modal(parse_config(TEST_CONFIG), metadata=IntakeMetadata()).to_dict()
        self.view = {**view, "id": "V0BENCH", "hash": "1.a"}
        self.case_id = 0
        self.thread_ts = ""
        self.number = 0

    def body(self, kind: str) -> tuple[str, str]:
        """(body, content type) of one request of `kind`."""
        d = self.driver
        form = "application/x-www-form-urlencoded"
        if kind in ("status", "help"):
            from urllib.parse import urlencode

            from tests.slackdriver import payload

            body = payload("slash_command.json")
            body.update(
                team_id=TEAM,
                channel_id=CHANNEL,
                user_id="U0AGENT01",
                command="/swarm",
                text=kind,
                response_url=d.response_url(),
                trigger_id=f"{uuid.uuid4().hex[:8]}.trigger",
            )
            return urlencode(body), form
        if kind == "join":
            return _form(d.click_body(Action.JOIN, str(self.case_id), channel=CHANNEL)), form
        if kind == "submit":
            self.number += 1
            view = {**copy.deepcopy(self.view), "id": f"V{uuid.uuid4().hex[:12].upper()}"}
            values = {**VALUES, "case_number": str(random.randrange(10**9, 10**10))}
            return _form(d.submission(view, values)), form
        if kind == "message":
            from tests.slackdriver import payload

            event = {
                "type": "message",
                "channel": CHANNEL,
                "channel_type": "channel",
                "user": "U0AGENT01",
                "text": "Checked the EU webhook logs: timeouts start at 09:02.",
                "ts": f"{time.time():.6f}{random.randrange(10)}"[:17],
                "thread_ts": self.thread_ts,
            }
            body = payload("event_message.json")
            body.update(
                team_id=TEAM,
                event=event,
                event_id=f"Ev{uuid.uuid4().hex[:10].upper()}",
                event_time=int(time.time()),
            )
            return json.dumps(body), "application/json"
        raise ValueError(kind)


class _NoWait(TrackingExecutor):
    def wait_idle(self, timeout: float = 15.0) -> None:
        pass


_NO_WAIT = _NoWait()


def _form(body: dict[str, Any]) -> str:
    from urllib.parse import quote

    return f"payload={quote(json.dumps(body))}"


def send(url: str, body: str, content_type: str) -> tuple[int, float]:
    """POST one signed request; (status, seconds to the answer)."""
    from urllib.error import HTTPError
    from urllib.request import Request, urlopen

    from slack_sdk.signature import SignatureVerifier

    ts = str(int(time.time()))
    signature = SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=ts, body=body)
    headers = {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature,
    }
    request = Request(url, data=body.encode(), headers=headers, method="POST")
    started = time.perf_counter()
    try:
        with urlopen(request, timeout=30) as response:
            response.read()
            status = response.status
    except HTTPError as exc:
        status = exc.code
    return status, time.perf_counter() - started


def burst(
    url: str, bodies: list[tuple[str, str]], concurrency: int
) -> tuple[list[float], list[int]]:
    """Send every body at fixed concurrency; (latencies, the statuses that were not 200)."""
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(lambda b: send(url, *b), bodies))
    return [t for _s, t in results], [s for s, _t in results if s != 200]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(len(ordered) * q), len(ordered) - 1)]


# -- one database at one Slack latency --------------------------------------------------------
def seed(fake: FakeSlack, latency: float) -> None:
    fake.reset()
    for user_id, attrs in USERS.items():
        fake.add_user(user_id, **attrs)
    for channel_id, name in CHANNELS.items():
        fake.add_channel(channel_id, name, members=[fake.bot_user_id, *USERS])
    fake.set_latency(latency)


def measure(
    db_url: str, fake: FakeSlack, servers: dict[str, Server], args: argparse.Namespace
) -> dict[str, dict[str, list[tuple[float, float, float]]]]:
    """{target: {kind: [(p50, p99, max) per round]}} and failures printed as they happen."""
    requests = Requests(fake)
    # One case filed through Swarm: the Join button's case and the thread the events land in.
    status, _t = send(servers["swarm"].url, *requests.body("submit"))
    assert status == 200, status
    engine = create_db_engine(db_url)
    deadline = time.monotonic() + 30
    while True:
        with engine.connect() as conn:
            row = conn.execute(
                text("SELECT id, thread_ts FROM cases WHERE thread_ts IS NOT NULL ORDER BY id")
            ).first()
        if row is not None or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    engine.dispose()
    assert row is not None, "the seeding case was never posted"
    requests.case_id, requests.thread_ts = int(row[0]), str(row[1])
    for server in servers.values():  # warm every worker up, unrecorded
        for kind in KINDS:
            burst(server.url, [requests.body(kind) for _ in range(4)], args.concurrency)
    out: dict[str, dict[str, list[tuple[float, float, float]]]] = {
        t: {k: [] for k in KINDS} for t in servers
    }
    for _round in range(args.rounds):
        for kind in KINDS:
            order = list(servers)
            random.shuffle(order)  # no server always goes first
            for target in order:
                bodies = [requests.body(kind) for _ in range(args.requests)]
                times, failed = burst(servers[target].url, bodies, args.concurrency)
                if failed:
                    print(
                        f"  {target} {kind}: {len(failed)} of {len(bodies)} answered"
                        f" {sorted(set(failed))}, not 200",
                        flush=True,
                    )
                out[target][kind].append((pct(times, 0.5), pct(times, 0.99), max(times)))
    return out


def kinds_of(results: dict[str, dict[str, Any]]) -> list[str]:
    return list(next(iter(results.values())))


def report(title: str, results: dict[str, dict[str, list[tuple[float, float, float]]]]) -> None:
    med = {
        t: {
            k: tuple(statistics.median(r[i] for r in rounds) for i in range(3))
            for k, rounds in kinds.items()
        }
        for t, kinds in results.items()
    }
    print(f"\n### {title}\n")
    targets = list(results)
    swarms = [t for t in targets if t.startswith("swarm")]
    print(
        "| request | "
        + " | ".join(f"{t} p50 / p99" for t in targets)
        + " | "
        + " | ".join(f"{t}/pbr p50 | {t}/pbr p99 | {t} max" for t in swarms)
        + " |"
    )
    print("|---" * (1 + len(targets) + 3 * len(swarms)) + "|")
    for kind in kinds_of(results):
        cells = [f"{med[t][kind][0] * 1000:.1f} / {med[t][kind][1] * 1000:.1f}" for t in targets]
        floor = med["bolt-pbr"][kind]
        for t in swarms:
            worst = max(r[2] for r in results[t][kind])
            cells += [
                f"{med[t][kind][0] / floor[0]:.2f}",
                f"{med[t][kind][1] / floor[1]:.2f}",
                f"{worst * 1000:.0f}",
            ]
        print(f"| {kind} | " + " | ".join(cells) + " |")
    print("\n(milliseconds to the HTTP answer; medians over rounds of each round's p50 / p99)")


# -- Socket Mode, in process ------------------------------------------------------------------
def socket_mode(fake: FakeSlack, db_url: str, args: argparse.Namespace) -> None:
    """Envelope ack latency through the Socket Mode handlers, no websocket."""
    import threading

    from slack_bolt.adapter.socket_mode import SocketModeHandler
    from slack_sdk.socket_mode.request import SocketModeRequest

    from bot.app import create_app
    from bot.runtime import build_swarm
    from bot.server import CheckedSocketModeHandler
    from bot.settings import Settings

    class Client:
        """Stands in for the websocket client: records when each envelope is answered."""

        def __init__(self) -> None:
            self.logger = logging.getLogger("bench.socket_mode")
            self.answered: dict[str, float] = {}
            self.done = threading.Condition()

        def send_socket_mode_response(self, response: Any) -> None:
            with self.done:
                self.answered[response.envelope_id] = time.perf_counter()
                self.done.notify_all()

    settings = Settings(
        slack_bot_token=BOT_TOKEN,
        slack_app_token="xapp-1-bench",
        slack_api_url=fake.url,
        database_url=db_url,
    )
    swarm_app = create_app(build_swarm(settings, config=parse_config(TEST_CONFIG)))
    handlers = {
        "swarm": CheckedSocketModeHandler(swarm_app, "xapp-1-bench"),
        "bolt": SocketModeHandler(minimal_app(fake.url, process_before_response=False), "x"),
        "bolt-pbr": SocketModeHandler(minimal_app(fake.url, process_before_response=True), "x"),
    }
    requests = Requests(fake)
    results: dict[str, dict[str, list[tuple[float, float, float]]]] = {
        t: {k: [] for k in ("status", "help", "join")} for t in handlers
    }
    from urllib.parse import parse_qsl

    def envelope(kind: str) -> SocketModeRequest:
        body, _ctype = requests.body(kind)
        if kind in ("status", "help"):
            return SocketModeRequest("slash_commands", str(uuid.uuid4()), dict(parse_qsl(body)))
        return SocketModeRequest(
            "interactive", str(uuid.uuid4()), json.loads(dict(parse_qsl(body))["payload"])
        )

    with create_db_engine(db_url).connect() as conn:
        row = conn.execute(text("SELECT id FROM cases ORDER BY id")).first()
    requests.case_id = int(row[0]) if row else 1
    for _round in range(args.rounds):
        for kind in results["swarm"]:
            for target, handler in handlers.items():
                client = Client()

                def one(req: SocketModeRequest, h: Any = handler, c: Client = client) -> float:
                    started = time.perf_counter()
                    h.handle(c, req)
                    with c.done:
                        c.done.wait_for(lambda: req.envelope_id in c.answered, timeout=10)
                    return c.answered.get(req.envelope_id, time.perf_counter() + 10) - started

                envelopes = [envelope(kind) for _ in range(args.requests)]
                with ThreadPoolExecutor(args.concurrency) as pool:
                    times = list(pool.map(one, envelopes))
                results[target][kind].append((pct(times, 0.5), pct(times, 0.99), max(times)))
    report("Socket Mode envelope acks (in process, no websocket)", results)


# -- throughput (goal 2) ----------------------------------------------------------------------
def count(db_url: str, sql: str) -> int:
    engine = create_db_engine(db_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(sql)).scalar_one())
    finally:
        engine.dispose()


def until(db_url: str, sql: str, target: int, timeout: float = 300.0) -> float:
    """Seconds until `sql` counts `target` rows (polled every 50 ms)."""
    started = time.monotonic()
    while count(db_url, sql) < target and time.monotonic() - started < timeout:
        time.sleep(0.05)
    return time.monotonic()


def first_posted_case(db_url: str) -> tuple[int, str]:
    """(id, thread ts) of the first case whose card is posted: where message events go."""
    engine = create_db_engine(db_url)
    try:
        with engine.connect() as conn:
            row = conn.execute(
                text("SELECT id, thread_ts FROM cases WHERE thread_ts IS NOT NULL ORDER BY id")
            ).first()
    finally:
        engine.dispose()
    assert row is not None
    return int(row[0]), str(row[1])


def throughput(db: str, db_url: str, fake: FakeSlack, args: argparse.Namespace) -> None:
    """Intake (submission -> card posted) cases/s and thread-message events/s, 1..4 workers."""
    posted = "SELECT count(*) FROM cases WHERE thread_ts IS NOT NULL"
    print(f"\n### Throughput, {db}, fake Slack answering at once\n")
    print("| gunicorn workers | intake cases/s | thread messages recorded/s |")
    print("|---|---|---|")
    for workers in args.throughput_workers:
        seed(fake, 0.0)
        server = Server("swarm", fake.url, db_url, workers, args.threads)
        try:
            server.wait_ready()
            time.sleep(1.0 + workers)
            requests = Requests(fake)
            before = count(db_url, posted)
            send(server.url, *requests.body("submit"))
            until(db_url, posted, before + 1)
            requests.case_id, requests.thread_ts = first_posted_case(db_url)
            rates = []
            for kind, sql in (
                ("submit", posted),
                ("message", f"SELECT count(*) FROM messages WHERE case_id = {requests.case_id}"),
            ):
                bodies = [requests.body(kind) for _ in range(args.throughput_requests)]
                before = count(db_url, sql)
                started = time.monotonic()
                _times, failed = burst(server.url, bodies, args.concurrency)
                done = until(db_url, sql, before + len(bodies) - len(failed))
                rates.append((count(db_url, sql) - before) / (done - started))
            print(f"| {workers} | {rates[0]:.0f} | {rates[1]:.0f} |", flush=True)
        finally:
            server.stop()


def profile(db_url: str, fake: FakeSlack, args: argparse.Namespace) -> None:
    """Where the time of intake and ingestion goes: everything run inline under cProfile."""
    import cProfile
    import io
    import pstats
    from concurrent.futures import Executor, Future

    from bot.runtime import build_http, build_swarm
    from bot.settings import Settings

    class Inline(Executor):
        def submit(self, fn: Callable[..., Any], /, *a: Any, **kw: Any) -> Future[Any]:
            future: Future[Any] = Future()
            future.set_result(fn(*a, **kw))
            return future

    seed(fake, 0.0)
    settings = Settings(
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=fake.url,
        database_url=db_url,
    )
    _app, http = build_http(
        build_swarm(settings, config=parse_config(TEST_CONFIG)), executor=Inline()
    )
    requests = Requests(fake)
    from slack_sdk.signature import SignatureVerifier

    signer = SignatureVerifier(SIGNING_SECRET)

    def call(kind: str) -> None:
        body, ctype = requests.body(kind)
        ts = str(int(time.time()))
        raw = body.encode()
        http(
            {
                "REQUEST_METHOD": "POST",
                "PATH_INFO": "/slack/events",
                "CONTENT_LENGTH": str(len(raw)),
                "CONTENT_TYPE": ctype,
                "wsgi.input": io.BytesIO(raw),
                "HTTP_X_SLACK_REQUEST_TIMESTAMP": ts,
                "HTTP_X_SLACK_SIGNATURE": signer.generate_signature(timestamp=ts, body=body),
            },
            lambda *_a: None,
        )

    call("submit")
    requests.case_id, requests.thread_ts = first_posted_case(db_url)
    for kind in ("submit", "message"):
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        for _ in range(args.throughput_requests // 2):
            call(kind)
        profiler.disable()
        each = (time.perf_counter() - started) / (args.throughput_requests // 2)
        print(f"\n### Profile: {kind}, {each * 1000:.1f} ms each in one thread (cProfile)\n")
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("tottime").print_stats(12)
        stats.sort_stats("cumulative").print_stats(r"/(bot|workflows|storage)/", 12)
        print("```\n" + out.getvalue().strip() + "\n```")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=40, help="per kind, server and round")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument(
        "--latency", type=float, nargs="+", default=[0.0, 1.0], help="fake Slack seconds per call"
    )
    parser.add_argument("--databases", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--socket-mode", action="store_true")
    parser.add_argument(
        "--throughput", action="store_true", help="intake and ingestion rates, then a profile"
    )
    parser.add_argument("--throughput-workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--throughput-requests", type=int, default=200)
    parser.add_argument(
        "--before",
        default="",
        help="another checkout of Swarm (e.g. the commit before a change), served alongside",
    )
    parser.add_argument("--serve", choices=TARGETS, help=argparse.SUPPRESS)
    parser.add_argument("--code", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--fake-url", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.fake_url, args.db, args.workers, args.threads)
        return
    print(
        f"rounds={args.rounds} requests={args.requests} per kind and round,"
        f" concurrency={args.concurrency}, gunicorn {args.workers} worker(s) x"
        f" {args.threads} thread(s)",
        flush=True,
    )
    tmp = Path(tempfile.mkdtemp(prefix="swarm-load-"))
    with throwaway_postgres() as pg_url, FakeSlack(team_id=TEAM) as fake:
        urls = {"sqlite": f"sqlite:///{tmp / 'load.db'}", "postgresql": pg_url}
        for db in args.databases:
            url = urls[db]
            if url is None:
                print(f"\n{db}: not installed, skipped")
                continue
            upgrade(create_db_engine(url))
            for latency in [] if args.throughput else args.latency:
                seed(fake, 0.0)
                targets = [*TARGETS, "swarm-before"] if args.before else TARGETS
                servers = {
                    t: Server(t, fake.url, url, args.workers, args.threads, args.before)
                    for t in targets
                }
                try:
                    for server in servers.values():
                        server.wait_ready()
                    time.sleep(1.0)  # every worker booted
                    fake.set_latency(latency)
                    results = measure(url, fake, servers, args)
                finally:
                    for server in servers.values():
                        server.stop()
                report(f"{db}, fake Slack {latency * 1000:.0f} ms per call", results)
            if args.socket_mode:
                seed(fake, 0.0)
                socket_mode(fake, url, args)
            if args.throughput:
                throughput(db, url, fake, args)
                profile(url, fake, args)


if __name__ == "__main__":
    main()
