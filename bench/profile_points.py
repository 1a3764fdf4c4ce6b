"""Where the point method's time goes: CPU time of each step of ``aggregate(method="point")``.

On the projects of `bench_points` (run that first: it makes them), each in a
fresh process as there: the compiled kernels loaded from numba's cache first
and timed apart (`bench_points` times that with the imports, as it times the
peers' imports of their compiled modules), then the first call (what
`bench_points` compares with the peers) and a warm call (the same call again in
that process, the fastest of `WARM_CALLS`). Each step is
timed by wrapping the function that does it; nested steps (parts of preparing
the arrays and of writing the tables) are indented. The compiled kernels
(`consensus.point_kernels`) are one call, so their phases are timed apart, warm:
the kernels' group loop run up to each phase, the differences giving each
phase's share (each the fastest of `PHASE_RUNS` runs, the phases taking turns). For scale, the CPU time of one
numpy argsort of as many int64 keys as the project has clicks, and of making the
call's three tables from ready numpy columns and factorizing the volunteers'
names: what any method pays before it clusters anything.

    python bench/profile_points.py      # writes bench/results/points_profile.md
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

from bench_consensus import run  # noqa: E402
from bench_loaders import machine  # noqa: E402
from bench_points import POPULATIONS, WORK  # noqa: E402

RESULTS = HERE / "results" / "points_profile.md"

#: (label, module, attribute, owner class or None); labels starting with two spaces are inside the step above.
STEPS = [
    ("prepare: columns, volunteer and group codes, clicks sorted, who saw what", "consensus.points", "prepare", None),
    ("  volunteers' names (volunteer_keys)", "consensus.prepare", "volunteer_keys", None),
    ("  group codes: task, tool, frame (dense_codes)", "consensus.prepare", "dense_codes", None),
    ("  subjects coded (sorted_codes)", "consensus.prepare", "sorted_codes", None),
    ("  clicks sorted by group and x, their columns carried along, compiled (sort_clicks)", "consensus.point_kernels",
     "sort_clicks", None),
    ("compiled kernels: clustering, medians, quorum, linking rounds, spreads, links columns (point_consensus)",
     "consensus.points", "point_consensus", None),
    ("output tables: consensus, links, subjects", "consensus.points", "partition_output", None),
    ("  consensus ids into the kernels' links columns, compiled (number_links)", "consensus.points", "number_links",
     None),
    ("  consensus and subjects tables (typed_frame)", "consensus.base", "typed_frame", None),
]

#: The kernels' phases, each timed by running the phases up to it over every group (see PHASES in PROFILE).
PHASES = [
    "volunteers coded per group",
    "neighbour lists within `distance` (sweep over x)",
    "seeded clustering rounds",
    "medians of x and y",
    "one linking round: clicks within `link_distance`, one vote per volunteer per point",
]

#: Warm calls of the whole method (the fastest is shown) and turns of the kernels' phase runs (the fastest of each).
WARM_CALLS = 3
PHASE_RUNS = 9

PROFILE = f"""
WARM_CALLS, PHASE_RUNS = {WARM_CALLS}, {PHASE_RUNS}
""" + """
import importlib, json, resource, sys, time
import numpy as np
import pandas as pd
from consensus import aggregate
from consensus.point_kernels import load
started = time.process_time()
load()  # the kernels' machine code from numba's cache: bench_points times it with the imports, so here apart too
load_seconds = time.process_time() - started

steps, folder = json.loads(sys.argv[1]), sys.argv[2]
spent = {}

def timed(label, function):
    def wrapper(*args, **kwargs):
        started = time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            spent[label] = spent.get(label, 0.0) + time.process_time() - started
    return wrapper

for label, module, name, owner in steps:
    holder = importlib.import_module(module)
    holder = getattr(holder, owner) if owner else holder
    setattr(holder, name, timed(label, getattr(holder, name)))
