"""The example notebooks run end to end in a real Jupyter kernel (nbclient)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["explore_demo.ipynb"])
def test_example_notebook_runs(name):
    notebook = nbformat.read(ROOT / "examples" / name, as_version=4)
    # The kernel starts in the repository root, so it imports this checkout's packages,
    # and inherits the test's isolated ZOOLENS_CACHE_DIR.
    NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    selected = notebook.cells[7].outputs[0]["data"]["text/plain"]
    assert "n_volunteers" in selected
