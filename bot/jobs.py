"""Scheduled work of a running bot: SLA timers and periodic sweeps, run by one leader process.

Every process starts an APScheduler on a persistent job store in DATABASE_URL, paused: it can
arm and cancel timers (they are rows in the store) but runs nothing. One process per database
is the leader (a PostgreSQL advisory lock held on its own connection, or a file lock next to a
SQLite database); only the leader resumes its scheduler, so each job fires once. The others
keep trying to take over, so a leader that dies hands over within `elect_every` seconds. Job
bodies claim their work in the database before they send, so even a job run twice sends once.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import pickle
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.job import Job
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from apscheduler.util import datetime_to_utc_timestamp
from slack_sdk import WebClient
from sqlalchemy import Connection, Engine, delete, select, text
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from bot.context import Swarm
from storage.db import create_db_engine
from storage.migrate import FOREIGN_TABLES
from storage.models import Case
from workflows import announcements, escalation, sla
from workflows.intake import publish_pending

log = logging.getLogger(__name__)

JOB_TABLE = FOREIGN_TABLES[0]
RETRY_CARDS_EVERY = timedelta(seconds=60)
RECONCILE_EVERY = timedelta(minutes=5)
ARCHIVE_EVERY = timedelta(minutes=15)
STALE_SWEEP_MAX = timedelta(minutes=5)
JOB_DEFAULTS = {"misfire_grace_time": None, "coalesce": True, "max_instances": 1}
TIMER_FUNC = "bot.jobs:run_timer"
AT_START = ("cards:retry", "escalations:resume", "posts:retry")
SWEEP_FUNC = "bot.jobs:run_sweep"


# -- what the jobs run -----------------------------------------------------------------------
@dataclass
class Runtime:
    """What job bodies need: the services and a Slack client."""

    swarm: Swarm
    client: WebClient

    def slack(self):  # type: ignore[no-untyped-def]
        return self.swarm.slack(self.client)


_active: Runtime | None = None
_active_lock = threading.Lock()


def _runtime() -> Runtime:
    with _active_lock:
        if _active is None:
            raise RuntimeError("a scheduled job ran in a process that is not the leader")
        return _active


def _set_runtime(runtime: Runtime | None) -> None:
    global _active
    with _active_lock:
        _active = runtime


def run_timer(case_id: int, kind: str) -> None:
    """Job body of an SLA timer (referenced by name from the job store)."""
    rt = _runtime()
    sla.fire_timer(rt.swarm.uow, rt.swarm.config, rt.slack(), rt.swarm.clock, case_id, kind)


def retry_pending_cards(rt: Runtime) -> None:
    """Post the cards (and filer notes) that Slack did not take earlier."""
    posted = publish_pending(rt.swarm.uow, rt.swarm.config, rt.slack(), rt.swarm.clock)
    if posted:
        log.info("posted %d pending case card(s)", posted)


def nudge_stale_swarms(rt: Runtime) -> None:
    nudged = sla.nudge_stale(rt.swarm.uow, rt.swarm.config, rt.slack(), rt.swarm.clock)
    if nudged:
        log.info("nudged %d quiet case thread(s)", nudged)


def post_digests(rt: Runtime) -> None:
    sent = sla.send_digests(rt.swarm.uow, rt.swarm.config, rt.slack(), rt.swarm.clock)
    log.info("posted the daily digest to %d swarm channel(s)", sent)


def archive_incidents(rt: Runtime) -> None:
    archived = escalation.archive_resolved_incidents(
        rt.swarm.uow, rt.swarm.config, rt.slack(), rt.swarm.clock
    )
    if archived:
        log.info("archived %d incident channel(s)", archived)


def retry_owed_posts(rt: Runtime) -> None:
    """Send the messages (resolutions, reopen notes) Slack did not take earlier."""
    sent = announcements.deliver_owed(rt.swarm.uow, rt.slack(), rt.swarm.clock)
    if sent:
        log.info("sent %d owed message(s)", sent)


def resume_escalations(rt: Runtime) -> None:
    """Finish escalations Slack stopped half-way (also those of a process that died)."""
    finished = escalation.resume_interrupted(
        rt.swarm.uow, rt.swarm.config, rt.slack(), rt.swarm.clock
    )
    if finished:
        log.info("finished %d interrupted escalation(s)", finished)


def reconcile_timers(rt: Runtime) -> None:
    scheduler = _leader_scheduler()
    if scheduler is not None:
        scheduler.reconcile()


SWEEPS: dict[str, Callable[[Runtime], None]] = {
    "cards:retry": retry_pending_cards,
    "sla:reconcile": reconcile_timers,
    "sla:stale": nudge_stale_swarms,
    "digest:daily": post_digests,
    "incidents:archive": archive_incidents,
    "escalations:resume": resume_escalations,
    "posts:retry": retry_owed_posts,
}


def run_sweep(name: str) -> None:
    """Job body of a periodic sweep (referenced by name from the job store)."""
    SWEEPS[name](_runtime())


# -- who leads -------------------------------------------------------------------------------
class Leadership:
    """Exclusive right to run the scheduler for one database."""

    def try_acquire(self) -> bool:
        raise NotImplementedError

    def still_held(self) -> bool:
        raise NotImplementedError

    def release(self) -> None:
        raise NotImplementedError


class AdvisoryLock(Leadership):
    """A PostgreSQL session advisory lock on a dedicated connection: gone when the process is."""

    def __init__(self, engine: Engine, name: str = "swarm-scheduler") -> None:
        self.engine = engine
        self.key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        self.connection: Connection | None = None

    def try_acquire(self) -> bool:
        try:
            connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        except SQLAlchemyError as exc:
            log.warning("scheduler election: database unreachable: %s", exc)
            return False
        try:
            held = connection.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key})
        except SQLAlchemyError:
            connection.close()
            return False
        if held:
            self.connection = connection
            return True
        connection.close()
        return False

    def still_held(self) -> bool:
        # A session lock lasts as long as its connection: alive connection, lock held.
        if self.connection is None:
            return False
        try:
            self.connection.execute(text("SELECT 1"))
        except SQLAlchemyError:
            self._drop()
            return False
        return True

    def release(self) -> None:
        if self.connection is None:
            return
        with contextlib.suppress(SQLAlchemyError):
            self.connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
        self._drop()

    def _drop(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(SQLAlchemyError):
                self.connection.close()
            self.connection = None


class FileLock(Leadership):
    """An OS lock on a file next to the SQLite database: released when the process ends."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def try_acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self.fd = fd
        return True

    def still_held(self) -> bool:
        return self.fd is not None

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


