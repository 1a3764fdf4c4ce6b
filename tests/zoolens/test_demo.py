"""The built-in demo: files in the formats they claim, carrying the promised dirt, deterministic.

The exports are parsed here with the csv and json modules only, an independent route
from the loaders; the row counts were checked by hand with ``grep -c`` on a generated
demo (928 lines in the classification export: header + 912 + 15 dirt rows).
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from zoolens import demo

EXPORT_HEADER = [
    "classification_id", "user_name", "user_id", "user_ip", "workflow_id", "workflow_name",
    "workflow_version", "created_at", "gold_standard", "expert", "metadata", "annotations",
    "subject_data", "subject_ids",
]


@pytest.fixture(scope="module")
def demo_files(tmp_path_factory) -> demo.DemoFiles:
    return demo.write_demo(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def simulation():
    return demo.demo_simulation()


def _rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _header(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8") as handle:
        return next(csv.reader(handle))


def _digests(folder: Path) -> dict[str, str]:
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file()}


def test_generation_is_deterministic(demo_files, tmp_path):
    again = demo.write_demo(tmp_path / "again")
    first, second = _digests(demo_files.folder), _digests(again.folder)
    assert len(first) == 60 * 2 + 6
    assert first == second


def test_headers_are_those_of_real_exports(demo_files, shared_data):
    assert _header(demo_files.classifications) == _header(
        shared_data / "discnet" / "many-tools-classifications.csv")
    assert _header(demo_files.classifications) == _header(
        shared_data / "aggregation_for_caesar" / "cat-project-classifications.csv")
    assert _header(demo_files.subjects) == _header(
        shared_data / "aggregation_for_caesar" / "cat-project-subjects.csv")
    assert _header(demo_files.workflows) == _header(shared_data / "aggregation_for_caesar" / "batch_wf_export.csv")


def test_classification_export_rows_and_dirt(demo_files):
    rows = _rows(demo_files.classifications)
    assert list(rows[0]) == EXPORT_HEADER
    assert len(rows) == 927
    ids = [int(row["classification_id"]) for row in rows]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    by_workflow = {}
    for row in rows:
        key = (row["workflow_id"], row["workflow_version"])
        by_workflow[key] = by_workflow.get(key, 0) + 1
    assert by_workflow == {("9001", "13.10"): 913, ("9001", "12.4"): 8, ("9002", "2.3"): 6}

    broken = []
    for row in rows:
        json.loads(row["metadata"])
        json.loads(row["subject_data"])
        try:
            json.loads(row["annotations"])
        except json.JSONDecodeError:
            broken.append(row)
    assert len(broken) == 1 and broken[0]["workflow_version"] == "13.10"

    logged_out = [row for row in rows if row["user_name"].startswith("not-logged-in-")]
    assert logged_out and all(row["user_id"] == "" for row in logged_out)
    assert all(row["user_ip"] == row["user_name"].removeprefix("not-logged-in-") for row in logged_out)
    assert all(row["user_id"].isdigit() for row in rows if row not in logged_out)

    names = {row["user_name"] for row in rows}
    assert demo.HTML_USER_NAME in names and demo.FORMULA_USER_NAME in names
    empty = [row for row in rows if row not in broken and any(
        task["task"] == "T0" and task["value"] == [] for task in json.loads(row["annotations"]))]
    assert empty


def test_both_front_ends_write_rectangles_their_own_way(demo_files):
    classic = fem = 0
    for row in _rows(demo_files.classifications):
        if row["workflow_id"] != "9001":
            continue
        metadata = json.loads(row["metadata"])
        try:
            annotations = json.loads(row["annotations"])
        except json.JSONDecodeError:
            continue
        marks = [mark for task in annotations if task["task"] == "T0" for mark in task["value"]]
        if metadata.get("classifier_version") == "2.0":
            fem += len(marks)
            for mark in marks:
                assert mark["toolType"] == "rectangle" and mark["toolIndex"] == 0
                assert {"x_center", "y_center", "width", "height", "frame"} <= set(mark)
                assert "x" not in mark and "tool" not in mark
        else:
            assert "classifier_version" not in metadata
            classic += len(marks)
            for mark in marks:
                assert mark["tool"] == 0 and mark["tool_label"] == "Clump"
                assert {"x", "y", "width", "height", "frame", "details"} <= set(mark)
        assert metadata["subject_dimensions"][0]["naturalWidth"] == 200
    assert classic > 500 and fem > 300


def test_current_version_rows_hold_exactly_the_simulated_marks(demo_files, simulation):
    """Every kept row gives back its simulated classification's boxes, top-left, to the bit."""
    marks = simulation.marks
    expected = {
        classification_id: sorted(zip(group.x, group.y, group.width, group.height))
        for classification_id, group in marks.groupby("classification_id")
    }
    users = dict(zip(simulation.classifications.classification_id, simulation.classifications.user))
    seen = 0
    for row in _rows(demo_files.classifications):
        if (row["workflow_id"], row["workflow_version"]) != ("9001", "13.10"):
            continue
        try:
            annotations = json.loads(row["annotations"])
        except json.JSONDecodeError:
            continue
        classification_id = int(row["classification_id"])
        assert row["user_name"] == users[classification_id]
        boxes = []
        for mark in (mark for task in annotations if task["task"] == "T0" for mark in task["value"]):
            if "x_center" in mark:
                boxes.append((mark["x_center"] - mark["width"] / 2, mark["y_center"] - mark["height"] / 2,
                              mark["width"], mark["height"]))
            else:
                boxes.append((mark["x"], mark["y"], mark["width"], mark["height"]))
        np.testing.assert_allclose(np.reshape(sorted(boxes), (-1, 4)),
                                   np.reshape(expected.get(classification_id, []), (-1, 4)),
                                   rtol=0, atol=1e-9)
        seen += 1
    assert seen == len(simulation.classifications) == 912


