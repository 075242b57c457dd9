"""SLA timers on the real APScheduler: arming, cancelling, restarts, one leader per database."""

from __future__ import annotations

import os
import pickle
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.job import Job
from apscheduler.triggers.date import DateTrigger
from apscheduler.util import datetime_to_utc_timestamp
from click.testing import CliRunner
from sqlalchemy import select

from bot.cli import main
from bot.context import Swarm
from bot.gateway import web_client
from bot.runtime import build_swarm
from scheduling.job_rows import JobRows, job_state
from scheduling.listing import pending_jobs
from scheduling.scheduler import KIND_BITS, SwarmScheduler, start_scheduler
from storage.db import create_db_engine
from storage.domain import CaseStatus
from storage.models import Case
from tests.conftest import BOT_TOKEN, TEAM, TEST_CONFIG, FakeClock, RunningBot, settings_for
from tests.fakeslack import FakeSlack
from tests.scenario import filed_case, gateway, reply_event, wait_for
from workflows import sla
from workflows.config import parse_config
from workflows.intake import CaseDraft, file_case, publish_card
from workflows.services import Services

ROOT = Path(__file__).resolve().parent.parent
# Critical cases: first response within 2s (reminder at 1.6s), resolution within 4s.
FAST_CONFIG = TEST_CONFIG.replace(
    "critical: {first_response: 15m, resolution: 4h}",
    "critical: {first_response: 2s, resolution: 4s}",
)


class Harness:
    """Services on one database plus the schedulers a test starts (all shut down after)."""

    def __init__(self, fake: FakeSlack, db_url: str, config_text: str = TEST_CONFIG) -> None:
        self.fake = fake
        self.db_url = db_url
        self.config_text = config_text
        self.swarm = self.services()
        self.engine = create_db_engine(db_url)
        self.schedulers: list[SwarmScheduler] = []

    def services(self) -> Swarm:
        return build_swarm(
            settings_for(self.fake, self.db_url), config=parse_config(self.config_text)
        )

    def scheduler(self, **options: object) -> SwarmScheduler:
        swarm = self.services()
        client = web_client(BOT_TOKEN, self.fake.url)
        scheduler = start_scheduler(swarm, client, poll=0.1, elect_every=0.1, **options)
        self.schedulers.append(scheduler)
        return scheduler

    def file(self, number: str, urgency: str = "critical", at: datetime | None = None) -> int:
        clock = FakeClock(at or datetime.now(UTC))
        draft = CaseDraft(TEAM, "U0AGENT01", number, urgency, "api", f"Case {number}")
        filed = file_case(
            Services(self.swarm.uow, self.swarm.config, gateway(self.fake), clock),
            draft,
        )
        publish_card(
            Services(self.swarm.uow, self.swarm.config, gateway(self.fake), clock),
            filed.case_id,
        )
        return filed.case_id

    def case(self, case_id: int) -> Case:
        with self.swarm.uow() as uow:
            case = uow.cases.get(case_id)
            assert case is not None
            return case

    def jobs(self) -> list[str]:
        rows, _total = pending_jobs(self.engine)
        return [row.job_id for row in rows if sla.parse_job_id(row.job_id)]

    def replies(self, case_id: int) -> list[str]:
        case = self.case(case_id)
        assert case.thread_ts
        return [m["text"] for m in self.fake.thread(case.channel_id, case.thread_ts)[1:]]

    def alerts(self) -> list[str]:
        return [m["text"] for m in self.fake.dms("U0LEAD001")]

    def close(self) -> None:
        for scheduler in reversed(self.schedulers):
            scheduler.shutdown()
        self.engine.dispose()


@pytest.fixture
def harness(fake: FakeSlack, db_url: str) -> Iterator[Harness]:
    h = Harness(fake, db_url, FAST_CONFIG)
    yield h
    h.close()


def test_a_critical_case_is_reminded_then_its_leads_alerted_by_the_scheduler(
    harness: Harness,
) -> None:
    scheduler = harness.scheduler()
    assert scheduler.leading
    case_id = harness.file("27343")
    scheduler.timers.case_changed(case_id)
    assert sorted(harness.jobs()) == sorted(sla.job_id(case_id, k) for k in sla.KINDS)
    wait_for(lambda: len(harness.alerts()) == 2)  # first response, then resolution breached
    replies = harness.replies(case_id)
    assert len(replies) == 2 and "No reply yet" in replies[0] and "resolved" in replies[1]
    assert "first response SLA of 2s" in harness.alerts()[0]
    assert "resolution SLA of 4s" in harness.alerts()[1]
    case = harness.case(case_id)
    assert case.first_response_breached_at and case.resolution_breached_at
    wait_for(lambda: harness.jobs() == [])


