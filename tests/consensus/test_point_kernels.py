"""The point method's compiled kernels against plain references: the numpy clustering, scipy's assignment solver,
numpy's lexsort and the links table of `consensus.matching`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import linear_sum_assignment

from consensus import aggregate, match
from consensus.clustering import cluster_neighbours
from consensus.distance import point_arrays, point_mask, point_pairs
from consensus.point_kernels import _hungarian, cluster_group, link_group, read_only, sort_clicks
from consensus.prepare import prepare, sorted_codes
from consensus.simulate_points import simulate_point_project


def crowd(rng, n_clicks, n_volunteers, size):
    """Clicks of a few volunteers crowded into a ``size`` px square, sorted by x as `prepare` sorts them."""
    x, y = rng.uniform(0, size, n_clicks), rng.uniform(0, size, n_clicks)
    order = np.argsort(x, kind="stable")
    return x[order], y[order], rng.integers(0, n_volunteers, n_clicks)


def partition(labels) -> set:
    """A clustering as a set of member sets, whatever the numbering."""
    return {frozenset(np.flatnonzero(labels == label).tolist()) for label in np.unique(labels)}


@pytest.mark.parametrize("seed", range(10))
def test_clustering_kernel_matches_the_numpy_clustering(seed):
    rng = np.random.default_rng(seed)
    n_volunteers = int(rng.integers(2, 10))
    x, y, volunteer = crowd(rng, int(rng.integers(10, 300)), n_volunteers, rng.uniform(30, 200))
    distance = 12.0
    group = np.zeros(len(x), dtype=np.int64)
    first, second, apart = point_pairs(group, x, y, distance)
    other = volunteer[first] != volunteer[second]
    expected = cluster_neighbours(group, volunteer, first[other], second[other], 1.0 - apart[other] / distance)
    labels, n_labels = cluster_group(x, y, volunteer, n_volunteers, distance)
    assert n_labels == len(np.unique(labels)) and labels.min() == 0
    assert partition(labels) == partition(expected)


@pytest.mark.parametrize("seed", range(10))
def test_linking_kernel_is_the_best_one_click_per_volunteer_per_point_matching(seed):
    rng = np.random.default_rng(100 + seed)
    n_volunteers = int(rng.integers(1, 5))
    # Many clicks per volunteer near few points: most problems have conflicts the fast paths cannot settle.
    x, y, volunteer = crowd(rng, int(rng.integers(5, 80)), n_volunteers, 60.0)
    n_points = int(rng.integers(1, 12))
    px, py = rng.uniform(0, 60, n_points), rng.uniform(0, 60, n_points)
    link_distance = 15.0
    linked, nearest = link_group(x, y, volunteer, n_volunteers, px, py, link_distance)
    distance = np.hypot(x[:, None] - px[None, :], y[:, None] - py[None, :])
    within = distance <= link_distance
    score = np.where(within, 1.0 - distance / (2 * link_distance), 0.0)
    assert nearest.tolist() == np.where(within.any(axis=1), np.where(within, distance, np.inf).argmin(axis=1), -1).tolist()
    for v in range(n_volunteers):
        own = np.flatnonzero(volunteer == v)
        rows, columns = linear_sum_assignment(score[own], maximize=True)
        picked = score[own][rows, columns] > 0
        expected = np.full(len(own), -1)
        expected[rows[picked]] = columns[picked]
        assert linked[own].tolist() == expected.tolist()
        # One click per volunteer per point, and only within reach.
        got = linked[own][linked[own] >= 0]
        assert len(set(got.tolist())) == len(got)
        assert np.all(within[own[linked[own] >= 0], got])


@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (4, 4), (6, 3), (5, 9)])
def test_hungarian_finds_the_least_cost(shape):
    rng = np.random.default_rng(sum(shape))
    cost = rng.uniform(-1, 0, shape)
    cost[rng.random(shape) < 0.3] = 0.0  # no edge
    rows, columns = shape
    matrix = cost if rows <= columns else cost.T
    column = _hungarian(matrix)
    expected_rows, expected_columns = linear_sum_assignment(matrix)
    assert len(set(column.tolist())) == len(column)
    assert matrix[np.arange(len(column)), column].sum() == pytest.approx(matrix[expected_rows, expected_columns].sum())


@pytest.mark.parametrize("seed", range(8))
def test_clicks_are_ordered_as_lexsort_orders_them(seed):
    rng = np.random.default_rng(200 + seed)
    n = int(rng.integers(1, 3000))
    n_groups = int(rng.integers(1, 40))
    group = rng.integers(0, n_groups, n)
    # Whole pixels on a small frame: many clicks share an x, or x and y; some groups crowd one column.
    x = rng.integers(0, int(rng.integers(1, 60)), n).astype(float)
    x[group == 0] = 7.0
    y = rng.integers(0, 5, n).astype(float)
    volunteer = rng.integers(0, 6, n)
    mark_id = rng.permutation(n) // 2  # repeated ids: equal whole keys keep their table order
    keep = np.flatnonzero(rng.random(n) < 0.9)
    expected = keep[np.lexsort((mark_id[keep], volunteer[keep], y[keep], x[keep], group[keep]))]
    order = sort_clicks(group, n_groups, keep, read_only(x), read_only(y), volunteer, read_only(mark_id))[0]
    assert order.tolist() == expected.tolist()


def test_a_spread_out_group_takes_the_bucket_sort_and_matches_lexsort():
    rng = np.random.default_rng(3)
    x, y = rng.uniform(0, 1000, 5000), rng.uniform(0, 750, 5000)
    group, volunteer, mark_id = np.zeros(5000, np.int64), rng.integers(0, 12, 5000), np.arange(5000)
    order = sort_clicks(group, 1, np.arange(5000), read_only(x), read_only(y), volunteer,
                        read_only(mark_id))[0]
    assert order.tolist() == np.lexsort((mark_id, volunteer, y, x, group)).tolist()


def test_the_kernels_links_columns_are_those_of_match_on_marks_that_are_not_all_points():
    # The kernels write the links table's columns straight in the marks' order: boxes and clicks without a
    # position get no point (-1, NaN, best IoU 0), as `consensus.match` gives them.
    project = simulate_point_project(30, seed=2)
    marks = project.marks.copy()
    rng = np.random.default_rng(4)
    boxes = rng.random(len(marks)) < 0.05
    marks.loc[boxes, ["width", "height"]] = 5.0
    marks.loc[boxes, "kind"] = "rectangle"
    marks.loc[rng.random(len(marks)) < 0.03, "x"] = np.nan
    result = aggregate(marks, project.classifications, method="point")
    assert 0 < result.report["marks_without_point"] < len(marks)
    pd.testing.assert_frame_equal(result.links, match(marks, result.consensus, max_distance=12.0), check_exact=True)
    votes = result.links.loc[result.links["consensus_id"] >= 0, "consensus_id"].value_counts()
    assert votes.reindex(result.consensus["consensus_id"]).tolist() == result.consensus["n_votes"].tolist()


@pytest.mark.parametrize("spread", [1, 50, 10**12])
def test_sorted_codes_are_the_ranks_among_the_distinct_values(spread):
    rng = np.random.default_rng(spread % 97)
    values = 5 + rng.integers(0, spread, 400) if spread > 1 else np.full(400, 5)
    codes, distinct = sorted_codes(values.astype(np.int64))
    assert distinct.tolist() == np.unique(values).tolist()
    assert codes.tolist() == np.searchsorted(distinct, values).tolist()
    assert codes.dtype == np.int64 and distinct.dtype == np.int64
    empty_codes, empty_distinct = sorted_codes(np.zeros(0, np.int64))
    assert len(empty_codes) == len(empty_distinct) == 0


def test_prepared_clicks_are_in_the_order_point_arrays_gives():
    rng = np.random.default_rng(11)
    n = 600
    marks = pd.DataFrame({
        "mark_id": rng.permutation(n), "classification_id": rng.integers(0, 80, n),
        "subject_id": rng.choice([5, 9, 10**9], n), "user": rng.choice(["ann", "bo", "cy", None], n),
        "task": rng.choice(["T0", "T1"], n), "tool": np.zeros(n, np.int64), "frame": rng.integers(0, 2, n),
        "x": rng.integers(0, 30, n).astype(float), "y": rng.integers(0, 4, n).astype(float),
        "width": np.where(rng.random(n) < 0.1, 5.0, 0.0), "height": 0.0,
    })
    marks.loc[rng.random(n) < 0.05, "x"] = np.nan
    prep = prepare(marks, points=True)
    volunteer = np.empty(n, np.int64)
    volunteer[prep.marks.row] = prep.volunteer
    group = np.empty(n, np.int64)
    group[prep.marks.row] = prep.marks.group
    expected = point_arrays(marks, group, np.flatnonzero(point_mask(marks)),
                            tiebreak=(volunteer, marks["mark_id"].to_numpy()))
    assert prep.marks.row.tolist() == expected.row.tolist()
    assert prep.marks.group.tolist() == expected.group.tolist()
    assert prep.n_invalid == n - len(expected.row)
