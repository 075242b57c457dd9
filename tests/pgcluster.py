"""A throwaway PostgreSQL server for the test session (real server, loopback only)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def find_bindir() -> Path | None:
    """The directory holding initdb and pg_ctl, if PostgreSQL is installed."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).resolve().parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda p: int(Path(p).parent.parent.name),
        reverse=True,
    )
    return Path(candidates[0]).parent if candidates else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TempPostgres:
    """initdb + pg_ctl in a temporary directory; root drops to the postgres user."""

    def __init__(
        self, bindir: Path, datadir: Path | None = None, shared_buffers: str = "128MB"
    ) -> None:
        self.bindir = bindir
        self.shared_buffers = shared_buffers
        self.port = free_port()
        # A given directory outlives the server (a benchmark's kept corpus); else a temporary one.
        self.keep = datadir is not None
        self.datadir = (datadir or Path(tempfile.mkdtemp(prefix="swarm-pg-"))).resolve()
        self.datadir.mkdir(parents=True, exist_ok=True)
        self._user = None
        if os.geteuid() == 0:
            try:
                self._user = pwd.getpwnam("postgres")
            except KeyError:
                self._user = pwd.getpwnam("nobody")
            os.chown(self.datadir, self._user.pw_uid, self._user.pw_gid)

    def _run(self, *args: str) -> None:
        def drop() -> None:
            if self._user is not None:
                os.setgid(self._user.pw_gid)
                os.setuid(self._user.pw_uid)

        env = {**os.environ, "LC_ALL": "C", "PGTZ": "UTC"}
        subprocess.run(
            args, check=True, preexec_fn=drop, env=env, capture_output=True, cwd=str(self.datadir)
        )

    def start(self) -> str:
        """Start the server (initdb first when the directory is new); return a SQLAlchemy URL
        of its `postgres` database."""
        data = str(self.datadir / "data")
        if not (self.datadir / "data" / "PG_VERSION").exists():
            self._initdb(data)
        self._serve()
        return self.url("postgres")

    def _initdb(self, data: str) -> None:
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            data,
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )

    def _serve(self) -> None:
        data = str(self.datadir / "data")
        options = (
            f"-p {self.port} -k {self.datadir} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            f"-c max_connections=200 -c shared_buffers={self.shared_buffers}"
        )
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            data,
            "-o",
            options,
            "-l",
            str(self.datadir / "log"),
            "-w",
            "-t",
            "60",
            "start",
        )

    def halt(self) -> None:
        """Stop the server as an operator would (connections dropped), keeping its data."""
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.datadir / "data"),
            "-m",
            "fast",
            "-w",
            "stop",
        )

    def resume(self) -> None:
        """Start a halted server again on the same port and data."""
        self._serve()

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        try:
            self._run(
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.datadir / "data"),
                "-m",
                "fast" if self.keep else "immediate",
                "-w",
                "stop",
            )
        finally:
            if not self.keep:
                shutil.rmtree(self.datadir, ignore_errors=True)

    def create_database(self, name: str) -> str:
        """Create a database on the running server; return its SQLAlchemy URL."""
        from storage.db import create_db_engine

        admin = create_db_engine(self.url("postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.exec_driver_sql(f"CREATE DATABASE {name}")
        admin.dispose()
        return self.url(name)


@contextmanager
def throwaway_postgres(database: str = "bench", *, wanted: bool = True) -> Iterator[str | None]:
    """A private server with one database for the block (None when PostgreSQL is missing)."""
    bindir = find_bindir() if wanted else None
    if bindir is None:
        yield None
        return
    server = TempPostgres(bindir)
    server.start()
    try:
        yield server.create_database(database)
    finally:
        server.stop()


@contextmanager
def kept_postgres(
    datadir: Path, database: str = "bench", shared_buffers: str = "128MB"
) -> Iterator[str | None]:
    """A private server on a directory that is kept (created on first use), with one database;
    None when PostgreSQL is missing. For benchmarks that reuse a corpus between runs."""
    bindir = find_bindir()
    if bindir is None:
        yield None
        return
    server = TempPostgres(bindir, datadir, shared_buffers)
    server.start()
    try:
        from storage.db import create_db_engine

        admin = create_db_engine(server.url("postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            found = connection.exec_driver_sql(
                "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
            ).first()
        admin.dispose()
        yield server.url(database) if found else server.create_database(database)
    finally:
        server.stop()
