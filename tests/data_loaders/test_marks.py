"""The columnar route for marks gives exactly what the reference route gives, vertices included."""

from __future__ import annotations

import csv
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data_loaders.base import LoadReport
from data_loaders.marks import (
    ELLIPSE_OUTLINE_VERTICES,
    HANDLE_COLUMNS,
    MARK_COLUMNS,
    NO_IMAGE_SIZE,
    VERTEX_COLUMNS,
    _columnar_marks,
    _reference_marks,
    extract_marks,
    image_sizes,
)


def both_routes(cells, fem=None, tasks=None, sides=None, image_sizes=None):
    fem = np.zeros(len(cells), bool) if fem is None else fem
    fast_report, slow_report = LoadReport("f", "t"), LoadReport("f", "t")
    fast = _columnar_marks(pa.array(cells, pa.string()), fem, tasks, sides, "k", fast_report, image_sizes)
    slow = _reference_marks(cells, fem, tasks, sides, "k", slow_report, image_sizes)
    return fast, slow, fast_report, slow_report


def assert_same(fast, slow, fast_report, slow_report):
    fast_marks, fast_ok = fast
    slow_marks, slow_ok = slow
    np.testing.assert_array_equal(fast_ok, slow_ok)
    for name in MARK_COLUMNS + VERTEX_COLUMNS + HANDLE_COLUMNS:
        pd.testing.assert_series_equal(pd.Series(fast_marks[name]), pd.Series(slow_marks[name]),
                                       check_names=False, obj=name)
    assert fast_report.counts == slow_report.counts


def real_cells(path):
    csv.field_size_limit(1 << 30)
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    fem = np.array(['"classifier_version":"2.0"' in r["metadata"] for r in rows])
    return [r["annotations"] for r in rows], fem


@pytest.mark.parametrize("name", [
    "discnet/many-tools-classifications_march_7_2023.csv",
    "penguin_watch/penguin-watch-classifications-trim.csv",
    "aggregation_for_caesar/cat-project-classifications.csv",
])
def test_routes_agree_on_real_exports(data_dir, name):
    cells, fem = real_cells(data_dir / name)
    fast, slow, fast_report, slow_report = both_routes(cells, fem)
    assert fast is not None, "the columnar route should read a real export"
    assert_same(fast, slow, fast_report, slow_report)
    sides = np.where(np.arange(len(cells)) % 3 == 0, np.nan, 12.0)
    assert_same(*both_routes(cells, fem, tasks=["T0", "T4"], sides=sides))


number = st.one_of(st.integers(-1000, 1000), st.floats(-1e4, 1e4, allow_nan=False))
maybe = lambda strategy: st.one_of(st.none(), strategy)  # noqa: E731
mark = st.dictionaries(
    st.sampled_from(["x", "y", "width", "height", "angle", "x_center", "y_center", "r", "radius", "rx", "ry",
                     "x1", "y1", "x2", "y2"]), maybe(number), max_size=7,
).flatmap(lambda m: st.fixed_dictionaries({
    "tool": maybe(st.integers(0, 3)), "frame": maybe(st.integers(0, 2)),
    "tool_label": maybe(st.text(max_size=5)), "toolType": maybe(st.sampled_from(["polygon", "line"])),
    "pathX": maybe(st.lists(maybe(number), max_size=3)), "pathY": maybe(st.lists(number, max_size=3)),
    "points": maybe(st.lists(st.fixed_dictionaries({"x": maybe(number), "y": number}), max_size=3)),
}).map(lambda extra: {**m, **{k: v for k, v in extra.items() if v is not None or k == "tool"}}))
well_formed = st.one_of(
    st.fixed_dictionaries({"x": number, "y": number, "width": number, "height": number, "tool": st.integers(0, 2)}),
    st.fixed_dictionaries({"x_center": number, "y_center": number, "width": number, "height": number,
                           "angle": number, "toolIndex": st.integers(0, 2), "toolType": st.just("rotateRectangle")}),
    st.fixed_dictionaries({"x": number, "y": number, "tool": st.integers(0, 2), "tool_label": st.text(max_size=3)}),
    st.fixed_dictionaries({"x": number, "y": number, "r": number}),
    st.fixed_dictionaries({"x": number, "y": number, "r": number, "angle": number}),  # or a triangle
    st.fixed_dictionaries({"x_center": number, "y_center": number, "radius": number, "toolType": st.just("circle")}),
    st.fixed_dictionaries({"x": number, "y": number, "rx": number, "ry": number, "angle": number}),
    st.fixed_dictionaries({"x_center": number, "y_center": number, "rx": number, "ry": number, "angle": number}),
    st.fixed_dictionaries({"y": number, "tool": st.integers(0, 2)}),  # full-width line
    st.fixed_dictionaries({"x": number, "tool": st.integers(0, 2)}),  # full-height line
    st.fixed_dictionaries({"x": number, "width": number, "tool": st.integers(0, 2)}),  # column
    st.fixed_dictionaries({"x1": number, "y1": number, "x2": number, "y2": number}),
    st.fixed_dictionaries({"pathX": st.lists(number, min_size=1, max_size=4),
                           "pathY": st.lists(number, min_size=1, max_size=4), "toolType": st.just("freehandLine")}),
)
mark = st.one_of(well_formed, well_formed, mark)
annotation = st.fixed_dictionaries({
    "task": st.sampled_from(["T0", "T1", "T2"]),
    "value": st.one_of(st.lists(mark, max_size=4), st.text(max_size=4), st.lists(st.integers(), max_size=2)),
}).flatmap(lambda a: st.one_of(st.just(a), st.just({**a, "markIndex": 0})))
cells = st.lists(st.lists(annotation, max_size=3).map(json.dumps), min_size=1, max_size=6)


