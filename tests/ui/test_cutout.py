"""The cutout as a reviewer's instrument, in a real browser at 1600x1000: big, with the review buttons beside it,
a legend of its layers, review statuses that look different, and boxes redrawn by dragging their corners."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.dashboard import tiny
from tests.dashboard.serving import served
from tests.ui.test_demo import PLOT_VIEWS_JS, SCREEN_POINT_JS
from tests.ui.test_reviews import MAIN_OVERFLOW_JS, signs

pytestmark = pytest.mark.ui

VIEWPORT = {"width": 1600, "height": 1000}

#: Per consensus layer of the cutout (its source has a ``status`` column): the statuses it holds and how
#: its glyph draws them (line dash, widths), read from BokehJS's models.
CONSENSUS_LOOKS_JS = """() => {
  const looks = [];
  for (const view of window.zoolensPlotViews()) for (const renderer of view.model.renderers) {
    const data = renderer.data_source?.data;
    if (!data || !window.zoolensColumns(data).includes('status') || !renderer.glyph) continue;
    const dash = renderer.glyph.line_dash;
    looks.push({statuses: window.zoolensColumn(data, 'status'), ids: window.zoolensColumn(data, 'consensus_box'),
                colours: window.zoolensColumn(data, 'colour'),
                dash: Array.isArray(dash) ? dash : (dash?.value ?? dash)});
  }
  return looks;
}"""

#: The texts of every label glyph on the cutout (the review statuses' marks).
GLYPHS_JS = """() => window.zoolensSourcesWith('glyph').flatMap((table) => table.glyph)"""


@pytest.fixture
def served_url(tmp_path, review_store):
    project = tiny.tiny_project(tmp_path / "root", title="cutout")
    with served(project, "test-ui-cutout", reviews=review_store) as url:
        yield url


def open_as_reviewer(browser, url, name="ann"):
    page = browser.new_page(viewport=VIEWPORT)
    page.add_init_script(PLOT_VIEWS_JS)
    page.goto(url, wait_until="networkidle")
    page.get_by_text("3 of 3 subjects").wait_for(timeout=30_000)
    field = page.locator("input[placeholder='needed to record decisions']")
    field.fill(name)
    field.press("Enter")
    page.get_by_text(f"reviewing as {name}").wait_for(timeout=15_000)
    page.wait_for_function(f"() => ({SCREEN_POINT_JS})([null, 'consensus_box', 0, 0]) !== null", timeout=30_000)
    return page


#: The bounding box of the cutout's frame on the page: the plot view holding the consensus layers.
CUTOUT_FRAME_JS = """() => {
  for (const view of window.zoolensPlotViews()) {
    if (!view.model.renderers.some((r) => r.data_source?.data
                                   && window.zoolensColumns(r.data_source.data).includes('consensus_box'))) continue;
    const box = view.el.getBoundingClientRect();
    const frame = view.frame.bbox;
    return {x: box.x + frame.x, y: box.y + frame.y, width: frame.width, height: frame.height};
  }
  return null;
}"""


#: The right edge of the pane holding a text element (up through its shadow roots to Panel's HTML pane).
CAPTION_PANE_JS = """(element) => {
  let node = element;
  while (node && !(node.classList && node.classList.contains('bk-panel-models-markup-HTML'))) {
    node = node.parentElement || node.getRootNode().host;
  }
  return {right: (node || element).getBoundingClientRect().right};
}"""


def cutout_canvas(page):
    """The bounding box of the cutout's plot: the plot view holding the consensus layers."""
    return page.evaluate(CUTOUT_FRAME_JS)


def test_the_cutout_is_the_largest_thing_with_the_review_buttons_beside_it(browser, served_url, artefacts):
    page = open_as_reviewer(browser, served_url)
    try:
        canvas = cutout_canvas(page)
        assert canvas["width"] >= 600 and canvas["height"] >= 600
        assert canvas["y"] + canvas["height"] <= VIEWPORT["height"]  # the whole image on the first screen
        accept = page.get_by_role("button", name="Accept").bounding_box()
        redraw = page.get_by_role("button", name="Redraw").bounding_box()
        table = page.locator(".tabulator", has=page.locator("[tabulator-field=n_volunteers]")).bounding_box()
        right = canvas["x"] + canvas["width"]
        for thing in (accept, redraw, table):  # beside the image, not over or under it
            assert thing["x"] >= right
        # Beside, within the image's height, on the first screen: no scrolling between image and buttons.
        assert canvas["y"] <= accept["y"] and redraw["y"] + redraw["height"] <= canvas["y"] + canvas["height"]
        assert table["y"] >= redraw["y"] + redraw["height"]  # the table under the review controls
        assert table["x"] + table["width"] <= VIEWPORT["width"]
        page.screenshot(path=str(artefacts / "cutout-layout.png"))
    finally:
        page.close()


