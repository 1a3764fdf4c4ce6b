"""Loading in the background: progress while the page paints, the views after, errors as text.

The demo export's counts are the demo's own construction (`zoolens.demo`): 912
classifications of workflow 9001 v13.10 plus its `DIRT`, 15 rows skipped (6 of
another workflow, 8 of an older version, 1 of broken JSON): 927 rows in all.
"""

from __future__ import annotations

import html
import time

import pytest
from panel.io.callbacks import PeriodicCallback

from data_loaders.base import FormatError, LoadReport
from dashboard.loading import load_report_panel, shared_load, skipped_summary
from project import load_project
from project.progress import FAILED, READY, LoadProgress, ProjectLoad
from tests.dashboard.serving import PausedLoad, serving
from zoolens import demo

DEMO_ROWS = 927
DEMO_LOADED = 912
DEMO_SKIPPED = 15
WORKFLOW = {"workflow_id": demo.WORKFLOW_ID, "workflow_version": demo.WORKFLOW_VERSION}


def test_progress_records_stages_rows_and_reports():
    progress = LoadProgress()
    progress.plan(2)
    assert progress.snapshot().percent == 0 and progress.snapshot().stage == ""
    progress.stage("Reading a.csv")
    progress.rows(500)
    progress.rows(1200)
    report = LoadReport("a.csv", "classifications", rows_read=1200, rows_loaded=1200)
    progress.report(report)
    state = progress.snapshot()
    assert (state.stage, state.rows, state.completed, state.steps, state.percent) == ("Reading a.csv", 1200, 0, 2, 0)
    progress.stage("Building")
    state = progress.snapshot()
    assert (state.stage, state.rows, state.completed, state.percent) == ("Building", None, 1, 50)
    assert state.finished[0].startswith("Reading a.csv, 1,200 rows (")
    progress.finish()
    state = progress.snapshot()
    assert (state.stage, state.completed, state.percent) == ("", 2, 100)
    assert state.reports == (report,)


def test_load_project_reports_each_stage_and_the_rows_read(demo_export):
    progress = LoadProgress()
    project = load_project([demo_export], method="iou", progress=progress, **WORKFLOW)
    progress.finish()
    state = progress.snapshot()
    assert (state.completed, state.steps) == (3, 3)
    assert state.finished[0].startswith(f"Reading demo-classifications.csv (file 1 of 1), {DEMO_ROWS:,} rows")
    assert state.finished[1].startswith("Making the consensus (iou method) of ")
    assert state.finished[2].startswith("Building the statistics")
    assert [report.rows_skipped for report in state.reports] == [DEMO_SKIPPED]
    assert project.reports == state.reports


def test_a_failed_load_keeps_its_error_and_the_reports_read_before_it(demo_export, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"\x00\x01 not a table\n")
    load = ProjectLoad(lambda progress: load_project([demo_export, bad], progress=progress, **WORKFLOW),
                       title="broken").start()
    assert load.wait(120)
    assert load.status == FAILED and isinstance(load.error, FormatError)
    text = load.failure_text()
    assert text.startswith(f"{bad}: format could not be identified")  # the file named, no Python type
    assert f"{DEMO_ROWS} rows read, {DEMO_LOADED} loaded, {DEMO_SKIPPED} skipped" in text
    assert load.progress.snapshot().completed == 2  # the file read, and the one that failed


def test_skips_are_summarised_and_shown_escaped():
    report = LoadReport("/data/<img src=x>.csv", "classifications", rows_read=10, rows_loaded=7)
    report.skip("<script>alert(1)</script>", [3, 5])
    report.skip("other workflow", [7])
    assert skipped_summary([report]) == "3 rows skipped while loading (2 <script>alert(1)</script>; 1 other workflow)"
    assert skipped_summary([LoadReport("a.csv", "subjects", 3, 3)]) == ""
    card = load_report_panel([report])
    # A badge in the sidebar: two reasons, three rows.
    assert card.title == "⚠ 2 warnings: 3 rows skipped" and "zoolens-load-warnings" in card.css_classes
    assert card.header_background == "#ffc107"
    assert load_report_panel([LoadReport("a.csv", "subjects", 3, 3)]).title == "Load report: no rows skipped"
    body = card.objects[0].object
    assert "<script>" not in body and "<img" not in body
    assert "2 &lt;script&gt;alert(1)&lt;/script&gt; (lines 3, 5)" in body
    assert "<b>&lt;img src=x&gt;.csv</b> (classifications): 10 rows read, 7 loaded, 3 skipped" in body


@pytest.mark.server
def test_a_page_paints_with_progress_during_a_slow_load_then_shows_the_views(demo_export):
    paused = PausedLoad([demo_export], method="iou", **WORKFLOW)
    with serving(paused.build, "test-loading-slow", title="slow demo") as server:
        assert paused.reached.wait(60)
        # The load holds inside the classification loader; the server answers all the same.
        with server.connected_page() as waiting:
            types, text = server.contents(waiting)
            assert "Progress" in types and "DataTabulator" not in types
            assert "Loading slow demo" in text
            assert f"Step 1 of 2: Reading demo-classifications.csv (file 1 of 1): {DEMO_ROWS:,} rows read" in text

            paused.release.set()
            assert shared_load("test-loading-slow", paused.build, "slow demo").wait(120)
            types, text = server.wait_for(waiting, "of 60 subjects", model="DataTabulator")  # the subject table
            assert "<b>60</b> of 60 subjects" in text
            assert "Loading slow demo" not in text and "rows read…" not in text  # the progress view is gone

        # A session opened after the load gets the views straight away, with the load report.
        later = server.open_page("/")
        types, text = server.contents(later)
        assert "DataTabulator" in types and "Loading slow demo" not in text
        assert "<b>60</b> of 60 subjects" in text