def test_first_response_resolve_and_reopen_arm_and_cancel_the_timers(
    harness: Harness,
) -> None:
    scheduler = harness.scheduler()
    case_id = harness.file("27343", urgency="high")  # 1h / 1d: nothing fires during the test
    scheduler.timers.case_changed(case_id)
    assert len(harness.jobs()) == 4
    with harness.swarm.uow() as uow:
        case = uow.cases.get(case_id)
        case.first_response_at = datetime.now(UTC)
        case.status = CaseStatus.SWARMING
        uow.commit()
    scheduler.timers.case_changed(case_id)
    assert sorted(harness.jobs()) == [
        sla.job_id(case_id, "resolution"),
        sla.job_id(case_id, "resolution-reminder"),
    ]
    with harness.swarm.uow() as uow:
        case = uow.cases.get(case_id)
        case.status = CaseStatus.RESOLVED
        case.resolved_at = datetime.now(UTC)
        uow.commit()
    scheduler.timers.case_changed(case_id)
    assert harness.jobs() == []
    with harness.swarm.uow() as uow:
        case = uow.cases.get(case_id)
        case.status = CaseStatus.OPEN
        sla.restart_resolution_clock(uow, harness.swarm.config, case, datetime.now(UTC))
        uow.commit()
    scheduler.timers.case_changed(case_id)
    rows, _ = pending_jobs(scheduler.engine)
    due = {r.kind: r.due for r in rows if r.case_number == "27343"}
    assert set(due) == {"resolution-reminder", "resolution"}
    assert due["resolution"] == harness.case(case_id).resolution_due
    assert harness.replies(case_id) == [] and harness.alerts() == []


def test_changing_urgency_re_arms_the_timers_at_the_new_deadlines(harness: Harness) -> None:
    scheduler = harness.scheduler()
    case_id = harness.file("27343", urgency="low")
    scheduler.timers.case_changed(case_id)
    sla.change_urgency(
        Services(
            harness.swarm.uow,
            config=harness.swarm.config,
            slack=gateway(harness.fake),
            clock=harness.swarm.clock,
            timers=scheduler.timers,
        ),
        team_id=TEAM,
        actor_id="U0LEAD001",
        case_number="27343",
        urgency="critical",
    )
    wait_for(lambda: len(harness.alerts()) == 2)
    assert len(harness.replies(case_id)) == 2


def test_timers_due_while_the_bot_was_down_fire_once_at_start(harness: Harness) -> None:
    first = harness.scheduler()
    case_id = harness.file("27343")
    first.timers.case_changed(case_id)
    first.shutdown()
    harness.schedulers.remove(first)
    assert len(harness.jobs()) == 4
    due = harness.case(case_id).resolution_due
    assert due is not None
    wait_for(lambda: datetime.now(UTC) > due + timedelta(milliseconds=300))
    assert harness.replies(case_id) == [] and harness.alerts() == []  # nobody ran them
    second = harness.scheduler()
    wait_for(lambda: len(harness.alerts()) == 2)
    wait_for(lambda: harness.jobs() == [])
    # Reminders that came due too late to warn are skipped; the breach alerts say it all.
    assert harness.replies(case_id) == []
    second.shutdown()
    harness.schedulers.remove(second)
    third = harness.scheduler()
    assert third.leading and third.reconcile() == 0
    third.scheduler.wakeup()
    time.sleep(0.5)  # a double would show now: the scheduler polls every 0.1s
    assert harness.replies(case_id) == [] and len(harness.alerts()) == 2


def test_cases_filed_while_no_scheduler_ran_are_armed_when_one_leads(harness: Harness) -> None:
    past = datetime.now(UTC) - timedelta(minutes=5)
    late = harness.file("1001", at=past)
    fresh = harness.file("1002", urgency="high")
    harness.scheduler()
    wait_for(lambda: len(harness.alerts()) == 2)
    # The late case: one alert per target, however late; its reminders came too late to warn.
    assert harness.replies(late) == []
    assert sorted(harness.jobs()) == sorted(sla.job_id(fresh, k) for k in sla.KINDS)


