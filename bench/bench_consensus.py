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
fast setting. zoolens' fixed cost per call is measured on a one-subject project.

Two more sections: zoolens alone at Clump Scout's scale (85,000 subjects, about
3.5 million marks) and at a quarter and half of it, to show time and memory grow
linearly in the marks; and the agreement statistics (`consensus.agreement`)
timed against their previous version from git on the same data, their tables
checked equal.

A fourth section, ``distractors``, runs both methods' defaults and the tuned peers
on `consensus.simulate.simulate_distractor_project` (a minority of volunteers who
box foreground stars, spammers, a 10x range of clump sizes, touching clumps), and
the defaults again on the compare section's clean, realistic and noisy projects.

Each section is written to its own block of the results file, headed by the
command, date, duration and machine load; running some sections keeps the
others' blocks as they were.

    python bench/bench_consensus.py                          # everything (over an hour on 2 cores)
    python bench/bench_consensus.py --quick                  # small sizes, for a smoke run
    python bench/bench_consensus.py --sections scale agreement
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
from consensus.simulate import simulate_distractor_project, simulate_project  # noqa: E402

WORK = HERE / "work" / "consensus"
RESULTS = HERE / "results" / "consensus.md"
POPULATIONS = ("clean", "realistic", "noisy")
#: The population of `simulate_distractor_project` (realistic volunteers, some boxing stars, spammers).
DISTRACTORS = "distractors"

#: Parameter grids searched for each peer on the tuning projects (fast averaging).
DBSCAN_GRID = [{"eps": eps, "min_samples": samples} for eps in (0.4, 0.5, 0.6, 0.7) for samples in (2, 3, 4, 6)]
# HDBSCAN needs min_samples <= min_cluster_size (else it fails on subjects with few marks).
HDBSCAN_GRID = [{"min_cluster_size": size, "min_samples": samples}
                for size in (2, 3, 5, 8) for samples in (1, 2, 3) if samples <= size]

#: Shared by both runners: resident memory now and at its peak, and the JSON line every run
#: prints last. The peak is VmHWM of this process's own memory; ``ru_maxrss`` would not do,
#: because Linux carries the parent's peak into a child across fork and exec.
MEASURE = """
import json, sys, time

def status_mib(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024

def rss_mib():
    return status_mib("VmRSS")

def report(seconds, loaded, **counts):
    print(json.dumps({"seconds": seconds, "peak_mib": status_mib("VmHWM"), "loaded_mib": loaded, **counts}))
"""

RUN_ZOOLENS = MEASURE + """
import statistics
import pandas as pd
from consensus import aggregate

folder, method, params, out = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
marks = pd.read_parquet(folder + "/marks.parquet")
classifications = pd.read_parquet(folder + "/classifications.parquet")
loaded = rss_mib()
started, cpu_started = time.perf_counter(), time.process_time()
result = aggregate(marks, classifications, method=method, **params)
seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
# Warm: the same call again in this process, as a notebook or the dashboard's re-aggregation makes it.
warm = []
for _ in range(5 if seconds < 2 else 0):
    started = time.perf_counter()
    aggregate(marks, classifications, method=method, **params)
    warm.append(time.perf_counter() - started)
result.consensus[["subject_id", "x", "y", "width", "height"]].to_parquet(out)
report(seconds, loaded, cpu_seconds=cpu_seconds, warm_seconds=statistics.median(warm) if warm else None, marks=len(marks),
       subjects=int(classifications["subject_id"].nunique()), source=result.source)
"""

