"""Aggregation on hand-made subjects whose answers are known, for both methods."""

import json

import numpy as np
import pandas as pd
import pytest

from consensus import aggregate, methods, parse_source
from consensus.prepare import ID_STRIDE
from data_loaders.schema import CONSENSUS, LINKS

METHODS = ["iou", "lean"]


def _votes(result):
    """(consensus_id -> sorted users) from the links."""
    return result.links


@pytest.mark.parametrize("method", METHODS)
def test_two_volunteers_one_clump(method, marks_from, classifications_for):
    marks = marks_from([(7, "ada", 10, 10, 10, 10), (7, "bob", 12, 11, 10, 10)])
    result = aggregate(marks, classifications_for(marks), method=method)
    consensus = result.consensus
    assert len(consensus) == 1
    box = consensus.iloc[0]
    assert (box["n_votes"], box["n_seen"]) == (2, 2)
    assert box["consensus_id"] == 7 * ID_STRIDE
    assert box["vote_fraction"] == 1.0
    # Halfway between the two marks (median and equal-weight mean agree for two).
    assert (box["x"], box["y"], box["width"], box["height"]) == pytest.approx((11, 10.5, 10, 10))
    assert result.links["consensus_id"].tolist() == [7 * ID_STRIDE] * 2


@pytest.mark.parametrize("method", METHODS)
def test_one_volunteer_drawing_twice_is_one_vote(method, marks_from, classifications_for):
    marks = marks_from([
        (1, "ada", 10, 10, 10, 10), (1, "ada", 11, 11, 10, 10), (1, "bob", 10, 11, 10, 10),
        # Subject 2: only ada, twice on one clump. One vote is below min_votes=2 for iou.
        (2, "ada", 10, 10, 10, 10), (2, "ada", 10.5, 10, 10, 10),
    ])
    classifications = classifications_for(marks, empty=[(2, "bob"), (2, "cy")])
    result = aggregate(marks, classifications, method=method)
    on_one = result.consensus[result.consensus["subject_id"] == 1]
    assert len(on_one) == 1 and on_one.iloc[0]["n_votes"] == 2
    links = result.links.set_index("mark_id")
    assert (links.loc[[1, 2], "consensus_id"] >= 0).sum() == 1
    assert links.loc[3, "consensus_id"] == on_one.iloc[0]["consensus_id"]
    # The unlinked second box still points at the box it duplicates.
    loose = links.loc[[1, 2]][links.loc[[1, 2], "consensus_id"] < 0]
    assert loose["best_consensus_id"].tolist() == [on_one.iloc[0]["consensus_id"]]
    assert result.consensus[result.consensus["subject_id"] == 2].empty


@pytest.mark.parametrize("method", METHODS)
def test_volunteer_who_saw_and_drew_nothing_counts(method, marks_from, classifications_for):
    marks = marks_from([(3, "ada", 10, 10, 10, 10), (3, "bob", 10, 10, 10, 10)])
    classifications = classifications_for(marks, empty=[(3, "cy")])
    result = aggregate(marks, classifications, method=method)
    box = result.consensus.iloc[0]
    assert (box["n_votes"], box["n_seen"]) == (2, 3)
    assert box["vote_fraction"] == pytest.approx(2 / 3)
    assert result.subjects.set_index("subject_id").loc[3, "n_seen"] == 3
    # Asking for more than two thirds drops it.
    strict = aggregate(marks, classifications, method="iou", min_vote_fraction=0.7)
    assert strict.consensus.empty
    assert strict.links["consensus_id"].tolist() == [-1, -1]


@pytest.mark.parametrize("method", METHODS)
def test_rotated_boxes(method, marks_from, classifications_for):
    # Three volunteers draw a 20 x 6 bar turned 30 degrees; one draws it the other way round (210 = 30).
    marks = marks_from([
        (4, "ada", 40, 50, 20, 6, 30), (4, "bob", 40.5, 50, 20, 6, 31),
        (4, "cy", 40, 50.5, 20, 6, 210), (4, "dee", 39.5, 50, 21, 6, 29),
    ])
    result = aggregate(marks, classifications_for(marks), method=method)
    assert len(result.consensus) == 1
    box = result.consensus.iloc[0]
    assert box["n_votes"] == 4
    if method == "iou":
        # Medians: angles 29, 30, 30 (210 folded), 31; centres x 50, 50.5, 50, 50 and y 53, 53, 53.5, 53.
        assert (box["angle"], box["width"], box["height"]) == (30, 20, 6)
        assert (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2) == (50, 53)
    assert box["angle"] == pytest.approx(30, abs=0.6)
    assert box["x"] + box["width"] / 2 == pytest.approx(50, abs=0.5)
    assert box["y"] + box["height"] / 2 == pytest.approx(53, abs=0.5)
    # An axis-aligned box over the same bar overlaps it too little to be a vote.
    flat = marks_from([(4, "eve", 40, 50, 20, 6, 0)])
    assert aggregate(pd.concat([marks, flat.assign(mark_id=99)]), method="iou", min_iou=0.5).consensus.iloc[0]["n_votes"] == 4


