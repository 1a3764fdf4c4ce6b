"""The point method's compiled kernels against plain references: the numpy clustering and scipy's assignment solver."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from consensus.clustering import cluster_neighbours
from consensus.distance import point_pairs
from consensus.point_kernels import _hungarian, cluster_group, link_group


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
