"""Benchmark: making consensus boxes, zoolens against panoptes_aggregation, scored against known truth.

Synthetic projects from `consensus.simulate.simulate_project` (true clump boxes;
volunteers with their own miss rate, spurious-box rate, position and size
noise, double boxes and empty classifications; heavy-tailed activity) at two
sizes and three volunteer populations ("clean", "realistic", "noisy"). On the
same data, in one run, each in a fresh subprocess:

- zoolens ``aggregate(method="iou")`` and ``aggregate(method="lean")`` with
  their default parameters;
- panoptes_aggregation 5.3.1 ``shape_reducer_dbscan`` with ``metric_type: IoU``
  and ``shape_reducer_hdbscan`` (IoU), installed in the git-ignored virtualenv
  ``bench/.venv-peers`` and run by its own Python. Their parameters are tuned
  per population on a separate tuning project (other seed) against the truth,
  which favours the peers: zoolens runs untuned defaults.

Reported per run: precision, recall and F1 against the truth at IoU >= 0.5
(one-to-one matching per subject), mean IoU of the matched boxes, wall time of
the aggregation alone (loading excluded for every tool), and peak resident
memory of the subprocess (and its growth over the loaded data).

The peers' default averaging (``estimate_average: False``, an optimisation per
cluster) takes seconds per subject; it is measured on a subsample and its time
extrapolated per subject, and the grid uses ``estimate_average: True``, the
fast setting. Finally zoolens alone runs at Clump Scout's scale (85,000
subjects, about 3.5 million marks) at several sizes to show time and memory
grow linearly; the peers' time at that scale is extrapolated from their measured
time per subject, and said to be.

    python bench/bench_consensus.py                 # everything (about an hour on 2 cores)
    python bench/bench_consensus.py --quick         # small sizes, for a smoke run
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE)]

from bench_loaders import PEERS, ensure_peer_env, machine  # noqa: E402  (one peer venv for every bench)

from consensus import match  # noqa: E402
from consensus.simulate import simulate_project  # noqa: E402

WORK = HERE / "work" / "consensus"
RESULTS = HERE / "results" / "consensus.md"
POPULATIONS = ("clean", "realistic", "noisy")

#: Parameter grids searched for each peer on the tuning projects (fast averaging).
DBSCAN_GRID = [{"eps": eps, "min_samples": samples} for eps in (0.4, 0.5, 0.6, 0.7) for samples in (2, 3, 4, 6)]
# HDBSCAN needs min_samples <= min_cluster_size (else it fails on subjects with few marks).
HDBSCAN_GRID = [{"min_cluster_size": size, "min_samples": samples}
                for size in (2, 3, 5, 8) for samples in (1, 2, 3) if samples <= size]

#: Shared by both runners: resident memory now, and the JSON line every run prints last.
MEASURE = """
import json, resource, sys, time

def rss_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

def report(seconds, loaded, **counts):
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mib": peak, "loaded_mib": loaded, **counts}))
"""

RUN_ZOOLENS = MEASURE + """
import pandas as pd
from consensus import aggregate

folder, method, params, out = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
marks = pd.read_parquet(folder + "/marks.parquet")
classifications = pd.read_parquet(folder + "/classifications.parquet")
loaded = rss_mib()
started = time.perf_counter()
result = aggregate(marks, classifications, method=method, **params)
seconds = time.perf_counter() - started
result.consensus[["subject_id", "x", "y", "width", "height"]].to_parquet(out)
report(seconds, loaded, marks=len(marks), subjects=int(classifications["subject_id"].nunique()))
"""

RUN_PEER = MEASURE + """
import importlib

source, reducer_name, params, out = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
reducer = getattr(importlib.import_module("panoptes_aggregation.reducers." + reducer_name), reducer_name)
with open(source) as handle:
    subjects = json.load(handle)
loaded = rss_mib()
boxes = []
started = time.perf_counter()
for subject in subjects:
    reduction = reducer(subject["extracts"], shape="rectangle", metric_type="IoU", user_id=subject["users"], **params)
    frame = reduction.get("frame0", {})
    for x, y, w, h in zip(*(frame.get("T0_tool0_clusters_" + p, []) for p in ("x", "y", "width", "height"))):
        boxes.append([subject["subject_id"], x, y, w, h])