@pytest.mark.parametrize("method,expected", [("iou", 0.5), ("lean", 1 / 6)])
def test_rotated_angles_either_side_of_zero_average_to_zero(marks_from, classifications_for, method, expected):
    # 179 degrees is -1: iou takes the median of (-1, 1, 0.5), lean the mean; a plain average would give 60.
    marks = marks_from([(4, "ada", 0, 0, 20, 6, 179), (4, "bob", 0, 0, 20, 6, 1), (4, "cy", 0, 0, 20, 6, 0.5)])
    box = aggregate(marks, classifications_for(marks), method=method).consensus.iloc[0]
    assert min(box["angle"], 180 - box["angle"]) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("method", METHODS)
def test_boxes_off_the_image_edge_are_kept_as_drawn(method, marks_from, classifications_for):
    marks = marks_from([(5, "ada", -6, -4, 12, 10), (5, "bob", -5, -4, 12, 10), (5, "cy", -6, -3, 12, 10)])
    box = aggregate(marks, classifications_for(marks), method=method).consensus.iloc[0]
    assert box["n_votes"] == 3
    assert (box["x"], box["y"]) == pytest.approx((-5.67, -3.67), abs=0.35)


def test_box_off_the_image_edge_is_the_median_and_its_links_are_exact(marks_from, classifications_for):
    # Median corner (-6, -4), size 12 x 10: nothing is clipped to the image.
    marks = marks_from([(5, "ada", -6, -4, 12, 10), (5, "bob", -5, -4, 12, 10), (5, "cy", -6, -3, 12, 10)])
    result = aggregate(marks, classifications_for(marks), method="iou")
    box = result.consensus.iloc[0]
    assert (box["x"], box["y"], box["width"], box["height"]) == (-6, -4, 12, 10)
    # ada matches exactly; bob overlaps 11 x 10 = 110 of a 240 - 110 = 130 union; cy 12 x 9 = 108 of 132.
    assert result.links["iou"].tolist() == pytest.approx([1.0, 110 / 130, 108 / 132])


@pytest.mark.parametrize("method", METHODS)
def test_one_subject_with_500_marks(method, marks_from, classifications_for):
    rng = np.random.default_rng(11)
    clumps = np.array([[50, 50], [120, 60], [80, 140], [160, 150], [30, 170]], float)
    rows = []
    for volunteer in range(100):
        for cx, cy in clumps:
            x, y = rng.normal([cx, cy], 1.0)
            rows.append((9, f"v{volunteer:03d}", x - 8, y - 8, 16 * np.exp(rng.normal(0, 0.05)), 16 * np.exp(rng.normal(0, 0.05))))
    marks = marks_from(rows)
    assert len(marks) == 500
    result = aggregate(marks, classifications_for(marks), method=method)
    consensus = result.consensus
    assert len(consensus) == 5
    assert consensus["n_votes"].tolist() == [100] * 5
    centres = np.c_[consensus["x"] + consensus["width"] / 2, consensus["y"] + consensus["height"] / 2]
    found = {tuple(np.round(centre, -1)) for centre in centres}
    assert found == {tuple(np.round(clump, -1)) for clump in clumps}
    assert np.abs(np.sort(centres, axis=0) - np.sort(clumps, axis=0)).max() < 0.5


