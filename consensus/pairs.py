"""Candidate pairs of boxes that may overlap, found per subject without an N x N matrix.

Boxes are sorted by (group, left edge). A box can only overlap boxes of its own
group whose left edge lies before its right edge, so a binary search over the
sorted left edges gives each box a contiguous range of candidates (sweep and
prune). Ranges are expanded into pairs in chunks of bounded size, so memory stays
linear in the number of boxes whatever the size of a subject.

Groups and coordinates are mapped to exact integer keys (the group code times
the number of distinct edge values, plus the edge's rank), so a single sorted
array serves every group and no floating-point key can let one group's range
leak into the next.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from . import geometry
from .segments import expand_ranges

#: Default number of candidate pairs expanded per chunk (a few hundred MB of temporaries at most).
MAX_PAIRS_PER_CHUNK = 4_000_000


def _edge_keys(groups, lows, highs):
    """Exact int64 keys ``group * n + rank(edge)`` for the left and right edges of several box sets."""
    values = np.concatenate([np.concatenate([low, high]) for low, high in zip(lows, highs)])
    uniques, ranks = np.unique(values, return_inverse=True)
    ranks = ranks.reshape(-1).astype(np.int64)
    n_ranks = len(uniques) + 1
    keys = []
    offset = 0
    for group, low in zip(groups, lows):
        n = len(low)
        base = np.asarray(group, np.int64) * n_ranks
        keys.append((base + ranks[offset : offset + n], base + ranks[offset + n : offset + 2 * n]))
        offset += 2 * n
    return keys


def _chunks(owner_starts, owner_stops, max_pairs) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Expand per-owner candidate ranges into (owner, candidate) pairs, at most ``max_pairs`` at a time."""
    lengths = np.maximum(owner_stops - owner_starts, 0)
    cumulative = np.cumsum(lengths)
    total = int(cumulative[-1]) if len(cumulative) else 0
    begin = 0
    while begin < len(lengths) and total:
        done = int(cumulative[begin - 1]) if begin else 0
        # Take owners until the chunk is full; always at least one owner, so a single
        # box with more candidates than the budget still makes progress.
        end = int(np.searchsorted(cumulative, done + max_pairs, side="right"))
        end = max(end, begin + 1)
        owner, index = expand_ranges(owner_starts[begin:end], owner_stops[begin:end])
        if len(owner):
            yield owner + begin, index
        begin = end


def self_pairs(group, xmin, xmax, ymin, ymax, max_pairs: int = MAX_PAIRS_PER_CHUNK):
    """Pairs ``(i, j)``, ``i < j``, of boxes in one group whose envelopes overlap.

    The arrays must be sorted by ``group`` then ``xmin``. Overlap is strict (a
    shared edge is not an overlap), so it yields exactly the pairs with
    positive intersection area of their envelopes.

    Yields
    ------
    i, j : numpy.ndarray
        Chunks of pair indices into the arrays.
    """
    if len(group) == 0:
        return
    ((low_keys, high_keys),) = _edge_keys([group], [xmin], [xmax])
    # Candidates of i: the boxes after it whose left edge is left of i's right edge.
    stops = np.searchsorted(low_keys, high_keys, side="left")
    starts = np.arange(1, len(group) + 1)
    for i, j in _chunks(starts, stops, max_pairs):
        keep = (ymin[j] < ymax[i]) & (ymin[i] < ymax[j])
        yield i[keep], j[keep]


def cross_pairs(group_a, xmin_a, xmax_a, ymin_a, ymax_a, group_b, xmin_b, xmax_b, ymin_b, ymax_b,
                max_pairs: int = MAX_PAIRS_PER_CHUNK):
    """Pairs ``(i, j)`` of a box of set ``a`` and a box of set ``b`` in the same group whose envelopes overlap.

    Both sets must be sorted by group then ``xmin``. Two intervals overlap when
    one of them starts inside the other; the two searches below take the case
    "b starts inside a" (ties included) and "a starts strictly inside b", which
    never both hold, so every pair comes once.
    """
    if len(group_a) == 0 or len(group_b) == 0:
        return
    (low_a, high_a), (low_b, high_b) = _edge_keys([group_a, group_b], [xmin_a, xmin_b], [xmax_a, xmax_b])
    starts_ab = np.searchsorted(low_b, low_a, side="left")
    stops_ab = np.searchsorted(low_b, high_a, side="left")
    starts_ba = np.searchsorted(low_a, low_b, side="right")
    stops_ba = np.searchsorted(low_a, high_b, side="left")
    for i, j in _chunks(starts_ab, stops_ab, max_pairs):
        keep = (ymin_b[j] < ymax_a[i]) & (ymin_a[i] < ymax_b[j])
        yield i[keep], j[keep]
    for j, i in _chunks(starts_ba, stops_ba, max_pairs):
        keep = (ymin_b[j] < ymax_a[i]) & (ymin_a[i] < ymax_b[j])
        yield i[keep], j[keep]


def iou_pairs(chunks, shapes_a, shapes_b, keep):
    """Gather ``(i, j, iou)`` over candidate-pair ``chunks`` where ``keep(iou)`` holds.

    ``shapes_a`` and ``shapes_b`` are ``(cx, cy, width, height, angle)`` tuples
    of the boxes the pair indices point into.
    """
    first, second, overlap = [], [], []
    for i, j in chunks:
        value = geometry.iou(tuple(v[i] for v in shapes_a), tuple(v[j] for v in shapes_b))
        kept = keep(value)
        first.append(i[kept])
        second.append(j[kept])
        overlap.append(value[kept])
    if not first:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    return np.concatenate(first), np.concatenate(second), np.concatenate(overlap)