seconds = time.perf_counter() - started
with open(out, "w") as handle:
    json.dump(boxes, handle)
marks = sum(len(e["frame0"]["T0_tool0_x"]) for s in subjects for e in s["extracts"] if "frame0" in e)
report(seconds, loaded, marks=marks, subjects=len(subjects))
"""


def run(python: str, code: str, *args: str) -> dict:
    """Run ``code`` in a fresh interpreter; its last stdout line is a JSON result."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    done = subprocess.run([python, "-c", textwrap.dedent(code), *args], capture_output=True, text=True,
                          env=env, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def dataset(name: str, n_subjects: int, noise: str, seed: int) -> Path:
    """Simulate a project once and keep its tables as Parquet (and the peers' input as JSON)."""
    folder = WORK / name
    if (folder / "peer.json").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    project = simulate_project(n_subjects, seed=seed, noise=noise)
    project.marks.to_parquet(folder / "marks.parquet")
    project.classifications.to_parquet(folder / "classifications.parquet")
    project.truth.to_parquet(folder / "truth.parquet")
    (folder / "peer.json").write_text(json.dumps(peer_input(project.marks, project.classifications)))
    return folder


def peer_input(marks: pd.DataFrame, classifications: pd.DataFrame) -> list[dict]:
    """What panoptes_aggregation's shape extractor makes of each classification, grouped by subject.

    One extract per classification, empty ones included (a volunteer who drew
    nothing), as ``panoptes_aggregation reduce`` passes them to the reducer.
    """
    columns = {"x": "T0_tool0_x", "y": "T0_tool0_y", "width": "T0_tool0_width", "height": "T0_tool0_height"}
    drawn = {cid: {"frame0": {key: group[column].round(6).tolist() for column, key in columns.items()}}
             for cid, group in marks.groupby("classification_id", sort=False)}
    subjects = []
    for subject_id, group in classifications.sort_values("classification_id").groupby("subject_id"):
        extracts = [drawn.get(cid, {}) for cid in group["classification_id"]]
        subjects.append({"subject_id": int(subject_id), "extracts": extracts,
                         "users": group["user"].astype(str).tolist()})
    return subjects


def subsample(folder: Path, n_subjects: int) -> Path:
    """The peers' input for the first ``n_subjects`` subjects of a dataset."""
    path = folder / f"peer-{n_subjects}.json"
    if not path.exists():
        path.write_text(json.dumps(json.loads((folder / "peer.json").read_text())[:n_subjects]))
    return path


def score(boxes: pd.DataFrame, truth: pd.DataFrame, subjects=None) -> dict:
    """Precision, recall and F1 at IoU >= 0.5 with one-to-one matching per subject, and mean matched IoU."""
    if subjects is not None:
        truth = truth[truth["subject_id"].isin(subjects)]
    found = boxes[["subject_id", "x", "y", "width", "height"]].reset_index(drop=True).copy()
    found["mark_id"] = np.arange(len(found))
    found["user"] = "consensus"  # one "volunteer": each truth box takes at most one found box
    links = match(found, truth.rename(columns={"truth_id": "consensus_id"}), min_iou=0.5)
    matched = int((links["consensus_id"] >= 0).sum())
    precision = matched / len(found) if len(found) else 0.0
    recall = matched / len(truth) if len(truth) else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "mean_iou": float(links["iou"].mean()),
            "boxes": len(found), "truth": len(truth)}


def run_zoolens(folder: Path, method: str, params: dict | None = None) -> dict:
    out = folder / f"zoolens-{method}.parquet"
    measured = run(sys.executable, RUN_ZOOLENS, str(folder), method, json.dumps(params or {}), str(out))
    return {**measured, **score(pd.read_parquet(out), pd.read_parquet(folder / "truth.parquet"))}


def run_peer(folder: Path, source: Path, reducer: str, params: dict) -> dict:
    out = folder / f"peer-{reducer}.json"
    measured = run(str(PEERS / "bin" / "python"), RUN_PEER, str(source), reducer, json.dumps(params), str(out))
    boxes = pd.DataFrame(json.loads(out.read_text()), columns=["subject_id", "x", "y", "width", "height"])
    subjects = [s["subject_id"] for s in json.loads(source.read_text())]
    return {**measured, **score(boxes, pd.read_parquet(folder / "truth.parquet"), subjects)}


