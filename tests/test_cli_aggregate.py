"""``zoolens aggregate``: an export in, consensus and links CSV out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from consensus import aggregate, parse_source
from data_loaders.classifications import read_classifications
from tests.exports import boxes, row, write_export

ROOT = Path(__file__).resolve().parents[1]


def zoolens(*args, cache):
    return subprocess.run([sys.executable, "-m", "zoolens", *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT, env={"PATH": "/usr/bin:/bin", "ZOOLENS_CACHE_DIR": str(cache)})


@pytest.fixture
def march(data_dir):
    return data_dir / "discnet" / "many-tools-classifications_march_7_2023.csv"


def test_aggregate_writes_consensus_and_links(march, tmp_path):
    output = tmp_path / "out" / "consensus.csv"
    done = zoolens("aggregate", march, "--workflow", 21790, "--task", "T4", "--method", "iou",
                   "--param", "min_vote_fraction=0.3", "-o", output, cache=tmp_path)
    assert done.returncode == 0, done.stderr
    consensus = pd.read_csv(output)
    links = pd.read_csv(tmp_path / "out" / "consensus.links.csv")
    # SOURCES.md: the March file holds 206 rectangles, all in task T4 of workflow 21790.
    assert len(links) == 206
    assert list(consensus.columns[:10]) == ["subject_id", "consensus_id", "x", "y", "width", "height", "angle",
                                            "n_votes", "n_seen", "source"]
    settings = json.loads(consensus["source"].iloc[0])
    assert settings["method"] == "iou" and settings["min_vote_fraction"] == 0.3
    # The files hold what the library makes of the same export and settings.
    loaded = read_classifications(march, workflow_id=21790, tasks=["T4"])
    expected = aggregate(loaded.marks, loaded.classifications, **parse_source(consensus["source"].iloc[0]))
    assert consensus["consensus_id"].tolist() == expected.consensus["consensus_id"].tolist()
    pd.testing.assert_frame_equal(consensus[["x", "y", "width", "height"]], expected.consensus[["x", "y", "width", "height"]])
    assert links["consensus_id"].tolist() == expected.links["consensus_id"].tolist()
    assert set(links.loc[links["consensus_id"] >= 0, "consensus_id"]) == set(consensus["consensus_id"])
    assert f"{len(consensus)} consensus boxes on 30 subjects from 206 marks" in done.stderr


def test_lean_method_and_its_columns(march, tmp_path):
    done = zoolens("aggregate", march, "--workflow", 21790, "--method", "lean", "-o", tmp_path / "c.csv", cache=tmp_path)
    assert done.returncode == 0, done.stderr
    consensus = pd.read_csv(tmp_path / "c.csv")
    assert {"false_pos_prob", "sigma", "risk"} <= set(consensus.columns)
    assert json.loads(consensus["source"].iloc[0])["method"] == "lean"


def test_bad_method_and_parameters_say_what_to_do(march, tmp_path):
    done = zoolens("aggregate", march, "--method", "dbscan", "-o", tmp_path / "c.csv", cache=tmp_path)
    assert done.returncode == 1
    assert "unknown consensus method 'dbscan'; known methods: iou, lean, point" in done.stderr
    done = zoolens("aggregate", march, "--method", "iou", "--param", "eps=0.5", "-o", tmp_path / "c.csv", cache=tmp_path)
    assert done.returncode == 1 and "no parameter(s) ['eps']" in done.stderr
    # The March export holds boxes and points: parameters need the method they are for.
    done = zoolens("aggregate", march, "--param", "min_votes=3", "-o", tmp_path / "c.csv", cache=tmp_path)
    assert done.returncode == 1 and "name a method to pass parameters ['min_votes']" in done.stderr
    done = zoolens("aggregate", march, "--param", "min_votes", "-o", tmp_path / "c.csv", cache=tmp_path)
    assert done.returncode == 1 and "is not NAME=VALUE" in done.stderr
    (tmp_path / "c.csv").write_text("keep me")
    done = zoolens("aggregate", march, "-o", tmp_path / "c.csv", cache=tmp_path)
    assert done.returncode == 1 and "--overwrite" in done.stderr
    assert (tmp_path / "c.csv").read_text() == "keep me"


def test_help_lists_methods_and_parameters(tmp_path):
    done = zoolens("aggregate", "--help", cache=tmp_path)
    assert done.returncode == 0
    assert "iou:" in done.stdout and "lean:" in done.stdout and "point:" in done.stdout
    assert "min_vote_fraction" in done.stdout and "link_distance" in done.stdout


def test_formula_leading_text_is_neutralised(tmp_path):
    # Task keys come from the export: a hostile one must not become a live formula.
    box = {"tool": 0, "x": 10, "y": 10, "width": 8, "height": 8}
    rows = [row(k, boxes(box, task="=HYPERLINK(1)"), user=f"user{k}", user_id=str(k)) for k in range(1, 4)]
    export = write_export(tmp_path / "export.csv", rows)
    done = zoolens("aggregate", export, "-o", tmp_path / "c.csv", cache=tmp_path)
    assert done.returncode == 0, done.stderr
    consensus = pd.read_csv(tmp_path / "c.csv")
    assert consensus["task"].tolist() == ["'=HYPERLINK(1)"]
    assert consensus["n_votes"].tolist() == [3]


@pytest.mark.parametrize("folder", ["tests", "shared"])
def test_penguin_clicks_become_consensus_points(folder, data_dir, request, tmp_path):
    """The real Penguin Watch export: every subject with 3 or more volunteers' clicks gets consensus points."""
    root = data_dir if folder == "tests" else request.getfixturevalue("shared_data")
    penguins = root / "penguin_watch" / "penguin-watch-classifications-trim.csv"
    done = zoolens("aggregate", penguins, "--workflow", 6465, "-o", tmp_path / "c.csv", cache=tmp_path)
    assert done.returncode == 0, done.stderr
    consensus = pd.read_csv(tmp_path / "c.csv")
    links = pd.read_csv(tmp_path / "c.links.csv")
    loaded = read_classifications(penguins, workflow_id=6465)
    # SOURCES.md: 11,505 point marks in T0, no other drawing marks.
    assert len(links) == 11505 and len(loaded.marks) == 11505
    clickers = loaded.marks.groupby("subject_id")["user"].nunique()
    assert set(clickers[clickers >= 3].index) <= set(consensus["subject_id"])
    assert (consensus["kind"] == "point").all() and (consensus[["width", "height"]] == 0).all().all()
    assert set(consensus["tool_label"]) <= {"Adults", "Chicks", "Eggs", "Other"}
    assert json.loads(consensus["source"].iloc[0])["method"] == "point"
    assert (consensus["n_votes"] >= 2).all() and (consensus["n_votes"] <= consensus["n_seen"]).all()
    # Links and consensus agree: the votes are the clicks linked to each point, each within link_distance.
    votes = links.loc[links["consensus_id"] >= 0, "consensus_id"].value_counts()
    assert votes.reindex(consensus["consensus_id"]).tolist() == consensus["n_votes"].tolist()
    assert links["iou"].isna().all() and (links.loc[links["consensus_id"] >= 0, "distance"] <= 12).all()
    assert f"{len(consensus)} consensus points on 50 subjects from 11505 marks" in done.stderr
    assert "by method point" in done.stderr
    # The files hold what the library makes of the same export.
    expected = aggregate(loaded.marks, loaded.classifications)
    assert consensus["consensus_id"].tolist() == expected.consensus["consensus_id"].tolist()


