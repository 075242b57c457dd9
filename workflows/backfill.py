"""Backfill the case record from Slack: threads (and incident channels) the bot did not hear."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select

from storage.models import Case
from workflows import record
from workflows.services import Services


@dataclass
class Checkpoint:
    """Cases a run has finished, kept in a small file so an interrupted run resumes after them.

    The file is keyed by the run's arguments: another selection starts afresh. It is removed
    when the run completes. Messages of a case cut off midway are fetched again and stored
    once (the record is unique per channel and ts).
    """

    path: Path | None
    key: str
    done: set[int] = field(default_factory=set)

    @classmethod
    def load(cls, path: Path | None, key: str) -> Checkpoint:
        if path is None or not path.exists():
            return cls(path, key)
        try:
            saved = json.loads(path.read_text())
        except (OSError, ValueError):
            return cls(path, key)
        if saved.get("key") != key:
            return cls(path, key)
        return cls(path, key, {int(i) for i in saved.get("done", [])})

    def mark(self, case_id: int) -> None:
        self.done.add(case_id)
        if self.path is None:
            return
        temp = self.path.with_suffix(self.path.suffix + ".tmp")
        temp.write_text(json.dumps({"key": self.key, "done": sorted(self.done)}))
        os.replace(temp, self.path)

    def finish(self) -> None:
        if self.path is not None and self.path.exists():
            self.path.unlink()


@dataclass(frozen=True)
class Selection:
    channel_id: str | None = None
    since: datetime | None = None

    @property
    def key(self) -> str:
        return json.dumps({"channel": self.channel_id, "since": str(self.since)})


def cases_to_reindex(services: Services, selection: Selection) -> list[int]:
    """Ids of cases with a posted card, in a channel (swarm or incident) and filed since."""
    with services.uow() as uow:
        query = select(Case.id).where(Case.thread_ts.is_not(None))
        if selection.channel_id:
            query = query.where(
                or_(
                    Case.channel_id == selection.channel_id,
                    Case.incident_channel_id == selection.channel_id,
                )
            )
        if selection.since is not None:
            query = query.where(Case.created_at >= selection.since)
        return list(uow.session.scalars(query.order_by(Case.id)))


def _store(services: Services, team_id: str, channel_id: str, raw: dict[str, Any]) -> bool:
    if raw.get("subtype") not in record.SAID or not raw.get("ts"):
        return False
    message = record.from_slack(team_id, channel_id, raw)
    if raw.get("edited"):
        done = record.edit(services, message, edited_ts=raw["edited"].get("ts"), live=False)
    else:
        done = record.record(services, message, live=False)
    return done is not None


def reindex_case(services: Services, case_id: int) -> int:
    """Load one case's thread (and incident channel) from Slack; return how many were new."""
    with services.uow() as uow:
        case = uow.cases.get(case_id)
        if case is None or case.thread_ts is None:
            return 0
        team_id, channel_id, thread_ts = case.team_id, case.channel_id, case.thread_ts
        incident = case.incident_channel_id
    stored = 0
    for raw in services.slack.thread_replies(channel_id, thread_ts):
        if raw.get("ts") != thread_ts:  # the card is the case itself
            stored += _store(services, team_id, channel_id, raw)
    if incident:
        for raw in services.slack.channel_history(incident):
            stored += _store(services, team_id, incident, raw)
            if raw.get("reply_count") and raw.get("ts"):
                for reply in services.slack.thread_replies(incident, raw["ts"]):
                    if reply.get("ts") != raw["ts"]:
                        stored += _store(services, team_id, incident, reply)
    return stored


def reindex(
    services: Services,
    case_ids: list[int],
    checkpoint: Checkpoint,
    progress: Callable[[int], None] = lambda _n: None,
) -> tuple[int, int]:
    """Reindex the cases not done yet; return (cases done now, messages newly stored)."""
    cases = messages = 0
    for case_id in case_ids:
        if case_id in checkpoint.done:
            progress(1)
            continue
        messages += reindex_case(services, case_id)
        checkpoint.mark(case_id)
        cases += 1
        progress(1)
    checkpoint.finish()
    return cases, messages
