"""The kinds of the classic front end's point-list marks, named from the workflow export.

The classic front end writes a polygon, a freehand line or shape, a freehand segment line or shape and
a Bézier curve all as ``points: [{x, y}, ...]`` without naming the tool, so the loader can only call
them polygons. The workflow export's ``tools`` table names each tool's type, and with it whether the
mark is an open path or a closed outline. Only the kind changes: a mark's box and vertices stay.
"""

from __future__ import annotations

import pandas as pd

#: Tool types the classic front end writes as a list of points (`data_loaders.marks` loads them as polygons).
POINT_LIST_TOOLS = ("polygon", "freehandLine", "freehandShape", "freehandSegmentLine", "freehandSegmentShape",
                    "bezier")
#: The kind the loader gives a point list whose tool it is not told.
UNNAMED_POINT_LIST = "polygon"


def named_point_list_kinds(marks: pd.DataFrame, classifications: pd.DataFrame,
                           tools: pd.DataFrame | None) -> pd.DataFrame:
    """``marks`` with each classic point-list mark's kind set to its tool's type in ``tools``.

    Parameters
    ----------
    marks, classifications : DataFrame
        Canonical tables; a mark's workflow and version are its classification's.
    tools : DataFrame or None
        The workflow export's ``tools`` table (`data_loaders.workflows`), None without one.

    Returns
    -------
    DataFrame
        ``marks`` itself when nothing changes; else a copy. Marks of the new front end (which names
        its tools), of other kinds, or whose workflow version or tool the table lacks keep their kind.
    """
    if tools is None or not len(marks) or not len(tools):
        return marks
    of_mark = classifications.set_index("classification_id")[
        ["workflow_id", "workflow_version", "classifier"]].reindex(marks.classification_id.to_numpy())
    unnamed = (marks.kind.eq(UNNAMED_POINT_LIST).fillna(False).to_numpy(dtype=bool)
               & of_mark.classifier.eq("pfe").fillna(False).to_numpy(dtype=bool))
    if not unnamed.any():
        return marks
    keys = ["workflow_id", "version", "task", "tool"]
    wanted = pd.DataFrame({"workflow_id": of_mark.workflow_id.to_numpy()[unnamed],
                           "version": of_mark.workflow_version.astype("string").to_numpy()[unnamed],
                           "task": marks.task.astype("string").to_numpy()[unnamed],
                           "tool": marks.tool.to_numpy()[unnamed]})
    types = tools.drop_duplicates(keys).astype({"workflow_id": "int64", "version": "string", "task": "string",
                                                "tool": "int64"})
    # A left merge keeps the marks' order: row i is the i-th unnamed mark.
    named = wanted.astype({"workflow_id": "int64", "tool": "int64"}).merge(
        types[keys + ["tool_type"]], on=keys, how="left").tool_type
    renamed = named.isin(POINT_LIST_TOOLS).to_numpy(dtype=bool)
    if not renamed.any():
        return marks
    marks = marks.copy()
    rows = marks.index[unnamed][renamed]
    marks.loc[rows, "kind"] = named.to_numpy()[renamed]
    return marks
