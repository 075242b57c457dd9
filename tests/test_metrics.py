"""The figures of SPEC "Metrics" on scripted timelines with known answers, on both databases.

Cases are filed, answered, claimed, escalated, resolved and reopened through the real
workflows on a clock the test sets, so the figures are read from exactly what the swarm
writes. Every expected number below is worked out by hand in the comments.
"""

from __future__ import annotations

import json
import random
import statistics
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from storage.domain import CaseStatus, Urgency
from storage.models import Case
from tests.conftest import TEAM, FakeClock, RunningBot
from tests.fakeslack import FakeSlack
from tests.scenario import gateway, services
from tests.scenario import swarmbot as run_swarmbot
from workflows import metrics, record
from workflows.errors import SwarmError, UnknownTopic
from workflows.escalation import escalate
from workflows.intake import CaseDraft, file_case, publish_card
from workflows.resolution import Resolution, reopen, resolve
from workflows.services import Services
from workflows.swarming import assign, claim

# The moment the figures are asked for: Friday 2026-11-20 12:00 UTC. "7d" is then
# [Fri 11-13 12:00, Fri 11-20 12:00) and the period before it [Fri 11-06 12:00, 11-13 12:00).
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, second, tzinfo=UTC)


@dataclass
class Script:
    """Plays a case's life through the real workflows, each step at a given moment."""

    bot: RunningBot
    fake: FakeSlack
    clock: FakeClock

    @property
    def services(self) -> Services:
        return Services(self.bot.uow, self.bot.config, gateway(self.fake), self.clock)

    def _at(self, when: datetime) -> None:
        self.clock.current = when

    def file(self, number: str, topic: str, urgency: str, when: datetime) -> Case:
        self._at(when)
        draft = CaseDraft(
            team_id=TEAM,
            filer_id="U0AGENT01",
            case_number=number,
            urgency=urgency,
            topic_key=topic,
            summary=f"Case {number}",
        )
        filed = file_case(
            self.services,
            draft,
        )
        publish_card(
            self.services,
            filed.case_id,
        )
        return self.case(number)

    def case(self, number: str) -> Case:
        with self.bot.uow() as uow:
            found = uow.cases.by_number(team_id=TEAM, case_number=number)
            assert found is not None
            return found

    def reply(self, number: str, user: str, when: datetime, *, bot: bool = False) -> str:
        self._at(when)
        case = self.case(number)
        assert case.thread_ts
        ts = f"{when.timestamp():.6f}"
        message = record.ThreadMessage(
            team_id=TEAM,
            channel_id=case.channel_id,
            ts=ts,
            thread_ts=case.thread_ts,
            user_id=user,
            is_bot=bot,
            text=f"{user} on {number}",
        )
        assert (
            record.record(
                self.services,
                message,
            )
            is not None
        )
        return ts

    def delete(self, number: str, ts: str, when: datetime) -> None:
        self._at(when)
        case = self.case(number)
        record.delete(
            self.services,
            channel_id=case.channel_id,
            ts=ts,
        )

    def claim(self, number: str, user: str, when: datetime) -> None:
        self._at(when)
        claim(
            self.services,
            team_id=TEAM,
            user_id=user,
            case_number=number,
        )

    def assign(self, number: str, lead: str, user: str, when: datetime) -> None:
        self._at(when)
        assign(
            self.services,
            team_id=TEAM,
            actor_id=lead,
            user_id=user,
            case_number=number,
        )

    def escalate(self, number: str, lead: str, when: datetime) -> None:
        self._at(when)
        escalate(
            self.services,
            team_id=TEAM,
            user_id=lead,
            case_number=number,
        )

    def resolve(self, number: str, user: str, when: datetime) -> None:
        self._at(when)
        resolve(
            self.services,
            Resolution(resolution="fixed"),
            team_id=TEAM,
            user_id=user,
            case_number=number,
        )

    def reopen(self, number: str, user: str, when: datetime) -> None:
        self._at(when)
        reopen(
            self.services,
            team_id=TEAM,
            user_id=user,
            case_number=number,
        )


