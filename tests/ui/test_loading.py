"""In a real browser: the page paints a progress bar while the demo loads, then the subject table."""

from __future__ import annotations

import pytest

from tests.dashboard.serving import PausedLoad, serving
from zoolens import demo

pytestmark = pytest.mark.ui


@pytest.fixture(scope="module")
def demo_files(tmp_path_factory):
    return demo.write_demo(tmp_path_factory.mktemp("demo"))


def test_the_page_paints_a_progress_bar_first_then_the_subject_table(browser, artefacts, demo_files):
    paused = PausedLoad([demo_files.classifications, demo_files.subjects, demo_files.workflows],
                        workflow_id=demo.WORKFLOW_ID, workflow_version=demo.WORKFLOW_VERSION,
                        image_roots=[demo_files.folder], title="built-in demo", method="iou")
    dialogs: list[str] = []
    with serving(paused.build, "test-ui-loading", title="built-in demo") as server:
        assert paused.reached.wait(60)  # the load holds inside the classification export
        page = browser.new_page(viewport={"width": 1500, "height": 950})
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.goto(server.url, wait_until="domcontentloaded")
        page.locator("progress").wait_for(timeout=30_000)
        # 912 classifications of the demo's workflow version plus 15 dirty rows (zoolens.demo.DIRT).
        page.get_by_text("Reading demo-classifications.csv (file 1 of 3): 927 rows read").wait_for(timeout=15_000)
        assert page.get_by_text("of 60 subjects").count() == 0
        page.screenshot(path=str(artefacts / "loading.png"))

        paused.release.set()
        # The views arrive with the rows skipped counted in the sidebar's load report, not in a pop-up.
        page.get_by_text("60 of 60 subjects").wait_for(timeout=60_000)
        page.locator(".tabulator-row").first.wait_for(timeout=30_000)
        assert page.get_by_text("rows read…").count() == 0  # the progress view made way for the views
        page.get_by_text("⚠ 3 warnings: 15 rows skipped").wait_for(timeout=15_000)
        page.wait_for_timeout(1500)  # let the cutout's image land before the picture
        page.screenshot(path=str(artefacts / "loaded.png"))

        assert page.locator(".notyf__toast").count() == 0
        # A page opened after the load gets the views at once, and the same load report.
        later = browser.new_page(viewport={"width": 1500, "height": 950})
        later.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        later.goto(server.url, wait_until="domcontentloaded")
        later.get_by_text("60 of 60 subjects").wait_for(timeout=60_000)
        assert later.get_by_text("rows read…").count() == 0  # no progress view
        later.get_by_text("⚠ 3 warnings: 15 rows skipped").wait_for(timeout=30_000)
        assert later.locator(".notyf__toast").count() == 0
    assert dialogs == []
