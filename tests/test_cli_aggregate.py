"""``zoolens aggregate``: an export in, consensus and links CSV out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
    assert "unknown consensus method 'dbscan'; known methods: iou, lean" in done.stderr
    done = zoolens("aggregate", march, "--param", "eps=0.5", "-o", tmp_path / "c.csv", cache=tmp_path)
    assert done.returncode == 1 and "no parameter(s) ['eps']" in done.stderr
    done = zoolens("aggregate", march, "--param", "min_votes", "-o", tmp_path / "c.csv", cache=tmp_path)
    assert done.returncode == 1 and "is not NAME=VALUE" in done.stderr
    (tmp_path / "c.csv").write_text("keep me")
    done = zoolens("aggregate", march, "-o", tmp_path / "c.csv", cache=tmp_path)
    assert done.returncode == 1 and "--overwrite" in done.stderr
    assert (tmp_path / "c.csv").read_text() == "keep me"


def test_help_lists_methods_and_parameters(tmp_path):
    done = zoolens("aggregate", "--help", cache=tmp_path)
    assert done.returncode == 0
    assert "iou:" in done.stdout and "lean:" in done.stdout and "min_vote_fraction" in done.stdout


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


def test_point_clicks_need_a_box_size(data_dir, tmp_path):
    penguins = data_dir / "penguin_watch" / "penguin-watch-classifications-trim.csv"
    done = zoolens("aggregate", penguins, "--workflow", 6465, "-o", tmp_path / "c.csv", cache=tmp_path)
    assert done.returncode == 0, done.stderr
    # SOURCES.md: 11,505 point marks in T0, no other drawing marks.
    assert "11505 point marks have no box: pass --point-box" in done.stderr
    done = zoolens("aggregate", penguins, "--workflow", 6465, "--point-box", 20, "-o", tmp_path / "d.csv", cache=tmp_path)
    assert done.returncode == 0, done.stderr
    consensus = pd.read_csv(tmp_path / "d.csv")
    assert len(consensus) > 0 and (consensus["width"] == 20).all()
    assert len(pd.read_csv(tmp_path / "d.links.csv")) == 11505
