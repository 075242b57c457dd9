"""The weekly chart: four weeks of each swarm channel as a PNG, uploaded with Slack's upload v2
flow (getUploadURLExternal, the upload, completeUploadExternal), once per channel and week."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image

from scheduling.sweeps import BY_NAME
from storage.domain import CaseStatus, Urgency
from storage.models import Case
from tests.conftest import TEAM, TEST_CONFIG, FakeClock, RunningBot
from tests.fakeslack import FakeSlack
from tests.scenario import services
from workflows import reports
from workflows.config import ConfigError, parse_config

pytestmark = pytest.mark.usefixtures("no_slack_call_inside_a_transaction")

# Monday 2026-11-30 09:00 UTC: the chart covers Mon 11-02 .. Sun 11-29.
MONDAY = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def seed(bot: RunningBot) -> None:
    """In #swarm-api: on 11-02 three cases answered after 60, 120 and 600 s (median 120 s),
    two resolved the same day; on 11-29 one case answered after 30 s and one never; one case
    filed before the four weeks and resolved inside them. In #swarm-billing: one case."""
    rows = [
        # (number, channel, filed, first response after s, resolved after s)
        ("1", "C0API0001", datetime(2026, 11, 2, 8, tzinfo=UTC), 60, 3600),
        ("2", "C0API0001", datetime(2026, 11, 2, 9, tzinfo=UTC), 120, 7200),
        ("3", "C0API0001", datetime(2026, 11, 2, 10, tzinfo=UTC), 600, None),
        ("4", "C0API0001", datetime(2026, 11, 29, 22, tzinfo=UTC), 30, None),
        ("5", "C0API0001", datetime(2026, 11, 29, 23, tzinfo=UTC), None, None),
        ("6", "C0API0001", datetime(2026, 10, 30, 12, tzinfo=UTC), None, 4 * 86400),
        ("7", "C0BILL001", datetime(2026, 11, 10, 12, tzinfo=UTC), 90, None),
    ]
    with bot.uow() as uow:
        uow.cases.ensure_workspace(team_id=TEAM)
        for number, channel, filed, answered, resolved in rows:
            uow.cases.add(
                Case(
                    team_id=TEAM,
                    case_number=number,
                    summary=f"case {number}",
                    urgency=Urgency.HIGH,
                    topic_key="api" if channel == "C0API0001" else "billing",
                    status=CaseStatus.RESOLVED if resolved else CaseStatus.SWARMING,
                    filer_id="U0AGENT01",
                    channel_id=channel,
                    created_at=filed,
                    updated_at=filed,
                    first_response_at=filed + timedelta(seconds=answered) if answered else None,
                    first_responder_id="U0EXP0001" if answered else None,
                    resolved_at=filed + timedelta(seconds=resolved) if resolved else None,
                    resolved_by="U0EXP0001" if resolved else None,
                )
            )
        uow.commit()


def test_four_weeks_of_a_channel_a_day_at_a_time(bot: RunningBot) -> None:
    seed(bot)
    weekly = reports.weekly_figures(
        services(bot), team_id=TEAM, channel_id="C0API0001", until=MONDAY
    )
    assert len(weekly.days) == 28 and weekly.days[0].isoformat() == "2026-11-02"
    assert weekly.days[-1].isoformat() == "2026-11-29"
    assert weekly.filed[0] == 3 and weekly.filed[-1] == 2 and sum(weekly.filed) == 5
    assert weekly.resolved[0] == 2 and weekly.resolved[1] == 1  # case 6 on 11-03
    assert sum(weekly.resolved) == 3
    assert weekly.response_median[0] == 120 and weekly.response_median[-1] == 30
    assert weekly.response_median[1] is None
    assert "5 filed, 3 resolved" in weekly.alt_text and "30s to 2m" in weekly.alt_text


def test_the_weekly_chart_reaches_each_swarm_channel_once_as_a_png_with_alt_text(
    bot: RunningBot, fake: FakeSlack, clock: FakeClock
) -> None:
    seed(bot)
    clock.current = MONDAY
    assert reports.post_weekly_charts(services(bot, clock)) == 3
    urls = fake.calls_to("files.getUploadURLExternal")
    done = fake.calls_to("files.completeUploadExternal")
    assert len(urls) == len(done) == 3  # api, api apac, billing
    assert {c["channel_id"] for c in done} == {"C0API0001", "C0APIAPAC", "C0BILL001"}
    shared = fake.files("C0API0001")
    assert len(shared) == 1
    png = shared[0]["data"]
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size == (reports.WIDTH_PX, reports.HEIGHT_PX)
    assert "5 filed, 3 resolved" in shared[0]["alt_txt"]
    assert shared[0]["title"].startswith("Swarm, last 4 weeks")
    posted = [m for m in fake.messages("C0API0001") if m.get("files")]
    assert posted and "Weekly swarm chart" in posted[-1]["text"]
    # Again the same week (a second process, a replay): nothing more.
    assert reports.post_weekly_charts(services(bot, clock)) == 0
    assert len(fake.calls_to("files.completeUploadExternal")) == 3
    clock.current = MONDAY + timedelta(days=7)
    assert reports.post_weekly_charts(services(bot, clock)) == 3


def test_a_channel_that_refuses_the_chart_gets_it_on_the_next_run(
    bot: RunningBot, fake: FakeSlack, clock: FakeClock
) -> None:
    seed(bot)
    clock.current = MONDAY
    fake.inject(
        "files.completeUploadExternal",
        error="not_in_channel",
        when=lambda p: p.get("channel_id") == "C0BILL001",
        times=1,
    )
    assert reports.post_weekly_charts(services(bot, clock)) == 2
    assert fake.files("C0BILL001") == []
    assert reports.post_weekly_charts(services(bot, clock)) == 1
    assert len(fake.files("C0BILL001")) == 1


def test_the_weekly_chart_runs_when_swarm_yaml_says(config) -> None:  # type: ignore[no-untyped-def]
    trigger = BY_NAME["reports:weekly"].trigger(config)
    fields = {f.name: str(f) for f in trigger.fields}
    assert (fields["day_of_week"], fields["hour"], fields["minute"]) == ("mon", "9", "0")
    custom = parse_config(TEST_CONFIG + "reports:\n  weekly: {day: fri, hour: 16, minute: 30}\n")
    fields = {f.name: str(f) for f in BY_NAME["reports:weekly"].trigger(custom).fields}
    assert (fields["day_of_week"], fields["hour"], fields["minute"]) == ("fri", "16", "30")
    with pytest.raises(ConfigError) as bad:
        parse_config(TEST_CONFIG + "reports:\n  weekly: {day: someday}\n")
    assert "reports.weekly.day" in str(bad.value.problems[0])
