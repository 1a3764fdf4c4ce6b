"""The seeded clustering of `consensus.clustering` against the algorithm of its docstring written plainly.

The vectorised version takes shortcuts (only the edges of marks with several
neighbours of one volunteer are sorted, seeds are found by comparing packed
keys, wide slot spaces are densified); each shortcut is checked here against a
per-mark Python loop, on random neighbour graphs and on inputs built to take
the rarely used branches.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from consensus.clustering import (
    IOU_STEPS,
    _seed_keys,
    _shared_directions,
    cluster_neighbours,
)
from consensus.distance import PointTree, cross_point_pairs
from consensus.segments import dense_codes, first_rows


def reference_clusters(group, volunteer, first, second, closeness) -> list[int]:
    """The module docstring's rounds, one mark at a time (closeness values must not tie)."""
    n = len(group)
    weight = np.round(np.asarray(closeness) * IOU_STEPS).astype(int)
    neighbours = [{} for _ in range(n)]
    for i, j, w in zip(first.tolist(), second.tolist(), weight.tolist()):
        neighbours[i][j] = neighbours[j][i] = w
    cluster, active, next_id = [-1] * n, [True] * n, 0
    while True:
        best = {}
        for i in range(n):
            if active[i]:
                per_volunteer = {}
                for j, w in neighbours[i].items():
                    if active[j] and (volunteer[j] not in per_volunteer or w > per_volunteer[volunteer[j]][1]):
                        per_volunteer[volunteer[j]] = (j, w)
                best[i] = per_volunteer
        for i in sorted(best):
            if not best[i]:
                cluster[i], active[i], next_id = next_id, False, next_id + 1
        remaining = [i for i in range(n) if active[i]]
        if not remaining:
            return cluster

        def rank(i, best=best):
            return (len(best[i]), sum(w for _, w in best[i].values()), -i)

        seeds = [i for i in remaining if all(rank(i) > rank(j) for j in neighbours[i] if active[j])]
        claimed_by = {}
        for seed in seeds:
            cluster[seed], next_id = next_id, next_id + 1
            for j, _ in best[seed].values():
                if j not in claimed_by or rank(seed) > rank(claimed_by[j]):
                    claimed_by[j] = seed
        for j, seed in claimed_by.items():
            cluster[j] = cluster[seed]
            active[j] = False
        for seed in seeds:
            active[seed] = False


def random_graph(rng, n_marks, n_groups, n_volunteers, density):
    """Marks in groups, each of a volunteer; random neighbour pairs within a group between different volunteers."""
    group = np.sort(rng.integers(0, n_groups, n_marks))
    volunteer = rng.integers(0, n_volunteers, n_marks)
    first, second = np.triu_indices(n_marks, 1)
    keep = (group[first] == group[second]) & (volunteer[first] != volunteer[second]) & (rng.random(len(first)) < density)
    first, second = first[keep].astype(np.int64), second[keep].astype(np.int64)
    order = rng.permutation(len(first))  # pairs in no particular order, as a k-d tree gives them
    # Distinct closeness values (no ties at the IoU_STEPS resolution), in (0, 1].
    closeness = (rng.permutation(len(first)) + 1) / (len(first) + 1)
    return group, volunteer, first[order], second[order], closeness


@pytest.mark.parametrize("seed", range(12))
def test_clusters_match_the_plain_algorithm(seed):
    rng = np.random.default_rng(seed)
    # Few volunteers and dense graphs: many marks have several neighbours of one volunteer.
    n_volunteers = int(rng.integers(2, 9))
    graph = random_graph(rng, int(rng.integers(20, 120)), int(rng.integers(1, 5)), n_volunteers, rng.uniform(0.05, 0.6))
    labels = cluster_neighbours(*graph)
    assert labels.tolist() == reference_clusters(*graph)
    # One vote per volunteer per cluster.
    group, volunteer = graph[0], graph[1]
    assert len(set(zip(labels.tolist(), volunteer.tolist()))) == len(labels)
    assert all(len(set(group[labels == label])) == 1 for label in np.unique(labels))


def test_no_pairs_leaves_every_mark_alone():
    group, volunteer = np.array([0, 0, 1]), np.array([0, 1, 0])
    none = np.zeros(0, dtype=np.int64)
    assert cluster_neighbours(group, volunteer, none, none, np.zeros(0)).tolist() == [0, 1, 2]


def brute_shared(volunteer, first, second):
    edges = list(zip(first.tolist(), second.tolist())) + list(zip(second.tolist(), first.tolist()))
    count = {}
    for source, target in edges:
        count[source, volunteer[target]] = count.get((source, volunteer[target]), 0) + 1
    forward = [count[i, volunteer[j]] > 1 for i, j in zip(first.tolist(), second.tolist())]
    backward = [count[j, volunteer[i]] > 1 for i, j in zip(first.tolist(), second.tolist())]
    return forward, backward


