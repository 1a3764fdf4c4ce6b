"""Classification exports: real files from both front ends, and hand-made rows with known answers.

Counts on the real files are the ones measured independently when the files were
collected (tests/data/SOURCES.md and ../shared/data/SOURCES.md), not read back
from zoolens.
"""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from data_loaders import FormatError, identify_format, read, read_classifications
from tests.exports import FEM, HEADER, boxes, row, write_export

# ----------------------------------------------------------------------------- real files


def test_classic_rectangles_small_discnet_file(data_dir):
    export = read_classifications(data_dir / "discnet" / "many-tools-classifications.csv")
    assert len(export.classifications) == 13
    kinds = export.marks["kind"].value_counts().to_dict()
    assert kinds == {"rectangle": 27, "point": 26, "circle": 13}
    assert export.classifications["subject_id"].nunique() == 11
    assert set(export.classifications["workflow_version"]) == {"50.46"}
    assert (export.classifications["user"] == "cmk24").all()
    assert (export.classifications["classifier"] == "pfe").all()
    rectangles = export.marks[export.marks["kind"] == "rectangle"]
    assert set(rectangles["task"]) == {"T4"}
    # SOURCES: one rectangle starts at negative x or y; it is a mark like any other.
    assert ((rectangles["x"] < 0) | (rectangles["y"] < 0)).sum() == 1


def test_classic_rectangle_values_are_top_left(data_dir):
    export = read_classifications(data_dir / "discnet" / "many-tools-classifications.csv",
                                  tasks="T4")
    first = export.marks[export.marks["classification_id"] == 420702379].iloc[0]
    # Copied by hand from line 2 of the file: {"x":409.25,"y":133.966...,"width":26,"height":20}
    assert (first["x"], first["width"], first["height"]) == (409.25, 26, 20)
    assert first["y"] == pytest.approx(133.96665954589844)
    assert first["tool_label"] == "Ear"


def test_classic_march_file_versions_and_logged_out_users(data_dir):
    path = data_dir / "discnet" / "many-tools-classifications_march_7_2023.csv"
    export = read_classifications(path, workflow_id=21790)
    assert len(export.classifications) == 113
    assert (export.marks["kind"] == "rectangle").sum() == 206
    assert export.report.counts["workflows"] == {
        "21790": {"50.46": 90, "37.34": 11, "36.23": 8, "49.45": 4}}
    logged_out = export.classifications["user_id"].isna()
    assert logged_out.sum() == 72
    assert export.classifications.loc[logged_out, "user"].str.startswith("not-logged-in-").all()
    assert export.classifications["user"].nunique() == 21

    latest = read_classifications(path, workflow_id=21790, workflow_version="50.46")
    assert len(latest.classifications) == 90
    assert latest.report.skipped == {"other workflow version (kept 50.46)": 23}
    assert latest.report.rows_read == latest.report.rows_loaded + latest.report.rows_skipped


def test_penguin_watch_points(data_dir):
    path = data_dir / "penguin_watch" / "penguin-watch-classifications-trim.csv"
    export = read_classifications(path, workflow_id=6465)
    assert len(export.classifications) == 599
    assert len(export.marks) == 11505
    assert (export.marks["kind"] == "point").all()
    assert export.marks["width"].isna().all()
    assert export.classifications["user_id"].isna().sum() == 182
    # Float-formatted ids ("1784204.0") are integers.
    assert 1784204 in set(export.classifications["user_id"].dropna())
    versions = export.classifications["workflow_version"].value_counts().to_dict()
    assert versions == {"52.76": 497, "31.37": 95, "47.49": 7}

    boxed = read_classifications(path, workflow_id=6465, point_box=20)
    assert (boxed.marks["kind"] == "point-as-box").sum() == 11505
    assert (boxed.marks["width"] == 20).all()


def test_new_front_end_file(data_dir):
    export = read_classifications(data_dir / "aggregation_for_caesar" / "cat-project-classifications.csv")
    assert len(export.classifications) == 153
    assert (export.classifications["classifier"] == "fem").all()
    assert export.marks["kind"].value_counts().to_dict() == {"freehandLine": 165, "polygon": 19}
    assert export.classifications["user_id"].isna().sum() == 114
    assert export.marks["tool_label"].isna().all()


