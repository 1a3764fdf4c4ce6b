"""Closed sessions leave nothing behind: their documents go, and the shared tables forget their views."""

from __future__ import annotations

import gc
import time
import weakref
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from dashboard import memory
from dashboard.memory import RELEASE, forget_dead_views, freeze_loaded


def _dead_views(frame: pd.DataFrame) -> int:
    """Dead weak references in the copy-on-write reference lists of ``frame``'s blocks and index."""
    lists = [block.refs.referenced_blocks for block in frame._mgr.blocks] + [frame.index._references.referenced_blocks]
    return sum(reference() is None for references in lists for reference in references)


def _project_tables(project) -> list[pd.DataFrame]:
    return [value for value in vars(project).values() if isinstance(value, pd.DataFrame)]


def test_the_views_sessions_took_of_a_loaded_table_are_forgotten_once_gone():
    table = pd.DataFrame({"subject_id": np.arange(60), "n_marks": np.arange(60.0)})
    freeze_loaded(SimpleNamespace(table=table))  # the table is the loaded project's: frozen out of the collector
    try:
        for start in range(200):  # what sessions do: views of the shared table, dropped as they close
            view = table.iloc[start % 50:]
            del view
        assert _dead_views(table) >= 100  # pandas itself prunes them only at about 500
        forget_dead_views()
        assert _dead_views(table) == 0
        kept = table.iloc[:5]  # a view still alive is still known, so a write to it copies
        forget_dead_views()
        kept.iloc[0, 0] = -1
        assert table.iloc[0, 0] == 0
    finally:
        gc.unfreeze()


def _wait_until(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.05)


@pytest.mark.server
def test_closed_sessions_leave_no_document_and_no_views_of_the_project(tiny_project, monkeypatch):
    monkeypatch.setattr(RELEASE, "settle", 0.1)
    left_by_sessions = []  # dead views in the project's tables when the release came

    def counting():
        left_by_sessions.append(sum(_dead_views(table) for table in _project_tables(tiny_project)))
        forget_dead_views()

    monkeypatch.setattr(memory, "forget_dead_views", counting)
    # As `zoolens serve` does once its project has loaded (having printed its counts): the release prunes the
    # tables alive then.
    assert len(tiny_project.subject_stats) and len(tiny_project.classifications)
    freeze_loaded(tiny_project)
    try:
        dead_views, alive = _serve_three_sessions(tiny_project)
    finally:
        gc.unfreeze()
    assert alive == []
    assert left_by_sessions and left_by_sessions[0] > 0  # the sessions' views of the project, gone with them
    assert dead_views == 0


def _serve_three_sessions(tiny_project):
    """Serve ``tiny_project``, open three sessions, use and close them; the dead views in its tables after the
    release, and the sessions' documents still alive."""
    from tests.bokeh_protocol import Client, run_apart
    from tests.dashboard.serving import serving

    # Bokeh drops a session whose last connection closed after its unused lifetime, at its next check.
    with serving(lambda progress: tiny_project, "test-closed-sessions", "tiny",
                 unused_session_lifetime_milliseconds=500, check_unused_sessions_milliseconds=200) as running:
        async def open_use_and_close():
            clients = [Client(running.url, number) for number in range(3)]
            for client in clients:
                await client.open()
            for client in clients:
                await client.switch()
                await client.filter()
            documents = running.on_loop(
                lambda: [weakref.ref(session.document) for session in running.bokeh_server.get_sessions("/")])
            for client in clients:
                await client.close()
            return clients, documents

        before = RELEASE.releases
        clients, documents = run_apart(open_use_and_close())
        assert [error for client in clients for error in client.errors] == []
        assert len(documents) == 3
        _wait_until(lambda: not running.bokeh_server.get_sessions("/"))
        _wait_until(lambda: RELEASE.releases > before)
        alive = running.on_loop(lambda: [reference for reference in documents if reference() is not None])
        dead_views = running.on_loop(lambda: sum(_dead_views(table) for table in _project_tables(tiny_project)))
    return dead_views, alive