RUN_PEER = MEASURE + """
import importlib

source, reducer_name, params, out = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
reducer = getattr(importlib.import_module("panoptes_aggregation.reducers." + reducer_name), reducer_name)
with open(source) as handle:
    subjects = json.load(handle)
loaded = rss_mib()
boxes = []
started, cpu_started = time.perf_counter(), time.process_time()
for subject in subjects:
    reduction = reducer(subject["extracts"], shape="rectangle", metric_type="IoU", user_id=subject["users"], **params)
    frame = reduction.get("frame0", {})
    for x, y, w, h in zip(*(frame.get("T0_tool0_clusters_" + p, []) for p in ("x", "y", "width", "height"))):
        boxes.append([subject["subject_id"], x, y, w, h])
seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
with open(out, "w") as handle:
    json.dump(boxes, handle)
marks = sum(len(e["frame0"]["T0_tool0_x"]) for s in subjects for e in s["extracts"] if "frame0" in e)
report(seconds, loaded, cpu_seconds=cpu_seconds, marks=marks, subjects=len(subjects))
"""


def run(python: str, code: str, *args: str, code_root: Path = ROOT) -> dict:
    """Run ``code`` in a fresh interpreter importing zoolens from ``code_root``; its last stdout line is a JSON result."""
    env = dict(os.environ, PYTHONPATH=str(code_root), OMP_NUM_THREADS="1")
    done = subprocess.run([python, "-c", textwrap.dedent(code), *args], capture_output=True, text=True,
                          env=env, cwd=code_root)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def dataset(name: str, n_subjects: int, noise: str, seed: int, for_peers: bool = True, clumps: float = 2.2) -> Path:
    """Simulate a project once and keep its tables as Parquet (and, ``for_peers``, the peers' input as JSON).

    ``clumps`` is the mean number of true clumps per subject.
    """
    folder = WORK / name
    done = folder / ("peer.json" if for_peers else "truth.parquet")
    if done.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    if noise == DISTRACTORS:
        project = simulate_distractor_project(n_subjects, seed=seed, clumps_per_subject_mean=clumps)
    else:
        project = simulate_project(n_subjects, seed=seed, noise=noise, clumps_per_subject_mean=clumps)
    project.marks.to_parquet(folder / "marks.parquet")
    project.classifications.to_parquet(folder / "classifications.parquet")
    project.truth.to_parquet(folder / "truth.parquet")
    if for_peers:
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
        boxes = boxes[boxes["subject_id"].isin(subjects)]
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
    if result.get("warm_seconds") is not None:
        seconds += f" (warm {result['warm_seconds']:.3f})"
    if record.get("extrapolate_to"):
        seconds += f" (~{result['seconds'] / result['subjects'] * record['extrapolate_to']:,.0f} s for all {record['extrapolate_to']:,})"
    return (f"| {record['data']} | {record['tool']} | {result['subjects']:,} | {result['marks']:,} | "
            f"{result['precision']:.3f} | {result['recall']:.3f} | **{result['f1']:.3f}** | {result['mean_iou']:.3f} | "
            f"{seconds} | {result['peak_mib']:,.0f} ({grown:+,.0f}) |")


def per_subject(result: dict) -> float:
    return result["seconds"] / result["subjects"]


