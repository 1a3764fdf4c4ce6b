"""Machine detections against the consensus: matches, counts per subject, precision, recall, AP.

A detection *matches* a consensus box (or a box of the reviewed catalogue: any
table with ``consensus_id``, ``subject_id`` and the box columns) when they are on
the same subject and overlap by IoU at least ``min_iou``; each box and each
detection matches at most once. The pairs are chosen the way COCO's evaluation
(pycocotools ``COCOeval.evaluateImg``) chooses them: detections in order of
decreasing score, each taking the still-free box it overlaps most. That rule
makes the matching of the detections above any score threshold independent of
the detections below it, so one matching serves every threshold: at threshold
``t`` a detection with score >= ``t`` is a true positive when it is matched and
*machine-only* otherwise, and a box no such detection matched is *human-only*.
Precision, recall, F1, the precision-recall curve and the average precision all
count from that one matching, so the point a score slider picks lies on the curve,
and the AP is the number COCO tools report for the same boxes (checked against
pycocotools in the tests). The one-mark-per-volunteer assignment that links
volunteers' marks (`consensus.matching`) maximises the summed IoU instead; the
detections use the same overlap search (`consensus.matching.overlap_edges`) but
COCO's order, without which the AP would not be comparable with published numbers.

Point detections (width and height 0) match consensus points as volunteers'
clicks do (`consensus.matching`): within ``max_distance`` pixels, the nearer the
better (similarity 1 - distance / (2 ``max_distance``)); a point never matches a
box, nor a box a point. Labels are not compared: every detection may match
every box of its subject.

The greedy rule is sequential in score order, but it is computed for all
subjects at once in rounds: every unmatched detection proposes its best free
box, and a proposal is final when no higher-scored undecided detection overlaps
that box (it could not have been taken first). Each round settles at least the
top detection of every group of overlapping ones, in a few numpy calls over all
subjects; `bench/bench_detections.py` times it against pycocotools.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .boxes import BoxArrays, group_codes, require_columns
from .distance import cross_point_pairs, point_arrays, point_mask
from .matching import DEFAULT_MAX_DISTANCE, DEFAULT_MIN_IOU, overlap_edges
from .segments import run_starts

#: The IoU thresholds of COCO's headline AP (``AP@[.50:.05:.95]``).
COCO_IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
#: The recall points at which COCO samples the interpolated precision.
COCO_RECALL_POINTS = np.linspace(0.0, 1.0, 101)

DETECTION_COLUMNS = ("detection_id", "subject_id", "x", "y", "width", "height", "score")
CONSENSUS_COLUMNS = ("consensus_id", "subject_id", "x", "y", "width", "height")


@dataclass
class DetectionMatch:
    """The matching of detections to consensus boxes, and every count and score derived from it.

    ``detections`` has one row per detection: ``detection_id``, ``subject_id``,
    ``score``, the matched ``consensus_id`` (-1 for none) and the ``iou`` with it
    (boxes) or ``distance`` to it in pixels (points), NaN otherwise. ``consensus``
    has one row per box or point:
    ``consensus_id``, ``subject_id``, the matching ``detection_id`` (-1) and its
    ``score`` (NaN). Both are sorted by subject, detections by decreasing score.
    """

    detections: pd.DataFrame
    consensus: pd.DataFrame
    min_iou: float
    max_distance: float
    #: The subjects compared, sorted: those given to `match_detections`, else every one in either table.
    subject_ids: np.ndarray

    def subject_counts(self, score_threshold: float) -> pd.DataFrame:
        """Per subject at ``score_threshold``: detections, boxes, true positives, machine-only, human-only.

        One row per subject compared (`subject_ids`), those without detections or boxes too.
        Also ``precision``, ``recall`` and ``f1`` of the subject (NaN when undefined)
        and ``disagreement`` (machine-only + human-only), to sort subjects by.
        """
        detections = self.detections[self.detections["score"] >= score_threshold]
        matched = detections["consensus_id"] >= 0
        boxes_found = self.consensus["score"] >= score_threshold
        counts = pd.DataFrame({
            "n_detections": detections.groupby("subject_id").size(),
            "n_consensus": self.consensus.groupby("subject_id").size(),
            "true_positives": matched.groupby(detections["subject_id"]).sum(),
            "human_only": (~boxes_found).groupby(self.consensus["subject_id"]).sum(),
        }).reindex(self.subject_ids).fillna(0).astype(np.int64)
        counts.index.name = "subject_id"
        counts.insert(3, "machine_only", counts["n_detections"] - counts["true_positives"])
        counts = counts.join(pd.DataFrame(_scores(counts["true_positives"].to_numpy(),
                                                  counts["n_detections"].to_numpy(),
                                                  counts["n_consensus"].to_numpy()), index=counts.index))
        counts["disagreement"] = counts["machine_only"] + counts["human_only"]
        return counts.reset_index()

    def summary(self, score_threshold: float) -> dict:
        """Overall numbers at ``score_threshold``: counts, precision, recall, F1 and AP (plain Python values)."""
        kept = self.detections["score"] >= score_threshold
        true_positives = int((kept & (self.detections["consensus_id"] >= 0)).sum())
        n_detections, n_consensus = int(kept.sum()), len(self.consensus)
        scores = _scores(np.array([true_positives]), np.array([n_detections]), np.array([n_consensus]))
        return {
            "score_threshold": float(score_threshold),
            "min_iou": float(self.min_iou),
            "max_distance": float(self.max_distance),
            "detections": n_detections,
            "consensus": n_consensus,
            "true_positives": true_positives,
            "machine_only": n_detections - true_positives,
            "human_only": n_consensus - true_positives,
            **{name: float(values[0]) for name, values in scores.items()},
            "average_precision": self.average_precision(),
            "subjects": len(self.subject_ids),
        }

    def precision_recall_curve(self) -> pd.DataFrame:
        """Precision and recall at every distinct score, as the threshold sweeps down from the highest.

        One row per distinct detection score (highest first): ``score_threshold``,
        ``detections`` kept, ``true_positives``, ``precision``, ``recall``, ``f1``.
        """
        ranked = self._ranked()
        scores = ranked["score"].to_numpy()
        true_positives = np.cumsum(ranked["consensus_id"].to_numpy() >= 0)
        # A threshold keeps every detection scoring at least it: the last of each run of equal scores.
        last = np.flatnonzero(np.append(scores[1:] != scores[:-1], True)) if len(scores) else np.zeros(0, int)
        kept = last + 1
        curve = pd.DataFrame({"score_threshold": scores[last], "detections": kept,
                              "true_positives": true_positives[last]})
        return curve.assign(**_scores(curve["true_positives"].to_numpy(), kept, np.full(len(kept), len(self.consensus))))

    def average_precision(self) -> float:
        """Average precision computed the COCO way (101-point interpolated); NaN without consensus boxes.

        Detections in order of decreasing score; precision made non-increasing
        from the right (the envelope), then sampled at recalls 0, 0.01, ..., 1 at
        the first detection reaching each recall (0 past the last), and averaged.
        """
        return _coco_average_precision(self._ranked()["consensus_id"].to_numpy() >= 0, len(self.consensus))

    def _ranked(self) -> pd.DataFrame:
        """Every detection in COCO's order: score decreasing, ties by subject then detection id."""
        return self.detections.sort_values(["score", "subject_id", "detection_id"],
                                           ascending=[False, True, True], kind="stable")


