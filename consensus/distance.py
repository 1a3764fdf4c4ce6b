"""Point marks: which rows are points, and which points lie within a distance of each other.

A point is a click, not a box: ``x``, ``y`` is the click and ``width``,
``height`` are 0 (or missing, as the export loader leaves them). Points are
compared by their distance in image pixels, never by overlap. Two points are
only ever compared within one group (subject, task, tool, frame), so the
search runs on every subject at once in a single k-d tree (`scipy.spatial.cKDTree`)
whose third coordinate is the group code spread far enough apart that points of
different groups are never within the radius of each other.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from .boxes import BoxArrays


def point_mask(table: pd.DataFrame) -> np.ndarray:
    """Which rows of a marks or consensus table are points.

    With a ``kind`` column, the rows of kind ``"point"``; rows without a kind,
    and tables without the column, are points when both sizes are 0 or missing.
    Either way the position must be finite: a point without one is no point.
    """
    x, y, width, height = (table[column].to_numpy(float, na_value=np.nan) for column in ("x", "y", "width", "height"))
    no_size = ~(width > 0) & ~(height > 0)
    if "kind" in table.columns:
        kind = table["kind"].astype("string")
        is_point = np.where(kind.isna().to_numpy(), no_size, (kind == "point").fillna(False).to_numpy(bool))
    else:
        is_point = no_size
    return is_point.astype(bool) & np.isfinite(x) & np.isfinite(y)


def point_arrays(table: pd.DataFrame, group: np.ndarray, keep: np.ndarray, tiebreak: tuple[np.ndarray, ...] = ()) -> BoxArrays:
    """The points of ``table`` at rows ``keep`` as sorted size-0 `BoxArrays` (``row`` indexes the table)."""
    x, y = (table[column].to_numpy(float, na_value=np.nan) for column in ("x", "y"))
    zero = np.zeros(len(table))
    return BoxArrays.from_centres(group, x, y, zero, zero, zero, tiebreak, keep=keep)


def _spread_groups(group: np.ndarray, x: np.ndarray, y: np.ndarray, radius: float) -> np.ndarray:
    """(x, y, group * spacing) coordinates: within a group the plane, across groups always farther than ``radius``."""
    return np.column_stack([x, y, group.astype(float) * (4.0 * radius + 1.0)])


def point_pairs(group: np.ndarray, x: np.ndarray, y: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All pairs ``(i, j, distance)``, ``i < j``, of points of one group at most ``radius`` pixels apart."""
    if len(x) < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    pairs = cKDTree(_spread_groups(group, x, y, radius)).query_pairs(radius, output_type="ndarray")
    first, second = pairs[:, 0].astype(np.int64), pairs[:, 1].astype(np.int64)
    return first, second, np.hypot(x[first] - x[second], y[first] - y[second])


def cross_point_pairs(group: np.ndarray, x: np.ndarray, y: np.ndarray, other_group: np.ndarray, other_x: np.ndarray,
                      other_y: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All ``(i, j, distance)`` with point ``i`` of the first set and ``j`` of the other in one group, at most ``radius`` apart.

    The other set (consensus points, far fewer than the clicks) is the tree;
    each click asks for its few nearest within ``radius``, and only the clicks
    that found as many as they asked for ask again for more, so the answer is
    complete without a tree over the clicks.
    """
    if len(x) == 0 or len(other_x) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    tree = cKDTree(_spread_groups(other_group, other_x, other_y, radius))
    coordinates = _spread_groups(group, x, y, radius)
    pending = np.arange(len(x))
    firsts, seconds = [], []
    k = min(4, len(other_x))
    while len(pending):
        found = tree.query(coordinates[pending], k=k, distance_upper_bound=radius)[1].reshape(len(pending), k)
        hit = found < len(other_x)
        # A click whose k-th nearest is within reach may have more: it asks again with a larger k.
        complete = ~hit[:, -1] | (k == len(other_x))
        row, column = np.nonzero(hit & complete[:, None])
        firsts.append(pending[row])
        seconds.append(found[row, column])
        pending = pending[~complete]
        k = min(4 * k, len(other_x))
    first, second = np.concatenate(firsts).astype(np.int64), np.concatenate(seconds).astype(np.int64)
    return first, second, np.hypot(x[first] - other_x[second], y[first] - other_y[second])