def test_format_is_identified_from_content(data_dir, tmp_path):
    source = data_dir / "discnet" / "many-tools-classifications.csv"
    renamed = tmp_path / "export.txt"
    renamed.write_bytes(source.read_bytes())
    assert identify_format(renamed) == "classifications"
    assert len(read(renamed).classifications) == 13


def test_gzipped_export(data_dir, tmp_path):
    source = data_dir / "discnet" / "many-tools-classifications.csv"
    packed = tmp_path / "export.csv.gz"
    packed.write_bytes(gzip.compress(source.read_bytes()))
    assert len(read_classifications(packed).marks) == 66


def test_truncated_gzip_is_one_clear_error(tmp_path):
    box = {"tool": 0, "x": 1, "y": 2, "width": 3, "height": 4}
    plain = write_export(tmp_path / "e.csv", [row(n, boxes(box)) for n in range(1, 3000)])
    packed = gzip.compress(plain.read_bytes())
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(FormatError, match=r"cut\.csv\.gz: cannot be read .*end-of-stream"):
        read_classifications(cut, use_cache=False)


def test_second_read_comes_from_the_cache(data_dir, monkeypatch):
    import data_loaders.classifications as module

    path = data_dir / "discnet" / "many-tools-classifications.csv"
    first = read_classifications(path)

    def fail(*args, **kwargs):
        raise AssertionError("parsed again instead of reading the cache")

    monkeypatch.setattr(module, "_parse_export", fail)
    second = read_classifications(path)
    assert second.marks.equals(first.marks)
    assert second.classifications.equals(first.classifications)
    assert second.report.to_dict() == first.report.to_dict()


# ----------------------------------------------------------------------------- hand-made rows


def test_new_front_end_rectangle_is_converted_from_centre(tmp_path):
    mark = {"toolIndex": 0, "toolType": "rectangle", "frame": 0, "x_center": 50, "y_center": 40,
            "width": 20, "height": 10, "details": []}
    path = write_export(tmp_path / "e.csv", [row(1, boxes(mark), metadata=FEM)])
    marks = read_classifications(path).marks
    assert marks[["x", "y", "width", "height", "angle"]].iloc[0].tolist() == [40, 35, 20, 10, 0]
    assert marks["kind"].iloc[0] == "rectangle"
    assert marks["tool"].iloc[0] == 0


def test_rotated_rectangles_from_both_front_ends(tmp_path):
    classic = {"tool": 1, "frame": 0, "x": 10, "y": 20, "width": 30, "height": 8, "angle": 45}
    new = {"toolIndex": 1, "toolType": "rotateRectangle", "frame": 1, "x_center": 25, "y_center": 24,
           "width": 30, "height": 8, "angle": 45}
    path = write_export(tmp_path / "e.csv", [row(1, boxes(classic)), row(2, boxes(new), metadata=FEM)])
    marks = read_classifications(path).marks
    assert (marks["kind"] == "rotateRectangle").all()
    # Both describe the same box: top-left (10, 20), rotated 45 degrees about its centre.
    assert marks[["x", "y", "width", "height", "angle"]].to_numpy().tolist() == [
        [10, 20, 30, 8, 45], [10, 20, 30, 8, 45]]
    assert marks["frame"].tolist() == [0, 1]


def test_points_become_boxes_from_subject_metadata(tmp_path):
    click = {"tool": 0, "frame": 0, "x": 100, "y": 60}
    rows = [
        row(1, boxes(click), subject_id=7, subject_data={"7": {"#fwhmImagePix": 4.0}}),
        row(2, boxes(click), subject_id=8, subject_data={"8": {"other": 1}}),
    ]
    path = write_export(tmp_path / "e.csv", rows)
    export = read_classifications(path, point_box="2.5*#fwhmImagePix")
    assert len(export.marks) == 1
    assert export.marks[["x", "y", "width", "height"]].iloc[0].tolist() == [95, 55, 10, 10]
    assert export.marks["kind"].iloc[0] == "point-as-box"
    assert export.report.counts["marks_not_loaded"] == {"point without subject metadata #fwhmImagePix": 1}
    assert read_classifications(path, point_box=(2.5, "fwhmImagePix")).marks.equals(export.marks)


