"""Greedy IoU clustering of marks, at most one mark per volunteer per cluster, for all subjects at once.

Within a group (subject, task, tool, frame) two marks are *neighbours* when
they come from different volunteers and overlap with IoU >= ``min_iou``. A
mark's *support* is the number of distinct volunteers among its neighbours, and
marks are ranked by support, then by the summed IoU to the best neighbour of
each volunteer, then by content order (a total order that does not depend on
row order). Each round, for every subject at once:

1. every remaining mark that outranks all its remaining neighbours is a seed
   (the best-supported, most central mark of its neighbourhood);
2. a seed's cluster is the seed plus, for every other volunteer, that
   volunteer's neighbour of the seed with the highest IoU; a mark wanted by
   two seeds joins the higher-ranked one;
3. the clustered marks are removed and support is recomputed.

A mark left without neighbours becomes a cluster of its own. So each cluster
holds one vote per volunteer by construction: a volunteer who drew twice on a
clump gives the cluster one mark, and the other mark starts a cluster of its
own that a vote threshold will drop. Seeding from local maxima of support keeps
seeds central, so one sloppy box cannot chain two clumps together as
single-linkage (DBSCAN-style) clustering does. Taking every local maximum at
once (rather than one seed per subject per round) gives the same clusters
wherever seeds' neighbourhoods do not touch, and needs only a few rounds.

Each round is a pass over the remaining neighbour pairs, so the cost is close to
linear in the number of neighbour pairs.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from .boxes import BoxArrays
from .estimate import Members, median_boxes, normalised_residuals
from .pairs import iou_pairs, self_pairs
from .prepare import prepare
from .segments import densify, segment_best


def neighbour_pairs(marks: BoxArrays, volunteer: np.ndarray, min_iou: float):
    """Pairs ``(i, j, iou)``, ``i < j``, of marks of one group, different volunteers, IoU >= ``min_iou``."""
    chunks = ((i[volunteer[i] != volunteer[j]], j[volunteer[i] != volunteer[j]])
              for i, j in self_pairs(marks.group, marks.xmin, marks.xmax, marks.ymin, marks.ymax))
    return iou_pairs(chunks, marks.shape_tuple, marks.shape_tuple, lambda value: value >= min_iou)


#: IoUs are compared in units of 1/65536: close enough to equal to count as a
#: tie, and integer sums of them do not depend on the order they are added in.
IOU_STEPS = 65536


def _by_source_volunteer_weight(source, target, weight, volunteer):
    """Directed edges ordered by source, then the target's volunteer, then decreasing IoU.

    ``weight`` is the integer IoU in `IOU_STEPS`. One int64 key sorts the edges
    in a single argsort, several times faster than ``lexsort``; equal keys keep
    their content order (stable sort).
    """
    n_volunteers = int(volunteer.max()) + 1 if len(volunteer) else 1
    n_sources = int(source.max()) + 1 if len(source) else 1
    if n_sources * n_volunteers < 2**45:
        key = ((source.astype(np.int64) * n_volunteers + volunteer[target]) << 17) | (IOU_STEPS - weight)
        order = np.argsort(key, kind="stable")
    else:
        order = np.lexsort((-weight, volunteer[target], source))
    return source[order], target[order], weight[order]


def _shared_directions(group, volunteer, first, second):
    """For each pair, whether ``first`` has another neighbour of ``second``'s volunteer, and ``second`` of ``first``'s.

    Counted in one ``bincount`` over slots (a mark, a volunteer's rank among its
    group's volunteers), so no sort of the pairs is needed: the slots number the
    marks times their group's volunteers, a few per pair.
    """
    n_volunteers = int(volunteer.max()) + 1
    member = densify(group * n_volunteers + volunteer)  # (group, volunteer), in that order
    member_group = np.zeros(int(member.max()) + 1, dtype=np.int64)
    member_group[member] = group
    per_group = np.bincount(member_group)
    local = member - (np.cumsum(per_group) - per_group)[group]
    width = per_group[group]
    base = np.cumsum(width) - width
    slots = np.concatenate([base[first] + local[second], base[second] + local[first]])
    if int(width.sum()) > 4 * len(slots) + 1024:
        slots = densify(slots)
    shared = np.bincount(slots)[slots] > 1
    return shared[:len(first)], shared[len(first):]


def _seed_keys(remaining: np.ndarray, support: np.ndarray, strength: np.ndarray, n: int) -> np.ndarray:
    """Per mark a key ordering the ``remaining`` ones by support, then strength, then earlier content order.

    Keys are unique among the remaining marks and 0 for the others. Packed into
    one int64 (support, strength, n - mark) when the numbers fit, so ranking
    needs no sort; the lexsort of the three otherwise.
    """
    key = np.zeros(n, dtype=np.int64)
    strength_span = int(strength[remaining].max()) + 1
    if (int(support[remaining].max()) + 1) * strength_span * (n + 1) < 2**62:
        key[remaining] = (support[remaining] * strength_span + strength[remaining]) * (n + 1) + (n - remaining)
    else:
        key[remaining[np.lexsort((-remaining, strength[remaining], support[remaining]))]] = np.arange(1, len(remaining) + 1)
    return key


def cluster_marks(marks: BoxArrays, volunteer: np.ndarray, min_iou: float) -> np.ndarray:
    """Cluster id of every sorted mark (see the module docstring); ids run from 0.

    Parameters
    ----------
    marks : BoxArrays
        Sorted valid marks.
    volunteer : numpy.ndarray
        Volunteer code of each sorted mark.
    min_iou : float
        IoU at which two marks of different volunteers are neighbours.

    Returns
    -------
    numpy.ndarray
        int64 cluster id per mark. Clusters are numbered in the order they are
        formed; callers renumber them by position.
    """
    first, second, overlap = neighbour_pairs(marks, volunteer, min_iou)
    return cluster_neighbours(marks.group, volunteer, first, second, overlap)


def cluster_neighbours(group: np.ndarray, volunteer: np.ndarray, first: np.ndarray, second: np.ndarray,
                       closeness: np.ndarray) -> np.ndarray:
    """Greedy seeded clustering (the module docstring) of marks given their neighbour pairs.

    ``group`` and ``volunteer`` are the group and volunteer codes of each mark;
    ``first``, ``second`` are the pairs of neighbouring marks (same group,
    different volunteers, ``first < second``) and ``closeness`` how alike each
    pair is, in [0, 1]: the IoU for boxes, one less the distance over the
    neighbour radius for points. Marks are in a content-defined order, so ties
    break the same way whatever the order of the input rows. Returns an int64
    cluster id per mark.

    Each (mark, neighbour's volunteer) counts once, with that volunteer's best
    neighbour (highest closeness, then content order). Most marks have at most
    one neighbour per volunteer; only the edges of marks that have several are
    sorted to find the best, so a round is a few linear passes over the pairs.
    """
    n = len(group)
    cluster = np.full(n, -1, dtype=np.int64)
    weight = np.round(closeness * IOU_STEPS).astype(np.int64)
    if len(first):
        shared_forward, shared_backward = _shared_directions(group, volunteer, first, second)
    else:
        shared_forward = shared_backward = np.zeros(0, dtype=bool)
    # The directions of several neighbours of one volunteer, as edges sorted so that
    # each (source, volunteer) run starts with its best.
    multi_source, multi_target, multi_weight = _by_source_volunteer_weight(
        np.concatenate([first[shared_forward], second[shared_backward]]),
        np.concatenate([second[shared_forward], first[shared_backward]]),
        np.concatenate([weight[shared_forward], weight[shared_backward]]), volunteer)
    # The other directions, each its volunteer's best while both ends remain, stay pairs
    # (half the memory of directed edges) with a flag per direction.
    forward, backward = ~shared_forward, ~shared_backward
    kept = forward | backward
    first, second, weight, forward, backward = first[kept], second[kept], weight[kept], forward[kept], backward[kept]

    active = np.ones(n, dtype=bool)
    next_id = 0
    while True:
        if next_id:  # after the first round, drop the pairs of clustered marks
            live = active[first] & active[second]
            first, second, weight, forward, backward = first[live], second[live], weight[live], forward[live], backward[live]
            live = active[multi_source] & active[multi_target]
            multi_source, multi_target, multi_weight = multi_source[live], multi_target[live], multi_weight[live]
        best = np.ones(len(multi_source), dtype=bool)
        if len(multi_source) > 1:
            multi_volunteer = volunteer[multi_target]
            best[1:] = (multi_source[1:] != multi_source[:-1]) | (multi_volunteer[1:] != multi_volunteer[:-1])
        best_source, best_target = multi_source[best], multi_target[best]
        forward_source, backward_source = first[forward], second[backward]
        support = (np.bincount(forward_source, minlength=n) + np.bincount(backward_source, minlength=n)
                   + np.bincount(best_source, minlength=n))
        # Sums of integers below 2**53: exact in float64.
        strength = (np.bincount(forward_source, weights=weight[forward], minlength=n)
                    + np.bincount(backward_source, weights=weight[backward], minlength=n)
                    + np.bincount(best_source, weights=multi_weight[best], minlength=n)).astype(np.int64)

        alone = np.flatnonzero(active & (support == 0))
        cluster[alone] = next_id + np.arange(len(alone))
        next_id += len(alone)
        active[alone] = False
        remaining = np.flatnonzero(active)
        if len(remaining) == 0:
            break

        # A seed outranks every remaining neighbour.
        key = _seed_keys(remaining, support, strength, n)
        outranked = np.zeros(n, dtype=bool)
        second_higher = key[second] > key[first]
        outranked[first[second_higher]] = True
        outranked[second[~second_higher]] = True
        outranked[multi_source[key[multi_target] > key[multi_source]]] = True
        seeds = remaining[~outranked[remaining]]
        is_seed = np.zeros(n, dtype=bool)
        is_seed[seeds] = True
        cluster[seeds] = next_id + np.arange(len(seeds))
        next_id += len(seeds)

        # Each seed claims its best neighbour of every volunteer; a mark claimed by two seeds joins the higher-ranked one.
        seed_forward, seed_backward, seed_best = forward & is_seed[first], backward & is_seed[second], is_seed[best_source]
        claim_source = np.concatenate([first[seed_forward], second[seed_backward], best_source[seed_best]])
        claim_target = np.concatenate([second[seed_forward], first[seed_backward], best_target[seed_best]])
        winners = segment_best(key[claim_source], claim_target)
        cluster[claim_target[winners]] = cluster[claim_source[winners]]
        active[seeds] = False
        active[claim_target[winners]] = False
    return cluster


def merge_overlapping_clusters(marks: BoxArrays, volunteer: np.ndarray, labels: np.ndarray, merge_iou: float) -> np.ndarray:
    """Join clusters whose median boxes overlap with IoU >= ``merge_iou``: one object drawn as two.

    Greedy seeding leaves two kinds of near-copies beside a cluster: the
    far-flung marks of the same clump, too far from the seed to join it, and
    the second boxes of volunteers who drew the clump twice, which cluster with
    each other. Both look like a second, smaller box on top of the first. A
    cluster-level non-maximum suppression joins them (with anything connected
    through further overlaps); where that brings one volunteer in twice, the mark
    nearest the joined box stays and each other one becomes a cluster of its own,
    a double mark that no vote threshold keeps.

    Objects that genuinely overlap this much (crowded scenes) need a higher
    ``merge_iou``; 1 never merges.

    Returns new labels, numbered from 0.
    """
    n_clusters = int(labels.max()) + 1 if len(labels) else 0
    if n_clusters < 2:
        return labels
    arrays = median_boxes(marks, Members.from_labels(labels, n_clusters)).arrays()
    chunks = self_pairs(arrays.group, arrays.xmin, arrays.xmax, arrays.ymin, arrays.ymax)
    first, second, _ = iou_pairs(chunks, arrays.shape_tuple, arrays.shape_tuple, lambda value: value >= merge_iou)
    if len(first) == 0:
        return labels
    first, second = arrays.row[first], arrays.row[second]
    graph = coo_matrix((np.ones(len(first)), (first, second)), shape=(n_clusters, n_clusters))
    merged = connected_components(graph, directed=False)[1].astype(np.int64)

    new_labels = merged[labels]
    # Only clusters that were joined can hold a volunteer twice; de-duplicate just those.
    joined = np.bincount(merged, minlength=int(merged.max()) + 1) > 1
    in_joined = np.flatnonzero(joined[new_labels])
    if len(in_joined):
        local = densify(new_labels[in_joined])
        members = Members(mark=in_joined, box=local, n_boxes=int(local.max()) + 1)
        residual = normalised_residuals(marks, members, median_boxes(marks, members))
        n_volunteers = int(volunteer.max()) + 1
        slot = densify(members.box * n_volunteers + volunteer[members.mark])
        nearest = segment_best(-residual, slot)
        extra = np.ones(len(members.mark), dtype=bool)
        extra[nearest] = False
        loose = members.mark[extra]
        new_labels[loose] = int(merged.max()) + 1 + np.arange(len(loose))
    return densify(new_labels)


def candidate_clusters(pair, cluster_iou: float, merge_iou: float):
    """One partition's prepared arrays and its clusters: greedy IoU clustering, then merging near-copies.

    ``pair`` is a (marks, classifications) partition; returns ``(prepared, members)``.
    """
    marks, classifications = pair
    prep = prepare(marks, classifications)
    labels = cluster_marks(prep.marks, prep.volunteer, cluster_iou)
    if merge_iou < 1:
        labels = merge_overlapping_clusters(prep.marks, prep.volunteer, labels, merge_iou)
    n_clusters = int(labels.max()) + 1 if len(labels) else 0
    return prep, Members.from_labels(labels, n_clusters)
