"""Exploration: cheaper ways to find the point method's candidate points, scored against the seeded clustering.

The point method (`consensus.points`) spends about half of its compiled time
building every neighbour pair within ``distance`` and running the seeded
clustering rounds on them (bench/results/points_profile.md): on clean colonies
each animal is a clique of ~12 clicks, so the pairs grow with the square of the
volunteers. Its later steps (linking each volunteer's clicks to the points, one
per point, medians, quorum) only need candidate points. This script tries
candidate finders that never build the pairs, each followed by the same steps,
built from the method's own kernels:

1. candidates (below);
2. one linking round of every click to every candidate (`link_group`, one click per volunteer per candidate),
   medians of the linked clicks;
3. optionally, voter merge: greedily by votes, a candidate within ``distance`` of a stronger one that shares at
   most one volunteer with it joins it (one object split into pieces is voted for by different volunteers; two
   objects side by side are voted for by the same ones; one shared volunteer allows a double click); medians again;
4. the quorum, `_drop_duplicates` (``merge_distance``), then the method's ``refine`` linking rounds.

Candidate finders:

- grid density peaks: clicks counted in cells of ``cell`` px, each cell's density the count in its 3 x 3 block,
  a peak a cell with the quorum whose density no cell within ``suppress`` cells beats; its block's mean;
- leader: clicks in x order join the nearest running mean within ``radius`` px, or start a candidate.

Scored as bench_points scores (one-to-one within 6 px) on the tuning projects (seed 101, which bench_points
makes; never the compared seed 7), with the kernels' CPU time (warm, the fastest of 3). The prototypes are plain
and unoptimized (the voter merge compares every pair of candidates), so their times bound what a tuned version
would take only from above.

    python bench/explore_point_candidates.py     # writes bench/results/points_candidates.md
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from numba import njit

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

from bench_loaders import machine  # noqa: E402
from bench_points import POPULATIONS, WORK, score  # noqa: E402

from consensus import point_kernels as kernels  # noqa: E402
from consensus.points import PointClustering  # noqa: E402
from consensus.prepare import prepare  # noqa: E402

RESULTS = HERE / "results" / "points_candidates.md"
GRID, LEADER = 0, 1
#: label -> (finder, its size in px, grid suppression in cells, voter merge)
VARIANTS = {
    "grid density peaks, 4 px cells, peaks over 5 x 5 cells": (GRID, 4.0, 2, False),
    "grid density peaks, 4 px cells, peaks over 3 x 3 cells": (GRID, 4.0, 1, False),
    "grid density peaks, 4 px cells, peaks over 5 x 5 cells, voter merge": (GRID, 4.0, 2, True),
    "leader within 4 px": (LEADER, 4.0, 0, False),
    "leader within 4 px, voter merge": (LEADER, 4.0, 0, True),
    "leader within 6 px, voter merge": (LEADER, 6.0, 0, True),
}


@njit(cache=True)
def grid_peaks(x, y, needed, cell, suppress):
    """Grid density peaks of one group's clicks (module docstring): their x and y."""
    n = len(x)
    low_x, low_y = x.min(), y.min()
    stride = np.int64((y.max() - low_y) / cell) + 2 * suppress + 3
    key = np.empty(n, np.int64)
    for i in range(n):
        key[i] = ((np.int64((x[i] - low_x) / cell) + suppress + 1) * stride
                  + np.int64((y[i] - low_y) / cell) + suppress + 1)
    order = np.argsort(key)
    cells = np.empty(n, np.int64)
    count = np.zeros(n, np.int64)
    sum_x, sum_y = np.zeros(n), np.zeros(n)
    m = -1
    for r in range(n):
        i = order[r]
        if m < 0 or key[i] != cells[m]:
            m += 1
            cells[m] = key[i]
        count[m] += 1
        sum_x[m] += x[i]
        sum_y[m] += y[i]
    m += 1
    cells = cells[:m]
    density = np.zeros(m, np.int64)
    block_x, block_y = np.zeros(m), np.zeros(m)
    for c in range(m):
        for dx in range(-1, 2):
            for dy in range(-1, 2):
                j = np.searchsorted(cells, cells[c] + dx * stride + dy)
                if j < m and cells[j] == cells[c] + dx * stride + dy:
                    density[c] += count[j]
                    block_x[c] += sum_x[j]
                    block_y[c] += sum_y[j]
    px, py = np.empty(m), np.empty(m)
    n_points = 0
    for c in range(m):
        if density[c] < needed:
            continue
        peak = True
        for dx in range(-suppress, suppress + 1):
            for dy in range(-suppress, suppress + 1):
                j = np.searchsorted(cells, cells[c] + dx * stride + dy)
                if (dx or dy) and j < m and cells[j] == cells[c] + dx * stride + dy:
                    peak &= density[j] < density[c] or (density[j] == density[c] and j > c)
        if peak:
            px[n_points], py[n_points] = block_x[c] / density[c], block_y[c] / density[c]
            n_points += 1
    return px[:n_points], py[:n_points]


