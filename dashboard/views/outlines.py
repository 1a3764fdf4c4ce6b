"""Marks drawn through their vertices on the cutout: polygons and freehand shapes closed, lines and
freehand lines open.

The loader keeps these vertices apart from the marks (`data_loaders.schema.MARK_VERTICES`, read with
`project.core.Project.vertices_of`); the marks' boxes stay the geometry matching and consensus use.
A mark of a vertex kind whose vertices were not kept is drawn as its box.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# Kinds drawn as an open path through their vertices; the thumbnails draw them so too.
from project.tool_kinds import OPEN_KINDS


def with_vertices(marks: pd.DataFrame, vertices: pd.DataFrame) -> np.ndarray:
    """Which of ``marks`` have vertices in ``vertices`` (a `MARK_VERTICES` table)."""
    return np.isin(marks.mark_id.to_numpy(), vertices.mark_id.to_numpy())


def is_open(marks: pd.DataFrame) -> np.ndarray:
    """Which of ``marks`` are of a kind drawn as an open path."""
    return np.isin(marks.kind.fillna("").to_numpy(dtype=object), OPEN_KINDS)


def vertex_lists(marks: pd.DataFrame, vertices: pd.DataFrame) -> tuple[list, list]:
    """Each mark's vertex x and y arrays in drawing order (None for a mark without vertices).

    ``vertices`` is sorted by mark and vertex, as `Project.vertices_of` gives it, so each mark's
    vertices are one run of rows, found by binary search.
    """
    ids = vertices.mark_id.to_numpy()
    wanted = marks.mark_id.to_numpy()
    starts, stops = np.searchsorted(ids, wanted, "left"), np.searchsorted(ids, wanted, "right")
    xs, ys = vertices.x.to_numpy(), vertices.y.to_numpy()
    return ([xs[start:stop] if stop > start else None for start, stop in zip(starts, stops)],
            [ys[start:stop] if stop > start else None for start, stop in zip(starts, stops)])
