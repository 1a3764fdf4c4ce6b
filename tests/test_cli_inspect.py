"""``zoolens inspect``: what a user sees when pointing zoolens at a file."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.exports import boxes, row, write_export

ROOT = Path(__file__).resolve().parents[1]


def zoolens(*args, cache):
    return subprocess.run([sys.executable, "-m", "zoolens", *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT, env={"PATH": "/usr/bin:/bin", "ZOOLENS_CACHE_DIR": str(cache)})


def test_inspect_prints_the_report_as_json(data_dir, tmp_path):
    path = data_dir / "discnet" / "many-tools-classifications_march_7_2023.csv"
    done = zoolens("inspect", path, "--workflow", 21790, "--workflow-version", "50.46", "--json",
                   cache=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["format"] == "classifications"
    assert report["rows_read"] == 113
    assert report["rows_loaded"] == 90
    assert report["skipped"]["other workflow version (kept 50.46)"]["rows"] == 23
    assert report["workflows"]["21790"]["37.34"] == 11


def test_inspect_names_skipped_rows_and_their_lines(tmp_path):
    box = {"tool": 0, "x": 1, "y": 2, "width": 3, "height": 4}
    path = write_export(tmp_path / "e.csv", [row(1, boxes(box)), row(2, "{broken")])
    done = zoolens("inspect", path, cache=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "2 rows read, 1 loaded, 1 skipped" in done.stdout
    assert "annotations is not valid JSON (a list of tasks) (lines 3)" in done.stdout
    assert "marks_by_kind: {'rectangle': 1}" in done.stdout


def test_inspect_unknown_file_says_format_could_not_be_identified(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    done = zoolens("inspect", path, cache=tmp_path)
    assert done.returncode == 1
    assert "format could not be identified" in done.stderr
    assert "classifications" in done.stderr  # the known formats are listed
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("arguments, shown", [(["inspect", "{path}"], "13 rows read, 13 loaded"),
                                              (["--help"], "inspect")])
def test_inspect_and_help_do_not_load_the_server_or_the_aggregators(arguments, shown, data_dir, tmp_path):
    # Other subcommands' arguments list what the review store and the aggregators offer;
    # building them imported SQLAlchemy and SciPy and more than doubled inspect's start-up.
    path = data_dir / "discnet" / "many-tools-classifications.csv"
    code = textwrap.dedent("""
        import sys
        from zoolens.cli import main
        try:
            status = main(sys.argv[1:])
        except SystemExit as end:  # --help
            status = end.code
        print(sorted(name for name in ("sqlalchemy", "scipy", "consensus", "panel") if name in sys.modules))
        sys.exit(status)
    """)
    done = subprocess.run([sys.executable, "-c", code, *(a.format(path=path) for a in arguments)],
                          capture_output=True, text=True, cwd=ROOT,
                          env={"PATH": "/usr/bin:/bin", "ZOOLENS_CACHE_DIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert shown in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_the_summary_groups_digits_of_large_counts():
    from data_loaders.base import LoadReport

    report = LoadReport("big.csv", "classifications", rows_read=1_700_000, rows_loaded=1_698_766,
                        counts={"marks": 3_483_940, "complete": True, "marks_by_kind": {"point": 3_483_940}})
    report.skip("annotations is not valid JSON (a list of tasks)", list(range(2, 1236)))
    summary = report.summary().splitlines()
    assert summary[0] == "big.csv (classifications): 1,700,000 rows read, 1,698,766 loaded, 1,234 skipped"
    assert summary[1].startswith("  skipped 1,234: annotations is not valid JSON (a list of tasks) (lines 2, 3,")
    assert "  marks: 3,483,940" in summary
    assert "  complete: True" in summary  # a flag stays a flag
    assert "  marks_by_kind: {'point': 3483940}" in summary
