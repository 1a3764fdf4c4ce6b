"""The canonical tables: the contract between loaders, consensus and dashboard.

Coordinates are natural image pixels, origin top-left, y down. Boxes are the
top-left corner x, y plus width, height, and an angle in degrees (rotation about
the box centre, 0 if none). Ids are int64. Extra columns are allowed and kept.
"""

from __future__ import annotations

import pandas as pd

CLASSIFICATIONS = {
    "classification_id": "int64",
    "subject_id": "int64",
    "workflow_id": "int64",
    "workflow_version": "string",  # "13.10" is not 13.1
    "user": "string",  # user_name, or the not-logged-in hash
    "user_id": "Int64",  # missing for logged-out volunteers
    "created_at": "datetime64[ns, UTC]",
    "n_marks": "int64",  # 0 = looked and drew nothing; still a volunteer who saw the subject
    "gold_standard": "boolean",
    "expert": "boolean",
    "classifier": "string",  # "pfe" (classic front end) or "fem" (new front end)
}

MARKS = {
    "mark_id": "int64",
    "classification_id": "int64",
    "subject_id": "int64",
    "user": "string",
    "task": "string",
    "tool": "int64",
    "tool_label": "string",
    "frame": "int64",
    "x": "float64",
    "y": "float64",
    "width": "float64",
    "height": "float64",
    "angle": "float64",
    "kind": "string",  # rectangle, rotateRectangle, point-as-box, point, circle, ...
}

SUBJECTS = {
    "subject_id": "int64",
    "locations": "object",  # dict: frame index (str) -> URL or path
    "width": "float64",
    "height": "float64",
    "retired": "boolean",
}

CONSENSUS = {
    "subject_id": "int64",
    "consensus_id": "int64",
    "x": "float64",
    "y": "float64",
    "width": "float64",
    "height": "float64",
    "angle": "float64",
    "n_votes": "Int64",  # missing when the producer does not record it
    "n_seen": "Int64",  # volunteers who saw the subject; missing when unknown
    "source": "string",  # which aggregator and settings produced it
}

LINKS = {
    "mark_id": "int64",
    "consensus_id": "int64",  # -1: the mark matched no consensus box
    "iou": "float64",
}

#: The outlines of marks drawn through their vertices (polygons, freehand and other paths, lines), in
#: drawing order: ``vertex`` counts from 0 within its mark. The mark's box stays its geometry for matching.
MARK_VERTICES = {
    "mark_id": "int64",
    "vertex": "int64",
    "x": "float64",
    "y": "float64",
}

#: The direction of the radius handle of a classic circle that has one, degrees counter-clockwise (the
#: classic front end's ``angle``). The front end writes a triangle as it writes a circle (``x, y, r,
#: angle``); when a workflow export names the tool a triangle, this angle turns its corners
#: (`project.tool_kinds`). A circle's box does not turn, so the angle is not the mark's ``angle``.
CIRCLE_HANDLES = {
    "mark_id": "int64",
    "angle": "float64",
}

DETECTIONS = {
    "subject_id": "int64",
    "detection_id": "int64",
    "x": "float64",
    "y": "float64",
    "width": "float64",  # 0 for a point
    "height": "float64",  # 0 for a point
    "angle": "float64",
    "score": "float64",  # the detector's confidence; higher is surer
    "label": "string",  # the detector's class, missing when it gives none
    "source": "string",  # which detector and run produced it
}

TABLES = {
    "classifications": CLASSIFICATIONS,
    "marks": MARKS,
    "subjects": SUBJECTS,
    "consensus": CONSENSUS,
    "links": LINKS,
    "mark_vertices": MARK_VERTICES,
    "circle_handles": CIRCLE_HANDLES,
    "detections": DETECTIONS,
}


def empty_table(name: str) -> pd.DataFrame:
    """An empty canonical table with the right columns and dtypes."""
    return pd.DataFrame({column: pd.Series(dtype=dtype) for column, dtype in TABLES[name].items()})


def conform(table: pd.DataFrame, name: str) -> pd.DataFrame:
    """Order the canonical columns first with their dtypes; keep extra columns after them.

    A missing canonical column is an error naming it: a table that lacks one is
    not the table the next layer expects.
    """
    schema = TABLES[name]
    missing = [column for column in schema if column not in table.columns]
    if missing:
        raise ValueError(f"{name} table lacks canonical column(s) {missing}")
    extra = [column for column in table.columns if column not in schema]
    return table[list(schema) + extra].astype(schema)
