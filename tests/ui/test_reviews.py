"""A review session in a real browser: enter a name, accept and reject boxes, see the statuses change."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from dashboard.app import NARROW_WINDOW
from dashboard.views.review import BOX_SIGNS
from dashboard.views.subjects import STATUS_SIGNS
from tests.dashboard import tiny
from tests.dashboard.serving import served
from tests.ui.test_demo import BOX_TABLE_OVERFLOW_JS, PLOT_VIEWS_JS, SCREEN_POINT_JS, TABLE_OVERFLOW_JS

pytestmark = pytest.mark.ui

#: A reviewer name that would turn bold (or worse) if any view rendered it as HTML.
REVIEWER = "Ann <b>bold</b>"

#: The page's main area when its views are wider than it shows ([shown width, needed width]; nothing when they fit).
MAIN_OVERFLOW_JS = ("() => [...document.querySelectorAll('.pn-wrapper')].filter(e => e.scrollWidth > e.clientWidth)"
                    ".map(e => [e.clientWidth, e.scrollWidth])")


@pytest.fixture
def served_url(tmp_path, review_store):
    project = tiny.tiny_project(tmp_path / "root", title="review")
    with served(project, "test-ui-reviews", reviews=review_store) as url:
        yield url


def signs(*statuses: str) -> list[str]:
    """What the box table shows for each of ``statuses``: its sign."""
    return [BOX_SIGNS[status] for status in statuses]


def review_cell(page, subject_id):
    """The Review column's cell of one subject in the subject table (it shows the status's sign)."""
    row = page.locator(".tabulator-row", has=page.locator(
        ".tabulator-cell[tabulator-field='subject_id']", has_text=str(subject_id)))
    return row.locator(".tabulator-cell[tabulator-field='review_status']")


def test_a_click_on_the_image_picks_a_box_and_a_drag_draws_one(browser, served_url, review_store, artefacts):
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    page.add_init_script(PLOT_VIEWS_JS)
    page.goto(served_url, wait_until="networkidle")
    page.get_by_text("3 of 3 subjects").wait_for(timeout=30_000)
    name = page.locator("input[placeholder='needed to record decisions']")
    name.fill("ann")
    name.press("Enter")
    page.get_by_text("reviewing as ann").wait_for(timeout=15_000)
    page.wait_for_function(f"() => ({SCREEN_POINT_JS})([null, 'consensus_box', 0, 0]) !== null", timeout=30_000)

    def screen(x, y):
        return page.evaluate(SCREEN_POINT_JS, [None, "consensus_box", x, y])

    picked_row = page.locator("tr.picked td[data-field='consensus_id']")
    expect(picked_row).to_have_text("10", timeout=15_000)  # the subject's first box, to start with
    # The picked box's row does not look like the current subject's row below it (two rows seemed selected).
    background = "(cell) => getComputedStyle(cell.closest('tr, .tabulator-row')).backgroundColor"
    subject_row = page.locator(".tabulator-row.tabulator-selected .tabulator-cell[tabulator-field='subject_id']")
    expect(subject_row).to_have_text("1", timeout=15_000)
    assert picked_row.evaluate(background) == "rgb(255, 243, 191)"
    assert subject_row.evaluate(background) != picked_row.evaluate(background)
    page.mouse.click(*screen(65, 65))  # inside box 11 (60, 60, 10 x 10)
    expect(picked_row).to_have_text("11", timeout=15_000)
    # Picking zooms to the box; the drawing below is on the whole image.
    page.get_by_role("button", name="Whole image").click()
    # Once the server has taken the click its tick box is off; the whole image is drawn by then.
    page.wait_for_function("(label) => !label.getRootNode().querySelector('input').checked",
                           arg=page.get_by_text("zoom to pick", exact=True).element_handle(), timeout=15_000)
    page.wait_for_function("() => window.zoolensPlotViews().some((view) => view.model.x_range.start === 0"
                           " && view.model.x_range.end === 100 && view.model.renderers.some((renderer) =>"
                           " renderer.data_source?.data && window.zoolensColumns(renderer.data_source.data)"
                           ".includes('consensus_box')))", timeout=15_000)

    page.locator("[title='Box Select']").first.click()
    start, end = screen(20, 70), screen(44, 90)
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=8)
    page.mouse.up()
    # The drawn box shows dashed on the image (the one data source without colours) before it is used.
    page.wait_for_function("() => window.zoolensSourcesWith('left').some("
                           "table => !('colour' in table) && table.left.length === 1)", timeout=15_000)
    page.screenshot(path=str(artefacts / "review-drawing.png"))
    page.get_by_role("button", name="Add box").click()
    expect(page.locator("td[data-field='status']")).to_have_text(signs("unreviewed", "unreviewed", "added"),
                                                                 timeout=15_000)
    added = review_store.history().iloc[-1]
    # A drag lands within a screen pixel of where it was aimed: a quarter of an image pixel here.
    assert added.action == "add" and added.reviewer == "ann"
    assert [added.after[name] for name in ("x", "y", "width", "height")] == pytest.approx([20, 70, 24, 20], abs=1)
    expect(picked_row).to_have_text(str(added.consensus_id), timeout=15_000)  # the added box is picked
    page.wait_for_timeout(1000)  # let the redrawn cutout land before the picture
    page.screenshot(path=str(artefacts / "review-drawn.png"))


def test_a_reviewer_accepts_and_rejects_boxes(browser, served_url, review_store, artefacts):
    dialogs: list[str] = []
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(served_url, wait_until="networkidle")
    page.get_by_text("3 of 3 subjects").wait_for(timeout=30_000)
    assert review_cell(page, 1).inner_text() == STATUS_SIGNS["unreviewed"]

    name = page.locator("input[placeholder='needed to record decisions']")
    name.fill(REVIEWER)
    name.press("Enter")
    page.get_by_text(f"reviewing as {REVIEWER}").wait_for(timeout=15_000)  # shown as text, not bold

    page.get_by_role("button", name="Accept").click()  # box 10, picked to start with
    expect(review_cell(page, 1)).to_have_text(STATUS_SIGNS["mixed"], timeout=15_000)  # 10 accepted, 11 not yet
    assert review_cell(page, 2).inner_text() == STATUS_SIGNS["unreviewed"]
    # A screen reader reads each sign as its word.
    expect(review_cell(page, 1).get_by_role("img", name="mixed", exact=True)).to_have_text(STATUS_SIGNS["mixed"])
    expect(review_cell(page, 2).get_by_role("img", name="unreviewed", exact=True)).to_be_visible()

    page.locator("td[data-field='consensus_id']", has_text="11").click()
    page.get_by_role("button", name="Reject").click()
    box_statuses = page.locator("td[data-field='status']")
    expect(box_statuses).to_have_text(signs("accepted", "rejected"), timeout=15_000)
    history = review_store.history()
    assert history[["subject_id", "consensus_id", "action", "reviewer"]].values.tolist() == [
        [1, 10, "accept", REVIEWER], [1, 11, "reject", REVIEWER]]
    # Who decided is in the status's hover, as text (the name stays a name, never markup).
    assert box_statuses.evaluate_all("cells => cells.map((cell) => cell.title)") == [
        f"accepted by {REVIEWER}", f"rejected by {REVIEWER}"]
    for status in ("accepted", "rejected"):
        expect(box_statuses.get_by_role("img", name=f"{status} by {REVIEWER}", exact=True)).to_have_text(
            BOX_SIGNS[status])
    # The sidebar's progress follows the decisions (its text is changed in place).
    expect(page.get_by_text(re.compile(r"of \d+ reviewed \(")).first).to_have_text(
        re.compile(rf"\b1 of 3 reviewed \({re.escape(REVIEWER)} 1\)"), use_inner_text=True, timeout=15_000)
    page.wait_for_timeout(1500)  # let the redrawn cutout land before the picture
    page.screenshot(path=str(artefacts / "review.png"))

    # The same by keyboard, with the focus out of any input: u reverts the reject of 11,
    # then p picks box 10 and x rejects it.
    page.get_by_text("Keys:").click()
    page.keyboard.press("u")
    expect(box_statuses).to_have_text(signs("accepted", "unreviewed"), timeout=15_000)
    page.keyboard.press("p")
    page.keyboard.press("x")
    expect(box_statuses).to_have_text(signs("rejected", "unreviewed"), timeout=15_000)
    assert review_store.history()[["consensus_id", "action"]].values.tolist()[2:] == [
        [11, "revert"], [10, "reject"]]

    # Typed numbers, the fallback to dragging: the inputs show the picked box (11, picked after x decided 10:
    # 60, 60, 10 x 10), a typed width is sent when committed, and Redraw records it.
    width = page.locator("input[name='width']")
    expect(page.locator("input[name='x']")).to_have_value("60.0", timeout=15_000)
    width.fill("14")
    width.press("Enter")
    page.get_by_role("button", name="Redraw").click()
    expect(box_statuses).to_have_text(signs("rejected", "redrawn"), timeout=15_000)
    redrawn = review_store.history().iloc[-1]
    assert redrawn.consensus_id == 11 and [redrawn.after[name] for name in ("x", "y", "width", "height")] == [
        60.0, 60.0, 14.0, 10.0]
    assert dialogs == []


@pytest.mark.parametrize("width", [1280, 1366, 1500])
def test_the_review_panel_fits_a_laptop_window(browser, demo_project, review_store, width, artefacts):
    # At these widths the row of decision buttons and the typed geometry ran past the page's right edge
    # (the Reason box and "Add box" half hidden, the page scrolling sideways): they wrap now.
    with served(demo_project, f"test-ui-review-width-{width}", reviews=review_store) as url:
        page = browser.new_page(viewport={"width": width, "height": 950})
        page.goto(url, wait_until="networkidle")
        page.get_by_role("button", name="Add box").wait_for(timeout=60_000)
        page.wait_for_timeout(500)
        page.screenshot(path=str(artefacts / f"review-panel-{width}.png"))
        # Narrower than a 1,366 px laptop the sidebar starts folded away (the views needed its room: at 1,280 px the
        # main area scrolled sideways by 99 px, at 1,366 px by 13 px), and its button brings it back.
        sidebar = page.locator("#sidebar")
        assert ("hidden" in sidebar.get_attribute("class").split()) == (width < NARROW_WINDOW)
        assert page.evaluate(MAIN_OVERFLOW_JS) == []
        if width < NARROW_WINDOW:
            name_field = sidebar.get_by_text("Your name (reviewer)")
            expect(name_field).not_to_be_in_viewport()
            page.locator("#sidebar-button").click()
            expect(name_field).to_be_in_viewport()
            page.locator("#sidebar-button").click()
            expect(name_field).not_to_be_in_viewport()
        controls = [page.get_by_role("button", name=name) for name in
                    ("Accept", "Reject", "Revert last", "Redraw", "Add box", "Flag subject", "Unflag")]
        controls.append(page.locator("input[placeholder='why (optional)']"))
        for control in controls:
            box = control.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, control
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        # The subjects table beside it: every header whole (they ended in "..."; Tabulator's own style sheet
        # overrode the compact header), and the disagreement, the default sort, in view without scrolling.
        subjects = page.locator(".tabulator:has([tabulator-field=n_volunteers])")
        titles = subjects.locator(".tabulator-col[tabulator-field] .tabulator-col-title")
        cut = titles.evaluate_all("titles => titles.filter(t => t.offsetWidth && t.scrollWidth > t.clientWidth)"
                                  ".map(t => t.textContent)")
        assert titles.count() >= 7 and cut == []
        assert page.evaluate(TABLE_OVERFLOW_JS, "n_volunteers") == []  # every column in view: none to scroll to
        assert page.evaluate(BOX_TABLE_OVERFLOW_JS) == []  # nor in the box table
        table_box = subjects.bounding_box()
        disagreement = subjects.locator(".tabulator-col[tabulator-field=disagreement]").bounding_box()
        assert disagreement["x"] + disagreement["width"] <= table_box["x"] + table_box["width"]
        page.close()
