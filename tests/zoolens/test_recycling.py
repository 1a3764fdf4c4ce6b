"""A served process gives its memory back once its sessions are gone, by a fresh process taking over.

`zoolens demo` runs as a real subprocess: the supervisor (`dashboard.recycling`) and the server it
starts, driven by Bokeh protocol clients (`tests.bokeh_protocol`); the decisions go to a real SQLite
store. The processes are found in ``/proc``.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dashboard import recycling
from dashboard.recycling import IdleRecycle, resident_mib
from project.reviews import open_store
from tests.bokeh_protocol import Client, run_apart
from tests.dashboard.serving import free_port
from tests.zoolens.test_num_procs import children

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="recycling needs Linux")

ROOT = Path(__file__).resolve().parents[2]

SERVER_LINE = re.compile(r"serving at http://\S+ .*\(process (\d+)\)")


@pytest.fixture
def asking_due_itself(monkeypatch):
    """For a test that asks `due` itself: the check the first session starts would stop the test's loop once due,
    and it comes round within the test when the collections `due` runs are slow (a large test process, a busy
    machine)."""
    monkeypatch.setattr(recycling, "CHECK_SECONDS", 3600.0)


def test_a_server_is_due_only_when_idle_long_enough_and_grown(asking_due_itself):
    async def scenario():
        grown = IdleRecycle(idle_seconds=0.2, growth_mib=-1e6)  # any size counts as grown
        assert grown.due() == ""  # nothing loaded yet: nothing to come back to
        grown.loaded()
        grown.session_opened()
        await asyncio.sleep(0.3)
        assert grown.due() == ""  # a session is open
        grown.session_closed(None)
        assert grown.due() == ""  # not idle for long enough
        await asyncio.sleep(0.3)
        assert grown.due().startswith("no session for 0 s and")
        small = IdleRecycle(idle_seconds=0.2, growth_mib=1e6)
        small.loaded()
        await asyncio.sleep(0.3)
        assert small.due() == ""  # idle, but holding no more than when loaded

    run_apart(scenario())  # a loop of its own: the browser tests' may run in this thread
    assert resident_mib() > 10
    with pytest.raises(ValueError, match="idle_seconds must be positive"):
        IdleRecycle(idle_seconds=0)


def test_the_warmed_up_size_is_the_one_to_come_back_to_unless_a_session_came_first(asking_due_itself):
    async def scenario():
        quiet, served = (IdleRecycle(idle_seconds=0.2, growth_mib=100) for _ in range(2))
        quiet.loaded()
        served.loaded()
        served.session_opened()
        # 300 MiB written after the load, as a warm-up's compiled code (a session's memory would hide in it too).
        warmed = b"w" * (300 << 20)
        quiet.warmed_up()
        served.warmed_up()
        served.session_closed(None)
        await asyncio.sleep(0.3)
        assert quiet.due() == ""  # no one served before the warm-up ended: its size is the loaded one
        assert served.due().startswith("no session for 0 s and")  # counted as growth
        del warmed

    run_apart(scenario())


def start_demo(tmp_path: Path, port: int, *options: str) -> tuple[subprocess.Popen, Path]:
    log = tmp_path / "server.log"
    server = subprocess.Popen(
        [sys.executable, "-m", "zoolens", "demo", "--folder", str(tmp_path / "demo"), "--port", str(port),
         "--reviews", str(tmp_path / "reviews.sqlite"), *options],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=log.open("w"), stderr=subprocess.STDOUT,
        start_new_session=True)
    return server, log


def wait_for(condition, what: str, log: Path, timeout: float = 300.0):
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, f"{what}; the log:\n{log.read_text()}"
        time.sleep(0.5)
    return found


def servers(log: Path) -> list[int]:
    """The server processes the log names, in the order they started."""
    return [int(pid) for pid in SERVER_LINE.findall(log.read_text())]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.server
def test_an_idle_server_is_replaced_once_its_sessions_close_and_decisions_stay(tmp_path):
    port = free_port()
    # Any size counts as grown: whether one session leaves the process larger after a collection and a trim is
    # the allocator's affair (it did not, now and then, and the server rightly stayed); `due`'s test covers size.
    server, log = start_demo(tmp_path, port, "--recycle-idle", "3", "--recycle-growth", "-1000000")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: log.read_text().count("subjects,") == 1, "the demo never loaded", log)
        first = servers(log)
        assert len(first) == 1 and children(server.pid) == first  # the supervisor's one server

        async def review_and_stay():
            reviewer = Client(url, 0)
            await reviewer.open()
            await reviewer.decide()
            # Past the idle time (3 s) and at least one check (every 5 s): an open session keeps its server.
            await asyncio.sleep(10)
            assert servers(log) == first and alive(first[0]), log.read_text()
            await reviewer.switch()
            assert reviewer.errors == [], reviewer.errors
            await reviewer.close()

        run_apart(review_and_stay())
        fresh = wait_for(lambda: servers(log)[1:], "no fresh server after the sessions closed", log)
        assert "ends to give that memory back" in log.read_text()
        wait_for(lambda: not alive(first[0]), "the first server is still running", log, timeout=60)
        assert children(server.pid) == fresh and server.poll() is None
        wait_for(lambda: log.read_text().count("subjects,") == 2, "the fresh server never loaded the demo", log)

        async def come_back():
            client = Client(url, 2)
            await client.open()
            await client.switch()
            assert client.errors == [], client.errors
            await client.close()

        run_apart(come_back())
        with open_store(tmp_path / "reviews.sqlite") as store:
            assert list(store.history().action) == ["accept"]  # made before the fresh server took over
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    assert server.returncode == -signal.SIGTERM  # the supervisor ends as its server did


@pytest.mark.server
def test_a_served_point_project_ends_with_its_supervisor_however_it_ends(tmp_path):
    penguins = ROOT / "tests" / "data" / "penguin_watch"
    log = tmp_path / "server.log"
    server = subprocess.Popen(
        [sys.executable, "-m", "zoolens", "serve", str(penguins / "penguin-watch-classifications-trim.csv"),
         str(penguins / "penguin-watch-subjects-trim.csv"), "--port", str(free_port()),
         "--reviews", str(tmp_path / "reviews.sqlite")],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=log.open("w"), stderr=subprocess.STDOUT,
        start_new_session=True)
    try:
        counts = wait_for(lambda: re.search(r"subjects, .* marks, .*", log.read_text()), "never loaded", log)
        assert counts[0].endswith("consensus points")  # the terminal said "consensus boxes" of points
        served = servers(log)[0]
        os.kill(server.pid, signal.SIGKILL)  # no chance to pass anything on
        server.wait(timeout=60)
        wait_for(lambda: not alive(served), "the server outlived its supervisor", log, timeout=60)
    finally:
        try:
            os.killpg(server.pid, signal.SIGKILL)
        except ProcessLookupError:  # every process of the group ended
            pass
