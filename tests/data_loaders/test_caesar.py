"""Caesar exports: hand-made extracts and reductions in Caesar's CSV format, bad frames, junk."""

from __future__ import annotations

from pathlib import Path

import pytest

from data_loaders import FormatError, identify_format
from data_loaders.caesar import read_caesar_export
from tests.data_loaders.loader_properties import junk_bytes_test, junk_rows_test, write

DATA = Path(__file__).resolve().parents[1] / "data"
REDUCTIONS = "handmade/caesar_reductions_rectangles.csv"
EXTRACTS = "handmade/caesar_extracts_rectangles.csv"


def test_reductions_unpack_the_frame_objects(data_dir):
    result = read_caesar_export(data_dir / REDUCTIONS)
    consensus, links = result.consensus, result.links
    # Hand-made (SOURCES.md): subjects 1001, 1003, 1004 of the DBSCAN example.
    assert result.report.rows_read == 3 and result.report.rows_loaded == 3
    assert consensus[["subject_id", "frame", "x", "y", "width", "height", "n_votes"]].values.tolist() == [
        [1001, 0, 101.0, 100.0, 20.0, 21.0, 3],
        [1001, 0, 251.0, 41.0, 30.0, 29.0, 2],
        [1003, 1, 70.0, 80.0, 20.0, 20.0, 2],
    ]
    assert set(consensus["source"]) == {"caesar rectangles (panoptes_aggregation 4.1.0)"}
    # 8 labels for 1001 (6 + 2), 3 for 1003 (1 + 2); noise: 1 + 2 + 1.
    assert len(links) == 11 and (links["consensus_id"] == -1).sum() == 4
    assert links[links["subject_id"] == 1001]["consensus_id"].tolist()[:6] == [0, 1, 0, -1, 0, 1]
    assert result.reductions.set_index("subject_id").loc[1004, "n_consensus"] == 0


def test_extracts(data_dir):
    result = read_caesar_export(data_dir / EXTRACTS)
    marks = result.marks
    assert result.report.rows_read == 4 and result.report.rows_loaded == 4
    assert len(marks) == 7
    assert marks.groupby("classification_id").size().to_dict() == {5000001: 3, 5000002: 2,
                                                                    5000006: 2}
    assert marks["user_id"].isna().sum() == 2  # the logged-out classification's two marks
    assert marks[marks["frame"] == 1][["x", "y"]].values.tolist() == [[70.0, 80.0]]


def test_a_broken_frame_object_skips_its_row(data_dir, tmp_path):
    lines = (data_dir / REDUCTIONS).read_text().splitlines()
    broken = lines[2].replace('"{""T0_tool0_rectangle_x"":[60.0]', '"{T0_tool0_rectangle_x:[60.0]', 1)
    path = write(tmp_path / "r.csv", "\n".join([lines[0], lines[1], broken, lines[3]]) + "\n")
    result = read_caesar_export(path)
    assert result.report.rows_read == 3 and result.report.rows_loaded == 2
    assert result.report.skipped == {"data.frame0 is not a JSON object": 1}
    assert result.report.skipped_lines["data.frame0 is not a JSON object"] == [3]
    assert sorted(result.consensus["subject_id"].unique()) == [1001]
    assert list(result.reductions["subject_id"]) == [1001, 1004]


def test_identified(data_dir):
    assert identify_format(data_dir / REDUCTIONS) == "caesar"
    assert identify_format(data_dir / EXTRACTS) == "caesar"


def test_not_a_caesar_export(tmp_path):
    with pytest.raises(FormatError, match="not a Caesar extracts or reductions export"):
        read_caesar_export(write(tmp_path / "x.csv", "reducer_key,other\nk,2\n"))


test_junk_bytes = junk_bytes_test(read_caesar_export, "caesar.csv",
                                  prefix=b"id,reducer_key,subject_id,data.frame0\n", use_cache=False)
test_junk_reduction_rows = junk_rows_test(read_caesar_export, DATA / REDUCTIONS, use_cache=False)
test_junk_extract_rows = junk_rows_test(read_caesar_export, DATA / EXTRACTS, use_cache=False)
