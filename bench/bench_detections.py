"""Matching machine detections to the consensus and their AP: zoolens against pycocotools.

Both score the same synthetic detector (`zoolens.demo.simulate_detections`) on the same
random clump boxes at the Clump Scout scale, in one run, alternately: zoolens'
`consensus.detections.match_detections` plus its COCO average precision, and
pycocotools' ``COCOeval`` (``evaluate`` and ``accumulate``) restricted to the same work:
one IoU threshold (0.5), one area range (all), one detection limit (100 per image).
The two APs must agree; the table shows both.

    python bench/bench_detections.py [--subjects 4000 85000] [--repeats 3]

Writes bench/results/detections.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "detections.md"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))
from bench_loaders import machine  # noqa: E402

from consensus.detections import match_detections  # noqa: E402
from zoolens.demo import IMAGE_SIZE, simulate_detections  # noqa: E402


def clumps(n_subjects: int, rng) -> pd.DataFrame:
    """Clump-like true boxes: Poisson(2.2) per subject, 3-25 pixels, in the galaxy."""
    per_subject = rng.poisson(2.2, n_subjects)
    subject_id = np.repeat(np.arange(1, n_subjects + 1), per_subject)
    side = np.exp(rng.normal(np.log(8), 0.35, len(subject_id)))
    radius = 45 * np.sqrt(rng.random(len(subject_id)))
    angle = rng.uniform(0, 2 * np.pi, len(subject_id))
    return pd.DataFrame({
        "subject_id": subject_id, "consensus_id": np.arange(len(subject_id)),
        "x": IMAGE_SIZE[0] / 2 + radius * np.cos(angle) - side / 2,
        "y": IMAGE_SIZE[1] / 2 + radius * np.sin(angle) - side / 2,
        "width": side, "height": side * np.exp(rng.normal(0, 0.1, len(subject_id))),
        "detectability": rng.beta(6, 1.2, len(subject_id)),
    })


def zoolens_ap(detections, truth) -> float:
    return match_detections(detections, truth, min_iou=0.5).average_precision()


def pycocotools_inputs(detections, truth, n_subjects):
    """The ground truth dataset and results list pycocotools takes (built outside the timing)."""
    ground = {
        "images": [{"id": int(i)} for i in range(1, n_subjects + 1)],
        "categories": [{"id": 1, "name": "clump"}],
        "annotations": [{"id": int(i) + 1, "image_id": int(s), "category_id": 1, "bbox": [x, y, w, h],
                         "area": w * h, "iscrowd": 0}
                        for i, s, x, y, w, h in truth[["consensus_id", "subject_id", "x", "y", "width",
                                                       "height"]].itertuples(index=False)],
    }
    results = [{"image_id": int(s), "category_id": 1, "bbox": [x, y, w, h], "score": score}
               for s, x, y, w, h, score in detections[["subject_id", "x", "y", "width", "height",
                                                       "score"]].itertuples(index=False)]
    return ground, results


def pycocotools_ap(ground_dataset, results) -> float:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        ground = COCO()
        ground.dataset = ground_dataset
        ground.createIndex()
        found = ground.loadRes(results)
        evaluation = COCOeval(ground, found, "bbox")
        evaluation.params.iouThrs = np.array([0.5])
        evaluation.params.areaRng = [[0, 1e10]]
        evaluation.params.areaRngLbl = ["all"]
        evaluation.params.maxDets = [100]
        evaluation.evaluate()
        evaluation.accumulate()
    precision = evaluation.eval["precision"][0, :, 0, 0, 0]
    return float(np.mean(precision[precision > -1])) if (precision > -1).any() else float("nan")


def timed(function, *arguments):
    started = time.perf_counter()
    value = function(*arguments)
    return time.perf_counter() - started, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subjects", type=int, nargs="+", default=[4000, 85000])
    parser.add_argument("--repeats", type=int, default=3, help="runs of each; the median and range are shown")
    args = parser.parse_args()
    rows = []
    for n_subjects in args.subjects:
        rng = np.random.default_rng(n_subjects)
        truth = clumps(n_subjects, rng)
        detections = simulate_detections(truth, np.arange(1, n_subjects + 1), rng)
        ground, results = pycocotools_inputs(detections, truth, n_subjects)
        times = {"zoolens": [], "pycocotools": []}
        aps = {}
        for _ in range(args.repeats):
            seconds, aps["zoolens"] = timed(zoolens_ap, detections, truth)
            times["zoolens"].append(seconds)
            seconds, aps["pycocotools"] = timed(pycocotools_ap, ground, results)
            times["pycocotools"].append(seconds)
        for tool in times:
            rows.append((n_subjects, len(truth), len(detections), tool, times[tool], aps[tool]))

    load = os.getloadavg()
    lines = [
        "# Machine detections against the consensus: zoolens and pycocotools",
        "",
        f"Run {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC on {machine()} by "
        f"`python bench/bench_detections.py --subjects {' '.join(map(str, args.subjects))} "
        f"--repeats {args.repeats}`; load average at the end {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f} "
        "(the machine is shared: compare the two tools within a row group, run alternately).",
        "zoolens: `match_detections` and `average_precision` from the canonical tables. pycocotools: "
        "`loadRes`, `evaluate` and `accumulate` with one IoU threshold (0.5), one area range, "
        "maxDets 100, from lists built before the timing. The same detections and clumps for both.",
        "",
        "| subjects | clumps | detections | tool | median s | range s | AP at IoU 0.5 |",
        "| ---: | ---: | ---: | --- | ---: | ---: | ---: |",
    ]
    for n_subjects, n_truth, n_detections, tool, runs, ap in rows:
        lines.append(f"| {n_subjects:,} | {n_truth:,} | {n_detections:,} | {tool} | {statistics.median(runs):.3f} "
                     f"| {min(runs):.3f}-{max(runs):.3f} | {ap:.6f} |")
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