marks = pd.read_parquet(folder + "/marks.parquet")
classifications = pd.read_parquet(folder + "/classifications.parquet")
calls = []
for _ in range(1 + WARM_CALLS):
    spent.clear()
    faults, started = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.process_time()
    aggregate(marks, classifications, method="point")
    calls.append({"total": time.process_time() - started, **spent,
                  "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults})
# The first call, and the warm call least disturbed by other jobs on the shared cores.
calls = [calls[0], min(calls[1:], key=lambda call: call["total"])]
keys = np.random.default_rng(0).integers(0, 2**40, len(marks))
started = time.process_time()
np.argsort(keys)
argsort = time.process_time() - started
# What any method pays to hand back the call's tables and to code the volunteers, with no clustering at all:
# the three tables made again from their own columns as numpy arrays, and the volunteers' names factorized.
result = aggregate(marks, classifications, method="point")
tables = [{name: column.to_numpy() for name, column in table.items()}
          for table in (result.consensus, result.links, result.subjects)]
started = time.process_time()
for columns in tables:
    pd.DataFrame(columns)
tables_seconds = time.process_time() - started
started = time.process_time()
pd.factorize(pd.concat([marks["user"], classifications["user"]], ignore_index=True), sort=True)
volunteers_seconds = time.process_time() - started

# The kernels' phases: the group loop of point_consensus run up to phase `upto` (compiled here, not timed).
from numba import njit
from consensus import point_kernels as kernels
from consensus.prepare import prepare

@njit
def phases(group_starts, x, y, volunteer, distance, link_distance, upto):
    local = np.full(volunteer.max() + 1, -1, np.int64)
    total = 0
    for g in range(len(group_starts) - 1):
        s, e = group_starts[g], group_starts[g + 1]
        gx, gy = x[s:e], y[s:e]
        gv, n_volunteers = kernels.group_volunteers(volunteer, s, e, local)
        if upto == 1:
            total += len(kernels._neighbours(gx, gy, gv, distance)[1])
        if upto < 2:
            continue
        label, n_labels = kernels.cluster_group(gx, gy, gv, n_volunteers, distance)
        if upto < 3:
            continue
        px, py = kernels._medians_xy(gx, gy, label, n_labels)
        if upto < 4:
            continue
        total += kernels.link_group(gx, gy, gv, n_volunteers, px, py, link_distance)[0].sum()
    return total

prep = prepare(marks, classifications, points=True)
group_starts = np.searchsorted(prep.marks.group, np.arange(len(prep.groups) + 1))
arguments = (group_starts, prep.marks.cx, prep.marks.cy, prep.volunteer, 12.0, 12.0)
for upto in range(5):
    phases(*arguments, upto)  # compiles, then warm
# The phases take turns, so a change in the machine's load hits them alike; each the fastest of its runs.
runs = [[] for _ in range(5)]
for _ in range(PHASE_RUNS):
    for upto in range(5):
        started = time.process_time()
        phases(*arguments, upto)
        runs[upto].append(time.process_time() - started)
cumulative = [min(times) for times in runs]
print(json.dumps({"marks": len(marks), "calls": calls, "argsort": argsort, "load": load_seconds,
                  "tables": tables_seconds, "volunteers": volunteers_seconds,
                  "phases": [cumulative[0]] + [b - a for a, b in zip(cumulative, cumulative[1:])]}))
"""


def main() -> None:
    load_start = os.getloadavg()
    columns, profiles = [], []
    for name in POPULATIONS:
        folder = WORK / f"{name}-1000"
        if not (folder / "marks.parquet").exists():
            raise SystemExit(f"{folder} is missing: run bench/bench_points.py first")
        profiles.append(run(sys.executable, PROFILE, json.dumps(STEPS), str(folder)))
        columns.append(folder.name)
        print(folder.name, profiles[-1], flush=True)
    load_end = os.getloadavg()
    header = " | ".join(f"{column} first | warm" for column in columns)
    lines = [
        "# Where the point method's time goes (CPU milliseconds per step)",
        "",
        (f"Made by `python bench/profile_points.py` on {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC; {machine()}. "
         f"Load average {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f} at the start, "
         f"{load_end[0]:.2f} {load_end[1]:.2f} {load_end[2]:.2f} at the end (2 shared cores: expect +-30 %). "
         "`aggregate(marks, classifications, method=\"point\")` with the defaults on bench_points' projects, in a fresh "
         "process: its first call (what bench/results/points.md compares) and the same call again (warm: the fastest "
         f"of {WARM_CALLS}), after "
         "the compiled kernels are loaded from numba's on-disk cache (`consensus.point_kernels.load()`, timed apart: "
         "bench_points counts it with the imports, as it counts the peers' imports of their compiled modules; it is "
         "a fixed cost per process, paid by the package at the point method's first call). "
         "Indented steps are part of the step above; 'other' is the rest of the call (the quorum per group, "
         "the partitions, assembling the result)."),
        "",
        f"| step | {header} |",
        "| --- |" + " ---: | ---: |" * len(columns),
    ]

    def cells(label):
        return " | ".join(f"{profile['calls'][0].get(label, 0) * 1000:,.0f} | {profile['calls'][1].get(label, 0) * 1000:,.0f}"
                          for profile in profiles)

    for label, *_ in STEPS:
        shown = "&nbsp;&nbsp;" + label.strip() if label.startswith("  ") else label
        lines.append(f"| {shown} | {cells(label)} |")
    top = [label for label, *_ in STEPS if not label.startswith("  ")]
    for profile in profiles:
        for call in profile["calls"]:
            call["other"] = call["total"] - sum(call.get(label, 0) for label in top)
    lines += [
        f"| other | {cells('other')} |",
        f"| **total** | {cells('total')} |",
        "| minor page faults of the call (pages of fresh memory touched) | "
        + " | ".join(f"{profile['calls'][0]['faults']:,} | {profile['calls'][1]['faults']:,}" for profile in profiles) + " |",
        "",
        "Inside the compiled kernels (CPU milliseconds, warm; each phase timed as the difference between running the "
        f"kernels' group loop up to it and up to the phase before, each the fastest of {PHASE_RUNS} runs, the phases "
        "taking turns; the linking round links the clicks "
        "to every cluster's median, before the quorum, so it has more points than the method's own rounds, which run "
        "twice with the default refine=1):",
        "",
        "| phase | " + " | ".join(columns) + " |",
        "| --- |" + " ---: |" * len(columns),
        *(f"| {phase} | " + " | ".join(f"{profile['phases'][k] * 1000:,.1f}" for profile in profiles) + " |"
          for k, phase in enumerate(PHASES)),
        "",
        "Loading the compiled kernels from numba's cache, once per process before the first call (CPU ms): "
        + ", ".join(f"{column} {profile['load'] * 1000:,.0f}" for column, profile in zip(columns, profiles)) + ".",
        "",
        "For scale, one `numpy.argsort` of as many random int64 keys as the project has clicks: "
        + ", ".join(f"{column} ({profile['marks']:,} clicks) {profile['argsort'] * 1000:.0f} ms"
                    for column, profile in zip(columns, profiles)) + ".",
        "",
        "The least any method pays before clustering anything, for the tables it hands back and the volunteers it "
        "must tell apart (CPU ms): the consensus, links and subjects tables made from ready numpy columns, and the "
        "volunteers' names of marks and classifications factorized: "
        + ", ".join(f"{column} {profile['tables'] * 1000:.0f} + {profile['volunteers'] * 1000:.0f}"
                    for column, profile in zip(columns, profiles)) + ".",
        "",
    ]
    RESULTS.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