def test_empty_and_skipped_tasks_are_classifications_with_no_marks(tmp_path):
    rows = [
        row(1, boxes({"tool": 0, "x": 1, "y": 2, "width": 3, "height": 4})),
        row(2, boxes(), user="bob"),          # looked, drew nothing
        row(3, [], user="carol"),             # skipped the drawing task
    ]
    export = read_classifications(write_export(tmp_path / "e.csv", rows))
    assert export.classifications.set_index("classification_id")["n_marks"].to_dict() == {1: 1, 2: 0, 3: 0}
    assert export.report.counts["empty_classifications"] == 2


def test_degenerate_boxes_are_counted_not_passed_on(tmp_path):
    rows = [row(1, boxes({"tool": 0, "x": 1, "y": 2, "width": 0, "height": 4},
                         {"tool": 0, "x": 1, "y": 2, "width": 5, "height": -1},
                         {"tool": 0, "x": 1, "y": 2, "width": 5, "height": 6}))]
    export = read_classifications(write_export(tmp_path / "e.csv", rows))
    assert len(export.marks) == 1
    assert export.report.counts["degenerate_marks"] == {"rectangle": 2}
    assert export.classifications["n_marks"].iloc[0] == 1


def test_workflow_filter_and_string_versions(tmp_path):
    box = {"tool": 0, "x": 1, "y": 2, "width": 3, "height": 4}
    rows = [row(1, boxes(box), version="13.10"), row(2, boxes(box), version="13.1"),
            row(3, boxes(box), workflow_id=2), row(4, boxes(box), version="14.2")]
    path = write_export(tmp_path / "e.csv", rows)
    export = read_classifications(path, workflow_id=1, workflow_version="13.10")
    assert export.classifications["classification_id"].tolist() == [1]
    assert export.classifications["workflow_version"].tolist() == ["13.10"]
    assert export.report.skipped == {"other workflow (kept workflow 1)": 1,
                                     "other workflow version (kept 13.10)": 2}
    assert export.report.skipped_lines["other workflow (kept workflow 1)"] == [4]
    major = read_classifications(path, workflow_id=1, workflow_version="13")
    assert sorted(major.classifications["classification_id"]) == [1, 2]
    with pytest.raises(ValueError, match="string"):
        read_classifications(path, workflow_version=13.10)


def test_repeat_classifications_are_kept_and_marked(tmp_path):
    box = {"tool": 0, "x": 1, "y": 2, "width": 3, "height": 4}
    rows = [row(1, boxes(box), created_at="2024-01-01 10:00:00 UTC"),
            row(2, boxes(box), created_at="2024-01-02 10:00:00 UTC"),
            row(3, boxes(box), user="bob", created_at="2024-01-03 10:00:00 UTC")]
    export = read_classifications(write_export(tmp_path / "e.csv", rows))
    repeats = export.classifications.set_index("classification_id")["repeat"].to_dict()
    assert repeats == {1: False, 2: True, 3: False}


def test_bad_rows_are_skipped_with_their_line_numbers(tmp_path):
    box = {"tool": 0, "x": 1, "y": 2, "width": 3, "height": 4}
    rows = [
        row(1, boxes(box)),
        row(2, '[{"task": "T0", "value": [{"x": 1,'),        # line 3: broken JSON
        row("x3", boxes(box)),                               # line 4: id not an integer
        row(4, boxes(box), created_at="yesterday"),          # line 5: date
        ["5", "only", "three"],                              # line 6: wrong number of columns
        row(6, boxes(box, {"tool": 0, "x": "a", "y": 2, "width": 3, "height": 4})),
    ]
    export = read_classifications(write_export(tmp_path / "e.csv", rows))
    report = export.report
    assert export.classifications["classification_id"].tolist() == [1, 6]
    assert report.rows_read == 6
    assert report.rows_loaded == 2
    assert report.skipped_lines == {
        "annotations is not valid JSON (a list of tasks)": [3],
        "classification_id is not an integer": [4],
        "created_at is not a date": [5],
        "wrong number of columns": [6],
    }
    assert report.counts["marks_not_loaded"] == {"non-numeric coordinates": 1}
    assert len(export.marks) == 2


