"""The app's "Fetch from Zooniverse" dialog against the real loopback Panoptes server."""

from __future__ import annotations

import asyncio
import csv
import io
from concurrent.futures import ThreadPoolExecutor

from dashboard.app import create_app
from tests.panoptes_server import (  # noqa: F401  (panoptes_server is a fixture)
    PASSWORD,
    PROJECT_ID,
    USERNAME,
    data_file,
    panoptes_server,
    two_workflow_classifications,
)


def dialog(app, server, tmp_path, password):
    fetch = app.fetch
    fetch.param.update(project_id=PROJECT_ID, workflow_id=21790, endpoint=server.endpoint,
                       username=USERNAME, out_dir=str(tmp_path / "fetched"))
    fetch.password.value = password
    return fetch


def run_fetch(fetch):
    """The dialog's fetch coroutine run to its end on an event loop of its own.

    In its own thread, because the browser tests' playwright (sync API) keeps an event loop running
    in the main thread for the whole session when they run first in the same process.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, fetch.fetch()).result()


def rows_of_workflow(content: bytes, workflow_id: str) -> int:
    rows = csv.DictReader(io.StringIO(content.decode("utf-8"), newline=""))
    return sum(row["workflow_id"] == workflow_id for row in rows)


def test_the_dialog_fetches_off_the_event_loop_and_loads_the_project(panoptes_server, tmp_path, tiny_project):
    app = create_app(tiny_project)
    fetch = dialog(app, panoptes_server, tmp_path, PASSWORD)
    statuses, bar = [], []
    fetch.param.watch(lambda event: statuses.append(event.new), "status")
    fetch.progress.param.watch(lambda event: bar.append(event.new), "value")

    result = run_fetch(fetch)

    assert result is not None and set(result.paths) == {"classifications", "subjects", "workflows"}
    # Progress reached the widgets: stage messages, download sizes and rates, a filling bar.
    assert statuses[0] == "starting"
    assert any(text.startswith("downloading ") and " at " in text and text.endswith("/s") for text in statuses)
    assert bar and bar[-1] == 100
    assert fetch.running is False and fetch.button.disabled is False
    # The session now shows the fetched project: workflow 21790's rows of the two-workflow export.
    loaded = app.explorer.data_store.project
    assert loaded is fetch.project and loaded is not tiny_project
    expected = rows_of_workflow(two_workflow_classifications(), "21790")
    assert expected == 13
    assert len(loaded.classifications) == expected
    subject_rows = data_file("fetch/cat-project-subjects.csv").decode("utf-8").strip().splitlines()
    assert len(loaded.subjects) == len(subject_rows) - 1
    assert fetch.data_store is app.explorer.data_store
    assert fetch.message.alert_type == "success" and "13 classifications" in fetch.message.object
    # The password went to the server and nowhere else: not kept in the widget or any parameter.
    assert fetch.password.value == "" and fetch.password.value_input == ""
    assert all(PASSWORD not in repr(value) for value in fetch.param.values().values())
    assert PASSWORD not in " ".join(statuses)


def test_a_wrong_password_shows_an_escaped_error_and_loads_nothing(panoptes_server, tmp_path, tiny_project):
    app = create_app(tiny_project)
    fetch = dialog(app, panoptes_server, tmp_path, "<b>not</b>-" + PASSWORD)

    assert run_fetch(fetch) is None

    assert fetch.message.alert_type == "danger" and fetch.message.visible
    assert "LoginError" in fetch.message.object and "Invalid email or password." in fetch.message.object
    assert USERNAME in fetch.status and PASSWORD not in fetch.status
    assert "<b>" not in fetch.message.object
    assert fetch.project is None and app.explorer.data_store.project is tiny_project
    assert fetch.password.value == ""
    assert not (tmp_path / "fetched").exists() or not any((tmp_path / "fetched").glob("*.csv"))
