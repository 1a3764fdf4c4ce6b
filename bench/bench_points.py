"""Benchmark: consensus points, zoolens' point method against panoptes_aggregation, scored against known truth.

Synthetic point projects from `consensus.simulate_points.simulate_point_project`
(Penguin-Watch-like: 1000 x 750 frames, about 25 animals per frame in a few
colonies, no two closer than 12 px, about 12 volunteers per frame with their
own miss rate, spurious-click rate, click scatter, double clicks and empty
classifications) for three volunteer populations ("clean", "realistic",
"noisy"), and a sparse project (realistic volunteers, 3 animals per frame, as
on projects where each subject holds a few objects). On the same data, in one
run, each in a fresh subprocess:

- zoolens ``aggregate(method="point")`` with its default parameters;
- panoptes_aggregation 5.3.1 ``point_reducer_dbscan`` and
  ``point_reducer_hdbscan``, installed in the git-ignored virtualenv
  ``bench/.venv-peers`` (made by `bench_loaders.ensure_peer_env`) and run by
  its own Python on the extracts its ``point_extractor_by_frame`` would make
  (one per classification, empty ones included, with the user ids). Each is
  tuned over a grid of its parameters per population on a separate tuning
  project (another seed) against the truth, and runs its best setting; zoolens
  is not tuned per population.

Reported per run: precision, recall and F1 against the truth, a found point
matching a true animal when within ``--tolerance`` pixels (one-to-one per
subject, `consensus.match`), mean distance of the matched points, wall time
and CPU time of the aggregation alone (loading excluded for every tool), and
peak resident memory of the subprocess (and its growth over the loaded data).
The compared runs are repeated ``--repeats`` times, each in a fresh process,
the tools taking turns so that a change in the shared machine's load hits them
alike; the tables give the median. zoolens' warm time (the same call again in
its process, as a notebook or the dashboard's re-aggregation makes it) is shown
beside its fresh time, and is not used in the comparison. ``--baseline REV``
also times zoolens as of a git revision (exported with ``git archive``) in the
same turns, to show what a change did.

    python bench/bench_points.py --baseline db3fda1   # the committed result (db3fda1: before the links columns were written by the kernels)
    python bench/bench_points.py --quick              # small sizes and grids, a smoke run
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE)]

from bench_consensus import MEASURE, run  # noqa: E402  (one subprocess runner and memory probe for every bench)
from bench_loaders import PEERS, ensure_peer_env, machine  # noqa: E402

from consensus import match  # noqa: E402
from consensus.simulate_points import simulate_point_project  # noqa: E402

WORK = HERE / "work" / "points"
RESULTS = HERE / "results" / "points.md"
#: Name -> (volunteer population, mean animals per frame).
POPULATIONS = {"clean": ("clean", 25.0), "realistic": ("realistic", 25.0), "noisy": ("noisy", 25.0),
               "sparse": ("realistic", 3.0)}

#: How the measurement changed, written into the result.
MEASUREMENT_NOTE = (
    "Measurement since 2026-12-06 16:00 UTC (#14): each compared tool runs --repeats times (3) in fresh processes, taking turns, "
    "and the median is given (before: one run each, so one burst of another engineer's job could halve a ratio); "
    "zoolens' warm time and a baseline revision are shown beside. What is timed is unchanged and the same for both "
    "sides: the reduction alone, after the imports and the data loading, in a fresh process with OMP_NUM_THREADS=1, "
    "CPU time of the whole process (all threads); the peers get the extracts their point_extractor_by_frame makes, "
    "zoolens the canonical tables its loaders make, and neither's extraction is timed. "
    "Since 2026-12-06 21:00 UTC (#14) zoolens' point method runs in kernels compiled by numba, cached on disk and "
    "loaded by `consensus.point_kernels.load()`, which the benchmark calls with zoolens' imports (the package itself "
    "loads them at the point method's first call, so a project without points never pays), as the peers' compiled "
    "extensions (scikit-learn, hdbscan) are loaded when their reducer module is imported; so the import of each tool "
    "is timed too and shown in the last column, and the kernels' one-off compilation (a machine's first load, with "
    "an empty numba cache) is measured and stated below "
    "the table. Since 2026-12-06 23:45 UTC (#14) `load()` also loads the compiled preparation and links kernels "
    "(`order_clicks`, `point_links`), so they are timed with the imports too; and zoolens' defaults include "
    "`merge_distance` 8 px, chosen once for every population on the tuning projects (the same seed the peers are "
    "tuned on; 8-10 px tie there), as the peers' settings are, never on the compared projects. Since 2026-12-07 "
    "06:00 UTC (#14) the preparation kernel `load()` loads is `sort_clicks` (it replaced `order_clicks` and hands "
    "back the sorted columns too); what is timed is unchanged. Since 2026-12-07 09:00 UTC (#14) `load()` loads "
    "`number_links` in place of `point_links` (the links columns are written by `point_consensus` itself); what is "
    "timed is unchanged. Since 2026-12-07 09:15 UTC (#14) odd turns take the tools in reverse order (before, zoolens "
    "ran first in every turn, right after the previous turn's slowest peer, and its wall time was longer than the "
    "baseline's in two runs in a row while their CPU times were equal)."
)

#: Changes measured with this benchmark and dropped, written into the result so nobody tries them blind again.
DROPPED = (
    "Tried and dropped (#14): the point kernels sharing their groups among numba's threads on a thread pool "
    "(6 commits on the `points` branch up to 81af834, reset away, never merged). Measured side by side by "
    "`python bench/bench_points.py --baseline a34d3b6` on 2026-12-07 08:46 UTC (load average 2.74 at the start, "
    "3.66 at the end, on the 2 shared cores), first call in a fresh process, median of 3, wall / CPU seconds with "
    "the threads, with them limited to one thread (NUMBA_NUM_THREADS=1), and the code before them (a34d3b6): "
    "clean-1000 0.251 / 0.162, 0.239 / 0.152, 0.214 / 0.159; realistic-1000 0.182 / 0.131, 0.270 / 0.135, "
    "0.142 / 0.119; noisy-1000 0.184 / 0.122, 0.144 / 0.138, 0.095 / 0.094; sparse-1000 0.042 / 0.042, "
    "0.059 / 0.028, 0.026 / 0.026 (F1 the same). On two cores that other engineers' jobs keep busy a second "
    "thread seldom finds a free core: the wall time a user waits was longer than before the threads on all four "
    "projects, and the CPU time as high or higher (sparse +60 %), as a 60-subject run had shown already."
)

#: Parameter grids searched for each peer on the tuning projects.
DBSCAN_GRID = [{"eps": eps, "min_samples": samples} for eps in (3.0, 5.0, 7.0, 10.0, 14.0) for samples in (2, 3, 4, 6)]
# HDBSCAN needs min_samples <= min_cluster_size.
HDBSCAN_GRID = [{"min_cluster_size": size, "min_samples": samples}
                for size in (2, 3, 5, 8) for samples in (1, 2, 3, 5) if samples <= size]

RUN_ZOOLENS = MEASURE + """
import statistics
import pandas as pd
import_started, import_cpu_started = time.perf_counter(), time.process_time()
from consensus import aggregate
from consensus.point_kernels import load
load()  # the kernels' machine code, as the peers' compiled modules load at import
import_seconds, import_cpu_seconds = time.perf_counter() - import_started, time.process_time() - import_cpu_started

