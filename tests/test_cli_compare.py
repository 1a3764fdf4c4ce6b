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


def test_reviews_compare_with_the_reviewed_catalogue(demo_files, tmp_path):
    """Three decisions, each on a subject with one detection and one box or none, change the counts by hand."""
    from project import load_project
    from project.reviews import ReviewStore

    # The project as the command builds it, its detections matched as the app matches them.
    project = load_project([demo_files.classifications], detections=demo_files.detections,
                           workflow_id=demo.WORKFLOW_ID, workflow_version=demo.WORKFLOW_VERSION)
    counts = project.machine.subject_counts(0.5)
    all_detections = project.detections.groupby("subject_id").size().reindex(counts.index).fillna(0)
    alone = counts[(all_detections == 1) & (counts.n_detections == 1)]
    one_to_one = alone[(alone.n_consensus == 1) & (alone.true_positives == 1)].index
    machine_only = alone[(alone.n_consensus == 0) & (alone.machine_only == 1)].index
    assert len(one_to_one) >= 2 and len(machine_only) >= 1
    rejected = project.consensus_of(int(one_to_one[0])).iloc[0]
    redrawn = project.consensus_of(int(one_to_one[1])).iloc[0]
    missed = project.detections[project.detections.subject_id == machine_only[0]].iloc[0]
    with ReviewStore(path=tmp_path / "reviews.sqlite") as store:
        source = project.consensus_source
        store.record(source, int(rejected.subject_id), "reject", "ann", consensus_id=int(rejected.consensus_id),
                     original=rejected.to_dict())
        store.record(source, int(redrawn.subject_id), "redraw", "ann", consensus_id=int(redrawn.consensus_id),
                     original=redrawn.to_dict(), geometry={"x": 0.0, "y": 0.0, "width": 2.0, "height": 2.0})
        store.record(source, int(missed.subject_id), "add", "bob",
                     geometry={name: float(missed[name]) for name in ("x", "y", "width", "height")})

    common = ("compare", demo_files.detections, "--classifications", demo_files.classifications,
              "--workflow", demo.WORKFLOW_ID, "--workflow-version", demo.WORKFLOW_VERSION, "--json")
    plain = zoolens(*common, cache=tmp_path)
    reviewed = zoolens(*common, "--reviews", tmp_path / "reviews.sqlite", cache=tmp_path)
    assert plain.returncode == 0 and reviewed.returncode == 0, plain.stderr + reviewed.stderr
    before, after = json.loads(plain.stdout), json.loads(reviewed.stdout)
    assert (before["compared_with"], after["compared_with"]) == ("consensus", "reviewed catalogue")
    # The app's numbers are the command's: the same comparison of the same project.
    assert before["true_positives"] == project.machine.summary(0.5)["true_positives"]
    # Rejected: its detection is machine-only, one box fewer. Redrawn away: its detection machine-only and the
    # box human-only. Added on the lone machine-only detection: it is matched, one box more.
    assert after["consensus"] == before["consensus"]
    assert after["true_positives"] == before["true_positives"] - 1
    assert after["machine_only"] == before["machine_only"] + 1
    assert after["human_only"] == before["human_only"] + 1
    assert after["reviews"].endswith("reviews.sqlite")

    missing = zoolens(*common, "--reviews", tmp_path / "nope.sqlite", cache=tmp_path)
    assert missing.returncode == 1 and "no such review store" in missing.stderr
