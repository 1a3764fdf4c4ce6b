"""Machine detections from CSV, Parquet, FITS and COCO results JSON: canonical rows, bad rows counted by line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data_loaders import FormatError, identify_format, read, read_detections
from data_loaders.schema import DETECTIONS
from tests.data_loaders.loader_properties import junk_bytes_test, junk_rows_test

CSV_SKIPS = {
    "wrong number of columns": [10],
    "subject_id is not an integer": [6],
    "x is not a number": [5],
    "width is not a number >= 0": [7],
    "height is not a number >= 0": [9],
    "score is not a number": [8],
}


def _skips(report) -> dict[str, list[int]]:
    return {reason: report.skipped_lines[reason] for reason in report.skipped}


def test_csv_rows_boxes_points_and_skips(data_dir):
    result = read(data_dir / "handmade" / "detections.csv")
    detections = result.detections
    assert list(detections.columns[:len(DETECTIONS)]) == list(DETECTIONS)
    assert detections["subject_id"].tolist() == [1001, 1001, 1002, 1005]
    assert detections["detection_id"].tolist() == [0, 1, 2, 3]
    assert detections[["x", "y", "width", "height"]].to_numpy().tolist() == [
        [10, 20, 30, 40], [100.5, 100, 0, 0], [5, 5, 10, 10], [50, 60, 12, 14]]
    assert detections["kind"].tolist() == ["rectangle", "point", "rectangle", "rectangle"]
    assert detections["score"].tolist() == [0.9, 0.7, 0.55, 0.35]
    assert detections["label"].tolist() == ["clump", "clump", "odd clump", '=HYPERLINK("http://x","y")']
    assert (detections["source"] == "detections").all()
    assert detections["run"].tolist() == ["a", "a", "b", "c"]  # another column of the file, kept
    report = result.report
    assert (report.rows_read, report.rows_loaded, report.rows_skipped) == (10, 4, 6)
    assert _skips(report) == CSV_SKIPS
    assert report.counts["points"] == 1


def test_parquet_reads_like_the_csv(data_dir, tmp_path):
    text = pd.read_csv(data_dir / "handmade" / "detections.csv", dtype=str, keep_default_na=False)
    text = text.drop(index=8).rename(columns={"subject_id": "Subject_ID", "score": "SCORE"})
    path = tmp_path / "run.parquet"
    text.to_parquet(path, index=False)
    assert identify_format(path) == "detections"
    result = read(path, source="frcnn-2024")
    assert result.detections["subject_id"].tolist() == [1001, 1001, 1002, 1005]
    assert (result.detections["source"] == "frcnn-2024").all()
    # Parquet rows are numbered from 1: the CSV's line 5 is row 4 here.
    assert result.report.skipped_lines["x is not a number"] == [4]
    assert result.report.rows_skipped == 5
    # Typed columns (as a detector writes them) give the same rows.
    typed = tmp_path / "typed.parquet"
    result.detections.drop(columns=["source"]).to_parquet(typed, index=False)
    again = read(typed, source="frcnn-2024").detections
    pd.testing.assert_frame_equal(again, result.detections)


def test_fits_table_with_upper_case_columns_and_masked_cells(tmp_path):
    from astropy.table import MaskedColumn, Table

    table = Table({
        "SUBJECT_ID": np.array([11, 12, 13, 14], dtype=np.int64),
        "X": [1.0, 2.0, 3.0, np.nan],
        "Y": [1.0, 2.0, 3.0, 4.0],
        "WIDTH": MaskedColumn([5.0, 0.0, 6.0, 1.0], mask=[False, True, False, False]),
        "HEIGHT": MaskedColumn([5.0, 0.0, 6.0, 1.0], mask=[False, True, False, False]),
        "SCORE": np.array([0.8, 0.6, 0.4, 0.2], dtype=np.float32),
        "LABEL": ["clump", "clump", "star", "clump"],
    })
    path = tmp_path / "detections.fits"
    table.write(path)
    assert identify_format(path) == "detections"
    result = read_detections(path)
    detections = result.detections
    assert detections["subject_id"].tolist() == [11, 12, 13]
    assert detections["kind"].tolist() == ["rectangle", "point", "rectangle"]
    assert detections["width"].tolist() == [5.0, 0.0, 6.0]
    assert np.allclose(detections["score"], [0.8, 0.6, 0.4])
    assert detections["label"].tolist() == ["clump", "clump", "star"]
    assert _skips(result.report) == {"x is not a number": [4]}


def test_a_fits_table_without_scores_stays_a_catalogue(tmp_path):
    from astropy.table import Table

    path = tmp_path / "catalogue.fits"
    Table({"ra": [10.0], "dec": [20.0], "x": [1.0], "y": [2.0], "subject_id": [3]}).write(path)
    assert identify_format(path) == "catalogue"


COCO_SKIPS = {
    "not a JSON object": [6],
    "image_id is not an integer": [7],
    "image_id is not in the image_subjects mapping": [5],
    "bbox is not [x, y, width, height] in numbers": [4],
    "score is not a number": [8],
    "detection_id repeats an earlier row's": [9],
}


@pytest.mark.parametrize("mapping", ["csv", "json", "dict"])
def test_coco_results_with_an_image_to_subject_mapping(data_dir, tmp_path, mapping):
    pairs = {1: 1001, 2: 1002, 3: 1003}
    image_subjects = {
        "csv": data_dir / "handmade" / "detections_coco_images.csv",
        "json": tmp_path / "images.json",
        "dict": pairs,
    }[mapping]
    (tmp_path / "images.json").write_text(json.dumps({str(k): v for k, v in pairs.items()}))
    path = data_dir / "handmade" / "detections_coco.json"
    assert identify_format(path) == "detections"
    result = read(path, image_subjects=image_subjects)
    detections = result.detections
    assert detections["subject_id"].tolist() == [1001, 1001, 1002]
    assert detections["image_id"].tolist() == [1, 1, 2]
    assert detections["detection_id"].tolist() == [7, 8, 9]
    assert detections[["x", "y", "width", "height"]].to_numpy().tolist() == [
        [10, 20, 30, 40], [50, 50, 8, 8], [5, 5, 10, 10]]
    assert detections["label"].tolist() == ["1", "2", "1"]
    assert detections["score"].tolist() == [0.9, 0.25, 0.5]
    assert (detections["source"] == "detections_coco").all()
    assert _skips(result.report) == COCO_SKIPS
    assert result.report.rows_read == 9


def test_coco_results_without_a_mapping_use_image_ids(data_dir):
    result = read(data_dir / "handmade" / "detections_coco.json")
    assert result.detections["subject_id"].tolist() == [1, 1, 2, 99]
    assert "image_id is not in the image_subjects mapping" not in result.report.skipped


def test_a_mapping_that_maps_one_image_to_two_subjects_is_an_error(data_dir, tmp_path):
    mapping = tmp_path / "images.csv"
    mapping.write_text("image_id,subject_id\n1,1001\n1,1002\n")
    with pytest.raises(FormatError, match=r"images.csv: image id 1 is mapped to more than one subject"):
        read(data_dir / "handmade" / "detections_coco.json", image_subjects=mapping)


def test_a_mapping_is_only_for_coco_files(data_dir):
    with pytest.raises(ValueError, match="image_subjects maps COCO image ids"):
        read(data_dir / "handmade" / "detections.csv", image_subjects={1: 2})


def test_broken_json_names_the_file(tmp_path):
    path = tmp_path / "cut.json"
    path.write_text('[{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.5},')
    assert identify_format(path) == "detections"
    with pytest.raises(FormatError, match=r"cut.json: not COCO results JSON"):
        read(path)


def test_a_table_without_scores_is_not_detections(tmp_path):
    path = tmp_path / "boxes.csv"
    path.write_text("subject_id,x,y,width,height\n1,2,3,4,5\n")
    with pytest.raises(FormatError, match="score"):
        read_detections(path)


# --------------------------------------------------------------------------- junk


HANDMADE = Path(__file__).resolve().parents[1] / "data" / "handmade"

test_junk_bytes_csv = junk_bytes_test(read_detections, "detections.csv", prefix=b"subject_id,x,y,score\n")
test_junk_bytes_json = junk_bytes_test(read_detections, "detections.json",
                                       prefix=b'[{"image_id": 1, "bbox": [1, 2, 3, 4], "score": 0.5}, ')
test_junk_bytes_parquet = junk_bytes_test(read_detections, "detections.parquet", prefix=b"PAR1", suffix=b"PAR1")
test_junk_rows = junk_rows_test(read_detections, HANDMADE / "detections.csv")
test_junk_results = junk_rows_test(read_detections, HANDMADE / "detections_coco.json")