@pytest.mark.parametrize("far_date", ["9999-12-31 23:59:59 UTC", "1600-01-01 00:00:00 UTC"])
@pytest.mark.parametrize("third_date", ["2024-01-03 10:00:00 UTC", "2024-13-03 10:00:00 UTC"])
def test_dates_pandas_cannot_hold_skip_their_row(tmp_path, far_date, third_date):
    # A real date outside pandas' nanosecond range (years 1677-2262) once crashed the loader, on
    # the clean-column fast route and, beside an impossible month, on the cell-by-cell one.
    box = {"tool": 0, "x": 1, "y": 2, "width": 3, "height": 4}
    rows = [row(1, boxes(box), created_at="2024-01-01 10:00:00 UTC"),
            row(2, boxes(box), created_at=far_date), row(3, boxes(box), created_at=third_date)]
    export = read_classifications(write_export(tmp_path / "e.csv", rows))
    third_is_a_date = third_date.startswith("2024-01")
    assert export.report.skipped_lines == {"created_at is not a date": [3] if third_is_a_date else [3, 4]}
    assert export.classifications["classification_id"].tolist() == ([1, 3] if third_is_a_date else [1])


def test_line_numbers_stay_true_past_quoted_newlines(tmp_path):
    box = {"tool": 0, "x": 1, "y": 2, "width": 3, "height": 4}
    rows = [row(1, boxes(box), user="two\nlines"), row(2, "not json")]
    export = read_classifications(write_export(tmp_path / "e.csv", rows))
    assert export.classifications["user"].tolist() == ["two\nlines"]
    assert export.report.skipped_lines == {"annotations is not valid JSON (a list of tasks)": [4]}


def _tiny_parts(monkeypatch, block_size=97, part_bytes=700):
    """Cut every file into parts of a few rows, so each cut lands somewhere awkward."""
    from data_loaders import classifications

    monkeypatch.setattr(classifications, "BLOCK_SIZE", block_size)
    monkeypatch.setattr(classifications, "PART_BYTES", part_bytes)


def _mixed_rows(wrong_width=False):
    box = {"tool": 0, "x": 1, "y": 2, "width": 3, "height": 4}
    text = [{"task": "T9", "value": "a comment\nover \"three\"\nlines, with commas"}]
    rows = []
    for n in range(1, 41):
        annotations = boxes(box) + (text if n % 3 == 0 else [])
        rows.append(row(n, annotations, user=f"user\n{n}" if n % 4 == 0 else f"user{n}",
                        subject_id=100 + n % 5))
    rows[6] = row(7, "not json")                 # line 8 + quoted newlines before it
    if wrong_width:
        rows[21] = ["22", "only", "three"]
    rows[30] = row("x31", boxes(box))            # an id that is not a number
    return rows


def _assert_same_read(one, other):
    import pandas as pd

    pd.testing.assert_frame_equal(one.classifications, other.classifications)
    pd.testing.assert_frame_equal(one.marks, other.marks)
    assert one.report.to_dict() == other.report.to_dict()


@pytest.mark.parametrize("wrong_width", [False, True])
def test_parts_cut_between_rows_past_quoted_newlines(tmp_path, monkeypatch, wrong_width):
    path = write_export(tmp_path / "e.csv", _mixed_rows(wrong_width))
    whole = read_classifications(path, use_cache=False)
    # Lines by hand: row n starts on line 1 + n + (rows before it named with a newline:
    # 4, 8, ...); the comments' newlines are escaped in their JSON, their quotes doubled.
    assert whole.report.skipped_lines == {
        "annotations is not valid JSON (a list of tasks)": [1 + 7 + 1],
        "classification_id is not an integer": [1 + 31 + 7],
        **({"wrong number of columns": [1 + 22 + 5]} if wrong_width else {}),
    }
    assert whole.report.rows_read == 40
    assert len(whole.classifications) == 38 - wrong_width
    assert whole.classifications.loc[whole.classifications["classification_id"] == 8, "user"].item() == "user\n8"
    # A row of the wrong width sends the file to pyarrow's streaming reader (see the
    # stray quote below), which needs whole rows in each of its blocks.
    _tiny_parts(monkeypatch, *((2048, 4096) if wrong_width else ()))
    _assert_same_read(read_classifications(path, use_cache=False), whole)