def compare_section(args, started: float) -> list[str]:
    """zoolens against the peers on the simulated populations: the accuracy and speed table."""
    reducers = ("shape_reducer_dbscan", "shape_reducer_hdbscan")
    records, notes, subsample_notes = [], [], []
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
                # F1 on a dozen subjects is noisy: score everyone on exactly those subjects.
                subjects = [subject["subject_id"] for subject in json.loads(source.read_text())]
                truth = pd.read_parquet(folder / "truth.parquet")
                same = {f"zoolens {method}": score(pd.read_parquet(folder / f"zoolens-{method}.parquet"), truth, subjects)
                        for method in ("iou", "lean")}
                same.update({f"panoptes {r['kind'].split('_')[-1].split()[0]}": r["result"] for r in records
                             if r["data"] == name and r["kind"].endswith(" exact")})
                subsample_notes.append(f"- {name}, the {len(subjects)} subjects timed with exact averaging: " + ", ".join(
                    f"{tool} F1 {result['f1']:.3f}" for tool, result in same.items()))
            for record in records:
                if record["data"] == name:
                    print(fmt_row(record), flush=True)

    def rates(kind):
        return [per_subject(r["result"]) for r in records if r["kind"] == kind]

    speedups, extrapolations = [], []
    for record in records:
        if record["kind"].startswith("shape_reducer"):
            zoolens = next(r for r in records if r["data"] == record["data"] and r["kind"] == "iou")["result"]
            exact = record["kind"].endswith(" exact")
            # The exact-average rows cover a subsample: compare time per subject there.
            peer_subjects = record["result"]["subjects"] if exact else 1
            scale = zoolens["subjects"] if exact else 1
            # The peers' loop has no warm variant: their one run stands against both of zoolens'.
            ratios = [record["result"][peer_key] / peer_subjects / (zoolens[zoolens_key] / scale)
                      for peer_key, zoolens_key in (("seconds", "seconds"), ("seconds", "warm_seconds"),
                                                    ("cpu_seconds", "cpu_seconds"))]
            speedups.append(f"| {record['data']} | {record['kind'].split('_')[-1].split()[0]} | "
                            f"{'default exact average (per subject)' if exact else 'fast average (whole dataset)'} | "
                            + " | ".join(f"{ratio:,.0f}x" for ratio in ratios) + " |")
    for reducer in reducers:
        fast, exact = np.median(rates(reducer)), np.median(rates(reducer + " exact"))
        extrapolations.append(
            f"- panoptes {reducer.split('_')[-1]}: median {fast * 1000:,.0f} ms per subject with fast averaging, "
            f"{exact:,.1f} s per subject with its default exact averaging; 85,000 subjects would take about "
            f"{fast * 85_000 / 3600:,.1f} h and {exact * 85_000 / 86400:,.1f} days.")
    overhead = fixed_overhead()
    return [
        "Data: `consensus.simulate.simulate_project` (seed 7; peers tuned on seed 101), about 20",
        "classifications per subject, 2.2 true clumps per subject on a 400 px image. Scores: one-to-one",
        "matching of found to true boxes per subject at IoU >= 0.5. Time: the aggregation alone, loading",
        "excluded for every tool; for zoolens the first call in a fresh process, and in brackets the median",
        "of five more calls in that process (warm). Memory: peak RSS of the tool's subprocess (growth over",
        "the loaded input).",
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
        "The rows with the peers' default exact averaging cover only a subsample; on those same subjects:",
        *subsample_notes,
        "",
        "Speed of zoolens iou against each peer. The issue's target (\"at least 100x faster than",
        "panoptes_aggregation's IoU reducer\") is against the reducer as it is configured by default,",
        "`estimate_average: False` (exact average); the fast-average rows are the peers' quickest setting.",
        "",
        "Cold: zoolens' first call in a fresh process (what `zoolens aggregate` pays); warm: the median of",
        "five more calls in that process (a notebook, the dashboard's re-aggregation). The peers' time is",
        "their loop over the subjects in a fresh process, their modules imported before the clock starts,",
        "as zoolens' are. CPU time: the same cold runs by each process's own CPU time, which the other jobs",
        "on the shared machine inflate much less than wall time.",
        "",
        "| data | peer | peer averaging | zoolens iou faster by: cold | warm | cold, CPU time |",
        "| --- | --- | --- | ---: | ---: | ---: |",
        *speedups,
        "",
        f"zoolens' fixed cost per `aggregate` call (one subject, {overhead['marks']} marks, median of "
        f"{overhead['repeats']} calls in one process): iou {overhead['iou'] * 1000:.1f} ms, "
        f"lean {overhead['lean'] * 1000:.1f} ms.",
        "",
        "At Clump Scout scale, extrapolated (not measured) from the peers' per-subject times above:",
        *extrapolations,
    ]


