"""swarm.yaml validation: every problem reported with its location."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from workflows.config import ConfigError, parse_config, parse_duration
from workflows.text import duration

ROOT = Path(__file__).resolve().parent.parent


ONE_TOPIC = "topics: [{key: api, swarm_channel: C0API0001}]\n"


def problems(text: str) -> list[str]:
    """The problems of `text`, given at least one topic (added last, lines stay as they are)."""
    if "topics" not in text:
        text += ONE_TOPIC
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    return [str(p) for p in caught.value.problems]


def test_the_shipped_example_is_valid() -> None:
    config = parse_config((ROOT / "swarm.example.yaml").read_text())
    assert [t.key for t in config.topics] == ["api", "billing"]
    assert config.sla.critical.first_response == timedelta(minutes=15)
    assert config.escalation.archive_after == timedelta(days=7)
    assert config.topic("api").region_channels == {"apac": "C0APIAPAC"}


def test_one_topic_is_all_it_takes_the_rest_has_defaults() -> None:
    config = parse_config(ONE_TOPIC)
    assert config.naming.prefix == "help"
    assert config.sla.high.resolution == timedelta(days=1)


def test_unknown_keys_are_errors_with_their_line() -> None:
    found = problems("naming:\n  prefix: help\n  colour: blue\nextra: 1\n")
    assert found == [
        "line 3: naming.colour: unknown key 'colour'",
        "line 4: extra: unknown key 'extra'",
    ]


def test_bad_durations_are_reported_where_they_are() -> None:
    found = problems(
        "sla:\n  high: {first_response: 1x, resolution: 1d}\nescalation:\n  archive_after: soon\n"
    )
    assert (
        "line 2: sla.high.first_response: '1x' is not a duration like 30s, 15m, 4h or 2d" in found
    )
    assert any(p.startswith("line 4: escalation.archive_after:") for p in found)


def test_first_response_longer_than_resolution_is_refused() -> None:
    found = problems("sla:\n  low: {first_response: 2d, resolution: 1d}\n")
    assert found == ["line 2: sla.low: first_response must not be longer than resolution"]


def test_bad_channel_and_user_ids_name_the_entry() -> None:
    found = problems("topics:\n  - key: api\n    swarm_channel: swarm-api\n    leads: [lead]\n")
    assert (
        "line 3: topics[0].swarm_channel: 'swarm-api' is not a channel id (C0123ABCD) or "
        "'#channel-name'" in found
    )
    assert "line 4: topics[0].leads[0]: 'lead' is not a Slack user id (U0123ABCD)" in found


def test_duplicate_topic_keys_point_at_the_second() -> None:
    found = problems(
        "topics:\n  - key: api\n    swarm_channel: C0API0001\n"
        "  - key: api\n    swarm_channel: C0API0002\n"
    )
    assert found == ["line 4: topics[1].key: duplicate topic key 'api' (first at topics[0])"]


def test_topic_keys_and_prefix_must_be_channel_safe() -> None:
    found = problems(
        "naming: {prefix: Help!}\ntopics:\n  - key: API v2\n    swarm_channel: C0API0001\n"
    )
    assert any(p.startswith("line 1: naming.prefix:") for p in found)
    assert any(p.startswith("line 3: topics[0].key:") for p in found)


def test_region_channels_must_name_a_known_region() -> None:
    found = problems(
        "topics:\n  - key: api\n    swarm_channel: C0API0001\n"
        "    regions: [emea]\n    region_channels: {apac: C0APIAPAC}\n"
    )
    assert len(found) == 1 and "region_channels has 'apac'" in found[0]


def test_url_template_needs_the_placeholder_and_pattern_must_compile() -> None:
    found = problems("case:\n  url_template: https://x.example/cases\n  number_pattern: '(['\n")
    assert any("case.url_template: must contain {case_number}" in p for p in found)
    assert any("case.number_pattern: not a valid regular expression" in p for p in found)


def test_yaml_syntax_errors_have_a_line() -> None:
    found = problems("topics:\n  - key: api\n   swarm_channel: [\n")
    assert len(found) == 1 and found[0].startswith("line ") and "not valid YAML" in found[0]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("15m", 900), ("4h", 14400), ("2d", 172800), ("1w", 604800), (90, 90)],
)
def test_durations(text: str | int, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("bad", ["", "0s", "-1m", "1.5h", "h", True])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_durations_print_in_their_shortest_spelling() -> None:
    assert duration(timedelta(hours=2), exact=True) == "2h"
    assert duration(timedelta(seconds=90), exact=True) == "90s"


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )


def test_check_config_exit_codes(tmp_path: Path) -> None:
    good = run_cli("check-config", str(ROOT / "swarm.example.yaml"))
    assert good.returncode == 0, good.stderr
    assert "ok (2 topic(s))" in good.stdout
    bad_file = tmp_path / "bad.yaml"
    bad_file.write_text("topics:\n  - key: api\n    swarm_channel: nope\n    bogus: 1\n")
    bad = run_cli("check-config", str(bad_file))
    assert bad.returncode == 1
    assert "line 3: topics[0].swarm_channel" in bad.stdout
    assert "line 4: topics[0].bogus: unknown key 'bogus'" in bad.stdout
    assert "Traceback" not in bad.stdout + bad.stderr
    missing = run_cli("check-config", str(tmp_path / "none.yaml"))
    assert missing.returncode == 1 and "no such file" in missing.stdout