def test_one_scheduler_leads_per_database_and_another_takes_over(harness: Harness) -> None:
    first = harness.scheduler()
    second = harness.scheduler()
    assert first.leading and not second.leading
    armer = harness.scheduler(lead=False)
    case_id = harness.file("27343")
    armer.timers.case_changed(case_id)  # a worker that does not lead arms; the leader runs
    first.shutdown()
    harness.schedulers.remove(first)
    wait_for(lambda: second.leading)
    wait_for(lambda: len(harness.alerts()) == 2)
    assert len(harness.replies(case_id)) == 2 and not armer.leading


def test_swarmbot_jobs_lists_pending_timers_by_due_time(
    harness: Harness, fake: FakeSlack, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    scheduler = harness.scheduler(lead=False)
    low = harness.file("1001", urgency="low")
    high = harness.file("1002", urgency="high")
    for case_id in (low, high):
        scheduler.timers.case_changed(case_id)
    monkeypatch.setenv("DATABASE_URL", db_url)
    result = CliRunner().invoke(main, ["jobs"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["due", "(UTC)", "case", "kind"]
    rows = [line.split() for line in lines[1:]]
    assert [(r[2], r[3]) for r in rows] == [
        ("1002", "first-response-reminder"),
        ("1002", "first-response"),
        ("1001", "first-response-reminder"),
        ("1002", "resolution-reminder"),
        ("1001", "first-response"),
        ("1002", "resolution"),
        ("1001", "resolution-reminder"),
        ("1001", "resolution"),
    ]
    stamps = [f"{r[0]} {r[1]}" for r in rows]
    assert stamps == sorted(stamps)
    limited = CliRunner().invoke(main, ["jobs", "--limit", "3"])
    assert "... 5 more" in limited.output


def test_swarmbot_jobs_says_so_when_nothing_is_pending(
    harness: Harness, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    result = CliRunner().invoke(main, ["jobs"])
    assert result.exit_code == 0 and "no pending jobs" in result.output


# -- several processes on one PostgreSQL ----------------------------------------------------
def spawn(db_url: str, fake: FakeSlack, config: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.scheduler_process", db_url, fake.url, str(config)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


@pytest.mark.parametrize("backend", ["postgresql"])
def test_two_processes_fire_every_timer_exactly_once_and_hand_over_when_one_dies(
    fake: FakeSlack, db_url: str, tmp_path: Path
) -> None:
    harness = Harness(fake, db_url, FAST_CONFIG)
    config = tmp_path / "swarm.yaml"
    config.write_text(FAST_CONFIG)
    armer = harness.scheduler(lead=False)
    processes = [spawn(db_url, fake, config) for _ in range(2)]
    try:
        # Timers are armed only once a process leads: a start slower than the 1.6 s reminder
        # would otherwise find reminder and breach both due, and rightly skip the reminder.
        leader = _leader_of(processes)
        first_batch = [harness.file(f"10{i:02d}") for i in range(8)]
        for case_id in first_batch:
            armer.timers.case_changed(case_id)
        wait_for(lambda: len(harness.alerts()) == 16, timeout=40)
        leader.send_signal(signal.SIGKILL)
        leader.wait(timeout=10)
        second_batch = [harness.file(f"20{i:02d}") for i in range(8)]
        for case_id in second_batch:
            armer.timers.case_changed(case_id)
        wait_for(lambda: len(harness.alerts()) == 32, timeout=40)
        time.sleep(0.5)  # a double would show now
        assert len(harness.alerts()) == 32
        for case_id in first_batch + second_batch:
            assert len(harness.replies(case_id)) == 2, case_id
        with harness.swarm.uow() as uow:
            marked = uow.session.scalars(
                select(Case.id).where(Case.resolution_breached_at.is_not(None))
            ).all()
        assert len(marked) == 16
    finally:
        for process in processes:
            if process.poll() is None:
                process.stdin.close()
                process.wait(timeout=20)
        harness.close()


def _leader_of(processes: list[subprocess.Popen], timeout: float = 60) -> subprocess.Popen:
    """The process that prints LEAD (only one does while both live), waiting for it to start."""
    with selectors.DefaultSelector() as selector:
        for process in processes:
            selector.register(process.stdout, selectors.EVENT_READ, process)
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            for key, _ in selector.select(left):
                line = key.data.stdout.readline()
                if line.startswith("LEAD"):
                    time.sleep(0.5)  # a second leader would have spoken by now
                    others = [p for p in processes if p is not key.data]
                    for other in others:
                        os.set_blocking(other.stdout.fileno(), False)
                    assert not any((o.stdout.readline() or "").startswith("LEAD") for o in others)
                    return key.data
                if not line:
                    selector.unregister(key.fileobj)
    raise AssertionError("no scheduler process took the lead")


def test_the_leader_keeps_its_periodic_sweeps_across_restarts(harness: Harness) -> None:
    first = harness.scheduler()
    sweeps = {
        "cards:retry",
        "sla:reconcile",
        "sla:stale",
        "digest:daily",
        "incidents:archive",
        "escalations:resume",
    }
    assert sweeps <= {job.id for job in first.scheduler.get_jobs()}
    digest = first.scheduler.get_job("digest:daily").next_run_time
    assert (digest.hour, digest.minute) == (9, 0)
    first.reconcile()
    first.shutdown()
    harness.schedulers.remove(first)
    second = harness.scheduler()
    assert sweeps <= {job.id for job in second.scheduler.get_jobs()}
    # Kept, not re-added: a digest missed while down still runs at start.
    assert second.scheduler.get_job("digest:daily").next_run_time == digest


# -- the app with real timers ----------------------------------------------------------------
@pytest.fixture
def scheduled_bot(bot: RunningBot, fake: FakeSlack) -> Iterator[RunningBot]:
    """The HTTP app whose workflows arm timers in the job store (nothing runs them here)."""
    scheduler = SwarmScheduler(bot.swarm, web_client(BOT_TOKEN, fake.url), lead=False).start()
    bot.swarm.timers = scheduler.timers
    yield bot
    scheduler.shutdown()


def timers_in_store(bot: RunningBot) -> dict[str, datetime | None]:
    engine = create_db_engine(bot.swarm.settings.database_url)
    try:
        rows, _ = pending_jobs(engine)
    finally:
        engine.dispose()
    return {r.kind: r.due for r in rows if sla.parse_job_id(r.job_id)}


def test_filing_arms_a_reply_cancels_and_urgency_moves_the_timers_end_to_end(
    scheduled_bot: RunningBot, fake: FakeSlack, clock: FakeClock
) -> None:
    bot = scheduled_bot
    case = filed_case(bot, fake)  # high: 1h / 1d
    assert set(timers_in_store(bot)) == set(sla.KINDS)
    clock.advance(minutes=5)
    bot.driver.event(reply_event(case, "Looking at the webhook logs now"))
    assert set(timers_in_store(bot)) == {"resolution-reminder", "resolution"}
    bot.driver.command("urgency 27343 critical", user="U0LEAD001", channel="C0API0001")
    timers = timers_in_store(bot)
    assert set(timers) == {"resolution-reminder", "resolution"}
    assert timers["resolution"] == case.created_at + timedelta(hours=4)


def test_reconciling_page_by_page_arms_what_is_missing_and_drops_what_no_case_needs(
    harness: Harness,
) -> None:
    cases = [harness.file(str(1000 + n), urgency="high") for n in range(5)]
    leader = harness.scheduler(reconcile_page=2)  # 5 open cases: three pages
    assert sorted(harness.jobs()) == sorted(sla.job_id(c, k) for c in cases for k in sla.KINDS)
    lost, gone = cases[1], cases[3]
    table = leader.store.jobs_t
    with harness.engine.begin() as connection:  # a crash lost two of one case's timers
        connection.execute(
            table.delete().where(table.c.id.in_([sla.job_id(lost, k) for k in sla.KINDS[:2]]))
        )
        # A case resolved while its timers stayed behind.
        connection.execute(
            Case.__table__.update().where(Case.id == gone).values(status=CaseStatus.RESOLVED)
        )
    assert leader.reconcile() == 2
    assert sorted(harness.jobs()) == sorted(
        sla.job_id(c, k) for c in cases if c != gone for k in sla.KINDS
    )
    assert leader.reconcile() == 0  # nothing left to do


def test_a_timer_row_written_by_reconciliation_is_the_job_apscheduler_would_store(
    harness: Harness,
) -> None:
    case_id = harness.file("27343", urgency="high")
    leader = harness.scheduler()
    [timer, *_] = sla.timers_of(harness.case(case_id), leader.config)
    row = leader._row(timer)
    expected = Job(
        leader.scheduler,
        id=timer.job_id,
        func="scheduling.sweeps:run_timer",
        trigger=DateTrigger(run_date=timer.due, timezone=UTC),
        executor="default",
        args=(timer.case_id, timer.kind),
        kwargs={},
        name=timer.job_id,
        next_run_time=timer.due,
        misfire_grace_time=None,
        coalesce=True,
        max_instances=1,
    ).__getstate__()
    assert row[0] == timer.job_id
    assert abs(row[1] - datetime_to_utc_timestamp(timer.due)) < 1e-6
    state = pickle.loads(row[2])
    assert state.pop("trigger").__getstate__() == expected.pop("trigger").__getstate__()
    assert state == expected
    stored = leader.scheduler.get_job(timer.job_id)  # armed at start: the same row, loaded
    assert stored is not None and stored.next_run_time == timer.due
    assert stored.args == (case_id, timer.kind)


def test_job_rows_from_templates_are_byte_for_byte_what_pickle_gives() -> None:
    """A first start pickles 400,000 job states by filling in templates; every shape of
    timer (each kind, case ids of every width and pickle encoding, due times alike and not)
    must come out exactly as pickle.dumps of the state writes it."""
    rows = JobRows()
    due = datetime(2026, 11, 29, 9, 30, 15, 123456, tzinfo=UTC)
    case_ids = [1, 9, 10, 255, 256, 999, 1000, 65535, 65536, 99999, 100000, 2**31 - 1, 2**31, 2**40]
    for n, case_id in enumerate(case_ids * 3):
        for kind in sla.KINDS:
            moment = due + timedelta(seconds=n * 7919, microseconds=n) if n % 3 else due
            timer = sla.Timer(case_id=case_id, kind=kind, due=moment)
            assert rows.state(timer) == pickle.dumps(job_state(timer), pickle.HIGHEST_PROTOCOL)
            assert rows.row(timer)[:2] == (timer.job_id, datetime_to_utc_timestamp(moment))
    assert any(t is not None for t in rows._templates.values())  # the fast path ran
    assert None in rows._templates.values()  # ids 0-9: "K\x01" is also the version


def test_timers_another_process_armed_meanwhile_are_kept_not_an_error(
    harness: Harness,
) -> None:
    """Reconciliation inserts a page of rows at once (COPY on PostgreSQL); when another
    process armed one of them in between, the rest still go in, one by one."""
    case_id = harness.file("27343", urgency="high")
    leader = harness.scheduler()
    timers = sla.timers_of(harness.case(case_id), leader.config)
    with leader.engine.begin() as connection:
        connection.execute(
            leader.store.jobs_t.delete().where(leader.store.jobs_t.c.id.like("sla:%"))
        )
    leader._insert([leader._row(timers[0])])  # the other process's
    leader._insert([leader._row(t) for t in timers])
    assert sorted(harness.jobs()) == sorted(t.job_id for t in timers)


def test_the_database_works_out_the_same_timer_kinds_as_timers_of(harness: Harness) -> None:
    """Reconciliation asks the database which kinds of timers each open case needs; that
    rule must be `sla.timers_of`'s, for every combination of the columns it reads."""
    case_id = harness.file("27343", urgency="high")
    columns = (
        "first_response_due",
        "first_response_at",
        "first_response_breached_at",
        "first_response_reminded_at",
        "resolution_due",
        "resolution_breached_at",
        "resolution_reminded_at",
    )
    moment = datetime(2026, 11, 29, 12, tzinfo=UTC)
    for combination in range(2 ** len(columns)):
        with harness.swarm.uow() as uow:
            case = uow.cases.get(case_id)
            assert case is not None
            for n, column in enumerate(columns):
                setattr(case, column, moment if combination >> n & 1 else None)
            uow.commit()
        with harness.swarm.uow() as uow:
            [(found, needed)] = uow.schedule.open_case_timer_kinds(kind_bits=KIND_BITS)
            [row] = uow.schedule.case_timers(after_id=case_id - 1, through_id=case_id)
        expected = sum(KIND_BITS[t.kind] for t in sla.timers_of(row, harness.swarm.config))
        assert (found, needed) == (case_id, expected), [
            c for n, c in enumerate(columns) if combination >> n & 1
        ]