#: Time of `aggregate` on one small subject, repeated in one process: the per-call cost.
RUN_OVERHEAD = """
import json, statistics, sys, time
from consensus import aggregate
from consensus.simulate import simulate_project

project = simulate_project(1, seed=3)
times = {}
for method in ("iou", "lean"):
    aggregate(project.marks, project.classifications, method=method)
    runs = []
    for _ in range(int(sys.argv[1])):
        started = time.perf_counter()
        aggregate(project.marks, project.classifications, method=method)
        runs.append(time.perf_counter() - started)
    times[method] = statistics.median(runs)
print(json.dumps({**times, "marks": len(project.marks), "repeats": int(sys.argv[1])}))
"""


def fixed_overhead(repeats: int = 50) -> dict:
    return run(sys.executable, RUN_OVERHEAD, str(repeats))


#: Mean true clumps per subject in the scale runs: 85,000 subjects then carry Clump Scout's 3.5 million marks.
SCALE_CLUMPS = 2.5


def scale_section(args, started: float) -> list[str]:
    """zoolens alone at growing sizes up to Clump Scout's: time, peak memory, memory per mark."""
    rows = []
    for n_subjects in args.scale:
        folder = dataset(f"scale-realistic-{n_subjects}-{SCALE_CLUMPS}", n_subjects, "realistic", seed=3,
                         for_peers=False, clumps=SCALE_CLUMPS)
        for method in ("iou", "lean"):
            result = run_zoolens(folder, method)
            grown = result["peak_mib"] - result["loaded_mib"]
            rows.append(
                f"| {n_subjects:,} | {result['marks']:,} | zoolens {method} | {result['seconds']:.1f} | {result['cpu_seconds']:.1f} | "
                f"{result['peak_mib']:,.0f} | {grown:+,.0f} | {grown * 2**20 / result['marks']:,.0f} | {result['f1']:.3f} |")
            print(rows[-1], flush=True)
    return [
        f"Realistic volunteers (seed 3) and {SCALE_CLUMPS} true clumps per subject on average, which gives",
        "Clump Scout's marks: about 3.5 million on 85,000 subjects (at 20 classifications per subject, as its 1.7 million).",
        "`aggregate(marks, classifications, method=...)` with defaults in a",
        "fresh process, the tables already loaded. Seconds: wall time; CPU seconds: the process's own CPU",
        "time, which other jobs on the machine inflate much less (one thread: on an idle machine the two",
        "agree). Growth: peak RSS over the RSS with the input loaded; constant bytes per mark across sizes",
        "means memory linear in the marks (no N x N matrix).",
        "",
        "| subjects | marks | tool | seconds | CPU seconds | peak MiB | growth MiB | growth bytes per mark | F1 |",
        "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        *rows,
    ]


#: The agreement statistics before they were vectorised (commit 9e5fe6c), timed beside the current ones.
AGREEMENT_BEFORE = "9e5fe6cc7f75a533bf91fc280aa7a93353f12fc8"

RUN_AGREEMENT = MEASURE + """
import importlib.util
import pandas as pd

folder, module, out = sys.argv[1], sys.argv[2], sys.argv[3]
if module == "current":
    from consensus import agreement
else:
    import consensus
    spec = importlib.util.spec_from_file_location("consensus.agreement_before", module)
    agreement = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(agreement)
marks = pd.read_parquet(folder + "/marks.parquet")
classifications = pd.read_parquet(folder + "/classifications.parquet")
consensus = pd.read_parquet(folder + "/consensus.parquet")
links = pd.read_parquet(folder + "/links.parquet")
loaded = rss_mib()
times = {}
for name, args in (("box", (marks, consensus, links)), ("subject", (marks, consensus, links, classifications)),
                   ("volunteer", (marks, consensus, links, classifications))):
    started = time.perf_counter()
    table = getattr(agreement, name + "_agreement")(*args)
    times[name] = time.perf_counter() - started
    table.to_pickle(f"{out}-{name}.pkl")
report(sum(times.values()), loaded, **times, marks=len(marks))
"""


