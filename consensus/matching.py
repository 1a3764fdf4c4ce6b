"""Link raw marks to consensus boxes: which box each mark supports, and how well.

A volunteer may support each consensus box with at most one mark: two boxes a
person drew on one clump are one vote, not two (the open problem of
panoptes_aggregation issue 369). Within a subject the constraint only ties
together the marks of one volunteer, so the subject's assignment problem splits
exactly into one small problem per (subject, volunteer): match that
volunteer's marks to the subject's boxes, each mark to at most one box and each
box to at most one mark, maximising the summed IoU over pairs with IoU at least
``min_iou``. That is the per-subject IoU matrix solved with
`scipy.optimize.linear_sum_assignment`, restricted to the rows of one volunteer.

Most of those problems need no solver: when every mark overlaps at most one box
the answer is each box's best mark, and when every box overlaps at most one mark
it is each mark's best box. Both are computed for all subjects at once; only the
rare problems with a genuine conflict (several marks of one person each
overlapping several boxes) go to ``linear_sum_assignment`` one by one.

Point marks (`consensus.distance`) are matched to consensus points the same
way, one mark per volunteer per point, with distance in place of overlap: a
click within ``max_distance`` pixels of a point may vote for it, and the
assignment maximises the summed score 1 - distance / (2 max_distance), which
lies in [0.5, 1], so it links as many clicks as it can and, among those
choices, the nearest. Boxes and points are never matched to each other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from . import distributed
from .boxes import BoxArrays, group_codes, present_group_keys, require_columns, volunteer_keys
from .distance import PointTree, cross_point_pairs, point_arrays, point_mask
from .pairs import cross_pairs, iou_pairs
from .segments import densify, run_starts, segment_best

#: Default IoU a mark needs with a consensus box to count as a vote for it.
DEFAULT_MIN_IOU = 0.5

#: Default distance in pixels within which a click may vote for a consensus point (the point method's default).
DEFAULT_MAX_DISTANCE = 12.0


@dataclass
class Assignment:
    """Per sorted mark: the index of the box it supports (-1 for none) and the IoU, plus its best-overlapping box.

    For points ``iou`` and ``best_iou`` are NaN and ``distance`` / ``best_distance``
    hold the pixel distance to the linked and to the nearest point (NaN for none).
    """

    box: np.ndarray
    iou: np.ndarray
    best_box: np.ndarray
    best_iou: np.ndarray
    distance: np.ndarray | None = None
    best_distance: np.ndarray | None = None


def overlap_edges(marks: BoxArrays, boxes: BoxArrays) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All (mark, box, IoU) with positive IoU, marks and boxes of the same group."""
    chunks = cross_pairs(
        marks.group, marks.xmin, marks.xmax, marks.ymin, marks.ymax,
        boxes.group, boxes.xmin, boxes.xmax, boxes.ymin, boxes.ymax,
    )
    return iou_pairs(chunks, marks.shape_tuple, boxes.shape_tuple, lambda value: value > 0)


def _solve_conflicts(problem, mark_index, box_index, iou) -> np.ndarray:
    """Exact assignment for the problems that need it; edges sorted by problem. Returns the chosen mask."""
    chosen = np.zeros(len(problem), dtype=bool)
    bounds = np.flatnonzero(run_starts(problem)).tolist() + [len(problem)]
    for begin, end in zip(bounds[:-1], bounds[1:]):
        rows, row_of = np.unique(mark_index[begin:end], return_inverse=True)
        cols, col_of = np.unique(box_index[begin:end], return_inverse=True)
        weight = np.zeros((len(rows), len(cols)))
        weight[row_of, col_of] = iou[begin:end]
        edge_of = np.full((len(rows), len(cols)), -1)
        edge_of[row_of, col_of] = np.arange(begin, end)
        picked_rows, picked_cols = linear_sum_assignment(weight, maximize=True)
        picked = weight[picked_rows, picked_cols] > 0
        chosen[edge_of[picked_rows[picked], picked_cols[picked]]] = True
    return chosen