def tune_peer(folder: Path, reducer: str, grid: list[dict], n_subjects: int) -> tuple[dict, list]:
    """The grid setting with the best F1 on a tuning project (fast averaging); kept in the work folder."""
    cache = folder / f"tuned-{reducer}-{n_subjects}.json"
    if cache.exists() and json.loads(cache.read_text())["grid"] == grid:
        tried = [(params, f1) for params, f1 in json.loads(cache.read_text())["tried"]]
    else:
        source = subsample(folder, n_subjects)
        tried = []
        for params in grid:
            result = run_peer(folder, source, reducer, {**params, "estimate_average": True})
            tried.append((params, result["f1"]))
            print(f"    tune {reducer} {params}: F1 {result['f1']:.3f}", flush=True)
        cache.write_text(json.dumps({"grid": grid, "tried": tried}))
    best = max(tried, key=lambda item: item[1])[0]
    return best, tried


def fmt_row(record: dict) -> str:
    result = record["result"]
    grown = result["peak_mib"] - result["loaded_mib"]
    seconds = f"{result['seconds']:.2f}"
    if record.get("extrapolate_to"):
        seconds += f" (~{result['seconds'] / result['subjects'] * record['extrapolate_to']:,.0f} s for all {record['extrapolate_to']:,})"
    return (f"| {record['data']} | {record['tool']} | {result['subjects']:,} | {result['marks']:,} | "
            f"{result['precision']:.3f} | {result['recall']:.3f} | **{result['f1']:.3f}** | {result['mean_iou']:.3f} | "
            f"{seconds} | {result['peak_mib']:,.0f} ({grown:+,.0f}) |")