@pytest.mark.parametrize("many_volunteers", [False, True])
def test_shared_directions(many_volunteers):
    rng = np.random.default_rng(5)
    if many_volunteers:
        # 400 marks of 400 volunteers in one group and a handful of pairs: the slot space
        # (marks x the group's volunteers) dwarfs the pairs, so it is densified first.
        group, volunteer = np.zeros(400, dtype=np.int64), rng.permutation(400)
        first, second = np.array([0, 0, 3, 7, 7]), np.array([1, 2, 4, 8, 9])
        volunteer[2] = volunteer[1]  # mark 0 has two neighbours of one volunteer
    else:
        group, volunteer, first, second, _ = random_graph(rng, 80, 3, 4, 0.4)
    forward, backward = _shared_directions(group, volunteer, first, second)
    expected_forward, expected_backward = brute_shared(volunteer, first, second)
    assert forward.tolist() == expected_forward and backward.tolist() == expected_backward
    if many_volunteers:
        assert forward.tolist() == [True, True, False, False, False]


@pytest.mark.parametrize("scale", [1, 2**56])
def test_seed_keys_rank_like_the_lexsort(scale):
    # Small numbers pack into one int64; huge strengths cannot, and take the lexsort.
    rng = np.random.default_rng(3)
    n = 50
    remaining = np.sort(rng.choice(n, 30, replace=False))
    support = rng.integers(0, 4, n)
    strength = rng.integers(0, 5, n) * scale
    key = _seed_keys(remaining, support, strength, n)
    expected = remaining[np.lexsort((-remaining, strength[remaining], support[remaining]))]
    assert remaining[np.argsort(key[remaining])].tolist() == expected.tolist()
    assert (np.delete(key, remaining) == 0).all() and (key[remaining] > 0).all()


def test_point_tree_reused_only_where_it_covers():
    rng = np.random.default_rng(1)
    group = np.sort(rng.integers(0, 4, 300))
    x, y = rng.uniform(0, 100, 300), rng.uniform(0, 100, 300)
    other_group = np.sort(rng.integers(0, 4, 50))
    inside_x, other_y = rng.uniform(0, 100, 50), rng.uniform(0, 100, 50)
    tree = PointTree(group, x, y, 12.0)

    def as_set(found):
        return set(zip(found[0].tolist(), found[1].tolist()))

    fresh = cross_point_pairs(group, x, y, other_group, inside_x, other_y, 8.0)
    assert as_set(cross_point_pairs(group, x, y, other_group, inside_x, other_y, 8.0, tree)) == as_set(fresh)
    # Points beyond the tree's extent or a radius beyond its reach could meet another
    # group's points in the tree's layout: a tree fitting both is built instead.
    outside_x = inside_x + 150.0
    assert not tree.covers(outside_x, 8.0) and not tree.covers(inside_x, 20.0)
    for other_x, radius in ((outside_x, 8.0), (inside_x, 20.0)):
        found = cross_point_pairs(group, x, y, other_group, other_x, other_y, radius, tree)
        expected = {(i, j) for i in range(300) for j in range(50)
                    if group[i] == other_group[j] and np.hypot(x[i] - other_x[j], y[i] - other_y[j]) <= radius}
        assert as_set(found) == expected


def test_first_rows_and_dense_codes_from_codes():
    codes = np.array([2, 0, 2, 1, 0, 1])
    assert first_rows(codes).tolist() == [1, 3, 0]
    assert first_rows(np.zeros(0, dtype=np.int64)).tolist() == []
    # Leading codes stand for a column: the same codes as coding the column itself.
    subject = np.array([30, 10, 30, 20, 10, 20])
    task = np.array(["b", "a", "a", None, "a", "b"], dtype=object)
    assert dense_codes(task, codes=np.searchsorted([10, 20, 30], subject)).tolist() == dense_codes(subject, task).tolist()


@pytest.mark.parametrize("column", [
    pd.Series(["T0"] * 5, dtype="string"), pd.Series([3] * 5), pd.Series([pd.NA] * 5, dtype="string"),
    pd.Series(["T0", "T0", None, "T0", "T0"], dtype="string"), pd.Series([2.0, 2.0, np.nan, 2.0, 2.0]),
])
def test_dense_codes_skip_a_column_of_one_value_with_the_codes_hashing_gives(column):
    subject = np.array([1, 0, 1, 2, 0])
    hashed = pd.factorize(column, sort=True, use_na_sentinel=False)[0]
    expected = np.unique(subject * 10 + hashed, return_inverse=True)[1]
    assert dense_codes(column, codes=subject).tolist() == expected.tolist()
