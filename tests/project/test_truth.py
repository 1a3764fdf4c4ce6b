"""A project's true objects: read from the demo's truth CSV layout, bad rows skipped and counted, kept by
load_project."""

from __future__ import annotations

import pytest

from project.truth import TRUTH_COLUMNS, read_truth


def test_the_truth_file_is_read_and_bad_rows_are_skipped_and_counted(tmp_path):
    path = tmp_path / "truth.csv"
    path.write_text("subject_id,truth_id,x,y,width,height,detectability\n"
                    "1,0,10.5,12,5,6,0.9\n"
                    "1,1,oops,12,5,6,0.9\n"  # line 3: x not a number
                    "2,0,1,2,-3,4,0.5\n"  # line 4: negative width
                    "2,1,1,2,3,4,0.5\n")
    truth, report = read_truth(path)
    assert truth[list(TRUTH_COLUMNS)].values.tolist() == [[1, 10.5, 12, 5, 6], [2, 1, 2, 3, 4]]
    assert str(truth.subject_id.dtype) == "int64" and truth.truth_id.tolist() == ["0", "1"]  # other columns kept
    assert (report.rows_read, report.rows_loaded) == (4, 2)
    assert list(report.skipped.values()) == [2] and list(report.skipped_lines.values()) == [[3, 4]]


def test_a_file_without_the_columns_is_refused_naming_it(tmp_path):
    path = tmp_path / "not-truth.csv"
    path.write_text("subject_id,x,y\n1,2,3\n")
    with pytest.raises(ValueError, match=r"not-truth\.csv.*missing width, height"):
        read_truth(path)


def test_the_demo_loads_its_truth(tmp_path):
    from zoolens import demo

    files = demo.write_demo(tmp_path / "demo", n_subjects=4)
    project = demo.load_demo(files, method="iou")
    written = demo.demo_simulation(4).truth
    assert len(project.truth) == len(written) > 0
    assert sorted(project.truth.subject_id.unique()) == sorted(written.subject_id.unique())
    assert any(report.format == "truth" for report in project.reports)
