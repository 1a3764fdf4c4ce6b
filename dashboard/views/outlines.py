"""Marks drawn through their vertices on the cutout: polygons and freehand shapes closed, lines and
freehand lines open.

Which marks are drawn so is worked out once per project (`dashboard.subject_marks`). The loader keeps
these vertices apart from the marks (`data_loaders.schema.MARK_VERTICES`, read with
`project.core.Project.vertices_of`); the marks' boxes stay the geometry matching and consensus use.
A mark of a vertex kind whose vertices were not kept is drawn as its box.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def vertex_lists(marks, vertices: pd.DataFrame) -> tuple[list, list]:
    """Each mark's vertex x and y arrays in drawing order (None for a mark without vertices).

    ``marks``: a DataFrame of marks or `dashboard.subject_marks.SubjectMarks` (their ``mark_id``).

    ``vertices`` is sorted by mark and vertex, as `Project.vertices_of` gives it, so each mark's
    vertices are one run of rows, found by binary search.
    """
    ids = vertices.mark_id.to_numpy()
    wanted = np.asarray(marks.mark_id)
    starts, stops = np.searchsorted(ids, wanted, "left"), np.searchsorted(ids, wanted, "right")
    xs, ys = vertices.x.to_numpy(), vertices.y.to_numpy()
    return ([xs[start:stop] if stop > start else None for start, stop in zip(starts, stops)],
            [ys[start:stop] if stop > start else None for start, stop in zip(starts, stops)])
