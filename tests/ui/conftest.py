"""Browser fixtures: Debian's Chromium driven headless by playwright, the served demo, artefacts folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (scripts/install-system-packages.sh installs it)")
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def artefacts() -> Path:
    """Where screenshots go: ``$ZOOLENS_TEST_ARTEFACTS`` if set (CI keeps it), else ``tests/ui/artefacts``.

    The default folder is git-ignored; its pictures are there to be looked at after a run.
    """
    configured = os.environ.get("ZOOLENS_TEST_ARTEFACTS")
    folder = Path(configured) if configured else Path(__file__).parent / "artefacts"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def demo_files(tmp_path_factory):
    """The built-in demo's files, generated once per test session."""
    from zoolens import demo

    return demo.write_demo(tmp_path_factory.mktemp("ui-demo"))


@pytest.fixture(scope="session")
def demo_project(demo_files):
    """The demo as `zoolens demo` loads it: workflow 9001 v13.10, consensus by the IoU method, its detections."""
    from project import load_project
    from zoolens import demo

    return load_project([demo_files.classifications, demo_files.subjects, demo_files.workflows],
                        detections=demo_files.detections, image_roots=[demo_files.folder], title="built-in demo",
                        method="iou", **demo.PROJECT_OPTIONS)


@pytest.fixture(scope="module")
def demo_url(demo_project):
    """One real Panel server on loopback serving the demo, shared by the tests of a module and stopped after them.

    Not kept for the whole session: with the suite in two processes, a file of unit tests can come after a browser
    test's in the same process, with the server still running. Bokeh's ``curdoc()`` is one for the whole process
    (the document of whatever callback a server thread is running), so a plot a unit test made could take a
    served session's document: seen once, a closed one ("'Document' object has no attribute '_theme'")."""
    from tests.dashboard.serving import served

    with served(demo_project, "ui-demo") as url:
        yield url
