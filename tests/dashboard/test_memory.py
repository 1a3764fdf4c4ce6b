"""Closed sessions' memory: collected once a burst of sessions is gone, and the allocator trimmed."""

from __future__ import annotations

import gc
import time
import weakref

import pytest

from dashboard.memory import MALLOC_TRIM, RELEASE, MemoryRelease, freeze_loaded


class Node:
    """An object in a reference cycle, as a closed session's views and models are."""

    def __init__(self):
        self.me = self


def _wait_until(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.05)


def test_a_burst_of_closed_sessions_is_collected_once_after_the_last():
    release = MemoryRelease(settle=0.3)
    gc.disable()  # only the release may collect the cycle
    try:
        cycle = Node()
        gone = weakref.ref(cycle)
        del cycle
        for _ in range(5):
            release.session_closed(None)
            time.sleep(0.05)
        assert gone() is not None and release.releases == 0  # still settling
        _wait_until(lambda: release.releases == 1)
        assert gone() is None
        time.sleep(0.5)
        assert release.releases == 1
    finally:
        gc.enable()


def test_what_is_alive_when_the_project_loaded_is_left_out_of_later_collections():
    gc.disable()
    try:
        dropped = Node()
        gone_before = weakref.ref(dropped)
        del dropped
        kept = Node()
        freeze_loaded()
        assert gone_before() is None  # garbage at the time is collected, not frozen
        assert gc.get_freeze_count() > 0 and not any(obj is kept for obj in gc.get_objects())
        later = Node()
        gone_later = weakref.ref(later)
        del later
        gc.collect()
        assert gone_later() is None  # a session's objects, made after, are collected as before
    finally:
        gc.unfreeze()  # this test process's objects go back to the collector
        gc.enable()


def test_glibc_trim_is_found_on_linux():
    import platform

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        pytest.skip("malloc_trim is glibc's")
    assert MALLOC_TRIM is not None


@pytest.mark.server
def test_a_served_sessions_objects_are_released_when_it_is_destroyed(tiny_project, monkeypatch):
    from dashboard.explorer import Explorer
    from tests.bokeh_protocol import Client, run_apart
    from tests.dashboard.serving import serving

    made = []  # this test's sessions' explorers, held weakly
    make = Explorer.__init__

    def recording(self, *args, **kwargs):
        make(self, *args, **kwargs)
        made.append(weakref.ref(self))

    monkeypatch.setattr(Explorer, "__init__", recording)
    monkeypatch.setattr(RELEASE, "settle", 0.1)
    before = RELEASE.releases
    # Bokeh drops a session whose last connection closed after its unused lifetime, at its next check.
    with serving(lambda progress: tiny_project, "test-memory", "tiny", unused_session_lifetime_milliseconds=500,
                 check_unused_sessions_milliseconds=200) as running:
        async def open_and_close():
            client = Client(running.url, 0)
            await client.open()
            await client.switch()
            await client.close()
            return client

        client = run_apart(open_and_close())
        assert client.errors == []
        _wait_until(lambda: RELEASE.releases > before and not running.bokeh_server.get_sessions("/"))
        alive = running.on_loop(lambda: [ref for ref in made if ref() is not None])
    assert made and alive == []