def test_point_box_still_turns_clicks_into_boxes(data_dir, tmp_path):
    penguins = data_dir / "penguin_watch" / "penguin-watch-classifications-trim.csv"
    done = zoolens("aggregate", penguins, "--workflow", 6465, "--point-box", 20, "-o", tmp_path / "d.csv", cache=tmp_path)
    assert done.returncode == 0, done.stderr
    consensus = pd.read_csv(tmp_path / "d.csv")
    assert len(consensus) > 0 and np.allclose(consensus["width"], 20)
    assert json.loads(consensus["source"].iloc[0])["method"] == "lean"
    assert len(pd.read_csv(tmp_path / "d.links.csv")) == 11505
    assert "consensus boxes" in done.stderr and "by method lean" in done.stderr


def test_point_method_parameters_from_the_command_line(data_dir, tmp_path):
    penguins = data_dir / "penguin_watch" / "penguin-watch-classifications-trim.csv"
    done = zoolens("aggregate", penguins, "--workflow", 6465, "--param", "min_vote_fraction=0.5", "--param",
                   "distance=6", "-o", tmp_path / "c.csv", cache=tmp_path)
    assert done.returncode == 0, done.stderr
    consensus = pd.read_csv(tmp_path / "c.csv")
    settings = json.loads(consensus["source"].iloc[0])
    assert settings["distance"] == 6 and settings["min_vote_fraction"] == 0.5
    assert (consensus["vote_fraction"] >= 0.5).all()


def test_an_export_with_boxes_and_points_gets_both(march, tmp_path):
    # SOURCES.md: the March file holds 206 points (T2) and 206 rectangles (T4), plus circles and lines.
    done = zoolens("aggregate", march, "--workflow", 21790, "-o", tmp_path / "c.csv", cache=tmp_path)
    assert done.returncode == 0, done.stderr
    consensus = pd.read_csv(tmp_path / "c.csv")
    links = pd.read_csv(tmp_path / "c.links.csv")
    assert consensus["consensus_id"].is_unique
    points = consensus["kind"].eq("point")
    assert points.any() and (~points).any()
    assert set(consensus.loc[points, "task"]) == {"T2"} and (consensus.loc[points, "width"] == 0).all()
    linked = links[links["consensus_id"] >= 0]
    assert set(linked["consensus_id"]) == set(consensus["consensus_id"])
    votes = linked["consensus_id"].value_counts().reindex(consensus["consensus_id"]).tolist()
    assert votes == consensus["n_votes"].tolist()
    assert "by method lean and point" in done.stderr
