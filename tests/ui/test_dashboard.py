"""The dashboard in a real browser: two sessions at once, untrusted names shown as text."""

from __future__ import annotations

import pytest

from tests.dashboard import tiny
from tests.dashboard.serving import served

pytestmark = pytest.mark.ui

SCRIPT_NAME = "<script>alert(1)</script>"


@pytest.fixture
def served_url(tmp_path):
    # bob gets a name that would run a script if any view rendered it as HTML.
    tables = tiny.tiny_tables()
    for name in ("classifications", "marks"):
        tables[name]["user"] = tables[name]["user"].replace({"bob": SCRIPT_NAME})
    with served(tiny.tiny_project(tmp_path / "root", tables, title="ui"), "test-ui") as url:
        yield url


def _open(browser, url, dialogs):
    page = browser.new_page(viewport={"width": 1500, "height": 950})
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(url, wait_until="networkidle")
    page.get_by_text("3 of 3 subjects").wait_for(timeout=30_000)
    return page


def test_two_sessions_keep_their_own_state_and_names_stay_text(browser, served_url, artefacts):
    dialogs: list[str] = []
    first = _open(browser, served_url, dialogs)
    second = _open(browser, served_url, dialogs)
    first.screenshot(path=str(artefacts / "subjects.png"))

    first.locator(".bk-tab", has_text="Volunteers").click()
    first.get_by_text(SCRIPT_NAME, exact=True).first.click()
    heading = first.get_by_text(f"Marks by {SCRIPT_NAME}")
    heading.wait_for(timeout=15_000)
    first.screenshot(path=str(artefacts / "volunteers.png"))

    second.locator(".bk-tab", has_text="Volunteers").click()
    second.get_by_text("Pick a volunteer to list their marks").wait_for(timeout=15_000)
    assert second.get_by_text("Marks by").count() == 0
    assert dialogs == []


def test_the_address_holds_the_view_and_arrow_keys_move_along(browser, served_url, artefacts):
    dialogs: list[str] = []
    page = browser.new_page(viewport={"width": 1500, "height": 950})
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"{served_url}/?subject=2&min_volunteers=2&sort_by=marks", wait_until="networkidle")
    page.get_by_text("2 of 3 subjects").wait_for(timeout=30_000)
    # The order a link names is the session's: the sidebar's "Sort subjects by" shows it.
    assert page.locator("select:has(option[value=marks])").first.input_value() == "marks"
    page.get_by_text("Subject 2", exact=True).wait_for(timeout=15_000)
    page.locator("body").click(position={"x": 5, "y": 300})
    entries = page.evaluate("() => window.history.length")
    page.keyboard.press("ArrowRight")  # filtered order is 1, 2: from 2 it wraps to 1
    page.get_by_text("Subject 1", exact=True).wait_for(timeout=15_000)
    page.wait_for_function("() => window.location.search.includes('subject=1')", timeout=15_000)
    assert {"min_volunteers=2", "sort_by=marks"} <= set(page.evaluate("() => window.location.search")[1:].split("&"))
    # The address is replaced in place: stepping through subjects leaves no history entries to go back through.
    assert page.evaluate("() => window.history.length") == entries
    page.wait_for_timeout(1500)  # let the plot update land before the picture
    page.screenshot(path=str(artefacts / "cutout.png"))
    assert dialogs == []


def test_downloading_the_consensus_csv_of_the_filtered_subjects(browser, served_url, artefacts, tmp_path):
    import zipfile

    import pandas as pd

    page = browser.new_page(viewport={"width": 1500, "height": 950}, accept_downloads=True)
    page.goto(f"{served_url}/?min_volunteers=3", wait_until="networkidle")
    page.get_by_text("1 of 3 subjects").wait_for(timeout=30_000)
    page.locator(".bk-tab", has_text="Export").click()
    with page.expect_download(timeout=30_000) as download_info:
        page.get_by_text("Download the selection", exact=True).click()
    download = download_info.value
    assert download.suggested_filename == "zoolens-selection.zip"  # the CSV and its provenance
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    with zipfile.ZipFile(saved) as archive:
        frame = pd.read_csv(archive.open("zoolens-selection.csv"))
    assert sorted(frame.consensus_id) == [10, 11]  # subject 1's boxes: only it has 3 volunteers
    page.screenshot(path=str(artefacts / "export.png"))
