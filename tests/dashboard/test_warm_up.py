"""The warm-up of a server process's Agreement plots: what it leaves compiled, what the tab says while it runs,
and a warm-up that fails or has nothing to draw."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
from pathlib import Path

from dashboard.data_store import DataStore
from dashboard.explorer import TABS, Explorer
from dashboard.views.agreement import AgreementPlots
from dashboard.warm_up import warm_up_in_background, warming_up
from project import Project

ROOT = Path(__file__).resolve().parents[2]

#: In a fresh interpreter (numba compiles once per process): the functions numba compiles while the tiny project's
#: plots warm up, then while a session's Agreement tab is drawn, as JSON.
COMPILED_IN_A_FRESH_PROCESS = """
import json, sys
from pathlib import Path

import numba.core.event as numba_event
import panel as pn
from bokeh.document import Document

from dashboard.data_store import DataStore
from dashboard.views.agreement import AgreementPlots
from tests.dashboard import tiny

project = tiny.tiny_project(Path(sys.argv[1]))
compiled = {}
for step in ("warm-up", "first visit"):
    recorder = numba_event.RecordingListener()
    numba_event.register("numba:compile", recorder)
    plots = AgreementPlots(data_store=DataStore(project=project))
    plots.warm_up() if step == "warm-up" else pn.panel(plots).get_root(Document())
    numba_event.unregister("numba:compile", recorder)
    compiled[step] = [event.data["dispatcher"].py_func.__qualname__ for _, event in recorder.buffer if event.is_end]
print(json.dumps(compiled))
"""


def plots_of(project):
    """The warm-up `dashboard.app.serve` gives a loaded project: its Agreement plots drawn once off screen."""
    return lambda: AgreementPlots(data_store=DataStore(project=project)).warm_up()


def test_after_the_warm_up_the_first_visit_to_the_tab_compiles_nothing(tmp_path):
    output = subprocess.run([sys.executable, "-c", COMPILED_IN_A_FRESH_PROCESS, str(tmp_path)], cwd=ROOT,
                            check=True, capture_output=True, text=True, timeout=300).stdout
    compiled = json.loads(output.strip().splitlines()[-1])
    assert "extend_cpu" in compiled["warm-up"]  # datashader's point kernel, compiled for these plots' columns
    assert compiled["first visit"] == []


def test_the_agreement_tab_says_why_it_takes_longer_while_the_warm_up_runs(tiny_project, caplog):
    caplog.set_level(logging.INFO, logger="zoolens")
    release = threading.Event()
    # Held running at its last step until released: the tab of a session opened meanwhile says why it waits.
    warming = warm_up_in_background(plots_of(tiny_project), then=lambda: release.wait(60))
    try:
        agreement = Explorer(tiny_project).tabs()[TABS.index("Agreement")]
        assert warming_up()
        assert "still preparing these plots" in agreement[0].object
    finally:
        release.set()
        warming.join(60)
    assert not warming_up()
    assert any("plots warmed up" in record.message for record in caplog.records)
    tabs = Explorer(tiny_project).tabs()
    assert "still preparing" not in tabs[TABS.index("Agreement")][0].object
    assert "Preparing the Agreement tab…" in tabs[TABS.index("Agreement")][0].object


def test_a_warm_up_that_fails_is_logged_and_one_without_marks_draws_nothing(tiny_tables, caplog):
    caplog.set_level(logging.INFO, logger="zoolens")
    over = []
    warm_up_in_background(plots_of(None), then=lambda: over.append(True)).join(60)  # no project: it cannot draw anything
    failed = [record for record in caplog.records if "warming up" in record.message and "failed" in record.message]
    assert len(failed) == 1 and failed[0].exc_info is not None
    assert over == [True] and not warming_up()

    caplog.clear()
    tables = {**tiny_tables, "marks": tiny_tables["marks"].iloc[:0], "links": tiny_tables["links"].iloc[:0]}
    warm_up_in_background(plots_of(Project(**tables, title="no marks"))).join(60)
    assert [record.levelname for record in caplog.records] == ["INFO"]
