"""Detections against consensus: a hand-worked matching with exact numbers, and AP against pycocotools."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pandas as pd
import pytest

from consensus.detections import coco_average_precision, match_detections


def _boxes(rows, id_column):
    return pd.DataFrame(rows, columns=[id_column, "subject_id", "x", "y", "width", "height"]).astype(
        {id_column: np.int64, "subject_id": np.int64, "x": float, "y": float, "width": float, "height": float})


@pytest.fixture
def worked_case():
    """Five subjects; every IoU below was worked out by hand."""
    consensus = _boxes([
        (11, 1, 0, 0, 10, 10), (12, 1, 20, 0, 10, 10), (13, 1, 0, 40, 10, 10),
        (21, 2, 50, 50, 20, 20), (22, 2, 60, 60, 0, 0),  # a box, and a consensus point at its centre
        (31, 4, 0, 0, 10, 10),
        (41, 5, 0, 0, 10, 10), (42, 5, 3, 0, 10, 10),
    ], "consensus_id")
    detections = _boxes([
        (1, 1, 0, 0, 10, 10),  # = box 11: IoU 1
        (2, 1, 5, 0, 10, 10),  # box 11: 50 / 150 = 1/3, too low; box 12: no overlap
        (3, 1, 22, 0, 10, 10),  # box 12: 80 / 120 = 2/3
        (4, 1, 21, 1, 10, 10),  # box 12: 81 / 119 = 0.68, better, but 3 scores higher and took it
        (5, 2, 63, 64, 0, 0),  # a point 5 pixels from point 22 (and inside box 21, which a point never matches)
        (6, 2, 100, 100, 0, 0),  # a point far from every point
        (7, 3, 5, 5, 10, 10),  # a subject without consensus
        (8, 5, 1, 0, 10, 10),  # box 41: 90 / 110 = 0.82, box 42: 80 / 120 = 0.67: takes 41
        (9, 5, -1, 0, 10, 10),  # box 41: 0.82 but taken; box 42: 60 / 140 = 0.43, too low
    ], "detection_id")
    detections["score"] = [0.9, 0.8, 0.7, 0.3, 0.6, 0.2, 0.95, 0.5, 0.4]
    return detections, consensus


def test_hand_worked_matches(worked_case):
    detections, consensus = worked_case
    matched = match_detections(detections, consensus, min_iou=0.5)
    pairs = matched.detections.set_index("detection_id")
    assert pairs["consensus_id"].to_dict() == {1: 11, 2: -1, 3: 12, 4: -1, 5: 22, 6: -1, 7: -1, 8: 41, 9: -1}
    assert pairs.loc[1, "iou"] == 1.0
    assert pairs.loc[3, "iou"] == pytest.approx(2 / 3)
    assert pairs.loc[5, "distance"] == 5.0 and np.isnan(pairs.loc[5, "iou"])
    assert pairs.loc[8, "iou"] == pytest.approx(9 / 11)
    assert pairs.loc[[2, 4, 6, 7, 9], "iou"].isna().all()
    assert pairs.loc[[1, 3, 8], "distance"].isna().all()
    boxes = matched.consensus.set_index("consensus_id")
    assert boxes["detection_id"].to_dict() == {11: 1, 12: 3, 13: -1, 21: -1, 22: 5, 31: -1, 41: 8, 42: -1}


def test_hand_worked_counts_at_two_thresholds(worked_case):
    matched = match_detections(*worked_case, min_iou=0.5)
    everything = matched.summary(0.0)
    assert {key: everything[key] for key in ("detections", "consensus", "true_positives", "machine_only",
                                             "human_only", "subjects")} == {
        "detections": 9, "consensus": 8, "true_positives": 4, "machine_only": 5, "human_only": 4, "subjects": 5}
    assert everything["precision"] == pytest.approx(4 / 9)
    assert everything["recall"] == pytest.approx(4 / 8)
    assert everything["f1"] == pytest.approx(8 / 17)
    # Ranked: 7 F, 1 T, 2 F, 3 T, 5 T, 8 T, 9 F, 4 F, 6 F. The precision envelope is 4/6
    # up to recall 4/8, reached at recall points 0.00 ... 0.50 (51 of COCO's 101), then 0.
    assert everything["average_precision"] == pytest.approx(51 * (4 / 6) / 101)

    half = matched.summary(0.5)
    assert (half["detections"], half["true_positives"], half["machine_only"], half["human_only"]) == (6, 4, 2, 4)
    assert half["precision"] == pytest.approx(4 / 6)
    assert half["f1"] == pytest.approx(8 / 14)

    subjects = matched.subject_counts(0.0).set_index("subject_id")
    assert subjects[["n_detections", "n_consensus", "true_positives", "machine_only", "human_only"]
                    ].to_numpy().tolist() == [[4, 3, 2, 2, 1], [2, 2, 1, 1, 1], [1, 0, 0, 1, 0],
                                              [0, 1, 0, 0, 1], [2, 2, 1, 1, 1]]
    assert subjects.loc[1, "disagreement"] == 3
    assert np.isnan(subjects.loc[3, "recall"]) and subjects.loc[3, "precision"] == 0
    high = matched.subject_counts(0.65).set_index("subject_id")
    assert high.loc[1, ["n_detections", "true_positives", "machine_only", "human_only"]].tolist() == [3, 2, 1, 1]
    assert high.loc[5, ["n_detections", "human_only"]].tolist() == [0, 2]


def test_hand_worked_precision_recall_curve(worked_case):
    curve = match_detections(*worked_case, min_iou=0.5).precision_recall_curve()
    assert curve["score_threshold"].tolist() == [0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2]
    assert curve["true_positives"].tolist() == [0, 1, 1, 2, 3, 4, 4, 4, 4]
    assert curve["precision"].tolist() == pytest.approx([0, 1 / 2, 1 / 3, 2 / 4, 3 / 5, 4 / 6, 4 / 7, 4 / 8, 4 / 9])
    assert curve["recall"].tolist() == pytest.approx([0, 1, 1, 2, 3, 4, 4, 4, 4] / np.float64(8))


def test_a_threshold_on_the_curve_gives_the_summary(worked_case):
    matched = match_detections(*worked_case)
    curve = matched.precision_recall_curve().set_index("score_threshold")
    summary = matched.summary(0.6)
    assert curve.loc[0.6, "precision"] == summary["precision"]
    assert curve.loc[0.6, "recall"] == summary["recall"]


def test_subject_ids_leave_out_subjects_one_side_never_saw(worked_case):
    matched = match_detections(*worked_case, subject_ids=[1, 2, 4, 5, 6])
    assert matched.summary(0.0)["machine_only"] == 4  # detection 7, on subject 3, is left out
    assert matched.summary(0.0)["subjects"] == 5
    # Subject 6: seen by both, nothing found by either: it agrees, and it is counted.
    assert matched.subject_counts(0.0).set_index("subject_id").loc[6, ["n_detections", "n_consensus",
                                                                       "disagreement"]].tolist() == [0, 0, 0]


def test_equal_scores_and_input_order_do_not_change_the_result(worked_case):
    detections, consensus = worked_case
    detections = detections.assign(score=0.5)
    first = match_detections(detections, consensus)
    again = match_detections(detections.iloc[::-1], consensus.iloc[::-1])
    pd.testing.assert_frame_equal(first.detections, again.detections)
    pd.testing.assert_frame_equal(first.consensus, again.consensus)


def test_no_consensus_means_undefined_recall_and_ap(worked_case):
    detections, consensus = worked_case
    summary = match_detections(detections, consensus.iloc[:0]).summary(0.0)
    assert summary["true_positives"] == 0 and np.isnan(summary["recall"]) and np.isnan(summary["average_precision"])


def test_no_detections_means_zero_precision_nowhere_and_zero_ap(worked_case):
    detections, consensus = worked_case
    matched = match_detections(detections.iloc[:0], consensus)
    summary = matched.summary(0.0)
    assert (summary["detections"], summary["human_only"], summary["average_precision"]) == (0, 8, 0.0)
    assert np.isnan(summary["precision"]) and summary["recall"] == 0
    assert matched.precision_recall_curve().empty
    assert matched.subject_counts(0.0)["human_only"].tolist() == [3, 2, 1, 2]


# --------------------------------------------------------------------------- against pycocotools


def _simulated(seed: int, n_images: int = 60):
    """Truth boxes, and detections: jittered truths (some missed), false detections, scores."""
    rng = np.random.default_rng(seed)
    n_truth = rng.integers(0, 9, n_images)
    subject = np.repeat(np.arange(1, n_images + 1), n_truth)
    size = rng.uniform(6, 30, (len(subject), 2))
    truth = pd.DataFrame({"consensus_id": np.arange(len(subject)), "subject_id": subject,
                          "x": rng.uniform(0, 170, len(subject)), "y": rng.uniform(0, 170, len(subject)),
                          "width": size[:, 0], "height": size[:, 1]})
    found = truth[rng.random(len(truth)) < 0.8]
    jitter = rng.normal(0, 0.12, (len(found), 4)) * found[["width", "height", "width", "height"]].to_numpy()
    hits = found.assign(x=found.x + jitter[:, 0], y=found.y + jitter[:, 1],
                        width=np.abs(found.width + jitter[:, 2]) + 1, height=np.abs(found.height + jitter[:, 3]) + 1)
    n_false = rng.integers(0, 6, n_images)
    false_subject = np.repeat(np.arange(1, n_images + 1), n_false)
    false_size = rng.uniform(6, 30, (len(false_subject), 2))
    false = pd.DataFrame({"subject_id": false_subject, "x": rng.uniform(0, 170, len(false_subject)),
                          "y": rng.uniform(0, 170, len(false_subject)),
                          "width": false_size[:, 0], "height": false_size[:, 1]})
    detections = pd.concat([hits.drop(columns="consensus_id"), false], ignore_index=True)
    # Good detections score higher, on the whole; no two scores are equal.
    detections["score"] = np.clip(rng.normal(np.r_[np.full(len(hits), 0.7), np.full(len(false), 0.4)], 0.2), 0.001, 1)
    detections["detection_id"] = np.arange(len(detections))
    return detections, truth


def _pycocotools_eval(detections, truth, n_images):
    pytest.importorskip("pycocotools")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    ground = COCO()
    ground.dataset = {
        "images": [{"id": int(i), "width": 200, "height": 200} for i in range(1, n_images + 1)],
        "categories": [{"id": 1, "name": "clump"}],
        "annotations": [{"id": int(row.consensus_id) + 1, "image_id": int(row.subject_id), "category_id": 1,
                         "bbox": [row.x, row.y, row.width, row.height], "area": row.width * row.height,
                         "iscrowd": 0} for row in truth.itertuples()],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        ground.createIndex()
        results = ground.loadRes([{"image_id": int(row.subject_id), "category_id": 1, "score": row.score,
                                   "bbox": [row.x, row.y, row.width, row.height]}
                                  for row in detections.itertuples()])
        evaluation = COCOeval(ground, results, "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return evaluation


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_average_precision_equals_pycocotools(seed):
    detections, truth = _simulated(seed)
    evaluation = _pycocotools_eval(detections, truth, 60)
    matched = match_detections(detections, truth, min_iou=0.5)
    assert matched.average_precision() == pytest.approx(evaluation.stats[1], abs=1e-12)  # AP at IoU 0.5
    assert match_detections(detections, truth, min_iou=0.75).average_precision() == pytest.approx(
        evaluation.stats[2], abs=1e-12)
    assert coco_average_precision(detections, truth) == pytest.approx(evaluation.stats[0], abs=1e-12)


def test_matches_equal_pycocotools_detection_by_detection():
    detections, truth = _simulated(4)
    evaluation = _pycocotools_eval(detections, truth, 60)
    # pycocotools numbers the results it loads 1, 2, ... in the order given: detection_id + 1.
    theirs = {}
    for image in evaluation.evalImgs:
        if image is None or image["aRng"] != [0, 1e10] or image["maxDet"] != 100:
            continue
        for detection, ground in zip(image["dtIds"], image["dtMatches"][0]):  # row 0: IoU 0.5
            theirs[detection - 1] = int(ground) - 1  # 0 (no match) becomes -1
    ours = match_detections(detections, truth, min_iou=0.5).detections
    assert len(theirs) == len(ours) == len(detections)
    assert dict(zip(ours["detection_id"], ours["consensus_id"])) == theirs


def _sequential_reference(detections, consensus, min_iou, max_distance):
    """COCO's rule one detection at a time, as pycocotools loops it (points: to points, nearer is better)."""
    matched = {}
    taken = set()
    for row in detections.sort_values("score", ascending=False).itertuples():
        best, best_value = -1, -1.0
        for box in consensus[consensus.subject_id == row.subject_id].itertuples():
            if box.consensus_id in taken:
                continue
            detection_is_point, box_is_point = row.width == 0, box.width == 0
            if detection_is_point != box_is_point:
                value = -1.0
            elif detection_is_point:
                distance = np.hypot(row.x - box.x, row.y - box.y)
                value = 1 - distance / (2 * max_distance) if distance <= max_distance else -1.0
            else:
                across = max(0.0, min(row.x + row.width, box.x + box.width) - max(row.x, box.x))
                down = max(0.0, min(row.y + row.height, box.y + box.height) - max(row.y, box.y))
                overlap = across * down
                value = overlap / (row.width * row.height + box.width * box.height - overlap)
                value = value if value >= min_iou else -1.0
            if value > best_value:
                best, best_value = box.consensus_id, value
        if best >= 0:
            taken.add(best)
        matched[row.detection_id] = best
    return matched


