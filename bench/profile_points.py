"""Where the point method's time goes: CPU time of each step of ``aggregate(method="point")``.

On the projects of `bench_points` (run that first: it makes them), each in a
fresh process as there: the first call (what `bench_points` compares with the
peers) and a warm call (the same call again in that process). Each step is
timed by wrapping the function that does it; nested steps (the link search
and the vote assignment inside each linking round) are indented. For scale, the
CPU time of one numpy argsort of as many int64 keys as the project has clicks.

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
    ("k-d tree of the clicks (built once)", "consensus.points", "PointTree", None),
    ("neighbour pairs within `distance` (tree search)", "consensus.distance", "pairs", "PointTree"),
    ("seeded clustering (rounds over the pairs)", "consensus.points", "cluster_neighbours", None),
    ("medians of x and y (2 rounds)", "consensus.points", "median_points", None),
    ("linking rounds (2): order, search, one vote per volunteer, distances", "consensus.points", "reassign_points", None),
    ("  clicks within `link_distance` of the points (tree search)", "consensus.distance", "cross", "PointTree"),
    ("  one vote per volunteer per point (assign_edges)", "consensus.matching", "assign_edges", None),
    ("output tables: consensus, links, subjects", "consensus.points", "partition_output", None),
]

PROFILE = """
import importlib, json, sys, time
import numpy as np
import pandas as pd
from consensus import aggregate

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
for _ in range(2):
    spent.clear()
    started = time.process_time()
    aggregate(marks, classifications, method="point")
    calls.append({"total": time.process_time() - started, **spent})
keys = np.random.default_rng(0).integers(0, 2**40, len(marks))
started = time.process_time()
np.argsort(keys)
print(json.dumps({"marks": len(marks), "calls": calls, "argsort": time.process_time() - started}))
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
         "process: its first call (what bench/results/points.md compares) and the same call again (warm). "
         "Indented steps are part of the step above; 'other' is the rest of the call (input checks, quorum, spreads, "
         "assembling the result)."),
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
        "",
        "For scale, one `numpy.argsort` of as many random int64 keys as the project has clicks: "
        + ", ".join(f"{column} ({profile['marks']:,} clicks) {profile['argsort'] * 1000:.0f} ms"
                    for column, profile in zip(columns, profiles)) + ".",
        "",
    ]
    RESULTS.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
