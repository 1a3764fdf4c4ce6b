"""The cutout viewer's elements: boxes where the tables say, coloured by consensus box, image not flipped."""

from __future__ import annotations

import holoviews as hv
import numpy as np
import pytest

from dashboard.data_store import DataStore
from project import Project, load_project
from dashboard.views import CutoutViewer, get_view
from dashboard.views.cutout import COLOUR_MAPS, ELLIPSE_VERTICES, PALETTE, UNLINKED_COLOUR


@pytest.fixture
def viewer(tiny_project):
    return CutoutViewer(data_store=DataStore(project=tiny_project, subject=1))


def test_registered_by_short_name():
    assert get_view("cutout") is CutoutViewer
    with pytest.raises(ValueError, match="cutout"):
        get_view("nonesuch")


def test_volunteer_boxes_take_the_colour_of_their_consensus_box(viewer):
    consensus = viewer.consensus_boxes().dframe().set_index("consensus_box")
    assert consensus.loc[10, ["x0", "y0", "x1", "y1"]].tolist() == [10, 10, 30, 30]
    assert consensus.colour.tolist() == [PALETTE[0], PALETTE[1]]
    boxes = viewer.volunteer_boxes().dframe()
    assert sorted(boxes.volunteer) == ["alice", "bob"]
    alice = boxes[boxes.volunteer == "alice"].iloc[0]
    assert [alice.x0, alice.y0, alice.x1, alice.y1] == [10, 10, 30, 30]
    assert alice.colour == consensus.loc[10, "colour"] and alice.time == "2023-05-01 10:00 UTC"
    bob = boxes[boxes.volunteer == "bob"].iloc[0]
    assert bob.colour == consensus.loc[11, "colour"] and bob.iou == 1.0
    unmatched = viewer.unmatched_boxes().dframe()
    assert unmatched[["x0", "y0", "x1", "y1"]].values.tolist() == [[80, 10, 85, 15]]


def test_layers_follow_the_toggles_and_filters(viewer):
    # image, volunteer, unmatched, picked, consensus by status (unreviewed, accepted, redrawn, added),
    # rejected, band, a box the reviewer drew (none), the outlines, paths and markers of volunteers (3),
    # unmatched (3), consensus points (1) and the review statuses' glyphs (1)
    assert len(viewer.overlay()) == 19
    viewer.show_unmatched = False
    viewer.show_consensus = False
    viewer.show_band = False
    assert len(viewer.overlay()) == 6
    viewer.data_store.min_votes = 2
    assert viewer.consensus_boxes().dframe().consensus_box.tolist() == [10]
    viewer.data_store.subject = 2
    assert len(viewer.volunteer_boxes()) == 2


def test_the_rendering_is_shown_y_down_without_flipping(viewer):
    image = viewer.image()
    assert isinstance(image, hv.RGB)
    assert image.bounds.lbrt() == (0, 0, 100, 100)
    # Canonical (x, y) = (20, 20) lies in box A, painted red in the PNG; (20, 80) does not.
    for x, y, red in ((20, 20, 255), (20, 80, 0), (80, 20, 0)):
        row, column = image.sheet2matrixidx(x, y)
        assert image.data[row, column, 0] == red, (x, y)


def test_the_fits_image_is_stretched_colour_mapped_and_oriented_like_the_rendering(viewer):
    viewer.image_kind = "fits"
    viewer.cmap = "viridis"
    image = viewer.image()
    # RGB like the rendering: the plot's map may return one element type only.
    assert isinstance(image, hv.RGB)
    viridis = COLOUR_MAPS["viridis"]
    for x, y, level in ((20, 20, 255), (20, 80, 0)):
        row, column = image.sheet2matrixidx(x, y)
        assert image.data[row, column, :3].tolist() == viridis[level].tolist(), (x, y)
    viewer.stretch = "linear"
    viewer.cmap = "gray"
    image = viewer.image()
    row, column = image.sheet2matrixidx(20, 20)
    assert image.data[row, column, :3].tolist() == [255, 255, 255]
    viewer.data_store.subject = 2  # no FITS file: the rendering, which is refused too
    assert isinstance(viewer.image(), hv.RGB)


def test_toggling_the_fits_view_renders_in_one_map(viewer):
    # The bug: an Image for FITS and an RGB for the rendering in one DynamicMap blanked the plot.
    renderer = hv.renderer("bokeh")
    plot = renderer.get_plot(viewer.dynamic_overlay())
    viewer.image_kind = "fits"
    plot.update((0,))
    viewer.image_kind = "rendering"
    plot.update((0,))


def test_without_links_every_mark_is_drawn_unlinked(tiny_tables):
    project = Project(tiny_tables["classifications"], tiny_tables["marks"])
    viewer = CutoutViewer(data_store=DataStore(project=project, subject=1))
    boxes = viewer.volunteer_boxes().dframe()
    assert len(boxes) == 3 and set(boxes.colour) == {UNLINKED_COLOUR}
    assert len(viewer.unmatched_boxes()) == 0 and len(viewer.consensus_boxes()) == 0
    # No image and no size in the subjects table: the extent comes from the marks.
    assert viewer.extent() == (85.0, 70.0)


