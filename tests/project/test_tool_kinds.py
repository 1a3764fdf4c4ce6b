"""A workflow export names the tools of the classic front end's point lists and circles: open paths, closed
outlines, Bézier curves and triangles; and the other shapes load as what they are."""

from __future__ import annotations

import numpy as np
import pandas as pd

from data_loaders.marks import NO_IMAGE_SIZE
from project import load_project
from project.tool_kinds import BEZIER_SAMPLES, bezier_vertices

CLASSIFICATIONS = "handmade/vertex_tools_classifications.csv"
WORKFLOWS = "handmade/vertex_tools_workflows.csv"


def test_the_workflow_export_names_each_point_lists_tool(data_dir):
    named = load_project([data_dir / CLASSIFICATIONS, data_dir / WORKFLOWS], method=None)
    unnamed = load_project([data_dir / CLASSIFICATIONS], method=None)
    kinds = named.marks.set_index("mark_id").kind
    # Row 9001 (classic): tools 0-5 are written as point lists; the workflow says which each is.
    assert kinds[[90010000, 90010002, 90010003, 90010004, 90010005, 90010006]].tolist() == [
        "polygon", "freehandLine", "freehandShape", "freehandSegmentLine", "bezier", "triangle"]
    # A line ({x1, y1, x2, y2}) keeps its kind, and the new front end's marks (which name their tool) theirs.
    assert kinds[90010001] == "line"
    others = ~named.marks.classification_id.eq(9001)
    pd.testing.assert_series_equal(named.marks.kind[others], unnamed.marks.kind[others])
    # Without the workflow export every classic point list is a polygon and a triangle a circle; the boxes and
    # vertices of the point lists do not change with their names (a Bézier curve's and a triangle's do).
    assert set(unnamed.marks.set_index("mark_id").kind[[90010002, 90010003, 90010004, 90010005]]) == {"polygon"}
    columns = ["mark_id", "x", "y", "width", "height", "angle"]
    same = ~named.marks.mark_id.isin([90010005, 90010006])
    pd.testing.assert_frame_equal(named.marks[columns][same], unnamed.marks[columns][same])
    same_vertices = ~named.mark_vertices.mark_id.isin([90010005, 90010006])
    pd.testing.assert_frame_equal(named.mark_vertices[same_vertices].reset_index(drop=True),
                                  unnamed.mark_vertices[~unnamed.mark_vertices.mark_id.eq(90010005)].reset_index(drop=True))



SHAPES = "handmade/shape_tools_classifications.csv"
SHAPE_WORKFLOWS = "handmade/shape_tools_workflows.csv"


def test_triangles_get_their_corners_and_box_from_the_circle_and_its_handle(data_dir):
    named = load_project([data_dir / SHAPES, data_dir / SHAPE_WORKFLOWS], method=None)
    unnamed = load_project([data_dir / SHAPES], method=None)
    marks = named.marks.set_index("mark_id")
    # Row 9101's tool 0 and row 9102's tool 0 are triangles; 9101's tool 1 stays a circle.
    assert marks.kind[[91010000, 91010001, 91020002]].tolist() == ["triangle", "circle", "triangle"]
    assert unnamed.marks.set_index("mark_id").kind[[91010000, 91020002]].tolist() == ["circle", "circle"]
    # Centre (100, 50), r 20, handle angle 90: the corner above the centre turns to its left.
    corners = named.vertices_of([91010000])[["x", "y"]].to_numpy()
    half = 20 * np.sqrt(3) / 2
    np.testing.assert_allclose(corners, [[80, 50], [110, 50 + half], [110, 50 - half]], atol=1e-9)
    np.testing.assert_allclose(marks.loc[91010000, ["x", "y", "width", "height"]].to_numpy(float),
                               [80, 50 - half, 30, 2 * half], atol=1e-9)
    # No handle angle (row 9102): not turned, one corner straight above the centre (60, 60).
    np.testing.assert_allclose(named.vertices_of([91020002])[["x", "y"]].to_numpy(),
                               [[60, 50], [60 - 10 * np.sqrt(3) / 2, 65], [60 + 10 * np.sqrt(3) / 2, 65]], atol=1e-9)
    # A circle stays its square without vertices.
    assert marks.loc[91010001, ["x", "y", "width", "height"]].tolist() == [30, 30, 20, 20]
    assert named.vertices_of([91010001]).empty


