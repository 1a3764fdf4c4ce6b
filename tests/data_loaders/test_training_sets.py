"""Training sets read back: COCO with pycocotools, YOLO by parsing, the manifest with the csv module."""

from __future__ import annotations

import contextlib
import csv
import io

import numpy as np
import pandas as pd
import pytest

from data_loaders.training_sets import write_coco, write_subject_manifest, write_yolo


@pytest.fixture
def project():
    subjects = pd.DataFrame({
        "subject_id": np.array([101, 102, 103, 104], dtype=np.int64),
        "locations": [{"0": "https://panoptes-uploads.zooniverse.org/101.png"},
                      {"0": "images/102.png", "1": "images/102-r.png"},
                      {"0": "images/103.png"},
                      None],
        "width": [200.0, 100.0, np.nan, 50.0],
        "height": [100.0, 100.0, np.nan, 50.0],
    })
    boxes = pd.DataFrame({
        "subject_id": np.array([101, 101, 102, 102, 102, 103, 104], dtype=np.int64),
        "consensus_id": np.arange(7, dtype=np.int64),
        "x": [10.0, 150.0, 90.0, 20.0, 5.0, 1.0, 1.0],
        "y": [20.0, 40.0, 95.0, 30.0, 5.0, 1.0, 1.0],
        "width": [30.0, 20.0, 20.0, 10.0, 10.0, 5.0, 5.0],
        "height": [10.0, 20.0, 10.0, 10.0, 0.0, 5.0, 5.0],
        "angle": [0.0, 0.0, 0.0, 30.0, 0.0, 0.0, 0.0],
        "label": ["clump", "odd clump", "clump", "clump", "clump", "clump", "clump"],
    })
    return boxes, subjects


def test_coco_reads_back_with_pycocotools(project, tmp_path):
    pytest.importorskip("pycocotools")
    from pycocotools.coco import COCO

    boxes, subjects = project
    path = tmp_path / "train.json"
    counts = write_coco(boxes, subjects, path)
    assert counts["rotated_boxes_left_out"] == 1 and counts["boxes_without_area_left_out"] == 1
    assert counts["subjects_without_image_left_out"] == 1 and counts["images_without_size"] == 1
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(path))
    assert sorted(coco.getImgIds()) == [101, 102, 103]
    assert coco.loadImgs(101)[0]["file_name"] == "https://panoptes-uploads.zooniverse.org/101.png"
    assert (coco.loadImgs(102)[0]["width"], coco.loadImgs(102)[0]["height"]) == (100, 100)
    assert "width" not in coco.loadImgs(103)[0]
    assert {category["name"]: category["id"] for category in coco.loadCats(coco.getCatIds())} == {
        "clump": 1, "odd clump": 2}
    read_back = {annotation["consensus_id"]: (annotation["image_id"], annotation["bbox"], annotation["category_id"])
                 for annotation in coco.loadAnns(coco.getAnnIds())}
    assert read_back == {0: (101, [10, 20, 30, 10], 1), 1: (101, [150, 40, 20, 20], 2),
                         2: (102, [90, 95, 20, 10], 1), 5: (103, [1, 1, 5, 5], 1)}
    assert coco.getAnnIds(imgIds=[101]) == [1, 2]


