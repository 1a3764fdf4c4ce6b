"""The re-aggregation sandbox: live consensus of the current subject, a selection run, comparison."""

from __future__ import annotations

import pandas as pd
import panel as pn
import pytest

from consensus.quorum import BINS
from consensus.simulate import simulate_distractor_project
from dashboard.data_store import DataStore
from dashboard.views import ReaggregationSandbox
from dashboard.views.sandbox import best_overlaps
from project import Project


@pytest.fixture
def sandbox(tiny_project):
    return ReaggregationSandbox(data_store=DataStore(project=tiny_project, subject=2))


def test_the_current_subject_is_reaggregated_and_compared(sandbox):
    # Subject 2: alice (30, 30, 10, 10) and bob (34, 30, 10, 10) overlap with IoU 3/7 > 0.3, so
    # they cluster; the median box is (32, 30, 10, 10), IoU with the loaded box C 80/120 = 2/3.
    boxes = sandbox.subject_consensus()
    assert boxes[["x", "y", "width", "height"]].values.tolist() == [[32.0, 30.0, 10.0, 10.0]]
    assert boxes.loaded_box.tolist() == [20] and boxes.iou_with_loaded.iloc[0] == pytest.approx(2 / 3)


def test_settings_change_the_live_result(sandbox):
    sandbox.data_store.subject = 1  # three marks, each by one volunteer: no box reaches two votes
    assert sandbox.subject_consensus().empty
    before = sandbox.revision
    sandbox.aggregator.min_votes = 1
    sandbox.aggregator.min_vote_fraction = 0.0
    assert sandbox.revision == before + 2
    boxes = sandbox.subject_consensus().sort_values("x")
    assert boxes.loaded_box.tolist() == [10, 11, -1]  # alice's box on nothing matches no loaded box
    sandbox.method = "lean"
    assert sandbox.settings().keys() >= {"max_false_pos_prob", "iterations"}


def test_a_selection_run_counts_boxes_per_subject(sandbox):
    sandbox.aggregator.min_votes = 1
    sandbox.aggregator.min_vote_fraction = 0.0
    summary = sandbox.run_on_selection().set_index("subject_id")
    assert summary.loaded_boxes.to_dict() == {1: 2, 2: 1, 3: 0}
    assert summary.sandbox_boxes.to_dict() == {1: 3, 2: 1, 3: 0}
    assert sandbox.selection_summary is not None
    assert pn.panel(sandbox).get_root() is not None


def test_best_overlaps_stay_within_a_subject():
    boxes = pd.DataFrame({"subject_id": [1, 2], "consensus_id": [7, 8], "x": [0.0, 0.0], "y": [0.0, 0.0],
                          "width": [10.0, 10.0], "height": [10.0, 10.0], "angle": [0.0, 0.0]})
    reference = boxes.assign(subject_id=[1, 3], consensus_id=[70, 80], x=[5.0, 0.0])
    ids, overlaps = best_overlaps(boxes, reference)
    assert ids.tolist() == [70, -1]
    assert overlaps.tolist() == pytest.approx([50 / 150, 0.0])


def test_the_vote_fraction_histogram_shows_the_learned_and_the_tried_quorum(sandbox):
    # Three subjects are far too few to learn from: the fallback, said in the title.
    counts, learned = sandbox.vote_fractions()
    assert len(counts) == BINS and learned.found_by == "fallback"
    assert sandbox.aggregator.min_vote_fraction == learned.vote_fraction == 0.2
    plot = sandbox.vote_fraction_plot()
    assert "by default" in plot.get(0).opts.get().kwargs["title"]
    learned_line, tried_line = plot.get(1), plot.get(2)
    assert (learned_line.group, learned_line.data) == ("Learned", 0.2)
    assert (tried_line.group, tried_line.data) == ("Tried", 0.2)


@pytest.fixture(scope="module")
def distractor_tables():
    project = simulate_distractor_project(300, seed=3)
    return {"classifications": project.classifications, "marks": project.marks}


def test_a_project_with_distractors_learns_its_quorum_and_the_user_moves_it(tmp_path, distractor_tables):
    project = Project(**distractor_tables, image_roots=[tmp_path])
    subject_id = int(distractor_tables["marks"]["subject_id"].iloc[0])
    sandbox = ReaggregationSandbox(data_store=DataStore(project=project, subject=subject_id))
    counts, learned = sandbox.vote_fractions()
    assert learned.found_by == "valley" and 0.3 < learned.vote_fraction < 0.6
    assert counts.sum() == learned.candidates
    # The live view starts at the project's quorum, not the one-subject fallback.
    assert sandbox.aggregator.min_vote_fraction == learned.vote_fraction
    assert "learned" in sandbox.vote_fraction_plot().get(0).opts.get().kwargs["title"]
    assert sandbox.quorum_note().startswith(f"The valley of {learned.candidates:,} clusters")
    # Moving the quorum moves the tried line, changes the live consensus, and the reset brings it back.
    loose = sandbox.subject_consensus()
    before = sandbox.revision
    sandbox.aggregator.min_vote_fraction = 0.1
    assert sandbox.revision == before + 1
    assert sandbox.vote_fraction_plot().get(2).data == 0.1
    assert len(sandbox.subject_consensus()) >= len(loose)
    sandbox.reset_quorum()
    assert sandbox.aggregator.min_vote_fraction == learned.vote_fraction
    assert sandbox.vote_fraction_plot().get(1).data == learned.vote_fraction
    # lean has no quorum line: the histogram and the learned value only.
    sandbox.method = "lean"
    assert len(sandbox.vote_fraction_plot()) == 2
    assert pn.panel(sandbox).get_root() is not None


#: Width of the main area beside the open sidebar in a 1,366 px window (measured in Chromium: the tabs' content box).
MAIN_AREA_AT_1366 = 1020


def test_the_tab_fits_a_1366_pixel_window(sandbox):
    # The settings column was 440 px and the comparison table 760: beside the 600 px cutout (and its toolbar) the
    # cutout's right edge, its toolbar and the table's last columns were past the window's edge.
    controls, right = sandbox.__panel__().objects
    cutout = sandbox._cutout.figure()
    assert controls.width + cutout.frame_width + 40 <= MAIN_AREA_AT_1366
    under_cutout = [*sandbox._comparison(), sandbox._selection()]
    assert all(pane.width is not None and pane.width <= cutout.frame_width + 40 for pane in under_cutout)
    # The quorum plot's title fits its width (it ran on: "Quorum: no valley in 34 clusters: 0.2 by de").
    title = sandbox.vote_fraction_plot().get(0).opts.get().kwargs["title"]
    assert len(title) * 8.5 <= controls.width - 80 and "by default" in title
