"""The dashboard on a store-backed project (`project.stored`) shows what it shows on the in-memory one:
agreement densities binned from the store's plotted columns, empty-plot reasons, box selections, a volunteer's
marks, and the views that read marks build."""

from __future__ import annotations

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import pytest
from bokeh.models import GlyphRenderer, Image

from dashboard.data_store import DataStore
from dashboard import views
from dashboard.views import AgreementPlots, VolunteerTable
from project import load_project
from project.stored import StoredProject, write_project_store
from tests.zoolens.test_demo import demo_files  # noqa: F401  (fixture: the demo files)
from zoolens import demo


@pytest.fixture(scope="module")
def projects(demo_files, tmp_path_factory):
    """The demo in memory and from its store (several parts, so Dask reads several partitions)."""
    in_memory = load_project([demo_files.classifications, demo_files.subjects, demo_files.workflows],
                             **demo.PROJECT_OPTIONS)
    folder = write_project_store(in_memory, tmp_path_factory.mktemp("stored") / "store", part_rows=400)
    stored = StoredProject(folder)
    assert len(stored.store.parts("marks")) > 3
    return in_memory, stored


def test_agreement_densities_from_the_store_equal_those_in_memory(projects):
    import datashader

    from project.stored import DENSITY_SHAPE

    in_memory, stored = projects
    assert stored.marks.npartitions > 3  # a Dask DataFrame, not the marks in memory
    # A filtered view bins the store's plotted columns of the subjects (and tool) it keeps, as datashader bins the
    # marks the in-memory view keeps, both in the frame of every matched mark; the plot renders from that grid.
    matched = in_memory.marks[in_memory.marks.consensus_id >= 0]
    for filters in ({"min_volunteers": 15}, {"tool": in_memory.tools[0]}):
        plots = []
        for project in projects:
            store = DataStore(project=project)
            store.param.update(**filters)
            plots.append(AgreementPlots(data_store=store))
        element, image = plots[0].iou_size_points(), plots[1].iou_size_points()
        assert isinstance(image, hv.Image)
        points = element.data
        x_range, y_range = (matched["size"].min(), matched["size"].max()), (matched.iou.min(), matched.iou.max())
        canvas = datashader.Canvas(plot_width=DENSITY_SHAPE[0], plot_height=DENSITY_SHAPE[1],
                                   x_range=x_range, y_range=y_range)
        expected = canvas.points(points, "size", "iou").to_numpy().astype(float)
        assert expected.sum() > 50
        np.testing.assert_array_equal(np.nan_to_num(image.dimension_values(2, flat=False)), expected,
                                      err_msg=str(filters))
        figure = hv.render(plots[1].density_plot("iou_size", plots[1].iou_size_points, "iou_size", "x", "y", "marks"))
        assert any(isinstance(renderer.glyph, Image) for renderer in figure.select(GlyphRenderer))


def test_the_unfiltered_agreement_plots_are_drawn_from_the_stores_density_grids(projects):
    import datashader

    from project.stored import DENSITY_SHAPE

    in_memory, stored = projects
    store = DataStore(project=stored)
    plots = AgreementPlots(data_store=store)
    marks = in_memory.marks[in_memory.marks.consensus_id >= 0]
    for method, (x, y) in ((plots.iou_size_points, ("size", "iou")), (plots.offset_points, ("dx", "dy"))):
        image = method()
        assert isinstance(image, hv.Image)  # no pass over the marks
        canvas = datashader.Canvas(plot_width=DENSITY_SHAPE[0], plot_height=DENSITY_SHAPE[1],
                                   x_range=(marks[x].min(), marks[x].max()), y_range=(marks[y].min(), marks[y].max()))
        expected = canvas.points(marks, x, y).to_numpy().astype(float)
        np.testing.assert_array_equal(np.nan_to_num(image.dimension_values(2, flat=False)), expected)
        assert isinstance(method(grid=False), hv.Points)  # box selections still find the marks behind the points
    hv.render(plots.density_plot("iou_size", plots.iou_size_points, "iou_size", "x", "y", "marks"))
    # Any filter, tool or selection leaving marks out: the plotted columns of what it keeps, binned
    # (`project.plotted`; equal to datashader on the same marks: the test above).
    store.min_volunteers = 15
    assert isinstance(plots.iou_size_points(), hv.Image)
    store.min_volunteers = 0
    store.tool = in_memory.tools[0]
    assert isinstance(plots.iou_size_points(), hv.Image)