def test_the_cutout_grows_to_the_room_of_a_large_window_and_follows_it(browser, served_url, artefacts):
    # It was 600 px on every screen: on a 1,920 x 1,080 one, a third of the window's width, the rest empty.
    page = open_as_reviewer(browser, served_url)
    try:
        for width, height, frame in ((1920, 1000, 800), (1500, 950, 700), (1366, 700, 600), (2400, 1400, 1200)):
            page.set_viewport_size({"width": width, "height": height})
            page.wait_for_function(f"() => {{ const box = ({CUTOUT_FRAME_JS})(); "
                                   f"return box && box.width === {frame} && box.height === {frame}; }}", timeout=15_000)
            canvas = cutout_canvas(page)
            if height - canvas["y"] >= frame:  # where the window is tall enough: the whole frame on the first screen
                assert canvas["y"] + canvas["height"] <= height
            accept = page.get_by_role("button", name="Accept").bounding_box()
            assert accept["x"] >= canvas["x"] + canvas["width"]  # the review panel still beside it
            # The caption over the frame wraps within the view: it kept its first width, over the review panel.
            caption = page.get_by_text(re.compile(r"from \d+ classifications")).evaluate(CAPTION_PANE_JS)
            assert caption["right"] <= accept["x"]
            assert accept["x"] + accept["width"] <= width and page.evaluate(MAIN_OVERFLOW_JS) == []
            if width == 1920:
                page.screenshot(path=str(artefacts / "cutout-1920.png"))
    finally:
        page.close()


def test_the_legend_names_the_layers_and_accepting_a_box_changes_its_look(browser, served_url, artefacts):
    page = open_as_reviewer(browser, served_url)
    try:
        legend = page.locator(".zoolens-legend")
        for name in ("volunteer mark", "unmatched volunteer mark", "consensus, unreviewed", "accepted", "redrawn",
                     "added", "rejected", "picked", "uncertainty band"):
            expect(legend).to_contain_text(name)
        looks = page.evaluate(CONSENSUS_LOOKS_JS)
        unreviewed = [look for look in looks if 10 in look["ids"] and "unreviewed" in look["statuses"]]
        assert len(unreviewed) == 1 and unreviewed[0]["dash"] not in ([], "solid")  # dashed before a decision
        assert "\u2713" not in page.evaluate(GLYPHS_JS)

        page.get_by_role("button", name="Accept").click()  # box 10, picked to start with
        page.wait_for_function(f"() => ({CONSENSUS_LOOKS_JS})().some("
                               "(look) => look.statuses.includes('accepted') && look.ids.includes(10))", timeout=15_000)
        looks = page.evaluate(CONSENSUS_LOOKS_JS)
        accepted = [look for look in looks if "accepted" in look["statuses"]]
        assert len(accepted) == 1 and accepted[0]["dash"] in ([], "solid")  # solid once accepted
        assert accepted[0]["ids"] == [10]
        assert not any(10 in look["ids"] for look in looks if "unreviewed" in look["statuses"])
        page.wait_for_function(f"() => ({GLYPHS_JS})().includes('\u2713')", timeout=15_000)  # and a check mark
        page.wait_for_timeout(800)
        page.screenshot(path=str(artefacts / "cutout-accepted.png"))
    finally:
        page.close()


