"""Per-project arrays of each subject's marks and consensus boxes (`dashboard.subject_marks`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dashboard.subject_marks import classification_times, subject_consensus, subject_marks
from project.stored import StoredProject, write_project_store


def test_a_subjects_marks_are_its_rows_of_the_mark_table_in_mark_order(tiny_project):
    for subject_id in (1, 2):
        marks, table = subject_marks(tiny_project, subject_id), tiny_project.marks_of(subject_id)
        assert marks.mark_id.tolist() == table.mark_id.tolist()
        assert np.array_equal(marks.x, table.x.to_numpy()) and np.array_equal(marks.height, table.height.to_numpy())
        assert marks.consensus_id.tolist() == table.consensus_id.tolist()
        assert marks.user.tolist() == table.user.tolist()
        assert marks.tool_label.tolist() == table.tool_label.tolist()
    # Subject 1: alice's box on A (IoU 1), her "Odd clump" box on nothing, bob's box on B; all drawn as boxes.
    marks = subject_marks(tiny_project, 1)
    assert marks.consensus_id.tolist() == [10, -1, 11] and np.isnan(marks.iou).sum() == 0
    assert marks.box.all() and not (marks.point | marks.outline | marks.path).any()
    assert marks.times().tolist() == ["2023-05-01 10:00 UTC", "2023-05-01 10:00 UTC", "2023-05-01 11:00 UTC"]
    # A selection keeps every column aligned.
    odd = marks.take(marks.tool_label == "Odd clump")
    assert odd.mark_id.tolist() == [2] and odd.x.tolist() == [80.0] and odd.user.tolist() == ["alice"]


def test_no_subject_or_one_never_classified_has_no_marks(tiny_project):
    assert len(subject_marks(tiny_project, None)) == 0
    assert len(subject_marks(tiny_project, 3)) == 0  # in the subject export, never classified
    assert len(subject_marks(tiny_project, 999)) == 0
    assert subject_marks(tiny_project, 3).times().tolist() == []


def test_the_arrays_are_made_once_per_project_and_shared(tiny_project):
    first, again = subject_marks(tiny_project, 1), subject_marks(tiny_project, 1)
    # Slices of the same per-project arrays: no copy per session or per switch.
    assert np.shares_memory(first.x, again.x)


def test_a_stored_project_gives_the_same_arrays_read_per_subject(tiny_project, tmp_path):
    stored = StoredProject(write_project_store(tiny_project, tmp_path / "store"))
    for subject_id in (1, 2, 3):
        in_memory, read = subject_marks(tiny_project, subject_id), subject_marks(stored, subject_id)
        assert read.mark_id.tolist() == in_memory.mark_id.tolist()
        assert np.array_equal(read.x, in_memory.x) and np.array_equal(read.iou, in_memory.iou, equal_nan=True)
        assert read.times().tolist() == in_memory.times().tolist()
        assert np.array_equal(read.box, in_memory.box)
    assert len(subject_marks(stored, None)) == 0


def test_a_subjects_consensus_boxes_are_its_rows_of_the_consensus_table(tiny_project):
    boxes = subject_consensus(tiny_project, 1)
    assert boxes["consensus_id"].tolist() == [10, 11]
    assert boxes["x"].tolist() == [10.0, 60.0] and boxes["n_votes"].tolist() == [2.0, 1.0]
    assert boxes["n_seen"].tolist() == [3.0, 3.0]
    # A box with one vote has no error band (NaN), as `box_agreement` leaves it.
    assert np.isnan(boxes["x_err"][1])
    assert len(subject_consensus(tiny_project, 3)["consensus_id"]) == 0
    assert len(subject_consensus(tiny_project, None)["x"]) == 0


def test_classification_times_read_to_the_minute_in_utc_and_unknown_ones_are_empty():
    times = pd.Series(pd.to_datetime(["2023-05-01 10:00:59+02:00", None], utc=True))
    assert classification_times(times).tolist() == ["2023-05-01 08:00 UTC", ""]
    assert classification_times(times.iloc[0:0]).tolist() == []