def agreement_data(n_subjects: int) -> Path:
    """A simulated project with its truth as the consensus and the marks matched to it."""
    folder = WORK / f"agreement-{n_subjects}"
    if (folder / "links.parquet").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    project = simulate_project(n_subjects, seed=0)
    consensus = project.truth.rename(columns={"truth_id": "consensus_id"})
    votes = project.marks[project.marks["truth_id"] >= 0].groupby("truth_id")["user"].nunique()
    consensus["n_votes"] = votes.reindex(consensus["consensus_id"], fill_value=0).to_numpy()
    seen = project.classifications.groupby("subject_id").size()
    consensus["n_seen"] = seen.reindex(consensus["subject_id"], fill_value=0).to_numpy()
    project.marks.to_parquet(folder / "marks.parquet")
    project.classifications.to_parquet(folder / "classifications.parquet")
    consensus.to_parquet(folder / "consensus.parquet")
    match(project.marks, consensus, min_iou=0.3).to_parquet(folder / "links.parquet")
    return folder


def agreement_section(args, started: float) -> list[str]:
    """`consensus.agreement` now against its previous version, same data, same process setup, equal results."""
    folder = agreement_data(args.agreement_subjects)
    before_source = folder / "agreement_before.py"
    before_source.write_text(subprocess.run(["git", "show", f"{AGREEMENT_BEFORE}:consensus/agreement.py"], cwd=ROOT,
                                            capture_output=True, text=True, check=True).stdout)
    results = {}
    for label, module in (("before", str(before_source)), ("after", "current")):
        results[label] = run(sys.executable, RUN_AGREEMENT, str(folder), module, str(folder / label))
        print(label, results[label], flush=True)
    rows = []
    for name in ("box", "subject", "volunteer"):
        before = pd.read_pickle(folder / f"before-{name}.pkl")
        after = pd.read_pickle(folder / f"after-{name}.pkl")
        pd.testing.assert_frame_equal(before, after, check_exact=False, rtol=1e-12, atol=1e-12)
        rows.append(f"| `{name}_agreement` | {len(after):,} | {results['before'][name]:.2f} | {results['after'][name]:.2f} | "
                    f"{results['before'][name] / results['after'][name]:.1f}x |")
    total_before, total_after = results["before"]["seconds"], results["after"]["seconds"]
    rows.append(f"| all three | | {total_before:.2f} | {total_after:.2f} | {total_before / total_after:.1f}x |")
    return [
        f"Simulated project of {args.agreement_subjects:,} subjects ({results['after']['marks']:,} marks, seed 0), its truth",
        "as the consensus and the marks linked by `consensus.match` (min_iou 0.3, so double marks are counted).",
        f"Before: `consensus/agreement.py` at commit {AGREEMENT_BEFORE[:7]}; after: this branch. Each runs in a fresh",
        "process on the same loaded tables; the three tables of both versions are checked equal (rtol 1e-12)",
        "before the row is written.",
        "",
        "| statistic | rows | before, s | after, s | faster by |",
        "| --- | ---: | ---: | ---: | ---: |",
        *rows,
        "",
        f"Peak memory: before {results['before']['peak_mib']:,.0f} MiB, after {results['after']['peak_mib']:,.0f} MiB "
        f"(the loaded tables: {results['after']['loaded_mib']:,.0f} MiB).",
    ]


