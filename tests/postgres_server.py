"""A real PostgreSQL server for tests: ``initdb`` and ``pg_ctl`` in a temporary directory.

The server listens on a free port of 127.0.0.1 with trust authentication and keeps its socket
in its own directory, so it never meets a system cluster. PostgreSQL refuses to run as root,
so under root its commands run as the ``postgres`` OS user (``runuser``) in a directory that
user owns. Tests skip, saying why, only when the PostgreSQL binaries are absent.

``postgres_server`` (one server per test session) and ``postgres_database`` (a fresh database
per test, dropped afterwards) are fixtures: import them into a test module.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

BINARIES = "/usr/lib/postgresql/*/bin"


@dataclass
class PostgresServer:
    """A running server: its binaries, its directory and its port."""

    bin_dir: Path
    root: Path
    port: int

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{database}"

    def execute(self, sql: str) -> None:
        """Run one statement outside a transaction (CREATE/DROP DATABASE need that)."""
        import psycopg2

        connection = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres")
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(sql)
        finally:
            connection.close()


def _bin_dir() -> Path | None:
    """The newest installed PostgreSQL's bin directory, if any."""
    found = [Path(path) for path in glob.glob(BINARIES)
             if (Path(path) / "initdb").is_file() and (Path(path) / "pg_ctl").is_file()]
    return max(found, key=lambda path: int(path.parent.name), default=None)


def _as_postgres(command: list) -> list[str]:
    command = [str(part) for part in command]
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _run(command: list, what: str, log: Path | None = None) -> None:
    result = subprocess.run(_as_postgres(command), capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        server_log = log.read_text(errors="replace") if log is not None and log.exists() else ""
        raise RuntimeError(f"{what} failed ({result.returncode}):\n{result.stdout}{result.stderr}{server_log}")


@contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server on loopback, stopped and deleted when the block ends (also for benchmarks)."""
    bin_dir = _bin_dir()
    if bin_dir is None:
        raise FileNotFoundError(f"PostgreSQL binaries not found ({BINARIES}/initdb); "
                                "install Debian's postgresql package")
    # Not under pytest's tmp_path: its parents are private to root, and the server runs as postgres.
    root = Path(tempfile.mkdtemp(prefix="zoolens-postgres-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    data, log = root / "data", root / "server.log"
    try:
        _run([bin_dir / "initdb", "-D", data, "--username=postgres", "--auth=trust",
              "--encoding=UTF8", "--no-locale", "--no-sync"], "initdb")
        port = _free_port()
        options = (f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root} "
                   "-c fsync=off")
        _run([bin_dir / "pg_ctl", "-D", data, "-l", log, "-o", options, "-w", "-t", "60", "start"],
             "pg_ctl start", log)
        try:
            yield PostgresServer(bin_dir, root, port)
        finally:
            _run([bin_dir / "pg_ctl", "-D", data, "-m", "fast", "-w", "stop"], "pg_ctl stop", log)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL server for the whole test session, stopped and deleted at the end."""
    if _bin_dir() is None:
        pytest.skip(f"PostgreSQL binaries not found ({BINARIES}/initdb); "
                    "install Debian's postgresql package to run these tests")
    with running_postgres() as server:
        yield server


@pytest.fixture
def postgres_database(postgres_server) -> str:
    """The URL of a new, empty database on the session's server; dropped after the test."""
    name = f"zoolens_{uuid.uuid4().hex}"
    postgres_server.execute(f"CREATE DATABASE {name}")
    yield postgres_server.url(name)
    postgres_server.execute(f"DROP DATABASE {name} WITH (FORCE)")
