"""Humans and machine side by side: a project's machine detections matched to its consensus.

`compare_detections` is the one comparison the command line (``zoolens compare``), the app's
Machine tab and cutout, and a notebook make: the detections matched (`consensus.detections`)
to the consensus, or to the reviewed catalogue when a review store is given, over the subjects
the volunteers classified (a detection on a subject no volunteer saw is not "machine-only").
No Panel here.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from functools import cached_property

import numpy as np
import pandas as pd

from consensus.detections import DetectionMatch, match_detections
from consensus.matching import DEFAULT_MAX_DISTANCE, DEFAULT_MIN_IOU

#: What the boxes compared with are called, in the numbers' description.
AGAINST_CONSENSUS, AGAINST_REVIEWED = "consensus", "reviewed catalogue"
#: The per-subject count columns a comparison adds to the subjects' statistics.
SUBJECT_COLUMNS = ("true_positives", "machine_only", "human_only", "machine_disagreement")
#: Per-subject counts kept per comparison, by threshold: a slider visits a few values again and again.
KEPT_THRESHOLDS = 16


class MachineComparison:
    """The detections matched to the boxes once, and every number read from that one matching.

    Parameters
    ----------
    detections : DataFrame
        The canonical detections (`data_loaders.detections`).
    match : consensus.detections.DetectionMatch
        Their matching (`compare_detections` makes it).
    against : str
        What the boxes are: `AGAINST_CONSENSUS` or `AGAINST_REVIEWED`.

    box_ids : Series, optional
        The id each box has where it came from, by its id in the matching (the reviewed catalogue's
        boxes are renumbered for it: `reviewed_boxes`); default the same ids.
    """

    def __init__(self, detections: pd.DataFrame, match: DetectionMatch, against: str = AGAINST_CONSENSUS,
                 box_ids: pd.Series | None = None):
        self.detections = detections
        self.match = match
        self.against = against
        self.box_ids = box_ids
        self._counts: OrderedDict[float, pd.DataFrame] = OrderedDict()

    @property
    def sources(self) -> list[str]:
        """The detections' source names (which detector and run)."""
        return sorted(pd.unique(self.detections["source"].astype(str)))

    @cached_property
    def score_range(self) -> tuple[float, float]:
        """Lowest and highest detection score (0, 1 without detections)."""
        scores = self.detections["score"]
        return (float(scores.min()), float(scores.max())) if len(scores) else (0.0, 1.0)

    def summary(self, score_threshold: float) -> dict:
        """The overall numbers at ``score_threshold`` (`DetectionMatch.summary`), as ``zoolens compare`` prints."""
        return self.match.summary(score_threshold)

    @cached_property
    def curve(self) -> pd.DataFrame:
        """Precision, recall and F1 at every distinct score (`DetectionMatch.precision_recall_curve`)."""
        return self.match.precision_recall_curve()

    def subject_counts(self, score_threshold: float) -> pd.DataFrame:
        """Per subject at ``score_threshold`` (`DetectionMatch.subject_counts`), indexed by subject id.

        Adds ``machine_disagreement`` (machine-only + human-only: how much humans and machine
        disagree on the subject). Shared: do not modify the result.
        """
        key = float(score_threshold)
        counts = self._counts.get(key)
        if counts is None:
            counts = self.match.subject_counts(key).set_index("subject_id")
            counts["machine_disagreement"] = counts.pop("disagreement")
            self._counts[key] = counts
            while len(self._counts) > KEPT_THRESHOLDS:
                self._counts.popitem(last=False)
        else:
            self._counts.move_to_end(key)
        return counts

    def detections_of(self, subject_id: int) -> pd.DataFrame:
        """One subject's detections with their match: ``matched`` (True, False: machine-only; NA on a subject
        no volunteer classified, not compared), the ``consensus_id`` matched (its own id, a reviewer's added
        box's negative too), ``iou`` and ``distance`` to it."""
        table = self._matched_detections
        start, stop = np.searchsorted(table["subject_id"].to_numpy(), [subject_id, subject_id + 1])
        return table.iloc[start:stop]

    @cached_property
    def _matched_detections(self) -> pd.DataFrame:
        """Every detection with its match columns, sorted by subject (then decreasing score)."""
        matched = self.match.detections[["detection_id", "consensus_id", "iou", "distance"]]
        found = matched["consensus_id"] >= 0
        matched = matched.assign(matched=found)
        if self.box_ids is not None:
            matched["consensus_id"] = matched["consensus_id"].map(self.box_ids).where(found, -1).astype(np.int64)
        table = self.detections.merge(matched, on="detection_id", how="left")
        table["matched"] = table["matched"].astype("boolean")
        return table.sort_values(["subject_id", "score"], ascending=[True, False], ignore_index=True)


def classified_subjects(project) -> np.ndarray:
    """The subjects the volunteers classified (in the workflow and version kept): those compared."""
    return np.unique(project.classifications["subject_id"].to_numpy(np.int64))


def reviewed_boxes(project, reviews) -> pd.DataFrame:
    """The reviewed catalogue of the project's consensus (`ReviewStore.apply`), rejected boxes left out.

    Renumbered 0, 1, ... in ``consensus_id`` (boxes reviewers added have negative ids, which the
    matching keeps for "matched nothing"); the catalogue's own id is in ``reviewed_consensus_id``.
    """
    catalogue = reviews.apply(project.consensus, project.consensus_source, rejected="drop")
    return catalogue.assign(reviewed_consensus_id=catalogue["consensus_id"],
                            consensus_id=np.arange(len(catalogue), dtype=np.int64))


def compare_detections(detections: pd.DataFrame, project, reviews=None, min_iou: float = DEFAULT_MIN_IOU,
                       max_distance: float = DEFAULT_MAX_DISTANCE) -> MachineComparison:
    """Match ``detections`` to the project's consensus, or to its reviewed catalogue with ``reviews``.

    Parameters
    ----------
    detections : DataFrame
        Canonical detections.
    project : project.Project
    reviews : project.reviews.ReviewStore, optional
        Compare with the reviewed catalogue: the decisions in this store on the project's
        consensus applied (rejected boxes out, redrawn ones moved, added ones in).
    min_iou, max_distance
        As for `consensus.detections.match_detections`.
    """
    boxes = project.consensus if reviews is None else reviewed_boxes(project, reviews)
    matched = match_detections(detections, boxes, min_iou=min_iou, max_distance=max_distance,
                               subject_ids=classified_subjects(project))
    if reviews is None:
        return MachineComparison(detections, matched)
    box_ids = pd.Series(boxes["reviewed_consensus_id"].to_numpy(np.int64), index=boxes["consensus_id"].to_numpy())
    return MachineComparison(detections, matched, AGAINST_REVIEWED, box_ids=box_ids)


#: Review store -> (project, decision id, its comparison): the last reviewed comparison made, shared by sessions.
_REVIEWED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_REVIEWED_LOCK = threading.Lock()


def reviewed_comparison(project, reviews) -> MachineComparison:
    """The project's detections against its reviewed catalogue as of the store's newest decision.

    Made once per new decision for the whole process (every session showing it shares it, read-only).
    """
    latest = reviews.last_decision_id()
    with _REVIEWED_LOCK:
        known = _REVIEWED.get(reviews)
        if known is None or known[0] is not project or known[1] != latest:
            known = (project, latest, compare_detections(project.detections, project, reviews=reviews))
            _REVIEWED[reviews] = known
    return known[2]
