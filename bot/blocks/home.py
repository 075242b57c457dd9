"""App Home: the lead's queue with its actions and page controls, own cases, the week's
figures; and the `/swarm stats` answer. Always within Slack's 100 blocks a view."""

from __future__ import annotations

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
    UserSelectElement,
)
from slack_sdk.models.views import View

from bot.blocks.card import URGENCY_ICON
from bot.blocks.elements import CONTEXT_TEXT_MAX, SECTION_TEXT_MAX
from bot.ids import HOME_CASE_BLOCK, Action
from storage.domain import CaseStatus
from workflows import metrics
from workflows.home import PAGE_SIZE, Home, QueueItem, SlaState
from workflows.text import case_link, clip, escape

VIEW_BLOCKS_MAX = 100
SLA_ICON = {
    SlaState.OK: ":large_green_circle: ok",
    SlaState.AT_RISK: ":warning: at risk",
    SlaState.BREACHED: ":red_circle: breached",
}
STATUS = {
    CaseStatus.OPEN: "Open",
    CaseStatus.SWARMING: "Swarming",
    CaseStatus.ESCALATED: "Escalated",
    CaseStatus.RESOLVED: "Resolved",
}
KEY_FIGURES = (
    "filed",
    "open_queue",
    "oldest_wait",
    "first_response_median",
    "resolution_median",
    "within_sla_rate",
    "same_day_rate",
    "escalations",
    "first_swarm_rate",
)


def _mrkdwn(text: str, limit: int = SECTION_TEXT_MAX) -> MarkdownTextObject:
    return MarkdownTextObject(text=clip(text, limit))


def case_line(item: QueueItem) -> str:
    """Case (linked to its thread), summary, then urgency, topic, status, assignee, age, SLA."""
    status = STATUS[item.status]
    if item.status is CaseStatus.ESCALATED and item.severity:
        status += f" (sev{item.severity})"
    who = f"<@{item.assignee_id}>" if item.assignee_id else "unassigned"
    sla = SLA_ICON[item.sla] + (f" ({item.sla_detail})" if item.sla_detail else "")
    link = case_link(item.case_number, item.permalink or item.case_url, bold=True)
    return (
        f"{link} {escape(clip(item.summary, 150))}\n"
        f"{URGENCY_ICON[item.urgency]} {item.urgency.value} · {escape(item.topic_label)} · "
        f"{status} · {who} · waiting {metrics.duration(item.waited)} · SLA {sla}"
    )


def _queue_actions(item: QueueItem) -> ActionsBlock:
    return ActionsBlock(
        block_id=f"{HOME_CASE_BLOCK}{item.case_id}",
        elements=[
            ButtonElement(text="Claim", action_id=Action.HOME_CLAIM, value=str(item.case_id)),
            UserSelectElement(action_id=Action.HOME_ASSIGN, placeholder="Assign…"),
            ButtonElement(
                text="Escalate",
                action_id=Action.HOME_ESCALATE,
                value=str(item.case_id),
                style="danger",
            ),
        ],
    )


def figure_fields(report: metrics.Report, names: tuple[str, ...] = KEY_FIGURES) -> list[str]:
    """`*Label*\\nvalue ▲ better (was …)` for each figure named."""
    changes = {c.figure: c for c in report.changes}
    out = []
    for name in names:
        figure = metrics.BY_NAME[name]
        line = f"*{figure.label}*\n{metrics.show(figure, report.figures.value(name))}"
        change = changes.get(name)
        if change is not None and change.direction is not None:
            line += f" {metrics.arrow(change)} (was {metrics.show(figure, change.previous)})"
        out.append(line)
    return out


