"""Worker threads for sessions: one session's events in the order they arrived, sessions side by side."""

from __future__ import annotations

import threading
import time

import pytest
from bokeh.document import Document

from dashboard.session_threads import SessionExecutor, session_of
from dashboard.views.review import ReviewPanel
from project.reviews import ReviewStore
from tests.bokeh_protocol import Client, find_models, run_apart
from tests.dashboard.serving import served


def test_a_sessions_tasks_run_in_the_order_they_were_submitted_even_when_the_first_is_slow():
    pool, session, ran = SessionExecutor(4), Document(), []
    first_started = threading.Event()

    def slow():
        first_started.set()
        time.sleep(0.3)  # long enough for a free thread to start the next task, were it allowed
        ran.append("first")

    futures = [pool.submit(lambda document: slow(), session)]
    first_started.wait(10)
    futures += [pool.submit(lambda document, n=n: ran.append(n), session) for n in range(5)]
    for future in futures:
        future.result(timeout=10)
    pool.shutdown()
    assert ran == ["first", 0, 1, 2, 3, 4]


def test_sessions_run_side_by_side():
    """A session whose callback waits does not hold up another session's."""
    pool, waiting, other = SessionExecutor(2), Document(), Document()
    released = threading.Event()
    blocked = pool.submit(lambda document: released.wait(10), waiting)
    pool.submit(lambda document: released.set(), other).result(timeout=10)
    assert blocked.result(timeout=10) is True
    pool.shutdown()


def test_an_error_reaches_the_future_and_the_session_goes_on():
    pool, session = SessionExecutor(2), Document()

    def fail(document):
        raise ValueError("bad click")

    failed = pool.submit(fail, session)
    after = pool.submit(lambda document: "next", session)
    with pytest.raises(ValueError, match="bad click"):
        failed.result(timeout=10)
    assert after.result(timeout=10) == "next"
    pool.shutdown()


def test_the_session_of_a_task_is_found_where_panel_puts_it():
    from functools import partial

    session = Document()

    class Periodic:
        _doc = session

        def run(self, flag):
            return flag

    assert session_of(print, (session, "event")) is session
    assert session_of(partial(print, session), ()) is session
    assert session_of(Periodic().run, (True,)) is session


def _review_table_selection(document: dict) -> str:
    """The id of the review panel's box table's selection model (its source has a consensus_id column)."""
    for source in find_models(document, "ColumnDataSource"):
        data = source.get("attributes", {}).get("data", {})
        entries = data.get("entries", []) if isinstance(data, dict) else []
        names = [entry[0] for entry in entries if isinstance(entry, list)]
        if "consensus_id" in names and "status" in names:
            return source["attributes"]["selected"]["id"]
    raise LookupError("no box table in the page")


@pytest.mark.server
@pytest.mark.parametrize("num_threads", [4, None])
def test_a_box_picked_and_rejected_at_once_is_the_box_rejected(tiny_project, tmp_path, monkeypatch, num_threads):
    """The row click and the Reject click arrive together; the row's handler is slow, so a thread
    pool that ran them side by side would reject the box picked before (the first)."""
    pick_box = ReviewPanel._pick_box

    def slow_pick(self, event):
        time.sleep(0.5)
        pick_box(self, event)

    monkeypatch.setattr(ReviewPanel, "_pick_box", slow_pick)
    store = ReviewStore(path=tmp_path / "reviews.sqlite")
    options = {} if num_threads is None else {"num_threads": num_threads}  # None: serve's default
    with served(tiny_project, f"test-order-{num_threads}", reviews=store, **options) as url:
        async def pick_then_reject():
            client = Client(url, 0)
            await client.open()  # subject 1 shows, its first box (10) picked; the client types a name
            selection = _review_table_selection(client.document)
            reject = client._model("Button", label="Reject")
            since, start = len(client.patches), time.perf_counter()
            await client._change(selection, "indices", [1])  # the row of box 11
            await client._click(reject)
            await client.wait_for("decide", start, since, lambda patch: "rejected" in patch)
            await client.close()
            return client

        client = run_apart(pick_then_reject())
    history = store.history()
    store.close()
    assert client.errors == []
    assert history[["subject_id", "consensus_id", "action"]].values.tolist() == [[1, 11, "reject"]]
