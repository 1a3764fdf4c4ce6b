"""Agreement statistics on a hand-made project whose every number is worked out in the comments."""

import numpy as np
import pandas as pd
import pytest

from consensus import match
from consensus.agreement import box_agreement, subject_agreement, volunteer_activity, volunteer_agreement


@pytest.fixture
def project(marks_from, classifications_for):
    # Subject 1 has two consensus boxes, B1 at x=0 and B2 at x=30, 10 px squares.
    # ada: B1 exactly (IoU 1), B2 shifted 2 px (IoU 8/12), and B1 again shifted 1 px (a double mark).
    # bob: B1 shifted 5 px (IoU 5/15 = 1/3) and a box on nothing.
    # cy saw subject 1 and drew nothing. Subject 2 has no consensus: dee drew a box, eve nothing.
    marks = marks_from([
        (1, "ada", 0, 0, 10, 10), (1, "ada", 32, 0, 10, 10), (1, "ada", 1, 0, 10, 10),
        (1, "bob", 5, 0, 10, 10), (1, "bob", 100, 100, 10, 10),
        (2, "dee", 50, 50, 10, 10),
    ])
    classifications = classifications_for(marks, empty=[(1, "cy"), (2, "eve")])
    consensus = pd.DataFrame({
        "subject_id": [1, 1], "consensus_id": [10, 11], "x": [0.0, 30.0], "y": [0.0, 0.0],
        "width": [10.0, 10.0], "height": [10.0, 10.0], "angle": [0.0, 0.0], "n_votes": [2, 1], "n_seen": [3, 3],
    })
    links = match(marks, consensus, min_iou=0.3)
    return marks, classifications, consensus, links


def test_links_of_the_hand_made_project(project):
    _, _, _, links = project
    assert links["consensus_id"].tolist() == [10, 11, -1, 10, -1, -1]
    assert links["best_consensus_id"].tolist() == [10, 11, 10, 10, -1, -1]


def test_box_agreement(project):
    marks, _, consensus, links = project
    boxes = box_agreement(marks, consensus, links).set_index("consensus_id")
    b1, b2 = boxes.loc[10], boxes.loc[11]
    assert (b1["n_votes"], b1["n_seen"], b2["n_votes"]) == (2, 3, 1)
    assert b1["vote_fraction"] == pytest.approx(2 / 3)
    assert b1["mean_iou"] == pytest.approx((1 + 1 / 3) / 2)
    assert b1["median_iou"] == pytest.approx((1 + 1 / 3) / 2)
    assert b1["sigma_x"] == pytest.approx(np.std([0, 5], ddof=1))
    assert b1["sigma_y"] == 0 and b1["sigma_width"] == 0
    assert b1["x_err"] == pytest.approx(np.sqrt(np.pi / 2) * np.std([0, 5], ddof=1) / np.sqrt(2))
    assert b2["mean_iou"] == pytest.approx(8 / 12)
    assert pd.isna(b2["sigma_x"]) and pd.isna(b2["x_err"])


def test_subject_agreement_and_disagreement(project):
    marks, classifications, consensus, links = project
    subjects = subject_agreement(marks, consensus, links, classifications).set_index("subject_id")
    one, two = subjects.loc[1], subjects.loc[2]
    assert (one["n_volunteers"], one["n_classifications"], one["n_marks"], one["n_consensus"]) == (3, 3, 5, 2)
    assert one["mean_iou"] == pytest.approx((1 + 8 / 12 + 1 / 3) / 3)
    assert one["unmatched_fraction"] == pytest.approx(2 / 5)
    assert one["n_below_quorum"] == 1  # B2 has 1 vote of 3
    # Soft F1 per volunteer: ada 2 (1 + 2/3) / (3 + 2), bob 2 (1/3) / (2 + 2), cy 0 / (0 + 2).
    agreement = [2 * (1 + 8 / 12) / 5, 2 * (1 / 3) / 4, 0.0]
    assert one["disagreement"] == pytest.approx(1 - np.mean(agreement))
    # Subject 2: dee's box against no consensus scores 0, eve's nothing against nothing scores 1.
    assert (two["n_volunteers"], two["n_marks"], two["n_consensus"]) == (2, 1, 0)
    assert two["disagreement"] == pytest.approx(0.5)
    assert two["unmatched_fraction"] == 1.0 and np.isnan(two["mean_iou"])