def _solve_components(n_marks: int, mark_index, slot_index, weight) -> np.ndarray:
    """Exact assignment of the conflicted edges, split into the connected components of their mark-box graph.

    A volunteer's problem on a crowded subject (many clicks near many points)
    is mostly a chain of small independent pieces. Pieces with one mark or one
    box take their best edge, pieces with two marks or two boxes are solved in
    closed form (`_solve_two`), all at once; only larger pieces go to
    ``linear_sum_assignment`` one by one. ``slot_index`` codes the (volunteer,
    box) each edge reaches. Returns the chosen mask.
    """
    boxes, box_code = np.unique(slot_index, return_inverse=True)
    n_nodes = n_marks + len(boxes)
    graph = coo_matrix((np.ones(len(weight)), (mark_index, n_marks + box_code)), shape=(n_nodes, n_nodes))
    component = connected_components(graph, directed=False)[1][mark_index]
    order = np.argsort(component, kind="stable")
    component, marks, box_code, weight = component[order], mark_index[order], box_code[order], weight[order]
    component = densify(component)
    n_components = int(component.max()) + 1
    n_rows = _distinct_per_component(component, marks, n_components)
    n_cols = _distinct_per_component(component, box_code, n_components)
    chosen = np.zeros(len(weight), dtype=bool)
    single = np.flatnonzero(((n_rows == 1) | (n_cols == 1))[component])
    chosen[single[segment_best(weight[single], component[single])]] = True
    two_rows = np.flatnonzero(((n_rows == 2) & (n_cols > 1))[component])
    chosen[two_rows[_solve_two(component[two_rows], marks[two_rows], box_code[two_rows], weight[two_rows])]] = True
    two_cols = np.flatnonzero(((n_cols == 2) & (n_rows > 2))[component])
    chosen[two_cols[_solve_two(component[two_cols], box_code[two_cols], marks[two_cols], weight[two_cols])]] = True
    large = np.flatnonzero(((n_rows > 2) & (n_cols > 2))[component])
    if len(large):
        chosen[large[_solve_conflicts(component[large], marks[large], box_code[large], weight[large])]] = True
    result = np.zeros(len(weight), dtype=bool)
    result[order] = chosen
    return result


def _distinct_per_component(component, values, n_components) -> np.ndarray:
    """How many distinct ``values`` each component holds."""
    keys = densify(component * (int(values.max()) + 1) + values)
    first = np.zeros(int(keys.max()) + 1, dtype=np.int64)
    first[keys] = component
    return np.bincount(first, minlength=n_components)


def _solve_two(component, side, other, weight) -> np.ndarray:
    """Exact assignment of pieces whose edges leave exactly two ``side`` nodes (marks or boxes); the chosen mask.

    Each (side, other) pair has one edge. Both nodes' best edges, if they reach
    different ``other`` nodes, are optimal together; if they reach the same one,
    the better of (first's best + second's runner-up) and (first's runner-up +
    second's best) is, since any other pair scores no more than one of those.
    """
    chosen = np.zeros(len(weight), dtype=bool)
    if len(weight) == 0:
        return chosen
    slot = densify(component * (int(side.max()) + 1) + side)  # (component, side node), two per component, in order
    best = segment_best(weight, slot)
    rest = np.ones(len(weight), dtype=bool)
    rest[best] = False
    runner_up = np.full(len(best), -1)
    remaining = np.flatnonzero(rest)
    picked = segment_best(weight[remaining], slot[remaining])
    runner_up[slot[remaining[picked]]] = remaining[picked]
    first, second = np.arange(0, len(best), 2), np.arange(1, len(best), 2)
    best_first, best_second = best[first], best[second]
    apart = other[best_first] != other[best_second]

    def score(edges):
        return np.where(edges >= 0, weight[edges], -np.inf)

    keep_first = score(best_first) + score(runner_up[second]) >= score(runner_up[first]) + score(best_second)
    picks = [best_first[apart], best_second[apart],
             best_first[~apart & keep_first], runner_up[second][~apart & keep_first],
             runner_up[first][~apart & ~keep_first], best_second[~apart & ~keep_first]]
    edges = np.concatenate(picks)
    chosen[edges[edges >= 0]] = True
    return chosen