folder, params, out = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
marks = pd.read_parquet(folder + "/marks.parquet")
classifications = pd.read_parquet(folder + "/classifications.parquet")
loaded = rss_mib()
started, cpu_started = time.perf_counter(), time.process_time()
result = aggregate(marks, classifications, method="point", **params)
seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
peak = status_mib("VmHWM")  # before the warm calls, which hold a second result for a moment
# Warm: the same call again in this process, as a notebook or the dashboard's re-aggregation makes it.
warm = []
for _ in range(3):
    started = time.perf_counter()
    aggregate(marks, classifications, method="point", **params)
    warm.append(time.perf_counter() - started)
result.consensus[["subject_id", "x", "y"]].to_parquet(out)
report(seconds, loaded, cpu_seconds=cpu_seconds, peak_mib=peak, warm_seconds=statistics.median(warm), marks=len(marks),
       subjects=int(classifications["subject_id"].nunique()), import_seconds=import_seconds,
       import_cpu_seconds=import_cpu_seconds)
"""

RUN_PEER = MEASURE + """
import importlib

source, reducer_name, params, out = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
import_started, import_cpu_started = time.perf_counter(), time.process_time()
reducer = getattr(importlib.import_module("panoptes_aggregation.reducers." + reducer_name), reducer_name)
import_seconds, import_cpu_seconds = time.perf_counter() - import_started, time.process_time() - import_cpu_started
with open(source) as handle:
    subjects = json.load(handle)
