"""The similar-cases evaluation set (tests/data/similar_cases.yaml), loaded into a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import Engine, insert

from storage.models import Case, Message, Workspace

CASES_FILE = Path(__file__).resolve().parent / "data" / "similar_cases.yaml"
# Where the set's topics have their swarm channels (tests/conftest.py TEST_CONFIG).
CHANNELS = {"api": "C0API0001", "billing": "C0BILL001"}
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def load_set() -> dict[str, Any]:
    """Resolved cases, held-out repeats and unrelated new cases."""
    return yaml.safe_load(CASES_FILE.read_text(encoding="utf-8"))


def new_case_text(case: dict[str, Any]) -> str:
    """What a filer writes: summary and details."""
    return "\n".join(p for p in (case["summary"], case.get("details", "")) if p)


def load_resolved(engine: Engine, data: dict[str, Any], team_id: str) -> dict[str, int]:
    """The evaluation set's resolved cases and their threads; case ids by key."""
    ids: dict[str, int] = {}
    with engine.begin() as connection:
        connection.execute(insert(Workspace.__table__), [{"team_id": team_id, "created_at": START}])
        for n, item in enumerate(data["resolved"]):
            at = START + timedelta(hours=n)
            thread_ts = f"{int(at.timestamp())}.000100"
            channel = CHANNELS[item["topic"]]
            case_id = connection.execute(
                insert(Case.__table__).returning(Case.__table__.c.id),
                {
                    "team_id": team_id,
                    "case_number": str(40000 + n),
                    "summary": item["summary"],
                    "details": item.get("details", ""),
                    "customer": item.get("customer", ""),
                    "urgency": "medium",
                    "topic_key": item["topic"],
                    "region": "",
                    "status": "resolved",
                    "filer_id": "U0AGENT01",
                    "assignee_id": f"U0EXP{n % 7:04d}",
                    "first_responder_id": f"U0EXP{(n + 3) % 7:04d}",
                    "resolved_by": f"U0EXP{n % 7:04d}",
                    "confidential": False,
                    "channel_id": channel,
                    "thread_ts": thread_ts,
                    "card_attempts": 1,
                    "resolution": item.get("resolution"),
                    "root_cause": item.get("root_cause"),
                    "workaround": item.get("workaround"),
                    "kb_link": item.get("kb_link"),
                    "created_at": at,
                    "updated_at": at,
                    "resolved_at": at + timedelta(hours=2),
                    "vector_due_at": at + timedelta(hours=2),
                },
            ).scalar_one()
            ids[item["key"]] = case_id
            for m, reply in enumerate(item.get("thread", [])):
                connection.execute(
                    insert(Message.__table__),
                    {
                        "team_id": team_id,
                        "case_id": case_id,
                        "channel_id": channel,
                        "ts": f"{int(at.timestamp()) + 60 * (m + 1)}.000200",
                        "thread_ts": thread_ts,
                        "user_id": f"U0EXP{(n + m) % 7:04d}",
                        "is_bot": False,
                        "text": reply,
                        "files": [],
                        "posted_at": at + timedelta(minutes=m + 1),
                    },
                )
    return ids