@pytest.mark.server
def test_a_page_no_browser_connects_to_starts_no_watcher_during_a_load(demo_export, monkeypatch):
    """A plain GET (a health check, a link preview) makes a session no browser connects to; the loading page's
    watcher starts once a page has loaded, so such a session costs nothing while the load runs. Started at once,
    Panel retried starting it on every tick of the server's loop until the session expired."""
    starts = []
    start = PeriodicCallback.start
    monkeypatch.setattr(PeriodicCallback, "start", lambda callback: starts.append(callback) or start(callback))
    paused = PausedLoad([demo_export], method="iou", **WORKFLOW)
    try:
        with serving(paused.build, "test-loading-unconnected", title="slow demo") as server:
            assert paused.reached.wait(60)
            for _ in range(3):
                assert "Loading slow demo" in server.contents(server.open_page("/"))[1]
            assert starts == []
            with server.connected_page():  # a browser's page: its watcher follows the load
                deadline = time.monotonic() + 30
                while not starts and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert len({id(callback) for callback in starts}) == 1  # one watcher (Panel may retry its start once)
    finally:
        paused.release.set()


@pytest.mark.server
def test_a_failed_load_shows_its_error_and_report_escaped_and_the_server_keeps_running(demo_export, tmp_path):
    bad = tmp_path / "<img src=x onerror=alert(1)>.csv"
    bad.write_bytes(b"\x00\x01 not a table\n")
    paused = PausedLoad([demo_export, bad], **WORKFLOW)
    with serving(paused.build, "test-loading-fails", title="broken") as server:
        assert paused.reached.wait(60)
        with server.connected_page() as waiting:
            paused.release.set()
            assert shared_load("test-loading-fails", paused.build, "broken").wait(120)
            assert shared_load("test-loading-fails", paused.build, "broken").status == FAILED
            types, text = server.wait_for(waiting, "could not be loaded")
        assert "DataTabulator" not in types and "Loading broken" not in text
        escaped_name = html.escape(str(bad))
        assert f"{escaped_name}: format could not be identified" in text and "FormatError" not in text
        assert str(bad) not in text  # never as markup
        assert f"{DEMO_ROWS} rows read, {DEMO_LOADED} loaded, {DEMO_SKIPPED} skipped" in text
        # Later sessions see the same failure, and the server still serves them.
        types, text = server.contents(server.open_page("/"))
        assert "could not be loaded" in text and escaped_name in text


@pytest.mark.server
def test_a_successful_load_tells_each_session_how_many_rows_were_skipped(demo_export):
    paused = PausedLoad([demo_export], **WORKFLOW)
    paused.release.set()
    with serving(paused.build, "test-loading-report", title="report") as server:
        load = shared_load("test-loading-report", paused.build, "report")
        assert load.wait(120) and load.status == READY
        types, text = server.contents(server.open_page("/"))
        assert f"⚠ 3 warnings: {DEMO_SKIPPED} rows skipped" in text  # a badge in the sidebar
        assert (f"demo-classifications.csv</b> (classifications): {DEMO_ROWS:,} rows read, "
                f"{DEMO_LOADED:,} loaded, {DEMO_SKIPPED:,} skipped") in text
        for count, reason in ((6, "other workflow (kept workflow 9001)"),
                              (8, "other workflow version (kept 13.10)"),
                              (1, "annotations is not valid JSON (a list of tasks)")):
            assert f"<li>{count} {html.escape(reason)} (lines" in text


def test_the_sidebar_says_which_method_made_the_consensus(tiny_project):
    from pathlib import Path

    from dashboard.loading import consensus_line

    penguins = Path(__file__).resolve().parents[1] / "data" / "penguin_watch" / "penguin-watch-classifications-trim.csv"
    # Each kind of mark its own method: clicks get the point method.
    project = load_project([penguins], workflow_id=6465, method="auto")
    assert len(project.consensus) > 100
    assert consensus_line(project).object == "<small>Consensus made by <b>point</b> (clicks).</small>"
    assert consensus_line(tiny_project).object == "<small>Consensus given with the tables.</small>"
    bare = load_project([penguins], workflow_id=6465, method=None)
    assert consensus_line(bare).object == "<small>No consensus: the marks are shown alone.</small>"


def test_a_failure_in_what_the_user_gave_reads_as_its_message_and_any_other_with_its_type(tmp_path):
    def failing(error):
        def build(progress):
            raise error
        load = ProjectLoad(build, title="failing").start()
        assert load.wait(60)
        return load.error_text()

    missing = tmp_path / "classifications.csv"
    assert failing(FileNotFoundError(f"{missing}: no such file")) == f"{missing}: no such file"
    assert failing(ValueError("no classification export among x.csv")) == "no classification export among x.csv"
    assert failing(RuntimeError("a bug")) == "RuntimeError: a bug"  # not the user's to fix: the type helps a report
