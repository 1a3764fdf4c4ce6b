"""The dashboard on the built-in demo, in a real browser, checked against the demo's own files.

One demo is generated and served per test session (`tests/ui/conftest.py`). What the
page shows is read from the browser (the Bokeh document's data sources, the table's
cells, the downloaded file) and compared with numbers worked out here from the demo's
classification export by an independent route: the CSV read with pandas, its JSON
annotations parsed with `json`, the workflow filtered by hand.
"""

from __future__ import annotations

import io
import json
import zipfile
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import pytest
from playwright.sync_api import expect

from zoolens import demo

pytestmark = pytest.mark.ui


def on_every_element(parameters: str, body: str) -> str:
    """A page function of ``parameters`` that runs ``body`` on each ``element`` of the page, through every shadow root
    (Bokeh and Panel models each draw in one), and returns the array ``found`` the body fills."""
    return f"""{parameters} => {{
  const found = [];
  const walk = (root) => {{
    for (const element of root.querySelectorAll('*')) {{
{body}
      if (element.shadowRoot) walk(element.shadowRoot);
    }}
  }};
  walk(document);
  return found;
}}"""


#: Plot views in the page, found through BokehJS's view index (every root and its children).
PLOT_VIEWS_JS = """
window.zoolensPlotViews = () => {
  function* walk(view) {
    yield view;
    for (const child of view.child_views ?? []) yield* walk(child);
  }
  const found = [];
  for (const root of Object.values(Bokeh.index)) {
    for (const view of walk(root)) if (view.frame && view.model.renderers) found.push(view);
  }
  return found;
};
window.zoolensColumns = (data) => data instanceof Map ? Array.from(data.keys()) : Object.keys(data);
window.zoolensColumn = (data, name) => Array.from(data instanceof Map ? data.get(name) : data[name]);
// The data sources of every plot that hold a column, as {column: values} tables.
window.zoolensSourcesWith = (column) => {
  const tables = [];
  for (const view of window.zoolensPlotViews()) for (const renderer of view.model.renderers) {
    const data = renderer.data_source?.data;
    if (!data || !window.zoolensColumns(data).includes(column)) continue;
    const table = {};
    for (const name of window.zoolensColumns(data)) table[name] = window.zoolensColumn(data, name);
    tables.push(table);
  }
  return tables;
};
"""

#: Page coordinates of data point (x, y) in a plot, found by its title or by a column of its data.
SCREEN_POINT_JS = """([title, column, x, y]) => {
  for (const view of window.zoolensPlotViews()) {
    const titled = title !== null && view.model.title?.text === title;
    const holds = column !== null && view.model.renderers.some(
      (renderer) => renderer.data_source?.data && window.zoolensColumns(renderer.data_source.data).includes(column));
    if (!titled && !holds) continue;
    const box = view.el.getBoundingClientRect();
    const frame = view.frame.bbox;
    const screen_y = y === null ? frame.y + frame.height / 2 : view.frame.y_scale.compute(y);
    return [box.x + view.frame.x_scale.compute(x), box.y + screen_y];
  }
  return null;
}"""

#: Rows of the subject browser's table (other tables on the page have no volunteer counts).
SUBJECT_ROWS = ".tabulator-row:has([tabulator-field=n_volunteers])"

#: The header titles that do not fit their column (text, shown width, needed width) of the table holding a column
#: ``field`` (the subjects' n_volunteers, the volunteers' n_classifications), through every shadow root.
CUT_TITLES_JS = on_every_element("(field)", """
      if (element.classList.contains('tabulator') && element.querySelector(`[tabulator-field=${field}]`))
        for (const title of element.querySelectorAll('.tabulator-col-title'))
          if (title.innerText.trim() && title.scrollWidth > title.clientWidth)
            found.push([title.innerText, title.clientWidth, title.scrollWidth]);""")