def home_view(home: Home, *, notice: str | None = None) -> View:
    """The Home tab of one user."""
    blocks: list[Block] = [HeaderBlock(text="Swarm")]
    if notice:
        blocks.append(SectionBlock(text=_mrkdwn(notice)))  # a workflow's answer: safe mrkdwn
    blocks.append(
        SectionBlock(
            text=_mrkdwn("*Last 7 days*, every topic, against the 7 days before"),
            fields=[_mrkdwn(f, 2000) for f in figure_fields(home.figures)[:10]],
        )
    )
    if home.leads:
        blocks.append(DividerBlock())
        scope = (
            "every topic"
            if "*" in home.topics
            else ", ".join(escape(t) for t in home.topics) or "your topics"
        )
        blocks.append(
            SectionBlock(
                text=_mrkdwn(
                    f"*Open queue of {scope}*: {home.queue_total} case"
                    f"{'' if home.queue_total == 1 else 's'}, oldest first"
                )
            )
        )
        if not home.queue:
            blocks.append(ContextBlock(elements=[_mrkdwn("Nothing waiting. :tada:")]))
        for item in home.queue:
            blocks.append(SectionBlock(text=_mrkdwn(case_line(item))))
            blocks.append(_queue_actions(item))
        if home.pages > 1:
            blocks += _page_controls(home)
    blocks.append(DividerBlock())
    blocks.append(
        SectionBlock(
            text=_mrkdwn(f"*My cases*: {home.own_total} open (filed, claimed or joined by you)")
        )
    )
    for item in home.own:
        blocks.append(SectionBlock(text=_mrkdwn(case_line(item))))
    if home.own_total > len(home.own):
        blocks.append(
            ContextBlock(
                elements=[
                    _mrkdwn(
                        f"and {home.own_total - len(home.own)} more: `/swarm status <case>` "
                        "shows any of them",
                        CONTEXT_TEXT_MAX,
                    )
                ]
            )
        )
    assert len(blocks) <= VIEW_BLOCKS_MAX, len(blocks)
    return View(type="home", blocks=blocks)


def _page_controls(home: Home) -> list[Block]:
    first = home.page * PAGE_SIZE + 1
    last = first + len(home.queue) - 1
    buttons = []
    if home.page > 0:
        buttons.append(
            ButtonElement(
                text="◀ Previous", action_id=Action.HOME_PAGE_PREVIOUS, value=str(home.page - 1)
            )
        )
    if home.page < home.pages - 1:
        buttons.append(
            ButtonElement(text="Next ▶", action_id=Action.HOME_PAGE_NEXT, value=str(home.page + 1))
        )
    return [
        ContextBlock(
            elements=[
                _mrkdwn(
                    f"Page {home.page + 1} of {home.pages}: cases {first}–{last} of "
                    f"{home.queue_total}",
                    CONTEXT_TEXT_MAX,
                )
            ]
        ),
        ActionsBlock(block_id="home-pages", elements=buttons),
    ]


# -- /swarm stats ----------------------------------------------------------------------------
PEOPLE_SHOWN = 15
TOPICS_SHOWN = 12
TOPIC_FIGURES = (
    "filed",
    "resolved",
    "open_queue",
    "first_response_median",
    "resolution_median",
    "within_sla_rate",
    "escalations",
)


def stats_message(report: metrics.Report) -> tuple[str, list[Block]]:
    """The `/swarm stats` answer: every figure against the period before, per topic, and
    per person when the report has them (leads)."""
    scope = (
        f"topic {escape(report.topic_labels.get(report.topic, report.topic))}"
        if report.topic
        else "every topic"
    )
    title = f"Swarm figures, {scope}, {metrics.describe_window(report)}"
    lines = []
    changes = {c.figure: c for c in report.changes}
    for figure in metrics.FIGURES:
        value = metrics.show(figure, report.figures.value(figure.name))
        line = f"*{figure.label}*: {value}"
        change = changes.get(figure.name)
        if change is not None and change.direction is not None:
            line += f"  {metrics.arrow(change)} (was {metrics.show(figure, change.previous)})"
        lines.append(line)
    blocks: list[Block] = [
        SectionBlock(text=_mrkdwn(f"*{escape(title)}*")),
        SectionBlock(text=_mrkdwn("\n".join(lines))),
    ]
    if report.topic is None and report.topics:
        rows = []
        for key, figures in list(report.topics.items())[:TOPICS_SHOWN]:
            shown = " · ".join(
                f"{f.label.lower()} {metrics.show(f, figures.value(f.name))}"
                for f in (metrics.BY_NAME[n] for n in TOPIC_FIGURES)
            )
            rows.append(f"*{escape(report.topic_labels[key])}*: {shown}")
        more = len(report.topics) - TOPICS_SHOWN
        if more > 0:
            rows.append(f"and {more} more topics: `swarmbot stats` lists them all")
        blocks.append(SectionBlock(text=_mrkdwn("*Per topic*\n" + "\n".join(rows))))
    if report.people is not None:
        rows = [
            f"<@{p.user_id}>: {p.replies} replies, {p.claims} claims, "
            f"{p.first_responses} first responses, {p.resolutions} resolutions"
            for p in report.people[:PEOPLE_SHOWN]
        ]
        if not rows:
            rows = ["nobody replied, claimed or resolved in the period"]
        more = len(report.people) - PEOPLE_SHOWN
        if more > 0:
            rows.append(f"and {more} more people")
        blocks.append(SectionBlock(text=_mrkdwn("*Per person* (leads only)\n" + "\n".join(rows))))
    return title, blocks