@pytest.mark.parametrize("method", METHODS)
def test_result_tables_are_canonical(method, marks_from, classifications_for):
    marks = marks_from([(1, "a", 0, 0, 10, 10), (1, "b", 1, 0, 10, 10), (2, "a", 5, 5, 4, 4), (2, "b", 5, 5, 4, 4)])
    result = aggregate(marks, classifications_for(marks), method=method)
    assert list(result.consensus.columns)[: len(CONSENSUS)] == list(CONSENSUS)
    assert result.consensus.dtypes[list(CONSENSUS)].astype(str).tolist() == [str(pd.Series(dtype=d).dtype) for d in CONSENSUS.values()]
    assert list(result.links.columns)[: len(LINKS)] == list(LINKS)
    assert result.consensus["consensus_id"].tolist() == [1 * ID_STRIDE, 2 * ID_STRIDE]
    assert result.report == {"marks": 4, "marks_without_box": 0, "subjects": 2, "consensus_boxes": 2, "linked_marks": 4}


def test_marks_without_a_box_are_counted_not_dropped(marks_from, classifications_for):
    marks = marks_from([(1, "a", 0, 0, 10, 10), (1, "b", 0, 0, 10, 10), (1, "c", 0, 0, 0, 10), (1, "d", np.nan, 0, 10, 10)])
    result = aggregate(marks, classifications_for(marks))
    assert result.report["marks_without_box"] == 2
    assert len(result.links) == 4
    assert result.links["consensus_id"].tolist()[2:] == [-1, -1]


def test_different_tools_never_merge(marks_from, classifications_for):
    marks = marks_from([(1, "a", 0, 0, 10, 10), (1, "b", 0, 0, 10, 10), (1, "a", 0, 0, 10, 10), (1, "b", 0, 0, 10, 10)])
    marks.loc[2:, "tool"] = 1
    consensus = aggregate(marks, classifications_for(marks)).consensus
    assert consensus["tool"].tolist() == [0, 1]
    assert consensus["n_votes"].tolist() == [2, 2]
    assert consensus["consensus_id"].tolist() == [ID_STRIDE, ID_STRIDE + 1]


@pytest.mark.parametrize("method,params", [("iou", {"min_vote_fraction": 0.4, "estimator": "weighted"}), ("lean", {"prior_strength": 2.0})])
def test_source_reproduces_the_consensus(method, params):
    from consensus.simulate import simulate_project

    project = simulate_project(60, seed=2)
    first = aggregate(project.marks, project.classifications, method=method, **params)
    source = first.consensus["source"].iloc[0]
    settings = json.loads(source)
    assert settings["method"] == method and "zoolens" in settings
    assert all(settings[key] == value for key, value in params.items())
    again = aggregate(project.marks, project.classifications, **parse_source(source))
    pd.testing.assert_frame_equal(first.consensus, again.consensus)


def test_unknown_method_and_parameter_are_named():
    empty = pd.DataFrame(columns=["mark_id", "subject_id", "x", "y", "width", "height"])
    with pytest.raises(ValueError, match=r"unknown consensus method 'dbscan'; known methods: iou, lean"):
        aggregate(empty, method="dbscan")
    with pytest.raises(ValueError, match=r"no parameter\(s\) \['eps'\].*min_vote_fraction"):
        aggregate(empty, method="iou", eps=0.5)
    with pytest.raises(ValueError):
        aggregate(empty, method="iou", min_vote_fraction=2.0)
    assert set(methods()) == {"iou", "lean", "point"}


def test_lean_reports_volunteer_skill_and_subject_risk():
    from consensus.simulate import simulate_project

    project = simulate_project(400, seed=5)
    result = aggregate(project.marks, project.classifications, method="lean")
    skills = result.volunteers.merge(project.volunteers, on="user")
    assert len(skills) == project.volunteers["n_classifications"].gt(0).sum()
    busy = skills[skills["classifications"] >= 30]
    # The learnt rates follow the simulated ones (rank correlation).
    assert busy["false_neg_prob"].corr(busy["miss_rate"], method="spearman") > 0.6
    assert busy["false_pos_per_classification"].corr(busy["spurious_rate"], method="spearman") > 0.6
    assert busy["sigma"].corr(busy["position_sigma"] + busy["size_sigma"], method="spearman") > 0.3
    assert result.consensus["false_pos_prob"].between(0, 0.5).all()
    assert (result.subjects["risk"] >= 0).all()
    assert set(result.consensus["risk"]) <= set(result.subjects["risk"])


def test_empty_marks_give_empty_tables(marks_from, classifications_for):
    marks = marks_from([(1, "a", 0, 0, 10, 10)]).iloc[:0]
    for method in METHODS:
        result = aggregate(marks, None, method=method)
        assert result.consensus.empty and result.links.empty
