"""The point method, matching clicks by distance, and agreement statistics for points.

The hand-worked cases below are small enough to follow with pencil and paper;
each expected number is derived in the comments.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from consensus import aggregate, match
from consensus.agreement import box_agreement, subject_agreement, volunteer_agreement
from consensus.distance import point_mask
from consensus.simulate_points import simulate_point_project

SUBJECT = 7


def clicks(rows, subject_id=SUBJECT, first_mark_id=1):
    """Canonical point marks from ``(user, x, y)``: width and height missing, as the export loader leaves them."""
    table = pd.DataFrame(rows, columns=["user", "x", "y"])
    table.insert(0, "mark_id", np.arange(first_mark_id, first_mark_id + len(table), dtype=np.int64))
    table.insert(1, "classification_id", 100 * subject_id + pd.factorize(table["user"])[0].astype(np.int64))
    table.insert(2, "subject_id", np.int64(subject_id))
    table["task"], table["tool"], table["tool_label"], table["frame"] = "T0", np.int64(0), "Adults", np.int64(0)
    table["width"], table["height"], table["angle"], table["kind"] = np.nan, np.nan, 0.0, "point"
    return table.astype({"user": "string"})


def viewers(marks, empty=(), subject_id=SUBJECT):
    """One classification per volunteer who clicked, plus ``empty`` volunteers who clicked nothing."""
    drawn = marks.groupby(["classification_id", "subject_id", "user"]).size().rename("n_marks").reset_index()
    nothing = pd.DataFrame({"classification_id": 9000 + np.arange(len(empty)), "subject_id": subject_id,
                            "user": list(empty), "n_marks": 0})
    table = pd.concat([drawn, nothing], ignore_index=True)
    table["created_at"] = pd.Timestamp("2020-01-01", tz="UTC")
    return table.astype({"subject_id": "int64", "user": "string", "classification_id": "int64", "n_marks": "int64"})


@pytest.fixture
def hand_case():
    # Animal A near (100, 100): a clicks it twice, b and c once. Animal B near (200, 50): a and b.
    # d clicks a rock at (300, 300) alone; e looks and clicks nothing.
    marks = clicks([
        ("a", 100, 100),  # mark 1: a's second click on A
        ("a", 101, 101),  # mark 2
        ("b", 102, 100),  # mark 3
        ("c", 100, 103),  # mark 4
        ("a", 200, 50),   # mark 5
        ("b", 204, 53),   # mark 6
        ("d", 300, 300),  # mark 7
    ])
    return marks, viewers(marks, empty=["e"])


def test_hand_worked_clustering(hand_case):
    marks, classifications = hand_case
    result = aggregate(marks, classifications)  # clicks only: the point method by default
    consensus = result.consensus
    # Seeds: every click near A has two other volunteers within 12 px; a's (101, 101) is the
    # closest to them (1.41 px to b, 2.24 px to c), so it seeds A's cluster with b and c,
    # and a's other click stays alone. Medians: A = (median 101, 102, 100; median 101, 100,
    # 103) = (101, 101); B = (202, 51.5). The rock has one vote. n_seen counts e: 5.
    # Quorum: 2 votes and ceil(0.15 * 5) = 1 vote: A (3) and B (2) stay, the rock goes.
    # Order by position, y first: B (y 51.5) is point 0, A point 1.
    assert consensus["consensus_id"].tolist() == [SUBJECT * 10_000, SUBJECT * 10_000 + 1]
    assert consensus["x"].tolist() == [202.0, 101.0]
    assert consensus["y"].tolist() == [51.5, 101.0]
    assert consensus["width"].tolist() == [0.0, 0.0] and consensus["height"].tolist() == [0.0, 0.0]
    assert consensus["n_votes"].tolist() == [2, 3]
    assert consensus["n_seen"].tolist() == [5, 5]
    assert consensus["vote_fraction"].tolist() == pytest.approx([0.4, 0.6])
    # Spread: B's votes lie 2.5 px away each: sqrt((6.25 + 6.25) / (2 * 1)) = 2.5.
    # A's lie 0, sqrt(2) and sqrt(5) px away: sqrt((0 + 2 + 5) / (2 * 2)) = sqrt(1.75).
    assert consensus["sigma"].tolist() == pytest.approx([2.5, np.sqrt(1.75)])
    assert consensus["kind"].tolist() == ["point", "point"]
    assert consensus["tool_label"].tolist() == ["Adults", "Adults"]
    assert consensus[["task", "tool", "frame"]].drop_duplicates().values.tolist() == [["T0", 0, 0]]
    assert json.loads(consensus["source"].iloc[0])["method"] == "point"

    links = result.links
    a_point, b_point = SUBJECT * 10_000 + 1, SUBJECT * 10_000
    # One vote per volunteer per point: a's nearer click (mark 2, on A itself) is the vote;
    # mark 1 is a double click, its nearest point A at sqrt(2) px.
    assert links["mark_id"].tolist() == list(range(1, 8))
    assert links["consensus_id"].tolist() == [-1, a_point, a_point, a_point, b_point, b_point, -1]
    assert links["distance"].tolist()[1:6] == pytest.approx([0.0, np.sqrt(2), np.sqrt(5), 2.5, 2.5])
    assert np.isnan(links["distance"].iloc[0]) and np.isnan(links["distance"].iloc[6])
    assert links["best_consensus_id"].tolist() == [a_point, a_point, a_point, a_point, b_point, b_point, -1]
    assert links["best_distance"].iloc[0] == pytest.approx(np.sqrt(2))
    assert links["iou"].isna().all() and links["best_iou"].isna().all()
    assert result.report == {"marks": 7, "marks_without_point": 0, "subjects": 1, "consensus_points": 2,
                             "linked_marks": 5}
    assert result.subjects.to_dict("records") == [{"subject_id": SUBJECT, "n_seen": 5, "n_consensus": 2}]


def test_result_does_not_depend_on_row_order(hand_case):
    marks, classifications = hand_case
    expected = aggregate(marks, classifications)
    shuffled = marks.sample(frac=1.0, random_state=3)
    result = aggregate(shuffled, classifications)
    pd.testing.assert_frame_equal(result.consensus, expected.consensus)
    pd.testing.assert_frame_equal(result.links.set_index("mark_id").sort_index(),
                                  expected.links.set_index("mark_id").sort_index())


def test_quorum_counts_volunteers_who_clicked_nothing():
    marks = clicks([("a", 10, 10), ("b", 11, 10)])
    # 2 votes among 2 clickers and 8 who clicked nothing: a vote fraction of exactly 0.2.
    classifications = viewers(marks, empty=[f"empty{k}" for k in range(8)])
    kept = aggregate(marks, classifications, method="point", min_vote_fraction=0.2).consensus
    assert kept["n_votes"].tolist() == [2] and kept["n_seen"].tolist() == [10]
    assert kept["vote_fraction"].tolist() == [0.2]
    assert len(aggregate(marks, classifications, method="point", min_vote_fraction=0.25).consensus) == 0
    # Without the classifications only the clickers count as having seen the subject.
    assert aggregate(marks, method="point", min_vote_fraction=0.25).consensus["n_seen"].tolist() == [2]


def test_quorum_min_votes_and_lone_clicks():
    marks = clicks([("a", 10, 10), ("b", 60, 60)])
    classifications = viewers(marks)
    assert len(aggregate(marks, classifications, method="point").consensus) == 0
    lone = aggregate(marks, classifications, method="point", min_votes=1, min_vote_fraction=0.0).consensus
    assert lone[["x", "y"]].values.tolist() == [[10.0, 10.0], [60.0, 60.0]]
    assert lone["n_votes"].tolist() == [1, 1] and lone["sigma"].isna().all()


def test_clicks_farther_than_the_distance_are_separate_points():
    # Two volunteers each click two animals 20 px apart; the distance (12 px) keeps them apart,
    # a distance of 25 px would make neighbours of all four, but one vote per volunteer per
    # cluster still gives two points.
    marks = clicks([("a", 0, 0), ("a", 20, 0), ("b", 1, 0), ("b", 21, 0)])
    classifications = viewers(marks)
    for distance in (12.0, 25.0):
        consensus = aggregate(marks, classifications, method="point", distance=distance, link_distance=distance).consensus
        assert consensus["x"].tolist() == [0.5, 20.5]
        assert consensus["n_votes"].tolist() == [2, 2]


def test_an_object_clicked_as_two_clusters_is_one_point():
    # Four volunteers click a penguin; three of them click it again 6 px off (double clicks). One vote per
    # volunteer per cluster makes the second clicks a cluster of their own, 6 px from the first.
    first = [(volunteer, 100, 100) for volunteer in "abcd"]
    again = [(volunteer, 106, 100) for volunteer in "abc"]
    marks = clicks(first + again)
    classifications = viewers(marks)
    split = aggregate(marks, classifications, method="point", merge_distance=0.0).consensus
    assert split["x"].tolist() == [100.0, 106.0] and split["n_votes"].tolist() == [4, 3]
    merged = aggregate(marks, classifications, method="point").consensus
    # The weaker cluster is dropped, its clicks link to the point kept, one per volunteer.
    assert merged["x"].tolist() == [100.0] and merged["n_votes"].tolist() == [4]
    # Two animals as far apart as the distance stay two points.
    far = clicks(first + [(volunteer, 112, 100) for volunteer in "abc"])
    assert aggregate(far, viewers(far), method="point").consensus["n_votes"].tolist() == [4, 3]


def test_groups_are_kept_apart():
    # The same place on another subject, another tool or another frame is another animal.
    base = clicks([("a", 10, 10), ("b", 11, 11)])
    other_subject = clicks([("a", 10, 10), ("b", 11, 11)], subject_id=8, first_mark_id=3)
    other_tool = clicks([("a", 10, 10), ("b", 11, 11)], first_mark_id=5).assign(tool=np.int64(1), tool_label="Chicks")
    marks = pd.concat([base, other_subject, other_tool], ignore_index=True)
    classifications = pd.concat([viewers(base), viewers(other_subject, subject_id=8)], ignore_index=True)
    consensus = aggregate(marks, classifications).consensus
    assert len(consensus) == 3 and consensus["n_votes"].tolist() == [2, 2, 2]
    assert sorted(consensus["tool_label"]) == ["Adults", "Adults", "Chicks"]


def test_no_clicks_gives_empty_tables_with_the_columns():
    marks = clicks([("a", 10, 10)]).iloc[:0]
    result = aggregate(marks, method="point")
    assert len(result.consensus) == 0 and {"sigma", "kind", "n_votes", "x"} <= set(result.consensus.columns)
    assert len(result.links) == 0 and "distance" in result.links.columns


def test_boxes_and_points_each_get_their_default_method(hand_case, marks_from):
    points, classifications = hand_case
    boxes = marks_from([(SUBJECT, "a", 10, 10, 20, 20), (SUBJECT, "b", 11, 10, 20, 20)])
    boxes["mark_id"] += 100
    marks = pd.concat([points, boxes.assign(classification_id=points["classification_id"].iloc[0])], ignore_index=True)
    result = aggregate(marks, classifications)
    assert sorted(result.consensus["kind"].fillna("box")) == ["box", "point", "point"]
    # The subject's box is its consensus 0; its points follow as 1 and 2, and the links say so.
    ids = result.consensus.set_index("consensus_id")
    assert sorted(ids.index) == [SUBJECT * 10_000 + k for k in range(3)]
    assert ids.loc[SUBJECT * 10_000, "width"] == pytest.approx(20) and ids.loc[SUBJECT * 10_000 + 1, "y"] == 51.5
    box_row = result.consensus[result.consensus["kind"].isna()].iloc[0]
    assert box_row["n_votes"] == 2 and box_row["width"] == pytest.approx(20)
    assert [part["method"] for part in json.loads(result.source)] == ["lean", "point"]
    # Links in the marks' order: the point links as alone, the boxes' by IoU.
    alone = aggregate(points, classifications)
    assert result.links["consensus_id"].tolist()[:7] == [-1 if link < 0 else link + 1 for link in alone.links["consensus_id"]]
    assert result.links["best_consensus_id"].tolist()[:7] == [-1 if link < 0 else link + 1
                                                             for link in alone.links["best_consensus_id"]]
    assert (result.links["consensus_id"].iloc[7:] >= 0).all() and result.links["iou"].iloc[7:].notna().all()
    assert result.report["marks_without_box"] == 0 and result.report["marks_without_point"] == 0
    assert result.report["consensus_boxes"] == 1 and result.report["consensus_points"] == 2
    assert result.subjects["n_consensus"].tolist() == [3]
    with pytest.raises(ValueError, match="name a method to pass parameters"):
        aggregate(marks, classifications, min_votes=3)


def test_point_mask():
    table = pd.DataFrame({"x": [1.0, 1.0, 1.0, np.nan, 1.0], "y": [1.0] * 5, "width": [np.nan, 0.0, 5.0, np.nan, 0.0],
                          "height": [np.nan, 0.0, 5.0, np.nan, 0.0], "kind": ["point", None, None, "point", "rectangle"]})
    assert point_mask(table).tolist() == [True, True, False, False, False]
    assert point_mask(table.drop(columns="kind")).tolist() == [True, True, False, False, True]


def test_match_links_points_by_distance_and_boxes_by_iou(hand_case, marks_from):
    marks, _ = hand_case
    boxes = marks_from([(SUBJECT, "a", 10, 10, 20, 20)])
    boxes["mark_id"] = 100
    marks = pd.concat([marks, boxes], ignore_index=True)
    consensus = pd.DataFrame({
        "consensus_id": [1, 2, 3], "subject_id": SUBJECT, "x": [101.0, 203.0, 10.0], "y": [101.0, 52.0, 10.0],
        "width": [0.0, 0.0, 20.0], "height": [0.0, 0.0, 20.0], "kind": ["point", "point", "rectangle"],
        "task": "T0", "tool": np.int64(0), "frame": np.int64(0),
    })
    links = match(marks, consensus, max_distance=5.0)
    assert links["consensus_id"].tolist() == [-1, 1, 1, 1, 2, 2, -1, 3]
    # b's click at (204, 53) is sqrt(2) from point 2, a's at (200, 50) sqrt(13).
    assert links["distance"].tolist()[1:6] == pytest.approx([0.0, np.sqrt(2), np.sqrt(5), np.sqrt(13), np.sqrt(2)])
    assert links["iou"].iloc[:7].isna().all() and links["iou"].iloc[7] == 1.0 and np.isnan(links["distance"].iloc[7])
    # Within 3 px a's click on B is too far: unlinked, and no nearest point either.
    tight = match(marks, consensus, max_distance=3.0)
    assert tight["consensus_id"].tolist() == [-1, 1, 1, 1, -1, 2, -1, 3]
    assert tight["best_consensus_id"].iloc[4] == -1 and np.isnan(tight["best_distance"].iloc[4])
    # A point is never a vote for a box, however close.
    only_box = match(marks, consensus[consensus["consensus_id"] == 3], max_distance=500.0)
    assert only_box["consensus_id"].tolist() == [-1] * 7 + [3]


def test_match_reproduces_the_aggregation_links():
    project = simulate_point_project(30, seed=2)
    result = aggregate(project.marks, project.classifications)
    links = match(project.marks, result.consensus, max_distance=12.0)
    pd.testing.assert_frame_equal(links, result.links)


def test_agreement_statistics_for_points(hand_case):
    marks, classifications = hand_case
    result = aggregate(marks, classifications)
    subjects = subject_agreement(marks, result.consensus, result.links, classifications)
    row = subjects.iloc[0]
    # Per volunteer, 2 * linked / (clicks + 2 points): a 2*2/(3+2) = 0.8, b 2*2/(2+2) = 1,
    # c 2*1/(1+2) = 2/3, d 0/(1+2) = 0, e (nothing, 2 points) 0. Disagreement 1 - mean.
    assert row["disagreement"] == pytest.approx(1 - (0.8 + 1 + 2 / 3 + 0 + 0) / 5)
    assert row["n_volunteers"] == 5 and row["n_marks"] == 7 and row["n_consensus"] == 2
    # Linked clicks lie 0, sqrt(2), sqrt(5), 2.5 and 2.5 px from their points.
    assert row["mean_distance"] == pytest.approx((np.sqrt(2) + np.sqrt(5) + 5) / 5)
    assert row["votes_per_consensus"] == pytest.approx(5 / 2)
    assert row["unmatched_fraction"] == pytest.approx(2 / 7) and np.isnan(row["mean_iou"])

    points = box_agreement(marks, result.consensus, result.links).set_index("consensus_id")
    assert points["n_votes"].tolist() == [2, 3]
    assert points["mean_distance"].tolist() == pytest.approx([2.5, (np.sqrt(2) + np.sqrt(5)) / 3])
    assert points["median_distance"].tolist() == pytest.approx([2.5, np.sqrt(2)])
    assert points["mean_iou"].isna().all()

    volunteers = volunteer_agreement(marks, result.consensus, result.links, classifications).set_index("user")
    assert volunteers.loc["a", "n_double_marks"] == 1  # the second click on A
    assert volunteers.loc["a", "mean_distance"] == pytest.approx(2.5 / 2)
    assert volunteers.loc["d", "precision"] == 0 and volunteers.loc["b", "recall"] == 1


def test_disagreement_ranks_a_contested_subject_above_an_agreed_one():
    agreed = clicks([(user, 10 + k, 10) for k, user in enumerate("abcd")])
    contested = clicks([("a", 10, 10), ("b", 11, 10), ("c", 300, 10), ("d", 500, 10)], subject_id=8, first_mark_id=10)
    marks = pd.concat([agreed, contested], ignore_index=True)
    classifications = pd.concat([viewers(agreed), viewers(contested, subject_id=8)], ignore_index=True)
    result = aggregate(marks, classifications)
    scores = subject_agreement(marks, result.consensus, result.links, classifications).set_index("subject_id")
    assert scores.loc[SUBJECT, "disagreement"] == 0.0
    assert scores.loc[8, "disagreement"] > 0.4


def test_simulated_points_are_deterministic_and_canonical():
    first = simulate_point_project(40, seed=5)
    second = simulate_point_project(40, seed=5)
    for name in ("truth", "classifications", "marks", "volunteers", "subjects"):
        pd.testing.assert_frame_equal(getattr(first, name), getattr(second, name))
    assert not simulate_point_project(40, seed=6).marks[["x", "y"]].equals(first.marks[["x", "y"]])
    assert point_mask(first.marks).all() and (first.marks["kind"] == "point").all()
    # No two animals of a frame closer than min_separation (12 px).
    truth = first.truth
    for _, animals in truth.groupby("subject_id"):
        xy = animals[["x", "y"]].to_numpy()
        gaps = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
        assert gaps[np.triu_indices(len(xy), 1)].min(initial=np.inf) >= 12.0
    # Clicks on an animal scatter around it; clicks on nothing have truth_id -1.
    found = first.marks[first.marks["truth_id"] >= 0].merge(truth, on="truth_id", suffixes=("", "_true"))
    assert np.hypot(found["x"] - found["x_true"], found["y"] - found["y_true"]).median() < 6


def test_point_method_finds_simulated_animals():
    project = simulate_point_project(60, seed=11, noise="realistic")
    found = aggregate(project.marks, project.classifications).consensus
    found = found.assign(mark_id=np.arange(len(found)), user="consensus")
    truth = project.truth.rename(columns={"truth_id": "consensus_id"})
    matched = (match(found, truth, max_distance=6.0)["consensus_id"] >= 0).sum()
    assert matched / len(found) > 0.95 and matched / len(truth) > 0.9
