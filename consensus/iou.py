"""The ``iou`` method: IoU clustering, one vote per volunteer per box, a vote quorum, a robust box.

1. Cluster each subject's marks greedily by IoU (`consensus.clustering`): a
   cluster never holds two marks of one volunteer. Clusters whose median boxes
   overlap by ``merge_iou`` or more (a clump's stray marks, or the second boxes
   of volunteers who drew it twice) are joined, still one mark per volunteer.
2. Make a box from each cluster: the member-wise median (robust to a stray
   mark), or the inverse-variance weighted mean, each volunteer weighted by
   1 / sigma^2 of their own scatter around the medians across all the boxes
   they voted on (pooled towards the crowd's scatter for volunteers with few
   votes).
3. Keep boxes with at least ``min_votes`` votes and a vote fraction (votes /
   volunteers who saw the subject, including those who drew nothing) of at
   least ``min_vote_fraction``. By default that quorum is learned from the
   project itself (`consensus.quorum`): the deepest valley of the histogram of
   the clusters' vote fractions, which falls between the targets and the tidy
   clusters a minority of volunteers make on distractors (foreground stars,
   artefacts). ``source`` records the value used and that it was learned.
4. ``refine`` times: link every mark to the boxes with the one-mark-per-
   volunteer assignment (`consensus.matching`), re-estimate each box from its
   linked marks and apply the quorum again. The final ``n_votes`` are the links,
   so the consensus and the links table always agree.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import param

from . import distributed
from .base import AggregationResult, ClusteringAggregator, partition_output, quorum, reassign
from .estimate import Estimates, Members, median_boxes, normalised_residuals, weighted_boxes
from .prepare import Prepared
from .quorum import LearnedQuorum, learn_vote_fraction, support_histogram

#: The quorum when there is too little to learn from or no valley to find.
FALLBACK_VOTE_FRACTION = 0.2


class IoUClustering(ClusteringAggregator):
    """IoU clustering honouring one mark per volunteer per box, with a vote quorum and a median or weighted box."""

    short_name = "iou"

    min_vote_fraction = param.Number(
        default=None, bounds=(0.0, 1.0), allow_None=True,
        doc="Smallest share of the volunteers who saw a subject (including those who drew nothing) "
            "that must vote for a box for it to be kept. None (default): learned from the project's own "
            "vote fractions (the valley between targets and what only a minority boxes; 0.2 when the "
            "project is too small or has no valley), and recorded in ``source``.",
    )
    min_votes = param.Integer(
        default=2, bounds=(1, None),
        doc="Smallest number of distinct volunteers that must vote for a box for it to be kept.",
    )
    estimator = param.Selector(
        default="median", objects=["median", "weighted"],
        doc="How a box is made from its votes: 'median' of centre, size and angle, or 'weighted', the "
            "inverse-variance weighted mean with each volunteer's positional variance learnt from all their votes.",
    )
    refine = param.Integer(
        default=1, bounds=(0, 10),
        doc="Rounds of re-linking every mark to the boxes and re-estimating the boxes from their links.",
    )
    prior_strength = param.Number(
        default=8.0, bounds=(0.0, None),
        doc="For estimator='weighted': how many residual coordinates' worth of the crowd's variance a "
            "volunteer's own variance starts from, so one lucky vote does not make anyone infallible.",
    )

    #: The quorum learned by the last `run` (None when ``min_vote_fraction`` was given).
    learned: LearnedQuorum | None = None

    def run(self, partitions) -> AggregationResult:
        states = self.clusters(partitions)
        if self.min_vote_fraction is None:
            self.learned = _learned_quorum(states)[1]
        variances = None
        if self.estimator == "weighted":
            sums = states.map(_residual_sums, self).gather()
            variances = pooled_variances(sums, self.prior_strength)
        outputs = states.map(_finish, self, variances)
        return self.collect(outputs)

    def learned_quorum(self, marks, classifications=None) -> tuple[np.ndarray, LearnedQuorum]:
        """What the default quorum would be, without aggregating: the counts of the clusters' vote
        fractions (`consensus.quorum.BINS` bins over [0, 1], clusters of 2+ votes) and the quorum learned from them."""
        return _learned_quorum(self.clusters(distributed.partitions(marks, classifications)))

    @property
    def vote_fraction(self) -> float:
        """The quorum in force: ``min_vote_fraction`` when given, else the learned one."""
        if self.min_vote_fraction is not None:
            return self.min_vote_fraction
        if self.learned is None:
            raise RuntimeError("the vote quorum is learned in run(); call aggregate() first")
        return self.learned.vote_fraction

    def source(self) -> str:
        """As every method's, with the learned quorum written in and named under ``learned``."""
        if self.min_vote_fraction is not None or self.learned is None:
            return super().source()
        settings = json.loads(super().source())
        settings["min_vote_fraction"] = self.learned.vote_fraction
        settings["learned"] = {"min_vote_fraction": self.learned.found_by, "candidates": self.learned.candidates}
        return json.dumps(settings, sort_keys=True)

    def quorum(self, votes: np.ndarray, n_seen: np.ndarray) -> np.ndarray:
        """Which boxes have enough votes, absolutely and as a share of the volunteers who saw them."""
        return quorum(votes, n_seen, self.min_votes, self.vote_fraction)

    def estimate(self, prep: Prepared, members: Members, variances: VolunteerVariances | None) -> Estimates:
        if self.estimator == "median":
            return median_boxes(prep.marks, members)
        weight = 1.0 / variances.of(prep.volunteer_names)[prep.volunteer[members.mark]]
        return weighted_boxes(prep.marks, members, weight)


