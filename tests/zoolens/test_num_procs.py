"""`zoolens demo --num-procs 2` with a PostgreSQL review store: a decision made in a session of one
server process shows in a session of the other.

The command runs as a real subprocess (Bokeh forks its worker processes, which a server in a
test's thread could not do), on a real PostgreSQL started by the fixture, driven by Bokeh
protocol clients (`tests.bokeh_protocol`). Which process serves a session is read from
``/proc``: the process holding the server end of the session's websocket.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.bokeh_protocol import Client, run_apart
from tests.dashboard.serving import free_port
from tests.postgres_server import postgres_database, postgres_server  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.server, pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs /proc")]

ROOT = Path(__file__).resolve().parents[2]


def children(pid: int) -> list[int]:
    """Process ids of the direct children of ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]
            except OSError:
                continue
            if int(parent) == pid:
                found.append(int(entry.name))
    return found


def serving_process(client_port: int, server_port: int, candidates: list[int]) -> int | None:
    """The process among ``candidates`` that holds the server end of the connection from ``client_port``."""
    inode = None
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote = fields[1], fields[2]
            if int(local.rsplit(":", 1)[1], 16) == server_port and int(remote.rsplit(":", 1)[1], 16) == client_port:
                inode = fields[9]
    if inode is None:
        return None
    for pid in candidates:
        try:
            links = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
        except OSError:
            continue
        if f"socket:[{inode}]" in links:
            return pid
    return None


@pytest.fixture
def two_processes(tmp_path, postgres_database):
    """``zoolens demo --num-procs 2`` on the PostgreSQL database; yields (url, port, worker pids)."""
    port = free_port()
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "zoolens", "demo", "--folder", str(tmp_path / "demo"), "--port", str(port),
         "--num-procs", "2", "--reviews", postgres_database],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)  # its own process group: the forked workers end with it
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        # Both processes print the project's counts once their own load is done.
        while (tmp_path / "server.log").read_text().count("subjects,") < 2:
            assert server.poll() is None, (tmp_path / "server.log").read_text()
            assert time.monotonic() < deadline, "the two processes never loaded the demo"
            time.sleep(0.5)
        assert requests.get(url, timeout=60).status_code == 200
        workers = children(server.pid)
        assert len(workers) == 2, f"expected 2 server processes, found {workers}"
        yield url, port, workers
    finally:
        # The forked workers outlive a signal to their parent alone: end the whole group, as Ctrl-C does.
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
        log.close()


def test_a_decision_in_one_process_shows_in_the_other(two_processes):
    url, port, workers = two_processes

    async def scenario():
        # Sessions land on whichever process accepts first: open some until both have one.
        by_process: dict[int, Client] = {}
        opened = []
        for number in range(16):
            client = Client(url, number)
            await client.open()
            opened.append(client)
            local_port = client.socket.protocol.stream.socket.getsockname()[1]
            pid = serving_process(local_port, port, workers)
            assert pid is not None, "no server process holds the session's websocket"
            by_process.setdefault(pid, client)
            if len(by_process) == 2:
                break
        assert len(by_process) == 2, "every session landed on one process"
        deciding, watching = by_process.values()
        # Both show the same first subject; the watcher's table shows its review status.
        since = len(watching.patches)
        await deciding.decide()
        assert deciding.errors == [] and deciding.times["decide"], deciding.errors
        # The other process reads the store every few seconds (REVIEW_REFRESH_MS) and updates its page.
        assert await watching.wait_for("decide", time.perf_counter(), since, lambda patch: "accepted" in patch), \
            watching.errors
        for client in opened:
            await client.close()

    run_apart(scenario())