@pytest.mark.parametrize("seed", range(5))
def test_the_rounds_give_what_one_detection_at_a_time_gives(seed):
    """Crowded subjects (many overlapping boxes and points) make the rounds work hardest."""
    rng = np.random.default_rng(seed)
    n_boxes, n_detections = 120, 160
    consensus_point = rng.random(n_boxes) < 0.25
    consensus = pd.DataFrame({"consensus_id": np.arange(n_boxes), "subject_id": rng.integers(1, 6, n_boxes),
                              "x": rng.uniform(0, 40, n_boxes), "y": rng.uniform(0, 40, n_boxes),
                              "width": np.where(consensus_point, 0, rng.uniform(4, 12, n_boxes)),
                              "height": np.where(consensus_point, 0, rng.uniform(4, 12, n_boxes))})
    point = rng.random(n_detections) < 0.25
    detections = pd.DataFrame({"detection_id": np.arange(n_detections),
                               "subject_id": rng.integers(1, 6, n_detections),
                               "x": rng.uniform(0, 45, n_detections), "y": rng.uniform(0, 45, n_detections),
                               "width": np.where(point, 0, rng.uniform(4, 12, n_detections)),
                               "height": np.where(point, 0, rng.uniform(4, 12, n_detections)),
                               "score": rng.permutation(n_detections) / n_detections})
    ours = match_detections(detections, consensus, min_iou=0.3, max_distance=10).detections
    assert dict(zip(ours["detection_id"], ours["consensus_id"])) == _sequential_reference(detections, consensus, 0.3, 10)
    linked = ours["consensus_id"] >= 0
    assert linked.sum() > 25 and ours.loc[linked, "distance"].notna().sum() >= 5  # boxes and points both matched