def test_subject_export_points_at_images_with_wcs(demo_files):
    from astropy.io import fits
    from astropy.wcs import WCS
    from PIL import Image
    from scipy.stats import spearmanr

    rows = _rows(demo_files.subjects)
    assert len(rows) == 65  # 60 subjects, 5 of them also in the other workflow
    assert len({row["subject_id"] for row in rows}) == 60
    first = rows[0]
    metadata = json.loads(first["metadata"])
    assert {"ra", "dec", "redshift", "#fwhmImagePix", "#fits_file"} <= set(metadata)
    locations = json.loads(first["locations"])
    png = demo_files.folder / locations["0"]
    assert not Path(locations["0"]).is_absolute() and png.exists()
    with Image.open(png) as image:
        assert image.size == (200, 200) and image.mode == "RGB"
        rendering = np.asarray(image).astype(float)
    with fits.open(demo_files.folder / metadata["#fits_file"]) as hdus:
        wcs = WCS(hdus[0].header)
        r_band = hdus[0].data[::-1]  # stored bottom row first
    assert wcs.has_celestial
    centre_x, centre_y = wcs.world_to_pixel_values(float(metadata["ra"]), float(metadata["dec"]))
    assert abs(centre_x - 99.5) < 1e-6 and abs(centre_y - 99.5) < 1e-6
    # Flipped back, the FITS image lines up with the PNG, whose green channel is an
    # asinh stretch of r: a monotonic map, so the rank correlation is what to measure.
    aligned = spearmanr(r_band.ravel(), rendering[:, :, 1].ravel()).statistic
    mirrored = spearmanr(r_band[::-1].ravel(), rendering[:, :, 1].ravel()).statistic
    assert aligned > 0.9 and aligned > mirrored + 0.05


def test_clumps_are_drawn_where_the_truth_says(demo_files, simulation):
    """Blue knots sit at the true boxes: the PNG is bluer there than elsewhere in the galaxy."""
    from PIL import Image

    truth = simulation.truth
    bright = truth[truth.detectability > 0.9]
    bluer = []
    for clump in bright.itertuples():
        with Image.open(demo_files.images / f"{clump.subject_id}.png") as image:
            rgb = np.asarray(image).astype(float)
        colour = rgb[:, :, 2] - rgb[:, :, 0]
        x, y = int(clump.x + clump.width / 2), int(clump.y + clump.height / 2)
        bluer.append(colour[y, x] > np.median(colour[60:140, 60:140]))
    assert len(bluer) > 20 and np.mean(bluer) > 0.9


def test_workflow_export_tasks_and_versions(demo_files):
    rows = _rows(demo_files.workflows)
    versions = {(row["workflow_id"], f'{row["version"]}.{row["minor_version"]}') for row in rows}
    assert versions == {("9001", "13.10"), ("9001", "12.4"), ("9002", "2.3")}
    current = next(row for row in rows if row["version"] == "13")
    tasks, strings = json.loads(current["tasks"]), json.loads(current["strings"])
    assert tasks["T0"]["type"] == "drawing" and tasks["T0"]["tools"][0]["type"] == "rectangle"
    assert strings[tasks["T0"]["tools"][0]["label"]] == "Clump"


def test_truth_table_matches_the_simulation(demo_files, simulation):
    rows = _rows(demo_files.truth)
    assert len(rows) == len(simulation.truth)
    np.testing.assert_array_equal([float(row["x"]) for row in rows], simulation.truth.x.to_numpy())


