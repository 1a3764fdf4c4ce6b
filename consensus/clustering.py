"""Greedy IoU clustering of marks, at most one mark per volunteer per cluster, for all subjects at once.

Within a group (subject, task, tool, frame) two marks are *neighbours* when
they come from different volunteers and overlap with IoU >= ``min_iou``. A
mark's *support* is the number of distinct volunteers among its neighbours. The
clustering repeats, for every group at the same time:

1. take the remaining mark with the most support (ties: larger summed IoU to
   the best neighbour of each volunteer, then the first in content order) as
   the seed;
2. form its cluster from the seed and, for every other volunteer, that
   volunteer's remaining neighbour of the seed with the highest IoU;
3. remove the cluster's marks and recompute support.

A mark left without neighbours becomes a cluster of its own. So each cluster
holds one vote per volunteer by construction: a volunteer who drew twice on a
clump gives the cluster one mark, and the other mark starts a cluster of its
own that a vote threshold will drop. Seeding from the best-supported mark keeps
the seed central, so one sloppy box cannot chain two clumps together as
single-linkage (DBSCAN-style) clustering does.

Each round is a pass over the remaining neighbour pairs; groups finish after as
many rounds as they have multi-mark clusters, and finished groups drop out of
the arrays, so the cost is close to linear in the number of neighbour pairs.
"""

from __future__ import annotations

import numpy as np

from . import geometry
from .boxes import BoxArrays
from .pairs import self_pairs
from .segments import segment_argmax


def neighbour_pairs(marks: BoxArrays, volunteer: np.ndarray, min_iou: float):
    """Pairs ``(i, j, iou)``, ``i < j``, of marks of one group, different volunteers, IoU >= ``min_iou``."""
    first, second, overlap = [], [], []
    for i, j in self_pairs(marks.group, marks.xmin, marks.xmax, marks.ymin, marks.ymax):
        different = volunteer[i] != volunteer[j]
        i, j = i[different], j[different]
        value = geometry.iou(tuple(v[i] for v in marks.shape_tuple), tuple(v[j] for v in marks.shape_tuple))
        close = value >= min_iou
        first.append(i[close])
        second.append(j[close])
        overlap.append(value[close])
    if not first:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    return np.concatenate(first), np.concatenate(second), np.concatenate(overlap)


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
    n = len(marks)
    cluster = np.full(n, -1, dtype=np.int64)
    first, second, overlap = neighbour_pairs(marks, volunteer, min_iou)
    # Both directions, sorted so that each (mark, neighbour's volunteer) run
    # starts with that volunteer's best neighbour (highest IoU, then content order).
    source = np.concatenate([first, second])
    target = np.concatenate([second, first])
    weight = np.concatenate([overlap, overlap])
    order = np.lexsort((target, -weight, volunteer[target], source))
    source, target, weight = source[order], target[order], weight[order]
    target_volunteer = volunteer[target]

    active = np.ones(n, dtype=bool)
    next_id = 0
    while True:
        live = active[source] & active[target]
        source, target, weight, target_volunteer = source[live], target[live], weight[live], target_volunteer[live]
        best_of_volunteer = np.ones(len(source), dtype=bool)
        if len(source) > 1:
            best_of_volunteer[1:] = (source[1:] != source[:-1]) | (target_volunteer[1:] != target_volunteer[:-1])
        support = np.bincount(source[best_of_volunteer], minlength=n)
        strength = np.bincount(source[best_of_volunteer], weights=weight[best_of_volunteer], minlength=n)

        alone = np.flatnonzero(active & (support == 0))
        cluster[alone] = next_id + np.arange(len(alone))
        next_id += len(alone)
        active[alone] = False
        remaining = np.flatnonzero(active)
        if len(remaining) == 0:
            break

        seeds = remaining[segment_argmax((support[remaining], strength[remaining], -remaining), marks.group[remaining])]
        cluster[seeds] = next_id + np.arange(len(seeds))
        next_id += len(seeds)
        is_seed = np.zeros(n, dtype=bool)
        is_seed[seeds] = True
        joining = best_of_volunteer & is_seed[source]
        cluster[target[joining]] = cluster[source[joining]]
        active[seeds] = False
        active[target[joining]] = False
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
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    from .estimate import Members, median_boxes, normalised_residuals
    from .segments import segment_argmax

    n_clusters = int(labels.max()) + 1 if len(labels) else 0
    if n_clusters < 2:
        return labels
    arrays = median_boxes(marks, Members.from_labels(labels, n_clusters)).arrays()
    first, second = [], []
    for i, j in self_pairs(arrays.group, arrays.xmin, arrays.xmax, arrays.ymin, arrays.ymax):
        overlap = geometry.iou(tuple(v[i] for v in arrays.shape_tuple), tuple(v[j] for v in arrays.shape_tuple))
        close = overlap >= merge_iou
        first.append(arrays.row[i[close]])
        second.append(arrays.row[j[close]])
    if not first or sum(len(part) for part in first) == 0:
        return labels
    first, second = np.concatenate(first), np.concatenate(second)
    graph = coo_matrix((np.ones(len(first)), (first, second)), shape=(n_clusters, n_clusters))
    merged = connected_components(graph, directed=False)[1].astype(np.int64)

    new_labels = merged[labels]
    members = Members.from_labels(new_labels, int(merged.max()) + 1)
    residual = normalised_residuals(marks, members, median_boxes(marks, members))
    n_volunteers = int(volunteer.max()) + 1
    slot = np.unique(members.box * n_volunteers + volunteer[members.mark], return_inverse=True)[1].reshape(-1)
    nearest = segment_argmax((-residual, -members.mark), slot)
    extra = np.ones(len(members.mark), dtype=bool)
    extra[nearest] = False
    loose = members.mark[extra]
    new_labels[loose] = int(merged.max()) + 1 + np.arange(len(loose))
    return np.unique(new_labels, return_inverse=True)[1].reshape(-1).astype(np.int64)
