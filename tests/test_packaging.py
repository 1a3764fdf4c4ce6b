"""The install files agree with each other and the command line starts."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~ ]", requirement.strip(), maxsplit=1)[0].lower()


def test_environment_yml_lists_the_same_packages_as_pyproject():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wanted = {_name(r) for r in pyproject["project"]["dependencies"]}
    # Every extra (the test extra names the others as zoolens[...]).
    extras = pyproject["project"]["optional-dependencies"]
    wanted |= {_name(r) for extra in extras.values() for r in extra} - {"zoolens"}
    in_dependencies = False
    listed = set()
    for line in (ROOT / "environment.yml").read_text().splitlines():
        if not line.startswith(" "):
            in_dependencies = line.startswith("dependencies:")
            continue
        match = re.match(r"\s+-\s+([A-Za-z0-9_.\-\[\]]+)", line)
        if in_dependencies and match:
            listed.add(_name(match.group(1)))
    listed.discard("python")
    assert listed == wanted


def test_cli_help_lists_subcommands():
    result = subprocess.run(
        [sys.executable, "-m", "zoolens", "--help"], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    assert "inspect" in result.stdout