def test_the_agreement_plots_of_every_subject_compute_nothing_on_dask(projects):
    # Drawn from the store's grids and kept ranges: a Dask computation over the marks here took 30 s at 97 million
    # marks (the faded layer's empty points once asked for the project's frame).
    from dask.callbacks import Callback

    plots = AgreementPlots(data_store=DataStore(project=projects[1]))
    computed = []
    with Callback(start=lambda graph: computed.append(graph)):
        for plot, method in (("iou_size", plots.iou_size_points), ("offsets", plots.offset_points)):
            assert isinstance(method(), hv.Image) and not len(method(chosen_from=True))
            hv.render(plots.density_plot(plot, method, plot, "x", "y", "marks"))
    assert computed == []


def test_reasons_selections_and_volunteer_marks_from_the_store(projects):
    in_memory, stored = projects
    stores = [DataStore(project=project) for project in projects]
    plots = [AgreementPlots(data_store=store) for store in stores]
    for plot in ("iou_size", "offsets", "votes", "volunteers", "sky"):
        assert plots[0].empty_reason(plot) == plots[1].empty_reason(plot)
    for store in stores:
        store.min_volunteers = 100  # no subject passes
    assert plots[0].empty_reason("offsets") == plots[1].empty_reason("offsets") is not None
    for store in stores:
        store.min_volunteers = 0
    for view in plots:
        view.select_iou_size((0, 0.5, 60, 1.0))
    assert len(stores[0].selection) > 3
    np.testing.assert_array_equal(stores[0].selection, stores[1].selection)
    volunteer = in_memory.volunteer_stats.user.iloc[0]
    marks = []
    for store in stores:
        store.volunteer = volunteer
        marks.append(VolunteerTable(data_store=store).volunteer_marks().reset_index(drop=True))
    assert len(marks[0]) > 5
    pd.testing.assert_frame_equal(marks[0], marks[1], check_dtype=False)


@pytest.mark.parametrize("view", ["CutoutViewer", "SubjectBrowser", "VolunteerTable", "ReaggregationSandbox",
                                  "ExportView", "MachineView"])
def test_every_view_that_reads_marks_builds_on_a_stored_project(projects, view):
    store = DataStore(project=projects[1])
    assert pn.panel(getattr(views, view)(data_store=store)).get_root() is not None


def test_a_store_written_before_points_had_a_distance_still_opens(projects, tmp_path):
    # Stores written before the per-subject and per-volunteer mean distance was counted have no such column:
    # the tables that show it still open, with the distance unknown.
    import shutil

    from dashboard.views import SubjectBrowser

    _, stored = projects
    older = shutil.copytree(stored.store.folder, tmp_path / "older")
    for name in ("subject_stats.parquet", "volunteer_stats.parquet"):
        table = pd.read_parquet(older / name)
        table.drop(columns=["mean_distance"]).to_parquet(older / name, index=False)
    reopened = StoredProject(older)
    store = DataStore(project=reopened)
    assert reopened.subject_stats.mean_distance.isna().all() and reopened.volunteer_stats.mean_distance.isna().all()
    assert len(SubjectBrowser(data_store=store).table.value) == len(stored.subject_stats)
    pd.testing.assert_frame_equal(VolunteerTable(data_store=store)._volunteers.value,
                                  VolunteerTable(data_store=DataStore(project=stored))._volunteers.value)
