"""A store-backed project (`project.stored`) answers every question as the in-memory project does:
per subject from the store's row groups, whole tables as Dask DataFrames, on a LocalCluster of
worker processes too."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from project import load_project
from project.export import write_catalogue
from project.selection import Selection
from project.stored import StoredProject, computed, is_store, write_export_store, write_project_store
from tests.zoolens.test_demo import demo_files  # noqa: F401  (fixture: the demo files)
from zoolens import demo

distributed = pytest.importorskip("distributed")

VERTEX_TOOLS = "handmade/vertex_tools_classifications.csv"


def _demo_paths(files) -> list:
    return [files.classifications, files.subjects, files.workflows]


def _same_rows(in_memory: pd.DataFrame, stored: pd.DataFrame, order: list[str]) -> None:
    """Equal tables, whatever the row order and index; text columns compared as text (Dask reads them as
    Arrow strings)."""
    def plain(table):
        table = table.sort_values(order, ignore_index=True)
        text = [column for column in table.columns if pd.api.types.is_string_dtype(table[column])]
        return table.astype({column: object for column in text})

    pd.testing.assert_frame_equal(plain(in_memory), plain(stored[list(in_memory.columns)]))


def assert_same_project(in_memory, stored) -> None:
    pd.testing.assert_frame_equal(in_memory.subject_stats, stored.subject_stats)
    pd.testing.assert_frame_equal(in_memory.consensus, stored.consensus)
    pd.testing.assert_frame_equal(in_memory.volunteer_stats, stored.volunteer_stats)
    assert stored.tools == in_memory.tools and stored.workflows.keys() == in_memory.workflows.keys()
    _same_rows(in_memory.marks, computed(stored.marks), ["mark_id"])
    _same_rows(in_memory.links, computed(stored.links), ["mark_id"])
    _same_rows(in_memory.mark_vertices, computed(stored.mark_vertices), ["mark_id", "vertex"])
    for subject_id in in_memory.subjects.subject_id:
        pd.testing.assert_frame_equal(in_memory.marks_of(subject_id).reset_index(drop=True),
                                      stored.marks_of(subject_id))
        pd.testing.assert_frame_equal(in_memory.consensus_of(subject_id), stored.consensus_of(subject_id))
        marks = stored.marks_of(subject_id)
        pd.testing.assert_frame_equal(in_memory.vertices_of(marks.mark_id).reset_index(drop=True),
                                      stored.vertices_of(marks.mark_id))
    some = in_memory.subjects.subject_id.iloc[::3]
    pd.testing.assert_frame_equal(in_memory.volunteer_stats_of(some), stored.volunteer_stats_of(some))
    for tool in in_memory.tools:
        np.testing.assert_array_equal(in_memory.subjects_with_tool(tool), stored.subjects_with_tool(tool))


def test_a_stored_project_equals_the_project_it_was_written_from(data_dir, tmp_path):
    # Shapes drawn through their vertices: the store keeps the vertices, read with their subject's marks.
    in_memory = load_project([data_dir / VERTEX_TOOLS])
    assert len(in_memory.mark_vertices) > 10
    write_project_store(in_memory, tmp_path / "store", part_rows=10)
    stored = StoredProject(tmp_path / "store")
    assert len(stored.store.parts("marks")) == 2  # one subject per part: each read from its own
    assert_same_project(in_memory, stored)
    # Vertices of marks not read through marks_of come from one pass over the store.
    some = in_memory.mark_vertices.mark_id.unique()[:3]
    pd.testing.assert_frame_equal(in_memory.vertices_of(some).reset_index(drop=True),
                                  StoredProject(tmp_path / "store").vertices_of(some))


def test_unknown_subjects_and_folders_that_are_not_stores(data_dir, tmp_path):
    in_memory = load_project([data_dir / VERTEX_TOOLS])
    stored = StoredProject(write_project_store(in_memory, tmp_path / "store"))
    assert stored.marks_of(-5).empty and list(stored.marks_of(-5).columns) == list(in_memory.marks.columns)
    assert stored.consensus_of(-5).empty and stored.vertices_of([]).empty
    assert not is_store(tmp_path) and is_store(tmp_path / "store")
    with pytest.raises(FileNotFoundError, match="not a zoolens project store"):
        StoredProject(tmp_path)


def test_the_demo_on_a_local_cluster_from_its_store_equals_the_in_memory_demo(demo_files, tmp_path):
    options = {**demo.PROJECT_OPTIONS, "detections": demo_files.detections, "image_roots": [demo_files.folder]}
    in_memory = load_project(_demo_paths(demo_files), **options)
    store = tmp_path / "store"
    stored = load_project(_demo_paths(demo_files), scheduler="local", partitions=3, store=store, **options)
    try:
        assert isinstance(stored, StoredProject) and is_store(store)
        assert stored.client is not None and len(stored.client.scheduler_info()["workers"]) > 1
        # The consensus was made on the cluster, as the in-memory one was made in this process.
        assert "the Dask cluster at tcp://127.0.0.1:" in stored.aggregation_run["where"]
        assert_same_project(in_memory, stored)
        pd.testing.assert_frame_equal(in_memory.machine.subject_counts(0.5), stored.machine.subject_counts(0.5))
        # Agreement aggregates: datashader on the Dask marks (on the cluster) counts as on the pandas marks.
        _same_densities(in_memory, stored)
        # Export: the same files, marks included (numbers equal up to the order the cluster summed them in).
        for project, name in ((in_memory, "memory"), (stored, "stored")):
            write_catalogue(project, Selection(project=project), tmp_path / f"{name}.csv", include_marks=True)
        for suffix in (".csv", ".marks.csv"):
            memory_file, stored_file = (tmp_path / f"{name}{suffix}" for name in ("memory", "stored"))
            assert len(pd.read_csv(memory_file)) > 50
            pd.testing.assert_frame_equal(pd.read_csv(memory_file), pd.read_csv(stored_file), rtol=1e-9)
    finally:
        stored.client.close()
        stored.client.cluster.close()
    # An existing store opens as it is, without the files.
    reopened = load_project([], store=store)
    assert isinstance(reopened, StoredProject)
    pd.testing.assert_frame_equal(in_memory.subject_stats, reopened.subject_stats)


def _same_densities(in_memory, stored) -> None:
    import datashader

    marks = in_memory.marks[in_memory.marks.consensus_id >= 0]
    canvas = datashader.Canvas(plot_width=60, plot_height=40, x_range=(0, marks["size"].max()), y_range=(0, 1))
    dask_marks = stored.marks[stored.marks.consensus_id >= 0]
    expected = canvas.points(marks, "size", "iou").to_numpy()
    assert expected.sum() > 100
    np.testing.assert_array_equal(expected, canvas.points(dask_marks, "size", "iou").to_numpy())


@pytest.mark.parametrize("path, options", [(VERTEX_TOOLS, {}), ("penguin_watch/penguin-watch-classifications-trim.csv",
                                                                {"workflow_id": 6465})])
def test_an_export_streamed_part_by_part_into_a_store_equals_the_project_loaded_in_memory(data_dir, tmp_path, path,
                                                                                       options):
    # Small parts: each part's consensus, statistics and volunteer sums are made on its own and reduced.
    # The iou method: its boxes depend on each subject's marks alone (lean's volunteer skills would be per part).
    in_memory = load_project([data_dir / path], method="iou", **options)
    parts = []
    folder = write_export_store(data_dir / path, tmp_path / "store", method="iou", part_rows=10,
                                progress=lambda number, marks, so_far: parts.append((number, marks, so_far)), **options)
    stored = StoredProject(folder)
    assert len(stored.store.parts("marks")) == len(parts) > 1
    assert parts[-1][2] == len(in_memory.marks)
    assert_same_project(in_memory, stored)
    assert stored.reports[0].counts["marks"] == in_memory.reports[0].counts["marks"]
    assert not (tmp_path / "store.spill").exists()


def test_the_stores_density_grids_count_the_marks_as_datashader_does(demo_files, tmp_path):
    import datashader

    from project.stored import DENSITY_PLOTS, DENSITY_SHAPE

    in_memory = load_project(_demo_paths(demo_files), **demo.PROJECT_OPTIONS)
    stored = StoredProject(write_project_store(in_memory, tmp_path / "store", part_rows=300))
    assert len(stored.store.parts("marks")) > 2
    marks = in_memory.marks[in_memory.marks.consensus_id >= 0]
    for plot, (x, y) in DENSITY_PLOTS.items():
        grid = stored.density_grids[plot]
        assert grid["x_range"] == (marks[x].min(), marks[x].max()) and grid["y_range"] == (marks[y].min(), marks[y].max())
        canvas = datashader.Canvas(plot_width=DENSITY_SHAPE[0], plot_height=DENSITY_SHAPE[1], x_range=grid["x_range"],
                                   y_range=grid["y_range"])
        expected = canvas.points(marks, x, y).to_numpy()
        assert expected.sum() == grid["marks"] > 100
        np.testing.assert_array_equal(grid["counts"], expected)


def test_load_project_streams_an_export_into_its_store_as_the_in_memory_project(demo_files, tmp_path):
    # One export with its subjects and workflows, a per-subject method: parsed part by part into the store.
    options = {**demo.PROJECT_OPTIONS, "method": "iou", "image_roots": [demo_files.folder]}
    in_memory = load_project(_demo_paths(demo_files), **options)
    stored = load_project(_demo_paths(demo_files), store=tmp_path / "store", **options)
    assert isinstance(stored, StoredProject)
    assert "per part of the store" in stored.aggregation_run["made_by"]
    assert stored.title == in_memory.title and stored.filters == in_memory.filters
    assert stored.sources == in_memory.sources
    assert_same_project(in_memory, stored)
