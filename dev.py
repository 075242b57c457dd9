#!/usr/bin/env python3
"""Set up and run Swarm with nothing but Python: `python3 dev.py run` / `python3 dev.py test`.

Creates .venv, installs the locked dependencies (again only when a lock file changes), then
runs the bot (`swarmbot run`) or the whole test suite (pytest on SQLite and PostgreSQL).
Extra arguments are passed on: `python3 dev.py test -x -q -k intake`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")


def ensure_env(lock: str) -> None:
    """A virtualenv with exactly the locked packages and this project installed."""
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py may be started by an older Python
        sys.exit(f"Swarm needs Python 3.11 or newer (this is {sys.version.split()[0]}).")
    if not PYTHON.exists():
        print(f"creating {VENV.name}/", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    lock_path = ROOT / lock
    digest = hashlib.sha256(lock_path.read_bytes() + (ROOT / "pyproject.toml").read_bytes())
    stamp = VENV / f".installed-{lock}"
    if stamp.exists() and stamp.read_text() == digest.hexdigest():
        return
    print(f"installing {lock} into {VENV.name}/", flush=True)
    pip = [str(PYTHON), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", "--require-hashes", "-r", str(lock_path)], check=True)
    subprocess.run([*pip, "install", "--no-deps", "-e", str(ROOT)], check=True)
    for other in VENV.glob(".installed-*"):
        other.unlink()
    stamp.write_text(digest.hexdigest())


def run(args: list[str]) -> int:
    ensure_env("requirements.lock")
    config = Path(os.environ.get("SWARM_CONFIG", "swarm.yaml"))
    if not config.exists() and config == Path("swarm.yaml"):
        shutil.copy(ROOT / "swarm.example.yaml", config)
        print(
            "swarm.yaml did not exist: copied swarm.example.yaml; edit its topics "
            "(or use /swarm route in Slack).",
            flush=True,
        )
    return subprocess.call([str(BIN / "swarmbot"), "run", *args])


def test(args: list[str]) -> int:
    ensure_env("requirements-test.lock")
    # Two pytest workers per core, at most 8 (pytest-xdist): the suite mostly waits on timers,
    # subprocesses and servers, and each worker gets its own databases (a PostgreSQL server
    # each). `-n 0` runs it in one process.
    workers = min(8, 2 * (os.cpu_count() or 1))
    parallel = (
        []
        if any(a == "-n" or a.startswith(("-n", "--numprocesses")) for a in args)
        else ["-n", str(workers)]
    )
    return subprocess.call([str(PYTHON), "-m", "pytest", *parallel, *args], cwd=ROOT)


def main() -> int:
    commands = {"run": run, "test": test}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        print(__doc__.strip())
        return 2
    return commands[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
