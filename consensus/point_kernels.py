"""Compiled kernels of the ``point`` method: clustering, medians, quorum and linking, one group at a time.

The point method's steps (`consensus.points`) never look beyond one group
(subject, task, tool, frame), and a group holds a few hundred clicks. Done with
whole-table numpy passes, every step pays a sort or a scatter over all the
clicks of the project and a Python-level round loop for the worst group; done
group by group in compiled code (numba), the clicks of a group stay in cache and
every loop runs as long as that group needs. The algorithm is the one the
`consensus.points` docstring describes, step for step:

- neighbours: clicks of different volunteers at most ``distance`` apart, found
  by a sweep over the group's clicks sorted by x (`prepare` sorts them so), with
  closeness ``round((1 - d / distance) * IOU_STEPS)`` as in
  `consensus.clustering`;
- the seeded rounds of `consensus.clustering.cluster_neighbours`: support (distinct
  volunteers among the remaining neighbours), strength (the summed closeness of
  each volunteer's best one), seeds that outrank every remaining neighbour,
  each claiming its best remaining neighbour of every volunteer, a click
  claimed twice joining the higher-ranked seed;
- medians of x and y, the quorum, and linking rounds in which each volunteer's
  clicks are matched to the points within ``link_distance`` by a maximum-weight
  matching of the score 1 - d / (2 ``link_distance``) (`consensus.matching`):
  pieces where a click or a point has no alternative take their best edge, the
  rest go to an exact Hungarian solver.

Compiled once per machine and cached on disk (``cache=True``); a fresh process
loads the cached machine code on its first call.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .clustering import IOU_STEPS


@njit(cache=True)
def _outranks(a, b, support, strength):
    """Whether click ``a`` ranks above click ``b``: more support, then more strength, then earlier in content order."""
    if support[a] != support[b]:
        return support[a] > support[b]
    if strength[a] != strength[b]:
        return strength[a] > strength[b]
    return a < b


@njit(cache=True)
def _neighbours(x, y, volunteer, distance):
    """Neighbour lists (CSR: offsets, click, closeness) of clicks sorted by x; each list by volunteer, best first."""
    n = len(x)
    reach = distance * distance  # squares compared: a square root only for the pairs kept
    degree = np.zeros(n, np.int64)
    for i in range(n):
        for j in range(i + 1, n):
            dx = x[j] - x[i]
            if dx > distance:
                break
            dy = y[j] - y[i]
            if volunteer[j] != volunteer[i] and dx * dx + dy * dy <= reach:
                degree[i] += 1
                degree[j] += 1
    offsets = np.zeros(n + 1, np.int64)
    offsets[1:] = np.cumsum(degree)
    other = np.empty(offsets[n], np.int64)
    weight = np.empty(offsets[n], np.int64)
    filled = offsets[:n].copy()
    for i in range(n):
        for j in range(i + 1, n):
            dx = x[j] - x[i]
            if dx > distance:
                break
            dy = y[j] - y[i]
            if volunteer[j] != volunteer[i] and dx * dx + dy * dy <= reach:
                w = np.int64(np.rint((1.0 - np.sqrt(dx * dx + dy * dy) / distance) * IOU_STEPS))
                other[filled[i]], weight[filled[i]] = j, w
                other[filled[j]], weight[filled[j]] = i, w
                filled[i] += 1
                filled[j] += 1
    # Insertion sort of each short list by (volunteer, closeness descending, click).
    for i in range(n):
        for k in range(offsets[i] + 1, offsets[i + 1]):
            o, w = other[k], weight[k]
            m = k - 1
            while m >= offsets[i]:
                po, pw = other[m], weight[m]
                if volunteer[po] < volunteer[o] or (volunteer[po] == volunteer[o] and (pw > w or (pw == w and po < o))):
                    break
                other[m + 1], weight[m + 1] = po, pw
                m -= 1
            other[m + 1], weight[m + 1] = o, w
    return offsets, other, weight


@njit(cache=True)
def cluster_group(x, y, volunteer, distance):
    """Cluster label (0, 1, ... in the order formed) of each click of one group sorted by x (module docstring)."""
    n = len(x)
    offsets, other, weight = _neighbours(x, y, volunteer, distance)
    label = np.full(n, -1, np.int64)
    active = np.ones(n, np.bool_)
    support = np.zeros(n, np.int64)
    strength = np.zeros(n, np.int64)
    claimant = np.full(n, -1, np.int64)
    seeds = np.empty(n, np.int64)
    next_label = 0
    remaining = n
    while remaining:
        for m in range(n):
            if active[m]:
                count, total, last = 0, 0, -1
                for k in range(offsets[m], offsets[m + 1]):
                    o = other[k]
                    if active[o] and volunteer[o] != last:  # the first remaining of each volunteer is its best
                        count += 1
                        total += weight[k]
                        last = volunteer[o]
                support[m], strength[m] = count, total
        for m in range(n):
            if active[m] and support[m] == 0:
                label[m] = next_label
                next_label += 1
                active[m] = False
                remaining -= 1
        n_seeds = 0
        for m in range(n):
            if active[m]:
                seed = True
                for k in range(offsets[m], offsets[m + 1]):
                    if active[other[k]] and _outranks(other[k], m, support, strength):
                        seed = False
                        break
                if seed:
                    seeds[n_seeds] = m
                    n_seeds += 1
        for s in range(n_seeds):
            m = seeds[s]
            label[m] = next_label
            next_label += 1
            last = -1
            for k in range(offsets[m], offsets[m + 1]):
                o = other[k]
                if active[o] and volunteer[o] != last:
                    last = volunteer[o]
                    if claimant[o] < 0 or _outranks(m, claimant[o], support, strength):
                        claimant[o] = m
        for s in range(n_seeds):
            active[seeds[s]] = False
        remaining -= n_seeds
        for m in range(n):
            if claimant[m] >= 0:
                label[m] = label[claimant[m]]
                active[m] = False
                claimant[m] = -1
                remaining -= 1
    return label, next_label


@njit(cache=True)
def _medians(values, label, n_labels):
    """Median of ``values`` per label 0..n_labels-1 (NaN for a label without values; -1 labels ignored)."""
    count = np.zeros(n_labels + 1, np.int64)
    for i in range(len(label)):
        if label[i] >= 0:
            count[label[i] + 1] += 1
    start = np.cumsum(count)
    slot = start[:n_labels].copy()
    gathered = np.empty(start[n_labels], values.dtype)
    for i in range(len(label)):
        if label[i] >= 0:
            gathered[slot[label[i]]] = values[i]
            slot[label[i]] += 1
    median = np.full(n_labels, np.nan)
    for c in range(n_labels):
        if start[c + 1] > start[c]:
            median[c] = np.median(gathered[start[c]:start[c + 1]])
    return median


@njit(cache=True)
def _hungarian(cost):
    """Column of each row minimising the summed ``cost`` (rows <= columns), the shortest-augmenting-path method."""
    n, m = cost.shape
    u = np.zeros(n + 1)
    v = np.zeros(m + 1)
    row_of = np.zeros(m + 1, np.int64)  # 1-based row matched to each column, 0 for none
    way = np.zeros(m + 1, np.int64)
    for i in range(1, n + 1):
        row_of[0] = i
        j0 = 0
        min_value = np.full(m + 1, np.inf)
        used = np.zeros(m + 1, np.bool_)
        while True:
            used[j0] = True
            i0, delta, j1 = row_of[j0], np.inf, 0
            for j in range(1, m + 1):
                if not used[j]:
                    current = cost[i0 - 1, j - 1] - u[i0] - v[j]
                    if current < min_value[j]:
                        min_value[j], way[j] = current, j0
                    if min_value[j] < delta:
                        delta, j1 = min_value[j], j
            for j in range(m + 1):
                if used[j]:
                    u[row_of[j]] += delta
                    v[j] -= delta
                else:
                    min_value[j] -= delta
            j0 = j1
            if row_of[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            row_of[j0] = row_of[j1]
            j0 = j1
    column = np.full(n, -1, np.int64)
    for j in range(1, m + 1):
        if row_of[j]:
            column[row_of[j] - 1] = j - 1
    return column


@njit(cache=True)
def _root(parent, node):
    while parent[node] != node:
        parent[node] = parent[parent[node]]
        node = parent[node]
    return node


@njit(cache=True)
def link_group(x, y, volunteer, px, py, link_distance):
    """Link one group's clicks to its points, one click per volunteer per point (module docstring).

    Returns per click the linked point (-1 for none) and the nearest point within ``link_distance`` (-1 for none).
    """
    n, n_points = len(x), len(px)
    best = np.full(n, -1, np.int64)
    linked = np.full(n, -1, np.int64)
    # Edges (CSR by click): every point within link_distance, scored 1 - d / (2 link_distance).
    reach = link_distance * link_distance  # squares compared: a square root only for the edges kept
    degree = np.zeros(n + 1, np.int64)
    nearest = np.full(n, np.inf)
    for i in range(n):
        for p in range(n_points):
            dx = x[i] - px[p]
            if dx > link_distance or dx < -link_distance:
                continue
            dy = y[i] - py[p]
            squared = dx * dx + dy * dy
            if squared <= reach:
                degree[i + 1] += 1
                if squared < nearest[i]:
                    nearest[i], best[i] = squared, p
    offsets = np.cumsum(degree)
    target = np.empty(offsets[n], np.int64)
    score = np.empty(offsets[n])
    for i in range(n):
        k = offsets[i]
        for p in range(n_points):
            dx = x[i] - px[p]
            if dx > link_distance or dx < -link_distance:
                continue
            dy = y[i] - py[p]
            squared = dx * dx + dy * dy
            if squared <= reach:
                target[k], score[k] = p, 1.0 - np.sqrt(squared) / (2.0 * link_distance)
                k += 1
    # One problem per volunteer: that volunteer's clicks against the points, split into connected pieces.
    order = np.argsort(volunteer, kind="mergesort")
    parent = np.arange(n + n_points)  # clicks 0..n-1, points n..n+n_points-1
    piece = np.full(n + n_points, -1, np.int64)
    clicks = np.empty(n, np.int64)
    points = np.empty(n_points, np.int64)
    begin = 0
    while begin < n:
        end = begin
        while end < n and volunteer[order[end]] == volunteer[order[begin]]:
            end += 1
        for r in range(begin, end):
            i = order[r]
            for k in range(offsets[i], offsets[i + 1]):
                a, b = _root(parent, i), _root(parent, n + target[k])
                if a != b:
                    parent[a] = b
        # Each piece in turn: its clicks (in content order) and points.
        for r in range(begin, end):
            i = order[r]
            if offsets[i + 1] == offsets[i] or piece[i] >= 0:
                continue
            root = _root(parent, i)
            n_clicks = 0
            for q in range(r, end):
                c = order[q]
                if offsets[c + 1] > offsets[c] and _root(parent, c) == root:
                    clicks[n_clicks] = c
                    n_clicks += 1
                    piece[c] = 0
            n_piece_points = 0
            for q in range(n_clicks):
                c = clicks[q]
                for k in range(offsets[c], offsets[c + 1]):
                    p = target[k]
                    if piece[n + p] < 0:
                        piece[n + p] = n_piece_points
                        points[n_piece_points] = p
                        n_piece_points += 1
            if n_clicks == 1:  # the click takes its best point (its nearest)
                c = clicks[0]
                top = offsets[c]
                for k in range(offsets[c], offsets[c + 1]):
                    if score[k] > score[top]:
                        top = k
                linked[c] = target[top]
            elif n_piece_points == 1:  # the point takes its best click
                top_click, top_score = -1, -1.0
                for q in range(n_clicks):
                    c = clicks[q]
                    if score[offsets[c]] > top_score:
                        top_click, top_score = c, score[offsets[c]]
                linked[top_click] = points[0]
            else:
                # Exact maximum-weight matching: the Hungarian method on the piece's costs (-score; 0 where no edge).
                transpose = n_clicks > n_piece_points
                rows, columns = (n_piece_points, n_clicks) if transpose else (n_clicks, n_piece_points)
                cost = np.zeros((rows, columns))
                for q in range(n_clicks):
                    c = clicks[q]
                    for k in range(offsets[c], offsets[c + 1]):
                        if transpose:
                            cost[piece[n + target[k]], q] = -score[k]
                        else:
                            cost[q, piece[n + target[k]]] = -score[k]
                column = _hungarian(cost)
                for row in range(rows):
                    if column[row] >= 0 and cost[row, column[row]] < 0:
                        if transpose:
                            linked[clicks[column[row]]] = points[row]
                        else:
                            linked[clicks[row]] = points[column[row]]
            for q in range(n_piece_points):
                piece[n + points[q]] = -1
        for r in range(begin, end):  # reset this volunteer's union-find for the next one
            i = order[r]
            parent[i] = i
            piece[i] = -1
            for k in range(offsets[i], offsets[i + 1]):
                parent[n + target[k]] = n + target[k]
        begin = end
    return linked, best


@njit(cache=True)
def _by_position(px, py):
    """Order of points by y, then x, then their current order (the order of `consensus.base.box_order`)."""
    order = np.argsort(px, kind="mergesort")
    return order[np.argsort(py[order], kind="mergesort")]


@njit(cache=True)
def point_consensus(group_starts, x, y, volunteer, needed, distance, link_distance, refine):
    """The point method on every group of clicks sorted by group then x (module docstring).

    ``group_starts`` are the first click of each group and the end; ``needed``
    the votes each group's points need (the quorum). Returns the points in
    (group, y, x) order (group, x, y, votes, spread) and per click the linked
    point and the nearest point within ``link_distance`` (-1 for none).
    """
    n = len(x)
    point_group = np.empty(n, np.int64)
    point_x = np.empty(n)
    point_y = np.empty(n)
    point_votes = np.empty(n, np.int64)
    point_sigma = np.empty(n)
    linked = np.full(n, -1, np.int64)
    best = np.full(n, -1, np.int64)
    n_points = 0
    for g in range(len(group_starts) - 1):
        s, e = group_starts[g], group_starts[g + 1]
        if s == e:
            continue
        gx, gy, gv = x[s:e], y[s:e], volunteer[s:e]
        label, n_labels = cluster_group(gx, gy, gv, distance)
        votes = np.zeros(n_labels, np.int64)
        for i in range(e - s):
            votes[label[i]] += 1
        keep = votes >= needed[g]
        px = _medians(gx, label, n_labels)[keep]
        py = _medians(gy, label, n_labels)[keep]
        iteration = 0
        while True:
            order = _by_position(px, py)
            px, py = px[order], py[order]
            group_linked, group_best = link_group(gx, gy, gv, px, py, link_distance)
            votes = np.zeros(len(px), np.int64)
            for i in range(e - s):
                if group_linked[i] >= 0:
                    votes[group_linked[i]] += 1
            keep = votes >= needed[g]
            if iteration < refine:
                px = _medians(gx, group_linked, len(px))[keep]
                py = _medians(gy, group_linked, len(py))[keep]
                iteration += 1
                continue
            if keep.all():
                break
            # Rare: a re-linked point fell below the quorum; drop it and link again.
            px, py = px[keep], py[keep]
        squared = np.zeros(len(px))
        for i in range(e - s):
            p = group_linked[i]
            if p >= 0:
                squared[p] += (gx[i] - px[p]) ** 2 + (gy[i] - py[p]) ** 2
                linked[s + i] = n_points + p
            if group_best[i] >= 0:
                best[s + i] = n_points + group_best[i]
        for p in range(len(px)):
            point_group[n_points + p] = g
            point_x[n_points + p], point_y[n_points + p] = px[p], py[p]
            point_votes[n_points + p] = votes[p]
            point_sigma[n_points + p] = np.sqrt(squared[p] / (2.0 * (votes[p] - 1))) if votes[p] > 1 else np.nan
        n_points += len(px)
    return (point_group[:n_points], point_x[:n_points], point_y[:n_points], point_votes[:n_points],
            point_sigma[:n_points], linked, best)
