"""A workflow export names the tools of the classic front end's point lists: open paths and closed outlines."""

from __future__ import annotations

import pandas as pd

from project import load_project

CLASSIFICATIONS = "handmade/vertex_tools_classifications.csv"
WORKFLOWS = "handmade/vertex_tools_workflows.csv"


def test_the_workflow_export_names_each_point_lists_tool(data_dir):
    named = load_project([data_dir / CLASSIFICATIONS, data_dir / WORKFLOWS], method=None)
    unnamed = load_project([data_dir / CLASSIFICATIONS], method=None)
    kinds = named.marks.set_index("mark_id").kind
    # Row 9001 (classic): tools 0-5 are written as point lists; the workflow says which each is.
    assert kinds[[90010000, 90010002, 90010003, 90010004, 90010005]].tolist() == [
        "polygon", "freehandLine", "freehandShape", "freehandSegmentLine", "bezier"]
    # A line ({x1, y1, x2, y2}) and a triangle (told from a circle by nothing in the export) keep their kind,
    # and the new front end's marks (which name their tool) theirs.
    assert kinds[90010001] == "line" and kinds[90010006] == "circle"
    others = ~named.marks.classification_id.eq(9001)
    pd.testing.assert_series_equal(named.marks.kind[others], unnamed.marks.kind[others])
    # Without the workflow export every classic point list is a polygon; boxes and vertices do not change.
    assert set(unnamed.marks.set_index("mark_id").kind[[90010002, 90010003, 90010004, 90010005]]) == {"polygon"}
    columns = ["mark_id", "x", "y", "width", "height", "angle"]
    pd.testing.assert_frame_equal(named.marks[columns], unnamed.marks[columns])
    pd.testing.assert_frame_equal(named.mark_vertices, unnamed.mark_vertices)