def test_dragging_a_corner_of_the_picked_box_records_a_redraw(browser, served_url, review_store, artefacts):
    page = open_as_reviewer(browser, served_url)
    try:
        def screen(x, y):
            return page.evaluate(SCREEN_POINT_JS, [None, "consensus_box", x, y])

        # Box 10 (10, 10, 20 x 20) is picked to start with; its handles sit on its corners.
        page.wait_for_function("() => window.zoolensPlotViews().some((view) => view.model.center.some("
                               "(a) => a.editable && a.visible && a.left === 10 && a.right === 30))", timeout=15_000)
        page.screenshot(path=str(artefacts / "cutout-before-drag.png"))
        start, end = screen(30, 30), screen(38, 34)
        page.mouse.move(*start)
        page.mouse.down()
        page.mouse.move(*end, steps=10)
        page.mouse.up()
        box_statuses = page.locator("td[data-field='status']")
        expect(box_statuses.first).to_have_attribute("data-value", "redrawn", timeout=15_000)
        history = review_store.history()
        assert history.action.tolist() == ["redraw"] and history.consensus_id.tolist() == [10]
        redrawn = history.iloc[0]
        # The drag lands within a screen pixel of where it was aimed: a sixth of an image pixel here.
        assert [redrawn.after[name] for name in ("x", "y", "width", "height")] == pytest.approx([10, 10, 28, 24],
                                                                                                abs=0.5)
        assert [redrawn.before[name] for name in ("x", "y", "width", "height")] == [10, 10, 20, 20]
        assert redrawn.reviewer == "ann"
        # The cutout draws the box at its new place, solid, with the redrawn mark, and the handles on it.
        page.wait_for_function(f"() => ({CONSENSUS_LOOKS_JS})().some((look) => look.statuses.includes('redrawn'))",
                               timeout=15_000)
        page.wait_for_function(f"() => ({GLYPHS_JS})().includes('\u270e')", timeout=15_000)
        redrawn_layer = page.evaluate("() => window.zoolensSourcesWith('status').filter("
                                      "(table) => table.status.includes('redrawn'))")
        assert len(redrawn_layer) == 1 and redrawn_layer[0]["x1"][0] == pytest.approx(38, abs=0.5)
        page.wait_for_timeout(1000)
        page.screenshot(path=str(artefacts / "cutout-after-drag.png"))
    finally:
        page.close()


def test_drawing_a_box_with_the_box_draw_tool_records_an_added_box(browser, served_url, review_store, artefacts):
    page = open_as_reviewer(browser, served_url)
    try:
        def screen(x, y):
            return page.evaluate(SCREEN_POINT_JS, [None, "consensus_box", x, y])

        page.get_by_role("button", name="Whole image").click()
        page.wait_for_function("(label) => !label.getRootNode().querySelector('input').checked",
                               arg=page.get_by_text("zoom to pick", exact=True).element_handle(), timeout=15_000)
        page.wait_for_function("() => window.zoolensPlotViews().some((view) => view.model.x_range.start === 0"
                               " && view.model.x_range.end === 100)", timeout=15_000)
        page.locator("[title^='Draw a box to add']").first.click()
        # On empty image (no box there), from (40, 70) to (52, 82); the y axis runs down the image.
        start, end = screen(40, 70), screen(52, 82)
        page.keyboard.down("Shift")
        page.mouse.move(*start)
        page.mouse.down()
        page.mouse.move(*end, steps=10)
        page.mouse.up()
        page.keyboard.up("Shift")
        box_statuses = page.locator("td[data-field='status']")
        expect(box_statuses).to_have_text(signs("unreviewed", "unreviewed", "added"), timeout=15_000)
        history = review_store.history()
        assert history.action.tolist() == ["add"] and history.reviewer.tolist() == ["ann"]
        added = history.iloc[0]
        # The drag lands within a screen pixel of where it was aimed: a sixth of an image pixel here.
        assert [added.after[name] for name in ("x", "y", "width", "height")] == pytest.approx([40, 70, 12, 12], abs=1)
        # Drawn at once as an added box, solid with its plus, and the tool's own box gone.
        page.wait_for_function(f"() => ({CONSENSUS_LOOKS_JS})().some((look) => look.statuses.includes('added'))",
                               timeout=15_000)
        page.wait_for_function(f"() => ({GLYPHS_JS})().includes('+')", timeout=15_000)
        # The tool's box is cleared by the server's next change, which may reach the page after the glyph's.
        page.wait_for_function("() => window.zoolensSourcesWith('left').every((table) => table.left.length === 0)",
                               timeout=15_000)
        page.wait_for_timeout(800)
        page.screenshot(path=str(artefacts / "cutout-drawn-added.png"))
    finally:
        page.close()