#: Each table holding a column ``field`` whose rows are wider than it shows (field, shown width, needed width): its
#: columns would have to be scrolled sideways to, through every shadow root.
TABLE_OVERFLOW_JS = on_every_element("(field)", """
      if (element.classList.contains('tabulator') && element.querySelector(`[tabulator-field=${field}]`)) {
        const holder = element.querySelector('.tabulator-tableholder');
        if (holder.scrollWidth > holder.clientWidth) found.push([field, holder.clientWidth, holder.scrollWidth]);
      }""")

#: The review panel's box table when its rows are wider than it shows ([shown width, needed width]; nothing when
#: they fit or there is no such table), through every shadow root.
BOX_TABLE_OVERFLOW_JS = on_every_element("()", """
      if (element.shadowRoot?.querySelector('th[data-field=status]') && element.scrollWidth > element.clientWidth)
        found.push([element.clientWidth, element.scrollWidth]);""")

#: The FITS image's stretch and colour map choices, through every shadow root.
FITS_SELECTS = "select:has(option[value=asinh]), select:has(option[value=gray])"

#: Sets a page flag if anything on the page calls alert (the demo's <script> name would).
ALERT_FLAG_JS = "window.zoolensScriptRan = false; window.alert = () => { window.zoolensScriptRan = true; };"


@pytest.fixture(scope="module")
def export_classifications(demo_files) -> pd.DataFrame:
    """Rows of the demo export the dashboard shows: workflow 9001 v13.10, annotations that parse."""
    export = pd.read_csv(demo_files.classifications, dtype=str, keep_default_na=False)
    export = export[(export.workflow_id == str(demo.WORKFLOW_ID))
                    & (export.workflow_version == demo.WORKFLOW_VERSION)]

    def parsed(cell):
        try:
            return json.loads(cell)
        except json.JSONDecodeError:
            return None

    export = export.assign(parsed=export.annotations.map(parsed), subject_id=export.subject_ids.astype(np.int64))
    return export[export.parsed.notna()]


@pytest.fixture(scope="module")
def export_marks(export_classifications) -> pd.DataFrame:
    """Every box of the drawing task, corners in image pixels, parsed from the export's JSON."""
    rows = []
    for subject_id, user, tasks in zip(export_classifications.subject_id, export_classifications.user_name,
                                       export_classifications.parsed):
        for task in tasks:
            if task["task"] != "T0":
                continue
            for mark in task["value"]:
                # New front end: centre; classic: top-left corner.
                x = mark["x_center"] - mark["width"] / 2 if "x_center" in mark else mark["x"]
                y = mark["y_center"] - mark["height"] / 2 if "y_center" in mark else mark["y"]
                rows.append((subject_id, user, x, y, x + mark["width"], y + mark["height"]))
    return pd.DataFrame(rows, columns=["subject_id", "volunteer", "x0", "y0", "x1", "y1"])


@pytest.fixture
def open_page(browser, demo_url):
    """Opens the served demo in a new browser session; every page is closed after the test.

    Closed pages end their server sessions, so later tests do not share the server with them.
    """
    pages = []

    def open_(dialogs: list, **context):
        page = browser.new_page(viewport={"width": 1500, "height": 1000}, **context)
        pages.append(page)
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.add_init_script(PLOT_VIEWS_JS + ALERT_FLAG_JS)
        page.goto(demo_url, wait_until="networkidle")
        page.get_by_text("60 of 60 subjects").wait_for(timeout=60_000)
        return page

    yield open_
    for page in pages:
        page.close()