loaded = rss_mib()
points = []
started, cpu_started = time.perf_counter(), time.process_time()
for subject in subjects:
    reduction = reducer(subject["extracts"], user_id=subject["users"], **params)
    frame = reduction.get("frame0", {})
    for x, y in zip(frame.get("T0_tool0_clusters_x", []), frame.get("T0_tool0_clusters_y", [])):
        points.append([subject["subject_id"], x, y])
seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
with open(out, "w") as handle:
    json.dump(points, handle)
marks = sum(len(e["frame0"]["T0_tool0_x"]) for s in subjects for e in s["extracts"] if "frame0" in e)
report(seconds, loaded, cpu_seconds=cpu_seconds, marks=marks, subjects=len(subjects), import_seconds=import_seconds,
       import_cpu_seconds=import_cpu_seconds)
"""


def dataset(name: str, n_subjects: int, noise: str, animals: float, seed: int) -> Path:
    """Simulate a point project once and keep its tables as Parquet and the peers' input as JSON."""
    folder = WORK / name
    if (folder / "peer.json").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    project = simulate_point_project(n_subjects, seed=seed, noise=noise, objects_per_subject_mean=animals)
    project.marks.to_parquet(folder / "marks.parquet")
    project.classifications.to_parquet(folder / "classifications.parquet")
    project.truth.to_parquet(folder / "truth.parquet")
    (folder / "peer.json").write_text(json.dumps(peer_input(project.marks, project.classifications)))
    return folder


def peer_input(marks: pd.DataFrame, classifications: pd.DataFrame) -> list[dict]:
    """What ``point_extractor_by_frame`` makes of each classification, grouped by subject (empty ones included)."""
    drawn = {cid: {"frame0": {"T0_tool0_x": group["x"].round(6).tolist(), "T0_tool0_y": group["y"].round(6).tolist()}}
             for cid, group in marks.groupby("classification_id", sort=False)}
    subjects = []
    for subject_id, group in classifications.sort_values("classification_id").groupby("subject_id"):
        subjects.append({"subject_id": int(subject_id), "extracts": [drawn.get(cid, {}) for cid in group["classification_id"]],
                         "users": group["user"].astype(str).tolist()})
    return subjects


def score(points: pd.DataFrame, truth: pd.DataFrame, tolerance: float) -> dict:
    """Precision, recall and F1 of found points against the truth within ``tolerance`` px, one-to-one per subject."""
    found = points[["subject_id", "x", "y"]].reset_index(drop=True).copy()
    found["width"] = found["height"] = 0.0
    found["mark_id"] = np.arange(len(found))
    found["user"] = "consensus"  # one "volunteer": each true animal takes at most one found point
    links = match(found, truth.rename(columns={"truth_id": "consensus_id"}), max_distance=tolerance)
    matched = int((links["consensus_id"] >= 0).sum())
    precision = matched / len(found) if len(found) else 0.0
    recall = matched / len(truth) if len(truth) else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "mean_distance": float(links["distance"].mean()),
            "points": len(found), "truth": len(truth)}


def missed_points(folder: Path, tolerance: float) -> str:
    """What zoolens' defaults miss on a (tuning) project and why: how many volunteers clicked each missed true point
    (the simulator labels every click with its animal), and what keeping one-vote points would do to the scores."""
    truth = pd.read_parquet(folder / "truth.parquet")
    found = pd.read_parquet(folder / f"zoolens-point-{ROOT.name}.parquet")
    defaults = score(found, truth, tolerance)
    found = found[["subject_id", "x", "y"]].reset_index(drop=True).assign(width=0.0, height=0.0, user="consensus")
    links = match(found.assign(mark_id=np.arange(len(found))), truth.rename(columns={"truth_id": "consensus_id"}),
                  max_distance=tolerance)
    missed = truth.loc[~truth["truth_id"].isin(links["consensus_id"]), "truth_id"]
    marks = pd.read_parquet(folder / "marks.parquet", columns=["truth_id", "user"])
    clickers = marks[marks["truth_id"] >= 0].groupby("truth_id")["user"].nunique().reindex(missed, fill_value=0)
    one_vote = run_zoolens(folder, tolerance, {"min_votes": 1, "min_vote_fraction": 0.0})
    return (f"{len(missed):,} of {len(truth):,} true points missed, clicked by 0 / 1 / 2 / more volunteers: "
            f"{(clickers == 0).sum()} / {(clickers == 1).sum()} / {(clickers == 2).sum()} / {(clickers > 2).sum()}; "
            f"keeping one-vote points (min_votes 1, min_vote_fraction 0): precision {defaults['precision']:.3f} -> "
            f"{one_vote['precision']:.3f}, recall {defaults['recall']:.3f} -> {one_vote['recall']:.3f}, "
            f"F1 {defaults['f1']:.3f} -> {one_vote['f1']:.3f}")