def _scores(true_positives: np.ndarray, n_detections: np.ndarray, n_consensus: np.ndarray) -> dict:
    """Precision, recall and F1 arrays; NaN where a denominator is 0."""
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(n_detections > 0, true_positives / n_detections, np.nan)
        recall = np.where(n_consensus > 0, true_positives / n_consensus, np.nan)
        total = n_detections + n_consensus
        f1 = np.where(total > 0, 2 * true_positives / total, np.nan)
    return {"precision": precision, "recall": recall, "f1": f1}


def _coco_average_precision(is_true_positive: np.ndarray, n_consensus: int) -> float:
    """COCO's interpolated AP of detections ranked by score, given which are true positives."""
    if n_consensus == 0:
        return float("nan")
    if len(is_true_positive) == 0:
        return 0.0
    true_positives = np.cumsum(is_true_positive)
    recall = true_positives / n_consensus
    precision = true_positives / np.arange(1, len(is_true_positive) + 1)
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    index = np.searchsorted(recall, COCO_RECALL_POINTS, side="left")
    sampled = np.where(index < len(envelope), envelope[np.minimum(index, len(envelope) - 1)], 0.0)
    return float(sampled.mean())


def match_detections(detections: pd.DataFrame, consensus: pd.DataFrame, min_iou: float = DEFAULT_MIN_IOU,
                     subject_ids=None, max_distance: float = DEFAULT_MAX_DISTANCE) -> DetectionMatch:
    """Match machine detections to consensus boxes (see the module docstring).

    Parameters
    ----------
    detections : pandas.DataFrame
        Canonical detections (``detection_id``, ``subject_id``, ``x``, ``y``,
        ``width``, ``height``, ``score``, ``angle`` if any).
    consensus : pandas.DataFrame
        The boxes to compare with: the consensus or the reviewed catalogue
        (``consensus_id``, ``subject_id`` and the box columns).
    min_iou : float
        IoU a detection needs with a box to match it.
    subject_ids : array-like, optional
        The subjects both the volunteers and the detector saw; detections and
        boxes of other subjects are left out (a detection on a subject no
        volunteer saw is not "machine-only"). Default: every subject in either table.
    max_distance : float
        Distance in pixels within which a point detection may match a consensus point.

    Returns
    -------
    DetectionMatch
    """
    require_columns(detections, DETECTION_COLUMNS, "detections")
    require_columns(consensus, CONSENSUS_COLUMNS, "consensus")
    if subject_ids is not None:
        subject_ids = np.unique(np.asarray(subject_ids, dtype=np.int64))
        detections = detections[detections["subject_id"].isin(subject_ids)]
        consensus = consensus[consensus["subject_id"].isin(subject_ids)]
    else:
        subject_ids = np.union1d(detections["subject_id"].to_numpy(np.int64), consensus["subject_id"].to_numpy(np.int64))
    detections = detections.reset_index(drop=True)
    consensus = consensus.reset_index(drop=True)
    score = detections["score"].to_numpy(float)
    if not np.isfinite(score).all():
        raise ValueError("detections: every score must be a finite number")
    detection_groups, box_groups = group_codes([detections, consensus], ["subject_id"])
    detection_ids = detections["detection_id"].to_numpy(np.int64)
    # Rank 0 is the best detection: COCO's order, the same as `DetectionMatch._ranked`.
    order = np.lexsort((detection_ids, detections["subject_id"].to_numpy(np.int64), -score))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))

    consensus_ids = consensus["consensus_id"].to_numpy(np.int64)
    # The greedy rule breaks ties by target: a content-defined order (subject, id), not the rows'.
    target_order = np.lexsort((consensus_ids, consensus["subject_id"].to_numpy(np.int64)))
    target_of_row = np.empty(len(target_order), dtype=np.int64)
    target_of_row[target_order] = np.arange(len(target_order))
    edge_detection, edge_row, similarity, distance = _edges(detections, detection_groups, rank, consensus,
                                                            box_groups, min_iou, max_distance)
    matched_target, matched_edge = _greedy(edge_detection, target_of_row[edge_row], similarity, rank,
                                           len(detections))

    found = matched_target >= 0
    matched_row = target_order[matched_target[found]]
    edge = matched_edge[found]
    linked_id = np.full(len(detections), -1, dtype=np.int64)
    linked_iou = np.full(len(detections), np.nan)
    linked_distance = np.full(len(detections), np.nan)
    linked_id[found] = consensus_ids[matched_row]
    linked_iou[found] = np.where(np.isnan(distance[edge]), similarity[edge], np.nan)
    linked_distance[found] = distance[edge]
    detection_table = pd.DataFrame({
        "detection_id": detection_ids,
        "subject_id": detections["subject_id"].to_numpy(np.int64),
        "score": score,
        "consensus_id": linked_id,
        "iou": linked_iou,
        "distance": linked_distance,
    })
    box_detection = np.full(len(consensus), -1, dtype=np.int64)
    box_score = np.full(len(consensus), np.nan)
    box_detection[matched_row] = detection_ids[found]
    box_score[matched_row] = score[found]
    consensus_table = pd.DataFrame({"consensus_id": consensus_ids,
                                    "subject_id": consensus["subject_id"].to_numpy(np.int64),
                                    "detection_id": box_detection, "score": box_score})
    detection_table = detection_table.iloc[np.lexsort((rank, detection_table["subject_id"]))].reset_index(drop=True)
    consensus_table = consensus_table.iloc[target_order].reset_index(drop=True)
    return DetectionMatch(detection_table, consensus_table, float(min_iou), float(max_distance), subject_ids)