def test_the_page_loads_everything_from_the_server_and_nothing_from_other_hosts(browser, demo_url):
    # The Fast design asked fonts.googleapis.com for its web font on every load: a third party told who opens the
    # dashboard, and on a closed network a page waiting on an unreachable host.
    requested = []
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    try:
        page.on("request", lambda request: requested.append(request.url))
        page.goto(demo_url, wait_until="networkidle")
        page.get_by_text("60 of 60 subjects").wait_for(timeout=60_000)
        page.locator(".bk-tab", has_text="Gallery").click()
        page.wait_for_load_state("networkidle")
    finally:
        page.close()
    origin = urlsplit(demo_url)
    # Blob and data URLs are the page's own; every request over the network goes to the server.
    fetched = [url for url in requested if urlsplit(url).scheme in ("http", "https", "ws", "wss")]
    assert len(fetched) > 10 and [url for url in fetched if urlsplit(url).netloc != origin.netloc] == []


def _sources_with(page, column) -> pd.DataFrame:
    tables = page.evaluate("(column) => window.zoolensSourcesWith(column)", column)
    return pd.concat([pd.DataFrame(table) for table in tables], ignore_index=True) if tables else pd.DataFrame()


def _wait_for_rows(page, column, count):
    page.wait_for_function(
        "([column, count]) => window.zoolensSourcesWith(column).reduce((n, table) => n + table[column].length, 0)"
        " === count", arg=[column, count], timeout=30_000)


def _corners(table) -> list[tuple]:
    return sorted(tuple(row) for row in np.round(table[["x0", "y0", "x1", "y1"]].to_numpy(dtype=float), 6))


def test_a_picked_subject_shows_the_boxes_its_volunteers_drew(open_page, demo_project, export_marks, artefacts):
    dialogs: list[str] = []
    page = open_page(dialogs)
    page.screenshot(path=str(artefacts / "demo-subjects.png"))
    # At a laptop's width every column of the subject table is in view, none cut, nothing to scroll sideways to: the
    # mark count gives way (it shows where there is room for it).
    marks = page.locator(f"{SUBJECT_ROWS} [tabulator-field=n_marks]").first
    expect(marks).to_be_visible()
    page.set_viewport_size({"width": 1366, "height": 1000})
    expect(marks).to_be_hidden()
    assert page.evaluate(TABLE_OVERFLOW_JS, "n_volunteers") == [] and page.evaluate(CUT_TITLES_JS, "n_volunteers") == []
    assert page.evaluate(BOX_TABLE_OVERFLOW_JS) == []  # the review panel's box table above it too
    page.set_viewport_size({"width": 1500, "height": 1000})
    expect(marks).to_be_visible()
    # The subject with the most boxes on the first page: the most to compare.
    rows = page.locator(SUBJECT_ROWS)
    shown = [int(text) for text in rows.locator("[tabulator-field=subject_id]").all_inner_texts()]
    marks_per_row = demo_project.subject_stats.set_index("subject_id").n_marks[shown]
    row = rows.nth(int(np.argmax(marks_per_row)))
    subject_id = int(row.locator("[tabulator-field=subject_id]").inner_text())
    # Clicked at the right edge of a cell: a column's resize grip was there, and took the click.
    cell = row.locator("[tabulator-field=subject_id]").bounding_box()
    page.mouse.click(cell["x"] + cell["width"] - 2, cell["y"] + cell["height"] / 2)
    page.get_by_text(f"Subject {subject_id}", exact=True).wait_for(timeout=15_000)

    expected = export_marks[export_marks.subject_id == subject_id]
    assert len(expected) > 5  # a subject with something to compare
    _wait_for_rows(page, "volunteer", len(expected))
    drawn = _sources_with(page, "volunteer")
    assert _corners(drawn) == _corners(expected)
    assert sorted(drawn.volunteer) == sorted(expected.volunteer)

    consensus = _sources_with(page, "votes")
    boxes = demo_project.consensus_of(subject_id)
    assert _corners(consensus) == _corners(boxes.assign(x0=boxes.x, y0=boxes.y, x1=boxes.x + boxes.width,
                                                        y1=boxes.y + boxes.height))
    # Each volunteer box is outlined in the colour of the consensus box it supports.
    colour_of_box = dict(zip(consensus.consensus_box, consensus.colour))
    supporting = drawn[drawn.consensus_box >= 0]
    assert len(supporting) and (supporting.consensus_box.map(colour_of_box) == supporting.colour).all()
    page.wait_for_timeout(500)  # the image lands after the boxes
    page.screenshot(path=str(artefacts / "demo-cutout.png"))
    # Panel draws the checkbox's label and input inside one shadow root.
    page.get_by_text("fit to boxes", exact=True).evaluate("label => label.getRootNode().querySelector('input').click()")
    page.wait_for_timeout(1500)
    page.screenshot(path=str(artefacts / "demo-cutout-fit.png"))
    assert dialogs == []