@njit(cache=True)
def leaders(x, y, radius):
    """Leader candidates of one group's clicks sorted by x (module docstring): their x and y."""
    n = len(x)
    sum_x, sum_y, count = np.empty(n), np.empty(n), np.empty(n, np.int64)
    active = np.empty(n, np.int64)
    n_active, m = 0, 0
    for i in range(n):
        best, nearest = -1, radius * radius
        k = 0
        while k < n_active:
            c = active[k]
            if sum_x[c] / count[c] < x[i] - radius:  # means only grow to the right: never again within reach
                n_active -= 1
                active[k] = active[n_active]
                continue
            squared = (x[i] - sum_x[c] / count[c]) ** 2 + (y[i] - sum_y[c] / count[c]) ** 2
            if squared <= nearest:
                best, nearest = c, squared
            k += 1
        if best < 0:
            sum_x[m], sum_y[m], count[m] = x[i], y[i], 1
            active[n_active] = m
            n_active += 1
            m += 1
        else:
            sum_x[best] += x[i]
            sum_y[best] += y[i]
            count[best] += 1
    return sum_x[:m] / count[:m], sum_y[:m] / count[:m]


@njit(cache=True)
def voter_merge(px, py, label, volunteer, n_volunteers, votes, distance):
    """Labels after the voter merge (module docstring), greedily by votes."""
    m, n = len(px), len(label)
    by_votes = np.argsort(-votes, kind="mergesort")
    alive = votes > 0
    owner = np.arange(m)
    stamp = np.full(n_volunteers, -1, np.int64)
    start = np.zeros(m + 1, np.int64)
    for i in range(n):
        if label[i] >= 0:
            start[label[i] + 1] += 1
    start = np.cumsum(start)
    slot = start[:m].copy()
    members = np.empty(start[m], np.int64)
    for i in range(n):
        if label[i] >= 0:
            members[slot[label[i]]] = i
            slot[label[i]] += 1
    for a in range(m):
        p = by_votes[a]
        if not alive[p]:
            continue
        for k in range(start[p], start[p + 1]):
            stamp[volunteer[members[k]]] = p
        for b in range(a + 1, m):
            q = by_votes[b]
            if not alive[q] or (px[p] - px[q]) ** 2 + (py[p] - py[q]) ** 2 > distance * distance:
                continue
            shared = 0
            for k in range(start[q], start[q + 1]):
                shared += stamp[volunteer[members[k]]] == p
            if shared <= 1:
                alive[q] = False
                owner[q] = p
                for k in range(start[q], start[q + 1]):
                    stamp[volunteer[members[k]]] = p
    merged = np.full(n, -1, np.int64)
    for i in range(n):
        if label[i] >= 0:
            merged[i] = owner[label[i]]
    return merged


@njit(cache=True)
def _votes(label, n_points):
    votes = np.zeros(n_points, np.int64)
    for i in range(len(label)):
        if label[i] >= 0:
            votes[label[i]] += 1
    return votes