class Always(Leadership):
    """An in-memory database has one process: it leads."""

    def __init__(self) -> None:
        self.held = False

    def try_acquire(self) -> bool:
        self.held = True
        return True

    def still_held(self) -> bool:
        return self.held

    def release(self) -> None:
        self.held = False


class Never(Leadership):
    """For processes that arm timers but leave running them to others."""

    def try_acquire(self) -> bool:
        return False

    def still_held(self) -> bool:
        return False

    def release(self) -> None:
        return None


def leadership_for(engine: Engine) -> Leadership:
    """The election that fits the database."""
    if engine.dialect.name == "postgresql":
        return AdvisoryLock(engine)
    database = engine.url.database
    if engine.dialect.name == "sqlite" and database and database != ":memory:":
        return FileLock(Path(f"{database}.scheduler.lock"))
    return Always()


# -- the scheduler ---------------------------------------------------------------------------
_leader: SwarmScheduler | None = None


def _leader_scheduler() -> SwarmScheduler | None:
    with _active_lock:
        return _leader


def ensure_job_table(engine: Engine) -> None:
    """Create the job store's table once, before several processes start."""
    SQLAlchemyJobStore(engine=engine, tablename=JOB_TABLE).jobs_t.create(engine, checkfirst=True)


class SwarmScheduler:
    """APScheduler on the database's job store, resumed only while this process leads."""

    def __init__(
        self,
        swarm: Swarm,
        client: WebClient,
        *,
        poll: float = 5.0,
        elect_every: float = 5.0,
        lead: bool = True,
    ) -> None:
        self.runtime = Runtime(swarm, client)
        self.config = swarm.config
        self.uow = swarm.uow
        self.poll = poll
        self.elect_every = elect_every
        self.engine = create_db_engine(swarm.settings.database_url)
        self.store = SQLAlchemyJobStore(engine=self.engine, tablename=JOB_TABLE)
        self.scheduler = BackgroundScheduler(
            timezone=UTC, jobstores={"default": self.store}, job_defaults=dict(JOB_DEFAULTS)
        )
        # A process that only arms timers (a tool, a test's filer) never runs them.
        self.leadership = leadership_for(self.engine) if lead else Never()
        self.leading = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.timers = ScheduledTimers(self)

    # lifecycle
    def start(self) -> SwarmScheduler:
        """Start paused, then take the lead if no other process has it."""
        ensure_job_table(self.engine)
        self.scheduler.start(paused=True)
        self._elect()
        self._thread = threading.Thread(target=self._watch, name="swarm-scheduler", daemon=True)
        self._thread.start()
        return self

    def shutdown(self) -> None:
        """Stop running jobs, hand over the lead, close the connections."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        self._demote()
        self.engine.dispose()

    def _watch(self) -> None:
        next_election = time.monotonic() + self.elect_every
        while not self._stop.wait(self.poll):
            if self.leading:
                if not self.leadership.still_held():
                    log.warning("scheduler: lost the lead; pausing")
                    self._demote()
                else:
                    # Timers armed by other processes are rows this scheduler has not seen.
                    self.scheduler.wakeup()
            elif time.monotonic() >= next_election:
                next_election = time.monotonic() + self.elect_every
                self._elect()

    def _elect(self) -> None:
        if self.leading or not self.leadership.try_acquire():
            return
        global _leader
        self.leading = True
        _set_runtime(self.runtime)
        with _active_lock:
            _leader = self
        log.info("scheduler: this process leads; running scheduled work")
        try:
            self.install_sweeps()
            self.reconcile()
        except SQLAlchemyError:
            log.exception("scheduler: could not prepare the jobs; will retry at the next sweep")
        self.scheduler.resume()

    def _demote(self) -> None:
        global _leader
        if self.scheduler.running and self.leading:
            self.scheduler.pause()
        if self.leading:
            with _active_lock:
                if _leader is self:
                    _leader = None
            _set_runtime(None)
        self.leading = False
        self.leadership.release()

    # jobs
    def sweeps(self) -> dict[str, Any]:
        """The periodic jobs and their triggers."""
        stale = min(
            STALE_SWEEP_MAX, max(timedelta(seconds=1), self.config.reminders.stale_after / 4)
        )
        triggers: dict[str, Any] = {
            "cards:retry": IntervalTrigger(seconds=RETRY_CARDS_EVERY.total_seconds(), timezone=UTC),
            "sla:reconcile": IntervalTrigger(seconds=RECONCILE_EVERY.total_seconds(), timezone=UTC),
            "sla:stale": IntervalTrigger(seconds=stale.total_seconds(), timezone=UTC),
            "digest:daily": CronTrigger(
                hour=self.config.reminders.digest_hour, minute=0, timezone=UTC
            ),
            "incidents:archive": IntervalTrigger(
                seconds=ARCHIVE_EVERY.total_seconds(), timezone=UTC
            ),
            "escalations:resume": IntervalTrigger(
                seconds=RETRY_CARDS_EVERY.total_seconds(), timezone=UTC
            ),
            "posts:retry": IntervalTrigger(seconds=RETRY_CARDS_EVERY.total_seconds(), timezone=UTC),
        }
        return triggers

    def install_sweeps(self) -> None:
        """Add the periodic jobs; keep those already stored, so a missed run still happens."""
        wanted = self.sweeps()
        for name in SWEEPS:  # by id: loading every stored job would unpickle every timer
            if name not in wanted and self.scheduler.get_job(name) is not None:
                self.scheduler.remove_job(name)
        for name, trigger in wanted.items():
            existing = self.scheduler.get_job(name)
            if existing is not None and str(existing.trigger) == str(trigger):
                continue
            first = datetime.now(UTC) if name in AT_START else None
            self.scheduler.add_job(
                SWEEP_FUNC,
                trigger,
                args=[name],
                id=name,
                name=name,
                replace_existing=True,
                **({"next_run_time": first} if first else {}),
            )

    def arm(self, timers: list[sla.Timer], *, case_id: int) -> None:
        """Store exactly these timers for a case: add or move the wanted, remove the rest."""
        wanted = {t.kind: t for t in timers}
        for kind in sla.KINDS:
            timer = wanted.get(kind)
            if timer is None:
                with contextlib.suppress(JobLookupError):
                    self.scheduler.remove_job(sla.job_id(case_id, kind))
                continue
            self.scheduler.add_job(
                TIMER_FUNC,
                DateTrigger(run_date=timer.due, timezone=UTC),
                args=[case_id, kind],
                id=timer.job_id,
                name=timer.job_id,
                replace_existing=True,
            )

    def reconcile(self) -> int:
        """Add the timers open cases need but the store lacks; drop those no case needs."""
        with self.uow() as uow:
            rows = uow.schedule.open_case_timers()
        table = self.store.jobs_t
        with self.engine.connect() as connection:
            stored = {
                job
                for job in connection.scalars(select(table.c.id).where(table.c.id.like("sla:%")))
                if sla.parse_job_id(job) is not None  # timers only, not the sla: sweeps
            }
        wanted: set[str] = set()
        missing: list[sla.Timer] = []
        for row in rows:
            for timer in sla.timers_of(row, self.config):
                wanted.add(timer.job_id)
                if timer.job_id not in stored:
                    missing.append(timer)
        del rows
        unneeded = [job for job in stored if job not in wanted]
        for start in range(0, len(unneeded), 1000):
            with self.engine.begin() as connection:
                connection.execute(
                    delete(table).where(table.c.id.in_(unneeded[start : start + 1000]))
                )
        for start in range(0, len(missing), 1000):
            self._insert([self._row(t) for t in missing[start : start + 1000]])
        if missing or unneeded:
            log.info(
                "scheduler: armed %d missing timer(s), dropped %d", len(missing), len(unneeded)
            )
            if self.leading:
                self.scheduler.wakeup()
        return len(missing)

    def _row(self, timer: sla.Timer) -> dict[str, Any]:
        job = Job(
            self.scheduler,
            id=timer.job_id,
            func=TIMER_FUNC,
            trigger=DateTrigger(run_date=timer.due, timezone=UTC),
            executor="default",
            args=(timer.case_id, timer.kind),
            kwargs={},
            name=timer.job_id,
            next_run_time=timer.due,
            **JOB_DEFAULTS,
        )
        return {
            "id": job.id,
            "next_run_time": datetime_to_utc_timestamp(job.next_run_time),
            "job_state": pickle.dumps(job.__getstate__(), pickle.HIGHEST_PROTOCOL),
        }

    def _insert(self, rows: list[dict[str, Any]]) -> None:
        table = self.store.jobs_t
        try:
            with self.engine.begin() as connection:
                connection.execute(table.insert(), rows)
        except IntegrityError:
            # Another process armed some of them meanwhile: theirs are as good as ours.
            for row in rows:
                try:
                    with self.engine.begin() as connection:
                        connection.execute(table.insert(), [row])
                except IntegrityError:
                    pass


class ScheduledTimers:
    """The Timers port on the job store: reads a case and arms or cancels its jobs."""

    def __init__(self, owner: SwarmScheduler) -> None:
        self.owner = owner

    def case_changed(self, case_id: int) -> None:
        try:
            with self.owner.uow() as uow:
                case = uow.cases.get(case_id)
                timers = sla.timers_of(case, self.owner.config) if case is not None else []
            self.owner.arm(timers, case_id=case_id)
        except SQLAlchemyError:
            # The case change itself is committed; the leader's reconciliation arms it later.
            log.exception("case %s: timers not re-armed now; reconciliation will", case_id)


# -- operator view ---------------------------------------------------------------------------
@dataclass(frozen=True)
class PendingJob:
    due: datetime | None
    job_id: str
    case_number: str | None
    kind: str


def pending_jobs(engine: Engine, *, limit: int | None = None) -> tuple[list[PendingJob], int]:
    """Stored jobs by due time (first `limit`), and how many there are."""
    table = SQLAlchemyJobStore(engine=engine, tablename=JOB_TABLE).jobs_t
    table.create(engine, checkfirst=True)
    with engine.connect() as connection:
        total = connection.scalar(select(text("count(*)")).select_from(table)) or 0
        query = select(table.c.id, table.c.next_run_time).order_by(
            table.c.next_run_time.is_(None), table.c.next_run_time, table.c.id
        )
        if limit is not None:
            query = query.limit(limit)
        rows = connection.execute(query).all()
        parsed = {row.id: sla.parse_job_id(row.id) for row in rows}
        ids = {p[0] for p in parsed.values() if p}
        numbers = (
            dict(
                connection.execute(select(Case.id, Case.case_number).where(Case.id.in_(ids))).all()
            )
            if ids
            else {}
        )
    out = []
    for row in rows:
        due = datetime.fromtimestamp(row.next_run_time, UTC) if row.next_run_time else None
        timer = parsed[row.id]
        if timer:
            out.append(PendingJob(due, row.id, numbers.get(timer[0], f"#{timer[0]}"), timer[1]))
        else:
            out.append(PendingJob(due, row.id, None, row.id))
    return out, int(total)


def start_scheduler(swarm: Swarm, client: WebClient, **options: Any) -> SwarmScheduler:
    """Start this process's scheduler and make it the swarm's Timers."""
    scheduler = SwarmScheduler(swarm, client, **options).start()
    swarm.timers = scheduler.timers
    return scheduler
