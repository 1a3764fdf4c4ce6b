"""Agreement plots: the data behind each plot, and box-selections turned into subject selections."""

from __future__ import annotations

import holoviews as hv
import numpy as np
import pytest

from dashboard.data_store import DataStore
from dashboard.views import AgreementPlots


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