def two_weeks(bot: RunningBot, fake: FakeSlack, clock: FakeClock) -> Script:
    """Eleven cases over three weeks (SLA targets: critical 15m/4h, high 1h/1d, medium 4h/3d,
    low 1d/7d). The figures each test expects are derived from this script."""
    s = Script(bot, fake, clock)
    # Long before both periods: filed, answered and resolved 11-01/11-02 (billing).
    s.file("994", "billing", "high", at(1, 10))
    s.reply("994", "U0EXP0001", at(1, 10, 30))
    s.resolve("994", "U0EXP0001", at(2, 10))
    # -- the period before: [11-06 12:00, 11-13 12:00) ----------------------------------
    # 998 billing medium: answered after 30m (1800 s), resolved 8h after filing, same day,
    # within its 3d target.
    s.file("998", "billing", "medium", at(8, 9))
    s.reply("998", "U0EXP0002", at(8, 9, 30))
    s.resolve("998", "U0EXP0002", at(8, 17))
    # 997 api high: answered after 2m (120 s), escalated, resolved 3d later (259200 s),
    # after its 1d target.
    s.file("997", "api", "high", at(9, 10))
    s.reply("997", "U0EXP0001", at(9, 10, 2))
    s.escalate("997", "U0LEAD001", at(9, 10, 5))
    s.resolve("997", "U0LEAD001", at(12, 10))
    # 999 api high: answered after 20m (1200 s) in the period before; resolved in the
    # current one (11-13 14:00: 3d 6h = 280800 s after filing, past its 1d target).
    s.file("999", "api", "high", at(10, 8))
    s.reply("999", "U0EXP0001", at(10, 8, 20))
    # 996 api medium: answered after 1h (3600 s), resolved 11-12 12:00, reopened 11-15 09:00
    # and resolved for good 11-15 11:00 (3d 23h = 342000 s after filing; the reopen
    # restarted its 3d target, so within SLA). It counts once, when it was resolved for good.
    s.file("996", "api", "medium", at(11, 12))
    s.reply("996", "U0EXP0002", at(11, 13))
    s.resolve("996", "U0EXP0002", at(12, 12))
    # 995 api low: never answered, still open.
    s.file("995", "api", "low", at(12, 9))
    # -- the current period: [11-13 12:00, 11-20 12:00) ---------------------------------
    s.resolve("999", "U0LEAD001", at(13, 14))
    # 1001 api high: answered after 10m 30s (630 s), claimed, resolved after 6h (21600 s),
    # same day, within SLA.
    s.file("1001", "api", "high", at(14, 9))
    s.reply("1001", "U0EXP0001", at(14, 9, 10, 30))
    s.claim("1001", "U0EXP0001", at(14, 9, 11))
    s.resolve("1001", "U0EXP0001", at(14, 15))
    s.reopen("996", "U0EXP0002", at(15, 9))
    s.resolve("996", "U0EXP0002", at(15, 11))
    # 1002 api medium: answered after 45m (2700 s), claimed, resolved 2d later (172800 s),
    # within its 3d target. A second reply was deleted: it is not counted.
    s.file("1002", "api", "medium", at(15, 10))
    s.reply("1002", "U0EXP0002", at(15, 10, 45))
    s.claim("1002", "U0EXP0002", at(15, 10, 50))
    gone = s.reply("1002", "U0EXP0001", at(15, 11))
    s.delete("1002", gone, at(15, 11, 5))
    s.resolve("1002", "U0EXP0002", at(17, 10))
    # 1003 billing critical: answered after 5m (300 s), escalated, resolved after 5h
    # (18000 s), same day, past its 4h target.
    s.file("1003", "billing", "critical", at(16, 8))
    s.reply("1003", "U0EXP0001", at(16, 8, 5))
    s.escalate("1003", "U0LEAD002", at(16, 8, 30))
    s.resolve("1003", "U0LEAD002", at(16, 13))
    # 1004 api low: never answered (the filer's own reply is no first response); a lead
    # assigned it (an assignment is not a claim). Open.
    s.file("1004", "api", "low", at(18, 12))
    s.reply("1004", "U0AGENT01", at(18, 13))
    s.reply("1004", "U0BOT0001", at(18, 13, 1), bot=True)
    s.assign("1004", "U0LEAD001", "U0EXP0002", at(19, 9))
    # 1005 billing high: filed 11-19 23:30, answered 1h later (3600 s), open.
    s.file("1005", "billing", "high", at(19, 23, 30))
    s.reply("1005", "U0EXP0002", at(20, 0, 30))
    clock.current = NOW
    return s


