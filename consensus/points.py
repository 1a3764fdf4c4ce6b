"""The ``point`` method: consensus points from volunteers' clicks (penguins, seabirds, craters, clumps).

1. Cluster each subject's clicks on distance in pixels: clicks of different
   volunteers at most ``distance`` apart are neighbours, and the greedy seeded
   clustering of `consensus.clustering` (the one the ``iou`` method uses, with
   closeness 1 - d / ``distance`` in place of IoU) groups them, one click per
   volunteer per cluster. Seeding from the best-supported click of each
   neighbourhood keeps two penguins a little more than ``distance`` apart from
   being chained into one, as single-linkage (DBSCAN) clustering does.
2. A cluster's point is the median of its clicks' x and y, robust to a stray click.
3. Keep points with at least ``min_votes`` votes and a vote fraction (votes /
   volunteers who saw the subject, including those who clicked nothing) of at
   least ``min_vote_fraction``.
4. ``refine`` times: link every click to the points within ``link_distance``
   pixels, one click per volunteer per point (`consensus.matching`), take the
   median of the linked clicks again and apply the quorum again. The final
   ``n_votes`` are the links, so the consensus and the links table always agree.

Each consensus point is a row with ``x``, ``y`` the point, ``width`` = ``height`` = 0,
``kind`` "point", the tool's ``tool_label``, and ``sigma``: the spread of its votes,
the per-axis standard deviation in pixels, sqrt(sum of squared distances / (2 (n - 1)))
(NaN with one vote).

Every step is per subject with no state shared across subjects, so a Dask
partition of subjects gives the same rows as the whole table in pandas.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import param

from .base import AggregationResult, Aggregator, partition_output, quorum, reassign_points
from .clustering import cluster_neighbours
from .distance import PointTree
from .estimate import Estimates, Members
from .prepare import Prepared, prepare
from .segments import segment_median, segment_sum


class PointClustering(Aggregator):
    """Clicks clustered on distance in pixels, one vote per volunteer per point, a vote quorum and a median point."""

    short_name = "point"

    distance = param.Number(
        default=12.0, bounds=(0.0, None), inclusive_bounds=(False, True),
        doc="Distance in image pixels at which clicks of different volunteers are neighbours when clustering. "
            "About the size of the objects clicked: on Penguin Watch's 1000 x 750 frames 90 % of the clicks "
            "on a penguin lie within 13 px of another volunteer's, and one volunteer's clicks on two penguins "
            "are rarely closer than 16 px. The defaults (12 px, link_distance 12 px, min_vote_fraction 0.15) "
            "scored best over a grid on simulated colonies (bench/bench_points.py's tuning seed).",
    )
    link_distance = param.Number(
        default=12.0, bounds=(0.0, None), inclusive_bounds=(False, True),
        doc="Distance in image pixels within which a click counts as a vote for a consensus point "
            "(in the links and n_votes); the point counterpart of min_iou.",
    )
    min_vote_fraction = param.Number(
        default=0.15, bounds=(0.0, 1.0),
        doc="Smallest share of the volunteers who saw a subject (including those who clicked nothing) "
            "that must vote for a point for it to be kept.",
    )
    min_votes = param.Integer(
        default=2, bounds=(1, None),
        doc="Smallest number of distinct volunteers that must vote for a point for it to be kept.",
    )
    refine = param.Integer(
        default=1, bounds=(0, 10),
        doc="Rounds of re-linking every click to the points and taking the median of the linked clicks again.",
    )

    @classmethod
    def extra_columns(cls) -> dict[str, str]:
        return {"kind": "string", "tool_label": "string", "sigma": "float64"}

    def run(self, partitions) -> AggregationResult:
        return self.collect(partitions.map(_aggregate_partition, self))

    def quorum(self, votes: np.ndarray, n_seen: np.ndarray) -> np.ndarray:
        """Which points have enough votes, absolutely and as a share of the volunteers who saw them."""
        return quorum(votes, n_seen, self.min_votes, self.min_vote_fraction)


def cluster_points(prep: Prepared, tree: PointTree, distance: float) -> Members:
    """Clusters of the prepared clicks (step 1 of the module docstring), one click per volunteer each; ``tree`` is theirs."""
    marks = prep.marks
    first, second, apart = tree.pairs(distance)
    other = prep.volunteer[first] != prep.volunteer[second]
    first, second, apart = first[other], second[other], apart[other]
    labels = cluster_neighbours(marks.group, prep.volunteer, first, second, 1.0 - apart / distance)
    return Members.from_labels(labels, int(labels.max()) + 1 if len(labels) else 0)


def median_points(marks, members: Members) -> Estimates:
    """The member-wise median x and y of every point (`median_boxes` without its sizes and angles, all 0 for points)."""
    n, box = members.n_boxes, members.box
    group = np.zeros(n, dtype=np.int64)
    group[box] = marks.group[members.mark]
    zero = np.zeros(n)
    return Estimates(group=group, cx=segment_median(marks.cx[members.mark], box, n),
                     cy=segment_median(marks.cy[members.mark], box, n), width=zero, height=zero.copy(), angle=zero.copy())


def vote_spread(prep: Prepared, points: Estimates, box: np.ndarray) -> np.ndarray:
    """Per point, the per-axis standard deviation of its linked clicks around it (NaN below two votes)."""
    linked = np.flatnonzero(box >= 0)
    point = box[linked]
    squared = (prep.marks.cx[linked] - points.cx[point]) ** 2 + (prep.marks.cy[linked] - points.cy[point]) ** 2
    votes = np.bincount(point, minlength=len(points))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(votes > 1, np.sqrt(segment_sum(squared, point, len(points)) / (2.0 * (votes - 1))), np.nan)


def _aggregate_partition(pair, aggregator: PointClustering):
    marks, classifications = pair
    prep = prepare(marks, classifications, points=True)
    n_seen = prep.n_seen_group
    # One tree of the clicks serves the clustering and every round of linking.
    tree = PointTree(prep.marks.group, prep.marks.cx, prep.marks.cy, max(aggregator.distance, aggregator.link_distance))
    members = cluster_points(prep, tree, aggregator.distance)
    points = median_points(prep.marks, members)
    points = points.take(np.flatnonzero(aggregator.quorum(members.count(), n_seen[points.group])))
    iteration = 0
    while True:
        points, assignment, _ = reassign_points(prep, points, aggregator.link_distance, tree)
        votes = np.bincount(assignment.box[assignment.box >= 0], minlength=len(points))
        keep = aggregator.quorum(votes, n_seen[points.group])
        if iteration < aggregator.refine:
            points = median_points(prep.marks, Members.from_labels(assignment.box, len(points))).take(np.flatnonzero(keep))
            iteration += 1
            continue
        if keep.all():
            break
        # Rare: a re-linked point fell below the quorum; drop it and link again.
        points = points.take(np.flatnonzero(keep))
    labels = prep.groups["tool_label"].array.take(points.group) if "tool_label" in prep.groups else pd.NA
    return partition_output(aggregator, prep, points, assignment, shape="point", box_columns={
        "kind": "point",
        "tool_label": labels,
        "sigma": vote_spread(prep, points, assignment.box),
    })
