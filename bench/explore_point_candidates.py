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

Grid seeding (`grid_seeded_consensus`, #14: no neighbour pairs and one exact linking round fewer) replaces steps
1-3: clicks counted in cells of ``distance`` px (`cell_seeds`: one pass over the clicks sorted by x, a column of
cells at a time), each cell with enough clicks a seed at their mean; optionally each seed moved like a mean shift
to the mean (or, last, the median) of the clicks within a radius, weighed by the distinct volunteers there, the
lighter of two seeds within a few px dropped and those below the quorum too (`shifted_peaks`); every click
assigned to its nearest seed within ``distance``, one click per volunteer per seed, the nearest
(`assign_to_seeds`: no matching); medians, the quorum and `_drop_duplicates`; then the method's linking rounds,
the assignment counting as the first refine round or not.

Scored as bench_points scores (one-to-one within 6 px) on the tuning projects (seed 101, which bench_points
makes; the variants were chosen there) and on the compared projects (seed 7, 1,000 subjects: what
bench/results/points.md compares), with the kernels' CPU time (warm, the fastest of 3). The method's kernels
(`point_consensus`) also write the spreads and the links table's columns, which the prototypes skip. The
prototypes are plain and unoptimized (the voter merge compares every pair of candidates), so their times bound
what a tuned version would take only from above. Notes under '## Reading' in the results file are written by
hand and kept when the script rewrites the tables.

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
#: label -> `grid_seeded_consensus`' seeding arguments: cell px; 0: a seed needs the quorum's clicks in its cell, 1: one
#: click; the assignment counted as a refine round; first move's radius px (0: seeds not moved); moves; the other
#: moves' radius px; the last move to the median; seeds merged within px)
SEEDED = {
    "grid seeds, 12 px cells, quorum per cell, assignment as the refine round":
        (12.0, 0, True, 0.0, 0, 0.0, False, 8.0),
    "grid seeds, 12 px cells, any click seeds, 2 means within 10 px, assignment as the refine round":
        (12.0, 1, True, 10.0, 2, 10.0, False, 8.0),
    "grid seeds, 12 px cells, any click seeds, 3 means within 10 px, assignment as the refine round":
        (12.0, 1, True, 10.0, 3, 10.0, False, 8.0),
    "grid seeds, 12 px cells, any click seeds, a mean then a median within 12 px, assignment as the refine round":
        (12.0, 1, True, 12.0, 2, 12.0, True, 8.0),
    "grid seeds, 12 px cells, any click seeds, a mean then a median within 12 px, seeds merged within 6 px, "
    "assignment as the refine round": (12.0, 1, True, 12.0, 2, 12.0, True, 6.0),
    "grid seeds, 12 px cells, any click seeds, 3 means within 10 px, refine round kept":
        (12.0, 1, False, 10.0, 3, 10.0, False, 8.0),
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
    start, members = _members_by_label(label, m)
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
def _members_by_label(label, n_labels):
    """The clicks of each label 0..n_labels-1 (-1: none), gathered: ``members[start[k]:start[k + 1]]`` are label k's."""
    start = kernels._label_starts(label, n_labels)
    slot = start[:n_labels].copy()
    members = np.empty(start[n_labels], np.int64)
    for i in range(len(label)):
        if label[i] >= 0:
            members[slot[label[i]]] = i
            slot[label[i]] += 1
    return start, members


@njit(cache=True)
def _votes(label, n_points):
    votes = np.zeros(n_points, np.int64)
    for i in range(len(label)):
        if label[i] >= 0:
            votes[label[i]] += 1
    return votes


@njit(cache=True)
def _linking_rounds(gx, gy, gv, n_volunteers, px, py, link_distance, needed, rounds):
    """The method's linking rounds, as in `point_consensus`: the clicks linked to the points ``rounds`` times, each
    point moved to its clicks' median and kept if it has ``needed`` votes, then linked until every point keeps."""
    iteration = 0
    while True:
        order = kernels._by_position(px, py)
        px, py = px[order], py[order]
        linked = kernels.link_group(gx, gy, gv, n_volunteers, px, py, link_distance)[0]
        keep = _votes(linked, len(px)) >= needed
        if iteration < rounds:
            px, py = kernels._medians_xy(gx, gy, linked, len(px))
            px, py = px[keep], py[keep]
            iteration += 1
            continue
        if keep.all():
            return px, py
        px, py = px[keep], py[keep]


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
        px, py = kernels._medians_xy(gx, gy, linked, len(px))
        if merge_voters:
            linked = voter_merge(px, py, linked, gv, n_volunteers, votes, distance)
            votes = _votes(linked, len(px))
            px, py = kernels._medians_xy(gx, gy, linked, len(px))
        keep = votes >= needed[g]
        if merge_distance > 0:
            kernels._drop_duplicates(px, py, votes, keep, merge_distance)
        px, py = px[keep], py[keep]
        px, py = _linking_rounds(gx, gy, gv, n_volunteers, px, py, link_distance, needed[g], refine)
        point_group[n_points:n_points + len(px)] = g
        point_x[n_points:n_points + len(px)], point_y[n_points:n_points + len(px)] = px, py
        n_points += len(px)
    return point_group[:n_points], point_x[:n_points], point_y[:n_points]


@njit(cache=True)
def cell_seeds(x, y, cell, least):
    """Seeds of one group's clicks sorted by x (module docstring, grid seeding): the mean of every cell of ``cell``
    px holding at least ``least`` clicks, seeds in cell-column order, and where each column's seeds start.

    The clicks come sorted by x, so each column of cells is a run of clicks: binned into a row array one column
    at a time (only the rows touched are reset), never a whole grid per group.
    """
    n = len(x)
    low_x, low_y = x[0], y.min()
    n_rows = np.int64((y.max() - low_y) / cell) + 1
    n_columns = np.int64((x[n - 1] - low_x) / cell) + 1
    count = np.zeros(n_rows, np.int64)
    sum_x, sum_y = np.zeros(n_rows), np.zeros(n_rows)
    rows = np.empty(n, np.int64)
    px, py = np.empty(n), np.empty(n)
    column_start = np.zeros(n_columns + 1, np.int64)
    n_seeds = 0
    i = 0
    while i < n:
        column = np.int64((x[i] - low_x) / cell)
        j = i
        while j < n and np.int64((x[j] - low_x) / cell) == column:
            r = np.int64((y[j] - low_y) / cell)
            count[r] += 1
            sum_x[r] += x[j]
            sum_y[r] += y[j]
            rows[j] = r
            j += 1
        for k in range(i, j):  # each touched row once: emitted and reset at its first click
            r = rows[k]
            if count[r] > 0:
                if count[r] >= least:
                    px[n_seeds], py[n_seeds] = sum_x[r] / count[r], sum_y[r] / count[r]
                    n_seeds += 1
                count[r], sum_x[r], sum_y[r] = 0, 0.0, 0.0
        column_start[column + 1] = n_seeds
        i = j
    for c in range(n_columns):  # columns without seeds start where the previous ones end
        column_start[c + 1] = max(column_start[c + 1], column_start[c])
    return px[:n_seeds], py[:n_seeds], column_start, low_x


@njit(cache=True)
def assign_to_seeds(x, y, volunteer, n_volunteers, px, py, column_start, low_x, cell, distance):
    """Each click's nearest seed within ``distance`` (-1 for none), then one click per volunteer per seed: of a
    volunteer's clicks on one seed the nearest keeps it (the first on a tie), the others none (module docstring)."""
    n, n_seeds = len(x), len(px)
    reach = distance * distance
    span = np.int64(np.ceil(distance / cell))  # columns of cells within reach either side
    n_columns = len(column_start) - 1
    label = np.full(n, -1, np.int64)
    squared = np.empty(n)
    for i in range(n):
        column = np.int64((x[i] - low_x) / cell)
        nearest = reach
        for m in range(column_start[max(column - span, 0)], column_start[min(column + span + 1, n_columns)]):
            d = (x[i] - px[m]) ** 2 + (y[i] - py[m]) ** 2
            if d <= nearest and (label[i] < 0 or d < nearest):
                label[i], nearest = m, d
        squared[i] = nearest
    # One vote per volunteer per seed: clicks gathered by seed, a stamp per volunteer.
    start, members = _members_by_label(label, n_seeds)
    stamp = np.full(n_volunteers, -1, np.int64)
    holder = np.empty(n_volunteers, np.int64)
    for m in range(n_seeds):
        for k in range(start[m], start[m + 1]):
            i = members[k]
            v = volunteer[i]
            if stamp[v] != m:
                stamp[v], holder[v] = m, i
            elif squared[i] < squared[holder[v]]:
                label[holder[v]] = -1
                holder[v] = i
            else:
                label[i] = -1
    return label


@njit(cache=True)
def shifted_peaks(x, y, volunteer, n_volunteers, px, py, radius, shifts, fine_radius, median_last, needed,
                  seed_merge):
    """Seeds moved ``shifts`` times to the mean of the clicks (sorted by x) within ``radius`` px (the first move)
    or ``fine_radius`` px (the others), the last move to their median when ``median_last``; each seed weighed by the
    distinct volunteers in its last window. Of seeds closer than ``seed_merge`` the heavier kept (`_drop_duplicates`),
    and those with at least ``needed`` volunteers: their x and y, by x (module docstring, grid seeding)."""
    n_seeds = len(px)
    qx, qy = px.copy(), py.copy()
    weight = np.zeros(n_seeds, np.int64)
    stamp = np.full(n_volunteers, -1, np.int64)
    window_x, window_y = np.empty(len(x)), np.empty(len(x))
    for m in range(n_seeds):
        for shift in range(shifts):
            last = shift == shifts - 1
            radius_now = radius if shift == 0 else fine_radius
            reach = radius_now * radius_now
            total = 0
            for i in range(np.searchsorted(x, qx[m] - radius_now), len(x)):
                if x[i] > qx[m] + radius_now:
                    break
                if (x[i] - qx[m]) ** 2 + (y[i] - qy[m]) ** 2 <= reach:
                    window_x[total], window_y[total] = x[i], y[i]
                    total += 1
                    if last and stamp[volunteer[i]] != m:
                        stamp[volunteer[i]] = m
                        weight[m] += 1
            if total == 0:
                break
            if last and median_last:
                qx[m], qy[m] = _median_of(window_x[:total]), _median_of(window_y[:total])
            else:
                qx[m], qy[m] = window_x[:total].mean(), window_y[:total].mean()
    keep = weight >= needed
    kernels._drop_duplicates(qx, qy, weight, keep, seed_merge)
    qx, qy = qx[keep], qy[keep]
    order = np.argsort(qx, kind="mergesort")
    return qx[order], qy[order]


@njit(cache=True)
def _median_of(values):
    """Median of a few values, sorted in place (insertion sort)."""
    for k in range(1, len(values)):
        value = values[k]
        m = k - 1
        while m >= 0 and values[m] > value:
            values[m + 1] = values[m]
            m -= 1
        values[m + 1] = value
    n = len(values)
    return (values[(n - 1) // 2] + values[n // 2]) / 2.0


@njit(cache=True)
def seed_columns(px, low_x, cell, n_columns):
    """Where the seeds (sorted by x) of each column of cells of ``cell`` px from ``low_x`` start, and the end."""
    count = np.zeros(n_columns + 1, np.int64)
    for m in range(len(px)):
        count[min(max(np.int64((px[m] - low_x) / cell), 0), n_columns - 1) + 1] += 1
    return np.cumsum(count)


@njit(cache=True)
def grid_seeded_consensus(group_starts, x, y, volunteer, needed, distance, link_distance, refine, merge_distance,
                          cell, least_rule, seed_round_refines, shift_radius, shifts, fine_radius, median_last,
                          seed_merge):
    """Points (group, x, y) of every group by grid seeding (module docstring): seeds of `cell_seeds` in cells of
    ``cell`` px (at least ``needed`` clicks in a cell when ``least_rule`` is 0, at least one when 1), moved by
    `shifted_peaks` when ``shift_radius`` > 0 (``shifts``, ``fine_radius``, ``median_last``, ``seed_merge``: its
    arguments), clicks assigned by `assign_to_seeds`, medians, the quorum, `_drop_duplicates`, then the method's
    linking rounds, ``refine`` of them re-taking the medians, less one when ``seed_round_refines`` (the assignment
    counted as the first)."""
    n = len(x)
    point_group, point_x, point_y = np.empty(n, np.int64), np.empty(n), np.empty(n)
    n_points = 0
    local = np.full(volunteer.max() + 1 if n else 0, -1, np.int64)
    rounds = refine - 1 if seed_round_refines and refine > 0 else refine
    for g in range(len(group_starts) - 1):
        s, e = group_starts[g], group_starts[g + 1]
        if s == e:
            continue
        gx, gy = x[s:e], y[s:e]
        gv, n_volunteers = kernels.group_volunteers(volunteer, s, e, local)
        px, py, column_start, low_x = cell_seeds(gx, gy, cell, needed[g] if least_rule == 0 else 1)
        if shift_radius > 0:
            px, py = shifted_peaks(gx, gy, gv, n_volunteers, px, py, shift_radius, shifts, fine_radius, median_last,
                                   needed[g], seed_merge)
            column_start = seed_columns(px, low_x, cell, len(column_start) - 1)
        label = assign_to_seeds(gx, gy, gv, n_volunteers, px, py, column_start, low_x, cell, distance)
        votes = _votes(label, len(px))
        keep = votes >= needed[g]
        px, py = kernels._medians_xy(gx, gy, label, len(px))
        if merge_distance > 0:
            kernels._drop_duplicates(px, py, votes, keep, merge_distance)
        px, py = px[keep], py[keep]
        px, py = _linking_rounds(gx, gy, gv, n_volunteers, px, py, link_distance, needed[g], rounds)
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
    for folder in [WORK / f"tune-{name}-150" for name in POPULATIONS] + [WORK / f"{name}-1000" for name in POPULATIONS]:
        if not (folder / "marks.parquet").exists():
            raise SystemExit(f"{folder} is missing: run bench/bench_points.py first")
        marks, classifications = (pd.read_parquet(folder / f"{table}.parquet")
                                  for table in ("marks", "classifications"))
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
        for label, seeding in SEEDED.items():
            runs[label] = fastest(lambda: grid_seeded_consensus(*common, *arguments, *seeding))
        subjects = prep.subject_ids[prep.groups["subject"].to_numpy()]
        today = runs["seeded clustering (the point method today)"][0]
        for label, (seconds, (group, x, y)) in runs.items():
            scores = score(pd.DataFrame({"subject_id": subjects[group], "x": x, "y": y}), truth, 6.0)
            rows.append(f"| {folder.name} | {label} | {scores['precision']:.4f} | {scores['recall']:.4f} | "
                        f"**{scores['f1']:.4f}** | {seconds * 1000:.1f} | {seconds / today:.2f} |")
            print(rows[-1], flush=True)
    load_end = os.getloadavg()
    notes = RESULTS.read_text().partition("\n## Reading")[1:] if RESULTS.exists() else ("", "")
    lines = [
        "# Candidate points without the neighbour pairs: an exploration (not the point method)",
        "",
        f"Made by `python bench/explore_point_candidates.py` on {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC; "
        f"{machine()}. Load average {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f} at the start, "
        f"{load_end[0]:.2f} {load_end[1]:.2f} {load_end[2]:.2f} at the end. What each variant is: the script's "
        "docstring. Tuning projects of bench_points (seed 101, 150 subjects each; the variants were chosen there) "
        "and the compared projects (seed 7, 1,000 subjects each); scores one-to-one within 6 px; CPU ms of the "
        "compiled consensus alone (no preparation, no tables), warm, the fastest of 3, and as a share of the "
        "method's (its kernels also write the spreads and the links columns, which the prototypes skip). The "
        "prototypes are unoptimized.",
        "",
        "| data | candidates | precision | recall | F1 | CPU ms | x method |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
        *rows,
        "",
    ]
    RESULTS.write_text("\n".join(lines) + "".join(notes))
    print("\n".join(lines))

if __name__ == "__main__":
    main()
