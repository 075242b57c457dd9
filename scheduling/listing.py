"""The operator's view of the job store (`swarmbot jobs`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from sqlalchemy import Engine, select, text

from scheduling.scheduler import JOB_TABLE
from storage.models import Case
from workflows import sla


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