def test_the_overlay_renders_with_bokeh(viewer):
    hv.renderer("bokeh").get_plot(viewer.overlay())
    viewer.data_store.subject = 3  # no marks, no boxes, no image
    hv.renderer("bokeh").get_plot(viewer.overlay())
    assert np.array_equal(viewer.image().data.shape, (2, 2, 3))


def test_each_subject_sets_the_axes_to_its_own_image(viewer):
    viewer.data_store.subject = 2  # no image: the extent of its marks, 44 x 40
    plot = hv.renderer("bokeh").get_plot(viewer.dynamic_overlay())
    figure = plot.state
    assert (figure.x_range.start, figure.x_range.end) == (0, 44)
    assert (figure.y_range.start, figure.y_range.end) == (42, -2)  # square frame, y down
    viewer.data_store.subject = 1
    assert (figure.x_range.start, figure.x_range.end) == (0, 100)
    assert (figure.y_range.start, figure.y_range.end) == (100, 0)
    assert figure.frame_width == figure.frame_height == viewer.frame_size


def test_the_uncertainty_band_spans_the_standard_error_of_each_edge(viewer):
    assert len(viewer.band_boxes()) == 0  # subject 1: each box has a single vote
    viewer.data_store.subject = 2
    # Box C's votes: x = 30 and 34 (sample sd 2*sqrt(2)), everything else equal. The
    # error of a median of 2 is sqrt(pi/2) * sd / sqrt(2) = sqrt(2 pi) = 2.507 for x;
    # the right edge moves by the x and width errors combined (width's is 0).
    band = viewer.band_boxes().dframe().sort_values("x0")
    error = np.sqrt(2 * np.pi)
    np.testing.assert_allclose(band[["x0", "y0", "x1", "y1"]].to_numpy(),
                               [[30 - error, 30, 40 + error, 40], [30 + error, 30, 40 - error, 40]])
    assert band.consensus_box.tolist() == [20, 20]
    assert set(band.colour) == {viewer.consensus_boxes().dframe().colour.iloc[0]}


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
    whole = viewer.consensus_boxes().dframe().set_index("consensus_box").outline
    # Box 11 is 10 x 10 pixels: 60 screen pixels on the whole 100-pixel image at 600 -> 3 (the widest).
    assert viewer.screen_scale() == pytest.approx(6.0) and whole.loc[11] == pytest.approx(3.0)
    viewer.frame_size = 200  # 2 screen px per image px: box 11 is 20 screen pixels wide -> a 2-pixel line
    assert viewer.consensus_boxes().dframe().set_index("consensus_box").outline.loc[11] == pytest.approx(2.0)


def test_picking_a_box_zooms_to_it_and_its_marks_and_the_whole_image_comes_back(viewer):
    assert viewer.view_limits() == ((0, 100), (0, 100))  # nothing picked yet: the whole image
    viewer.data_store.review_box = 11  # box 11 (60, 60, 10 x 10), supported by bob's box of the same place
    (x0, x1), (y0, y1) = viewer.view_limits()
    side = max(2.2 * 10, 32.0)  # ZOOM_MARGIN times the box, at least ZOOM_LEAST_SIDE
    assert (x0, x1, y0, y1) == pytest.approx((65 - side / 2, 65 + side / 2, 65 - side / 2, 65 + side / 2))
    viewer.zoom_to_pick = False
    assert viewer.view_limits() == ((0, 100), (0, 100))
    viewer.zoom_to_pick = True
    viewer.data_store.subject = 2  # a new subject shows whole until one of its boxes is picked
    assert viewer.view_limits()[0] == (0, 44)


