"""What an operator sees when something is wrong: one clear line, exit 2, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from storage.db import create_db_engine
from storage.migrate import upgrade
from tests.conftest import TEST_CONFIG, Databases
from tests.scenario import fresh_url

ROOT = Path(__file__).resolve().parent.parent
CLEAN = {
    k: v
    for k, v in os.environ.items()
    if not k.startswith(("SLACK_", "DATABASE_URL", "SWARM_", "PORT", "WEB_", "LOG_LEVEL"))
}
SERVING = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "secret-for-tests"}


def swarmbot(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**CLEAN, "PYTHONPATH": str(ROOT), **env},
        timeout=60,
    )


def one_line(result: subprocess.CompletedProcess, *wanted: str, code: int = 2) -> str:
    """The command failed with `code` and one line on stderr containing every `wanted`."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for text in wanted:
        assert text in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def configured(tmp_path: Path) -> Path:
    (tmp_path / "swarm.yaml").write_text(TEST_CONFIG)
    return tmp_path


# -- settings ----------------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["run", "migrate", "jobs"])
@pytest.mark.parametrize(
    ("url", "wanted"),
    [
        ("notaurl", "not a database URL"),
        ("mysql://swarm:hunter22@db/swarm", "'mysql' databases are not supported"),
        ("postgresql+psycopg2://swarm:hunter22@db/swarm", "'psycopg2' driver is not installed"),
    ],
)
def test_a_database_url_that_cannot_work_is_one_line_and_exit_2(
    configured: Path, command: str, url: str, wanted: str
) -> None:
    result = swarmbot(command, cwd=configured, DATABASE_URL=url, **SERVING)
    line = one_line(result, "DATABASE_URL", wanted)
    assert "hunter22" not in line


def test_an_unknown_log_level_is_one_line_and_exit_2(configured: Path) -> None:
    result = swarmbot("run", cwd=configured, LOG_LEVEL="loud", **SERVING)
    one_line(result, "LOG_LEVEL", "DEBUG, INFO, WARNING, ERROR")


def test_a_bad_port_is_said_in_plain_words(configured: Path) -> None:
    result = swarmbot("run", cwd=configured, PORT="0", **SERVING)
    one_line(result, "PORT: should be at least 1")


def test_run_without_a_configuration_file_says_where_to_start(tmp_path: Path) -> None:
    result = swarmbot("run", cwd=tmp_path, **SERVING)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "copy swarm.example.yaml to swarm.yaml" in result.stderr
    assert "SWARM_CONFIG" in result.stderr
    assert not (tmp_path / "swarm.db").exists()


def test_version(tmp_path: Path) -> None:
    result = swarmbot("--version", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.startswith("swarmbot, version ")


# -- databases that are missing or not migrated ------------------------------------------------
def test_jobs_on_a_mistyped_sqlite_path_creates_nothing(configured: Path) -> None:
    result = swarmbot("jobs", cwd=configured, DATABASE_URL="sqlite:///swram.db")
    one_line(result, "DATABASE_URL: no database at swram.db")
    assert not (configured / "swram.db").exists()


def test_jobs_on_a_mistyped_postgresql_database_is_one_line(
    configured: Path, databases: Databases
) -> None:
    url = databases.admin_url().rsplit("/", 1)[0] + "/swram"
    result = swarmbot("jobs", cwd=configured, DATABASE_URL=url)
    one_line(result, "DATABASE_URL: cannot open the database (OperationalError")


READERS = [
    ["jobs"],
    ["export", "27343"],
    ["stats"],
    ["archive-incidents"],
    ["reindex"],
]


@pytest.mark.parametrize("command", READERS, ids=[c[0] for c in READERS])
def test_commands_on_an_unmigrated_database_say_to_migrate(
    configured: Path, databases: Databases, backend: str, command: list[str]
) -> None:
    url = fresh_url(databases, backend, configured)
    if backend == "sqlite":
        create_db_engine(url).connect().close()  # an empty file: exists, has no tables
    result = swarmbot(*command, cwd=configured, DATABASE_URL=url, **SERVING)
    one_line(result, "DATABASE_URL: the database has no tables yet: run `swarmbot migrate` first")


def test_commands_on_a_migrated_database_still_work(
    configured: Path, databases: Databases, backend: str
) -> None:
    url = fresh_url(databases, backend, configured)
    engine = create_db_engine(url)
    upgrade(engine)
    engine.dispose()
    jobs = swarmbot("jobs", cwd=configured, DATABASE_URL=url)
    assert jobs.returncode == 0 and "no pending jobs" in jobs.stdout, jobs.stderr
    export = swarmbot("export", "27343", cwd=configured, DATABASE_URL=url)
    one_line(export, "27343", code=1)  # a clear "no such case", not a database problem


# -- check-config ------------------------------------------------------------------------------
def check(tmp_path: Path, text: str) -> subprocess.CompletedProcess:
    path = tmp_path / "check.yaml"
    path.write_text(text)
    return swarmbot("check-config", str(path), cwd=tmp_path)


def test_check_config_words_an_unknown_severity_plainly(tmp_path: Path) -> None:
    text = TEST_CONFIG.replace("notify: {sev1: [C0LEGAL01]}", "notify: {sev5: [C0LEGAL01]}")
    result = check(tmp_path, text)
    assert result.returncode == 1
    assert "escalation.notify: unknown key 'sev5' (use sev1, sev2, sev3 or sev4)" in result.stdout
    assert "Input should be" not in result.stdout and "[key]" not in result.stdout


def test_check_config_words_wrong_types_plainly(tmp_path: Path) -> None:
    text = TEST_CONFIG.replace("private: false", "private: maybe").replace(
        "leads: [U0LEAD002]", "leads: U0LEAD002"
    )
    result = check(tmp_path, text)
    assert result.returncode == 1
    assert "escalation.private: should be true or false" in result.stdout
    assert "topics[1].leads: should be a list" in result.stdout
    assert "Input should be" not in result.stdout


def test_a_yaml_syntax_error_is_one_line(tmp_path: Path) -> None:
    result = check(tmp_path, "topics:\n  - key: api\n   swarm_channel: [C0API0001\n")
    assert result.returncode == 1
    problems = result.stdout.strip().splitlines()[1:]
    assert len(problems) == 1 and problems[0].strip().startswith("line ")
    assert "not valid YAML" in problems[0] and "column" in problems[0]


def test_a_configuration_without_topics_is_refused(tmp_path: Path) -> None:
    for text in ("", "naming: {prefix: help}\n", "topics: []\n"):
        result = check(tmp_path, text)
        assert result.returncode == 1, text
        assert "topics: at least one topic is needed" in result.stdout


def test_an_unanchored_case_number_pattern_is_warned_about(tmp_path: Path) -> None:
    text = TEST_CONFIG.replace("number_pattern: '^\\d{3,10}$'", "number_pattern: '\\d{5}'")
    assert "'\\d{5}'" in text
    result = check(tmp_path, text)
    assert result.returncode == 0
    assert "warning: line 4: case.number_pattern: '\\d{5}' is not anchored" in result.stdout
    assert "write '^\\d{5}$'" in result.stdout
    assert "1 warning(s)" in result.stdout
    anchored = check(tmp_path, TEST_CONFIG)
    assert anchored.returncode == 0 and "warning" not in anchored.stdout
