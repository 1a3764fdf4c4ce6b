"""The demo in a real browser, read as an astronomer would: load warnings out of the image's way, agreement plots
that count in whole numbers and keep the brushed region, and one volunteer's marks picked out on the cutout.

What the page shows is read from BokehJS's own models and views (`tests.ui.test_demo.PLOT_VIEWS_JS`) and from
the page's elements; screenshots at 1600x1000 go to the artefacts folder.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.ui.test_demo import PLOT_VIEWS_JS

pytestmark = pytest.mark.ui

VIEWPORT = {"width": 1600, "height": 1000}

#: A density plot (by title): its x range, its colour bar's ticker, how many raster layers it has, and the
#: centres (data coordinates) of an empty pixel and of a pixel holding data in its selected points' raster.
DENSITY_JS = """(title) => {
  for (const view of window.zoolensPlotViews()) {
    if (view.model.title?.text !== title) continue;
    const colorbar = [...view.model.right, ...view.model.center].find((model) => model.ticker && model.color_mapper);
    const images = view.model.renderers.filter((renderer) => renderer.glyph?.type === "Image");
    const data = images[images.length - 1].data_source.data;
    const column = (name) => Array.from(data instanceof Map ? data.get(name) : data[name]);
    const image = column("image")[0];
    const [rows, columns] = image.shape;
    const [x0, y0, dw, dh] = ["x", "y", "dw", "dh"].map((name) => column(name)[0]);
    // The raster is a flat array of rows, the first row at y0.
    const centre = (index) => [x0 + ((index % columns) + 0.5) * dw / columns,
                               y0 + (Math.floor(index / columns) + 0.5) * dh / rows];
    const values = Array.from(image);
    const filled = values.findIndex((value) => Number.isFinite(value) && value > 0);
    // An empty pixel away from any filled one, so the spread of a neighbour does not reach it.
    const empty = values.findIndex((value, index) => !(value > 0) && [-2, -1, 1, 2].every((step) =>
      !(values[index + step] > 0) && !(values[index + step * columns] > 0)));
    return {
      x_start: view.model.x_range.start, x_end: view.model.x_range.end,
      y_start: view.model.y_range.start, y_end: view.model.y_range.end,
      ticker: colorbar ? {type: colorbar.ticker.type, min_interval: colorbar.ticker.min_interval,
                          mantissas: Array.from(colorbar.ticker.mantissas ?? [])} : null,
      formatter: colorbar ? colorbar.formatter.format : null,
      // Raster layers holding data: the selected points', and the grey rest's once there is a selection.
      layers: images.filter((renderer) => {
        const layer = renderer.data_source.data;
        const raster = (layer instanceof Map ? layer.get("image") : layer.image)[0];
        return Array.from(raster).some((value) => value > 0);
      }).length,
      empty: empty >= 0 ? centre(empty) : null, filled: filled >= 0 ? centre(filled) : null,
    };
  }
  return null;
}"""

#: Page coordinates of data point (x, y) in the plot titled ``title``, scrolled into view first.
SCREEN_JS = """([title, x, y]) => {
  for (const view of window.zoolensPlotViews()) {
    if (view.model.title?.text !== title) continue;
    view.el.scrollIntoView({block: "center"});
    const box = view.el.getBoundingClientRect();
    return [box.x + view.frame.x_scale.compute(x), box.y + view.frame.y_scale.compute(y)];
  }
  return null;
}"""

#: The brushed regions drawn in the plot titled ``title``: rectangles (left, bottom, right, top) or spans.
BRUSHES_JS = """(title) => {
  for (const view of window.zoolensPlotViews()) {
    if (view.model.title?.text !== title) continue;
    const regions = [];
    for (const renderer of view.model.renderers) {
      if (renderer.glyph?.type === "Quad") {
        const data = renderer.data_source.data;
        const column = (name) => Array.from(data instanceof Map ? data.get(name) : data[name]);
        column("left").forEach((left, i) => regions.push([left, column("bottom")[i], column("right")[i], column("top")[i]]));
      }
    }
    return regions;
  }
  return null;
}"""

#: Rows of the Volunteers tab's statistics table.
VOLUNTEER_ROWS = ".tabulator-row:has([tabulator-field=marks_per_classification])"


@pytest.fixture
def page(browser, demo_url):
    dialogs: list[str] = []
    page = browser.new_page(viewport=VIEWPORT)
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.add_init_script(PLOT_VIEWS_JS)
    page.goto(demo_url, wait_until="networkidle")
    page.get_by_text("60 of 60 subjects").wait_for(timeout=60_000)
    yield page
    page.close()
    assert dialogs == []


def _wait_for_plots(page, count: int) -> None:
    page.wait_for_function(f"() => window.zoolensPlotViews().length >= {count}", timeout=90_000)


def _overlaps(a: dict, b: dict) -> bool:
    return (a["x"] < b["x"] + b["width"] and b["x"] < a["x"] + a["width"]
            and a["y"] < b["y"] + b["height"] and b["y"] < a["y"] + a["height"])


def test_the_load_warning_is_a_sidebar_badge_and_nothing_covers_the_cutout(page, artefacts):
    badge = page.locator(".zoolens-load-warnings").get_by_text("⚠ 3 warnings: 15 rows skipped")
    badge.wait_for(timeout=30_000)
    assert page.locator("#sidebar").get_by_text("⚠ 3 warnings: 15 rows skipped").count() == 1
    _wait_for_plots(page, 1)
    # The old toast came once the page was drawn and stayed 30 s: give it the time to come.
    page.wait_for_timeout(3000)
    cutout = page.locator(".bk-Figure").last.bounding_box()
    assert cutout is not None and cutout["width"] > 200
    for toast in page.locator(".notyf__toast, .notyf__wrapper").all():
        box = toast.bounding_box()
        assert box is None or not _overlaps(box, cutout), "a notification covers the cutout"
    assert page.locator(".notyf__toast").count() == 0
    page.screenshot(path=str(artefacts / "load-warning-badge.png"))
    badge.click()  # the badge expands into the report
    page.get_by_text("6 other workflow (kept workflow 9001) (lines").wait_for(timeout=15_000)


def _hover_until_a_tooltip_shows(page, title: str, point, attempts: int = 6) -> None:
    """Move the pointer onto ``point`` (data coordinates) of the plot titled ``title`` until Bokeh shows its tooltip.

    Moved again a few times: a page still drawing after the scroll can miss the first move's hover.
    """
    tooltip = page.locator(".bk-tooltip-row-label:visible")
    for _ in range(attempts):
        x, y = page.evaluate(SCREEN_JS, [title, *point])
        page.mouse.move(x - 1, y - 1)
        page.mouse.move(x, y)
        try:
            tooltip.first.wait_for(timeout=5_000)
            return
        except PlaywrightTimeoutError:
            page.mouse.move(5, 5)
    raise AssertionError(f"no tooltip over {point} in the plot {title!r} after {attempts} moves")


def test_agreement_plots_count_in_whole_numbers_keep_the_brush_and_hover_only_on_data(page, artefacts):
    page.locator(".bk-tab", has_text="Agreement").click()
    _wait_for_plots(page, 5)
    page.wait_for_timeout(2000)
    page.screenshot(path=str(artefacts / "agreement.png"), full_page=True)

    sky = page.evaluate(DENSITY_JS, "Subjects on the sky")
    assert sky["x_start"] > sky["x_end"]  # RA increases to the left
    iou = page.evaluate(DENSITY_JS, "IoU with the consensus box against box size")
    assert iou["x_start"] < iou["x_end"]
    for plot in (sky, iou):
        assert plot["ticker"]["type"] == "LogTicker" and plot["ticker"]["min_interval"] == 1
        assert all(float(mantissa).is_integer() for mantissa in plot["ticker"]["mantissas"])
        assert plot["formatter"] == "0,0"

    # Hover over an empty pixel of the sky map: no tooltip (it said "NaN"); over a subject: its count.
    tooltip = page.locator(".bk-tooltip-row-label:visible")
    assert sky["empty"] is not None and sky["filled"] is not None
    _hover_until_a_tooltip_shows(page, "Subjects on the sky", sky["filled"])
    assert "subjects" in tooltip.all_inner_texts()[-1]
    values = page.locator(".bk-tooltip-row-value:visible").all_inner_texts()
    assert values[-1].strip().isdigit() and not any("NaN" in value for value in values)
    x, y = page.evaluate(SCREEN_JS, ["Subjects on the sky", *sky["empty"]])
    page.mouse.move(x - 1, y - 1)
    page.mouse.move(x, y)
    page.wait_for_timeout(1000)
    assert tooltip.count() == 0
    assert not any("NaN" in text for text in page.locator(".bk-tooltip-row-value").all_inner_texts())
    page.mouse.move(5, 5)

    # Box-select in the IoU plot: the region stays drawn, the rest of the marks stay in grey under the selected.
    title = "IoU with the consensus box against box size"

    def at(share_x, share_y):
        return page.evaluate(SCREEN_JS, [title, iou["x_start"] + share_x * (iou["x_end"] - iou["x_start"]),
                                         iou["y_start"] + share_y * (iou["y_end"] - iou["y_start"])])

    page.mouse.move(*at(0.3, 0.7))
    page.mouse.down()
    page.mouse.move(*at(0.6, 0.4), steps=6)
    page.mouse.up()
    page.get_by_text("Another box refines it").wait_for(timeout=60_000)
    page.wait_for_function(f"() => ({BRUSHES_JS})('IoU with the consensus box against box size').length === 1",
                           timeout=60_000)
    (region,) = page.evaluate(BRUSHES_JS, "IoU with the consensus box against box size")
    assert region[0] < region[2] and region[1] < region[3]
    # Both layers hold data now: the grey rest and the selected in colour.
    page.wait_for_function(
        f"""() => {{ const plot = ({DENSITY_JS})('IoU with the consensus box against box size');
                    return plot && plot.layers === 2; }}""", timeout=60_000)
    page.wait_for_timeout(2000)
    page.screenshot(path=str(artefacts / "agreement-selected.png"), full_page=True)


def test_one_volunteer_picked_out_on_the_cutout_and_stepped_through(page, artefacts):
    page.locator(".bk-tab", has_text="Volunteers").click()
    rows = page.locator(VOLUNTEER_ROWS)
    rows.first.wait_for(timeout=60_000)
    rows.first.click()
    page.locator(".zoolens-highlighted-volunteer").first.wait_for(timeout=30_000)
    volunteer = page.locator(".zoolens-highlighted-volunteer").first.inner_text()
    page.screenshot(path=str(artefacts / "volunteers.png"), full_page=True)
    page.get_by_text("Their next ▶").first.click()
    # The Subjects tab comes forward, the cutout drawing the volunteer's marks bold and the others faded.
    page.get_by_text("subject 1 of the").first.wait_for(timeout=60_000)
    page.wait_for_function(
        """(name) => window.zoolensSourcesWith('volunteer').some((table) =>
             table.outline && table.volunteer.some((who, i) => who === name && table.outline[i] === 4))""",
        arg=volunteer, timeout=60_000)
    styles = page.evaluate("() => window.zoolensSourcesWith('volunteer').filter((table) => table.outline)")
    widths = {(who, width) for table in styles for who, width in zip(table["volunteer"], table["outline"])}
    assert {width for who, width in widths if who == volunteer} == {4}
    assert all(width == 1 for who, width in widths if who != volunteer)
    page.wait_for_timeout(1500)
    page.screenshot(path=str(artefacts / "volunteer-on-cutout.png"))
    # The bar above the cutout steps on through their subjects.
    page.get_by_text("Their next ▶").first.click()
    page.get_by_text("subject 2 of the").first.wait_for(timeout=60_000)