def test_brushing_a_plot_filters_the_table_the_other_plots_and_the_export(open_page, demo_project,
                                                                          export_classifications, artefacts):
    volunteers = export_classifications.groupby("subject_id").user_name.nunique()
    # The busiest subjects: the fewest top volunteer counts holding at least 4 subjects.
    top = np.sort(volunteers.unique())[::-1]
    low = next(value for value in top if (volunteers >= value).sum() >= 4)
    high = int(top[0])
    expected = set(volunteers.index[volunteers >= low])
    assert 4 <= len(expected) <= 15  # one page of the table
    boxes = demo_project.consensus[demo_project.consensus.subject_id.isin(expected)]

    dialogs: list[str] = []
    page = open_page(dialogs, accept_downloads=True)
    page.locator(".bk-tab", has_text="Agreement").click()
    page.wait_for_function("() => window.zoolensPlotViews().some(v => v.model.title?.text === "
                           "'Volunteers per subject')", timeout=60_000)
    page.wait_for_timeout(1000)
    page.screenshot(path=str(artefacts / "demo-agreement.png"))
    start = page.evaluate(SCREEN_POINT_JS, ["Volunteers per subject", None, low - 0.45, None])
    end = page.evaluate(SCREEN_POINT_JS, ["Volunteers per subject", None, high + 0.45, None])
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=8)
    page.mouse.up()
    page.get_by_text(f"{len(expected)} of 60 subjects (plot selection active)").wait_for(timeout=30_000)
    page.get_by_text(f"Selection: {len(expected)} subjects.").wait_for(timeout=15_000)

    # The other plots now count only the selected subjects' boxes.
    page.wait_for_function(
        "() => window.zoolensPlotViews().filter(v => v.model.title?.text === 'Votes per consensus box')"
        ".flatMap(v => v.model.renderers).filter(r => r.data_source?.data)"
        ".map(r => window.zoolensColumn(r.data_source.data, 'top').reduce((a, b) => a + b, 0))"
        f".includes({len(boxes)})", timeout=30_000)
    page.wait_for_timeout(500)
    page.screenshot(path=str(artefacts / "demo-agreement-brushed.png"))

    page.locator(".bk-tab", has_text="Subjects").click()
    rows = page.locator(SUBJECT_ROWS)
    rows.nth(len(expected) - 1).wait_for(timeout=30_000)
    assert rows.count() == len(expected)
    listed = {int(text) for text in page.locator(f"{SUBJECT_ROWS} [tabulator-field=subject_id]").all_inner_texts()}
    assert listed == expected

    page.locator(".bk-tab", has_text="Export").click()
    page.get_by_text(f"{len(expected)} subjects pass the filters, with {len(boxes)} consensus boxes.").wait_for(
        timeout=30_000)
    with page.expect_download(timeout=60_000) as download_info:
        page.get_by_text("Download the selection", exact=True).click()
    download = download_info.value
    assert download.suggested_filename == "zoolens-selection.zip"
    with zipfile.ZipFile(io.BytesIO(open(download.path(), "rb").read())) as archive:
        exported = pd.read_csv(archive.open("zoolens-selection.csv"))
        sidecars = [name for name in archive.namelist() if name.endswith(".json")]
        provenance = json.loads(archive.read(sidecars[0]))
    assert set(exported.subject_id) == set(boxes.subject_id) and set(exported.subject_id) <= expected
    assert sorted(exported.consensus_id) == sorted(boxes.consensus_id)
    assert provenance["filters"]["plot_selection_subjects"] == len(expected)
    page.screenshot(path=str(artefacts / "demo-export.png"))
    assert dialogs == []


