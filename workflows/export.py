"""A case's whole record for people and machines: card fields, timeline, messages, resolution."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import select

from storage.models import Case, Message
from workflows.errors import CaseNotFound, SwarmError
from workflows.services import Services


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def case_record(services: Services, *, case_number: str, team_id: str | None) -> dict[str, Any]:
    """Everything stored about one case, as plain data."""
    with services.uow.read() as uow:
        query = select(Case).where(Case.case_number == case_number.strip())
        if team_id:
            query = query.where(Case.team_id == team_id)
        found = uow.session.scalars(query).all()
        if not found:
            raise CaseNotFound(case_number)
        if len(found) > 1:
            teams = ", ".join(sorted(c.team_id for c in found))
            raise SwarmError(f"Case {case_number} exists in several workspaces ({teams}): --team")
        case = found[0]
        topic = services.config.topic(case.topic_key)
        messages = uow.session.scalars(
            select(Message)
            .where(Message.case_id == case.id)
            .order_by(Message.posted_at, Message.id)
        ).all()
        resolution = None
        if case.resolved_at is not None or case.resolution:
            resolution = {
                "resolved_at": _iso(case.resolved_at),
                "resolved_by": case.resolved_by,
                "resolution": case.resolution,
                "root_cause": case.root_cause,
                "workaround": case.workaround,
                "kb_link": case.kb_link,
            }
        return {
            "case": {
                "team_id": case.team_id,
                "case_number": case.case_number,
                "url": services.config.case.case_url(case.case_number),
                "summary": case.summary,
                "details": case.details,
                "customer": case.customer,
                "urgency": case.urgency.value,
                "topic": case.topic_key,
                "topic_label": topic.title if topic else case.topic_key,
                "region": case.region,
                "status": case.status.value,
                "severity": case.severity,
                "filer": case.filer_id or None,
                "assignee": case.assignee_id,
                "channel": case.channel_id,
                "thread_ts": case.thread_ts,
                "permalink": case.permalink,
                "incident_channel": case.incident_channel_id,
                "created_at": _iso(case.created_at),
                "first_response_at": _iso(case.first_response_at),
                "first_responder": case.first_responder_id,
            },
            "participants": [
                {"user": p.user_id, "role": p.role.value, "joined_at": _iso(p.joined_at)}
                for p in case.participants
            ],
            "timeline": [
                {"at": _iso(e.at), "kind": e.kind, "actor": e.actor_id, "data": e.data}
                for e in case.events
            ],
            "messages": [
                {
                    "channel": m.channel_id,
                    "ts": m.ts,
                    "thread_ts": m.thread_ts,
                    "at": _iso(m.posted_at),
                    "author": m.user_id,
                    "bot": m.is_bot,
                    "subtype": m.subtype,
                    "text": m.text,
                    "files": m.files,
                    "edited_at": _iso(m.edited_at),
                    "deleted_at": _iso(m.deleted_at),
                }
                for m in messages
            ],
            "resolution": resolution,
        }


def to_json(record: dict[str, Any]) -> str:
    return json.dumps(record, indent=2, ensure_ascii=False)


def _when(iso: str | None) -> str:
    if not iso:
        return "—"
    return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M:%S UTC")


def _quote(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in text.splitlines() or [""])


def to_markdown(record: dict[str, Any]) -> str:
    """The record as a Markdown document (Slack ids kept as they are)."""
    case = record["case"]
    number = case["case_number"]
    title = f"[{number}]({case['url']})" if case["url"] else number
    lines = [f"# Case {title}: {case['summary']}", ""]
    fields = [
        ("Status", case["status"] + (f" (sev{case['severity']})" if case["severity"] else "")),
        ("Urgency", case["urgency"]),
        ("Topic", case["topic_label"] + (f" · {case['region']}" if case["region"] else "")),
        ("Customer", case["customer"] or "—"),
        ("Filed by", f"{case['filer']} at {_when(case['created_at'])}"),
        ("Assignee", case["assignee"] or "unassigned"),
        (
            "First response",
            f"{case['first_responder']} at {_when(case['first_response_at'])}"
            if case["first_response_at"]
            else "none yet",
        ),
        ("Thread", case["permalink"] or f"{case['channel']} / {case['thread_ts']}"),
    ]
    if case["incident_channel"]:
        fields.append(("Incident channel", case["incident_channel"]))
    lines += [f"- **{name}:** {value}" for name, value in fields]
    swarm = ", ".join(f"{p['user']} ({p['role']})" for p in record["participants"])
    lines += [f"- **Swarm:** {swarm or '—'}", ""]
    if case["details"]:
        lines += ["## Details", "", case["details"], ""]
    lines += ["## Timeline", ""]
    for event in record["timeline"]:
        actor = f" by {event['actor']}" if event["actor"] else ""
        data = ", ".join(f"{k}: {v}" for k, v in (event["data"] or {}).items() if v is not None)
        lines.append(
            f"- {_when(event['at'])} — {event['kind']}{actor}" + (f" ({data})" if data else "")
        )
    lines += ["", f"## Messages ({len(record['messages'])})", ""]
    for message in record["messages"]:
        who = message["author"] or "unknown"
        if message["bot"]:
            who += " (bot)"
        where = f" in {message['channel']}" if message["channel"] != case["channel"] else ""
        head = f"**{who}**{where} · {_when(message['at'])}"
        if message["deleted_at"]:
            lines += [f"{head} · _deleted {_when(message['deleted_at'])}_", ""]
            continue
        if message["edited_at"]:
            head += f" · _edited {_when(message['edited_at'])}_"
        lines += [head, "", _quote(message["text"])]
        for file in message["files"] or []:
            lines.append(f"> 📎 {file.get('title') or file.get('name')} ({file.get('name')})")
        lines.append("")
    resolution = record["resolution"]
    if resolution:
        lines += ["## Resolution", ""]
        by = f" by {resolution['resolved_by']}" if resolution["resolved_by"] else ""
        lines.append(f"Resolved{by} at {_when(resolution['resolved_at'])}.")
        lines.append("")
        for name in ("resolution", "root_cause", "workaround", "kb_link"):
            if resolution.get(name):
                lines += [f"**{name.replace('_', ' ').capitalize()}:** {resolution[name]}", ""]
    return "\n".join(lines).rstrip() + "\n"
