"""Point marks: which rows are points, and which points lie within a distance of each other.

A point is a click, not a box: ``x``, ``y`` is the click and ``width``,
``height`` are 0 (or missing, as the export loader leaves them). Points are
compared by their distance in image pixels, never by overlap. Two points are
only ever compared within one group (subject, task, tool, frame), so the
search runs on every subject at once in a single k-d tree (`scipy.spatial.cKDTree`)
in which each group's points are shifted along x by the group code times a stride
wider than every group's extent plus the radius, so points of different groups
are never within the radius of each other (a plane tree: twice as fast as one with
the group as a third coordinate).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from .boxes import BoxArrays
from .segments import sort_by_code_then_value


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
    # The order `BoxArrays.from_centres` gives size-0 boxes (by group, x, y, then the tiebreak),
    # without its envelopes and size keys: a point's envelope is the point.
    kept_x = x[keep]
    exact_keys = (kept_x, y[keep], *(np.asarray(values)[keep] for values in tiebreak))
    order = keep[sort_by_code_then_value(np.asarray(group)[keep].astype(np.int64), kept_x, exact_keys, strict=True)]
    return sorted_points(order, np.asarray(group, dtype=np.int64)[order], x[order], y[order])


def sorted_points(row: np.ndarray, group: np.ndarray, cx: np.ndarray, cy: np.ndarray) -> BoxArrays:
    """Points already sorted, as size-0 `BoxArrays` (``row`` indexes their table).

    A point is its own envelope and has no size: the envelopes are read-only views of ``cx`` and ``cy``
    and the sizes and angle one read-only array of zeros, not copies (a few milliseconds on a large project).
    """
    zero = read_only(np.zeros(len(row)))
    return BoxArrays(row=row, group=group, cx=cx, cy=cy, width=zero, height=zero, angle=zero,
                     xmin=read_only(cx), xmax=read_only(cx), ymin=read_only(cy), ymax=read_only(cy))


def read_only(values: np.ndarray) -> np.ndarray:
    """A read-only view of ``values``, as pandas hands out its columns.

    numba compiles (and caches) one version of a kernel per argument type, and a
    read-only array is a type of its own: viewing every table column read-only
    gives one version whether or not pandas had to copy the column.
    """
    view = values.view()
    view.flags.writeable = False
    return view


def _spread_groups(group: np.ndarray, x: np.ndarray, y: np.ndarray, stride: float) -> np.ndarray:
    """(x + group * stride, y): each group side by side with the others, ``stride`` apart."""
    return np.column_stack([x + group.astype(float) * stride, y])


def _extent(*xs: np.ndarray) -> tuple[float, float]:
    """The smallest and largest x of ``xs`` ((0, 0) when they are empty)."""
    present = [x for x in xs if len(x)]
    if not present:
        return 0.0, 0.0
    return min(float(np.min(x)) for x in present), max(float(np.max(x)) for x in present)


def _distance(x, y, first, other_x, other_y, second) -> np.ndarray:
    """Distance from points ``first`` of (x, y) to ``second`` of the other, in the plane (the shifted coordinates
    of the tree lost a little precision), with one buffer per axis: millions of pairs make large temporaries."""
    dx = x[first]
    dx -= other_x[second]
    dy = y[first]
    dy -= other_y[second]
    return np.hypot(dx, dy, out=dx)


def _tree(coordinates: np.ndarray) -> cKDTree:
    # Queried a few times per build: an unbalanced, uncompacted tree builds faster than it costs to search.
    return cKDTree(coordinates, balanced_tree=False, compact_nodes=False)


class PointTree:
    """A k-d tree over one set of points, groups side by side, for several searches of up to ``reach`` pixels.

    The groups are ``stride`` apart, wider than the x extent of the points (and of
    ``others``, the x of point sets it will be searched with) plus twice ``reach``.
    The aggregation builds the clicks' tree once and searches it for the clicks'
    neighbours and, each round, for the clicks near the consensus points.
    """

    def __init__(self, group: np.ndarray, x: np.ndarray, y: np.ndarray, reach: float, *others: np.ndarray):
        self.x, self.y, self.reach = x, y, reach
        self.low, self.high = _extent(x, *others)
        self.stride = self.high - self.low + 2.0 * reach + 1.0
        self.tree = _tree(_spread_groups(group, x, y, self.stride))

    def covers(self, x: np.ndarray, radius: float) -> bool:
        """Whether points at ``x`` can be searched within ``radius`` without leaking across groups."""
        return radius <= self.reach and float(np.min(x)) >= self.low and float(np.max(x)) <= self.high

    def pairs(self, radius: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All pairs ``(i, j, distance)``, ``i < j``, of its points of one group at most ``radius`` apart."""
        pairs = self.tree.query_pairs(radius, output_type="ndarray")
        first, second = pairs[:, 0].astype(np.int64, copy=False), pairs[:, 1].astype(np.int64, copy=False)
        return first, second, _distance(self.x, self.y, first, self.x, self.y, second)

    def cross(self, group: np.ndarray, x: np.ndarray, y: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All ``(i, j, distance)``, ``i`` its point and ``j`` one of the given (`covers` them), in one group within ``radius``."""
        other = _tree(_spread_groups(group, x, y, self.stride))
        found = self.tree.sparse_distance_matrix(other, radius, output_type="ndarray")
        first, second = found["i"].astype(np.int64), found["j"].astype(np.int64)
        return first, second, _distance(self.x, self.y, first, x, y, second)


def point_pairs(group: np.ndarray, x: np.ndarray, y: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All pairs ``(i, j, distance)``, ``i < j``, of points of one group at most ``radius`` pixels apart."""
    if len(x) < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    return PointTree(group, x, y, radius).pairs(radius)


def cross_point_pairs(group: np.ndarray, x: np.ndarray, y: np.ndarray, other_group: np.ndarray, other_x: np.ndarray,
                      other_y: np.ndarray, radius: float, tree: PointTree | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All ``(i, j, distance)`` with point ``i`` of the first set and ``j`` of the other in one group, at most ``radius`` apart.

    ``tree``, the first set's `PointTree`, is searched when it `covers` the other set, instead of building one.
    """
    if len(x) == 0 or len(other_x) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    if tree is None or not tree.covers(other_x, radius):
        tree = PointTree(group, x, y, radius, other_x)
    return tree.cross(other_group, other_x, other_y, radius)