def test_machine_detections_load_and_differ_from_the_truth_as_a_detector_does(demo_files, simulation):
    from consensus.detections import match_detections
    from data_loaders import read

    result = read(demo_files.detections)
    assert result.report.format == "detections" and result.report.rows_skipped == 0
    detections = result.detections
    assert set(detections["subject_id"]) <= set(simulation.subjects.subject_id)
    truth = simulation.truth.rename(columns={"truth_id": "consensus_id"})
    summary = match_detections(detections, truth).summary(0.5)
    # This seed's file (counted when it was made): 130 detections, 89 scoring 0.5 or more, of
    # which 79 match one of the 111 true clumps: the detector both misses and invents clumps.
    assert (len(detections), summary["detections"], summary["true_positives"]) == (130, 89, 79)
    assert (summary["human_only"], summary["machine_only"]) == (111 - 79, 89 - 79)


def test_detection_scores_are_calibrated():
    """Of the boxes scoring s, a fraction s match a true clump (600 subjects, so bins hold 100+ boxes)."""
    from consensus.detections import match_detections

    simulation = demo.demo_simulation(600, seed=7)
    detections = demo.simulate_detections(simulation.truth, simulation.subjects.subject_id,
                                          np.random.default_rng(3))
    matched = match_detections(detections, simulation.truth.rename(columns={"truth_id": "consensus_id"}))
    table = matched.detections.assign(real=matched.detections["consensus_id"] >= 0)
    bins = table.groupby(pd.cut(table["score"], [0, 0.2, 0.4, 0.6, 0.8, 1.0]), observed=True)
    reliability = bins.agg(score=("score", "mean"), real=("real", "mean"), n=("real", "size"))
    assert (reliability["n"] > 100).all()
    assert np.abs(reliability["score"] - reliability["real"]).max() < 0.05
    # And the detector misses faint clumps more often than bright ones.
    found = simulation.truth.assign(found=matched.consensus.set_index("consensus_id")["detection_id"]
                                    .reindex(simulation.truth["truth_id"]).to_numpy() >= 0)
    faint = found["detectability"] < found["detectability"].median()
    assert found.loc[faint, "found"].mean() < found.loc[~faint, "found"].mean() - 0.1


def test_ensure_demo_builds_once_into_the_cache(monkeypatch):
    files = demo.ensure_demo()
    assert files.folder == demo.default_demo_folder()
    assert files.classifications.exists() and (files.folder / "README.txt").exists()
    stamp = files.classifications.stat().st_mtime_ns
    calls = []
    monkeypatch.setattr(demo, "write_demo", lambda folder: calls.append(folder))
    assert demo.ensure_demo() == files
    assert calls == [] and files.classifications.stat().st_mtime_ns == stamp
    assert not [path for path in files.folder.parent.iterdir() if "partial" in path.name]


def test_the_classification_loader_reads_back_the_simulation(demo_files, simulation):
    from data_loaders.classifications import read_classifications

    export = read_classifications(demo_files.classifications, workflow_id=demo.WORKFLOW_ID,
                                  workflow_version=demo.WORKFLOW_VERSION)
    report = export.report
    assert report.rows_read == 927 and report.rows_loaded == 912
    assert sorted(report.skipped.values()) == [1, 6, 8]
    loaded = export.classifications.set_index("classification_id").sort_index()
    simulated = simulation.classifications.set_index("classification_id").sort_index()
    for column in ("subject_id", "user", "user_id", "n_marks", "classifier", "created_at"):
        pd.testing.assert_series_equal(loaded[column], simulated[column], check_names=False)
    columns = ["classification_id", "x", "y", "width", "height"]
    loaded_marks = export.marks.sort_values(columns)[columns].to_numpy()
    simulated_marks = simulation.marks.sort_values(columns)[columns].to_numpy()
    np.testing.assert_allclose(loaded_marks, simulated_marks, rtol=0, atol=1e-9)


def test_the_demo_loads_its_machine_detections_unless_told_otherwise(demo_files, tmp_path):
    project = demo.load_demo(demo_files, method="iou")
    assert project.sources["detections"] == [demo_files.detections.resolve()]
    assert project.machine.summary(0.5)["detections"] == 89  # scoring 0.5 or more on the 60 subjects
    other = tmp_path / "other-detector.csv"
    pd.read_csv(demo_files.detections).head(5).to_csv(other, index=False)
    replaced = demo.load_demo(demo_files, method="iou", detections=other)
    assert replaced.sources["detections"] == [other.resolve()] and len(replaced.detections) == 5
