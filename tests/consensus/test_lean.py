"""The lean method's distractor model: who votes for a minority cluster decides whether it is a target."""

from __future__ import annotations

import numpy as np

from consensus import aggregate, match
from consensus.simulate import simulate_distractor_project, simulate_project

from .conftest import build_classifications, build_marks


def minority_project(n_subjects=300):
    """Per subject, 20 volunteers: a target boxed by v05..v19, a star boxed by v00..v04 on every subject,
    and a faint target boxed by 5 of v05..v19 that change from subject to subject."""
    rows, empty = [], []
    for subject in range(1, n_subjects + 1):
        faint_voters = {5 + (subject * 3 + j) % 15 for j in range(5)}
        for volunteer in range(20):
            user = f"v{volunteer:02d}"
            if volunteer >= 5:
                rows.append((subject, user, 100 + volunteer % 3, 100, 20, 20))
            else:
                rows.append((subject, user, 300 + volunteer % 2, 40, 18, 18))
            if volunteer in faint_voters:
                rows.append((subject, user, 200 + volunteer % 2, 300, 16, 16))
    marks = build_marks(rows)
    return marks, build_classifications(marks, empty=empty)


def kinds(consensus):
    return np.select([consensus["x"] > 250, consensus["y"] > 200], ["star", "faint"], "target")


def test_a_cluster_of_the_same_minority_everywhere_is_a_distractor_a_changing_minority_is_not():
    marks, classifications = minority_project()
    every = aggregate(marks, classifications, method="lean", max_false_pos_prob=1.0)
    false_pos = every.consensus.groupby(kinds(every.consensus))["false_pos_prob"].agg(["min", "max"])
    assert false_pos.loc["star", "min"] > 0.99
    assert false_pos.loc["target", "max"] < 0.01 and false_pos.loc["faint", "max"] < 0.01
    # Filtering on false_pos_prob works by default: the stars go, both kinds of target stay.
    kept = aggregate(marks, classifications, method="lean").consensus
    assert sorted(np.unique(kinds(kept), return_counts=True)[1]) == [300, 300]
    assert set(kinds(kept)) == {"target", "faint"}
    # The volunteers who box the star have a high distractor rate, the others a low one.
    volunteers = every.volunteers.set_index("user")
    star_boxers = [f"v{volunteer:02d}" for volunteer in range(5)]
    assert volunteers.loc[star_boxers, "distractor_prob"].min() > 0.9
    assert volunteers.drop(index=star_boxers)["distractor_prob"].max() < 0.05


def test_the_iou_quorum_cannot_tell_the_two_minorities_apart():
    # The same project with the learned vote quorum: both 5-of-20 clusters fall below it.
    marks, classifications = minority_project()
    kept = aggregate(marks, classifications, method="iou").consensus
    assert set(kinds(kept)) == {"target"}


def test_a_realistic_project_without_distractors_keeps_its_results():
    # No volunteer boxes distractors here: nobody gets a high rate, and the targets stay.
    project = simulate_project(300, seed=11)
    result = aggregate(project.marks, project.classifications, method="lean")
    assert result.volunteers["distractor_prob"].max() < 0.2
    found = match(result.consensus.assign(user="consensus", mark_id=np.arange(len(result.consensus))),
                  project.truth.rename(columns={"truth_id": "consensus_id"}), min_iou=0.5)
    assert (found["consensus_id"] >= 0).mean() > 0.99


def test_simulated_distractors_get_a_high_false_pos_prob():
    project = simulate_distractor_project(300, seed=11)
    result = aggregate(project.marks, project.classifications, method="lean", max_false_pos_prob=1.0)
    on_star = match(result.consensus.assign(user="consensus", mark_id=np.arange(len(result.consensus))),
                    project.distractors.rename(columns={"distractor_id": "consensus_id"}), min_iou=0.5)
    false_pos = result.consensus["false_pos_prob"].to_numpy()
    star_box = on_star.set_index("mark_id")["consensus_id"].reindex(np.arange(len(false_pos))).to_numpy() >= 0
    assert star_box.sum() > 200 and np.median(false_pos[star_box]) > 0.99
    boxers = project.volunteers.set_index("user")["distractor_propensity"] > 0.5
    rates = result.volunteers.set_index("user")["distractor_prob"]
    assert rates[boxers.reindex(rates.index)].median() > 5 * rates[~boxers.reindex(rates.index)].median()
