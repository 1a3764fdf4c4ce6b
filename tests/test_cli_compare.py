"""``zoolens compare``: the demo's machine detections against a consensus, as text and as JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from zoolens import demo

ROOT = Path(__file__).resolve().parents[1]


def zoolens(*args, cache):
    return subprocess.run([sys.executable, "-m", "zoolens", *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT, env={"PATH": "/usr/bin:/bin", "ZOOLENS_CACHE_DIR": str(cache)})


@pytest.fixture(scope="module")
def demo_files(tmp_path_factory):
    return demo.write_demo(tmp_path_factory.mktemp("demo"))


@pytest.fixture
def truth_as_consensus(demo_files, tmp_path):
    """The demo's true clumps as a BoxAggregator consensus table: compare then scores the detector on the truth."""
    truth = pd.read_csv(demo_files.truth)
    path = tmp_path / "truth.csv"
    pd.DataFrame({"subject_id": truth["subject_id"], "x1": truth["x"], "x2": truth["x"] + truth["width"],
                  "y1": truth["y"], "y2": truth["y"] + truth["height"]}).to_csv(path, index=False)
    return path


def test_json_against_the_truth_gives_the_demo_files_numbers(demo_files, truth_as_consensus, tmp_path):
    done = zoolens("compare", demo_files.detections, "--classifications", demo_files.classifications,
                   "--workflow", demo.WORKFLOW_ID, "--workflow-version", demo.WORKFLOW_VERSION,
                   "--consensus", truth_as_consensus, "--json", cache=tmp_path)
    assert done.returncode == 0, done.stderr
    numbers = json.loads(done.stdout)
    # tests/zoolens/test_demo.py counted this file against the truth: 89 detections scoring 0.5 or
    # more, 79 of them on one of the 111 clumps; every one of the 60 subjects was classified.
    assert {key: numbers[key] for key in ("detections", "consensus", "true_positives", "machine_only",
                                          "human_only", "subjects")} == {
        "detections": 89, "consensus": 111, "true_positives": 79, "machine_only": 10, "human_only": 32,
        "subjects": 60}
    assert numbers["precision"] == pytest.approx(79 / 89)
    assert numbers["recall"] == pytest.approx(79 / 111)
    assert numbers["f1"] == pytest.approx(2 * 79 / (89 + 111))
    assert 0 < numbers["average_precision"] < 1


def test_text_against_a_made_consensus(demo_files, tmp_path):
    done = zoolens("compare", demo_files.detections, "--classifications", demo_files.classifications,
                   "--workflow", demo.WORKFLOW_ID, "--method", "iou", "--score-threshold", "0.8", cache=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"{demo_files.detections}: ") and "scoring 0.8 or more" in lines[0]
    assert "precision" in lines[1] and "AP" in lines[1] and "machine only" in lines[2]
    assert "rows skipped" in done.stderr  # the demo export's dirt, counted


def test_a_threshold_above_every_score_has_no_precision(demo_files, truth_as_consensus, tmp_path):
    done = zoolens("compare", demo_files.detections, "--classifications", demo_files.classifications,
                   "--workflow", demo.WORKFLOW_ID, "--consensus", truth_as_consensus, "--json",
                   "--score-threshold", "2", cache=tmp_path)
    assert done.returncode == 0, done.stderr
    numbers = json.loads(done.stdout)
    assert numbers["detections"] == 0 and numbers["precision"] is None and numbers["recall"] == 0


def test_a_file_that_is_not_detections_is_an_error_naming_it(demo_files, tmp_path):
    done = zoolens("compare", demo_files.subjects, "--classifications", demo_files.classifications,
                   "--workflow", demo.WORKFLOW_ID, cache=tmp_path)
    assert done.returncode == 1
    assert f"zoolens compare: error: {demo_files.subjects}: not a table of machine detections" in done.stderr


def test_coco_results_with_an_image_mapping_give_the_same_numbers(demo_files, truth_as_consensus, tmp_path):
    detections = pd.read_csv(demo_files.detections)
    image_ids = {subject: index + 1 for index, subject in enumerate(sorted(detections["subject_id"].unique()))}
    results = [{"image_id": image_ids[row.subject_id], "category_id": 1, "score": row.score,
                "bbox": [row.x, row.y, row.width, row.height]} for row in detections.itertuples()]
    (tmp_path / "results.json").write_text(json.dumps(results))
    pd.DataFrame({"image_id": list(image_ids.values()), "subject_id": list(image_ids)}).to_csv(
        tmp_path / "images.csv", index=False)
    common = ("--classifications", demo_files.classifications, "--workflow", demo.WORKFLOW_ID,
              "--consensus", truth_as_consensus, "--json")
    from_coco = zoolens("compare", tmp_path / "results.json", "--image-subjects", tmp_path / "images.csv", *common,
                        cache=tmp_path)
    from_table = zoolens("compare", demo_files.detections, *common, cache=tmp_path)
    assert from_coco.returncode == 0, from_coco.stderr
    coco, table = json.loads(from_coco.stdout), json.loads(from_table.stdout)
    del coco["detections_file"], table["detections_file"]
    assert coco == table