def report(bot: RunningBot, clock: FakeClock, **kw) -> metrics.Report:  # type: ignore[no-untyped-def]
    return metrics.report(
        services(bot, clock),
        team_id=TEAM,
        **kw,
    )


def test_every_figure_of_the_last_seven_days_against_the_week_before(
    bot: RunningBot, fake: FakeSlack, clock: FakeClock
) -> None:
    two_weeks(bot, fake, clock)
    r = report(bot, clock, period="7d")
    f = r.figures
    assert r.window.start == NOW - timedelta(days=7) and r.window.end == NOW
    assert f.filed == 5  # 1001..1005
    assert f.resolved == 5  # 999, 1001, 996 (for good), 1002, 1003
    # Open now: 995 (filed 11-12 09:00), 1004, 1005; the oldest has waited 8d 3h.
    assert (f.open_queue, f.oldest_wait) == (3, timedelta(days=8, hours=3).total_seconds())
    # First responses in the period: 630, 2700, 300, 3600 s.
    assert f.responded == 4
    assert f.first_response_mean == 7230 / 4 == 1807.5
    assert f.first_response_median == (630 + 2700) / 2 == 1665
    # Resolutions: 280800 (999), 21600 (1001), 342000 (996), 172800 (1002), 18000 (1003).
    assert f.resolution_mean == 835200 / 5 == 167040
    assert f.resolution_median == 172800
    assert f.days_to_close == pytest.approx(167040 / 86400)
    assert f.same_day_rate == 2 / 5  # 1001 and 1003
    assert f.within_sla_rate == 3 / 5  # 1001, 1002, 996 (its reopen restarted the clock)
    assert (f.escalations, f.escalation_rate) == (1, 1 / 5)  # 1003, of the 5 filed
    assert f.first_swarm_rate == 4 / 5  # all but 1003

    p = r.previous
    assert p is not None
    assert (p.filed, p.resolved) == (5, 2)  # 995..999; 998 and 997 (996 was reopened)
    # Open at 11-13 12:00: 995 and 999 (996 was resolved then); 999 had waited 3d 4h.
    assert (p.open_queue, p.oldest_wait) == (2, timedelta(days=3, hours=4).total_seconds())
    assert (p.first_response_mean, p.first_response_median) == (6720 / 4, 1500)
    assert (p.resolution_mean, p.resolution_median) == (144000, 144000)
    assert (p.same_day_rate, p.within_sla_rate, p.first_swarm_rate) == (0.5, 0.5, 0.5)
    assert (p.escalations, p.escalation_rate) == (1, 1 / 5)

    changes = {c.figure: (c.direction, c.better) for c in r.changes}
    assert changes == {
        "filed": ("same", None),
        "resolved": ("up", True),
        "open_queue": ("up", False),
        "oldest_wait": ("up", False),
        "first_response_mean": ("up", False),
        "first_response_median": ("up", False),
        "resolution_mean": ("up", False),
        "resolution_median": ("up", False),
        "days_to_close": ("up", False),
        "same_day_rate": ("down", False),
        "within_sla_rate": ("up", True),
        "escalations": ("same", None),
        "escalation_rate": ("same", None),
        "first_swarm_rate": ("up", True),
    }


