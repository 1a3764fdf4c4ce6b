"""Worker threads for sessions: one session's events in the order they arrived, sessions side by side."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time

import pytest
from bokeh.document import Document
from panel.io.state import state as panel_state

from dashboard.session_threads import SessionExecutor, session_of
from dashboard.views.review import ReviewPanel
from project.reviews import ReviewStore
from tests.bokeh_protocol import Client, find_models, run_apart
from tests.dashboard.serving import served, serving


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


def _review_table(document: dict) -> str:
    """The id of the review panel's box table (`dashboard.views.box_table.BoxTable`: a page component whose data
    names the box columns)."""
    for component in find_models(document, "ReactiveESM"):
        if "number_columns" in json.dumps(component) and "consensus_id" in json.dumps(component):
            return component["id"]
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
            table = _review_table(client.document)
            reject = client._model("Button", label="Reject")
            since, start = len(client.patches), time.perf_counter()
            # A click on the row of box 11, as the page sends it (the component's message event).
            await client._send("PATCH-DOC", {"events": [{"kind": "MessageSent", "msg_type": "bokeh_event", "msg_data": {
                "type": "event", "name": "data_event", "values": {"model": {"id": table}, "data": {"pick": 1}}}}]})
            await client._click(reject)
            await client.wait_for("decide", start, since, lambda patch: "rejected" in patch)
            await client.close()
            return client

        client = run_apart(pick_then_reject())
    history = store.history()
    store.close()
    assert client.errors == []
    assert history[["subject_id", "consensus_id", "action"]].values.tolist() == [[1, 11, "reject"]]


def test_a_change_for_a_document_not_served_is_made_at_once():
    """Outside a server (a notebook, a test) there is no event loop to hand the change to."""
    from bokeh.models import Range1d

    from dashboard.session_threads import in_document

    document, x_range = Document(), Range1d(0, 1)
    document.add_root(x_range)
    in_document(document, lambda: x_range.update(end=5))
    in_document(None, lambda: x_range.update(start=2))
    assert (x_range.start, x_range.end) == (2, 5)


def test_a_change_for_a_document_whose_session_closed_is_dropped():
    """A worker's change arriving after Bokeh destroyed the session's document: nobody is left to see it, and its
    models are half taken apart (setting them failed three ways and logged each)."""
    from bokeh.models import Range1d

    from dashboard.session_threads import in_document

    document, x_range = Document(), Range1d(0, 1)
    document.add_root(x_range)

    def session(event):  # what Bokeh's server session listens with
        pass

    document.on_change(session)
    document.destroy(session)
    changes = []
    in_document(document, lambda: changes.append("made"))
    assert changes == []


@pytest.mark.server
@pytest.mark.parametrize("num_threads", [4, 0])
def test_the_cutout_redrawn_on_a_worker_thread_reaches_the_page_in_order(tiny_project, num_threads):
    """The cutout sets its Bokeh models directly; a worker thread may not (Bokeh sends a document's changes
    only under its lock), so `in_document` hands them to the event loop. "Whole image" then "Next" twice,
    sent at once: no error, and the page's view ends where the server's is (the last subject's whole image)."""
    with serving(lambda progress: tiny_project, f"test-cutout-threads-{num_threads}", "tiny",
                 num_threads=num_threads) as running:
        async def widen_then_step():
            client = Client(running.url, 0)
            await client.open()  # subject 1, its first box picked and zoomed to
            since, start = len(client.patches), time.perf_counter()
            await client._click(client._model("Button", label="Whole image"))
            await client._click(client.next_button)
            await client._click(client.next_button)
            await client.wait_for("switch", start, since, lambda patch: "Subject 3" in patch)
            await asyncio.sleep(1.0)  # anything still scheduled arrives
            await client.close()
            return client

        client = run_apart(widen_then_step())
        (session,) = running.bokeh_server.get_sessions("/")
        on_server = running.on_loop(lambda: {model.id: (model.start, model.end)
                                             for model in session.document.models if type(model).__name__ == "Range1d"})
    assert client.errors == []
    in_page = {model["id"]: [model["attributes"].get("start", 0), model["attributes"].get("end", 1)]  # Bokeh's defaults
               for model in find_models(client.document, "Range1d")}
    for patch in client.patches:  # applied in the order they came, as BokehJS does
        for event in json.loads(patch)["events"]:
            if event.get("kind") == "ModelChanged" and event["model"]["id"] in in_page and event["attr"] in ("start", "end"):
                in_page[event["model"]["id"]][event["attr"] == "end"] = event["new"]
    assert {key: tuple(value) for key, value in in_page.items()} == on_server
    assert re.findall(r"Subject (\d+)", next(patch for patch in reversed(client.patches) if "Subject " in patch))[-1] == "3"


def test_a_task_of_a_session_destroyed_while_it_waited_is_skipped(caplog):
    """A periodic refresh queued as its session closed finds the document destroyed: it does not run, and its
    future ends without an error (Panel's done-callback logged a traceback for a cancelled one)."""
    pool, session, ran = SessionExecutor(1), Document(), []
    released = threading.Event()
    first = pool.submit(lambda document: released.wait(10), session)
    waiting = pool.submit(lambda document: ran.append("ran"), session)
    def server_session(event):  # what the server's session listens with
        pass

    session.on_change(server_session)
    session.destroy(server_session)  # as Bokeh does when it discards a closed session
    waiting.add_done_callback(panel_state._handle_future_exception)  # as Panel adds to the futures it submits
    released.set()
    assert first.result(timeout=10) is True
    assert waiting.result(timeout=10) is None and not waiting.cancelled()
    assert ran == [] and not [record for record in caplog.records if record.levelname == "ERROR"]
    assert pool.submit(lambda document: "next", Document()).result(timeout=10) == "next"
    pool.shutdown()


@pytest.mark.server
def test_a_switch_on_a_worker_thread_reaches_the_page_as_one_message(tiny_project):
    """On worker threads, Panel schedules each widget's update (and the cutout its figure's) on the event loop,
    and Bokeh sent each one's changes as a message of its own (16 per switch on the demo); `one_patch.held`
    sends them together, as a switch on the event loop is sent."""
    with serving(lambda progress: tiny_project, "test-one-patch", "tiny", num_threads=4) as running:
        async def step():
            client = Client(running.url, 0)
            await client.open()
            await asyncio.sleep(1.0)  # the page's opening work is done
            since, start = len(client.patches), time.perf_counter()
            await client._click(client.next_button)
            await client.wait_for("switch", start, since, lambda patch: "Subject 2" in patch)
            await asyncio.sleep(1.0)  # anything sent apart would have arrived
            await client.close()
            return client.patches[since:], client.errors

        patches, errors = run_apart(step())
    assert errors == []
    assert len(patches) == 1
    changed = {(event["kind"], event.get("attr")) for event in json.loads(patches[0])["events"]}
    # The caption, the cutout's sources and ranges, and the subject table's row, all in the one message.
    assert {("ColumnDataChanged", "data"), ("ModelChanged", "text"), ("ModelChanged", "start")} <= changed
    assert "Subject 2" in patches[0] and "indices" in patches[0]