def assign(marks: BoxArrays, volunteer: np.ndarray, boxes: BoxArrays, min_iou: float) -> Assignment:
    """Assign sorted marks to sorted boxes, one mark per volunteer per box (see the module docstring).

    Parameters
    ----------
    marks, boxes : BoxArrays
        Marks and consensus boxes sharing group codes.
    volunteer : numpy.ndarray
        Integer volunteer code of each sorted mark.
    min_iou : float
        Smallest IoU that counts as support.
    """
    mark_index, box_index, iou = overlap_edges(marks, boxes)
    return assign_edges(len(marks), volunteer, boxes.group, mark_index, box_index, iou, min_iou)


def assign_edges(n_marks: int, volunteer: np.ndarray, box_group: np.ndarray, mark_index: np.ndarray,
                 box_index: np.ndarray, iou: np.ndarray, min_iou: float) -> Assignment:
    """`assign` from the candidate (mark, box, score) edges, one mark per volunteer per box.

    The score is the IoU for boxes; any score in [0, 1] where higher is better
    works (points use one less the distance over the link radius). Edges scoring
    at least ``min_iou`` may be chosen; the summed score is maximised.
    """
    best_box = np.full(n_marks, -1, dtype=np.int64)
    best_iou = np.zeros(n_marks)
    if len(iou):
        best = segment_best(iou, mark_index, n_marks)
        best_box[mark_index[best]] = box_index[best]
        best_iou[mark_index[best]] = iou[best]

    eligible = iou >= min_iou
    mark_index, box_index, iou = mark_index[eligible], box_index[eligible], iou[eligible]
    chosen = np.zeros(len(iou), dtype=bool)
    if len(iou):
        # Sorted by (volunteer, box): each problem (volunteer, group) is one run,
        # because box indices follow group order, and so is each (volunteer, box).
        key = volunteer[mark_index] * len(box_group) + box_index
        order = np.argsort(key, kind="stable")
        mark_index, box_index, iou, key = mark_index[order], box_index[order], iou[order], key[order]
        problem_start = run_starts(volunteer[mark_index] * (int(box_group.max()) + 1) + box_group[box_index])
        problem = np.cumsum(problem_start) - 1
        starts = np.flatnonzero(problem_start)
        pair = np.cumsum(run_starts(key)) - 1
        several_boxes = np.bincount(mark_index, minlength=n_marks)[mark_index] > 1
        several_marks = np.bincount(pair)[pair] > 1
        mark_has_choice = np.maximum.reduceat(several_boxes, starts)[problem]
        box_has_choice = np.maximum.reduceat(several_marks, starts)[problem]

        # Marks have no alternatives: each box keeps its best mark of this volunteer.
        easy = np.flatnonzero(~mark_has_choice)
        chosen[easy[segment_best(iou[easy], pair[easy])]] = True
        # Boxes have no rivals: each mark takes its best box.
        easy = np.flatnonzero(mark_has_choice & ~box_has_choice)
        chosen[easy[segment_best(iou[easy], mark_index[easy], n_marks)]] = True
        conflicted = np.flatnonzero(mark_has_choice & box_has_choice)
        if len(conflicted):
            # One volunteer's mark may support each box once: the nodes are (volunteer, box) pairs.
            chosen[conflicted[_solve_components(n_marks, mark_index[conflicted], pair[conflicted], iou[conflicted])]] = True

    assigned_box = np.full(n_marks, -1, dtype=np.int64)
    assigned_iou = np.full(n_marks, np.nan)
    assigned_box[mark_index[chosen]] = box_index[chosen]
    assigned_iou[mark_index[chosen]] = iou[chosen]
    return Assignment(box=assigned_box, iou=assigned_iou, best_box=best_box, best_iou=best_iou)