def test_decided_boxes_each_have_their_look_and_the_legend_names_every_layer(tiny_project, review_store):
    from dashboard import Explorer
    from dashboard.views.cutout import STATUS_LOOKS
    from dashboard.views.cutout_layers import LAYERS, CutoutLayer, LegendEntry, register_layer

    explorer = Explorer(tiny_project, reviews=review_store)
    explorer.data_store.reviewer = "ann"
    cutout = explorer.cutout
    assert cutout.consensus_boxes("unreviewed").dframe().consensus_box.tolist() == [10, 11]
    explorer.review.accept(10)
    explorer.review.reject(11)
    assert cutout.consensus_boxes("accepted").dframe().consensus_box.tolist() == [10]
    assert cutout.consensus_boxes("accepted").group == "Accepted"
    assert len(cutout.consensus_boxes("unreviewed")) == 0
    assert cutout.status_glyphs().dframe().glyph.tolist() == [STATUS_LOOKS["accepted"][2], STATUS_LOOKS["rejected"][2]]
    dashes = {group: dash for group, dash, _ in STATUS_LOOKS.values()}
    assert dashes["Consensus"] != dashes["Accepted"]

    names = [entry.name for entry in cutout.legend_entries()]
    for name in ("volunteer mark", "unmatched volunteer mark", "consensus, unreviewed", "accepted", "redrawn", "added",
                 "rejected", "uncertainty band"):
        assert any(entry.startswith(name) for entry in names), name
    # Another module's layer: drawn on the cutout and named in the legend with one registration.
    detections = LegendEntry("machine detection", "#ff7f0e", dash="dotdash")
    register_layer(CutoutLayer(name="test-detections", legend=(detections,),
                               element=lambda view: hv.Rectangles([], group="Detections")))
    try:
        assert cutout.legend_entries()[-1] is detections
        assert "machine detection" in cutout._legend().object
        assert "Detections" in {element.group for element in cutout.box_layers()}
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
    paths, outlines = viewer.volunteer_paths(), viewer.volunteer_outlines()
    assert isinstance(paths, hv.Contours) and isinstance(outlines, hv.Polygons)
    # Lines and the new front end's freehand line are open; polygons and the classic front end's point
    # lists (which do not say their tool) closed; the circle (a triangle in the export) is its ellipse; the
    # full-width line is open.
    drawn = sorted((path["volunteer"], len(path["x"])) for path in paths.split(datatype="columns"))
    assert drawn == [("alice", 2), ("alice", 2), ("bob", 2), ("bob", 2), ("bob", 3)]
    # (A polygon comes back from HoloViews as a closed ring: its first vertex again at the end.)
    closed = sorted((outline["volunteer"], len(outline["x"]) - 1) for outline in outlines.split(datatype="columns"))
    assert closed == [("alice", 2), ("alice", 3), ("alice", 3), ("alice", 3), ("alice", 4),
                      ("alice", ELLIPSE_VERTICES), ("bob", 3)]
    freehand = [path for path in paths.split(datatype="columns") if len(path["x"]) == 3][0]
    np.testing.assert_array_equal(freehand["x"], [70, 71, 73.5])
    np.testing.assert_array_equal(freehand["y"], [6, 10, 15])
    assert len(viewer.volunteer_boxes()) == 0  # no mark of subject 501 is drawn as a box
    # Without links every mark is grey and none is unmatched; hover tells volunteer, IoU and time.
    assert set(paths.dimension_values("colour", expanded=False)) == {UNLINKED_COLOUR}
    assert len(viewer.unmatched_paths()) == 0
    assert [d.name for d in paths.vdims][:3] == ["volunteer", "iou", "time"]
    # Subject 502: the freehand line whose pathX and pathY differ in length kept no vertices: its box.
    viewer.data_store.subject = 502
    assert len(viewer.volunteer_boxes()) == 1 and len(viewer.volunteer_paths().split()) == 1
    hv.renderer("bokeh").get_plot(viewer.overlay())


def test_freehand_lines_a_workflow_export_names_are_drawn_open(data_dir):
    named = load_project([data_dir / "handmade" / "vertex_tools_classifications.csv",
                          data_dir / "handmade" / "vertex_tools_workflows.csv"], method=None)
    viewer = CutoutViewer(data_store=DataStore(project=named, subject=501))
    # Open: alice's line, freehand line, freehand segment line and full-width line; bob's freehand line and
    # two lines.
    assert sorted(path["volunteer"] for path in viewer.volunteer_paths().split(datatype="columns")) == [
        "alice", "alice", "alice", "alice", "bob", "bob", "bob"]
    # Closed: alice's polygon, freehand shape, bezier and triangle; bob's polygon.
    assert len(viewer.volunteer_outlines().split()) == 5


def test_outlines_and_paths_are_drawn_in_their_consensus_colour(data_dir):
    from bokeh.models import GlyphRenderer

    project = load_project([data_dir / "aggregation_for_caesar" / "cat-project-classifications.csv"])
    subject_id = int(project.subject_stats.sort_values("n_marks").subject_id.iloc[-1])
    viewer = CutoutViewer(data_store=DataStore(project=project, subject=subject_id))
    figure = hv.renderer("bokeh").get_plot(viewer.overlay()).state
    drawn = [renderer for renderer in figure.renderers if isinstance(renderer, GlyphRenderer)
             and type(renderer.glyph).__name__ in ("MultiLine", "MultiPolygons")
             and len(renderer.data_source.data["colour"])]
    assert {type(renderer.glyph).__name__ for renderer in drawn} == {"MultiLine", "MultiPolygons"}
    for renderer in drawn:
        # The line colour is the column's (HoloViews gives one value when all rows share it), never black.
        colours = set(renderer.data_source.data["colour"])
        line_color = renderer.glyph.line_color
        assert (line_color in colours if isinstance(line_color, str) else line_color.field == "colour"), line_color