def test_bezier_curves_are_sampled_along_the_curve_not_the_control_points(data_dir):
    named = load_project([data_dir / SHAPES, data_dir / SHAPE_WORKFLOWS], method=None)
    marks = named.marks.set_index("mark_id")
    assert marks.kind[91010002] == "bezier"
    curve = named.vertices_of([91010002])
    # Four points, an even count: closed, two quadratic segments back to the start.
    assert len(curve) == 2 * BEZIER_SAMPLES + 1 and curve.vertex.tolist() == list(range(len(curve)))
    assert curve[["x", "y"]].iloc[[0, -1]].values.tolist() == [[10, 10], [10, 10]]
    middle = curve.iloc[BEZIER_SAMPLES // 2]  # t = 1/2 of (10, 10), (30, 0), (50, 10)
    assert (middle.x, middle.y) == (30, 5)
    # The box is the curve's (y from 5 to 25), not the control points' (0 to 40).
    assert marks.loc[91010002, ["x", "y", "width", "height"]].tolist() == [10, 5, 40, 20]
    # An open curve of three points (the vertex tools' file): one segment from its start to its end.
    other = load_project([data_dir / CLASSIFICATIONS, data_dir / WORKFLOWS], method=None)
    open_curve = other.vertices_of([90010005])
    assert len(open_curve) == BEZIER_SAMPLES + 1
    assert open_curve[["x", "y"]].iloc[[0, -1]].values.tolist() == [[50, 80], [70, 80]]
    np.testing.assert_allclose(open_curve.y.max(), 85)


def test_bezier_vertices_handle_short_and_several_curves():
    control = pd.DataFrame({"mark_id": [7, 7, 9, 9, 9], "vertex": [0, 1, 0, 1, 2],
                            "x": [1.0, 2.0, 0.0, 1.0, 2.0], "y": [1.0, 2.0, 0.0, 2.0, 0.0]})
    curves = bezier_vertices(control)
    # Mark 7: two points, closed back to the start: one segment 1 -> 2 -> 1, a there-and-back line.
    assert (curves.mark_id == 7).sum() == BEZIER_SAMPLES + 1 and (curves.mark_id == 9).sum() == BEZIER_SAMPLES + 1
    np.testing.assert_allclose(curves[curves.mark_id == 9].y.max(), 1.0)
    one = bezier_vertices(control[control.mark_id == 9].iloc[:1])
    assert one[["x", "y"]].values.tolist() == [[0.0, 0.0]]  # a lone point has no segment: kept as it is


def test_full_image_tools_and_new_front_end_round_shapes_load_as_what_they_are(data_dir):
    project = load_project([data_dir / SHAPES, data_dir / SHAPE_WORKFLOWS], method=None)
    marks = project.marks.set_index("mark_id")
    boxes = marks[["kind", "x", "y", "width", "height"]]
    assert boxes.loc[[91010003, 91010004, 91010005]].values.tolist() == [
        ["fullHeightLine", 150, 0, 0, 100], ["column", 160, 0, 25, 100], ["fullWidthLine", 0, 70, 200, 0]]
    assert project.vertices_of([91010004])[["x", "y"]].values.tolist() == [[160, 0], [185, 0], [185, 100], [160, 100]]
    # Row 9102 has subject_dimensions [null]: its full-width line and column are counted, not guessed.
    report = project.reports[0].counts["marks_not_loaded"]
    assert report == {NO_IMAGE_SIZE: 2}
    assert boxes.loc[[91030000, 91030001]].values.tolist() == [["circle", 105, 15, 30, 30], ["ellipse", 30, 75, 40, 10]]