def distractors_section(args, started: float) -> list[str]:
    """Projects where a minority of volunteers box distractors: both methods' defaults against the tuned peers,
    and the defaults on the compare section's clean and realistic data (same seed) to show they did not drop."""
    reducers = ("shape_reducer_dbscan", "shape_reducer_hdbscan")
    rows, notes = [], []
    tuning = dataset(f"tune-{DISTRACTORS}-{args.tune_subjects}", args.tune_subjects, DISTRACTORS, seed=101)
    best, peer_tried = {}, {}
    for reducer, grid in zip(reducers, (DBSCAN_GRID, HDBSCAN_GRID)):
        best[reducer], peer_tried[reducer] = tune_peer(tuning, reducer, grid[:4] if args.quick else grid, args.tune_subjects)
    on_tuning = {method: run_zoolens(tuning, method) for method in ("iou", "lean")}
    notes.append(f"On the {args.tune_subjects}-subject tuning project itself (seed 101), where each peer's grid "
                 "is scored on the very data it is chosen on: " + ", ".join(
                     [f"zoolens {method} F1 {result['f1']:.3f}" for method, result in on_tuning.items()]
                     + [f"panoptes {reducer.split('_')[-1]} best {best[reducer]} F1 {max(f for _, f in tried):.3f} "
                        f"(worst {min(f for _, f in tried):.3f})" for reducer, tried in peer_tried.items()]) + ".")

    def quorum(result):
        settings = json.loads(result["source"])
        if settings["method"] != "iou":
            return ""
        learned = settings.get("learned", {}).get("min_vote_fraction")
        return f"{settings['min_vote_fraction']:g} ({learned})" if learned else f"{settings['min_vote_fraction']:g} (given)"

    for noise in (DISTRACTORS, *POPULATIONS):
        for size in args.sizes:
            name = f"{noise}-{size}"
            folder = dataset(name, size, noise, seed=7, for_peers=noise == DISTRACTORS and size == args.sizes[0])
            print(f"dataset {name}", flush=True)
            records = [{"data": name, "tool": f"zoolens {method} (defaults)", "result": run_zoolens(folder, method)}
                       for method in ("iou", "lean")]
            if noise == DISTRACTORS and size == args.sizes[0]:
                records += [{"data": name, "tool": f"panoptes {reducer.split('_')[-1]} {best[reducer]}, fast average",
                             "result": run_peer(folder, folder / "peer.json", reducer,
                                                {**best[reducer], "estimate_average": True})} for reducer in reducers]
            for record in records:
                result = record["result"]
                rows.append(f"| {name} | {record['tool']} | {result['subjects']:,} | {result['marks']:,} | "
                            f"{result['precision']:.3f} | {result['recall']:.3f} | **{result['f1']:.3f}** | "
                            f"{result['mean_iou']:.3f} | {result['seconds']:.2f} | {quorum(result) if 'source' in result else ''} |")
                print(rows[-1], flush=True)
    return [
        "Data: `consensus.simulate.simulate_distractor_project` (seed 7; peers tuned on seed 101): realistic",
        "volunteers of whom about 35 % habitually box foreground stars (1.5 per subject, sized like the clumps,",
        "anywhere on the image; each volunteer with their own propensity, so a star's box has about a quarter",
        "of the subject's viewers behind it), 3 % spammers, clumps over a 10x range of sizes, and in 30 % of",
        "the subjects with two or more clumps a pair of touching clumps. The clean, realistic and noisy rows",
        "are the compare section's projects (same seed, same data): their F1 there, made with the earlier",
        "defaults (iou quorum 0.2, lean without distractors), is the baseline these must not fall below.",
        "zoolens runs its defaults; each peer the grid setting that scored best on the tuning project",
        "(grids as in the compare section, fast averaging; the tuning runs are kept in bench/work and reused",
        "by later runs with the same grid and data, so a rerun's minutes may not include them). Scores at",
        "IoU >= 0.5, one-to-one per subject.",
        "Quorum: the vote fraction the iou method used, and how it got it (valley of the project's vote",
        "fractions, or the 0.2 fallback when there is no valley).",
        "",
        "| data | tool | subjects | marks | precision | recall | F1 | mean IoU | seconds | iou quorum |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
        *rows,
        "",
        *notes,
        "",
        "BoxAggregator (Dickinson et al. 2022, github.com/ou-astrophysics/BoxAggregator) is not in this",
        "table: it cannot be installed into the bench's virtualenv with pip, the only route the bench has.",
        "It is not on PyPI (`pip index versions BoxAggregator`: no matching distribution), and its setup.py",
        "requires `FacilityLocation @ git+ssh://git@github.com/ou-escape-eco/FacilityLocation@master`, a",
        "git-over-SSH dependency that is not on PyPI either; this machine reaches package registries only.",
        "Both are pure Python (numpy, pandas, scipy, numba), so with local clones of the two repositories",
        "`pip install` would work; that run is left to a machine that can clone them.",
    ]