def test_a_volunteer_named_script_shows_as_text_and_nothing_runs(open_page, demo_url, export_marks, artefacts):
    name = demo.HTML_USER_NAME
    dialogs: list[str] = []
    page = open_page(dialogs)
    page.locator(".bk-tab", has_text="Volunteers").click()
    page.get_by_text(name, exact=True).first.click()
    page.get_by_text(f"Marks by {name}").wait_for(timeout=15_000)
    page.wait_for_function("() => window.zoolensPlotViews().some(v => (v.model.title?.text ?? '')"
                           ".startsWith('Classifications per day'))", timeout=30_000)
    page.wait_for_timeout(500)
    page.screenshot(path=str(artefacts / "demo-volunteers.png"))

    # A box of this volunteer and a point in it where it is the smallest box: the one whose tooltip shows.
    mark, (point_x, point_y) = _box_smallest_at_a_point(export_marks, name)
    page.goto(f"{demo_url}/?subject={mark.subject_id}", wait_until="networkidle")
    page.get_by_text(f"Subject {mark.subject_id}", exact=True).wait_for(timeout=60_000)
    on_subject = int((export_marks.subject_id == mark.subject_id).sum())
    _wait_for_rows(page, "volunteer", on_subject)
    x, y = page.evaluate(SCREEN_POINT_JS, [None, "volunteer", point_x, point_y])
    page.mouse.move(x - 1, y - 1)
    page.mouse.move(x, y)
    shown = page.locator(".bk-tooltip-row-value span[data-value]", has_text=name)
    shown.first.wait_for(timeout=15_000)
    assert name in shown.all_text_contents()  # the whole name, as literal text
    page.screenshot(path=str(artefacts / "demo-cutout-hover.png"))
    assert page.evaluate("() => window.zoolensScriptRan") is False
    assert dialogs == []


def _holding(boxes: pd.DataFrame, x: float, y: float) -> pd.DataFrame:
    return boxes[(boxes.x0 <= x) & (x <= boxes.x1) & (boxes.y0 <= y) & (y <= boxes.y1)]


def _box_smallest_at_a_point(marks: pd.DataFrame, volunteer: str):
    """A box of ``volunteer`` and a point inside it where no smaller box of its subject lies."""
    for mark in marks[marks.volunteer == volunteer].sort_values(["subject_id", "x0"]).itertuples():
        others = marks[marks.subject_id == mark.subject_id]
        for fx, fy in [(0.5, 0.5), (0.2, 0.2), (0.8, 0.2), (0.2, 0.8), (0.8, 0.8)]:
            x, y = mark.x0 + fx * (mark.x1 - mark.x0), mark.y0 + fy * (mark.y1 - mark.y0)
            held = _holding(others, x, y)
            area = (held.x1 - held.x0) * (held.y1 - held.y0)
            if area.min() == (mark.x1 - mark.x0) * (mark.y1 - mark.y0):
                return mark, (x, y)
    raise AssertionError(f"no box of {volunteer} is the smallest anywhere")