@settings(max_examples=150, deadline=None)
@given(cells=cells, fem=st.lists(st.booleans(), min_size=6, max_size=6),
       tasks=st.one_of(st.none(), st.just(["T1"])),
       sides=st.one_of(st.none(), st.lists(st.sampled_from([np.nan, 5.0]), min_size=6, max_size=6)),
       sizes=st.one_of(st.none(), st.lists(st.sampled_from([np.nan, 0.0, 640.0, 480.0]), min_size=12, max_size=12)))
def test_routes_agree_on_random_annotations(cells, fem, tasks, sides, sizes):
    fem = np.array(fem[: len(cells)])
    sides = None if sides is None else np.array(sides[: len(cells)])
    sizes = None if sizes is None else np.array(sizes).reshape(6, 2)[: len(cells)]
    fast, slow, fast_report, slow_report = both_routes(cells, fem, tasks, sides, sizes)
    if fast is not None:
        assert_same(fast, slow, fast_report, slow_report)


@pytest.mark.parametrize("cells", [
    ['[{"task": "T0", "value": [{"x": 1, "y": 2, "tool": 0}]}]'],  # points only
    ['[{"task": "T0", "value": [{"x": 1, "y": 2, "width": 3, "height": 4}]}]'],  # rectangles
    ['[{"task": "T0", "value": [{"x_center": 5, "y_center": 6, "width": 2, "height": 2, "angle": 9}]}]'],
    # A key spelled with an escape is still a key: this is a rectangle, not a point.
    ['[{"task": "T0", "value": [{"x": 1, "y": 2, "\\u0077idth": 3, "\\u0068eight": 4}]}]'],
    ['[{"task": "T0", "value": [{"x": 1, "y": 2, "r": 3}, {"x1": 0, "y1": 0, "x2": 1, "y2": 1}]}]'],
])
def test_routes_agree_whichever_mark_fields_a_chunk_is_read_with(cells):
    fast, slow, fast_report, slow_report = both_routes(cells)
    assert fast is not None
    assert_same(fast, slow, fast_report, slow_report)


def test_escaped_key_is_read_as_the_key_it_spells():
    cell = '[{"task": "T0", "value": [{"x": 1, "y": 2, "\\u0077idth": 3, "\\u0068eight": 4}]}]'
    marks, _ = _columnar_marks(pa.array([cell]), np.zeros(1, bool), None, None, "k", LoadReport("f", "t"))
    assert list(marks["kind"]) == ["rectangle"] and list(marks["width"]) == [3.0]