def test_each_topic_has_its_own_figures(bot: RunningBot, fake: FakeSlack, clock: FakeClock) -> None:
    two_weeks(bot, fake, clock)
    r = report(bot, clock, period="7d")
    assert list(r.topics) == ["api", "billing"]
    api, billing = r.topics["api"], r.topics["billing"]
    assert (api.filed, api.resolved, api.open_queue) == (3, 4, 2)
    assert api.resolution_mean == (21600 + 172800 + 280800 + 342000) / 4
    assert api.resolution_median == (172800 + 280800) / 2
    assert (api.first_response_mean, api.first_response_median) == (1665, 1665)
    assert (api.same_day_rate, api.within_sla_rate, api.first_swarm_rate) == (0.25, 0.75, 1.0)
    assert (api.escalations, api.escalation_rate) == (0, 0.0)
    assert (billing.filed, billing.resolved, billing.open_queue) == (2, 1, 1)
    assert billing.oldest_wait == timedelta(hours=12, minutes=30).total_seconds()
    assert (billing.resolution_mean, billing.resolution_median) == (18000, 18000)
    assert (billing.first_response_mean, billing.first_response_median) == (1950, 1950)
    assert (billing.same_day_rate, billing.within_sla_rate, billing.first_swarm_rate) == (
        1.0,
        0.0,
        0.0,
    )
    assert (billing.escalations, billing.escalation_rate) == (1, 0.5)

    only = report(bot, clock, period="7d", topic="billing")
    assert only.figures == billing and list(only.topics) == ["billing"]
    assert only.previous is not None and only.previous.filed == 1  # 998
    assert only.previous.open_queue == 0


def test_per_person_figures_count_replies_claims_first_responses_and_resolutions(
    bot: RunningBot, fake: FakeSlack, clock: FakeClock
) -> None:
    two_weeks(bot, fake, clock)
    r = report(bot, clock, period="7d", people_topics=None)
    people = {p.user_id: (p.replies, p.claims, p.first_responses, p.resolutions) for p in r.people}
    assert people == {
        # Replies in 1002 and 1005; claimed 1002; answered 1002 and 1005 first; resolved 1002
        # and 996.
        "U0EXP0002": (2, 1, 2, 2),
        # Replies in 1001 and 1003 (the deleted one in 1002 does not count).
        "U0EXP0001": (2, 1, 2, 1),
        "U0AGENT01": (1, 0, 0, 0),  # the filer's own reply; bot posts are nobody's
        "U0LEAD001": (0, 0, 0, 1),  # resolved 999; assigning 1004 is no claim
        "U0LEAD002": (0, 0, 0, 1),
    }
    assert [p.user_id for p in r.people][:2] == ["U0EXP0002", "U0EXP0001"]
    api_only = report(bot, clock, period="7d", people_topics=["api"])
    people = {
        p.user_id: (p.replies, p.claims, p.first_responses, p.resolutions) for p in api_only.people
    }
    assert people["U0EXP0001"] == (1, 1, 1, 1) and "U0LEAD002" not in people
    assert report(bot, clock, period="7d").people is None


def test_all_time_has_no_comparison(bot: RunningBot, fake: FakeSlack, clock: FakeClock) -> None:
    two_weeks(bot, fake, clock)
    r = report(bot, clock, period="all")
    assert r.previous is None and r.changes == [] and r.window.start is None
    assert (r.figures.filed, r.figures.resolved, r.figures.open_queue) == (11, 8, 3)
    assert (r.figures.escalations, r.figures.escalation_rate) == (2, 2 / 11)


def test_an_empty_period_has_counts_of_zero_and_no_means_or_shares(
    bot: RunningBot, clock: FakeClock
) -> None:
    r = report(bot, clock, period="30d")
    f = r.figures
    assert (f.filed, f.resolved, f.open_queue, f.escalations) == (0, 0, 0, 0)
    assert f.oldest_wait is None and f.first_response_mean is None
    assert f.resolution_median is None and f.days_to_close is None
    assert f.same_day_rate is None and f.escalation_rate is None
    assert f.within_sla_rate is None and f.first_swarm_rate is None
    assert all(c.direction is None or c.direction == "same" for c in r.changes)
    assert "Open queue" in metrics.to_table(r) and "—" in metrics.to_table(r)


def test_a_bad_period_or_topic_is_explained(bot: RunningBot, clock: FakeClock) -> None:
    with pytest.raises(SwarmError, match="not a period"):
        report(bot, clock, period="14d")
    with pytest.raises(UnknownTopic):
        report(bot, clock, period="7d", topic="nope")