def assign_points(marks: BoxArrays, volunteer: np.ndarray, points: BoxArrays, max_distance: float,
                  tree: PointTree | None = None) -> Assignment:
    """Assign sorted point marks to sorted consensus points within ``max_distance`` pixels, one mark per volunteer per point.

    Both are `BoxArrays` of size 0 (their centres are the clicks); see the module docstring for the score.
    ``tree``, the marks' `PointTree` if one was built, saves building it again.
    """
    mark_index, point_index, distance = cross_point_pairs(marks.group, marks.cx, marks.cy,
                                                         points.group, points.cx, points.cy, max_distance, tree)
    score = 1.0 - distance / (2.0 * max_distance)
    assignment = assign_edges(len(marks), volunteer, points.group, mark_index, point_index, score, 0.0)

    def distance_to(index):
        values = np.full(len(marks), np.nan)
        found = index >= 0
        values[found] = np.hypot(marks.cx[found] - points.cx[index[found]], marks.cy[found] - points.cy[index[found]])
        return values

    return Assignment(box=assignment.box, iou=np.full(len(marks), np.nan), best_box=assignment.best_box,
                      best_iou=np.full(len(marks), np.nan), distance=distance_to(assignment.box),
                      best_distance=distance_to(assignment.best_box))


def volunteer_codes(table: pd.DataFrame) -> np.ndarray:
    """Integer volunteer codes ordered like the sorted volunteer keys (so row order does not matter)."""
    return pd.factorize(volunteer_keys(table), sort=True)[0].astype(np.int64)


def match(marks, consensus, min_iou: float = DEFAULT_MIN_IOU, max_distance: float = DEFAULT_MAX_DISTANCE):
    """Link every raw mark to the consensus box or point it supports.

    Boxes are linked to boxes by IoU, points to points by distance (see the
    module docstring); a point is never linked to a box.

    Parameters
    ----------
    marks : pandas.DataFrame or dask.dataframe.DataFrame
        Canonical marks (``mark_id``, ``subject_id``, ``user``, ``x``, ``y``,
        ``width``, ``height``, ``angle``; ``task``, ``tool``, ``frame`` when
        present in both tables keep groups apart).
    consensus : pandas.DataFrame or dask.dataframe.DataFrame
        Canonical consensus boxes (``consensus_id``, ``subject_id`` and the box
        columns), whatever produced them. Dask inputs must both be partitioned
        by subject (see `consensus.distributed`).
    min_iou : float
        IoU a box mark needs with a consensus box to count as a vote for it.
    max_distance : float
        Distance in pixels within which a point mark may vote for a consensus point.

    Returns
    -------
    pandas.DataFrame or dask.dataframe.DataFrame
        The links table, one row per mark in the order of ``marks``:
        ``mark_id``, ``consensus_id`` (-1 when the mark supports nothing),
        ``iou`` (with the linked box; NaN when none and for points), plus
        ``best_consensus_id`` and ``best_iou``, the box the mark overlaps most
        whether or not it was assigned (a mark with a high ``best_iou`` but no
        link is a second mark by the same volunteer on one box), and for points
        ``distance`` (pixels to the linked point) and ``best_distance`` (to the
        nearest point within ``max_distance``, its id in ``best_consensus_id``);
        both NaN for boxes.
    """
    if distributed.is_dask(marks) or distributed.is_dask(consensus):
        # One links table per partition of subjects.
        parts = distributed.partitions(marks, consensus).map(_match_pair, min_iou, max_distance)
        return distributed.frame(parts, links_meta_frame)
    return match_frames(marks, consensus, min_iou, max_distance)


def _match_pair(pair: tuple[pd.DataFrame, pd.DataFrame], min_iou: float, max_distance: float) -> pd.DataFrame:
    marks, consensus = pair
    return match_frames(marks, consensus, min_iou, max_distance)


