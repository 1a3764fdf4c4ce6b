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