SECTIONS = {
    "compare": ("zoolens against panoptes_aggregation", compare_section),
    "distractors": ("Volunteers who box distractors: learned quorum (iou) and distractor model (lean)", distractors_section),
    "scale": ("Clump Scout scale (zoolens only; realistic volunteers)", scale_section),
    "agreement": ("Agreement statistics (`consensus.agreement`), before and after vectorising", agreement_section),
}


def section_block(name: str, lines: list[str], command: str, started: float, load_start: tuple) -> str:
    """One section of the results file, between markers, headed by how and when it was made."""
    load_end = os.getloadavg()
    title, _ = SECTIONS[name]
    header = [
        f"<!-- section {name} -->",
        f"## {title}",
        "",
        f"Made by `{command}` on {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, "
        f"{(time.perf_counter() - started) / 60:.1f} minutes; {machine()}, numpy {np.__version__}, "
        f"pandas {pd.__version__}. Load average (1 min) {load_start[0]:.1f} at the start, {load_end[0]:.1f} at the end "
        "on 2 cores: the machine was shared with other jobs, so times are upper bounds.",
        "",
    ]
    return "\n".join(header + lines + [f"<!-- end {name} -->"])


def write_results(blocks: dict[str, str]) -> None:
    """Replace the given sections of the results file, keeping the others as they were."""
    text = RESULTS.read_text() if RESULTS.exists() else ""
    kept = {}
    for name in SECTIONS:
        begin, end = f"<!-- section {name} -->", f"<!-- end {name} -->"
        if begin in text and end in text:
            kept[name] = text[text.index(begin): text.index(end) + len(end)]
    kept.update(blocks)
    lines = [
        "# Consensus: zoolens against panoptes_aggregation, scored against known truth",
        "",
        "Made by `bench/bench_consensus.py`; each section below says which command made it and when. Peers:",
        "panoptes_aggregation 5.3.1 in `bench/.venv-peers`.",
        "",
        "",
    ]
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n\n".join(kept[name] for name in SECTIONS if name in kept) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sections", nargs="+", choices=list(SECTIONS), default=list(SECTIONS),
                        help="which sections to run; the results file keeps the others as they were")
    parser.add_argument("--sizes", type=int, nargs=2, default=[400, 4000], help="subjects in the two compared sizes")
    parser.add_argument("--tune-subjects", type=int, default=100, help="subjects of the peers' tuning projects")
    parser.add_argument("--exact-subjects", type=int, default=12,
                        help="subjects on which the peers' default (exact) averaging is timed")
    parser.add_argument("--scale", type=int, nargs="*", default=[21_250, 42_500, 85_000],
                        help="subject counts of the zoolens-only scale runs")
    parser.add_argument("--agreement-subjects", type=int, default=100_000,
                        help="subjects of the agreement statistics timing")
    parser.add_argument("--quick", action="store_true", help="small sizes and grids, for a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.tune_subjects, args.exact_subjects, args.scale = [60, 200], 40, 3, [2_000]
        args.agreement_subjects = 20_000
    WORK.mkdir(parents=True, exist_ok=True)
    if {"compare", "distractors"} & set(args.sections):
        ensure_peer_env()
    command = "python bench/bench_consensus.py " + " ".join(sys.argv[1:])
    blocks = {}
    for name in args.sections:
        started, load_start = time.perf_counter(), os.getloadavg()
        lines = SECTIONS[name][1](args, started)
        blocks[name] = section_block(name, lines, command.strip(), started, load_start)
        write_results(blocks)
        print(blocks[name], flush=True)


if __name__ == "__main__":
    main()
