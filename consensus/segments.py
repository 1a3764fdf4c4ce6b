"""Operations over segments of flat arrays: the vectorised stand-in for ``groupby``.

Every per-subject computation in `consensus` works on flat arrays tagged with
an integer segment code (a subject, a cluster, a volunteer on a subject). These
helpers turn "for each segment do X" into a few numpy calls, so 85,000 subjects
cost the same Python overhead as one.

Sorting dominates the cost at millions of rows, so the helpers avoid it where
they can: maxima and counts use ``bincount`` / ``ufunc.at`` (linear time), and
sorts by (integer code, float value) use one float key instead of ``lexsort``,
checked afterwards and redone exactly with ``lexsort`` in the rare case that
two values were too close for the key to separate.
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


def segment_best(values: np.ndarray, codes: np.ndarray, n_segments: int | None = None) -> np.ndarray:
    """Position of the largest value of each non-empty segment; ties go to the first position.

    Linear time (``ufunc.at``), no sort. Returns positions in increasing code order.
    Callers keep their arrays in a content-defined order, so the tie-break does
    not depend on the order of rows in the input tables.
    """
    if len(codes) == 0:
        return np.zeros(0, dtype=np.int64)
    n_segments = int(codes.max()) + 1 if n_segments is None else n_segments
    best = np.full(n_segments, -np.inf)
    np.maximum.at(best, codes, values)
    candidate = np.flatnonzero(values == best[codes])
    first = np.full(n_segments, len(codes), dtype=np.int64)
    np.minimum.at(first, codes[candidate], candidate)
    return first[first < len(codes)]


def sort_by_code_then_value(codes: np.ndarray, values: np.ndarray, exact_keys: tuple = (), strict: bool = False) -> np.ndarray:
    """Order sorting by integer ``codes`` then float ``values`` (then ``exact_keys``, most significant first).

    One float key ``code + 0.5 * scaled value`` is argsorted; the order is then
    checked on the true values. If two values were too close for the key (or,
    with ``strict``, any two are equal, so ``exact_keys`` must decide), the sort is
    redone exactly with ``lexsort``. Only finite values are supported.
    """
    n = len(codes)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    low, high = float(values.min()), float(values.max())
    span = high - low
    if codes.max() < 2**40:
        scaled = (values - low) / span * 0.5 if span > 0 else np.zeros(n)
        order = np.argsort(codes + scaled, kind="stable")
        sorted_codes, sorted_values = codes[order], values[order]
        same = sorted_codes[1:] == sorted_codes[:-1]
        increasing = sorted_values[1:] > sorted_values[:-1] if strict else sorted_values[1:] >= sorted_values[:-1]
        if np.all((sorted_codes[1:] > sorted_codes[:-1]) | (same & increasing)):
            return order
    return np.lexsort(tuple(exact_keys)[::-1] + (values, codes))


def segment_median(values: np.ndarray, codes: np.ndarray, n_segments: int) -> np.ndarray:
    """Median of ``values`` per segment code; NaN for empty segments.

    An even count averages the two middle values, as `numpy.median` does.
    """
    median = np.full(n_segments, np.nan)
    if len(codes) == 0:
        return median
    order = sort_by_code_then_value(codes, values)
    sorted_values = values[order]
    counts = segment_count(codes, n_segments)
    begin = np.cumsum(counts) - counts
    present = counts > 0
    low = begin[present] + (counts[present] - 1) // 2
    high = begin[present] + counts[present] // 2
    median[present] = (sorted_values[low] + sorted_values[high]) / 2
    return median


def densify(keys: np.ndarray) -> np.ndarray:
    """Dense int64 codes ``0..k-1`` of non-negative integer ``keys``, in increasing key order."""
    if len(keys) == 0:
        return np.zeros(0, dtype=np.int64)
    top = int(keys.max()) + 1
    if top <= 4 * len(keys) + 1024:
        present = np.zeros(top, dtype=bool)
        present[keys] = True
        return (np.cumsum(present) - 1)[keys].astype(np.int64, copy=False)  # the gather is a new array already
    return np.unique(keys, return_inverse=True)[1].reshape(-1).astype(np.int64)


def first_rows(codes: np.ndarray) -> np.ndarray:
    """Position of the first element of each code of dense ``codes`` (``0..k-1``, every one present), in code order."""
    first = np.full(int(codes.max()) + 1 if len(codes) else 0, len(codes), dtype=np.int64)
    # ufunc.at, not a fancy assignment: numpy leaves the winner of repeated indices unspecified there.
    np.minimum.at(first, codes, np.arange(len(codes)))
    return first


def dense_codes(*columns, codes: np.ndarray | None = None) -> np.ndarray:
    """One int64 code per row for the combination of ``columns``, ordered as the sorted combinations.

    Missing values are a value of their own (sorted last), never dropped.
    ``codes``, integer codes ordered like the values of a leading key already
    coded (subjects, say), stand for that key's column without hashing it again.
    """
    import pandas as pd

    codes = np.zeros(len(columns[0]), dtype=np.int64) if codes is None else densify(codes)
    for column in columns:
        column = pd.Series(column)
        if len(column) and not column.hasnans and bool((column == column.iloc[0]).all()):
            # One value throughout (a single task, tool or frame, the usual case): every code would be 0 and
            # the codes stay as they are; the comparison costs a fraction of the hashing.
            continue
        column_codes, uniques = pd.factorize(column, sort=True, use_na_sentinel=False)
        # Re-densify after each column so the product of cardinalities never overflows.
        codes = densify(codes * (len(uniques) + 1) + column_codes)
    return codes
