"""The dashboard on real Zooniverse exports, in a real browser: Penguin Watch's points on its downloaded
pictures (found by subject id), DISCnet's many tools, the cat project's lines and polygons (its pictures on a
loopback image host standing in for the Zooniverse upload host, some on a host that does not answer), and the
demo's FITS view.

Each page is read from the browser (the Bokeh document's data sources, the page text) and compared with the
project's own tables; screenshots go to the artefacts folder, to be looked at.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from dashboard.views.gallery import FRAME
from project import load_project
from project.thumbnails import CANVAS
from tests.dashboard.serving import served
from tests.image_host import ImageHost, closed_host
from tests.ui.test_demo import (BOX_TABLE_OVERFLOW_JS, CUT_TITLES_JS, FITS_SELECTS, PLOT_VIEWS_JS, SUBJECT_ROWS,
                                TABLE_OVERFLOW_JS, _sources_with, on_every_element)

pytestmark = pytest.mark.ui

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
PENGUIN_IMAGES = ROOT.parent / "shared" / "data" / "penguin_watch" / "subjects"

#: Words of a Python error shown to the user: none may appear on any page.
EXCEPTION_TEXT = re.compile(r"Traceback|Exception|Error\b|Error:|ConnectionPool|NameResolution|errno", re.IGNORECASE)


#: Each gallery card's picture frame: its size, background colour, and how its picture sits in it (the image
#: element's place and size in the frame, its object-fit and object-position), through every shadow root.
GALLERY_FRAMES_JS = on_every_element("()", """
      if (element.classList.contains('zoolens-gallery-frame')) {
        const box = element.getBoundingClientRect();
        const image = element.querySelector('img') ?? element.shadowRoot?.querySelector('img');
        if (!image) { found.push({pending: true}); continue; }  // its thumbnail not made yet: filled when it is
        const shown = image.getBoundingClientRect();
        found.push({width: box.width, height: box.height, background: getComputedStyle(element).backgroundColor,
                    image: [shown.x - box.x, shown.y - box.y, shown.width, shown.height],
                    fit: getComputedStyle(image).objectFit, position: getComputedStyle(image).objectPosition});
      }""")


#: The notes (alerts) whose text runs past their padding (text, shown width, needed width), through every shadow root.
OVERFLOWING_NOTES_JS = on_every_element("()", """
      if (element.classList.contains('alert') && element.scrollWidth > element.clientWidth)
        found.push([(element.shadowRoot ?? element).querySelector(':not(style):not(link)')?.innerText,
                    element.clientWidth, element.scrollWidth]);""")


#: Natural widths of the table's thumbnails of subjects' own pictures (0: not loaded), through every shadow root.
THUMBNAIL_WIDTHS_JS = on_every_element("()", """
      if (element.tagName === 'IMG' && element.getAttribute('src').includes('thumbnails/')) found.push(element.naturalWidth);""")

#: The table's thumbnails: their address, natural width (0: not loaded), whether they are hidden, and that of the
#: neutral square they sit on (the placeholder a picture that cannot be had leaves), through every shadow root.
#: Per thumbnail cell of the subject table: its picture (src, natural width, whether loaded or hidden; src null
#: when the cell holds the grey square alone) and the square's colour.
THUMBNAILS_JS = on_every_element("()", """
      if (element.getAttribute('tabulator-field') === 'thumbnail' && element.classList.contains('tabulator-cell')) {
        const square = element.querySelector('span'), img = element.querySelector('img');
        found.push({src: img && img.getAttribute('src'), width: img ? img.naturalWidth : 0,
                    complete: img ? img.complete : true,
                    hidden: img ? getComputedStyle(img).visibility === 'hidden' : true,
                    square: getComputedStyle(square).backgroundColor});
      }""")


@pytest.fixture(scope="module")
def image_hosts():
    """The cat project's picture hosts on loopback: a real image host (`ImageHost`), and a port nothing listens on."""
    host = ImageHost()
    yield host, closed_host()
    host.close()


def _unreachable(subject_id: int) -> bool:
    """Whether the cat project's subject has its picture on the host that does not answer (one in four)."""
    return subject_id % 4 == 0


def _cat_subjects(folder: Path, hosts, out: Path) -> Path:
    """The cat project's subject export with its pictures on the loopback hosts instead of the Zooniverse's."""
    import pandas as pd

    host, closed = hosts
    subjects = pd.read_csv(folder / "cat-project-subjects.csv", dtype=str, keep_default_na=False)
    where = [f"http://{closed}" if _unreachable(int(subject_id)) else host.url for subject_id in subjects.subject_id]
    subjects["locations"] = [locations.replace("https://panoptes-uploads.zooniverse.org", origin)
                             for locations, origin in zip(subjects.locations, where)]
    subjects.to_csv(out, index=False)
    return out