def test_stray_quote_falls_back_to_the_streaming_reader(tmp_path, monkeypatch):
    from data_loaders import classifications

    path = write_export(tmp_path / "e.csv", _mixed_rows())
    # A quote inside an unquoted cell is a character to CSV readers, but it leaves the
    # quotes before every later newline odd in number: no cut between rows is found.
    path.write_text(path.read_text().replace("user1,", 'us"er1,', 1))
    whole = read_classifications(path, use_cache=False)  # one part: nothing to cut
    assert whole.classifications["user"].iloc[0] == 'us"er1'
    assert whole.report.rows_loaded == 38
    original, streamed = classifications._streamed_parts, []

    def streamed_parts(*args):
        streamed.append(args)
        return original(*args)

    monkeypatch.setattr(classifications, "_streamed_parts", streamed_parts)
    _tiny_parts(monkeypatch, block_size=2048, part_bytes=4096)
    _assert_same_read(read_classifications(path, use_cache=False), whole)
    assert streamed  # the split gave up and pyarrow's reader found the rows


def test_hostile_cells_stay_data(tmp_path):
    box = {"tool": 0, "x": 1, "y": 2, "width": 3, "height": 4, "tool_label": "<b>clump</b>"}
    rows = [row(1, boxes(box), user="<script>alert(1)</script>"),
            row(2, boxes(box), user='=HYPERLINK("http://evil","x")'),
            row(3, boxes(box), user="__import__('os').system('true')")]
    export = read_classifications(write_export(tmp_path / "e.csv", rows))
    assert export.classifications["user"].tolist() == [
        "<script>alert(1)</script>", '=HYPERLINK("http://evil","x")', "__import__('os').system('true')"]
    assert set(export.marks["tool_label"]) == {"<b>clump</b>"}


def test_missing_column_is_one_clear_error(tmp_path):
    path = write_export(tmp_path / "e.csv", [row(1, [])[:-1]], header=HEADER[:-1])
    with pytest.raises(FormatError, match=r"e\.csv.*subject_ids"):
        read_classifications(path)


def test_mark_ids_do_not_depend_on_filters(data_dir):
    path = data_dir / "discnet" / "many-tools-classifications_march_7_2023.csv"
    everything = read_classifications(path).marks.set_index("mark_id")
    latest = read_classifications(path, workflow_version="50.46", tasks="T4").marks.set_index("mark_id")
    assert latest.index.is_unique
    shared = everything.loc[latest.index, ["x", "y", "width", "height"]]
    np.testing.assert_array_equal(shared.to_numpy(), latest[["x", "y", "width", "height"]].to_numpy())


# ----------------------------------------------------------------------------- vertices


def _drawn_values(path):
    """Each drawn mark's JSON (classification id, position, value), read with csv and json, not zoolens."""
    import csv
    import json

    csv.field_size_limit(1 << 30)
    with open(path, newline="") as handle:
        for record in csv.DictReader(handle):
            position = 0
            for task in json.loads(record["annotations"]):
                for value in task.get("value") or []:
                    if isinstance(value, dict):
                        yield int(record["classification_id"]), position, value
                        position += 1


def test_the_cat_projects_outlines_are_kept_vertex_by_vertex(data_dir):
    path = data_dir / "aggregation_for_caesar" / "cat-project-classifications.csv"
    export = read_classifications(path)
    vertices = export.mark_vertices
    assert list(vertices.columns) == ["mark_id", "vertex", "x", "y"]
    # Every one of the 165 freehand lines and 19 polygons keeps its outline, in the order drawn.
    expected = {}
    for classification_id, position, value in _drawn_values(path):
        xs = value["pathX"] if "pathX" in value else [point["x"] for point in value["points"]]
        ys = value["pathY"] if "pathY" in value else [point["y"] for point in value["points"]]
        expected[classification_id * 10_000 + position] = (xs, ys)
    assert len(expected) == 184 and set(vertices.mark_id) == set(expected) == set(export.marks.mark_id)
    assert len(vertices) == sum(len(xs) for xs, _ in expected.values())
    for mark_id, outline in vertices.groupby("mark_id"):
        assert outline.vertex.tolist() == list(range(len(outline)))
        np.testing.assert_array_equal(outline.x, expected[mark_id][0])
        np.testing.assert_array_equal(outline.y, expected[mark_id][1])
    # The marks keep their boxes (the vertices' extent), the geometry matching uses.
    extent = vertices.groupby("mark_id").agg(x0=("x", "min"), x1=("x", "max"), y0=("y", "min"), y1=("y", "max"))
    marks = export.marks.set_index("mark_id").loc[extent.index]
    np.testing.assert_allclose(marks[["x", "y"]].to_numpy(), extent[["x0", "y0"]].to_numpy())
    np.testing.assert_allclose(marks.width, extent.x1 - extent.x0)
    np.testing.assert_allclose(marks.height, extent.y1 - extent.y0)
    assert "vertices_not_kept" not in export.report.counts