def match_frames(marks: pd.DataFrame, consensus: pd.DataFrame, min_iou: float = DEFAULT_MIN_IOU,
                 max_distance: float = DEFAULT_MAX_DISTANCE) -> pd.DataFrame:
    """`match` for pandas tables."""
    require_columns(marks, ("mark_id", "subject_id", "x", "y", "width", "height"), "marks")
    require_columns(consensus, ("consensus_id", "subject_id", "x", "y", "width", "height"), "consensus")
    keys = present_group_keys(marks, consensus)
    mark_groups, box_groups = group_codes([marks, consensus], keys)
    volunteer = volunteer_codes(marks)
    mark_ids = marks["mark_id"].to_numpy(np.int64)
    consensus_ids = consensus["consensus_id"].to_numpy(np.int64)
    # Points have no area, so the box path leaves them unlinked; they are linked by distance below.
    mark_boxes, _ = BoxArrays.from_table(marks, mark_groups, tiebreak=(volunteer, mark_ids))
    boxes, _ = BoxArrays.from_table(consensus, box_groups, tiebreak=(consensus_ids,))
    assignment = assign(mark_boxes, volunteer[mark_boxes.row], boxes, min_iou)
    links = links_table(mark_ids, mark_boxes.row, assignment, consensus_ids[boxes.row])
    mark_points = point_mask(marks)
    if mark_points.any():
        clicks = point_arrays(marks, mark_groups, np.flatnonzero(mark_points), tiebreak=(volunteer, mark_ids))
        points = point_arrays(consensus, box_groups, np.flatnonzero(point_mask(consensus)), tiebreak=(consensus_ids,))
        point_links = links_table(mark_ids, clicks.row, assign_points(clicks, volunteer[clicks.row], points, max_distance),
                                  consensus_ids[points.row])
        links[mark_points] = point_links[mark_points]
    return links


def links_table(mark_ids, rows, assignment: Assignment, box_ids) -> pd.DataFrame:
    """The links table in the marks' original order from an assignment of their sorted valid subset."""
    n = len(mark_ids)
    consensus_id = np.full(n, -1, dtype=np.int64)
    iou = np.full(n, np.nan)
    best_id = np.full(n, -1, dtype=np.int64)
    best_iou = np.zeros(n)
    distance = np.full(n, np.nan)
    best_distance = np.full(n, np.nan)
    linked = assignment.box >= 0
    consensus_id[rows[linked]] = box_ids[assignment.box[linked]]
    iou[rows[linked]] = assignment.iou[linked]
    overlapping = assignment.best_box >= 0
    best_id[rows[overlapping]] = box_ids[assignment.best_box[overlapping]]
    best_iou[rows[overlapping]] = assignment.best_iou[overlapping]
    if assignment.distance is not None:
        best_iou[rows] = np.nan
        distance[rows[linked]] = assignment.distance[linked]
        best_distance[rows[overlapping]] = assignment.best_distance[overlapping]
    return links_frame(mark_ids, consensus_id, iou, best_id, best_iou, distance, best_distance)


def links_frame(mark_ids, consensus_id, iou, best_id, best_iou, distance, best_distance) -> pd.DataFrame:
    """The links table of freshly made columns (one per mark, in the marks' order).

    Those columns are its own, so they are not copied again into one block (which costs
    more than making them on a large project); ``mark_ids``, often the marks table's own
    read-only column, is copied.
    """
    return pd.DataFrame(
        {"mark_id": np.array(mark_ids, np.int64), "consensus_id": consensus_id, "iou": iou,
         "best_consensus_id": best_id, "best_iou": best_iou, "distance": distance, "best_distance": best_distance},
        copy=False,
    )


def links_meta_frame() -> pd.DataFrame:
    """Empty links table with the columns and dtypes `match` returns."""
    from data_loaders.schema import empty_table

    table = empty_table("links")
    for column, dtype in (("best_consensus_id", "int64"), ("best_iou", "float64"), ("distance", "float64"),
                          ("best_distance", "float64")):
        table[column] = pd.Series(dtype=dtype)
    return table
