"""The Agreement tab of a store-backed project: filtered views binned from the store's plotted columns show what the
in-memory project's rasterized marks show, and select the same subjects."""

from __future__ import annotations

from pathlib import Path

import holoviews as hv
import numpy as np
import pytest

from dashboard.data_store import DataStore
from dashboard.views.agreement import PADDING, AgreementPlots
from project import load_project
from project.selection import ANY
from project.stored import DENSITY_SHAPE, StoredProject, write_project_store
from tests.zoolens.test_demo import demo_files  # noqa: F401  (fixture: the demo files)
from zoolens import demo

datashader = pytest.importorskip("datashader")


@pytest.fixture
def both(demo_files, tmp_path):
    """The demo's agreement plots, in memory and from its store (written in small parts)."""
    in_memory = load_project([demo_files.classifications, demo_files.subjects, demo_files.workflows],
                             **demo.PROJECT_OPTIONS)
    stored = StoredProject(write_project_store(in_memory, tmp_path / "store", part_rows=300))
    return AgreementPlots(data_store=DataStore(project=in_memory)), AgreementPlots(data_store=DataStore(project=stored))


def _counts(image: hv.Image) -> np.ndarray:
    """An image's counts, rows from its low y up (as HoloViews gives them), empty pixels 0."""
    return np.nan_to_num(image.dimension_values(2, flat=False))


def _assert_same_plots(memory: AgreementPlots, stored: AgreementPlots) -> list[bool]:
    """Both projects' plots show the same; returns, per density plot, whether the marks shown reach less far than
    the whole project's (the frame both keep)."""
    every = memory.data_store.project.marks
    matched = every[every.consensus_id >= 0]
    narrower = []
    for method in ("iou_size_points", "offset_points"):
        image = getattr(stored, method)()
        points = getattr(memory, method)()
        x, y = (dimension.name for dimension in image.kdims)
        shown = points.data[points.data[x].notna() & points.data[y].notna()]
        assert isinstance(image, hv.Image) and len(shown)
        # Whatever the filters, both frame every matched mark of the project: what the plot showed first stays put.
        x_range, y_range = (matched[x].min(), matched[x].max()), (matched[y].min(), matched[y].max())
        assert image.bounds.lbrt() == (x_range[0], y_range[0], x_range[1], y_range[1])
        for name, (low, high) in ((x, x_range), (y, y_range)):
            pad = PADDING * (high - low)
            assert points.get_dimension(name).soft_range == pytest.approx((low - pad, high + pad))
        narrower.append((shown[x].min(), shown[x].max(), shown[y].min(), shown[y].max())
                        != (*x_range, *y_range))
        canvas = datashader.Canvas(plot_width=DENSITY_SHAPE[0], plot_height=DENSITY_SHAPE[1], x_range=x_range,
                                   y_range=y_range)
        np.testing.assert_array_equal(_counts(image), canvas.points(shown, x, y).to_numpy())
    for plot in ("iou_size", "offsets", "votes"):
        assert stored.empty_reason(plot) == memory.empty_reason(plot)
    # The votes histogram: from the store's counted boxes and a mask over its subjects, the same bars.
    for chosen_from in (False, True):
        expected = memory.votes_histogram(chosen_from)
        histogram = stored.votes_histogram(chosen_from)
        for dimension in (0, 1):
            np.testing.assert_array_equal(histogram.dimension_values(dimension), expected.dimension_values(dimension))
    return narrower


def test_filtered_views_bin_the_stores_columns_as_datashader_bins_the_marks(both):
    memory, stored = both
    assert stored.data_store.project.plotted is not None
    volunteers = int(memory.data_store.project.subject_stats.n_volunteers.median())
    for plots in both:
        plots.data_store.min_volunteers = volunteers
    assert 0 < len(stored.data_store.subjects) < len(stored.data_store.project.subject_stats)
    _assert_same_plots(memory, stored)
    tool = memory.data_store.project.marks.tool_label.mode()[0]
    for plots in both:
        plots.data_store.tool = tool
    _assert_same_plots(memory, stored)
    votes = memory.data_store.project.consensus.n_votes
    for plots in both:
        plots.data_store.min_votes = int(votes.median())
    assert 0 < memory._vote_counts(memory.data_store.subjects)[1].sum() < votes.notna().sum()
    _assert_same_plots(memory, stored)
    # Filters keeping few subjects and most: the shown subjects' boxes counted, or those left out taken from all.
    for plots in both:
        plots.data_store.tool, plots.data_store.min_votes = ANY, 0
    stats = memory.data_store.project.subject_stats
    narrower = {}
    for volunteers in (stats.n_volunteers.max(), stats.n_volunteers.min() + 1):
        for plots in both:
            plots.data_store.min_volunteers = int(volunteers)
        assert 0 < len(stored.data_store.subjects) < len(stats)
        narrower[volunteers] = _assert_same_plots(memory, stored)
    # The fewest subjects' marks reach less far than the project's: a frame of their own would have moved.
    assert all(narrower[stats.n_volunteers.max()])
    # Back to every subject and tool: the store's whole-project grids.
    for plots in both:
        plots.data_store.tool, plots.data_store.min_volunteers, plots.data_store.min_votes = ANY, 0, 0
    _assert_same_plots(memory, stored)


def test_a_box_selects_the_subjects_it_selects_in_memory(both):
    memory, stored = both
    points = memory.offset_points().data
    bounds = (points.dx.quantile(0.6), points.dy.quantile(0.3), points.dx.quantile(0.4), points.dy.quantile(0.7))
    for plots in both:
        plots.select_offsets(bounds)
    assert 0 < len(stored.data_store.selection) == len(memory.data_store.selection)
    np.testing.assert_array_equal(stored.data_store.selection, memory.data_store.selection)
    # Within that selection, the selected subjects' plots and the faded rest (every subject passing the filters).
    _assert_same_plots(memory, stored)
    rest = stored.iou_size_points(chosen_from=True)
    assert isinstance(rest, hv.Image) and _counts(rest).sum() == memory.iou_size_points(chosen_from=True).data.pipe(
        lambda marks: (marks["size"].notna() & marks.iou.notna()).sum())
    points = memory.iou_size_points().data
    bounds = (points["size"].quantile(0.2), points.iou.quantile(0.2), points["size"].quantile(0.9), 1.0)
    for plots in both:
        plots.select_iou_size(bounds)
    np.testing.assert_array_equal(stored.data_store.selection, memory.data_store.selection)


def test_a_stored_project_tells_points_from_boxes_as_in_memory(both, tmp_path):
    penguins = load_project([Path(__file__).resolve().parents[2] / "data" / "penguin_watch"
                             / "penguin-watch-classifications-trim.csv"], workflow_id=6465, method="point")
    stored = StoredProject(write_project_store(penguins, tmp_path / "penguins", part_rows=3000))
    assert AgreementPlots(data_store=DataStore(project=stored)).marks_are_points()
    assert AgreementPlots(data_store=DataStore(project=penguins)).marks_are_points()
    assert not any(plots.marks_are_points() for plots in both)