def _project(name: str, hosts=None, folder: Path | None = None):
    if name == "penguin_watch":
        if not PENGUIN_IMAGES.is_dir():
            pytest.skip("../shared/data/penguin_watch/subjects is absent")
        folder = DATA / "penguin_watch"
        return load_project([folder / "penguin-watch-classifications-trim.csv",
                             folder / "penguin-watch-subjects-trim.csv", folder / "penguin-watch-workflows.csv"],
                            image_roots=[PENGUIN_IMAGES], title="Penguin Watch", method="point",
                            # Its other pictures are on the Zooniverse host: the tests ask no host but loopback.
                            image_hosts=())
    if name == "discnet":
        return load_project([DATA / "discnet" / "many-tools-classifications_march_7_2023.csv"], title="DISCnet")
    cats = DATA / "aggregation_for_caesar"
    host, closed = hosts
    return load_project([cats / "cat-project-classifications.csv", _cat_subjects(cats, hosts, folder / "subjects.csv")],
                        title="cat project", image_hosts=(host.host, closed))


@pytest.fixture(scope="module", params=["penguin_watch", "discnet", "cat_project"])
def real_project(request, tmp_path_factory, image_hosts):
    import os

    os.environ.setdefault("ZOOLENS_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    project = _project(request.param, image_hosts, tmp_path_factory.mktemp("cat-subjects"))
    with served(project, f"ui-real-{request.param}") as url:
        yield request.param, project, url


def _no_exception_text(page) -> None:
    text = page.locator("body").inner_text()
    found = EXCEPTION_TEXT.search(text)
    assert found is None, f"Python error text on the page: ...{text[max(0, found.start() - 200):found.end() + 200]}"


def test_marks_are_drawn_as_what_they_are_and_every_view_says_why_it_is_empty(browser, real_project, artefacts):
    name, project, url = real_project
    page = browser.new_page(viewport={"width": 1500, "height": 1100})
    try:
        page.add_init_script(PLOT_VIEWS_JS)
        page.goto(url, wait_until="networkidle")
        page.locator(SUBJECT_ROWS).first.wait_for(timeout=90_000)
        page.wait_for_timeout(1000)
        # Every header title of the subject table fits its column ("Dist. px" showed as "Dist. ...").
        assert page.evaluate(CUT_TITLES_JS, "n_volunteers") == []
        # The row with the most marks among those whose picture is on disk, else among all shown.
        rows = page.locator(SUBJECT_ROWS)
        ids = [int(text) for text in rows.locator("[tabulator-field=subject_id]").all_inner_texts()]
        local = [i for i, subject_id in enumerate(ids)
                 if project.subject_stats.set_index("subject_id").thumbnail[subject_id].startswith("zoolens-images/thumb")]
        if name == "penguin_watch":  # the pictures on disk are shown in the table, through the image route
            assert local
            page.wait_for_timeout(1000)
            loaded = page.evaluate(THUMBNAIL_WIDTHS_JS)
            assert len(loaded) >= len(local) and min(loaded) > 0, loaded
        candidates = local or list(range(len(ids)))
        position = max(candidates, key=lambda i: len(project.marks_of(ids[i])))
        subject_id = ids[position]
        rows.nth(position).click()
        page.get_by_text(f"Subject {subject_id}", exact=True).wait_for(timeout=30_000)
        marks = project.marks_of(subject_id)
        assert len(marks) > 0
        # Every mark of the subject is one glyph: a box, a marker or an outline, matched or not.
        page.wait_for_function(
            "(count) => window.zoolensSourcesWith('volunteer').reduce((n, t) => n + t.volunteer.length, 0) === count",
            arg=len(marks), timeout=30_000)
        drawn = _sources_with(page, "volunteer")
        assert sorted(drawn.volunteer) == sorted(marks.user.astype(str))
        points = marks[marks.kind == "point"]
        if len(points):  # markers at the marks' own positions
            markers = drawn.dropna(subset=["x"]) if "x" in drawn else drawn.iloc[0:0]
            assert sorted(markers.x.round(6)) == sorted(points.x.round(6))
        consensus = project.consensus_of(subject_id)
        if name == "penguin_watch":  # consensus points, drawn as markers where the consensus puts them
            assert len(consensus) > 0
            page.wait_for_function(
                "(count) => window.zoolensSourcesWith('votes').reduce((n, t) => n + t.votes.length, 0) === count",
                arg=len(consensus), timeout=30_000)
            shown = _sources_with(page, "votes")
            assert sorted(shown.x.round(6)) == sorted(consensus.x.round(6))
        page.wait_for_timeout(1500)
        page.screenshot(path=str(artefacts / f"real-{name}-cutout.png"))
        _no_exception_text(page)
        # No subject of these projects has a FITS image: no FITS toggle, stretch or colour map to try in vain.
        assert not project.sky.has_fits
        assert page.get_by_role("button", name="fits", exact=True).count() == 0
        assert page.locator(FITS_SELECTS).count() == 0

        page.locator(".bk-tab", has_text="Agreement").click()
        page.get_by_text("Box-select in any plot").wait_for(timeout=90_000)
        page.wait_for_function(f"() => ({FIGURE_TOPS_JS})().length >= 3", timeout=60_000)
        page.wait_for_timeout(1000)
        page.screenshot(path=str(artefacts / f"real-{name}-agreement.png"), full_page=True)
        if not len(project.consensus):
            assert page.get_by_text("No consensus loaded").count() == 3
        if "ra" not in project.metadata_columns:
            assert page.get_by_text("No RA/Dec in the subject metadata").count() == 1
        # Every note's text inside its padding ("No RA/Dec..." ran 14 px past it, onto the border).
        assert page.evaluate(OVERFLOWING_NOTES_JS) == []
        _no_exception_text(page)

        # Every gallery frame is one square of one colour, a picture or the grey canvas of a subject without one
        # centred in it (a subject without a picture had a frame of its marks' extent, narrower or shorter).
        page.locator(".bk-tab", has_text="Gallery").click()
        page.get_by_text("passing the filters, most disagreement first").wait_for(timeout=60_000)
        shown = min(24, len(project.subject_stats))
        # The page shows at once; a thumbnail not made within a second fills its frame when it is.
        page.wait_for_function(f"() => ({GALLERY_FRAMES_JS})().filter((frame) => !frame.pending).length === {shown}",
                               timeout=60_000)
        page.wait_for_timeout(300)
        frames = page.evaluate(GALLERY_FRAMES_JS)
        assert len(frames) == shown
        assert {(frame["width"], frame["height"]) for frame in frames} == {(FRAME, FRAME)}
        assert {frame["background"] for frame in frames} == {"rgb({}, {}, {})".format(*CANVAS)}
        assert all(frame["image"] == [0, 0, FRAME, FRAME] and frame["fit"] == "contain"
                   and frame["position"] == "50% 50%" for frame in frames)
        page.screenshot(path=str(artefacts / f"real-{name}-gallery.png"))
        _no_exception_text(page)

        # At a laptop's width every column of the subject table is in view beside the cutout, its titles whole (it
        # had 360 px for 630: Marks, Boxes and IoU were to be scrolled sideways to).
        page.set_viewport_size({"width": 1366, "height": 1100})
        page.locator(".bk-tab", has_text="Subjects").click()
        page.wait_for_timeout(1000)
        page.screenshot(path=str(artefacts / f"real-{name}-subjects-1366.png"))
        assert page.evaluate(TABLE_OVERFLOW_JS, "n_volunteers") == []
        assert page.evaluate(CUT_TITLES_JS, "n_volunteers") == []
        assert page.evaluate(BOX_TABLE_OVERFLOW_JS) == []  # the review panel's table of marks above it too
        # The volunteers' headers fit too ("Subjects", "Precision", "Mean distance" were cut).
        page.locator(".bk-tab", has_text="Volunteers").click()
        page.wait_for_timeout(2000)
        page.screenshot(path=str(artefacts / f"real-{name}-volunteers.png"))
        # The sidebar's load report lines up with the widgets above it (it stood out past their left edge).
        report = page.locator(".card", has_text="Load report:").first.bounding_box()
        button = page.get_by_role("button", name="Clear plot selection").bounding_box()
        assert report["x"] >= button["x"], (report, button)
        assert page.evaluate(CUT_TITLES_JS, "n_classifications") == []
        _no_exception_text(page)
        # The agreement plots fill two rows at that width: the IoU plot stood alone on the first, the second
        # density plot beside it overflowing the main area.
        page.locator(".bk-tab", has_text="Agreement").click()
        # The tab lays its figures out again at the new width; on a loaded machine that took over 2 s (CI saw one).
        page.wait_for_function(f"() => ({FIGURE_TOPS_JS})().length >= 3", timeout=60_000)
        page.wait_for_timeout(500)
        tops = page.evaluate(FIGURE_TOPS_JS)
        page.screenshot(path=str(artefacts / f"real-{name}-agreement-1366.png"), full_page=True)
        assert len(tops) >= 3 and len(set(tops)) <= 2, tops
    finally:
        page.close()


#: The top edge of every figure shown (width > 0), rounded to the pixel.
FIGURE_TOPS_JS = on_every_element("()", """
      if (String(element.className).split(' ').includes('bk-Figure')) {
        const box = element.getBoundingClientRect();
        if (box.width > 0 && box.height > 0) found.push(Math.round(box.top + window.scrollY));
      }""")


#: Per plot renderer holding volunteers' marks: its glyph type, line dash, and the vertices of each glyph.
MARK_GLYPHS_JS = """() => {
  const glyphs = [];
  for (const view of window.zoolensPlotViews()) for (const renderer of view.model.renderers) {
    const data = renderer.data_source?.data;
    if (!data || !window.zoolensColumns(data).includes('volunteer')) continue;
    const type = renderer.glyph.type;
    const vertices = type === 'MultiLine' || type === 'Patches'
      ? window.zoolensColumn(data, 'xs').map((xs) => xs.length)
      : window.zoolensColumn(data, 'volunteer').map(() => null);
    glyphs.push({type, dash: renderer.glyph.line_dash, vertices, volunteers: window.zoolensColumn(data, 'volunteer')});
  }
  return glyphs;
}"""


def test_the_cat_projects_lines_and_polygons_are_drawn_through_their_vertices(browser, artefacts, tmp_path,
                                                                                monkeypatch, image_hosts):
    monkeypatch.setenv("ZOOLENS_CACHE_DIR", str(tmp_path / "cache"))
    project = _project("cat_project", image_hosts, tmp_path)
    with served(project, "ui-cat-outlines") as url:
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        try:
            page.add_init_script(PLOT_VIEWS_JS)
            page.goto(url, wait_until="networkidle")
            page.locator(SUBJECT_ROWS).first.wait_for(timeout=90_000)
            rows = page.locator(SUBJECT_ROWS)
            ids = [int(text) for text in rows.locator("[tabulator-field=subject_id]").all_inner_texts()]
            # The subject with the most marks among those shown: freehand lines and polygons, matched or not.
            position = max(range(len(ids)), key=lambda i: len(project.marks_of(ids[i])))
            subject_id = ids[position]
            rows.nth(position).click()
            page.get_by_text(f"Subject {subject_id}", exact=True).wait_for(timeout=30_000)
            marks = project.marks_of(subject_id)
            outlines = project.vertices_of(marks.mark_id).groupby("mark_id").size()
            assert set(marks.kind) == {"freehandLine", "polygon"} and len(outlines) == len(marks)
            page.wait_for_function(
                "(count) => window.zoolensSourcesWith('volunteer').reduce((n, t) => n + t.volunteer.length, 0) === count",
                arg=len(marks), timeout=30_000)
            glyphs = page.evaluate(MARK_GLYPHS_JS)
            drawn = {glyph: [g for g in glyphs if g["type"] == glyph] for glyph in ("MultiLine", "Patches")}
            # One glyph per mark with vertices: freehand lines open, polygons closed (patches), with every vertex.
            lines, polygons = marks[marks.kind == "freehandLine"], marks[marks.kind == "polygon"]
            assert sum(len(g["vertices"]) for g in drawn["MultiLine"]) == len(lines)
            assert sum(len(g["vertices"]) for g in drawn["Patches"]) == len(polygons)
            assert sum(len(g["vertices"]) for g in glyphs if g["type"] not in drawn) == 0
            assert (sorted(n for g in drawn["MultiLine"] for n in g["vertices"])
                    == sorted(outlines[lines.mark_id]))
            # A polygon is drawn through the volunteer's own vertices, every one (Bokeh closes a patch itself).
            assert (sorted(n for g in drawn["Patches"] for n in g["vertices"])
                    == sorted(outlines[polygons.mark_id]))
            # Marks that support no consensus box are dashed, the others solid.
            unmatched = marks[marks.consensus_id < 0]
            dashed = [n for g in glyphs if g["dash"].get("value") == "dashed" for n in g["vertices"]]
            assert len(dashed) == len(unmatched) and 0 < len(unmatched) < len(marks)
            page.wait_for_timeout(1500)
            page.screenshot(path=str(artefacts / "real-cat_project-outlines.png"))
            _no_exception_text(page)
        finally:
            page.close()


def test_remote_pictures_thumbnails_come_from_the_server_once_and_unreachable_ones_are_placeholders(
        browser, real_project, image_hosts, artefacts):
    # The table's thumbnails of remote pictures were the remote URLs themselves: every page had the browser fetch
    # full-size pictures from the Zooniverse host (a third party told who opens the dashboard, and on a closed
    # network cells waiting on an unreachable host).
    name, project, url = real_project
    if name != "cat_project":
        pytest.skip("the cat project's pictures are the remote ones")
    host, closed = image_hosts
    origin = urlsplit(url).netloc

    def shown_thumbnails(page) -> tuple[list[int], list[dict], list[str]]:
        requested = []
        page.on("request", lambda request: requested.append(request.url))
        page.goto(url, wait_until="networkidle")
        page.locator(SUBJECT_ROWS).first.wait_for(timeout=90_000)
        ids = [int(text) for text in page.locator(SUBJECT_ROWS).locator("[tabulator-field=subject_id]").all_inner_texts()]
        page.wait_for_function(f"() => ({THUMBNAILS_JS})().filter((t) => t.complete).length === {len(ids)}",
                               timeout=60_000)
        return ids, dict(zip(ids, page.evaluate(THUMBNAILS_JS))), requested

    pages = [browser.new_page(viewport={"width": 1366, "height": 900}) for _ in range(2)]
    before = dict(host.hits)  # what the module's other tests had the server fetch into this cache
    try:
        ids, thumbnails, requested = shown_thumbnails(pages[0])
        unreachable = [subject_id for subject_id in ids if _unreachable(subject_id)]
        assert 0 < len(unreachable) < len(ids)  # both kinds on the first page
        stats = project.subject_stats.set_index("subject_id")
        for subject_id in ids:
            shown = thumbnails[subject_id]
            # A picture the server could not have is the neutral square, never a broken-image icon: its picture
            # hides itself, or is not asked for if the server already failed to fetch it (for an earlier test).
            assert (shown["width"], shown["hidden"]) == ((0, True) if _unreachable(subject_id) else (80, False))
            assert shown["src"] in ((stats.thumbnail[subject_id], None) if _unreachable(subject_id)
                                    else (stats.thumbnail[subject_id],))
            assert shown["square"] == "rgb(227, 227, 227)"
        fetched = [address for address in requested if urlsplit(address).scheme in ("http", "https", "ws", "wss")]
        assert fetched and [address for address in fetched if urlsplit(address).netloc != origin] == []
        # Each picture shown was fetched from the image host by the server, at most once for this session (not at
        # all if an earlier session of the module had it fetched).
        hits = dict(host.hits)
        for subject_id in ids:
            path = urlsplit(project.subject(subject_id).locations["0"]).path
            assert hits.get(path, 0) - before.get(path, 0) <= 1 and (hits.get(path, 0) > 0) != _unreachable(subject_id)
        unshown = project.image_problem_counts().get("image host not reachable", 0)
        assert unshown >= len(unreachable)
        # The sidebar counts them with the plain reason, though they were tried outside the session (the image route).
        pages[0].get_by_text(f"image host not reachable: {unshown}", exact=False).wait_for(timeout=30_000)
        # A second session's table comes from the thumbnails on disk: the image host is not asked again, and the
        # thumbnails the server could not fetch are not asked for (they were, to answer 404, on every redraw).
        again, thumbnails_again, requested_again = shown_thumbnails(pages[1])
        assert again == ids and dict(host.hits) == hits
        assert all((thumbnails_again[subject_id]["src"] is None) == _unreachable(subject_id) for subject_id in ids)
        assert not [address for address in requested_again if any(
            address.endswith(stats.thumbnail[subject_id]) for subject_id in unreachable)]
        assert [thumbnails_again[subject_id]["width"] for subject_id in ids] == [
            thumbnails[subject_id]["width"] for subject_id in ids]
        # A subject whose picture cannot be had: its cutout says why in the same plain words.
        pages[1].locator(SUBJECT_ROWS).nth(ids.index(unreachable[0])).click()
        pages[1].get_by_text("No image shown: image host not reachable", exact=False).wait_for(timeout=30_000)
        pages[1].screenshot(path=str(artefacts / "real-cat_project-remote-thumbnails.png"))
        _no_exception_text(pages[1])
    finally:
        for page in pages:
            page.close()
