"""APScheduler on the database's job store, resumed only while this process leads.

Every process starts it paused: it can arm and cancel timers (rows in the store) but runs
nothing. The others keep trying to take over, so a leader that dies hands over within
`elect_every` seconds.
"""

from __future__ import annotations

import contextlib
import logging
import pickle
import threading
import time
from datetime import UTC, datetime
from typing import Any

from apscheduler.job import Job
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.util import datetime_to_utc_timestamp
from slack_sdk import WebClient
from sqlalchemy import Engine, delete, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from bot.context import Swarm
from scheduling.leadership import Never, leadership_for
from scheduling.sweeps import SWEEPS, Runtime, set_runtime
from storage.db import create_db_engine
from storage.migrate import FOREIGN_TABLES
from workflows import sla

log = logging.getLogger(__name__)

JOB_TABLE = FOREIGN_TABLES[0]
JOB_DEFAULTS = {"misfire_grace_time": None, "coalesce": True, "max_instances": 1}
TIMER_FUNC = "scheduling.sweeps:run_timer"
SWEEP_FUNC = "scheduling.sweeps:run_sweep"


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
        self.runtime = Runtime(swarm, client, self)
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
        self.leading = True
        set_runtime(self.runtime)
        log.info("scheduler: this process leads; running scheduled work")
        try:
            self.install_sweeps()
            self.reconcile()
        except SQLAlchemyError:
            log.exception("scheduler: could not prepare the jobs; will retry at the next sweep")
        self.scheduler.resume()

    def _demote(self) -> None:
        if self.scheduler.running and self.leading:
            self.scheduler.pause()
        if self.leading:
            set_runtime(None)
        self.leading = False
        self.leadership.release()

    # jobs
    def install_sweeps(self) -> None:
        """Add the periodic jobs; keep those already stored, so a missed run still happens."""
        for sweep in SWEEPS:  # by id: loading every stored job would unpickle every timer
            trigger = sweep.trigger(self.config)
            existing = self.scheduler.get_job(sweep.name)
            if existing is not None and str(existing.trigger) == str(trigger):
                continue
            first = {"next_run_time": datetime.now(UTC)} if sweep.at_start else {}
            self.scheduler.add_job(
                SWEEP_FUNC,
                trigger,
                args=[sweep.name],
                id=sweep.name,
                name=sweep.name,
                replace_existing=True,
                **first,
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


def start_scheduler(swarm: Swarm, client: WebClient, **options: Any) -> SwarmScheduler:
    """Start this process's scheduler and make it the swarm's Timers."""
    scheduler = SwarmScheduler(swarm, client, **options).start()
    swarm.timers = scheduler.timers
    return scheduler
