"""The cutout viewer: one Bokeh figure whose layers' sources hold boxes where the tables say, coloured by
consensus box, the image not flipped; a switch of subject refills the same sources."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from bokeh.document import Document
from bokeh.models import GlyphRenderer

from dashboard.data_store import DataStore
from dashboard.views import CutoutViewer, get_view
from dashboard.views.cutout import COLOUR_MAPS, ELLIPSE_VERTICES, PALETTE, UNLINKED_COLOUR, kind_words
from project import Project, load_project
from tests.image_host import ImageHost
from tests.project.test_images import _tables


@pytest.fixture
def viewer(tiny_project):
    return CutoutViewer(data_store=DataStore(project=tiny_project, subject=1))


def test_registered_by_short_name():
    assert get_view("cutout") is CutoutViewer
    with pytest.raises(ValueError, match="cutout"):
        get_view("nonesuch")


def test_volunteer_boxes_take_the_colour_of_their_consensus_box(viewer):
    consensus = viewer.drawn("consensus unreviewed").set_index("consensus_box")
    assert consensus.loc[10, ["x0", "y0", "x1", "y1"]].tolist() == [10, 10, 30, 30]
    assert consensus.colour.tolist() == [PALETTE[0], PALETTE[1]]
    boxes = viewer.drawn("volunteer boxes")
    assert sorted(boxes.volunteer) == ["alice", "bob"]
    alice = boxes[boxes.volunteer == "alice"].iloc[0]
    assert [alice.x0, alice.y0, alice.x1, alice.y1] == [10, 10, 30, 30]
    assert alice.colour == consensus.loc[10, "colour"] and alice.time == "2023-05-01 10:00 UTC"
    bob = boxes[boxes.volunteer == "bob"].iloc[0]
    assert bob.colour == consensus.loc[11, "colour"] and bob.iou == 1.0
    unmatched = viewer.drawn("unmatched boxes")
    assert unmatched[["x0", "y0", "x1", "y1"]].values.tolist() == [[80, 10, 85, 15]]


def _rows(viewer) -> dict[str, int]:
    return {layer.name: len(viewer.drawn(layer.name)) for layer in viewer.layers()}


def test_layers_follow_the_toggles_and_filters(viewer):
    figure = viewer.figure()
    renderers = list(figure.select(GlyphRenderer))
    # The image and one renderer per layer the project can draw: volunteer and unmatched boxes, consensus by
    # status (unreviewed, accepted, redrawn, added, rejected), picked, band, the box drawn by box select and the
    # one being drawn by the box-draw tool, the review statuses' glyphs. The tiny project's marks are all boxes,
    # none of its consensus marks is a point, and it has no detections or truth: the outlines, paths and markers
    # of volunteers (3) and unmatched (3), consensus points, the picked point, machine detection boxes and points
    # and truth get no renderer, and draw nothing.
    possible = {layer.name for layer in viewer.layers() if layer.possible(viewer)}
    assert len(renderers) == 1 + len(possible) == 13 and len(viewer.layers()) == 23
    assert {"volunteer points", "unmatched outlines", "consensus points", "picked point", "truth"}.isdisjoint(possible)
    rows = _rows(viewer)
    assert (rows["volunteer boxes"], rows["unmatched boxes"], rows["consensus unreviewed"], rows["picked"]) == (
        2, 1, 2, 1)
    viewer.show_unmatched = False
    viewer.show_consensus = False
    viewer.show_band = False
    rows = _rows(viewer)
    # The same renderers, their sources emptied: only the volunteers' boxes and the image are left.
    assert list(figure.select(GlyphRenderer)) == renderers
    assert {name for name, count in rows.items() if count} == {"volunteer boxes"}
    assert len(viewer.drawn("image")) == 1
    viewer.show_consensus = True
    viewer.data_store.min_votes = 2
    assert viewer.drawn("consensus unreviewed").consensus_box.tolist() == [10]
    viewer.data_store.subject = 2
    assert len(viewer.drawn("volunteer boxes")) == 2


def _pixel(viewer, x: float, y: float) -> list[int]:
    """The RGBA bytes the figure's image source puts at image pixel (x, y): its row 0 lies at y = 0, the top of
    the image, as the y range runs down (from the height to 0)."""
    image = viewer.drawn("image").iloc[0]
    words = np.asarray(image.image)
    row, column = int((y - image.y) / image.dh * words.shape[0]), int((x - image.x) / image.dw * words.shape[1])
    return words[row:row + 1, column:column + 1].view(np.uint8).ravel().tolist()


def test_the_rendering_is_shown_y_down_without_flipping(viewer):
    image = viewer.drawn("image").iloc[0]
    assert (image.x, image.y, image.dw, image.dh) == (0, 0, 100, 100)
    figure = viewer.figure()
    assert figure.y_range.start > figure.y_range.end  # y down the screen
    # Canonical (x, y) = (20, 20) lies in box A, painted red in the PNG; (20, 80) does not.
    for x, y, red in ((20, 20, 255), (20, 80, 0), (80, 20, 0)):
        assert _pixel(viewer, x, y)[0] == red, (x, y)


def test_the_fits_image_is_stretched_colour_mapped_and_oriented_like_the_rendering(viewer):
    viewer.figure()
    viewer.image_kind = "fits"
    viewer.cmap = "viridis"
    viridis = COLOUR_MAPS["viridis"]
    for x, y, level in ((20, 20, 255), (20, 80, 0)):
        assert _pixel(viewer, x, y)[:3] == viridis[level].tolist(), (x, y)
    viewer.stretch = "linear"
    viewer.cmap = "gray"
    assert _pixel(viewer, 20, 20) == [255, 255, 255, 255]
    viewer.data_store.subject = 2  # no FITS file: the rendering, which is refused too: the grey canvas
    assert _pixel(viewer, 5, 5) == [224, 224, 224, 255]


def test_toggling_the_fits_view_refills_the_one_image_source(viewer):
    figure = viewer.figure()
    (image,) = [renderer for renderer in figure.select(GlyphRenderer) if type(renderer.glyph).__name__ == "ImageRGBA"]
    source = image.data_source
    viewer.image_kind = "fits"
    assert _pixel(viewer, 20, 20)[:3] == [255, 255, 255]  # the FITS image, grey-mapped, in the same source
    viewer.image_kind = "rendering"
    assert image.data_source is source and viewer.figure() is figure
    assert _pixel(viewer, 20, 20)[:3] == [255, 0, 0]


def test_without_links_every_mark_is_drawn_unlinked(tiny_tables):
    project = Project(tiny_tables["classifications"], tiny_tables["marks"])
    viewer = CutoutViewer(data_store=DataStore(project=project, subject=1))
    boxes = viewer.drawn("volunteer boxes")
    assert len(boxes) == 3 and set(boxes.colour) == {UNLINKED_COLOUR}
    assert len(viewer.drawn("unmatched boxes")) == 0 and len(viewer.drawn("consensus unreviewed")) == 0
    # No image and no size in the subjects table: the extent comes from the marks.
    assert viewer.extent() == (85.0, 70.0)


def test_the_figure_serialises_and_a_switch_is_a_change_of_its_sources(viewer):
    document = Document()
    document.add_root(viewer.figure())
    document.to_json()
    models = set(document.models.ids) if hasattr(document.models, "ids") else {m.id for m in document.models}
    viewer.data_store.subject = 3  # no marks, no boxes, no image
    assert viewer.image().shape == (2, 2, 4)
    assert sum(_rows(viewer).values()) == 0
    document.to_json()
    # No model made or dropped: the same glyphs with new data.
    assert (set(document.models.ids) if hasattr(document.models, "ids") else {m.id for m in document.models}) == models


def test_each_subject_sets_the_axes_to_its_own_image(viewer):
    from dashboard.views.cutout import EDGE_MARGIN

    viewer.data_store.subject = 2  # no image: the extent of its marks, 44 x 40
    figure = viewer.figure()
    # Its farthest marks lie on that extent's edges: drawn whole, with a margin past them.
    right = 44 * (1 + EDGE_MARGIN)
    assert (figure.x_range.start, figure.x_range.end) == pytest.approx((0, right))
    bottom = 40 + EDGE_MARGIN * 44
    centre = bottom / 2
    assert (figure.y_range.start, figure.y_range.end) == pytest.approx((centre + right / 2, centre - right / 2))
    viewer.data_store.subject = 1
    assert (figure.x_range.start, figure.x_range.end) == (0, 100)
    assert (figure.y_range.start, figure.y_range.end) == (100, 0)
    assert figure.frame_width == figure.frame_height == viewer.frame_size


def test_the_uncertainty_band_spans_the_standard_error_of_each_edge(viewer):
    assert len(viewer.drawn("band")) == 0  # subject 1: each box has a single vote
    viewer.data_store.subject = 2
    # Box C's votes: x = 30 and 34 (sample sd 2*sqrt(2)), everything else equal. The
    # error of a median of 2 is sqrt(pi/2) * sd / sqrt(2) = sqrt(2 pi) = 2.507 for x;
    # the right edge moves by the x and width errors combined (width's is 0).
    band = viewer.drawn("band").sort_values("x0")
    error = np.sqrt(2 * np.pi)
    np.testing.assert_allclose(band[["x0", "y0", "x1", "y1"]].to_numpy(),
                               [[30 - error, 30, 40 + error, 40], [30 + error, 30, 40 - error, 40]])
    assert band.consensus_box.tolist() == [20, 20]
    assert set(band.colour) == {viewer.drawn("consensus unreviewed").colour.iloc[0]}


def test_fit_to_boxes_frames_the_boxes_with_a_margin(viewer):
    assert viewer.view_limits() == ((0, 100), (0, 100))
    viewer.fit_to_boxes = True
    # Subject 1's boxes span x 10-85, y 10-70: 75 wide, margin 0.15 * 75 = 11.25, square side 97.5.
    (x0, x1), (y0, y1) = viewer.view_limits()
    assert (x0, x1) == pytest.approx((-1.25, 96.25)) and (y0, y1) == pytest.approx((-8.75, 88.75))


def test_outlines_thin_down_for_small_boxes_and_never_vanish():
    from dashboard.views.cutout import LINE_FRACTION, THINNEST_LINE, scaled_line_widths

    # A 200-pixel image on a 600-pixel frame: 3 screen pixels per image pixel.
    widths = scaled_line_widths(np.array([5.0, 8.0, 20.0, 100.0, 0.0, np.nan]),
                                np.array([5.0, 20.0, 20.0, 40.0, 0.0, 3.0]), 3.0, widest=3.0)
    # 5 px -> 15 screen px -> 1.5; the shorter side counts; big boxes stop at the widest; no size -> thinnest.
    assert widths.tolist() == pytest.approx([15 * LINE_FRACTION, 24 * LINE_FRACTION, 3.0, 3.0, THINNEST_LINE,
                                             THINNEST_LINE])
    # An outline never covers more than a fifth of a box's side once it is above the thinnest.
    sides = np.linspace(1, 200, 400)
    drawn = scaled_line_widths(sides, sides, 3.0, widest=3.0)
    assert ((drawn <= 0.2 * sides * 3.0) | (drawn == THINNEST_LINE)).all()


def test_the_layers_widths_follow_the_zoom(viewer):
    viewer.zoom_to_pick = False
    whole = viewer.drawn("consensus unreviewed").set_index("consensus_box").outline
    # Box 11 is 10 x 10 pixels: 60 screen pixels on the whole 100-pixel image at 600 -> 3 (the widest).
    assert viewer.screen_scale() == pytest.approx(6.0) and whole.loc[11] == pytest.approx(3.0)
    assert viewer.renderer("consensus unreviewed").glyph.line_width == "outline"  # the source's column, per box
    viewer.frame_size = 200  # 2 screen px per image px: box 11 is 20 screen pixels wide -> a 2-pixel line
    assert viewer.drawn("consensus unreviewed").set_index("consensus_box").outline.loc[11] == pytest.approx(2.0)
    assert viewer.figure().frame_width == 200


def test_picking_a_box_zooms_to_it_and_its_marks_and_the_whole_image_comes_back(viewer):
    figure = viewer.figure()
    assert viewer.view_limits() == ((0, 100), (0, 100))  # nothing picked yet: the whole image
    viewer.data_store.review_box = 11  # box 11 (60, 60, 10 x 10), supported by bob's box of the same place
    (x0, x1), (y0, y1) = viewer.view_limits()
    side = max(2.2 * 10, 32.0)  # ZOOM_MARGIN times the box, at least ZOOM_LEAST_SIDE
    assert (x0, x1, y0, y1) == pytest.approx((65 - side / 2, 65 + side / 2, 65 - side / 2, 65 + side / 2))
    # The figure's ranges are set, and reset goes back to them.
    assert (figure.x_range.start, figure.x_range.end, figure.y_range.start, figure.y_range.end) == pytest.approx(
        (x0, x1, y1, y0))
    assert (figure.x_range.reset_start, figure.x_range.reset_end) == pytest.approx((x0, x1))
    viewer.zoom_to_pick = False
    assert viewer.view_limits() == ((0, 100), (0, 100))
    viewer.zoom_to_pick = True
    viewer.data_store.subject = 2  # a new subject shows whole until one of its boxes is picked
    assert viewer.view_limits()[0] == pytest.approx((0, 44 * 1.03))  # its marks whole (EDGE_MARGIN)


def test_decided_boxes_each_have_their_look_and_the_legend_names_every_layer(tiny_project, review_store):
    from dashboard import Explorer
    from dashboard.views.cutout import STATUS_LOOKS
    from dashboard.views.cutout_layers import LAYERS, CutoutLayer, LegendEntry, register_layer

    explorer = Explorer(tiny_project, reviews=review_store)
    explorer.data_store.reviewer = "ann"
    cutout = explorer.cutout
    assert cutout.drawn("consensus unreviewed").consensus_box.tolist() == [10, 11]
    explorer.review.accept(10)
    explorer.review.reject(11)
    assert cutout.drawn("consensus accepted").consensus_box.tolist() == [10]
    assert cutout.drawn("consensus rejected").consensus_box.tolist() == [11]
    assert len(cutout.drawn("consensus unreviewed")) == 0
    assert cutout.drawn("status glyphs").glyph.tolist() == [STATUS_LOOKS["accepted"][1], STATUS_LOOKS["rejected"][1]]
    # Each status its own renderer and look: unreviewed dashed, accepted solid.
    assert cutout.renderer("consensus unreviewed").glyph.line_dash != cutout.renderer("consensus accepted").glyph.line_dash
    assert cutout.renderer("consensus accepted").glyph.line_dash == "solid"

    names = [entry.name for entry in cutout.legend_entries()]
    for name in ("volunteer mark", "unmatched volunteer mark", "consensus, unreviewed", "accepted", "redrawn", "added",
                 "rejected", "uncertainty band"):
        assert any(entry.startswith(name) for entry in names), name
    assert "consensus, unreviewed" in cutout._legend.object
    # Another module's layer: drawn on the cutouts made after, and named in the legend, with one registration.
    detections = LegendEntry("machine detection", "#ff7f0e", dash="dotdash")

    def draw(figure, source):
        return figure.quad(left="x0", right="x1", top="y0", bottom="y1", source=source, fill_alpha=0)

    register_layer(CutoutLayer("test-detections", columns=lambda view: pd.DataFrame(
        {"x0": [1.0], "y0": [2.0], "x1": [3.0], "y1": [4.0]}), draw=draw, legend=(detections,)))
    try:
        another = Explorer(tiny_project, reviews=review_store).cutout
        assert another.legend_entries()[-1] is detections
        another.figure()
        assert "machine detection" in another._legend.object
        assert another.drawn("test-detections")[["x0", "y0", "x1", "y1"]].values.tolist() == [[1, 2, 3, 4]]
    finally:
        LAYERS.pop("test-detections")


def test_a_viewer_cannot_redraw_by_dragging_the_server_refuses(tiny_project, review_store):
    from dashboard import Explorer
    from project.roles import Reviewer, RoleError

    explorer = Explorer(tiny_project, reviews=review_store, reviewer=Reviewer("vic", "viewer", "oidc"))
    # The handles are hidden from a viewer; a drag sent anyway (a crafted message) is refused on the server.
    with pytest.raises(RoleError):
        explorer.cutout.edited_box = (10, 12.0, 12.0, 20.0, 20.0)
    assert len(review_store.history()) == 0
    lead = Explorer(tiny_project, reviews=review_store)
    lead.data_store.reviewer = "ann"
    lead.cutout.edited_box = (10, 12.0, 12.0, 20.0, 20.0)
    assert review_store.history()[["consensus_id", "action"]].values.tolist() == [[10, "redraw"]]
    assert review_store.history().after.iloc[0]["x"] == 12.0


def test_marks_with_vertices_are_drawn_through_them_open_or_closed(data_dir):
    project = load_project([data_dir / "handmade" / "vertex_tools_classifications.csv"], method=None)
    viewer = CutoutViewer(data_store=DataStore(project=project, subject=501))
    paths, outlines = viewer.drawn("volunteer paths"), viewer.drawn("volunteer outlines")
    assert type(viewer.renderer("volunteer paths").glyph).__name__ == "MultiLine"
    assert type(viewer.renderer("volunteer outlines").glyph).__name__ == "Patches"
    # Lines and the new front end's freehand line are open; polygons and the classic front end's point
    # lists (which do not say their tool) closed; the circle (a triangle in the export) is its ellipse; the
    # full-width line is open.
    drawn = sorted((volunteer, len(xs)) for volunteer, xs in zip(paths.volunteer, paths["xs"]))
    assert drawn == [("alice", 2), ("alice", 2), ("bob", 2), ("bob", 2), ("bob", 3)]
    # A patch is closed by Bokeh: its vertices are the volunteer's, not repeated.
    closed = sorted((volunteer, len(xs)) for volunteer, xs in zip(outlines.volunteer, outlines["xs"]))
    assert closed == [("alice", 2), ("alice", 3), ("alice", 3), ("alice", 3), ("alice", 4),
                      ("alice", ELLIPSE_VERTICES), ("bob", 3)]
    freehand = paths[[len(xs) == 3 for xs in paths["xs"]]].iloc[0]
    np.testing.assert_array_equal(freehand["xs"], [70, 71, 73.5])
    np.testing.assert_array_equal(freehand["ys"], [6, 10, 15])
    assert len(viewer.drawn("volunteer boxes")) == 0  # no mark of subject 501 is drawn as a box
    # Without links every mark is grey and none is unmatched; hover tells volunteer, IoU and time.
    assert set(paths.colour) == {UNLINKED_COLOUR}
    assert len(viewer.drawn("unmatched paths")) == 0
    hover = [tool for tool in viewer.figure().tools if getattr(tool, "renderers", None) == [
        viewer.renderer("volunteer paths")] and type(tool).__name__ == "HoverTool"]
    assert [label for label, _ in hover[0].tooltips] == ["volunteer", "IoU", "time"]
    # Subject 502: the freehand line whose pathX and pathY differ in length kept no vertices: its box.
    viewer.data_store.subject = 502
    assert len(viewer.drawn("volunteer boxes")) == 1 and len(viewer.drawn("volunteer paths")) == 1


def test_freehand_lines_a_workflow_export_names_are_drawn_open(data_dir):
    named = load_project([data_dir / "handmade" / "vertex_tools_classifications.csv",
                          data_dir / "handmade" / "vertex_tools_workflows.csv"], method=None)
    viewer = CutoutViewer(data_store=DataStore(project=named, subject=501))
    # Open: alice's line, freehand line, freehand segment line and full-width line; bob's freehand line and
    # two lines.
    assert sorted(viewer.drawn("volunteer paths").volunteer) == ["alice", "alice", "alice", "alice", "bob", "bob",
                                                                "bob"]
    # Closed: alice's polygon, freehand shape, bezier and triangle; bob's polygon.
    assert len(viewer.drawn("volunteer outlines")) == 5


def test_outlines_and_paths_are_drawn_in_their_consensus_colour(data_dir):
    project = load_project([data_dir / "aggregation_for_caesar" / "cat-project-classifications.csv"])
    subject_id = int(project.subject_stats.sort_values("n_marks").subject_id.iloc[-1])
    viewer = CutoutViewer(data_store=DataStore(project=project, subject=subject_id))
    figure = viewer.figure()
    drawn = [renderer for renderer in figure.renderers if isinstance(renderer, GlyphRenderer)
             and type(renderer.glyph).__name__ in ("MultiLine", "Patches")
             and len(renderer.data_source.data["colour"])]
    assert {type(renderer.glyph).__name__ for renderer in drawn} == {"MultiLine", "Patches"}
    marks = project.marks_of(subject_id)
    assert sum(len(renderer.data_source.data["colour"]) for renderer in drawn) == len(marks)
    for renderer in drawn:
        # The line colour is the source's column (each mark its consensus mark's colour), never black.
        assert renderer.glyph.line_color == "colour"
        assert "black" not in set(renderer.data_source.data["colour"])


def test_the_caption_names_the_kinds_of_marks_in_words(viewer):
    assert kind_words("rectangle") == ("box", "boxes") and kind_words("polygon") == ("polygon", "polygons")
    assert kind_words("freehandSegmentShape") == ("freehand segment shape", "freehand segment shapes")
    marks = pd.DataFrame({"kind": ["rectangle"] * 12 + ["polygon"] * 3 + ["point"] * 40 + ["freehandLine"]})
    from dashboard.views.cutout import marks_in_words

    assert marks_in_words(marks) == "56 marks: 40 points, 12 boxes, 3 polygons, 1 freehand line"
    viewer.figure()
    assert "3 boxes from 3 classifications" in viewer._caption.object
    assert viewer._caption.object.endswith(" consensus boxes.</small>")  # the consensus in its own words
    caption = viewer._caption
    viewer.data_store.subject = 2
    assert viewer._caption is caption and "Subject 2" in caption.object  # the same pane, its text changed


def test_showing_a_subject_reads_the_pictures_of_the_next_two_and_the_one_before_ahead(tmp_path, monkeypatch):
    """A reviewer stepping with j or k finds the picture read already (each step waited for the image host)."""
    monkeypatch.setenv("ZOOLENS_CACHE_DIR", str(tmp_path / "cache"))
    host = ImageHost()
    try:
        ids = list(range(1, 8))
        classifications, marks, subjects = _tables(ids, [{"0": f"{host.url}/subject_location/{i}.png"} for i in ids])
        project = Project(classifications, marks, subjects=subjects, image_hosts=(host.host,))
        store = DataStore(project=project)
        order = store.subjects.subject_id.tolist()
        store.subject = order[3]
        viewer = CutoutViewer(data_store=store)
        viewer.image()
        wanted = {f"/subject_location/{subject_id}.png": 1 for subject_id in order[2:6]}
        deadline = time.monotonic() + 30
        while host.hits != wanted and time.monotonic() < deadline:
            time.sleep(0.02)
        assert host.hits == wanted
        store.step_subject(1)  # shown from the read ahead
        viewer.image()
        assert host.hits[f"/subject_location/{order[4]}.png"] == 1
    finally:
        host.close()
