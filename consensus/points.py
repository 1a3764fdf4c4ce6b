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
   least ``min_vote_fraction``; of two kept points closer than
   ``merge_distance``, one object clicked as two clusters, keep the one with
   more votes (its clicks then vote for it in step 4).
4. ``refine`` times: link every click to the points within ``link_distance``
   pixels, one click per volunteer per point (`consensus.matching`), take the
   median of the linked clicks again and apply the quorum again. The final
   ``n_votes`` are the links, so the consensus and the links table always agree.

Each consensus point is a row with ``x``, ``y`` the point, ``width`` = ``height`` = 0,
``kind`` "point", the tool's ``tool_label``, and ``sigma``: the spread of its votes,
the per-axis standard deviation in pixels, sqrt(sum of squared distances / (2 (n - 1)))
(NaN with one vote).

Every step is per subject with no state shared across subjects, so a Dask
partition of subjects gives the same rows as the whole table in pandas. Steps
1-4 run group by group in compiled kernels (`consensus.point_kernels`), the same
algorithm as the numpy passes of `consensus.clustering` and `consensus.matching`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import param

from .base import AggregationResult, Aggregator, partition_output, quorum_votes
from .estimate import Estimates
from .matching import links_frame
from .point_kernels import number_links, point_consensus
from .prepare import prepare


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
    merge_distance = param.Number(
        default=8.0, bounds=(0.0, None),
        doc="Clusters whose median points lie closer than this many pixels are one object clicked as two "
            "(volunteers' double clicks, scattered clicks split in two): the one with fewer votes is dropped "
            "before linking, so its clicks vote for the other, one per volunteer; 0 never merges. The point "
            "counterpart of merge_iou. Two objects lie at least about their size (``distance``) apart, so two "
            "points at two thirds of it are one; 8 px scored best over 0-14 px on every population of "
            "bench/bench_points.py's tuning seed (8-10 px tie), never lower than no merging.",
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

    def needed_votes(self, n_seen: np.ndarray) -> np.ndarray:
        """Votes a point needs, absolutely and as a share of the volunteers who saw it, per ``n_seen``."""
        return quorum_votes(n_seen, self.min_votes, self.min_vote_fraction)


def _aggregate_partition(pair, aggregator: PointClustering):
    marks, classifications = pair
    prep = prepare(marks, classifications, points=True)
    clicks = prep.marks
    group_starts = np.searchsorted(clicks.group, np.arange(len(prep.groups) + 1))
    group, x, y, sigma, votes, links = point_consensus(
        group_starts, clicks.cx, clicks.cy, prep.volunteer, aggregator.needed_votes(prep.n_seen_group),
        float(aggregator.distance), float(aggregator.link_distance), int(aggregator.refine),
        float(aggregator.merge_distance), clicks.row, len(prep.mark_ids))
    zero = np.zeros(len(group))
    points = Estimates(group=group, cx=x, cy=y, width=zero, height=zero.copy(), angle=zero.copy())
    labels = prep.groups["tool_label"].array.take(points.group) if "tool_label" in prep.groups else pd.NA
    return partition_output(
        aggregator, prep, points, votes=votes, shape="point",
        # The links table straight from the kernels' columns, with no temporaries over the marks.
        links=lambda ids: links_frame(prep.mark_ids, *number_links(links, ids)),
        box_columns={"kind": "point", "tool_label": labels, "sigma": sigma})
