"""The Machine tab, the cutout's detections layer and the disagreement filter, on a hand-worked case.

The tiny project (`tests.dashboard.tiny`) with four detections:
- subject 1: d0 exactly on consensus box A (score 0.9): matched; d1 at (80, 80, 10, 10) on nothing
  (score 0.7): machine-only; box B no detection finds: human-only;
- subject 2: d2 exactly on box C, but scoring 0.3: at threshold 0.5 C is human-only, at 0.2 matched;
- subject 3 (never classified): d3 (score 0.95), left out of the comparison.
At 0.5: 2 detections, 3 boxes, 1 matched, 1 machine-only, 2 human-only; precision 1/2, recall 1/3,
F1 2 / (2 + 3). Disagreement per subject: 1 -> 2, 2 -> 1, 3 -> 0.
"""

from __future__ import annotations

import holoviews as hv
import pandas as pd
import pytest

from dashboard import Explorer
from dashboard.data_store import DataStore
from dashboard.explorer import TABS
from dashboard.views import CutoutViewer, MachineView
from tests.dashboard import tiny


def tiny_detections() -> pd.DataFrame:
    return pd.DataFrame({"detection_id": [0, 1, 2, 3], "subject_id": [1, 1, 2, 3],
                         "x": [10.0, 80.0, 30.0, 1.0], "y": [10.0, 80.0, 30.0, 1.0],
                         "width": [20.0, 10.0, 10.0, 5.0], "height": [20.0, 10.0, 10.0, 5.0],
                         "angle": 0.0, "score": [0.9, 0.7, 0.3, 0.95], "label": "clump", "source": "hand-made detector",
                         "kind": "rectangle"})


def machine_boxes(viewer) -> pd.DataFrame:
    """What the cutout's machine detections layer (boxes) draws: its source on the figure."""
    return viewer.drawn("machine detections")


@pytest.fixture
def machine_project(tmp_path, tiny_tables):
    tiny.write_images(tmp_path / "root")
    return tiny.Project(**tiny_tables, detections=tiny_detections(), image_roots=[tmp_path / "root"], title="tiny")


def test_the_numbers_at_the_threshold_are_the_hand_worked_ones(machine_project):
    view = MachineView(data_store=DataStore(project=machine_project))
    numbers = view.summary()
    assert {key: numbers[key] for key in ("detections", "consensus", "true_positives", "machine_only",
                                          "human_only", "subjects")} == {
        "detections": 2, "consensus": 3, "true_positives": 1, "machine_only": 1, "human_only": 2, "subjects": 2}
    assert (numbers["precision"], numbers["recall"], numbers["f1"]) == pytest.approx((1 / 2, 1 / 3, 2 / 5))
    assert view.subject_rows()[["subject_id", "true_positives", "machine_only", "human_only"]].values.tolist() == [
        [1, 1, 1, 1], [2, 0, 0, 1], [3, 0, 0, 0]]
    view.data_store.score_threshold = 0.2
    numbers = view.summary()
    assert (numbers["true_positives"], numbers["human_only"]) == (2, 1)
    assert view.table.value.subject_id.tolist() == [1, 2, 3]  # subject 2 agrees now: still listed, after 1
    assert view.table.value.human_only.tolist() == [1, 0, 0]
    hv.render(view.threshold_plot()), hv.render(view.precision_recall_plot())


def test_disagreement_filter_sort_and_review_queue(machine_project):
    explorer = Explorer(machine_project)
    tabs, store = explorer.tabs(), explorer.data_store
    tabs.active = TABS.index("Machine")
    store.sort_by = "humans vs machine"
    assert store.subjects.subject_id.tolist() == [1, 2, 3]
    assert store.subjects.machine_disagreement.tolist() == [2, 1, 0]
    store.subject = 3
    explorer.machine.review_disagreements()
    assert store.machine_disagrees and store.subjects.subject_id.tolist() == [1, 2]
    assert store.subject == 1 and tabs.active == TABS.index("Subjects")
    store.score_threshold = 0.2  # subject 2's box is found now: only subject 1 disagrees
    assert store.subjects.subject_id.tolist() == [1]
    assert store.recorded()["machine"] == {"detections": ["hand-made detector"], "score_threshold": 0.2,
                                           "against": "consensus",
                                           "humans_and_machine_disagree": True}


def test_the_cutout_draws_the_detections_above_the_threshold(machine_project):
    store = DataStore(project=machine_project, subject=1)
    viewer = CutoutViewer(data_store=store)
    boxes = machine_boxes(viewer)
    assert boxes[["x0", "y0", "x1", "y1", "score"]].values.tolist() == [[10, 10, 30, 30, 0.9], [80, 80, 90, 90, 0.7]]
    assert boxes.matched.tolist() == ["consensus mark 10", "nothing: machine only"]
    assert boxes.alpha.tolist() == [1.0, 0.55]  # machine-only fainter
    assert viewer.renderer("machine detections").glyph.line_alpha == "alpha"
    store.score_threshold = 0.8
    assert machine_boxes(viewer).detection.tolist() == [0]
    assert any(entry.name.startswith("machine detection") for entry in viewer.legend_entries())
    viewer.show_detections = False  # still a layer (empty), so later frames keep their glyphs
    assert len(machine_boxes(viewer)) == 0
    assert not any(entry.name.startswith("machine detection") for entry in viewer.legend_entries())
    viewer.show_detections, store.subject = True, 3
    assert machine_boxes(viewer).matched.tolist() == [
        "not compared: no volunteer classified the subject"]


def test_without_detections_nothing_changes(tiny_project):
    store = DataStore(project=tiny_project)
    viewer = CutoutViewer(data_store=store)
    assert len(viewer.drawn("machine detections")) == 0 and len(viewer.drawn("machine detection points")) == 0
    assert not any(entry.name.startswith("machine detection") for entry in viewer.legend_entries())
    assert "No machine detections" in MachineView(data_store=store).__panel__().object
    assert "machine_disagreement" not in store.subjects and "machine" not in store.recorded()


def test_against_the_reviewed_catalogue_a_new_decision_changes_the_numbers(machine_project, tmp_path):
    """A reviewer adds a box on d1 (machine-only against the consensus): against the reviewed catalogue d1 is
    matched, to the added box (its own negative id on hover), and subject 1 keeps only B as human-only."""
    from project.reviews import ReviewStore

    with ReviewStore(path=tmp_path / "reviews.sqlite") as reviews:
        store = DataStore(project=machine_project, reviews=reviews, reviewer="ann", subject=1)
        view, viewer = MachineView(data_store=store), CutoutViewer(data_store=store)
        store.machine_against = "reviewed catalogue"
        assert view.summary()["true_positives"] == 1  # no decision yet: the consensus's numbers
        added = reviews.record(machine_project.consensus_source, 1, "add", "ann",
                               geometry={"x": 80.0, "y": 80.0, "width": 10.0, "height": 10.0})
        store.refresh_reviews()
        numbers = view.summary()
        assert (numbers["consensus"], numbers["true_positives"], numbers["machine_only"]) == (4, 2, 0)
        assert "against the reviewed catalogue" in view._heading().object
        assert store.subjects.set_index("subject_id").machine_disagreement.to_dict() == {1: 1, 2: 1, 3: 0}
        assert machine_boxes(viewer).matched.tolist() == ["consensus mark 10", f"consensus mark {added.consensus_id}"]
        store.machine_against = "consensus"
        assert view.summary()["true_positives"] == 1 and store.recorded()["machine"]["against"] == "consensus"