def per_subject(result: dict) -> float:
    return result["seconds"] / result["subjects"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=[400, 4000], help="subjects in the two compared sizes")
    parser.add_argument("--tune-subjects", type=int, default=100, help="subjects of the peers' tuning projects")
    parser.add_argument("--exact-subjects", type=int, default=12,
                        help="subjects on which the peers' default (exact) averaging is timed")
    parser.add_argument("--scale", type=int, nargs="*", default=[21_250, 42_500, 85_000],
                        help="subject counts of the zoolens-only scale runs")
    parser.add_argument("--quick", action="store_true", help="small sizes and grids, for a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.tune_subjects, args.exact_subjects, args.scale = [60, 200], 40, 3, [2_000]
    WORK.mkdir(parents=True, exist_ok=True)
    ensure_peer_env()
    started = time.perf_counter()
    reducers = ("shape_reducer_dbscan", "shape_reducer_hdbscan")

    records, notes = [], []
    for noise in POPULATIONS:
        tuning = dataset(f"tune-{noise}-{args.tune_subjects}", args.tune_subjects, noise, seed=101)
        print(f"tuning peers on {tuning.name}", flush=True)
        best = {}
        for reducer, grid in zip(reducers, (DBSCAN_GRID, HDBSCAN_GRID)):
            best[reducer], tried = tune_peer(tuning, reducer, grid[:4] if args.quick else grid, args.tune_subjects)
            notes.append(f"- {noise}, {reducer.split('_')[-1]}: {best[reducer]} (F1 {max(f for _, f in tried):.3f} "
                         f"on the tuning project; worst setting {min(f for _, f in tried):.3f})")
        for size in args.sizes:
            name = f"{noise}-{size}"
            folder = dataset(name, size, noise, seed=7)
            print(f"dataset {name}", flush=True)
            for method in ("iou", "lean"):
                records.append({"data": name, "tool": f"zoolens {method} (defaults)", "kind": method,
                                "result": run_zoolens(folder, method)})
            for reducer in reducers:
                records.append({"data": name, "tool": f"panoptes {reducer.split('_')[-1]} {best[reducer]}, fast average",
                                "kind": reducer, "result": run_peer(folder, folder / "peer.json", reducer,
                                                                    {**best[reducer], "estimate_average": True})})
            if size == args.sizes[0]:
                source = subsample(folder, args.exact_subjects)
                for reducer in reducers:
                    records.append({
                        "data": name, "kind": reducer + " exact", "extrapolate_to": size,
                        "tool": f"panoptes {reducer.split('_')[-1]} {best[reducer]}, default exact average",
                        "result": run_peer(folder, source, reducer, {**best[reducer], "estimate_average": False}),
                    })
            for record in records:
                if record["data"] == name:
                    print(fmt_row(record), flush=True)

    scale_rows = []
    for n_subjects in args.scale:
        folder = dataset(f"scale-realistic-{n_subjects}", n_subjects, "realistic", seed=3)
        for method in ("iou", "lean"):
            result = run_zoolens(folder, method)
            grown = result["peak_mib"] - result["loaded_mib"]
            scale_rows.append(
                f"| {n_subjects:,} | {result['marks']:,} | zoolens {method} | {result['seconds']:.1f} | "
                f"{result['peak_mib']:,.0f} | {grown:+,.0f} | {grown * 2**20 / result['marks']:,.0f} | {result['f1']:.3f} |")
            print(scale_rows[-1], flush=True)

    def rates(kind):
        return [per_subject(r["result"]) for r in records if r["kind"] == kind]

    speedups, extrapolations = [], []
    for record in records:
        if record["kind"] in reducers:
            zoolens = next(r for r in records if r["data"] == record["data"] and r["kind"] == "iou")
            speedups.append(f"- {record['data']}, {record['kind'].split('_')[-1]} (fast average): zoolens iou "
                            f"{record['result']['seconds'] / zoolens['result']['seconds']:,.0f}x faster")
    for reducer in reducers:
        fast, exact = np.median(rates(reducer)), np.median(rates(reducer + " exact"))
        extrapolations.append(
            f"- panoptes {reducer.split('_')[-1]}: median {fast * 1000:,.0f} ms per subject with fast averaging, "
            f"{exact:,.1f} s per subject with its default exact averaging; 85,000 subjects would take about "
            f"{fast * 85_000 / 3600:,.1f} h and {exact * 85_000 / 86400:,.1f} days.")

    lines = [
        "# Consensus: zoolens against panoptes_aggregation, scored against known truth",
        "",
        f"Run {dt.date.today().isoformat()} on {machine()}, numpy {np.__version__}, pandas {pd.__version__},",
        f"by `python bench/bench_consensus.py{' --quick' if args.quick else ''}` "
        f"({(time.perf_counter() - started) / 60:.0f} minutes). The machine was shared with other jobs, so",
        "times are upper bounds. Peers: panoptes_aggregation 5.3.1 in `bench/.venv-peers`.",
        "",
        "Data: `consensus.simulate.simulate_project` (seed 7; peers tuned on seed 101), about 20",
        "classifications per subject, 2.2 true clumps per subject on a 400 px image. Scores: one-to-one",
        "matching of found to true boxes per subject at IoU >= 0.5. Time: the aggregation alone, loading",
        "excluded for every tool. Memory: peak RSS of the tool's subprocess (growth over the loaded input).",
        "zoolens runs its defaults; each peer runs the grid setting that scored best on its tuning project.",
        "",
        "| data | tool | subjects | marks | precision | recall | F1 | mean IoU | seconds | peak MiB |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        *[fmt_row(record) for record in records],
        "",
        "Peer settings chosen on the tuning projects (grids: dbscan eps x min_samples "
        f"{[tuple(p.values()) for p in DBSCAN_GRID]}, hdbscan min_cluster_size x min_samples "
        f"{[tuple(p.values()) for p in HDBSCAN_GRID]}):",
        *notes,
        "",
        "Speed, whole dataset against whole dataset (same subjects, same marks):",
        *speedups,
        "",
        "## Clump Scout scale (zoolens only; realistic volunteers)",
        "",
        "| subjects | marks | tool | seconds | peak MiB | growth MiB | growth bytes per mark | F1 |",
        "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
        *scale_rows,
        "",
        "The peers were not run at this scale. Their work is one reducer call per subject, so their time",
        "grows linearly; extrapolated (not measured) from the per-subject times above:",
        *extrapolations,
    ]
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
