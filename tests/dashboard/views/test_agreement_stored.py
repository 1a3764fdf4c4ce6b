"""The Agreement tab of a store-backed project: filtered views binned from the store's plotted columns show what the
in-memory project's rasterized marks show, and select the same subjects."""

from __future__ import annotations

import holoviews as hv
import numpy as np
import pytest

from dashboard.data_store import DataStore
from dashboard.views.agreement import AgreementPlots
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


def _assert_same_plots(memory: AgreementPlots, stored: AgreementPlots) -> None:
    for method in ("iou_size_points", "offset_points"):
        image = getattr(stored, method)()
        points = getattr(memory, method)().data
        x, y = (dimension.name for dimension in image.kdims)
        shown = points[points[x].notna() & points[y].notna()]
        assert isinstance(image, hv.Image) and len(shown)
        x_range, y_range = (shown[x].min(), shown[x].max()), (shown[y].min(), shown[y].max())
        assert image.bounds.lbrt() == (x_range[0], y_range[0], x_range[1], y_range[1])
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
    for volunteers in (stats.n_volunteers.max(), stats.n_volunteers.min() + 1):
        for plots in both:
            plots.data_store.min_volunteers = int(volunteers)
        assert 0 < len(stored.data_store.subjects) < len(stats)
        _assert_same_plots(memory, stored)
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