def run_zoolens(folder: Path, tolerance: float, params: dict | None = None, code_root: Path = ROOT) -> dict:
    out = folder / f"zoolens-point-{code_root.name}.parquet"
    measured = run(sys.executable, RUN_ZOOLENS, str(folder), json.dumps(params or {}), str(out), code_root=code_root)
    return {**measured, **score(pd.read_parquet(out), pd.read_parquet(folder / "truth.parquet"), tolerance)}


def compile_seconds(folder: Path, tolerance: float) -> float:
    """Wall seconds of importing `consensus` and loading its point kernels with an empty numba cache: the kernels' one-off compilation on a machine."""
    with tempfile.TemporaryDirectory() as cache:
        previous = os.environ.get("NUMBA_CACHE_DIR")
        os.environ["NUMBA_CACHE_DIR"] = cache
        try:
            return run_zoolens(folder, tolerance)["import_seconds"]
        finally:
            if previous is None:
                del os.environ["NUMBA_CACHE_DIR"]
            else:
                os.environ["NUMBA_CACHE_DIR"] = previous


def baseline_root(revision: str) -> Path:
    """zoolens as of ``revision``, exported once with ``git archive`` into the work folder."""
    root = WORK / f"baseline-{revision}"
    if not (root / "consensus").is_dir():
        root.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision], capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True)
    return root


def median_run(runs: list[dict]) -> dict:
    """Repeated runs of one tool as one: median wall, CPU and warm time, the largest peak memory, the range of wall times."""
    merged = dict(runs[0])
    for key in ("seconds", "cpu_seconds", "warm_seconds", "import_seconds", "import_cpu_seconds"):
        if runs[0].get(key) is not None:
            merged[key] = statistics.median(run[key] for run in runs)
    peak = max(runs, key=lambda run: run["peak_mib"])
    merged["peak_mib"], merged["loaded_mib"] = peak["peak_mib"], peak["loaded_mib"]
    merged["seconds_range"] = (min(run["seconds"] for run in runs), max(run["seconds"] for run in runs))
    return merged


def run_peer(folder: Path, reducer: str, params: dict, tolerance: float) -> dict:
    out = folder / f"peer-{reducer}.json"
    measured = run(str(PEERS / "bin" / "python"), RUN_PEER, str(folder / "peer.json"), reducer, json.dumps(params), str(out))
    points = pd.DataFrame(json.loads(out.read_text()), columns=["subject_id", "x", "y"])
    return {**measured, **score(points, pd.read_parquet(folder / "truth.parquet"), tolerance)}


def tune_peer(folder: Path, reducer: str, grid: list[dict], tolerance: float) -> tuple[dict, list]:
    """Every grid setting's F1 on a tuning project, and the best setting."""
    tried = []
    for params in grid:
        result = run_peer(folder, reducer, params, tolerance)
        tried.append((params, result["f1"]))
        print(f"    tune {reducer} {params}: F1 {result['f1']:.3f}", flush=True)
    return max(tried, key=lambda item: item[1])[0], tried