def test_disagreement_is_zero_when_everyone_draws_the_consensus(marks_from, classifications_for):
    marks = marks_from([(1, "a", 0, 0, 10, 10), (1, "b", 0, 0, 10, 10)])
    consensus = pd.DataFrame({"subject_id": [1], "consensus_id": [5], "x": [0.0], "y": [0.0], "width": [10.0],
                              "height": [10.0], "n_votes": [2], "n_seen": [2]})
    table = subject_agreement(marks, consensus, match(marks, consensus), classifications_for(marks))
    assert table["disagreement"].tolist() == [0.0]


def test_volunteer_agreement(project):
    marks, classifications, consensus, links = project
    volunteers = volunteer_agreement(marks, consensus, links, classifications, min_iou=0.3).set_index("user")
    ada, bob, cy, dee, eve = (volunteers.loc[name] for name in ["ada", "bob", "cy", "dee", "eve"])
    assert (ada["n_classifications"], ada["n_subjects"], ada["n_marks"], ada["n_linked"]) == (1, 1, 3, 2)
    assert ada["precision"] == pytest.approx(2 / 3) and ada["recall"] == 1.0
    assert ada["mean_iou"] == pytest.approx((1 + 8 / 12) / 2)
    assert ada["unmatched_rate"] == pytest.approx(1 / 3)
    assert ada["n_double_marks"] == 1
    assert (bob["precision"], bob["recall"], bob["n_double_marks"]) == (0.5, 0.5, 0)
    assert bob["mean_iou"] == pytest.approx(1 / 3)
    assert cy["n_marks"] == 0 and np.isnan(cy["precision"]) and cy["recall"] == 0.0
    assert dee["precision"] == 0.0 and np.isnan(dee["recall"])
    assert eve["n_classifications"] == 1 and eve["n_marks"] == 0
    assert (ada["active_days"], ada["first_seen"]) == (1, classifications.set_index("user").loc["ada", "created_at"])


def test_volunteer_activity(marks_from, classifications_for):
    marks = marks_from([(1, "a", 0, 0, 10, 10), (1, "a", 5, 5, 10, 10), (2, "a", 0, 0, 10, 10), (1, "b", 0, 0, 10, 10)])
    classifications = classifications_for(marks)
    classifications["created_at"] = pd.to_datetime(["2020-01-01 10:00", "2020-01-09 09:00", "2020-01-02 23:59"], utc=True)
    weekly = volunteer_activity(classifications, "W")
    assert weekly["user"].tolist() == ["a", "a", "b"]
    assert weekly["n_classifications"].tolist() == [1, 1, 1]
    assert weekly["n_marks"].tolist() == [2, 1, 1]
    assert weekly["period"].tolist() == list(pd.to_datetime(["2019-12-30", "2020-01-06", "2019-12-30"], utc=True))


def test_consensus_without_vote_counts(project):
    # Other producers (e.g. BoxAggregator) may not say how many saw a subject.
    marks, classifications, consensus, links = project
    consensus = consensus.astype({"n_votes": "Int64", "n_seen": "Int64"})
    consensus.loc[1, ["n_votes", "n_seen"]] = pd.NA
    boxes = box_agreement(marks, consensus, links).set_index("consensus_id")
    assert boxes.loc[10, "vote_fraction"] == pytest.approx(2 / 3)
    assert pd.isna(boxes.loc[11, "vote_fraction"]) and boxes.loc[11, "n_votes"] == 1
    subjects = subject_agreement(marks, consensus, links, classifications).set_index("subject_id")
    assert subjects.loc[1, "n_below_quorum"] == 0


def test_statistics_do_not_depend_on_the_order_or_completeness_of_the_links_table(project):
    marks, classifications, consensus, links = project
    shuffled = links.sample(frac=1.0, random_state=3)
    for statistic, args in [(box_agreement, ()), (subject_agreement, (classifications,)), (volunteer_agreement, (classifications,))]:
        pd.testing.assert_frame_equal(statistic(marks, consensus, links, *args), statistic(marks, consensus, shuffled, *args))
    # A mark missing from the links supports no box: dropping bob's IoU-1/3 vote on B1 (mark 4)
    # leaves B1 with ada's vote alone.
    partial = box_agreement(marks, consensus, links[links["mark_id"] != 4]).set_index("consensus_id")
    assert partial.loc[10, "n_votes"] == 1 and partial.loc[10, "mean_iou"] == 1.0
    volunteers = volunteer_agreement(marks, consensus, links[links["mark_id"] != 4], classifications).set_index("user")
    assert (volunteers.loc["bob", "n_linked"], volunteers.loc["bob", "precision"]) == (0, 0.0)


def test_repeated_mark_ids_in_the_links_are_an_error(project):
    marks, classifications, consensus, links = project
    with pytest.raises(ValueError, match="links table has repeated mark_id"):
        subject_agreement(marks, consensus, pd.concat([links, links.iloc[:1]]), classifications)