def test_the_consensus_scores_perfectly_against_its_own_coco_file(project, tmp_path):
    pytest.importorskip("pycocotools")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    boxes, subjects = project
    path = tmp_path / "train.json"
    write_coco(boxes, subjects, path)
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(path))
        results = coco.loadRes([{**annotation, "score": 1.0} for annotation in coco.loadAnns(coco.getAnnIds())])
        evaluation = COCOeval(coco, results, "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    assert evaluation.stats[1] == pytest.approx(1.0)


def _parse_yolo(folder, subject_id):
    text = (folder / "labels" / f"{subject_id}.txt").read_text()
    return [[float(value) for value in line.split()] for line in text.splitlines()]


def test_yolo_labels_read_back_as_the_boxes(project, tmp_path):
    boxes, subjects = project
    counts = write_yolo(boxes, subjects, tmp_path)
    assert counts["subjects_without_image_or_size_left_out"] == 2  # 103 has no size, 104 no image
    assert counts["rotated_boxes_left_out"] == 1 and counts["boxes_without_area_left_out"] == 1
    assert counts["boxes_cut_at_image_edge"] == 1  # 102's box, x 90-110 and y 95-105, in 100 x 100
    assert sorted(path.name for path in (tmp_path / "labels").iterdir()) == ["101.txt", "102.txt"]
    assert (tmp_path / "images.txt").read_text().splitlines() == [
        "https://panoptes-uploads.zooniverse.org/101.png", "images/102.png"]
    data = (tmp_path / "data.yaml").read_text()
    assert 'names:\n  0: "clump"\n  1: "odd clump"\n' in data and "nc: 2" in data

    # Back to pixels: class, then x_centre, y_centre, width, height as fractions of 200 x 100.
    first = np.array(_parse_yolo(tmp_path, 101))
    assert first[:, 0].tolist() == [0, 1]
    pixels = first[:, 1:] * [200, 100, 200, 100]
    assert pixels == pytest.approx(np.array([[25, 25, 30, 10], [160, 50, 20, 20]]), abs=1e-3)
    second = np.array(_parse_yolo(tmp_path, 102))
    assert second[:, 1:] * 100 == pytest.approx(np.array([[95, 97.5, 10, 5]]), abs=1e-3)  # cut at x 100, y 100


def test_yolo_writes_an_empty_label_file_for_a_subject_without_boxes(project, tmp_path):
    boxes, subjects = project
    write_yolo(boxes[boxes["subject_id"] != 102], subjects, tmp_path)
    assert (tmp_path / "labels" / "102.txt").read_text() == ""


def test_manifest_lists_locations_and_hidden_counts_safely(project, tmp_path):
    _, subjects = project
    disagreements = pd.DataFrame({"subject_id": [102, 101, 104, 999], "machine_only": [3, 1, 2, 5],
                                  "human_only": [0, 2, 1, 1],
                                  "note": ['=HYPERLINK("http://x","y")', "fine", "x", "y"]})
    path = tmp_path / "manifest.csv"
    counts = write_subject_manifest(disagreements, subjects, path)
    assert counts == {"subjects": 2, "subjects_without_location": 2, "locations_not_urls": 2,
                      "formula_cells_neutralised": 1}
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["external_id", "location:1", "location:2", "metadata:#subject_id",
                             "metadata:#machine_only", "metadata:#human_only", "metadata:#note"]
    assert [row["external_id"] for row in rows] == ["102", "101"]
    assert (rows[0]["location:1"], rows[0]["location:2"]) == ("images/102.png", "images/102-r.png")
    assert rows[1]["location:2"] == ""
    assert rows[0]["metadata:#note"] == "'=HYPERLINK(\"http://x\",\"y\")"
    assert rows[1]["metadata:#machine_only"] == "1"


def test_the_reviewed_catalogue_exports_as_reviewed(project, review_store, tmp_path):
    """Decisions in a real SQLite review store: a rejected box leaves, a redrawn one moves, an added one joins."""
    pytest.importorskip("pycocotools")
    from pycocotools.coco import COCO

    boxes, subjects = project
    boxes = boxes[boxes["angle"] == 0].drop(columns="label").reset_index(drop=True)
    rows = boxes.set_index("consensus_id")
    review_store.record("iou", 101, "reject", "ana", consensus_id=0, original=rows.loc[0].to_dict())
    review_store.record("iou", 101, "redraw", "ana", consensus_id=1, original=rows.loc[1].to_dict(),
                        geometry={"x": 140.0, "y": 40.0, "width": 30.0, "height": 20.0})
    review_store.record("iou", 102, "add", "ben", geometry={"x": 60.0, "y": 60.0, "width": 12.0, "height": 8.0})
    reviewed = review_store.apply(boxes, "iou")
    write_coco(reviewed, subjects, tmp_path / "train.json")
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(tmp_path / "train.json"))
    by_image = {image: sorted(tuple(annotation["bbox"]) for annotation in coco.loadAnns(coco.getAnnIds(imgIds=[image])))
                for image in coco.getImgIds()}
    assert by_image[101] == [(140, 40, 30, 20)]
    assert by_image[102] == [(60, 60, 12, 8), (90, 95, 20, 10)]
    write_yolo(reviewed, subjects, tmp_path / "yolo")
    assert len(_parse_yolo(tmp_path / "yolo", 101)) == 1 and len(_parse_yolo(tmp_path / "yolo", 102)) == 2