def _edges(detections: pd.DataFrame, detection_groups: np.ndarray, rank: np.ndarray, consensus: pd.DataFrame,
           consensus_groups: np.ndarray, min_iou: float, max_distance: float):
    """Every eligible (detection row, consensus row, similarity, distance): boxes by IoU, points by distance.

    Boxes: IoU >= ``min_iou``, similarity the IoU, distance NaN. Points: within
    ``max_distance``, similarity 1 - distance / (2 ``max_distance``).
    """
    consensus_ids = consensus["consensus_id"].to_numpy(np.int64)
    # Points have no area, so the box arrays leave them out.
    sized, _ = BoxArrays.from_table(detections, detection_groups, tiebreak=(rank,))
    boxes, _ = BoxArrays.from_table(consensus, consensus_groups, tiebreak=(consensus_ids,))
    box_detection, box_index, iou = overlap_edges(sized, boxes)
    eligible = iou >= min_iou
    clicks = point_arrays(detections, detection_groups, np.flatnonzero(point_mask(detections)), tiebreak=(rank,))
    points = point_arrays(consensus, consensus_groups, np.flatnonzero(point_mask(consensus)),
                          tiebreak=(consensus_ids,))
    click_index, point_index, distance = cross_point_pairs(clicks.group, clicks.cx, clicks.cy,
                                                           points.group, points.cx, points.cy, max_distance)
    return (np.concatenate([sized.row[box_detection[eligible]], clicks.row[click_index]]),
            np.concatenate([boxes.row[box_index[eligible]], points.row[point_index]]),
            np.concatenate([iou[eligible], 1.0 - distance / (2.0 * max_distance)]),
            np.concatenate([np.full(int(eligible.sum()), np.nan), distance]))


