"""The assembled app: sessions get their own data store; a real Panel server on loopback serves it."""

from __future__ import annotations

import logging
import time

import pytest
import requests

from dashboard.app import create_app
from dashboard.data_store import DataStore
from tests.dashboard.serving import served


def test_each_session_gets_its_own_data_store(tiny_project):
    first, second = create_app(tiny_project), create_app(tiny_project)
    store = first.explorer.data_store
    assert store is not second.explorer.data_store
    assert store.project is second.explorer.data_store.project
    assert first.explorer.cutout.data_store is store
    store.min_volunteers = 3
    assert len(second.explorer.data_store.subjects) == 3


@pytest.fixture
def served_url(tiny_project, caplog):
    caplog.set_level(logging.INFO, logger="zoolens")  # from before the server starts: its warm-up is logged
    with served(tiny_project, "test-app") as url:
        yield url


@pytest.mark.server
def test_the_server_serves_the_page_and_confined_images(served_url, tiny_project, caplog):
    page = requests.get(served_url, timeout=30)
    assert page.status_code == 200
    assert "zoolens · tiny" in page.content.decode("utf-8")
    thumbnail = requests.get(f"{served_url}/zoolens-images/0/images/1.png", timeout=10)
    assert thumbnail.status_code == 200
    assert thumbnail.content == (tiny_project.image_roots[0] / "images" / "1.png").read_bytes()
    # ../outside.png exists next to the image root but must not be served.
    escaped = requests.get(f"{served_url}/zoolens-images/0/%2E%2E/outside.png", timeout=10)
    assert escaped.status_code in (403, 404)
    # Once the project has loaded, the server warms the Agreement plots up in a thread of its own
    # (`dashboard.warm_up`), while it serves.
    deadline = time.monotonic() + 120
    # Logged during the fixture's setup or during the test, whichever the warm-up's own pace makes it.
    while not any("plots warmed up" in record.message for record in caplog.get_records("setup") + caplog.records):
        assert time.monotonic() < deadline, "the server never warmed the Agreement plots up"
        time.sleep(0.1)


def test_keys_step_through_the_filtered_subjects(tiny_project):
    from dashboard.keyboard import Shortcuts

    store = DataStore(project=tiny_project)
    keys = Shortcuts(data_store=store)
    keys._handle_msg({"key": "ArrowRight"})
    assert store.subject == 2
    keys._handle_msg({"key": "k"})
    keys._handle_msg({"key": "k"})
    assert store.subject == 3
    keys._handle_msg({"key": "Enter"})
    keys._handle_msg("junk")
    keys._handle_msg({"key": "a"})  # without a review panel, review keys do nothing
    assert store.subject == 3


def test_callback_errors_become_escaped_notifications():
    import panel as pn
    from bokeh.document import Document
    from panel.io.notifications import NotificationArea

    from dashboard.app import notify_error

    document = Document()
    with pn.io.server.set_curdoc(document):
        area = NotificationArea()
        pn.state._notifications[document] = area
        notify_error(ValueError("<img src=x onerror=alert(1)>"))
    assert [note.message for note in area.notifications] == ["ValueError: &lt;img src=x onerror=alert(1)&gt;"]
    assert area.notifications[0].notification_type == "error"


@pytest.mark.server
@pytest.mark.parametrize("num_threads", [4, None, 0])
def test_sessions_callbacks_run_on_worker_threads_unless_told_not_to(tiny_project, monkeypatch, num_threads):
    import threading

    from dashboard.app import DEFAULT_THREADS
    from tests.bokeh_protocol import Client, run_apart

    ran_on = []
    step_subject = DataStore.step_subject

    def recording(self, step):
        ran_on.append(threading.current_thread().name)
        step_subject(self, step)

    monkeypatch.setattr(DataStore, "step_subject", recording)
    options = {} if num_threads is None else {"num_threads": num_threads}
    with served(tiny_project, f"test-threads-{num_threads}", **options) as url:
        async def click_next():
            client = Client(url, 0)
            await client.open()
            await client.switch()  # "Next ▶", answered by the next subject's caption
            await client.close()
            return client

        client = run_apart(click_next())
    assert client.errors == [] and len(ran_on) == 1
    if num_threads != 0:  # worker threads (the default), each session's callbacks in order (dashboard.session_threads)
        assert DEFAULT_THREADS >= 1 and ran_on[0].startswith("zoolens-session")
    else:  # the server's event loop
        assert not ran_on[0].startswith("zoolens-session")
