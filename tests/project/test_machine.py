"""Detections in a project: loaded among its files or as ``detections=``, matched once, against the reviewed
catalogue when a review store is given."""

from __future__ import annotations

import pytest

from project import load_project
from project.machine import AGAINST_REVIEWED, compare_detections
from project.reviews import ReviewStore
from tests.dashboard import tiny
from tests.dashboard.views.test_machine import tiny_detections
from tests.zoolens.test_demo import demo_files  # noqa: F401  (fixture: the demo files)
from zoolens import demo


def test_a_detections_file_among_the_paths_or_as_an_option_is_the_same_comparison(demo_files):
    files = [demo_files.classifications, demo_files.subjects]
    among = load_project([*files, demo_files.detections], method="iou", **demo.PROJECT_OPTIONS)
    given = load_project(files, detections=demo_files.detections, method="iou", **demo.PROJECT_OPTIONS)
    assert among.sources["detections"] == given.sources["detections"] == [demo_files.detections.resolve()]
    assert among.machine.summary(0.5) == given.machine.summary(0.5)
    assert among.machine.sources == ["demo-detections"]
    assert load_project(files, method="iou", **demo.PROJECT_OPTIONS).machine is None
    with pytest.raises(ValueError, match="several detections files"):
        load_project([*files, demo_files.detections], detections=demo_files.detections, **demo.PROJECT_OPTIONS)


def test_the_reviewed_catalogue_with_an_added_box_matches_the_detection_it_holds(tmp_path):
    """Subject 1 (see tests/dashboard/views/test_machine.py): a reviewer adds a box on d1 (machine-only)
    and rejects box B (human-only): then both of subject 1's detections match, and nothing is human-only
    there. The added box's id is negative, as the matching's "nothing" (-1): the comparison renumbers the boxes."""
    tiny.write_images(tmp_path / "root")
    project = tiny.Project(**tiny.tiny_tables(), detections=tiny_detections(), image_roots=[tmp_path / "root"])
    with ReviewStore(path=tmp_path / "reviews.sqlite") as store:
        box_b = project.consensus_of(1).iloc[1]
        store.record(project.consensus_source, 1, "reject", "ann", consensus_id=int(box_b.consensus_id),
                     original=box_b.to_dict())
        added = store.record(project.consensus_source, 1, "add", "ann",
                             geometry={"x": 80.0, "y": 80.0, "width": 10.0, "height": 10.0})
        assert added.consensus_id < 0
        reviewed = compare_detections(project.detections, project, reviews=store)
    assert reviewed.against == AGAINST_REVIEWED
    numbers = reviewed.summary(0.5)
    assert (numbers["consensus"], numbers["true_positives"], numbers["machine_only"], numbers["human_only"]) == (
        3, 2, 0, 1)  # box C of subject 2 still human-only (its detection scores 0.3)
    assert reviewed.subject_counts(0.5).loc[1, "machine_disagreement"] == 0