def seed_durations(bot: RunningBot, seconds: list[float], *, base: datetime) -> None:
    """Resolved cases whose first response and resolution took exactly these durations."""
    with bot.uow() as uow:
        uow.cases.ensure_workspace(team_id=TEAM)
        for n, value in enumerate(seconds):
            filed = base + timedelta(minutes=n)
            took = timedelta(seconds=value)
            uow.cases.add(
                Case(
                    team_id=TEAM,
                    case_number=str(50000 + n),
                    summary="seeded",
                    urgency=Urgency.HIGH,
                    topic_key="api",
                    status=CaseStatus.RESOLVED,
                    filer_id="U0AGENT01",
                    channel_id="C0API0001",
                    created_at=filed,
                    updated_at=filed,
                    first_response_at=filed + took,
                    first_responder_id="U0EXP0001",
                    resolved_at=filed + took,
                    resolved_by="U0EXP0001",
                    resolution_due=filed + timedelta(days=1),
                )
            )
        uow.commit()


@pytest.mark.parametrize("count", [101, 100])  # odd and even counts, to the microsecond
def test_exact_medians_and_means(bot: RunningBot, clock: FakeClock, count: int) -> None:
    rng = random.Random(count)
    values = [round(rng.uniform(0, 5 * 86400), 6) for _ in range(count)]
    clock.current = NOW
    seed_durations(bot, values, base=NOW - timedelta(days=6, hours=12))
    r = report(bot, clock, period="7d")
    micros = sorted(round(v * 1e6) for v in values)
    assert r.figures.first_response_median == statistics.median(micros) / 1e6
    assert r.figures.resolution_median == statistics.median(micros) / 1e6
    assert r.figures.resolution_mean == sum(micros) / count / 1e6


def test_durations_show_to_the_second_under_an_hour() -> None:
    assert metrics.duration(1807.5) == "30m 8s"
    assert metrics.duration(59.4) == "59s"
    assert metrics.duration(600) == "10m"
    assert metrics.duration(3599.6) == "1h"
    assert metrics.duration(167040) == "1d 22h"
    assert metrics.duration(45000) == "12h 30m"


def swarmbot(fake: FakeSlack, db_url: str, tmp_path: Path, *args: str):  # type: ignore[no-untyped-def]
    """`swarmbot stats` as of the scripted timeline's NOW."""
    until = ["--until", NOW.strftime("%Y-%m-%dT%H:%M:%S")] if args[:1] == ("stats",) else []
    return run_swarmbot(fake, db_url, tmp_path, *args, *until)


def test_swarmbot_stats_prints_the_same_figures_as_json_csv_and_a_table(
    bot: RunningBot, fake: FakeSlack, clock: FakeClock, db_url: str, tmp_path: Path
) -> None:
    two_weeks(bot, fake, clock)
    result = swarmbot(fake, db_url, tmp_path, "stats", "--period", "7d", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["figures"]["filed"] == 5 and data["figures"]["resolution_median"] == 172800
    assert data["previous"]["open_queue"] == 2
    assert data["changes"]["within_sla_rate"] == {"direction": "up", "better": True}
    assert data["topics"]["billing"]["escalation_rate"] == 0.5
    assert {p["user_id"] for p in data["people"]} >= {"U0EXP0001", "U0EXP0002"}
    assert data == json.loads(metrics.to_json(report(bot, clock, period="7d", people_topics=None)))

    result = swarmbot(fake, db_url, tmp_path, "stats", "--topic", "api", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = result.output.splitlines()
    assert rows[0] == "scope,figure,value,previous,direction,better"
    assert "all,filed,3,4,down," in rows  # api: 1001, 1002, 1004 against 995..997, 999
    assert "all,same_day_rate,0.25,0.0,up,true" in rows
    assert "person:U0EXP0001,replies,1,,," in rows

    result = swarmbot(fake, db_url, tmp_path, "stats")
    assert result.exit_code == 0, result.output
    table = result.output
    assert "Time to first response (median)" in table and "27m 45s" in table
    assert "▲ worse" in table and "Per topic" in table and "Per person" in table

    bad = swarmbot(fake, db_url, tmp_path, "stats", "--topic", "nope")
    assert bad.exit_code == 1 and "nope" in bad.output
