"""The packages are layers: a lower one never imports a higher one, and no two modules import each other.

Read from the source with `ast` (every import, at module level or inside a function), so a lazy
import that would close a circle counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Bottom to top; a package may import those listed before it.
LAYERS = ("data_loaders", "consensus", "project", "zooniverse", "dashboard", "zoolens")
#: Packages that never import Panel, Bokeh or HoloViews.
WITHOUT_PANEL = ("data_loaders", "consensus", "project", "zooniverse")


def _modules() -> dict[str, Path]:
    found = {}
    for package in LAYERS:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(name: str, path: Path) -> set[str]:
    """The absolute names of every module ``name`` imports."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            imported |= {f"{base}.{alias.name}" for alias in node.names} | {base}
    return imported


def test_no_package_imports_a_higher_layer_or_panel_below_the_dashboard():
    problems = []
    for name, path in _modules().items():
        layer = LAYERS.index(name.split(".")[0])
        for target in _imports(name, path):
            top = target.split(".")[0]
            if top in LAYERS and LAYERS.index(top) > layer:
                problems.append(f"{name} imports {target}")
            if name.split(".")[0] in WITHOUT_PANEL and top in ("panel", "bokeh", "holoviews"):
                problems.append(f"{name} imports {target}")
    assert problems == []


def test_no_two_modules_import_each_other():
    modules = _modules()
    graph = {name: {target for target in _imports(name, path) if target in modules and target != name}
             for name, path in modules.items()}
    # A package's __init__ re-exporting its own modules is not a circle between two of them.
    circles = sorted(f"{a} <-> {b}" for a, targets in graph.items() for b in targets
                     if a < b and a in graph.get(b, ()) and not (a == b.rpartition(".")[0] or b == a.rpartition(".")[0]))
    assert circles == []