@njit(cache=True)
def explored_consensus(group_starts, x, y, volunteer, needed, distance, link_distance, refine, merge_distance,
                       finder, size, suppress, merge_voters):
    """Points (group, x, y) of every group by a candidate finder and the method's later steps (module docstring)."""
    n = len(x)
    point_group, point_x, point_y = np.empty(n, np.int64), np.empty(n), np.empty(n)
    n_points = 0
    local = np.full(volunteer.max() + 1 if n else 0, -1, np.int64)
    for g in range(len(group_starts) - 1):
        s, e = group_starts[g], group_starts[g + 1]
        if s == e:
            continue
        gx, gy = x[s:e], y[s:e]
        gv, n_volunteers = kernels.group_volunteers(volunteer, s, e, local)
        px, py = grid_peaks(gx, gy, needed[g], size, suppress) if finder == GRID else leaders(gx, gy, size)
        linked = kernels.link_group(gx, gy, gv, n_volunteers, px, py, link_distance)[0]
        votes = _votes(linked, len(px))
        px, py = kernels._medians(gx, linked, len(px)), kernels._medians(gy, linked, len(py))
        if merge_voters:
            linked = voter_merge(px, py, linked, gv, n_volunteers, votes, distance)
            votes = _votes(linked, len(px))
            px, py = kernels._medians(gx, linked, len(px)), kernels._medians(gy, linked, len(py))
        keep = votes >= needed[g]
        if merge_distance > 0:
            kernels._drop_duplicates(px, py, votes, keep, merge_distance)
        px, py = px[keep], py[keep]
        iteration = 0
        while True:  # the method's linking rounds, as in `point_consensus`
            order = kernels._by_position(px, py)
            px, py = px[order], py[order]
            linked = kernels.link_group(gx, gy, gv, n_volunteers, px, py, link_distance)[0]
            keep = _votes(linked, len(px)) >= needed[g]
            if iteration < refine:
                px = kernels._medians(gx, linked, len(px))[keep]
                py = kernels._medians(gy, linked, len(py))[keep]
                iteration += 1
                continue
            if keep.all():
                break
            px, py = px[keep], py[keep]
        point_group[n_points:n_points + len(px)] = g
        point_x[n_points:n_points + len(px)], point_y[n_points:n_points + len(px)] = px, py
        n_points += len(px)
    return point_group[:n_points], point_x[:n_points], point_y[:n_points]


def fastest(function, repeats: int = 3) -> tuple[float, tuple]:
    """CPU seconds of the fastest of ``repeats`` warm calls, and the result."""
    function()
    times = []
    for _ in range(repeats):
        started = time.process_time()
        result = function()
        times.append(time.process_time() - started)
    return min(times), result


def main() -> None:
    load_start = os.getloadavg()
    kernels.load()
    method = PointClustering()
    arguments = (float(method.distance), float(method.link_distance), int(method.refine), float(method.merge_distance))
    rows = []
    for name in POPULATIONS:
        folder = WORK / f"tune-{name}-150"
        if not (folder / "marks.parquet").exists():
            raise SystemExit(f"{folder} is missing: run bench/bench_points.py first")
        marks, classifications = (pd.read_parquet(folder / f"{table}.parquet") for table in ("marks", "classifications"))
        truth = pd.read_parquet(folder / "truth.parquet")
        prep = prepare(marks, classifications, points=True)
        clicks = prep.marks
        group_starts = np.searchsorted(clicks.group, np.arange(len(prep.groups) + 1))
        common = (group_starts, clicks.cx, clicks.cy, prep.volunteer, method.needed_votes(prep.n_seen_group))
        runs = {"seeded clustering (the point method today)":
                fastest(lambda: kernels.point_consensus(*common, *arguments, clicks.row,
                                                        len(prep.mark_ids))[:3])}
        for label, (finder, size, suppress, merge_voters) in VARIANTS.items():
            runs[label] = fastest(lambda: explored_consensus(*common, *arguments, finder, size, suppress, merge_voters))
        subjects = prep.subject_ids[prep.groups["subject"].to_numpy()]
        for label, (seconds, (group, x, y)) in runs.items():
            scores = score(pd.DataFrame({"subject_id": subjects[group], "x": x, "y": y}), truth, 6.0)
            rows.append(f"| {folder.name} | {label} | {scores['precision']:.4f} | {scores['recall']:.4f} | "
                        f"**{scores['f1']:.4f}** | {seconds * 1000:.1f} |")
            print(rows[-1], flush=True)
    load_end = os.getloadavg()
    lines = [
        "# Candidate points without the neighbour pairs: an exploration (not the point method)",
        "",
        f"Made by `python bench/explore_point_candidates.py` on {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC; "
        f"{machine()}. Load average {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f} at the start, "
        f"{load_end[0]:.2f} {load_end[1]:.2f} {load_end[2]:.2f} at the end. What each variant is: the script's "
        "docstring. Tuning projects of bench_points (seed 101, 150 subjects each); scores one-to-one within 6 px; "
        "CPU ms of the compiled consensus alone (no preparation, no tables), warm, the fastest of 3. The prototypes "
        "are unoptimized.",
        "",
        "| data | candidates | precision | recall | F1 | CPU ms |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
        *rows,
        "",
    ]
    RESULTS.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