def test_the_cat_projects_outlines_are_the_same_in_the_shared_copy(shared_data):
    shared = read_classifications(shared_data / "aggregation_for_caesar" / "cat-project-classifications.csv")
    assert len(shared.mark_vertices) == shared.mark_vertices.groupby("mark_id").size().sum()
    assert shared.mark_vertices.mark_id.nunique() == 184


#: tests/data/handmade/vertex_tools_classifications.csv, by hand: mark id -> kind and vertices.
HANDMADE_OUTLINES = {
    # classic front end (tools not named in the export: every point list loads as a polygon)
    90010000: ("polygon", [(10, 10), (40, 10), (40, 30)]),  # polygon tool
    90010001: ("line", [(5, 50), (60, 70)]),  # line tool
    90010002: ("polygon", [(70, 5), (72.5, 9), (75, 14)]),  # freehand line
    90010003: ("polygon", [(20, 60), (30, 55), (35, 65), (22, 70)]),  # freehand shape
    90010004: ("polygon", [(80, 20), (85, 25)]),  # freehand segment line
    90010005: ("polygon", [(50, 80), (60, 90), (70, 80)]),  # bezier control points
    90010007: ("fullWidthLine", [(0, 40), (100, 40)]),  # {"y": 40} across the 100-pixel-wide image
    # new front end (toolType named)
    90020000: ("polygon", [(12, 11), (41, 12), (39, 31)]),
    90020001: ("freehandLine", [(70, 6), (71, 10), (73.5, 15)]),
    90020002: ("line", [(6, 51), (61, 69)]),
    90020003: ("line", [(10, 80), (90, 80)]),  # transcriptionLine
    90030002: ("line", [(20, 20), (30, 25)]),
    90040003: ("polygon", [(5, 5), (9, 5), (9, 8)]),
}


@pytest.mark.parametrize("use_cache", [False, True])
def test_every_vertex_tool_keeps_its_vertices_and_bad_ones_are_counted(data_dir, use_cache):
    path = data_dir / "handmade" / "vertex_tools_classifications.csv"
    read_classifications(path)  # a second read is the cache's
    export = read_classifications(path, use_cache=use_cache)
    marks = export.marks.set_index("mark_id")
    vertices = export.mark_vertices
    assert sorted(vertices.mark_id.unique()) == sorted(HANDMADE_OUTLINES)
    for mark_id, (kind, outline) in HANDMADE_OUTLINES.items():
        assert marks.kind[mark_id] == kind, mark_id
        drawn = vertices[vertices.mark_id == mark_id]
        assert list(zip(drawn.x, drawn.y)) == outline and drawn.vertex.tolist() == list(range(len(outline)))
    # A triangle (x, y, r, angle) cannot be told from a circle in a classic export: a circle, no vertices,
    # whose handle angle is kept for a workflow export to turn it into a triangle (project.tool_kinds).
    assert marks.kind[90010006] == "circle"
    assert export.circle_handles.values.tolist() == [[90010006, 30.0]]
    assert marks.loc[90010007, ["x", "y", "width", "height"]].tolist() == [0, 40, 100, 0]
    # pathX of 3 and pathY of 2: the mark and its box stay, its vertices do not.
    assert marks.loc[90030001, ["x", "y", "width", "height"]].tolist() == [1, 4, 2, 1]
    assert export.report.counts["vertices_not_kept"] == {"pathX and pathY differ in length": 1}
    # A null, a string or a missing coordinate, and an empty path: the mark is not loaded.
    assert export.report.counts["marks_not_loaded"] == {"non-numeric coordinates": 4}
    assert len(marks) == 15


def test_no_vertex_marks_no_vertices(data_dir):
    export = read_classifications(data_dir / "discnet" / "many-tools-classifications.csv")
    assert export.mark_vertices.empty and list(export.mark_vertices.columns) == ["mark_id", "vertex", "x", "y"]
