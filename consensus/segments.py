"""Operations over segments of sorted arrays: the vectorised stand-in for ``groupby``.

Every per-subject computation in `consensus` works on flat arrays sorted by an
integer segment code (a subject, a cluster, a volunteer on a subject). These
helpers turn "for each segment do X" into a few numpy calls, so 85,000 subjects
cost the same Python overhead as one.
"""

from __future__ import annotations

import numpy as np


def run_starts(codes: np.ndarray) -> np.ndarray:
    """Boolean mask of the first element of each run of equal values in ``codes``."""
    starts = np.ones(len(codes), dtype=bool)
    if len(codes) > 1:
        starts[1:] = codes[1:] != codes[:-1]
    return starts


def expand_ranges(starts: np.ndarray, stops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All ``(owner, index)`` with ``starts[owner] <= index < stops[owner]``, without a loop.

    Returns
    -------
    owner, index : numpy.ndarray
        ``owner`` indexes ``starts``; ``index`` runs over each owner's range in order.
    """
    lengths = np.maximum(np.asarray(stops) - np.asarray(starts), 0)
    owner = np.repeat(np.arange(len(lengths)), lengths)
    total = int(lengths.sum())
    if total == 0:
        return owner, np.zeros(0, dtype=np.int64)
    # Position within each range: a global counter minus where the range began.
    range_begin = np.cumsum(lengths) - lengths
    index = np.arange(total) - np.repeat(range_begin, lengths) + np.repeat(starts, lengths)
    return owner, index


def segment_sum(values: np.ndarray, codes: np.ndarray, n_segments: int) -> np.ndarray:
    """Sum of ``values`` per segment code in ``[0, n_segments)`` (codes need not be sorted)."""
    return np.bincount(codes, weights=values, minlength=n_segments)[:n_segments]


def segment_count(codes: np.ndarray, n_segments: int) -> np.ndarray:
    """Number of elements per segment code in ``[0, n_segments)``."""
    return np.bincount(codes, minlength=n_segments)[:n_segments]


def segment_median(values: np.ndarray, codes: np.ndarray, n_segments: int) -> np.ndarray:
    """Median of ``values`` per segment code; NaN for empty segments.

    An even count averages the two middle values, as `numpy.median` does.
    """
    order = np.lexsort((values, codes))
    sorted_codes = codes[order]
    sorted_values = values[order]
    counts = segment_count(codes, n_segments)
    begin = np.searchsorted(sorted_codes, np.arange(n_segments), side="left")
    median = np.full(n_segments, np.nan)
    present = counts > 0
    low = begin[present] + (counts[present] - 1) // 2
    high = begin[present] + counts[present] // 2
    median[present] = (sorted_values[low] + sorted_values[high]) / 2
    return median


def segment_argmax(keys: tuple[np.ndarray, ...], codes: np.ndarray) -> np.ndarray:
    """Index of the element with the largest ``keys`` (lexicographic, last key most significant) per segment.

    Returns one index per distinct code, in increasing code order. Ties on every
    key go to the element that comes last in the arrays, so callers sort their
    arrays in a content-defined order to keep the result independent of row order.
    """
    order = np.lexsort((np.arange(len(codes)),) + tuple(keys) + (codes,))
    sorted_codes = codes[order]
    last = np.ones(len(order), dtype=bool)
    if len(order) > 1:
        last[:-1] = sorted_codes[:-1] != sorted_codes[1:]
    return order[last]


def pair_codes(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Dense int64 codes of the pairs ``(first[i], second[i])`` of non-negative integers, in sorted pair order."""
    if len(first) == 0:
        return np.zeros(0, dtype=np.int64)
    span = int(second.max()) + 1
    if (int(first.max()) + 1) * span >= 2**62:
        return np.unique(np.stack([first, second]), axis=1, return_inverse=True)[1].reshape(-1).astype(np.int64)
    return np.unique(first.astype(np.int64) * span + second, return_inverse=True)[1].reshape(-1).astype(np.int64)


def dense_codes(*columns) -> np.ndarray:
    """One int64 code per row for the combination of ``columns``, ordered as the sorted combinations.

    Missing values are a value of their own (sorted last), never dropped.
    """
    import pandas as pd

    codes = np.zeros(len(columns[0]), dtype=np.int64)
    for column in columns:
        column_codes, uniques = pd.factorize(pd.Series(column), sort=True, use_na_sentinel=False)
        combined = codes * (len(uniques) + 1) + column_codes
        # Re-densify after each column so the product of cardinalities never overflows.
        codes = np.unique(combined, return_inverse=True)[1].astype(np.int64).reshape(-1)
    return codes
