"""The weekly chart of each swarm channel: cases filed and resolved a day and the median time
to first response, over the last four weeks, as a PNG with alt text."""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from storage.metrics import Window
from workflows.metrics import duration
from workflows.services import Services
from workflows.sla import every_swarm_channel

log = logging.getLogger(__name__)

DAYS = 28
WIDTH_PX, HEIGHT_PX, DPI = 1200, 600, 100


@dataclass(frozen=True)
class Weekly:
    """Four weeks of one swarm channel, a value per UTC day."""

    channel_id: str
    days: tuple[date, ...]
    filed: tuple[int, ...]
    resolved: tuple[int, ...]
    response_median: tuple[float | None, ...]  # seconds

    @property
    def alt_text(self) -> str:
        """What the chart shows, for people who cannot see it."""
        answered = [m for m in self.response_median if m is not None]
        text = (
            f"Bar chart of cases filed and resolved per day in this channel from "
            f"{self.days[0]:%d %b} to {self.days[-1]:%d %b %Y}: {sum(self.filed)} filed, "
            f"{sum(self.resolved)} resolved"
        )
        if answered:
            text += (
                f"; a line shows the median time to first response, from "
                f"{duration(min(answered))} to {duration(max(answered))} a day"
            )
        else:
            text += "; no case got a first response in these weeks"
        busiest = max(range(len(self.days)), key=lambda i: self.filed[i])
        if self.filed[busiest]:
            text += f". Busiest day: {self.days[busiest]:%a %d %b} ({self.filed[busiest]} filed)"
        return text + "."


def weekly_figures(services: Services, *, team_id: str, channel_id: str, until: datetime) -> Weekly:
    """The 28 whole UTC days before `until`'s day, from SQL aggregates."""
    end = datetime.combine(until.date(), time(0), tzinfo=until.tzinfo)
    start = end - timedelta(days=DAYS)
    with services.uow.read() as uow:
        daily = uow.metrics.daily(team_id=team_id, channel_id=channel_id, window=Window(start, end))
    days = tuple((start + timedelta(days=n)).date() for n in range(DAYS))
    of = [daily.get(d.isoformat(), {}) for d in days]
    return Weekly(
        channel_id=channel_id,
        days=days,
        filed=tuple(int(f.get("filed", 0)) for f in of),
        resolved=tuple(int(f.get("resolved", 0)) for f in of),
        response_median=tuple(
            f["response_median_us"] / 1e6 if "response_median_us" in f else None for f in of
        ),
    )


def chart_png(weekly: Weekly, *, title: str) -> bytes:
    """The chart as a PNG of WIDTH_PX x HEIGHT_PX: bars filed/resolved, a line for the median."""
    # Imported here: matplotlib costs about a second at start, and only the weekly job draws.
    # A bare Figure renders through its own Agg canvas, with no display and no pyplot state.
    from matplotlib.figure import Figure

    figure = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI)
    axes = figure.subplots()
    x = list(range(len(weekly.days)))
    axes.bar([i - 0.2 for i in x], weekly.filed, width=0.4, label="filed", color="#4a90d9")
    axes.bar([i + 0.2 for i in x], weekly.resolved, width=0.4, label="resolved", color="#2eb67d")
    axes.set_ylabel("cases")
    axes.set_xticks(x[::2], [f"{d:%d %b}" for d in weekly.days[::2]], rotation=45, ha="right")
    line = axes.twinx()
    minutes = [m / 60 if m is not None else float("nan") for m in weekly.response_median]
    line.plot(x, minutes, color="#e01e5a", marker="o", label="median first response (min)")
    line.set_ylabel("median time to first response (minutes)")
    line.set_ylim(bottom=0)
    handles = axes.get_legend_handles_labels()
    extra = line.get_legend_handles_labels()
    axes.legend(handles[0] + extra[0], handles[1] + extra[1], loc="upper left", fontsize=8)
    axes.set_title(title)
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=DPI)
    return out.getvalue()


def post_weekly_charts(services: Services) -> int:
    """Upload this week's chart to each swarm channel that has not had it; return how many.

    Each channel's chart is claimed once per ISO week (a `scheduled_runs` row) before it is
    sent, so a second process or a replay sends nothing; a chart Slack did not take gives its
    claim back and goes out on the next run.
    """
    now = services.clock.now()
    year, week, _ = now.isocalendar()
    sent = 0
    for team, channel in every_swarm_channel(services):
        key = f"weekly:{team}:{channel}:{year}-W{week:02d}"
        with services.uow() as uow:
            if not uow.schedule.claim_run(key=key, at=now):
                continue
            uow.commit()
        weekly = weekly_figures(services, team_id=team, channel_id=channel, until=now)
        title = f"Swarm, last 4 weeks to {weekly.days[-1]:%d %b %Y}"
        try:
            services.slack.upload_file(
                channel,
                chart_png(weekly, title=title),
                filename=f"swarm-weekly-{year}-W{week:02d}.png",
                title=title,
                alt_text=weekly.alt_text,
                comment=(
                    f"*Weekly swarm chart*: {sum(weekly.filed)} cases filed and "
                    f"{sum(weekly.resolved)} resolved in the last 4 weeks."
                ),
            )
        except Exception as exc:  # one channel refusing must not cost the others their chart
            log.warning("weekly chart for %s not posted: %s", channel, exc)
            with services.uow() as uow:
                uow.schedule.forget_run(key=key)
                uow.commit()
            continue
        sent += 1
    return sent