def test_hovering_a_crowd_shows_one_tooltip_per_layer_for_the_smallest_box(open_page, demo_url, export_marks,
                                                                          artefacts):
    page = open_page([])
    subject = export_marks.subject_id.value_counts().idxmax()  # the most boxes on one image
    page.goto(f"{demo_url}/?subject={subject}", wait_until="networkidle")
    page.get_by_text(f"Subject {subject}", exact=True).wait_for(timeout=60_000)
    _wait_for_rows(page, "volunteer", int((export_marks.subject_id == subject).sum()))
    consensus = _sources_with(page, "votes")
    consensus = consensus[consensus.status != "rejected"]
    first = consensus.iloc[0]
    x, y = (first.x0 + first.x1) / 2, (first.y0 + first.y1) / 2
    marks_here = _holding(export_marks[export_marks.subject_id == subject], x, y)
    assert len(marks_here) >= 5  # a crowd, worked out from the export itself
    smallest = _holding(consensus, x, y).assign(area=lambda t: (t.x1 - t.x0) * (t.y1 - t.y0))
    expected_box = int(smallest.sort_values("area").consensus_box.iloc[0])

    screen_x, screen_y = page.evaluate(SCREEN_POINT_JS, [None, "votes", x, y])
    page.mouse.move(screen_x - 1, screen_y - 1)
    page.mouse.move(screen_x, screen_y)
    labels = page.locator(".bk-tooltip-row-label")
    labels.filter(has_text="consensus box").first.wait_for(timeout=15_000)
    page.wait_for_timeout(300)
    shown = [text.strip().rstrip(":") for text in labels.all_text_contents()]
    page.screenshot(path=str(artefacts / "demo-cutout-crowd-hover.png"))
    # The volunteer layers (matched, unmatched) and the consensus layer: one box each at most.
    assert shown.count("consensus box") == 1
    assert 1 <= shown.count("volunteer") <= 2
    values = page.locator(".bk-tooltip-row-value").all_text_contents()
    assert str(expected_box) in [value.strip() for value in values]


def test_the_sandbox_with_the_loaded_settings_reproduces_the_loaded_consensus(open_page, demo_project, artefacts):
    dialogs: list[str] = []
    page = open_page(dialogs)
    page.locator(".bk-tab", has_text="Re-aggregate").click()
    page.get_by_text("Run on the selection", exact=True).wait_for(timeout=60_000)
    page.get_by_text("(dashed magenta) against").wait_for(timeout=60_000)
    page.wait_for_timeout(1000)
    page.screenshot(path=str(artefacts / "demo-sandbox.png"))
    page.get_by_text("Run on the selection", exact=True).click()
    # The demo's consensus was made by the IoU method with its default settings, the sandbox's default.
    n_boxes = len(demo_project.consensus)
    page.get_by_text(f"60 subjects: {n_boxes} loaded boxes, {n_boxes} with these settings; "
                     "0 subjects changed their number of boxes.").wait_for(timeout=60_000)
    page.wait_for_timeout(1000)
    page.screenshot(path=str(artefacts / "demo-sandbox-selection.png"), full_page=True)
    # Nothing went wrong along the way: no error notification.
    assert page.locator(".notyf__toast--error").count() == 0
    assert dialogs == []


def _edge_in_gap(values: np.ndarray, near: float) -> float:
    """A coordinate near ``near`` halfway between two neighbouring values, in the widest gap close by.

    A box edge drawn with the mouse lands within a pixel of where it was aimed: an
    edge in a gap between points keeps the count independent of that pixel.
    """
    ordered = np.sort(values)
    middles = (ordered[1:] + ordered[:-1]) / 2
    gaps = ordered[1:] - ordered[:-1]
    candidates = np.abs(middles - near) < 10
    best = np.argmax(np.where(candidates, gaps, -1))
    return float(middles[best])


