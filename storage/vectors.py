"""Case vectors: stored in `case_vectors`, searched in memory (exact cosine over a float32 matrix).

Each process keeps one `VectorIndex`: it loads every stored vector once, then before each
search reads only the rows embedded since its last look, so vectors written by another process
(or worker) are seen at once. At 100,000 cases the matrix takes 100,000 x 384 x 4 bytes
(about 147 MiB) and a search is one matrix-vector product.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from storage.models import CaseVector

# A vector committed late (embedded before, committed after a newer one) or stamped by a
# process whose clock is a little behind is still found: each refresh re-reads this much
# before the newest time it has seen.
REFRESH_OVERLAP = timedelta(seconds=30)
# How often the overlap is re-read even when no newer vector was stored.
RECHECK = timedelta(seconds=10)
# Rows read from the database at a time: the first load does not hold every row's bytes at once.
READ_BATCH = 5000
DTYPE = np.float32


def to_bytes(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype=DTYPE).tobytes()


def from_bytes(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype=DTYPE)


def save_vector(
    session: Session,
    *,
    case_id: int,
    team_id: str,
    model: str,
    vector: np.ndarray,
    embedded_at: datetime,
) -> None:
    """Insert or replace a case's vector."""
    values = {
        "case_id": case_id,
        "team_id": team_id,
        "model": model,
        "vector": to_bytes(vector),
        "embedded_at": embedded_at,
    }
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(CaseVector).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=[CaseVector.case_id],
        set_={k: statement.excluded[k] for k in ("team_id", "model", "vector", "embedded_at")},
    )
    session.execute(statement)


@dataclass(frozen=True)
class Neighbour:
    case_id: int
    score: float


class VectorIndex:
    """Every stored vector of one model in one matrix; exact nearest neighbours by cosine."""

    def __init__(self, model: str, dimension: int) -> None:
        self.model = model
        self.dimension = dimension
        self._lock = threading.Lock()
        self._matrix = np.zeros((0, dimension), dtype=DTYPE)
        self._case_ids = np.zeros(0, dtype=np.int64)
        self._teams = np.zeros(0, dtype=np.int32)
        self._team_numbers: dict[str, int] = {}
        self._rows: dict[int, int] = {}
        self._size = 0
        self._seen: datetime | None = None
        self._checked = 0.0

    def __len__(self) -> int:
        return self._size

    @property
    def nbytes(self) -> int:
        """Memory held by the vectors and their ids (allocated capacity)."""
        return self._matrix.nbytes + self._case_ids.nbytes + self._teams.nbytes

    def has_team(self, team_id: str) -> bool:
        """Whether any vector of this workspace is loaded."""
        return team_id in self._team_numbers

    def _grow(self, needed: int) -> None:
        capacity = len(self._case_ids)
        if needed <= capacity:
            return
        capacity = max(needed, capacity + capacity // 8, 1024)
        matrix = np.zeros((capacity, self.dimension), dtype=DTYPE)
        matrix[: self._size] = self._matrix[: self._size]
        case_ids = np.zeros(capacity, dtype=np.int64)
        case_ids[: self._size] = self._case_ids[: self._size]
        teams = np.full(capacity, -1, dtype=np.int32)
        teams[: self._size] = self._teams[: self._size]
        self._matrix, self._case_ids, self._teams = matrix, case_ids, teams

    def put(self, case_id: int, team_id: str, vector: np.ndarray) -> None:
        """Add or replace one vector."""
        with self._lock:
            self._put(case_id, team_id, vector)

    def _put(self, case_id: int, team_id: str, vector: np.ndarray) -> None:
        team = self._team_numbers.setdefault(team_id, len(self._team_numbers))
        row = self._rows.get(case_id)
        if row is None:
            self._grow(self._size + 1)
            row = self._size
            self._size += 1
            self._rows[case_id] = row
            self._case_ids[row] = case_id
        self._matrix[row] = vector
        self._teams[row] = team

    def refresh(self, session: Session) -> int:
        """Read the vectors stored since the last refresh (all of them the first time)."""
        query = select(
            CaseVector.case_id, CaseVector.team_id, CaseVector.vector, CaseVector.embedded_at
        ).where(CaseVector.model == self.model)
        if self._seen is not None:
            # Nothing newer stored: skip the range read, which PostgreSQL plans as a scan of the
            # whole table once the statement is prepared (a max() is one index probe). The
            # overlap is still re-read every RECHECK, for vectors committed late.
            newest_stored = session.scalar(select(func.max(CaseVector.embedded_at)))
            fresh = time.monotonic() - self._checked < RECHECK.total_seconds()
            if fresh and (newest_stored is None or newest_stored <= self._seen):
                return 0
            query = (
                query.where(CaseVector.embedded_at >= self._seen - REFRESH_OVERLAP)
                .order_by(CaseVector.embedded_at)
                .limit(READ_BATCH)
            )
        self._checked = time.monotonic()
        if self._seen is None:  # the first load: room for every stored vector at once
            total = session.scalar(
                select(func.count()).select_from(CaseVector).where(CaseVector.model == self.model)
            )
            with self._lock:
                self._grow(int(total or 0))
        count = 0
        newest = self._seen
        if self._seen is None:  # streamed: the first load does not hold every row at once
            query = query.execution_options(yield_per=READ_BATCH)
        rows = session.execute(query)
        with self._lock:
            for case_id, team_id, data, embedded_at in rows:
                vector = from_bytes(data)
                if vector.shape != (self.dimension,):
                    continue
                self._put(case_id, team_id, vector)
                newest = embedded_at if newest is None else max(newest, embedded_at)
                count += 1
            self._seen = newest
        return count

    def nearest(
        self,
        team_id: str,
        vector: np.ndarray,
        *,
        k: int,
        exclude: Sequence[int] = (),
    ) -> list[Neighbour]:
        """The k vectors of the team closest to `vector` (a unit vector), best first."""
        with self._lock:
            team = self._team_numbers.get(team_id)
            if team is None or self._size == 0:
                return []
            size = self._size
            scores = self._matrix[:size] @ np.asarray(vector, dtype=DTYPE)
            scores[self._teams[:size] != team] = -np.inf
            for case_id in exclude:
                row = self._rows.get(case_id)
                if row is not None:
                    scores[row] = -np.inf
            case_ids = self._case_ids[:size]
        k = min(k, size)
        top = np.argpartition(-scores, k - 1)[:k] if k < size else np.arange(size)
        top = top[np.argsort(-scores[top], kind="stable")]
        return [
            Neighbour(int(case_ids[i]), float(scores[i])) for i in top if np.isfinite(scores[i])
        ]
