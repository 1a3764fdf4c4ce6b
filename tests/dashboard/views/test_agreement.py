"""Agreement plots: the data behind each plot, and box-selections turned into subject selections."""

from __future__ import annotations

import holoviews as hv
import numpy as np
import pytest

from dashboard.data_store import DataStore
from dashboard.views import AgreementPlots
from project.selection import ANY


@pytest.fixture
def plots(tiny_project):
    return AgreementPlots(data_store=DataStore(project=tiny_project))


def test_points_hold_the_matched_marks(plots):
    points = plots.iou_size_points().data
    # Marks 1, 3, 4, 5 support a box; sizes sqrt(20*20)=20, 10, 10, 10.
    assert sorted(points["size"].tolist()) == [10.0, 10.0, 10.0, 20.0]
    offsets = plots.offset_points().data
    assert sorted(offsets.dx.tolist()) == [0.0, 0.0, 0.0, 4.0]


def test_histograms_count_boxes_by_votes_and_subjects_by_volunteers(plots):
    votes = plots.votes_histogram()
    assert dict(zip(votes.dimension_values(0), votes.dimension_values(1)))[2] == 2  # boxes 10 and 20
    volunteers = plots.volunteers_histogram()
    counted = dict(zip(volunteers.dimension_values(0), volunteers.dimension_values(1)))
    assert counted[0] == 1 and counted[2] == 1 and counted[3] == 1


def test_box_selections_pick_the_subjects_behind_the_points(plots):
    store = plots.data_store
    plots.select_iou_size((5, 0.3, 15, 0.5))  # only mark 5 (size 10, IoU 3/7): subject 2
    assert store.selection.tolist() == [2]
    assert store.subjects.subject_id.tolist() == [2]
    store.clear_selection()
    plots.select_offsets((-1, -1, 1, 1))  # marks 1, 3, 4 sit on their box centre
    assert store.selection.tolist() == [1, 2]
    store.clear_selection()
    plots.select_votes((0.5, 1.5))  # box 11 has one vote
    assert store.selection.tolist() == [1]
    store.clear_selection()
    plots.select_volunteers((2.5, 3.5))
    assert store.selection.tolist() == [1]
    store.clear_selection()
    assert plots.has_sky()
    plots.select_sky((190, 15, 260, 35))
    assert store.selection.tolist() == [2, 3]


def test_plots_follow_the_filters(plots):
    plots.data_store.workflow = "9001 v12.4"
    assert plots.iou_size_points().data.subject_id.unique().tolist() == [2]
    assert len(plots.votes_histogram().dimension_values(1)) > 0


def test_panel_renders(plots):
    import panel as pn

    model = pn.panel(plots).get_root()
    assert model is not None
    assert isinstance(plots.sky_points(), hv.Points) and np.isfinite(plots.sky_points().data.ra).all()


def test_the_view_shows_and_clears_the_selection(plots):
    import panel as pn

    layout = pn.panel(plots)
    layout.get_root()
    store = plots.data_store
    assert "Box-select in any plot" in plots._selection_status().object
    plots.select_volunteers((2.5, 3.5))
    assert "1 subjects" in plots._selection_status().object
    clear = next(widget for widget in layout.select(pn.widgets.Button) if widget.name == "Clear selection")
    clear.clicks += 1
    assert store.selection is None and len(store.subjects) == 3


def test_every_empty_plot_says_why(tiny_tables):
    from project import Project

    bare = Project(tiny_tables["classifications"], tiny_tables["marks"])  # no consensus, no RA/Dec
    plots = AgreementPlots(data_store=DataStore(project=bare))
    for plot in ("iou_size", "offsets", "votes"):
        assert plots.empty_reason(plot).startswith("No consensus loaded")
    assert plots.empty_reason("volunteers") is None
    assert "RA/Dec" in plots.empty_reason("sky")
    plots.data_store.selection = np.array([404])
    assert plots.empty_reason("volunteers") == "No subject passes the filters and plot selection."


# -- read as an astronomer expects (rendered with Bokeh, as the browser gets them) -----------

def _render(element):
    return hv.render(element)


def _density(plots, plot="iou_size"):
    methods = {"iou_size": plots.iou_size_points, "offsets": plots.offset_points, "sky": plots.sky_points}
    return plots.density_plot(plot, methods[plot], plot, "x", "y", "marks")


def test_density_colour_bars_count_marks_in_whole_numbers(plots):
    from bokeh.models import ColorBar, LogColorMapper, LogTicker

    for plot in ("iou_size", "offsets", "sky"):
        (colorbar,) = _render(_density(plots, plot)).select(ColorBar)
        # A log scale, ticked at 1, 2, 5, 10, 20 ... and never between two whole numbers (no "1.121").
        assert isinstance(colorbar.color_mapper, LogColorMapper)
        assert isinstance(colorbar.ticker, LogTicker) and colorbar.ticker.min_interval == 1
        assert all(float(mantissa).is_integer() for mantissa in colorbar.ticker.mantissas)
        assert colorbar.formatter.format == "0,0" and colorbar.title == "marks"
        # A pixel holding one mark is not the colour map's bottom (black on the black plot).
        assert colorbar.color_mapper.low < 1


def test_hovering_an_empty_pixel_shows_nothing(plots):
    from bokeh.models import CustomJS, HoverTool

    from dashboard.views.agreement import HOVER_ONLY_ON_DATA

    hovers = _render(_density(plots)).select(HoverTool)
    assert len(hovers) == 1  # the selected points' layer only, not the grey rest
    (hover,) = hovers
    (only_on_data,) = hover.filters.values()
    assert list(hover.filters) == ["@image"] and isinstance(only_on_data, CustomJS)
    assert only_on_data.code == HOVER_ONLY_ON_DATA and "Number.isFinite(value) && value > 0" in HOVER_ONLY_ON_DATA
    assert dict(hover.tooltips)["marks"] == "@image{0,0}"