def test_routes_agree_on_the_vertices_of_every_vertex_tool(data_dir):
    cells, fem = real_cells(data_dir / "handmade" / "vertex_tools_classifications.csv")
    # The last row has a string for a coordinate: only the reference route reads it.
    fast, slow, fast_report, slow_report = both_routes(cells[:3], fem[:3])
    assert fast is not None
    assert_same(fast, slow, fast_report, slow_report)
    assert len(fast[0]["vertex_mark"]) == 3 + 2 + 3 + 4 + 2 + 3 + 3 + 3 + 2 + 2 + 2
    assert fast_report.counts["vertices_not_kept"] == {"pathX and pathY differ in length": 1}
    assert both_routes(cells, fem)[0] is None


def test_full_image_tools_span_the_rows_image_and_need_its_size():
    cells = [('[{"task": "T0", "value": [{"y": 40, "tool": 0}, {"x": 30, "tool": 1}, {"x": 10, "width": 25, "tool": 2},'
              ' {"x": 10, "width": 0, "tool": 2}]}]')] * 2
    sizes = np.array([[640.0, 480.0], [np.nan, np.nan]])
    fast, slow, fast_report, slow_report = both_routes(cells, image_sizes=sizes)
    assert fast is not None
    assert_same(fast, slow, fast_report, slow_report)
    marks = pd.DataFrame({name: fast[0][name] for name in MARK_COLUMNS})
    assert marks.kind.tolist() == ["fullWidthLine", "fullHeightLine", "column"]
    assert marks[["x", "y", "width", "height"]].values.tolist() == [[0, 40, 640, 0], [30, 0, 0, 480], [10, 0, 25, 480]]
    vertices = list(zip(fast[0]["vertex_mark"], fast[0]["vertex_x"], fast[0]["vertex_y"]))
    assert vertices == [(0, 0, 40), (0, 640, 40), (1, 30, 0), (1, 30, 480),
                        (2, 10, 0), (2, 35, 0), (2, 35, 480), (2, 10, 480)]
    # The second row gives no image size: its three are counted, not placed; a zero-width column is degenerate.
    assert fast_report.counts["marks_not_loaded"] == {NO_IMAGE_SIZE: 4}
    assert fast_report.counts["degenerate_marks"] == {"column": 1}
    # The new front end has no such tools: an x or a y alone there is no shape, an x and a width no rectangle.
    fem_marks = both_routes(cells[:1], fem=np.ones(1, bool), image_sizes=sizes[:1])
    assert fem_marks[2].counts["marks_not_loaded"] == {"not a shape": 2, "non-numeric coordinates": 2}


def test_full_image_tools_take_the_size_of_their_own_frame():
    # A two-frame subject whose frames differ in size (a wide first frame, a small second one), then a row whose
    # front end loaded only the second frame ([null, {...}]); frame 2 is given by neither.
    metadata = pa.array([
        ('{"subject_dimensions":[{"clientWidth":500,"clientHeight":375,"naturalWidth":640,"naturalHeight":480},'
         '{"clientWidth":500,"clientHeight":312,"naturalWidth":320,"naturalHeight":200.5}],"source":"api"}'),
        '{"source":"api","subject_dimensions": [null, {"naturalWidth": 1000, "naturalHeight": 750}]}',
        '{"subject_dimensions":[null]}',
        '{"source":"api"}',
    ])
    sizes = image_sizes(metadata)
    assert sizes.shape == (4, 2, 2)
    np.testing.assert_array_equal(sizes[0], [[640, 480], [320, 200.5]])
    np.testing.assert_array_equal(sizes[1], [[np.nan, np.nan], [1000, 750]])
    assert np.isnan(sizes[2:]).all()
    cells = [
        ('[{"task": "T0", "value": [{"y": 40, "tool": 0, "frame": 0}, {"y": 40, "tool": 0, "frame": 1},'
         ' {"x": 30, "tool": 1, "frame": 1}, {"x": 10, "width": 25, "tool": 2, "frame": 1},'
         ' {"x": 30, "tool": 1, "frame": 2}]}]'),
        '[{"task": "T0", "value": [{"y": 40, "tool": 0, "frame": 1}, {"y": 40, "tool": 0}]}]',
    ]
    fast, slow, fast_report, slow_report = both_routes(cells, image_sizes=sizes[:2])
    assert fast is not None
    assert_same(fast, slow, fast_report, slow_report)
    marks = pd.DataFrame({name: fast[0][name] for name in MARK_COLUMNS})
    assert marks[["row", "frame", "kind", "x", "y", "width", "height"]].values.tolist() == [
        [0, 0, "fullWidthLine", 0, 40, 640, 0],
        [0, 1, "fullWidthLine", 0, 40, 320, 0],
        [0, 1, "fullHeightLine", 30, 0, 0, 200.5],
        [0, 1, "column", 10, 0, 25, 200.5],
        [1, 1, "fullWidthLine", 0, 40, 1000, 0],
    ]
    # Frame 2 of the first row and frame 0 of the second have no size: counted, not given another frame's.
    assert fast_report.counts["marks_not_loaded"] == {NO_IMAGE_SIZE: 2}
    # As the loader calls it: the sizes found in each row's metadata.
    report = LoadReport("f", "t")
    loaded, _ = extract_marks(pa.array(cells), np.zeros(2, bool), None, None, None, report, metadata=metadata[:2])
    pd.testing.assert_frame_equal(pd.DataFrame({name: loaded[name] for name in MARK_COLUMNS}), marks)
    assert report.counts["marks_not_loaded"] == {NO_IMAGE_SIZE: 2}


