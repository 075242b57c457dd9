"""APScheduler on the database's job store, resumed only while this process leads.

Every process starts it paused: it can arm and cancel timers (rows in the store) but runs
nothing. The others keep trying to take over, so a leader that dies hands over within
`elect_every` seconds.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any

from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger
from psycopg.errors import UniqueViolation
from slack_sdk import WebClient
from sqlalchemy import Engine, delete, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from bot.context import Swarm
from scheduling.job_rows import JOB_DEFAULTS, TIMER_FUNC, JobRows, Row
from scheduling.leadership import Never, leadership_for
from scheduling.sweeps import SWEEPS, Runtime, set_runtime
from storage.db import create_db_engine
from storage.migrate import FOREIGN_TABLES
from workflows import sla

log = logging.getLogger(__name__)

JOB_TABLE = FOREIGN_TABLES[0]
SWEEP_FUNC = "scheduling.sweeps:run_sweep"
KIND_BITS = {kind: 1 << n for n, kind in enumerate(sla.KINDS)}
RECONCILE_PAGE = 2000


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
        reconcile_page: int = RECONCILE_PAGE,
    ) -> None:
        self.runtime = Runtime(swarm, client, self)
        self.config = swarm.config
        self.uow = swarm.uow
        self.poll = poll
        self.elect_every = elect_every
        self.reconcile_page = reconcile_page
        self.engine = create_db_engine(swarm.settings.database_url)
        self.store = SQLAlchemyJobStore(engine=self.engine, tablename=JOB_TABLE)
        self.job_rows = JobRows()
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
        """Add the timers open cases need but the store lacks; drop those no case needs.

        Streams: the stored timers become one byte per case id (a bit per kind); the open
        cases are read a page at a time as (id, the kinds of timers it needs), worked out by
        the database; only the cases missing some are read whole, and their missing timers
        inserted page by page. The memory it takes does not grow with the number of timers
        (100,000 open cases: a few MiB, where sets of 400,000 ids took 140 MiB), and a
        restart with nothing missing computes no timer in Python."""
        table = self.store.jobs_t
        stored = bytearray()
        with self.engine.connect() as connection:
            ids = connection.execution_options(yield_per=self.reconcile_page).scalars(
                select(table.c.id).where(table.c.id.like("sla:%"))
            )
            for job in ids:
                parsed = sla.parse_job_id(job)  # timers only, not the sla: sweeps
                if parsed is not None:
                    case_id, kind = parsed
                    if case_id >= len(stored):
                        stored.extend(bytes(case_id + 1 - len(stored) + len(stored) // 2))
                    stored[case_id] |= KIND_BITS[kind]
        armed, after = 0, 0
        while True:
            last, lacking = self._lacking(after, stored)
            if last is None:
                break
            missing = [
                self._row(timer)
                for row, held in lacking
                for timer in sla.timers_of(row, self.config)
                if not held & KIND_BITS[timer.kind]
            ]
            if missing:
                self._insert(missing)
                armed += len(missing)
            after = last
        unneeded = [
            sla.job_id(case_id, kind)
            for case_id, bits in enumerate(stored)
            if bits
            for kind, bit in KIND_BITS.items()
            if bits & bit
        ]
        page = self.reconcile_page
        for start in range(0, len(unneeded), page):
            with self.engine.begin() as connection:
                connection.execute(
                    delete(table).where(table.c.id.in_(unneeded[start : start + page]))
                )
        if armed or unneeded:
            log.info("scheduler: armed %d missing timer(s), dropped %d", armed, len(unneeded))
            if self.leading:
                self.scheduler.wakeup()
        return armed

    def _lacking(self, after: int, stored: bytearray) -> tuple[int | None, list[tuple[Any, int]]]:
        """The next page of open cases after `after`: the last id read (None past the end),
        and (timer columns, bits of the timers it holds) of each case lacking a timer. Clears
        from `stored` the bits of the timers the page's cases need."""
        page = self.reconcile_page
        with self.uow() as uow:
            if not stored:  # a first start: every case lacks every timer; read them whole
                rows = uow.schedule.open_case_timers(after_id=after, limit=page)
                return (rows[-1].id if rows else None), [(row, 0) for row in rows]
            kinds = uow.schedule.open_case_timer_kinds(
                kind_bits=KIND_BITS, after_id=after, limit=page
            )
            if not kinds:
                return None, []
            short: dict[int, int] = {}
            for case_id, needed in kinds:
                held = stored[case_id] if case_id < len(stored) else 0
                if needed & ~held:
                    short[case_id] = held
                if case_id < len(stored):
                    stored[case_id] = held & ~needed  # what is left is not needed
            last = kinds[-1][0]
            if not short:
                return last, []
            rows = uow.schedule.case_timers(after_id=after, through_id=last)
        return last, [(row, short[row.id]) for row in rows if row.id in short]

    def _row(self, timer: sla.Timer) -> Row:
        """A job store row for a timer, as APScheduler would write it (without a Job:
        building 400,000 of those took most of a first start)."""
        return self.job_rows.row(timer)

    def _insert(self, rows: list[Row]) -> None:
        """Insert job rows (id, next run time, pickled state): COPY on PostgreSQL, the
        driver's executemany on SQLite (SQLAlchemy's per-row parameter handling took as long
        as pickling them)."""
        try:
            with self.engine.begin() as connection:
                if self.engine.dialect.name == "postgresql":
                    _copy_rows(connection, rows)
                else:
                    connection.exec_driver_sql(_INSERT.format(mark="?"), rows)
        except (IntegrityError, UniqueViolation):
            # Another process armed some of them meanwhile: theirs are as good as ours.
            mark = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
            for row in rows:
                try:
                    with self.engine.begin() as connection:
                        connection.exec_driver_sql(_INSERT.format(mark=mark), row)
                except IntegrityError:
                    pass


_INSERT = (
    f"INSERT INTO {JOB_TABLE} (id, next_run_time, job_state) VALUES ({{mark}}, {{mark}}, {{mark}})"
)


def _copy_rows(connection: Any, rows: list[Row]) -> None:
    """Rows into the job table with PostgreSQL's binary COPY."""
    driver = connection.connection.driver_connection
    with driver.cursor() as cursor:
        sql = f"COPY {JOB_TABLE} (id, next_run_time, job_state) FROM STDIN (FORMAT BINARY)"
        with cursor.copy(sql) as copy:
            copy.set_types(["text", "float8", "bytea"])
            for row in rows:
                copy.write_row(row)


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
