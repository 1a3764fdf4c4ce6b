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
- medians of x and y, the quorum, of two kept points closer than
  ``merge_distance`` the one with fewer votes dropped, and linking rounds in which each volunteer's
  clicks are matched to the points within ``link_distance`` by a maximum-weight
  matching of the score 1 - d / (2 ``link_distance``) (`consensus.matching`):
  pieces where a click or a point has no alternative take their best edge, the
  rest go to an exact Hungarian solver.

On the bench projects they give the very tables the numpy passes gave
(bench/results/points.md); tests/consensus/test_point_kernels.py checks them
against `consensus.clustering.cluster_neighbours` and scipy's
``linear_sum_assignment``.

Compiled once per machine and cached on disk (``cache=True``, in
``__pycache__`` or numba's user cache when that is read-only). The machine code
is loaded (or, on a machine's first use, compiled: about 30 s on 2 cores) at the
first call, so a project without points never pays for it; `load` does it ahead.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .clustering import IOU_STEPS
from .distance import read_only


@njit(cache=True)
def _precedes(a, b, x, y, volunteer, mark_id, row):
    """Whether click ``a`` sorts before click ``b``: by x, then y, volunteer and mark id (the tiebreak of `prepare`);
    ``row`` is each click's row of the table ``mark_id`` is a column of (the ids are rarely needed: not gathered)."""
    if x[a] != x[b]:
        return x[a] < x[b]
    if y[a] != y[b]:
        return y[a] < y[b]
    if volunteer[a] != volunteer[b]:
        return volunteer[a] < volunteer[b]
    return mark_id[row[a]] < mark_id[row[b]]


#: A bucket of `sort_clicks` holding more clicks than this sends its group to a comparison sort.
CROWDED_BUCKET = 32


@njit(cache=True)
def sort_clicks(group, n_groups, keep, x, y, volunteer, mark_id):
    """The clicks ``keep`` ordered by group, x, y, volunteer and mark id, as ``numpy.lexsort`` orders them, and their
    group, x, y and volunteer in that order.

    A counting sort by group that carries x, y and volunteer along (the mark id, the last tiebreak and rarely
    needed, is read from the table then rather than copied for every click), then each group's clicks by a
    bucket sort on x (as many buckets as clicks over the group's span of x) finished by an insertion sort on
    the whole key:
    linear in the clicks for any spread-out x, where one argsort over the project (or numba's per group) costs
    several times more. A group with a crowded bucket is comparison sorted instead. Equal keys keep their
    table order, as in lexsort. A group's clicks lie all over the table (a subject's classifications come at
    any time): the table is read once, in its order, each click's key written at its group's next place (a
    few hundred places being filled at a time stay in cache), and each group then sorted where it lies.
    """
    count = np.zeros(n_groups + 1, np.int64)
    for i in keep:
        count[group[i] + 1] += 1
    starts = np.cumsum(count)
    slot = starts[:n_groups].copy()
    n_keep = len(keep)
    order, sorted_x, sorted_y = np.empty(n_keep, np.int64), np.empty(n_keep), np.empty(n_keep)
    sorted_volunteer = np.empty(n_keep, volunteer.dtype)
    for i in keep:
        k = slot[group[i]]
        order[k], sorted_x[k], sorted_y[k], sorted_volunteer[k] = i, x[i], y[i], volunteer[i]
        slot[group[i]] += 1
    largest = 0
    for g in range(n_groups):
        largest = max(largest, starts[g + 1] - starts[g])
    bucket_start = np.empty(largest + 1, np.int64)
    bucket = np.empty(largest, np.int64)
    by_x = np.empty(largest, np.int64)  # positions within the group
    for g in range(n_groups):
        s, e = starts[g], starts[g + 1]
        n = e - s
        if n < 2:
            continue
        gx, gy, gv, rows = sorted_x[s:e], sorted_y[s:e], sorted_volunteer[s:e], order[s:e]
        low, high = gx[0], gx[0]
        for r in range(n):
            low, high = min(low, gx[r]), max(high, gx[r])
        crowded = high == low
        if not crowded:
            # Bucket of each click: monotone in x, so the buckets come in x order and equal x share one.
            scale = (n - 1) / (high - low)
            bucket_start[:n + 1] = 0
            for r in range(n):
                bucket[r] = min(np.int64((gx[r] - low) * scale), n - 1)
                bucket_start[bucket[r] + 1] += 1
            for b in range(n):
                crowded |= bucket_start[b + 1] > CROWDED_BUCKET
                bucket_start[b + 1] += bucket_start[b]
        if crowded:
            by_x[:n] = np.argsort(gx, kind="mergesort")
        else:
            for r in range(n):
                by_x[bucket_start[bucket[r]]] = r
                bucket_start[bucket[r]] += 1
        # Insertion sort on the whole key: moves clicks only within their bucket, or within runs of equal x.
        for m in range(1, n):
            click = by_x[m]
            q = m - 1
            while q >= 0 and _precedes(click, by_x[q], gx, gy, gv, mark_id, rows):
                by_x[q + 1] = by_x[q]
                q -= 1
            by_x[q + 1] = click
        placed = by_x[:n]
        order[s:e], gx[:], gy[:], gv[:] = order[s:e][placed], gx[placed], gy[placed], gv[placed]
    sorted_group = np.empty(n_keep, np.int64)
    for g in range(n_groups):
        sorted_group[starts[g]:starts[g + 1]] = g
    return order, sorted_group, sorted_x, sorted_y, sorted_volunteer


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
    """Neighbour lists (CSR: offsets, click, closeness) of clicks sorted by x, each list in click order.

    One sweep over x measures every pair once into a buffer, with no branch on whether a pair is kept (a
    pair's index advances by the test instead: about half the clicks within ``distance`` in x are
    neighbours, a branch the processor cannot predict); the lists are then filled from the kept pairs.
    """
    n = len(x)
    reach = distance * distance  # squares compared: a square root only for the pairs kept
    capacity = 8 * n + 64
    second = np.empty(capacity, np.int64)
    squared = np.empty(capacity)
    pairs_end = np.empty(n, np.int64)  # click i's pairs (i, second) end there, after click i - 1's
    degree = np.zeros(n + 1, np.int64)
    n_pairs = 0
    for i in range(n):
        if n_pairs + n - i > capacity:  # room for every click after i
            capacity = 2 * capacity + n
            second, squared = _grown(second, capacity), _grown(squared, capacity)
        begin = n_pairs
        for j in range(i + 1, n):
            dx = x[j] - x[i]
            if dx > distance:
                break
            dy = y[j] - y[i]
            second[n_pairs] = j
            squared[n_pairs] = dx * dx + dy * dy
            n_pairs += (volunteer[j] != volunteer[i]) & (squared[n_pairs] <= reach)
        pairs_end[i] = n_pairs
        degree[i + 1] += n_pairs - begin
    for m in range(n_pairs):
        degree[second[m] + 1] += 1
    offsets = np.cumsum(degree)
    other = np.empty(offsets[n], np.int64)
    weight = np.empty(offsets[n], np.int64)
    filled = offsets[:n].copy()
    # Pairs come by first click up, then second click up: each list ends up in click order.
    begin = 0
    for i in range(n):
        for m in range(begin, pairs_end[i]):
            j = second[m]
            closeness = np.int64(np.rint((1.0 - np.sqrt(squared[m]) / distance) * IOU_STEPS))
            other[filled[i]], weight[filled[i]] = j, closeness
            filled[i] += 1
            other[filled[j]], weight[filled[j]] = i, closeness
            filled[j] += 1
        begin = pairs_end[i]
    return offsets, other, weight


@njit(cache=True)
def _grown(values, capacity):
    """``values`` copied into a larger buffer of ``capacity``."""
    grown = np.empty(capacity, values.dtype)
    grown[:len(values)] = values
    return grown


@njit(cache=True)
def cluster_group(x, y, volunteer, n_volunteers, distance):
    """Cluster label (0, 1, ... in the order formed) of each click of one group sorted by x (module docstring).

    ``volunteer`` codes the group's volunteers 0 .. ``n_volunteers`` - 1.
    """
    n = len(x)
    offsets, other, weight = _neighbours(x, y, volunteer, distance)
    label = np.full(n, -1, np.int64)
    active = np.ones(n, np.bool_)
    support = np.zeros(n, np.int64)
    strength = np.zeros(n, np.int64)
    claimant = np.full(n, -1, np.int64)
    seeds = np.empty(n, np.int64)
    # Per volunteer, the best remaining neighbour (edge) of the click at hand; -1 when none yet.
    best_edge = np.full(n_volunteers, -1, np.int64)
    touched = np.empty(n_volunteers, np.int64)
    next_label = 0
    remaining = n
    while remaining:
        for m in range(n):
            if active[m]:
                n_touched = _best_per_volunteer(m, offsets, other, weight, volunteer, active, best_edge, touched)
                total = 0
                for t in range(n_touched):
                    total += weight[best_edge[touched[t]]]
                    best_edge[touched[t]] = -1
                support[m], strength[m] = n_touched, total
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
            n_touched = _best_per_volunteer(m, offsets, other, weight, volunteer, active, best_edge, touched)
            for t in range(n_touched):
                o = other[best_edge[touched[t]]]
                best_edge[touched[t]] = -1
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
def _best_per_volunteer(m, offsets, other, weight, volunteer, active, best_edge, touched):
    """Fill ``best_edge`` with click ``m``'s best remaining neighbour of each volunteer (highest closeness, then
    earliest click); returns how many volunteers, listed in ``touched``. The caller resets ``best_edge``."""
    n_touched = 0
    for k in range(offsets[m], offsets[m + 1]):
        o = other[k]
        if active[o]:
            v = volunteer[o]
            if best_edge[v] < 0:
                best_edge[v] = k
                touched[n_touched] = v
                n_touched += 1
            elif weight[k] > weight[best_edge[v]]:
                best_edge[v] = k
    return n_touched


@njit(cache=True)
def _medians_xy(x, y, label, n_labels):
    """Median of ``x`` and of ``y`` per label 0..n_labels-1 (NaN for a label without values; -1 labels ignored), the
    labels counted once."""
    start = _label_starts(label, n_labels)
    return _run_medians(x, label, start, n_labels), _run_medians(y, label, start, n_labels)


@njit(cache=True)
def _label_starts(label, n_labels):
    """Where each label's values start among the values gathered by label, and the end (-1 labels left out)."""
    count = np.zeros(n_labels + 1, np.int64)
    for i in range(len(label)):
        if label[i] >= 0:
            count[label[i] + 1] += 1
    return np.cumsum(count)


@njit(cache=True)
def _run_medians(values, label, start, n_labels):
    """Median of ``values`` per label, gathered by label at ``start`` (`_label_starts`)."""
    slot = start[:n_labels].copy()
    gathered = np.empty(start[n_labels], values.dtype)
    for i in range(len(label)):
        if label[i] >= 0:
            gathered[slot[label[i]]] = values[i]
            slot[label[i]] += 1
    median = np.full(n_labels, np.nan)
    for c in range(n_labels):
        low, high = start[c], start[c + 1]
        # Insertion sort in place: a cluster holds a few dozen values at most, and np.median would copy each.
        for k in range(low + 1, high):
            value = gathered[k]
            m = k - 1
            while m >= low and gathered[m] > value:
                gathered[m + 1] = gathered[m]
                m -= 1
            gathered[m + 1] = value
        if high > low:
            median[c] = (gathered[low + (high - low - 1) // 2] + gathered[low + (high - low) // 2]) / 2.0
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
def link_group(x, y, volunteer, n_volunteers, px, py, link_distance):
    """Link one group's clicks (sorted by x) to its points, one click per volunteer per point (module docstring).

    Returns per click the linked point (-1 for none) and the nearest point within ``link_distance`` (-1 for none).
    """
    n, n_points = len(x), len(px)
    best = np.full(n, -1, np.int64)
    linked = np.full(n, -1, np.int64)
    offsets, target, score = _link_edges(x, y, px, py, link_distance, best)
    # One problem per volunteer: that volunteer's clicks (in click order) against the points.
    count = np.zeros(n_volunteers + 1, np.int64)
    for i in range(n):
        count[volunteer[i] + 1] += 1
    starts = np.cumsum(count)
    by_volunteer = np.empty(n, np.int64)
    slot = starts[:n_volunteers].copy()
    for i in range(n):
        by_volunteer[slot[volunteer[i]]] = i
        slot[volunteer[i]] += 1
    clicks_at = np.zeros(n_points, np.int64)  # this volunteer's clicks within reach of each point
    top_click = np.full(n_points, -1, np.int64)
    # Scratch of the exact matching, made when a volunteer first needs it (most groups never do).
    parent = piece = clicks = points = np.empty(0, np.int64)
    for v in range(n_volunteers):
        begin, end = starts[v], starts[v + 1]
        several_points = False
        several_clicks = False
        for r in range(begin, end):
            i = by_volunteer[r]
            several_points |= offsets[i + 1] - offsets[i] > 1
            for k in range(offsets[i], offsets[i + 1]):
                clicks_at[target[k]] += 1
                several_clicks |= clicks_at[target[k]] > 1
        if not several_points:
            # Every click reaches at most one point: each point takes its best (nearest, then earliest) click.
            for r in range(begin, end):
                i = by_volunteer[r]
                if offsets[i + 1] > offsets[i]:
                    p = target[offsets[i]]
                    if top_click[p] < 0 or score[offsets[i]] > score[offsets[top_click[p]]]:
                        top_click[p] = i
            for r in range(begin, end):
                i = by_volunteer[r]
                if offsets[i + 1] > offsets[i]:
                    p = target[offsets[i]]
                    if top_click[p] >= 0:
                        linked[top_click[p]] = p
                        top_click[p] = -1
        elif not several_clicks:
            # Every point is reached by at most one of the volunteer's clicks: each click takes its nearest point.
            for r in range(begin, end):
                linked[by_volunteer[r]] = best[by_volunteer[r]]
        else:
            if len(parent) == 0:
                parent = np.arange(n + n_points)  # union-find: clicks 0..n-1, points n..n+n_points-1
                piece = np.full(n + n_points, -1, np.int64)
                clicks, points = np.empty(n, np.int64), np.empty(n_points, np.int64)
            _match_pieces(by_volunteer[begin:end], offsets, target, score, n, parent, piece, clicks, points, linked)
        for r in range(begin, end):
            i = by_volunteer[r]
            for k in range(offsets[i], offsets[i + 1]):
                clicks_at[target[k]] = 0
    return linked, best


@njit(cache=True)
def _link_edges(x, y, px, py, link_distance, best):
    """Every (click, point) within ``link_distance`` (CSR by click: offsets, point, score 1 - d / (2 link_distance));
    fills ``best`` with each click's nearest point. Clicks are sorted by x, so a window over the points sorted by
    x slides along; each pair in the window is measured once, into a buffer whose index advances by whether the
    pair is within reach (no branch the processor must guess)."""
    n, n_points = len(x), len(px)
    reach = link_distance * link_distance  # squares compared: a square root only for the edges kept
    by_x = np.argsort(px, kind="mergesort")
    sorted_px = px[by_x]
    offsets = np.zeros(n + 1, np.int64)
    capacity = 4 * n + n_points
    target = np.empty(capacity, np.int64)
    squared = np.empty(capacity)
    n_edges = 0
    low = 0
    for i in range(n):
        while low < n_points and sorted_px[low] < x[i] - link_distance:
            low += 1
        if n_edges + n_points > capacity:  # room for every point
            capacity = 2 * capacity + n_points
            target, squared = _grown(target, capacity), _grown(squared, capacity)
        q = low
        while q < n_points and sorted_px[q] <= x[i] + link_distance:
            p = by_x[q]
            dx, dy = x[i] - px[p], y[i] - py[p]
            target[n_edges] = p
            squared[n_edges] = dx * dx + dy * dy
            n_edges += squared[n_edges] <= reach
            q += 1
        offsets[i + 1] = n_edges
        nearest = np.inf
        for k in range(offsets[i], n_edges):
            if squared[k] < nearest or (squared[k] == nearest and target[k] < best[i]):
                nearest, best[i] = squared[k], target[k]
    score = np.empty(n_edges)
    for k in range(n_edges):
        score[k] = 1.0 - np.sqrt(squared[k]) / (2.0 * link_distance)
    return offsets, target[:n_edges], score


@njit(cache=True)
def _match_pieces(own, offsets, target, score, n, parent, piece, clicks, points, linked):
    """Exact one-click-per-point matching of one volunteer's clicks ``own``, piece by connected piece.

    A piece with one click takes that click's best point, a piece with one point its best click; larger ones
    go to the Hungarian method (costs -score, 0 where no edge). ``parent``, ``piece``, ``clicks`` and ``points``
    are scratch arrays, left as found.
    """
    for i in own:
        for k in range(offsets[i], offsets[i + 1]):
            a, b = _root(parent, i), _root(parent, n + target[k])
            if a != b:
                parent[a] = b
    for r in range(len(own)):
        i = own[r]
        if offsets[i + 1] == offsets[i] or piece[i] >= 0:
            continue
        root = _root(parent, i)
        n_clicks = 0
        for q in range(r, len(own)):
            c = own[q]
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
        if n_clicks == 1:
            c = clicks[0]
            top = offsets[c]
            for k in range(offsets[c], offsets[c + 1]):
                if score[k] > score[top]:
                    top = k
            linked[c] = target[top]
        elif n_piece_points == 1:
            top_click, top_score = -1, -1.0
            for q in range(n_clicks):
                c = clicks[q]
                if score[offsets[c]] > top_score:
                    top_click, top_score = c, score[offsets[c]]
            linked[top_click] = points[0]
        else:
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
    for i in own:
        parent[i] = i
        piece[i] = -1
        for k in range(offsets[i], offsets[i + 1]):
            parent[n + target[k]] = n + target[k]


#: Points of a group that `_by_position` orders by insertion; more go to argsorts.
FEW_POINTS = 64


@njit(cache=True)
def _by_position(px, py):
    """Order of points by y, then x, then their current order (the order of `consensus.base.box_order`).

    An insertion sort for a few dozen points (a group's usual), where two stable argsorts cost more in
    allocations; the argsorts for more.
    """
    if len(px) > FEW_POINTS:
        order = np.argsort(px, kind="mergesort")
        return order[np.argsort(py[order], kind="mergesort")]
    order = np.arange(len(px))
    for m in range(1, len(px)):
        p = order[m]
        q = m - 1
        while q >= 0 and (py[p] < py[order[q]] or (py[p] == py[order[q]] and px[p] < px[order[q]])):
            order[q + 1] = order[q]
            q -= 1
        order[q + 1] = p
    return order


@njit(cache=True)
def group_volunteers(volunteer, s, e, local):
    """The volunteers of clicks ``s:e`` coded 0, 1, ... in order of appearance, and how many there are.

    Per-volunteer scratch then stays as small as the group; ``local`` (-1 for every volunteer of the
    project) is left as it was found.
    """
    gv = np.empty(e - s, np.int64)
    n_volunteers = 0
    for i in range(s, e):
        if local[volunteer[i]] < 0:
            local[volunteer[i]] = n_volunteers
            n_volunteers += 1
        gv[i - s] = local[volunteer[i]]
    for i in range(s, e):
        local[volunteer[i]] = -1
    return gv, n_volunteers


@njit(cache=True)
def _drop_duplicates(px, py, votes, keep, merge_distance):
    """Unset ``keep`` of each kept point closer than ``merge_distance`` to a kept point with more votes (or as many,
    formed earlier): one object clicked as two clusters. Its clicks go to the point kept at the next linking round,
    one per volunteer."""
    reach = merge_distance * merge_distance
    n = len(px)
    by_votes = np.argsort(-votes, kind="mergesort")
    kept = np.empty(n, np.int64)
    n_kept = 0
    for r in range(n):
        p = by_votes[r]
        if not keep[p]:
            continue
        for k in range(n_kept):
            q = kept[k]
            if (px[p] - px[q]) ** 2 + (py[p] - py[q]) ** 2 < reach:
                keep[p] = False
                break
        if keep[p]:
            kept[n_kept] = p
            n_kept += 1


@njit(cache=True)
def point_consensus(group_starts, x, y, volunteer, needed, distance, link_distance, refine, merge_distance, row,
                    n_marks):
    """The point method on every group of clicks sorted by group then x (module docstring).

    ``group_starts`` are the first click of each group and the end; ``needed``
    the votes each group's points need (the quorum); ``row`` each click's mark
    among the ``n_marks`` (the rest are not points). Returns the points in
    (group, y, x) order (group, x, y, spread, votes) and the links table's
    columns in the marks' order, as `consensus.matching.links_table` makes them
    for points, the points numbered 0, 1, ... (`number_links` gives them their
    consensus ids): linked point, IoU, nearest point within ``link_distance``,
    best IoU, distance and best distance per mark; -1 and NaN for none, IoUs
    NaN for clicks (0 best IoU for the marks that are not points). Written
    straight into those columns, with no per-click arrays between.
    """
    n = len(x)
    point_group = np.empty(n, np.int64)
    point_x = np.empty(n)
    point_y = np.empty(n)
    point_sigma = np.empty(n)
    point_votes = np.empty(n, np.int64)
    linked = np.full(n_marks, -1, np.int64)
    best = np.full(n_marks, -1, np.int64)
    iou = np.full(n_marks, np.nan)
    best_iou = np.zeros(n_marks)
    linked_distance = np.full(n_marks, np.nan)
    best_distance = np.full(n_marks, np.nan)
    for i in range(n):
        best_iou[row[i]] = np.nan
    n_points = 0
    local = np.full(volunteer.max() + 1 if n else 0, -1, np.int64)
    for g in range(len(group_starts) - 1):
        s, e = group_starts[g], group_starts[g + 1]
        if s == e:
            continue
        gx, gy = x[s:e], y[s:e]
        gv, n_volunteers = group_volunteers(volunteer, s, e, local)
        label, n_labels = cluster_group(gx, gy, gv, n_volunteers, distance)
        votes = np.zeros(n_labels, np.int64)
        for i in range(e - s):
            votes[label[i]] += 1
        keep = votes >= needed[g]
        px, py = _medians_xy(gx, gy, label, n_labels)
        if merge_distance > 0:
            _drop_duplicates(px, py, votes, keep, merge_distance)
        px, py = px[keep], py[keep]
        iteration = 0
        while True:
            order = _by_position(px, py)
            px, py = px[order], py[order]
            group_linked, group_best = link_group(gx, gy, gv, n_volunteers, px, py, link_distance)
            votes = np.zeros(len(px), np.int64)
            for i in range(e - s):
                if group_linked[i] >= 0:
                    votes[group_linked[i]] += 1
            keep = votes >= needed[g]
            if iteration < refine:
                px, py = _medians_xy(gx, gy, group_linked, len(px))
                px, py = px[keep], py[keep]
                iteration += 1
                continue
            if keep.all():
                break
            # Rare: a re-linked point fell below the quorum; drop it and link again.
            px, py = px[keep], py[keep]
        squared = np.zeros(len(px))
        for i in range(e - s):
            r = row[s + i]
            p = group_linked[i]
            if p >= 0:
                squared[p] += (gx[i] - px[p]) ** 2 + (gy[i] - py[p]) ** 2
                linked[r] = n_points + p
                linked_distance[r] = np.hypot(gx[i] - px[p], gy[i] - py[p])
            q = group_best[i]
            if q >= 0:
                best[r] = n_points + q
                # Most clicks are linked to their nearest point: its distance is already measured.
                best_distance[r] = linked_distance[r] if q == p else np.hypot(gx[i] - px[q], gy[i] - py[q])
        for p in range(len(px)):
            point_group[n_points + p] = g
            point_x[n_points + p], point_y[n_points + p] = px[p], py[p]
            point_votes[n_points + p] = votes[p]
            point_sigma[n_points + p] = np.sqrt(squared[p] / (2.0 * (votes[p] - 1))) if votes[p] > 1 else np.nan
        n_points += len(px)
    return (point_group[:n_points], point_x[:n_points], point_y[:n_points], point_sigma[:n_points],
            point_votes[:n_points], (linked, iou, best, best_iou, linked_distance, best_distance))


@njit(cache=True)
def number_links(links, point_ids):
    """`point_consensus`' links columns, each point's number replaced by its consensus id ``point_ids`` in place."""
    linked, best = links[0], links[2]
    for r in range(len(linked)):
        if linked[r] >= 0:
            linked[r] = point_ids[linked[r]]
        if best[r] >= 0:
            best[r] = point_ids[best[r]]
    return links


def load() -> None:
    """Load the cached machine code of the point method's kernels (compiling it on a machine's first use).

    Calls with the argument types the point method passes, on no clicks: what a
    compiled extension module does at its import, for a caller (the benchmark)
    that times the method's work apart from loading it.
    """
    none, no_values = np.zeros(0, np.int64), np.zeros(0)
    sort_clicks(none, 0, none, read_only(no_values), read_only(no_values), none, read_only(none))
    links = point_consensus(np.zeros(1, np.int64), no_values, no_values, none, none, 1.0, 1.0, 0, 0.0, none, 0)[-1]
    number_links(links, none)