def _greedy(edge_detection: np.ndarray, edge_box: np.ndarray, similarity: np.ndarray, rank: np.ndarray,
            n_detections: int) -> tuple[np.ndarray, np.ndarray]:
    """COCO's greedy matching over eligible edges, in rounds (see the module docstring).

    Returns, per detection row, the matched box (-1 for none) and the index of the edge that matched it.
    """
    matched_box = np.full(n_detections, -1, dtype=np.int64)
    matched_edge = np.full(n_detections, -1, dtype=np.int64)
    if not len(edge_detection):
        return matched_box, matched_edge
    # Each detection's edges together, its preferred box first (highest similarity, then lowest box index).
    order = np.lexsort((edge_box, -similarity, rank[edge_detection]))
    edge_detection, edge_box = edge_detection[order], edge_box[order]
    edge_rank = rank[edge_detection]
    n_boxes = int(edge_box.max()) + 1
    box_taken = np.zeros(n_boxes, dtype=bool)
    decided = np.zeros(n_detections, dtype=bool)
    active = np.ones(len(edge_detection), dtype=bool)
    while active.any():
        live = np.flatnonzero(active)
        proposal = live[run_starts(edge_detection[live])]
        best_rival = np.full(n_boxes, np.iinfo(np.int64).max)
        np.minimum.at(best_rival, edge_box[live], edge_rank[live])
        final = proposal[edge_rank[proposal] == best_rival[edge_box[proposal]]]
        matched_box[edge_detection[final]] = edge_box[final]
        matched_edge[edge_detection[final]] = order[final]
        decided[edge_detection[final]] = True
        box_taken[edge_box[final]] = True
        active &= ~decided[edge_detection] & ~box_taken[edge_box]
    return matched_box, matched_edge


def coco_average_precision(detections: pd.DataFrame, consensus: pd.DataFrame,
                           iou_thresholds=COCO_IOU_THRESHOLDS, subject_ids=None) -> float:
    """COCO's headline AP: the average precision averaged over IoU thresholds 0.50, 0.55, ..., 0.95.

    Parameters are those of `match_detections`; ``iou_thresholds`` replaces ``min_iou``.
    """
    return float(np.mean([match_detections(detections, consensus, threshold, subject_ids).average_precision()
                          for threshold in iou_thresholds]))
