"""The quorum the iou method learns from a project's own vote fractions, and how ``source`` records it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from consensus import aggregate, parse_source
from consensus.quorum import BINS, MIN_CANDIDATES, learn_vote_fraction, support_histogram

from .conftest import build_classifications, build_marks


def bimodal_project(n_subjects=300, n_volunteers=20, target_votes=15, star_votes=5):
    """Each subject: a target boxed by ``target_votes`` of its volunteers, a star boxed by the same first ``star_votes``."""
    rows, empty = [], []
    for subject in range(1, n_subjects + 1):
        for volunteer in range(n_volunteers):
            user = f"v{volunteer:02d}"
            drew = False
            if volunteer >= n_volunteers - target_votes:
                rows.append((subject, user, 100 + volunteer % 3, 100, 20, 20))
                drew = True
            if volunteer < star_votes:
                rows.append((subject, user, 300 + volunteer % 2, 40, 18, 18))
                drew = True
            if not drew:
                empty.append((subject, user))
    marks = build_marks(rows)
    return marks, build_classifications(marks, empty=empty)


def test_valley_of_a_hand_made_bimodal_histogram():
    # 400 clusters at 5/20 (a minority boxing stars), 600 spread over 13/20 .. 17/20 (targets).
    votes = np.r_[np.full(400, 5), np.repeat(np.arange(13, 18), 120)]
    n_seen = np.full(len(votes), 20)
    learned = learn_vote_fraction(support_histogram(votes, n_seen), fallback=0.2)
    assert learned.found_by == "valley" and learned.candidates == 1000
    assert 0.3 < learned.vote_fraction < 0.65


def test_pairs_and_singletons_do_not_count_and_few_candidates_fall_back():
    histogram = support_histogram(np.array([1, 1, 2, 10]), np.array([20, 0, 20, 20]))
    assert histogram.sum() == 2 and len(histogram) == BINS
    small = learn_vote_fraction(support_histogram(np.full(MIN_CANDIDATES - 1, 5), np.full(MIN_CANDIDATES - 1, 20)), 0.2)
    assert (small.vote_fraction, small.found_by) == (0.2, "fallback")
    # One mode and no valley: the fallback too.
    flat = learn_vote_fraction(support_histogram(np.full(900, 15), np.full(900, 20)), 0.2)
    assert (flat.vote_fraction, flat.found_by) == (0.2, "fallback")
    # A valley that cuts off a sliver (20 near-unanimous clusters of 1,000) is not learned from.
    sliver = np.r_[np.repeat(np.arange(4, 9), 196), np.full(20, 19)]
    assert learn_vote_fraction(support_histogram(sliver, np.full(len(sliver), 20)), 0.2).found_by == "fallback"


def test_iou_learns_the_quorum_drops_the_minority_cluster_and_source_records_it():
    marks, classifications = bimodal_project()
    result = aggregate(marks, classifications, method="iou")
    assert len(result.consensus) == 300
    assert (result.consensus["n_votes"] == 15).all()
    settings = json.loads(result.consensus["source"].iloc[0])
    assert 5 / 20 < settings["min_vote_fraction"] <= 15 / 20
    assert settings["learned"] == {"min_vote_fraction": "valley", "candidates": 600}
    # The source replays the run with the learned value as an explicit quorum.
    parsed = parse_source(result.consensus["source"].iloc[0])
    assert "learned" not in parsed and parsed["min_vote_fraction"] == settings["min_vote_fraction"]
    again = aggregate(marks, classifications, **parsed)
    assert again.consensus.drop(columns="source").equals(result.consensus.drop(columns="source"))


@pytest.mark.parametrize("quorum", [0.2, 0.0])
def test_a_given_quorum_wins_and_nothing_is_marked_learned(quorum):
    marks, classifications = bimodal_project()
    result = aggregate(marks, classifications, method="iou", min_vote_fraction=quorum)
    assert len(result.consensus) == 600
    settings = json.loads(result.consensus["source"].iloc[0])
    assert settings["min_vote_fraction"] == quorum and "learned" not in settings


def test_small_project_falls_back_and_says_so():
    marks, classifications = bimodal_project(n_subjects=10)
    result = aggregate(marks, classifications, method="iou")
    settings = json.loads(result.consensus["source"].iloc[0])
    assert settings["min_vote_fraction"] == 0.2
    assert settings["learned"] == {"min_vote_fraction": "fallback", "candidates": 20}
    assert len(result.consensus) == 20
