"""The serve and demo commands: options, and the errors a user sees before any server starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from zoolens.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[2]


def test_serve_and_demo_are_commands_with_server_options():
    parser = build_parser()
    args = parser.parse_args(["serve", "a.csv", "b.csv", "--consensus", "c.csv", "--port", "5100",
                              "--num-threads", "4", "--workflow", "9001", "--workflow-version", "13.10"])
    assert args.paths == ["a.csv", "b.csv"] and args.consensus == "c.csv"
    assert (args.port, args.num_threads, args.workflow, args.workflow_version) == (5100, 4, 9001, "13.10")
    assert args.show is False and args.address == "127.0.0.1"
    demo_args = parser.parse_args(["demo", "--port", "5101", "--show"])
    assert demo_args.port == 5101 and demo_args.show is True
    # Review decisions go to a SQLite file in the working directory unless --reviews names another store.
    assert args.reviews == demo_args.reviews == "zoolens-reviews.sqlite" and args.basic_auth is None
    shared = parser.parse_args(["demo", "--reviews", "postgresql+psycopg2://zoolens@db/reviews", "--basic-auth", "pw"])
    assert (shared.reviews, shared.basic_auth) == ("postgresql+psycopg2://zoolens@db/reviews", "pw")


def test_a_bad_review_store_is_reported_before_anything_loads(tmp_path, capsys):
    for command in (["serve", str(tmp_path / "never-read.csv")], ["demo", "--folder", str(tmp_path / "demo")]):
        assert main([*command, "--reviews", "mysql://someone@localhost/reviews"]) == 1
        error = capsys.readouterr().err
        assert "--reviews mysql://someone@localhost/reviews" in error and "SQLite or PostgreSQL" in error
    assert not (tmp_path / "demo").exists()


def test_help_lists_the_commands():
    result = subprocess.run([sys.executable, "-m", "zoolens", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert "serve" in result.stdout and "demo" in result.stdout


def test_serve_without_a_classification_export_says_what_is_missing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default review store is made in the working directory
    missing = tmp_path / "nowhere.csv"
    assert main(["serve", str(missing)]) == 1
    assert "nowhere.csv" in capsys.readouterr().err



def test_serve_needs_files_or_an_existing_project_store(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["serve"]) == 1
    assert "give the project's files" in capsys.readouterr().err
    assert main(["serve", "--store", str(tmp_path / "no-store")]) == 1
    assert "--store FOLDER of an existing project store" in capsys.readouterr().err
