"""Candidate pairs from the sweep equal the brute-force list of overlapping envelopes in each group."""

import numpy as np
import pytest

from consensus.pairs import cross_pairs, self_pairs
from consensus.segments import densify, expand_ranges, segment_best, segment_median, sort_by_code_then_value


def _boxes(rng, n, n_groups, integer=False):
    group = np.sort(rng.integers(0, n_groups, n))
    xmin = rng.uniform(0, 50, n)
    ymin = rng.uniform(0, 50, n)
    if integer:
        xmin, ymin = np.round(xmin / 5) * 5, np.round(ymin / 5) * 5
    width, height = rng.uniform(1, 12, n), rng.uniform(1, 12, n)
    order = np.lexsort((xmin, group))
    return group[order], xmin[order], (xmin + width)[order], ymin[order], (ymin + height)[order]


def _brute(a, b, same_set):
    found = set()
    for i in range(len(a[0])):
        for j in range(len(b[0])):
            if same_set and j <= i:
                continue
            if a[0][i] == b[0][j] and a[1][i] < b[2][j] and b[1][j] < a[2][i] and a[3][i] < b[4][j] and b[3][j] < a[4][i]:
                found.add((i, j))
    return found


@pytest.mark.parametrize("integer", [False, True])
@pytest.mark.parametrize("max_pairs", [1, 7, 1_000_000])
def test_self_pairs_are_exactly_the_overlapping_pairs(integer, max_pairs):
    rng = np.random.default_rng(3)
    boxes = _boxes(rng, 150, 6, integer)
    found = [(int(i), int(j)) for a, b in self_pairs(*boxes, max_pairs=max_pairs) for i, j in zip(a, b)]
    assert len(found) == len(set(found))
    assert set(found) == _brute(boxes, boxes, same_set=True)


@pytest.mark.parametrize("integer", [False, True])
def test_cross_pairs_are_exactly_the_overlapping_pairs(integer):
    rng = np.random.default_rng(4)
    a, b = _boxes(rng, 120, 5, integer), _boxes(rng, 40, 5, integer)
    found = [(int(i), int(j)) for first, second in cross_pairs(*a, *b, max_pairs=13) for i, j in zip(first, second)]
    assert len(found) == len(set(found))
    assert set(found) == _brute(a, b, same_set=False)


def test_expand_ranges():
    owner, index = expand_ranges(np.array([2, 5, 5]), np.array([4, 5, 8]))
    assert owner.tolist() == [0, 0, 2, 2, 2]
    assert index.tolist() == [2, 3, 5, 6, 7]


def test_segment_helpers_against_pandas():
    import pandas as pd

    rng = np.random.default_rng(5)
    codes = rng.integers(0, 40, 1000)
    values = np.round(rng.normal(size=1000), 1)  # many exact ties
    expected = pd.Series(values).groupby(codes).median()
    np.testing.assert_allclose(segment_median(values, codes, 40)[expected.index], expected.to_numpy())
    best = segment_best(values, codes, 40)
    assert (values[best] == pd.Series(values).groupby(codes).max().to_numpy()).all()
    # Ties go to the first position.
    assert segment_best(np.array([1.0, 3.0, 3.0, 2.0]), np.array([0, 0, 0, 1])).tolist() == [1, 3]
    assert densify(np.array([10, 3, 10, 7])).tolist() == [2, 0, 2, 1]
    assert densify(np.array([2**40, 5, 2**40])).tolist() == [1, 0, 1]


def test_sort_by_code_then_value_breaks_ties_with_exact_keys():
    codes = np.array([1, 0, 1, 0, 1])
    values = np.array([2.0, 1.0, 2.0, 1e-300, 0.5])
    tiebreak = np.array([9, 0, 3, 0, 0])
    order = sort_by_code_then_value(codes, values, (tiebreak,), strict=True)
    assert order.tolist() == [3, 1, 4, 2, 0]
