"""Humans and machine in a real browser: the demo's detections on the cutout and in the Machine tab.

The numbers the page shows are checked against ``zoolens compare --json`` run on the same files
(a separate process), and the boxes drawn against the demo's detections file read with pandas.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.ui.test_demo import _sources_with, open_page  # noqa: F401  (fixture: a page of the served demo)
from zoolens import demo

pytestmark = pytest.mark.ui
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compared(demo_files, tmp_path_factory) -> dict:
    """``zoolens compare --json`` on the demo as the served app loads it (IoU consensus, threshold 0.5)."""
    done = subprocess.run(
        [sys.executable, "-m", "zoolens", "compare", str(demo_files.detections), "--classifications",
         str(demo_files.classifications), "--workflow", str(demo.WORKFLOW_ID), "--workflow-version",
         demo.WORKFLOW_VERSION, "--method", "iou", "--json"],
        cwd=ROOT, capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin", "ZOOLENS_CACHE_DIR": str(tmp_path_factory.mktemp("cache"))})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_machine_tab_shows_the_numbers_zoolens_compare_prints(open_page, compared, demo_project, artefacts):
    page = open_page([])
    page.locator(".bk-tab", has_text="Machine").click()
    page.get_by_text("Machine detections against the consensus").wait_for(timeout=60_000)
    page.locator(".zoolens-number").first.wait_for(timeout=60_000)
    page.wait_for_function(
        "window.zoolensPlotViews().some((view) => view.model.title?.text?.startsWith('Precision-recall'))",
        timeout=60_000)
    page.screenshot(path=str(artefacts / "demo-machine.png"))
    numbers = page.locator(".zoolens-number").all_inner_texts()
    shown = {text.split("\n")[0]: text.split("\n")[-1] for text in numbers}
    assert shown == {"Precision": f"{compared['precision']:.3f}", "Recall": f"{compared['recall']:.3f}",
                     "F1": f"{compared['f1']:.3f}", "AP": f"{compared['average_precision']:.3f}",
                     "Matched": f"{compared['true_positives']:,}", "Machine only": f"{compared['machine_only']:,}",
                     "Human only": f"{compared['human_only']:,}"}
    titles = page.evaluate("window.zoolensPlotViews().map((view) => view.model.title?.text)")
    assert f"Precision-recall · AP {compared['average_precision']:.3f} (IoU 0.5)" in titles

    # The disagreement set as the review queue: the filter on, the Subjects tab with its first subject.
    page.get_by_role("button", name="Review where humans and machine disagree").click()
    counts = demo_project.machine.subject_counts(0.5)
    disagreeing = counts[counts.machine_disagreement > 0].sort_values("machine_disagreement", ascending=False,
                                                                      kind="stable")
    page.get_by_text(f"{len(disagreeing)} of 60 subjects").wait_for(timeout=30_000)
    first = int(disagreeing.index[0])
    page.get_by_text(f"Subject {first}", exact=True).wait_for(timeout=30_000)
    assert page.locator(".bk-tab.bk-active").inner_text() == "Subjects"


def test_the_cutout_draws_the_detections_above_the_threshold_with_their_scores(open_page, demo_files, demo_project,
                                                                              artefacts):
    page = open_page([])
    subject_id = int(demo_project.machine.subject_counts(0.5).query("machine_only > 0 and true_positives > 0")
                     .index[0])
    page.goto(page.url.split("?")[0] + f"?subject={subject_id}", wait_until="networkidle")
    page.get_by_text(f"Subject {subject_id}").wait_for(timeout=60_000)
    page.wait_for_function("window.zoolensSourcesWith('score').some((table) => table.score.length > 0)",
                           timeout=60_000)
    page.screenshot(path=str(artefacts / "demo-cutout-detections.png"))
    drawn = _sources_with(page, "score")
    detections = pd.read_csv(demo_files.detections)
    expected = detections[(detections.subject_id == subject_id) & (detections.score >= 0.5)]
    assert sorted(drawn.detection) == sorted(expected.detection_id)
    by_id = expected.set_index("detection_id")
    for row in drawn.itertuples():
        assert (row.x0, row.y0, row.score) == pytest.approx((by_id.x[row.detection], by_id.y[row.detection],
                                                              by_id.score[row.detection]), abs=1e-4)
    assert {"nothing: machine only"} < set(drawn.matched)  # and at least one matched a consensus mark
