"""The volunteer simulator: deterministic, canonical, and faithful to its parameters.

Expected values are computed here by an independent route (pandas merges over the
returned volunteer skills and truth), not read back from the simulator's internals.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from consensus.simulate import NOISE_PRESETS, SkillDistribution, simulate_distractor_project, simulate_project
from data_loaders.schema import CLASSIFICATIONS, MARKS, SUBJECTS


@pytest.fixture(scope="module")
def project():
    return simulate_project(3000, seed=7)


def _with_skill(table, project):
    """Rows of ``table`` joined with the skill of the volunteer who made them."""
    return table.merge(project.volunteers, on="user", how="left", validate="many_to_one")


def test_same_seed_same_tables_other_seed_other_tables():
    first = simulate_project(200, seed=3)
    second = simulate_project(200, seed=3)
    for name in ("truth", "classifications", "marks", "volunteers", "subjects"):
        pd.testing.assert_frame_equal(getattr(first, name), getattr(second, name))
    other = simulate_project(200, seed=4)
    assert not other.marks[["x", "y"]].equals(first.marks[["x", "y"]])


def test_tables_have_the_canonical_columns_first(project):
    assert list(project.classifications.columns) == list(CLASSIFICATIONS)
    assert list(project.marks.columns)[: len(MARKS)] == list(MARKS)
    assert list(project.subjects.columns) == list(SUBJECTS)
    assert list(project.truth.columns)[:6] == ["subject_id", "truth_id", "x", "y", "width", "height"]
    for column, dtype in CLASSIFICATIONS.items():
        assert str(project.classifications[column].dtype) == str(pd.Series(dtype=dtype).dtype), column


def test_counts_follow_the_parameters(project):
    # 3000 subjects: Poisson(20) classifications and Poisson(2.2) clumps per subject;
    # the standard errors of the means are 0.08 and 0.027.
    per_subject = project.classifications.groupby("subject_id").size()
    assert len(per_subject) == 3000
    assert abs(per_subject.mean() - 20) < 0.4
    clumps = project.truth.groupby("subject_id").size().reindex(project.subjects.subject_id, fill_value=0)
    assert abs(clumps.mean() - 2.2) < 0.1
    # Default: one volunteer per 80 classifications.
    assert len(project.volunteers) == round(3000 * 20 / 80)


def test_ids_unique_and_increasing_with_time(project):
    classifications = project.classifications
    assert classifications.classification_id.is_unique
    assert project.marks.mark_id.is_unique
    assert classifications.classification_id.is_monotonic_increasing
    assert classifications.created_at.is_monotonic_increasing
    start = pd.Timestamp("2019-03-01", tz="UTC")
    assert classifications.created_at.min() >= start
    assert classifications.created_at.max() <= start + pd.Timedelta(days=365)


def test_n_marks_counts_the_marks_of_each_classification(project):
    counted = project.marks.groupby("classification_id").size()
    n_marks = project.classifications.set_index("classification_id").n_marks
    assert (counted.reindex(n_marks.index, fill_value=0) == n_marks).all()
    assert (n_marks == 0).sum() > 0
    marks = project.marks.merge(project.classifications[["classification_id", "subject_id", "user"]],
                                on="classification_id", suffixes=("", "_of_classification"))
    assert (marks.subject_id == marks.subject_id_of_classification).all()
    assert (marks.user == marks.user_of_classification).all()


def test_nobody_classifies_a_subject_twice(project):
    assert not project.classifications.duplicated(["subject_id", "user"]).any()


def test_volunteers_and_their_heavy_tailed_activity(project):
    volunteers = project.volunteers
    counted = project.classifications.groupby("user").size()
    assert (counted.reindex(volunteers.user).to_numpy() == volunteers.n_classifications.to_numpy()).all()
    assert (volunteers.n_classifications >= 1).all()
    ordered = np.sort(volunteers.n_classifications.to_numpy())[::-1]
    top_tenth = ordered[: len(ordered) // 10].sum() / ordered.sum()
    assert top_tenth > 0.4  # Lomax(1.2) activity: a few volunteers do much of the work
    # No volunteer needs more than half of the subjects (the cap on activity share);
    # resampling of repeats can push a capped volunteer slightly past it.
    assert volunteers.n_classifications.max() <= 0.6 * 3000


def test_logged_out_volunteers_have_hashed_names_and_no_id(project):
    volunteers = project.volunteers
    logged_out = volunteers.user.str.startswith("not-logged-in-")
    assert (logged_out == ~volunteers.logged_in).all()
    assert volunteers.user_id[logged_out].isna().all()
    assert volunteers.user_id[~logged_out].notna().all()
    assert abs(logged_out.mean() - 0.3) < 0.07  # 750 volunteers, binomial sd 0.017
    assert volunteers.user.is_unique
    assert volunteers.user[logged_out].str.fullmatch(r"not-logged-in-[0-9a-f]{20}").all()


def test_found_double_and_spurious_marks_match_the_skills(project):
    classifications = _with_skill(project.classifications, project)
    truth_pairs = classifications.merge(project.truth, on="subject_id")
    found_chance = (1 - truth_pairs.miss_rate) * truth_pairs.detectability * (1 - truth_pairs.empty_rate)
    marks = project.marks
    found = marks[(marks.truth_id >= 0) & ~marks.double]
    # A sum of independent Bernoulli draws: mean sum(p), variance sum(p (1 - p)).
    assert abs(len(found) - found_chance.sum()) < 4 * np.sqrt((found_chance * (1 - found_chance)).sum())

    spurious_mean = (classifications.spurious_rate * (1 - classifications.empty_rate)).sum()
    n_spurious = int((marks.truth_id < 0).sum())
    assert abs(n_spurious - spurious_mean) < 4 * np.sqrt(spurious_mean) + 0.02 * spurious_mean

    found_with_skill = _with_skill(found, project)
    double_chance = found_with_skill.double_rate
    n_double = int(marks.double.sum())
    assert abs(n_double - double_chance.sum()) < 4 * np.sqrt((double_chance * (1 - double_chance)).sum())
    # A double mark is a second box on a clump that volunteer found in the same classification.
    doubles = marks[marks.double]
    firsts = found.set_index(["classification_id", "truth_id"]).index
    assert doubles.set_index(["classification_id", "truth_id"]).index.isin(firsts).all()


def test_position_and_size_noise_scale_with_each_volunteers_sigma(project):
    marks = _with_skill(project.marks[project.marks.truth_id >= 0], project)
    marks = marks.merge(project.truth, on="truth_id", suffixes=("", "_true"))
    centre_offset = (marks.x + marks.width / 2) - (marks.x_true + marks.width_true / 2)
    standardised = centre_offset / (marks.position_sigma * marks.width_true)
    assert abs(standardised.std() - 1) < 0.03
    assert abs(standardised.mean()) < 0.03
    log_ratio = np.log(marks.height / marks.height_true) / marks.size_sigma
    assert abs(log_ratio.std() - 1) < 0.03


def test_truth_boxes_lie_in_the_galaxy_and_do_not_overlap(project):
    truth = project.truth
    centre_x = truth.x + truth.width / 2 - 200
    centre_y = truth.y + truth.height / 2 - 200
    assert (np.hypot(centre_x, centre_y) <= 100 + 1e-9).all()
    pairs = truth.merge(truth, on="subject_id")
    pairs = pairs[pairs.truth_id_x < pairs.truth_id_y]
    overlap_x = (np.minimum(pairs.x_x + pairs.width_x, pairs.x_y + pairs.width_y)
                 - np.maximum(pairs.x_x, pairs.x_y)).clip(lower=0)
    overlap_y = (np.minimum(pairs.y_x + pairs.height_x, pairs.y_y + pairs.height_y)
                 - np.maximum(pairs.y_x, pairs.y_y)).clip(lower=0)
    intersection = overlap_x * overlap_y
    union = pairs.width_x * pairs.height_x + pairs.width_y * pairs.height_y - intersection
    assert len(pairs) > 1000
    assert (intersection / union <= 0.1).all()
    assert abs(np.median(truth.width) - 16) < 1  # 4 % of a 400-pixel image


def test_latest_classifications_come_from_the_new_front_end(project):
    classifications = project.classifications
    fem = classifications.classifier == "fem"
    assert abs(fem.mean() - 0.3) < 0.001
    assert classifications.created_at[fem].min() >= classifications.created_at[~fem].max()


def test_clean_volunteers_box_nearly_every_clump_tightly():
    project = simulate_project(500, seed=1, noise="clean")
    marks = project.marks
    assert (marks.truth_id < 0).mean() < 0.03
    assert not marks.double.any()
    assert (project.classifications.n_marks > 0).mean() > 0.8


def test_noisier_presets_make_more_spurious_and_fewer_found_boxes():
    shares = {}
    for noise in ("clean", "realistic", "noisy"):
        marks = simulate_project(300, seed=2, noise=noise).marks
        shares[noise] = (marks.truth_id < 0).mean()
    assert shares["clean"] < shares["realistic"] < shares["noisy"]


def test_custom_skill_distribution_and_unknown_preset():
    perfect = SkillDistribution(miss_rate=0.0, spurious_rate=0.0, position_sigma=0.0, size_sigma=0.0,
                                double_rate=0.0, empty_rate=0.0)
    project = simulate_project(50, seed=0, noise=perfect)
    marks = project.marks.merge(project.truth, on="truth_id", suffixes=("", "_true"))
    assert len(marks) == len(project.marks)  # nothing spurious
    np.testing.assert_allclose(marks[["x", "y", "width", "height"]].to_numpy(),
                               marks[["x_true", "y_true", "width_true", "height_true"]].to_numpy())
    with pytest.raises(ValueError, match="realistic"):
        simulate_project(10, noise="sloppy")
    assert set(NOISE_PRESETS) == {"clean", "realistic", "noisy"}


@pytest.fixture(scope="module")
def distractor_project():
    return simulate_distractor_project(1500, seed=5)


def test_distractor_project_is_deterministic_and_canonical(distractor_project):
    again = simulate_distractor_project(1500, seed=5)
    for name in ("truth", "classifications", "marks", "volunteers", "distractors"):
        pd.testing.assert_frame_equal(getattr(distractor_project, name), getattr(again, name))
    assert list(distractor_project.marks.columns)[: len(MARKS)] == list(MARKS)
    assert list(distractor_project.classifications.columns) == list(CLASSIFICATIONS)
    marks = distractor_project.marks
    assert marks["mark_id"].is_unique and marks["classification_id"].is_monotonic_increasing
    n_marks = marks.groupby("classification_id").size()
    counted = distractor_project.classifications.set_index("classification_id")["n_marks"]
    assert counted.sum() == len(marks) and (n_marks == counted[n_marks.index]).all()
    # The base project's volunteers and classifications are simulate_project's with the same seed.
    base = simulate_project(1500, seed=5)
    pd.testing.assert_series_equal(base.classifications["user"], distractor_project.classifications["user"])


def test_clump_sizes_span_ten_times_and_some_touch(distractor_project):
    truth = distractor_project.truth
    side = np.sqrt(truth["width"] * truth["height"])
    assert side.quantile(0.99) / side.quantile(0.01) > 7
    touching = truth[truth["touching"]]
    assert len(touching) > 0.1 * truth.groupby("subject_id").size().ge(2).sum()
    # A touching clump shares an edge with the clump before it (gap at most 2 px), without overlap.
    first = truth.loc[touching.index - 1]
    gap_x = np.maximum(touching["x"].to_numpy() - (first["x"] + first["width"]).to_numpy(),
                       first["x"].to_numpy() - (touching["x"] + touching["width"]).to_numpy())
    gap_y = np.maximum(touching["y"].to_numpy() - (first["y"] + first["height"]).to_numpy(),
                       first["y"].to_numpy() - (touching["y"] + touching["height"]).to_numpy())
    assert np.all((np.maximum(gap_x, gap_y) >= -1e-9) & (np.maximum(gap_x, gap_y) <= 2 + 1e-9))


def test_distractors_are_boxed_by_a_consistent_minority(distractor_project):
    marks, volunteers = distractor_project.marks, distractor_project.volunteers.set_index("user")
    on_star = marks[marks["distractor_id"] >= 0]
    assert (on_star["truth_id"] == -1).all()
    n_seen = distractor_project.classifications.groupby("subject_id").size()
    stars = distractor_project.distractors.set_index("distractor_id")
    support = on_star.groupby("distractor_id")["user"].nunique().reindex(stars.index, fill_value=0)
    fraction = support / n_seen.reindex(stars["subject_id"]).to_numpy()
    assert 0.2 < fraction.mean() < 0.35
    # Who boxes them: volunteers with a high propensity, much more than the others.
    boxers = volunteers["distractor_propensity"] > 0.5
    per_star_mark = boxers.reindex(on_star["user"]).to_numpy()
    assert per_star_mark.mean() > 0.8
    assert 0.25 < boxers.mean() < 0.45


def test_spammers_draw_only_random_boxes(distractor_project):
    marks, volunteers = distractor_project.marks, distractor_project.volunteers
    spammers = volunteers.loc[volunteers["spammer"], "user"]
    assert len(spammers) > 0
    spam = marks[marks["user"].isin(spammers)]
    assert len(spam) > 0 and (spam["truth_id"] == -1).all() and (spam["distractor_id"] == -1).all()
