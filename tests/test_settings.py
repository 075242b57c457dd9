"""Settings from the environment: one clear line and exit 2 when something is missing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CLEAN = {
    k: v
    for k, v in os.environ.items()
    if not k.startswith(("SLACK_", "DATABASE_URL", "SWARM_", "PORT"))
}


def swarmbot(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**CLEAN, "PYTHONPATH": str(ROOT), **env},
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({}, "SLACK_BOT_TOKEN"),
        ({"SLACK_BOT_TOKEN": "xoxb-1"}, "SLACK_SIGNING_SECRET"),
        ({"SLACK_BOT_TOKEN": "not-a-token", "SLACK_SIGNING_SECRET": "s"}, "SLACK_BOT_TOKEN"),
        ({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xoxb-wrong"}, "SLACK_APP_TOKEN"),
        ({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s", "PORT": "eighty"}, "PORT"),
    ],
)
def test_run_with_bad_settings_names_the_variable_and_exits_2(
    tmp_path: Path, env: dict[str, str], variable: str
) -> None:
    result = swarmbot("run", cwd=tmp_path, **env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0]
    assert "Traceback" not in result.stderr


def test_run_with_a_broken_config_lists_its_problems_and_exits_2(tmp_path: Path) -> None:
    (tmp_path / "swarm.yaml").write_text("topics:\n  - key: api\n    swarm_channel: x\n")
    result = swarmbot("run", cwd=tmp_path, SLACK_BOT_TOKEN="xoxb-1", SLACK_SIGNING_SECRET="s")
    assert result.returncode == 2
    assert "line 3: topics[0].swarm_channel" in result.stderr
    assert "Traceback" not in result.stderr


def test_tokens_never_reach_the_logs() -> None:
    import logging

    from bot.redaction import redact_record

    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "calling with %s", ("xoxb-123-abc",), None
    )
    redact_record(record)
    assert "xoxb-123-abc" not in record.getMessage()  # the rest: tests/test_redaction.py


def test_every_command_has_help(tmp_path: Path) -> None:
    for command in ([], ["run"], ["migrate"], ["check-config"]):
        result = swarmbot(*command, "--help", cwd=tmp_path)
        assert result.returncode == 0 and "Usage:" in result.stdout