class VolunteerVariances:
    """Each volunteer's positional variance (normalised units), and the crowd's for everyone else."""

    def __init__(self, variance: pd.Series, crowd: float):
        self.variance = variance
        self.crowd = crowd

    def of(self, names: np.ndarray) -> np.ndarray:
        """Variance per name, the crowd's for names never seen voting."""
        return self.variance.reindex(names).fillna(self.crowd).to_numpy(float)


def _learned_quorum(states) -> tuple[np.ndarray, LearnedQuorum]:
    histogram = np.sum(states.map(_support_histogram).gather(), axis=0)
    return histogram, learn_vote_fraction(histogram, FALLBACK_VOTE_FRACTION)


def _support_histogram(state) -> np.ndarray:
    prep, members = state
    group = np.zeros(members.n_boxes, dtype=np.int64)
    group[members.box] = prep.marks.group[members.mark]
    return support_histogram(members.count(), prep.n_seen_group[group])


def _residual_sums(state, aggregator: IoUClustering) -> pd.DataFrame:
    """Per volunteer: summed squared normalised residuals from the median boxes that pass the quorum, and their degrees of freedom."""
    prep, members = state
    boxes = median_boxes(prep.marks, members)
    size = members.count()
    kept = aggregator.quorum(size, prep.n_seen_group[boxes.group])
    member_kept = kept[members.box]
    residual = normalised_residuals(prep.marks, members, boxes)[member_kept]
    # Four coordinates per vote, less the share the box itself took from it.
    dof = 4.0 * (1.0 - 1.0 / size[members.box][member_kept])
    names = prep.volunteer_names[prep.volunteer[members.mark[member_kept]]]
    return pd.DataFrame({"volunteer": names, "residual": residual, "dof": dof}).groupby("volunteer").sum()


def pooled_variances(sums: list[pd.DataFrame], prior_strength: float) -> VolunteerVariances:
    """Volunteer variances from per-partition residual sums, shrunk towards the crowd's variance."""
    total = pd.concat(sums).groupby(level=0).sum()
    crowd = float(total["residual"].sum() / total["dof"].sum()) if total["dof"].sum() > 0 else 0.01
    crowd = max(crowd, 1e-6)
    variance = (total["residual"] + prior_strength * crowd) / (total["dof"] + prior_strength)
    return VolunteerVariances(variance.clip(lower=1e-6), crowd)


def _finish(state, aggregator: IoUClustering, variances: VolunteerVariances | None):
    prep, members = state
    n_seen = prep.n_seen_group
    boxes = aggregator.estimate(prep, members, variances)
    boxes = boxes.take(np.flatnonzero(aggregator.quorum(members.count(), n_seen[boxes.group])))
    iteration = 0
    while True:
        boxes, assignment, _ = reassign(prep, boxes, aggregator.min_iou)
        votes = np.bincount(assignment.box[assignment.box >= 0], minlength=len(boxes))
        keep = aggregator.quorum(votes, n_seen[boxes.group])
        if iteration < aggregator.refine:
            members = Members.from_labels(assignment.box, len(boxes))
            boxes = aggregator.estimate(prep, members, variances).take(np.flatnonzero(keep))
            iteration += 1
            continue
        if keep.all():
            break
        # Rare: a re-linked box fell below the quorum; drop it and link again.
        boxes = boxes.take(np.flatnonzero(keep))
    return partition_output(aggregator, prep, boxes, assignment)
