"""Linking marks to consensus boxes: one mark per volunteer per box, optimal where greedy is not."""

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import linear_sum_assignment

from consensus import match
from consensus.geometry import iou


def _consensus(rows):
    """Consensus boxes from (consensus_id, subject_id, x, y, width, height)."""
    table = pd.DataFrame(rows, columns=["consensus_id", "subject_id", "x", "y", "width", "height"])
    table["angle"] = 0.0
    return table


def test_two_boxes_by_one_volunteer_on_one_box_are_one_vote(marks_from):
    marks = marks_from([
        (7, "ada", 10, 10, 10, 10),
        (7, "ada", 11, 10, 10, 10),  # the same clump again
        (7, "bob", 10.5, 9, 10, 10),
    ])
    links = match(marks, _consensus([(70, 7, 10, 10, 10, 10)]), min_iou=0.5)
    assert links["mark_id"].tolist() == [1, 2, 3]
    assert links["consensus_id"].tolist() == [70, -1, 70]
    # The second box still knows which box it sits on, and how well.
    assert links.loc[1, "best_consensus_id"] == 70
    assert links.loc[1, "best_iou"] == pytest.approx(9 / 11)
    assert np.isnan(links.loc[1, "iou"])
    assert links.loc[0, "iou"] == pytest.approx(1.0)


def test_assignment_beats_greedy_when_a_mark_must_yield(marks_from):
    # Boxes A (x=0) and B (x=4), 10 px squares. One volunteer drew two marks:
    # m1 at x=1 (IoU 9/11 with A, 7/13 with B), m2 at x=-1.5 (8.5/11.5 with A, 4.5/15.5 with B).
    # Greedy gives A to m1 and leaves m2 without a box (4.5/15.5 < 0.3); the
    # optimal assignment gives B to m1 and A to m2.
    marks = marks_from([(1, "cy", 1, 0, 10, 10), (1, "cy", -1.5, 0, 10, 10)])
    links = match(marks, _consensus([(10, 1, 0, 0, 10, 10), (11, 1, 4, 0, 10, 10)]), min_iou=0.3)
    assert links["consensus_id"].tolist() == [11, 10]
    assert links["iou"].tolist() == pytest.approx([7 / 13, 8.5 / 11.5])


def test_marks_only_meet_boxes_of_their_own_subject_tool_and_frame(marks_from):
    marks = marks_from([(1, "a", 0, 0, 10, 10), (2, "a", 0, 0, 10, 10), (1, "b", 0, 0, 10, 10)])
    marks.loc[2, "tool"] = 1
    consensus = _consensus([(10, 1, 0, 0, 10, 10)])
    consensus["tool"] = np.int64(0)
    links = match(marks, consensus)
    assert links["consensus_id"].tolist() == [10, -1, -1]
    assert links["best_consensus_id"].tolist() == [10, -1, -1]


def test_missing_columns_are_named(marks_from):
    marks = marks_from([(1, "a", 0, 0, 10, 10)])
    with pytest.raises(ValueError, match="consensus_id"):
        match(marks, _consensus([(10, 1, 0, 0, 10, 10)]).drop(columns="consensus_id"))


def test_marks_without_area_link_to_nothing(marks_from):
    marks = marks_from([(1, "a", 0, 0, 0, 10), (1, "b", 0, 0, 10, 10)])
    marks.loc[0, "x"] = np.nan
    links = match(marks, _consensus([(10, 1, 0, 0, 10, 10)]))
    assert links["consensus_id"].tolist() == [-1, 10]


def _optimal_total(marks, consensus, min_iou):
    """Brute force: per (subject, volunteer), the best summed IoU over all assignments."""
    total = 0.0
    for (subject, _user), own in marks.groupby(["subject_id", "user"]):
        boxes = consensus[consensus["subject_id"] == subject]
        if boxes.empty:
            continue
        a = own.reset_index(drop=True)
        weight = np.zeros((len(a), len(boxes)))
        for k, box in enumerate(boxes.itertuples()):
            shape = (np.full(len(a), box.x + box.width / 2), np.full(len(a), box.y + box.height / 2),
                     np.full(len(a), box.width), np.full(len(a), box.height), np.zeros(len(a)))
            mark_shape = (a.x + a.width / 2, a.y + a.height / 2, a.width, a.height, a.angle)
            weight[:, k] = iou(mark_shape, shape)
        weight[weight < min_iou] = 0
        rows, cols = linear_sum_assignment(weight, maximize=True)
        total += weight[rows, cols].sum()
    return total


@pytest.mark.parametrize("seed", range(5))
def test_links_reach_the_optimal_total_iou_per_volunteer(seed, marks_from):
    rng = np.random.default_rng(seed)
    rows = []
    boxes = []
    for subject in range(6):
        centres = rng.uniform(10, 50, (4, 2))
        for k, (x, y) in enumerate(centres):
            boxes.append((subject * 10 + k, subject, x, y, 10, 10))
        for user in "abcd":
            for _ in range(rng.integers(1, 7)):
                x, y = centres[rng.integers(0, 4)] + rng.normal(0, 2.5, 2)
                rows.append((subject, user, x, y, 10 * np.exp(rng.normal(0, 0.2)), 10 * np.exp(rng.normal(0, 0.2))))
    marks = marks_from(rows)
    consensus = _consensus(boxes)
    links = match(marks, consensus, min_iou=0.3)
    linked = links[links["consensus_id"] >= 0].merge(marks[["mark_id", "user"]], on="mark_id")
    # One mark per volunteer per box, and only pairs above the threshold.
    assert not linked.duplicated(["user", "consensus_id"]).any()
    assert (linked["iou"] >= 0.3).all()
    assert linked["iou"].sum() == pytest.approx(_optimal_total(marks, consensus, 0.3), rel=1e-12)


def test_links_tables_are_their_own_and_writable():
    marks = pd.DataFrame({"mark_id": [1, 2], "subject_id": [7, 7], "user": ["a", "b"], "x": [0.0, 10.0],
                          "y": [0.0, 0.0], "width": [4.0, 0.0], "height": [4.0, 0.0]})
    consensus = pd.DataFrame({"consensus_id": [70000], "subject_id": [7], "x": [0.0], "y": [0.0], "width": [4.0],
                              "height": [4.0]})
    frozen = marks.copy()
    for column in frozen:
        values = frozen[column].to_numpy()
        values.flags.writeable = False
    links = match(frozen, consensus, min_iou=0.3, max_distance=5.0)
    links.loc[0, "mark_id"] = 99  # a table of its own: writing to it neither fails nor touches the marks
    assert frozen["mark_id"].tolist() == [1, 2]