def test_ra_increases_to_the_left_on_the_sky_map(plots):
    figure = _render(_density(plots, "sky"))
    assert figure.x_range.start > figure.x_range.end  # east to the left, as on the sky
    other = _render(_density(plots, "iou_size"))
    assert other.x_range.start < other.x_range.end


def test_histograms_of_counts_have_whole_number_ticks(plots):
    for plot, method in (("votes", plots.votes_histogram), ("volunteers", plots.volunteers_histogram)):
        figure = _render(plots.histogram_plot(plot, method, plot))
        assert figure.xaxis[0].ticker.min_interval == 1 and figure.yaxis[0].ticker.min_interval == 1


def test_the_brushed_region_stays_drawn_until_the_selection_is_cleared(plots):
    from bokeh.models import BoxAnnotation, GlyphRenderer, Quad

    sky = _density(plots, "sky")
    votes = plots.histogram_plot("votes", plots.votes_histogram, "votes")
    plots.select_sky((190, 15, 260, 35))
    plots.select_votes((1.5, 2.5))  # refines: both regions stay drawn
    assert plots.brushed == {"sky": (190.0, 15.0, 260.0, 35.0), "votes": (1.5, 2.5)}
    quads = [renderer.data_source.data for renderer in _render(sky).renderers
             if isinstance(renderer, GlyphRenderer) and isinstance(renderer.glyph, Quad)]
    assert [(list(data["left"]), list(data["bottom"]), list(data["right"]), list(data["top"])) for data in quads] \
        == [([190.0], [15.0], [260.0], [35.0])]
    figure = _render(votes)
    (span,) = [renderer for renderer in figure.renderers if isinstance(renderer, BoxAnnotation)]
    assert (span.left, span.right) == (1.5, 2.5)
    plots.data_store.clear_selection()
    assert plots.brushed == {}
    quads = [renderer.data_source.data for renderer in _render(sky).renderers
             if isinstance(renderer, GlyphRenderer) and isinstance(renderer.glyph, Quad)]
    assert [len(data["left"]) for data in quads] == [0]


def test_the_selected_data_is_drawn_over_the_rest_in_grey(plots):
    from bokeh.models import GlyphRenderer, Image

    from dashboard.views.agreement import BARS, UNSELECTED_BARS, UNSELECTED_PIXELS

    store = plots.data_store
    assert len(plots.iou_size_points(chosen_from=True)) == 0  # nothing left out to draw in grey
    plots.select_iou_size((5, 0.3, 15, 0.5))  # subject 2
    assert store.subjects.subject_id.tolist() == [2]
    # The selected subject's marks, and all four the filters keep behind them.
    assert set(plots.iou_size_points().data.subject_id) == {2}
    assert set(plots.iou_size_points(chosen_from=True).data.subject_id) == {1, 2}
    images = [renderer for renderer in _render(_density(plots)).renderers
              if isinstance(renderer, GlyphRenderer) and isinstance(renderer.glyph, Image)]
    assert len(images) == 2 and list(images[0].glyph.color_mapper.palette) == [UNSELECTED_PIXELS]
    assert np.nansum(images[0].data_source.data["image"][0]) > np.nansum(images[1].data_source.data["image"][0])
    rest, selected = plots.volunteers_histogram(chosen_from=True), plots.volunteers_histogram()
    assert rest.dimension_values(1).sum() == 3 and selected.dimension_values(1).sum() == 1
    figure = _render(plots.histogram_plot("volunteers", plots.volunteers_histogram, "volunteers"))
    bars = [renderer.glyph.fill_color for renderer in figure.renderers if isinstance(renderer, GlyphRenderer)]
    assert bars == [UNSELECTED_BARS, BARS]


def test_the_grey_layer_is_redrawn_only_while_there_is_a_selection(plots):
    # Without a selection the grey layer is empty: a filter change leaves it alone (HoloViews re-running its
    # rasterize and spread redid nothing); with one it follows every change, and is emptied when it is dropped.
    from bokeh.models import GlyphRenderer, Image

    store = plots.data_store
    plot = hv.renderer("bokeh").get_plot(_density(plots))

    def drawn():  # marks in the grey and in the coloured layer
        images = [renderer for renderer in plot.state.renderers
                  if isinstance(renderer, GlyphRenderer) and isinstance(renderer.glyph, Image)]
        return [float(np.nansum(image.data_source.data["image"][0])) for image in images]

    everything = drawn()
    assert everything[0] == 0 and everything[1] > 0
    redrawn = plots.faded_changed
    store.workflow = "9001 v12.4"  # subject 2 only
    assert plots.faded_changed == redrawn and drawn()[0] == 0 and 0 < drawn()[1] < everything[1]
    store.workflow = ANY
    assert plots.faded_changed == redrawn and drawn() == everything
    plots.select_iou_size((5, 0.3, 15, 0.5))  # subject 2
    assert plots.faded_changed == redrawn + 1 and drawn()[0] == everything[1] > drawn()[1] > 0
    store.workflow = "9001 v12.4"  # a filter change with the selection: the grey layer follows it
    assert plots.faded_changed == redrawn + 2
    store.clear_selection()
    assert plots.faded_changed == redrawn + 3 and drawn()[0] == 0