def test_brushing_the_rasterized_sky_map_keeps_the_subjects_inside_the_box_of_that_session(open_page, demo_files,
                                                                                           artefacts):
    subjects = pd.read_csv(demo_files.subjects, dtype=str).drop_duplicates("subject_id")
    metadata = subjects.metadata.map(json.loads)
    ra = metadata.map(lambda record: float(record["ra"])).to_numpy()
    dec = metadata.map(lambda record: float(record["dec"])).to_numpy()
    ra_low, ra_high = _edge_in_gap(ra, 160), _edge_in_gap(ra, 200)
    dec_low, dec_high = _edge_in_gap(dec, 15), _edge_in_gap(dec, 40)
    inside = subjects.subject_id.astype(np.int64)[(ra > ra_low) & (ra < ra_high) & (dec > dec_low) & (dec < dec_high)]
    assert 3 <= len(inside) < 60

    dialogs: list[str] = []
    page = open_page(dialogs)
    other_session = open_page(dialogs)
    page.locator(".bk-tab", has_text="Agreement").click()
    page.wait_for_function("() => window.zoolensPlotViews().some(v => v.model.title?.text === 'Subjects on the sky')",
                           timeout=60_000)
    # Brush only once the plot holds its rasterized image and every plot is laid out.
    page.wait_for_function(
        "() => window.zoolensPlotViews().filter(v => v.model.title?.text).length === 5 && window.zoolensPlotViews()"
        ".find(v => v.model.title?.text === 'Subjects on the sky').model.renderers"
        ".some(r => r.data_source?.data && window.zoolensColumns(r.data_source.data).includes('image'))",
        timeout=60_000)
    page.evaluate("() => window.zoolensPlotViews().find(v => v.model.title?.text === 'Subjects on the sky')"
                  ".el.scrollIntoView({block: 'center'})")
    page.wait_for_timeout(1500)
    start = page.evaluate(SCREEN_POINT_JS, ["Subjects on the sky", None, ra_low, dec_high])
    end = page.evaluate(SCREEN_POINT_JS, ["Subjects on the sky", None, ra_high, dec_low])
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=8)
    page.mouse.up()
    page.wait_for_timeout(1000)
    page.screenshot(path=str(artefacts / "demo-sky-brushed.png"))
    page.get_by_text(f"{len(inside)} of 60 subjects (plot selection active)").wait_for(timeout=30_000)
    # The selection is this session's: another browser's session still shows every subject.
    assert other_session.get_by_text("60 of 60 subjects").is_visible()
    assert other_session.get_by_text("(plot selection active)").count() == 0
    page.get_by_role("button", name="Clear selection", exact=True).click()
    page.get_by_text("60 of 60 subjects").wait_for(timeout=30_000)
    assert dialogs == []


def test_the_fits_toggle_shows_the_stretched_fits_image_under_the_boxes(open_page, demo_project, artefacts):
    dialogs: list[str] = []
    page = open_page(dialogs)
    subject_id = int(page.locator(f"{SUBJECT_ROWS} [tabulator-field=subject_id]").first.inner_text())
    page.locator(SUBJECT_ROWS).first.click()
    page.get_by_text(f"Subject {subject_id}", exact=True).wait_for(timeout=15_000)
    fits, problem = demo_project.image(subject_id, "fits")
    assert problem is None
    boxes = len(demo_project.marks_of(subject_id))
    _wait_for_rows(page, "volunteer", boxes)

    def image_shape():
        return page.evaluate("""() => {
          for (const table of window.zoolensSourcesWith('image')) {
            const image = table.image[0];
            return image ? [image.length, image[0].length ?? null] : null;
          }
          return null;
        }""")

    rendering_shape = image_shape()
    # The demo's subjects have FITS images: the toggle, the stretch and the colour map show.
    assert page.locator(FITS_SELECTS).count() == 2
    page.get_by_role("button", name="fits", exact=True).click()
    # The FITS image replaces the rendering in the same plot, and the boxes stay.
    page.wait_for_function(f"() => window.zoolensSourcesWith('image').some(t => t.image[0] && "
                           f"(t.image[0].length === {fits.width * fits.height} || t.image[0].length === {fits.height}))",
                           timeout=30_000)
    _wait_for_rows(page, "volunteer", boxes)
    page.wait_for_timeout(1000)
    page.screenshot(path=str(artefacts / "demo-cutout-fits.png"))
    assert rendering_shape is not None and image_shape() is not None
    assert page.get_by_text("No image shown").count() == 0
    assert dialogs == []
