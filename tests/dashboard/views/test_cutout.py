"""The cutout viewer's elements: boxes where the tables say, coloured by consensus box, image not flipped."""

from __future__ import annotations

import holoviews as hv
import numpy as np
import pytest

from dashboard.data_store import DataStore
from project import Project
from dashboard.views import CutoutViewer, get_view
from dashboard.views.cutout import COLOUR_MAPS, PALETTE, UNLINKED_COLOUR


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
    # rejected, band, a box the reviewer drew (none), the outlines and markers of volunteers (2),
    # unmatched (2), consensus points (1) and the review statuses' glyphs (1)
    assert len(viewer.overlay()) == 17
    viewer.show_unmatched = False
    viewer.show_consensus = False
    viewer.show_band = False
    assert len(viewer.overlay()) == 5
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