def test_new_front_end_circles_and_ellipses_are_read_from_their_centre():
    cells = [('[{"task": "T0", "value": [{"x_center": 50, "y_center": 60, "radius": 10, "toolIndex": 0,'
              ' "toolType": "circle"}, {"x_center": 20, "y_center": 30, "rx": 8, "ry": 4, "angle": 90,'
              ' "toolIndex": 1, "toolType": "ellipse"}, {"x": 5, "y": 5, "r": 2, "angle": 45, "tool": 2}]}]')]
    fast, slow, fast_report, slow_report = both_routes(cells, fem=np.ones(1, bool))
    assert fast is not None
    assert_same(fast, slow, fast_report, slow_report)
    marks = pd.DataFrame({name: fast[0][name] for name in MARK_COLUMNS})
    assert marks.kind.tolist() == ["circle", "ellipse", "circle"]
    np.testing.assert_allclose(marks[["x", "y", "width", "height"]].values,
                               [[40, 50, 20, 20], [16, 22, 8, 16], [3, 3, 4, 4]], atol=1e-9)
    # Only a classic circle keeps its handle angle (the new front end's circle has none).
    assert len(fast[0]["handle_mark"]) == 0
    classic = both_routes(cells, fem=np.zeros(1, bool))[0][0]
    assert classic["handle_mark"].tolist() == [2] and classic["handle_angle"].tolist() == [45.0]


def test_ellipses_keep_their_outline_turned_as_their_front_end_draws_it():
    # Both: centre (20, 30), rx 8, ry 4, angle 30. The new front end turns by +30° on screen (clockwise,
    # y down), the classic one by -30°: the end of rx lies below the centre in one, above it in the other.
    cell = '[{"task": "T0", "value": [{"x%s": 20, "y%s": 30, "rx": 8, "ry": 4, "angle": 30, "tool": 0}]}]'
    for fem, suffix, below in ((True, "_center", True), (False, "", False)):
        fast, slow, fast_report, slow_report = both_routes([cell % (suffix, suffix)], fem=np.array([fem]))
        assert fast is not None
        assert_same(fast, slow, fast_report, slow_report)
        xs, ys = fast[0]["vertex_x"], fast[0]["vertex_y"]
        assert len(xs) == ELLIPSE_OUTLINE_VERTICES and set(fast[0]["vertex_mark"]) == {0}
        np.testing.assert_allclose((xs[0], ys[0]), (20 + 8 * np.cos(np.radians(30)),
                                                    30 + (4 if below else -4)), atol=1e-9)
        # The box is the turned outline's envelope.
        box = [fast[0][name][0] for name in ("x", "y", "width", "height")]
        np.testing.assert_allclose(box, [xs.min(), ys.min(), np.ptp(xs), np.ptp(ys)], rtol=0.01)
