"""panoptes_aggregation outputs: real polygon extractor/reducer files, hand-made rectangle files, junk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from data_loaders import FormatError, identify_format, read
from data_loaders._csv import parse_literals
from data_loaders.aggregation_outputs import read_aggregation_output
from tests.data_loaders.loader_properties import junk_bytes_test, junk_rows_test, write

DATA = Path(__file__).resolve().parents[1] / "data"
POLYGON_EXTRACTIONS = "aggregation_for_caesar/polygon_extractor_extractions.csv"
POLYGON_REDUCTIONS = "aggregation_for_caesar/polygon_reducer_reductions_median.csv"
RECTANGLE_EXTRACTIONS = "handmade/shape_extractor_rectangle_extractions.csv"
DBSCAN_REDUCTIONS = "handmade/shape_reducer_dbscan_reductions.csv"
HDBSCAN_REDUCTIONS = "handmade/shape_reducer_hdbscan_reductions.csv"


def test_polygon_extractions(data_dir):
    result = read_aggregation_output(data_dir / POLYGON_EXTRACTIONS)
    marks, report = result.marks, result.report
    # Counted independently (pandas + ast.literal_eval over the pathX cells): 140 toolIndex0 and
    # 17 toolIndex1 polygons in 128 rows, 9 of which drew none; SOURCES.md: user_id "2820500.0"
    # in 21 rows.
    assert report.rows_read == 128 and report.rows_loaded == 128
    assert len(marks) == 157
    assert marks["tool"].value_counts().to_dict() == {0: 140, 1: 17}
    assert (marks["kind"] == "polygon").all()
    assert marks["classification_id"].nunique() == 128 - 9
    assert report.counts["classifications"] == 128
    assert (marks["user_id"].isna() == marks["user"].str.startswith("not-logged-in-")).all()
    first = marks.iloc[0]
    assert first["classification_id"] == 613379977 and first["user_id"] == 2820500
    # The bounding box of the first polygon, read off its pathX / pathY lists.
    assert (first["x"], first["y"]) == (127.35, 112.05)
    assert first["width"] == pytest.approx(471.70 - 127.35)
    assert first["height"] == pytest.approx(431.85 - 112.05)


def test_polygon_reductions_consensus_and_links(data_dir):
    result = read_aggregation_output(data_dir / POLYGON_REDUCTIONS)
    consensus, links, report = result.consensus, result.links, result.report
    # Counted independently: toolIndex0 has 30 clusters holding 109 marks, 140 labels of which
    # 31 are -1; toolIndex1 has 1 cluster of 2 marks, 17 labels of which 15 are -1.
    assert report.rows_read == 30 and report.rows_loaded == 30
    assert len(consensus) == 31
    assert consensus.groupby("tool")["n_votes"].sum().to_dict() == {0: 109, 1: 2}
    assert len(links) == 157 and (links["consensus_id"] == -1).sum() == 46
    assert (consensus["kind"] == "polygon").all()
    assert consensus["n_seen"].isna().all()  # the polygon reducer does not record it
    assert set(consensus["source"]) == {
        "polygon_reducer (panoptes_aggregation 5.1.0; min_samples=2, eps=0.5, average_type=median)"}
    assert consensus.loc[0, "consensus_score"] == pytest.approx(0.821361511682781)
    # Every link to a cluster points at a consensus row of the same subject, frame, task and tool.
    linked = links[links["consensus_id"] >= 0].merge(consensus, on="consensus_id",
                                                     suffixes=("", "_c"))
    assert len(linked) == 111
    assert (linked["subject_id"] == linked["subject_id_c"]).all()
    assert (linked["tool"] == linked["tool_c"]).all()
    per_cluster = linked.groupby("consensus_id").size()
    assert (per_cluster == consensus.set_index("consensus_id")["n_votes"][per_cluster.index]).all()
    assert len(result.reductions) == 30


def test_rectangle_extractions(data_dir):
    result = read_aggregation_output(data_dir / RECTANGLE_EXTRACTIONS)
    marks = result.marks
    # Hand-made file (SOURCES.md): 8 classifications, 13 rectangles.
    assert result.report.rows_read == 8 and result.report.rows_loaded == 8
    assert len(marks) == 13 and (marks["kind"] == "rectangle").all()
    assert marks.groupby("subject_id").size().to_dict() == {1001: 8, 1002: 2, 1003: 3}
    assert marks[marks["frame"] == 1]["subject_id"].tolist() == [1003, 1003]
    logged_out = marks[marks["user"] == "not-logged-in-1a2b3c"]
    assert logged_out["user_id"].isna().all() and len(logged_out) == 2
    assert marks.iloc[1][["x", "y", "width", "height"]].tolist() == [250.0, 40.0, 30.0, 30.0]
    assert result.report.counts["classifications"] == 8


def test_rectangle_dbscan_reductions(data_dir):
    result = read_aggregation_output(data_dir / DBSCAN_REDUCTIONS)
    consensus, links = result.consensus, result.links
    assert result.report.rows_read == 4 and result.report.rows_loaded == 4
    assert consensus[["subject_id", "frame", "x", "y", "width", "height", "n_votes"]].values.tolist() == [
        [1001, 0, 101.0, 100.0, 20.0, 21.0, 3],
        [1001, 0, 251.0, 41.0, 30.0, 29.0, 2],
        [1003, 1, 70.0, 80.0, 20.0, 20.0, 2],
    ]
    assert (consensus["kind"] == "rectangle").all()
    assert len(links) == 13 and (links["consensus_id"] == -1).sum() == 6
    subject = links[(links["subject_id"] == 1001) & (links["tool"] == 0)]
    assert subject["consensus_id"].tolist() == [0, 1, 0, -1, 0, 1]
    assert subject["mark_index"].tolist() == [0, 1, 2, 3, 4, 5]
    assert subject[["x", "y", "width", "height"]].values[3].tolist() == [300.0, 300.0, 10.0, 10.0]
    # Subject 1004 was reduced to nothing: no consensus, still listed.
    summary = result.reductions.set_index("subject_id")
    assert summary.loc[1004, "n_consensus"] == 0 and summary.loc[1004, "n_marks"] == 0
    assert summary.loc[1001, "n_marks"] == 8


def test_rectangle_hdbscan_new_front_end_centres(data_dir):
    result = read_aggregation_output(data_dir / HDBSCAN_REDUCTIONS)
    consensus, links = result.consensus, result.links
    assert len(consensus) == 1
    row = consensus.iloc[0]
    # x_center 110, width 20.5 -> top-left 99.75.
    assert (row["x"], row["y"], row["width"], row["height"]) == (99.75, 99.75, 20.5, 20.5)
    assert row["sigma"] == 0.12 and row["n_votes"] == 3
    assert links["probability"].tolist() == [1.0, 0.9, 0.85, 0.0, 0.0, 0.0]
    assert links.iloc[0][["x", "y", "width", "height"]].tolist() == [100.0, 100.0, 20.0, 20.0]
    assert (links["consensus_id"] == -1).sum() == 3


def test_bad_cells_skip_their_row_once(data_dir, tmp_path):
    lines = (data_dir / DBSCAN_REDUCTIONS).read_text().splitlines()
    header, rows = lines[0], lines[1:]
    broken = rows[0].replace('"[3, 2]"', '"[3, two]"')
    uneven = rows[1].replace('"[10.0, 200.0]","[10.0, 200.0]"', '"[10.0, 200.0]","[10.0]"')
    labels = rows[2].replace("[0, 0]", "[0.5, 0]")
    path = write(tmp_path / "r.csv", "\n".join([header, broken, uneven, labels, rows[3]]) + "\n")
    result = read_aggregation_output(path)
    report = result.report
    assert report.rows_read == 4 and report.rows_loaded == 1
    assert report.skipped == {
        "data.frame0.T0_tool0_clusters_count is not a list of numbers": 1,
        "lists of one tool differ in length": 1,
        "data.frame1.T0_tool0_cluster_labels holds a label that is not an integer": 1,
    }
    assert report.skipped_lines["lists of one tool differ in length"] == [3]
    assert len(result.consensus) == 0 and list(result.reductions["subject_id"]) == [1004]


def test_path_with_flat_y_skips_its_row(data_dir, tmp_path):
    # Hypothesis found this: pathX holds paths but pathY a flat list (a truncated cell), which
    # once crashed building the bounding boxes. The row is skipped; the others load.
    lines = (data_dir / POLYGON_EXTRACTIONS).read_text().splitlines()
    header, rows = lines[0], lines[1:4]
    before_y, path_y = rows[0].rsplit(',"[[', 1)
    flat_y = before_y + ',"[1.0, 2.0]' + path_y[path_y.index('"'):]
    assert flat_y.count(",") == rows[0].count(",") - path_y[:path_y.index('"')].count(",") + 1
    path = write(tmp_path / "p.csv", "\n".join([header, flat_y, *rows[1:]]) + "\n")
    report = read_aggregation_output(path).report
    assert report.rows_read == 3 and report.rows_loaded == 2
    assert report.skipped == {"data.frame0.T0_toolIndex0_pathY is not a list of numbers": 1}
    assert report.skipped_lines["data.frame0.T0_toolIndex0_pathY is not a list of numbers"] == [2]


def test_a_broken_cell_that_looks_nested_skips_its_row(data_dir, tmp_path):
    # Hypothesis found this: the first row's raw y cell opens a list of lists ("[[10.0, 200.0]"), which once
    # made the whole column nested and crashed building the raw boxes with a pandas error. The row is skipped
    # and counted; the others load.
    lines = (data_dir / DBSCAN_REDUCTIONS).read_text().splitlines()
    header, rows = lines[0], lines[1:]
    broken = ('1002,99001,T0,shape_reducer_dbscan,4.1.0,"[10.0, 200.0]","[[10.0, 200.0]","[30.0, 40.0]",'
              '"[30.0, 40.0]","[-1, -1]"' + "," * (header.count(",") - 9))
    path = write(tmp_path / "r.csv", "\n".join([header, broken, *rows]) + "\n")
    report = read_aggregation_output(path).report
    assert report.rows_read == len(rows) + 1 and report.rows_loaded == len(rows)
    assert report.skipped == {"data.frame0.T0_tool0_rectangle_y is not a list of numbers": 1}
    assert report.skipped_lines["data.frame0.T0_tool0_rectangle_y is not a list of numbers"] == [2]


def test_literal_cells_are_parsed_without_eval():
    values, ok = parse_literals(["[np.float64(1.0), np.float64(0.5)]", "[nan, 2.0]",
                                 "['rectangle', 'rectangle']", "__import__('os').getcwd()", "[1, 2"])
    assert values[:3] == [[1.0, 0.5], [None, 2.0], ["rectangle", "rectangle"]]
    assert ok.tolist() == [True, True, True, False, False]


def test_identified(data_dir):
    for name in (POLYGON_EXTRACTIONS, POLYGON_REDUCTIONS, RECTANGLE_EXTRACTIONS, DBSCAN_REDUCTIONS,
                 HDBSCAN_REDUCTIONS):
        assert identify_format(data_dir / name) == "panoptes_aggregation"
    assert len(read(data_dir / DBSCAN_REDUCTIONS).consensus) == 3


def test_not_an_aggregation_output(tmp_path):
    with pytest.raises(FormatError, match="not a panoptes_aggregation"):
        read_aggregation_output(write(tmp_path / "x.csv", "subject_id,other\n1,2\n"))


def _links_point_at_consensus(result):
    assert np.isin(result.links["consensus_id"], np.r_[-1, result.consensus["consensus_id"]]).all()


test_junk_bytes = junk_bytes_test(read_aggregation_output, "reductions.csv",
                                  prefix=b"subject_id,workflow_id,task,reducer\n", use_cache=False)
test_junk_reduction_rows = junk_rows_test(read_aggregation_output, DATA / DBSCAN_REDUCTIONS,
                                          check=_links_point_at_consensus, use_cache=False)
test_junk_extraction_rows = junk_rows_test(read_aggregation_output, DATA / POLYGON_EXTRACTIONS,
                                           first_lines=20, use_cache=False)