def fmt_row(data: str, tool: str, result: dict) -> str:
    grown = result["peak_mib"] - result["loaded_mib"]
    seconds = f"{result['seconds']:.3f}"
    if result.get("warm_seconds") is not None:
        seconds += f" (warm {result['warm_seconds']:.3f})"
    low, high = result["seconds_range"]
    return (f"| {data} | {tool} | {result['subjects']:,} | {result['marks']:,} | {result['precision']:.3f} | "
            f"{result['recall']:.3f} | **{result['f1']:.3f}** | {result['mean_distance']:.2f} | {seconds} | "
            f"{low:.3f}-{high:.3f} | {result['cpu_seconds']:.3f} | {result['peak_mib']:,.0f} ({grown:+,.0f}) | "
            f"{result['import_seconds']:.2f} ({result['import_cpu_seconds']:.2f}) |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subjects", type=int, default=1000, help="subjects of each compared project")
    parser.add_argument("--tune-subjects", type=int, default=150, help="subjects of the peers' tuning projects")
    parser.add_argument("--tolerance", type=float, default=6.0,
                        help="pixels within which a found point matches a true animal (half the animals' least separation)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="fresh-process runs of each compared tool, taking turns; the tables give the median")
    parser.add_argument("--baseline", help="also time zoolens as of this git revision, in the same turns")
    parser.add_argument("--quick", action="store_true", help="small sizes and grids, for a smoke run")
    args = parser.parse_args()
    dbscan_grid, hdbscan_grid = DBSCAN_GRID, HDBSCAN_GRID
    if args.quick:
        args.subjects, args.tune_subjects = 60, 30
        dbscan_grid, hdbscan_grid = DBSCAN_GRID[::5], HDBSCAN_GRID[::4]
    ensure_peer_env()
    WORK.mkdir(parents=True, exist_ok=True)
    started, load_start = time.perf_counter(), os.getloadavg()
    reducers = {"point_reducer_dbscan": dbscan_grid, "point_reducer_hdbscan": hdbscan_grid}
    baseline = baseline_root(args.baseline) if args.baseline else None
    rows, notes, speedups, changes, misses = [], [], [], [], []
    compiled = None
    for name, (noise, animals) in POPULATIONS.items():
        tuning = dataset(f"tune-{name}-{args.tune_subjects}", args.tune_subjects, noise, animals, seed=101)
        folder = dataset(f"{name}-{args.subjects}", args.subjects, noise, animals, seed=7)
        print(f"{name}: tuning peers on {tuning.name}", flush=True)
        zoolens_tuning = run_zoolens(tuning, args.tolerance)  # also fills the numba cache the timed runs load
        misses.append(f"- {name}: {missed_points(tuning, args.tolerance)}")
        print(misses[-1], flush=True)
        if compiled is None:
            compiled = compile_seconds(tuning, args.tolerance)
            print(f"    compiling the kernels (empty numba cache): {compiled:.1f} s", flush=True)
        compared = {"zoolens point (defaults)": functools.partial(run_zoolens, folder, args.tolerance)}
        if baseline is not None:
            compared[f"zoolens point (defaults) as of {args.baseline}"] = functools.partial(
                run_zoolens, folder, args.tolerance, code_root=baseline)
        for reducer, grid in reducers.items():
            best, tried = tune_peer(tuning, reducer, grid, args.tolerance)
            short = reducer.split("_")[-1]
            notes.append(f"- {name}, {short}: best {best} (F1 {max(f for _, f in tried):.3f} on the tuning project, "
                         f"zoolens defaults {zoolens_tuning['f1']:.3f} there; worst setting {min(f for _, f in tried):.3f})")
            compared[f"panoptes {short} {best}"] = functools.partial(run_peer, folder, reducer, best, args.tolerance)
        runs = {tool: [] for tool in compared}
        for turn in range(args.repeats):
            # Odd turns take the tools in reverse order, so no tool always runs right after the same one.
            for tool in list(compared)[::-1 if turn % 2 else 1]:
                runs[tool].append(compared[tool]())
                print(f"    {tool}: {runs[tool][-1]['seconds']:.3f} s, {runs[tool][-1]['cpu_seconds']:.3f} CPU-s", flush=True)
        results = {tool: median_run(tool_runs) for tool, tool_runs in runs.items()}
        for tool, result in results.items():
            rows.append(fmt_row(folder.name, tool, result))
            print(rows[-1], flush=True)
        zoolens = results["zoolens point (defaults)"]
        for tool, result in results.items():
            if tool.startswith("panoptes"):
                wall, cpu = result["seconds"] / zoolens["seconds"], result["cpu_seconds"] / zoolens["cpu_seconds"]
                better = zoolens["f1"] > result["f1"]
                speedups.append(f"| {folder.name} | {tool.split()[1]} | {result['f1'] - zoolens['f1']:+.3f} | {wall:,.1f}x | "
                                f"{cpu:,.1f}x | {'yes' if better else 'no'} | "
                                f"{'yes' if better and min(wall, cpu) >= 100 else 'no'} |")
            elif tool != "zoolens point (defaults)":
                changes.append(f"| {folder.name} | {result['f1']:.3f} | {zoolens['f1']:.3f} | {result['seconds']:.3f} | "
                               f"{zoolens['seconds']:.3f} | {result['seconds'] / zoolens['seconds']:.1f}x | "
                               f"{result['cpu_seconds']:.3f} | {zoolens['cpu_seconds']:.3f} | "
                               f"{result['cpu_seconds'] / zoolens['cpu_seconds']:.1f}x |")
    load_end = os.getloadavg()
    command = "python bench/bench_points.py " + " ".join(sys.argv[1:])
    lines = [
        "# Consensus points: zoolens' point method against panoptes_aggregation, scored against known truth",
        "",
        f"Made by `{command.strip()}` on {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, "
        f"{(time.perf_counter() - started) / 60:.1f} minutes; {machine()}, numpy {np.__version__}, pandas {pd.__version__}. "
        f"Peers: panoptes_aggregation 5.3.1 in `bench/.venv-peers`. Load average (/proc/loadavg, 1, 5, 15 min) "
        f"{load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f} at the start, "
        f"{load_end[0]:.2f} {load_end[1]:.2f} {load_end[2]:.2f} at the end, on 2 cores shared with other engineers' "
        "jobs: wall times are upper bounds; CPU times are much less affected.",
        "",
        f"Data: `consensus.simulate_points.simulate_point_project` (seed 7, {args.subjects:,} subjects per population; "
        f"peers tuned on seed 101, {args.tune_subjects} subjects), 1000 x 750 frames, about 25 animals per frame "
        "(3 in `sparse`) in 1-3 colonies, no two closer than 12 px, about 12 classifications per frame. Scores: one-to-one matching of "
        f"found to true points per subject within {args.tolerance:g} px. Time: the aggregation alone, loading excluded "
        "for every tool (the peers' reducer module imported, zoolens' `consensus` imported, the data read), its first call "
        f"in a fresh process; the median of {args.repeats} such runs per tool, the tools taking turns so a change in the "
        "machine's load hits all alike (wall range: fastest to slowest run). zoolens' warm time (the same call repeated "
        "in its process, as a notebook or the dashboard's re-aggregation makes it) is shown in brackets and is not used "
        "below. zoolens makes more than the peers in that time: the links table (every click's point and distance) and "
        "the subjects table. Memory: peak RSS of the tool's subprocess during its first call (growth over the loaded "
        "input), the largest of the runs.",
        "",
        MEASUREMENT_NOTE,
        "",
        DROPPED,
        "",
        ("| data | tool | subjects | marks | precision | recall | F1 | mean distance px | seconds | wall range | CPU seconds "
         "| peak MiB | import s (CPU) |"),
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        *rows,
        "",
        f"The point kernels' one-off compilation (importing `consensus` with an empty numba cache, as on a machine's "
        f"first use): {compiled:.1f} s wall; cached on disk after that, and every zoolens run above loads the cache.",
        "",
        f"Peer settings chosen on the tuning projects (grids: dbscan eps x min_samples "
        f"{[tuple(p.values()) for p in dbscan_grid]}, hdbscan min_cluster_size x min_samples "
        f"{[tuple(p.values()) for p in hdbscan_grid]}):",
        *notes,
        "",
        "What zoolens' defaults miss on the tuning projects (seed 101), and why: the missed true points were clicked by "
        "this many volunteers (the simulator labels each click with its animal), and keeping every one-vote point "
        "(the only way to find a point one volunteer clicked) scores so; one volunteer's click on an animal the others "
        "missed looks like a click on nothing, which the simulated volunteers make too (`spurious_rate`):",
        "",
        *misses,
        "",
        "Best-tuned peer against zoolens' defaults (F1 difference peer - zoolens; how many times longer the peer took;",
        "whether zoolens' F1 is higher; whether the issue's goal, a higher F1 at 100x the speed by wall and CPU time, is met):",
        "",
        "| data | peer | F1 peer - zoolens | zoolens faster by (wall) | (CPU) | zoolens F1 higher | goal met |",
        "| --- | --- | ---: | ---: | ---: | --- | --- |",
        *speedups,
        "",
    ]
    if changes:
        lines += [
            f"zoolens now against zoolens as of {args.baseline} (same runs, same turns; fresh-process first call):",
            "",
            (f"| data | F1 at {args.baseline} | F1 now | seconds at {args.baseline} | seconds now | faster by | "
             f"CPU s at {args.baseline} | CPU s now | faster by (CPU) |"),
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
            *changes,
            "",
        ]
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text("\n".join(lines))
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
