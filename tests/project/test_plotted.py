"""The agreement plots' flat per-mark columns (`project.plotted`): binned for any subjects and tool exactly as
datashader bins the same marks, counted and box-selected as pandas does, whatever the blocks they are read in."""

from __future__ import annotations

import numpy as np
import pytest

from project import load_project
from project import plotted as plotted_module
from project.plotted import PLOTS, PlottedMarks, write_plotted_columns
from project.stored import DENSITY_SHAPE, StoredProject, write_density_grids, write_export_store, write_project_store
from tests.zoolens.test_demo import demo_files  # noqa: F401  (fixture: the demo files)
from zoolens import demo

datashader = pytest.importorskip("datashader")


def _demo(files, tmp_path):
    in_memory = load_project([files.classifications, files.subjects, files.workflows], **demo.PROJECT_OPTIONS)
    return in_memory, StoredProject(write_project_store(in_memory, tmp_path / "store", part_rows=300))


def assert_view_as_pandas_and_datashader(plotted: PlottedMarks, marks, subject_ids, tool=None) -> None:
    """The view of ``subject_ids`` (and ``tool``) equals pandas' counts and datashader's grids of the same marks."""
    shown = marks[marks.subject_id.isin(subject_ids)]
    if tool is not None:
        shown = shown[shown.tool_label == tool]
    matched = shown[shown.consensus_id >= 0]
    view = plotted.view(plotted.subject_mask(subject_ids), tool, shape=DENSITY_SHAPE)
    assert (view.n_marks, view.n_matched, view.n_sized) == (
        len(shown), len(matched), int((matched["size"].notna() & matched.iou.notna()).sum()))
    for plot, (x, y) in PLOTS.items():
        grid = view.grids[plot]
        if not matched[[x, y]].notna().all(axis=1).any():
            assert grid is None
            continue
        assert grid.x_range == (matched[x].min(), matched[x].max())
        assert grid.y_range == (matched[y].min(), matched[y].max())
        canvas = datashader.Canvas(plot_width=DENSITY_SHAPE[0], plot_height=DENSITY_SHAPE[1], x_range=grid.x_range,
                                   y_range=grid.y_range)
        expected = canvas.points(matched, x, y).to_numpy()
        assert expected.sum() == grid.marks > 0
        np.testing.assert_array_equal(grid.counts, expected)


@pytest.mark.parametrize("block_marks", [plotted_module.BLOCK_MARKS, 7])
def test_a_view_of_some_subjects_bins_their_marks_as_datashader(demo_files, tmp_path, monkeypatch, block_marks):
    # Blocks of 7 marks: many blocks, subjects split from the blocks' starts, blocks of no chosen subject skipped.
    monkeypatch.setattr(plotted_module, "BLOCK_MARKS", block_marks)
    in_memory, stored = _demo(demo_files, tmp_path)
    assert stored.plotted is not None and stored.plotted.n_marks == len(in_memory.marks)
    marks = in_memory.marks
    ids = in_memory.subject_stats.subject_id.to_numpy()
    rng = np.random.default_rng(5)
    for subject_ids in (ids, rng.choice(ids, len(ids) // 3, replace=False), ids[::7], ids[-2:]):
        assert_view_as_pandas_and_datashader(stored.plotted, marks, subject_ids)
    tool = marks.tool_label.mode()[0]
    assert_view_as_pandas_and_datashader(stored.plotted, marks, ids[::2], tool)
    # A tool no mark has, and no subject: nothing counted, nothing to plot.
    for mask, tool in ((stored.plotted.subject_mask(ids), "no such tool"), (stored.plotted.subject_mask([]), None)):
        view = stored.plotted.view(mask, tool)
        assert (view.n_marks, view.n_matched, view.grids) == (0, 0, dict.fromkeys(PLOTS))


def test_the_subjects_in_a_box_are_those_pandas_finds(demo_files, tmp_path, monkeypatch):
    monkeypatch.setattr(plotted_module, "BLOCK_MARKS", 11)
    in_memory, stored = _demo(demo_files, tmp_path)
    marks = in_memory.marks[in_memory.marks.consensus_id >= 0]
    ids = in_memory.subject_stats.subject_id.to_numpy()[1::2]
    shown = marks[marks.subject_id.isin(ids)]
    for plot, (x, y) in PLOTS.items():
        low, high = shown[x].quantile([0.4, 0.6]), shown[y].quantile([0.3, 0.7])
        bounds = (low.iloc[1], high.iloc[1], low.iloc[0], high.iloc[0])  # x0 > x1, y0 > y1: any corner first
        found = stored.plotted.subjects_in(plot, bounds, stored.plotted.subject_mask(ids))
        inside = shown[shown[x].between(low.iloc[0], low.iloc[1]) & shown[y].between(high.iloc[0], high.iloc[1])]
        assert len(found) and found.tolist() == sorted(inside.subject_id.unique())


def test_a_real_projects_columns_written_part_by_part(data_dir, tmp_path):
    # Penguin Watch, points in small parts: no size or IoU (no size-IoU grid), offsets from the point consensus.
    path = data_dir / "penguin_watch/penguin-watch-classifications-trim.csv"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    in_memory = load_project([path], method="point", workflow_id=6465)
    stored = StoredProject(write_export_store(path, tmp_path / "store", method="point", part_rows=50, workflow_id=6465))
    assert len(stored.store.parts("marks")) > 2
    ids = in_memory.subject_stats.subject_id.to_numpy()
    whole = stored.plotted.view(stored.plotted.subject_mask())
    assert whole.grids["iou_size"] is None and whole.grids["offsets"].marks > 100
    for subject_ids in (ids, ids[::3]):
        assert_view_as_pandas_and_datashader(stored.plotted, in_memory.marks, subject_ids)
    # Written again from the store alone: the same columns.
    again = write_plotted_columns(stored.store.folder)
    assert again.n_marks == stored.plotted.n_marks and np.array_equal(again.starts, stored.plotted.starts)


def test_a_view_starts_from_a_kept_binning_of_the_same_frame(demo_files, tmp_path, monkeypatch):
    # The store keeps every subject's binning (written with it); a process opening it bins a view of the same ranges
    # as that binning minus the subjects left out, then the next view from the closest kept one: the same grids as
    # one pass over the shown marks, and as datashader's.
    monkeypatch.setattr(plotted_module, "BLOCK_MARKS", 13)
    in_memory, stored = _demo(demo_files, tmp_path)
    assert (stored.store.folder / plotted_module.PLOTTED_FOLDER / plotted_module.WHOLE_FILE).is_file()
    plotted = PlottedMarks(stored.store.folder)
    plotted._buckets = None  # the kept binnings alone (the buckets: the next test)
    binned = []
    original = PlottedMarks._binned

    def counted(self, mask, frame):
        binned.append(int(self._marks_per_subject[mask].sum()))
        return original(self, mask, frame)

    monkeypatch.setattr(PlottedMarks, "_binned", counted)
    ranges = {plot: (grid.x_range, grid.y_range) for plot, grid in plotted.view(plotted.subject_mask()).grids.items()}
    assert binned == [0, 0]  # every subject: the stored binning, nothing added or dropped
    ids = in_memory.subject_stats.subject_id.to_numpy()
    marks = in_memory.marks
    matched = marks[marks.consensus_id >= 0]
    rng = np.random.default_rng(3)
    previous = ids
    for shown in (ids[10:], np.sort(rng.choice(ids, len(ids) - 15, replace=False)), ids[::2]):
        binned.clear()
        view = plotted.view(plotted.subject_mask(shown), shape=DENSITY_SHAPE, ranges=ranges)
        # What was binned: the subjects changed from the closest kept binning (every subject's, or the last view's),
        # or the shown subjects when they have fewer marks.
        closest = min(int(marks.subject_id.isin(np.setxor1d(shown, kept)).sum()) for kept in (ids, previous))
        assert 0 < sum(binned) == min(closest, int(marks.subject_id.isin(shown).sum()))
        direct = PlottedMarks(stored.store.folder)
        direct._kept, direct._whole = plotted_module.RecentlyUsed(0), []  # keeps nothing: one pass over the shown marks
        expected = direct.view(direct.subject_mask(shown), shape=DENSITY_SHAPE, ranges=ranges)
        assert (view.n_marks, view.n_matched, view.n_sized) == (expected.n_marks, expected.n_matched, expected.n_sized)
        for plot, (x, y) in PLOTS.items():
            np.testing.assert_array_equal(view.grids[plot].counts, expected.grids[plot].counts)
            assert view.grids[plot].marks == expected.grids[plot].marks
            canvas = datashader.Canvas(plot_width=DENSITY_SHAPE[0], plot_height=DENSITY_SHAPE[1], x_range=ranges[plot][0],
                                       y_range=ranges[plot][1])
            np.testing.assert_array_equal(view.grids[plot].counts,
                                          canvas.points(matched[matched.subject_id.isin(shown)], x, y).to_numpy())
        previous = shown
    # A tool filter: the store's binning of every subject's marks of that tool, minus the subjects left out.
    tool = in_memory.tools[0]
    of_tool = matched[matched.tool_label == tool]
    assert 0 < len(of_tool) < len(matched)
    for shown in (ids, ids[5:]):
        binned.clear()
        view = plotted.view(plotted.subject_mask(shown), tool, shape=DENSITY_SHAPE, ranges=ranges)
        assert sum(binned) == (0 if len(shown) == len(ids) else int(marks.subject_id.isin(ids[:5]).sum()))
        for plot, (x, y) in PLOTS.items():
            canvas = datashader.Canvas(plot_width=DENSITY_SHAPE[0], plot_height=DENSITY_SHAPE[1],
                                       x_range=ranges[plot][0], y_range=ranges[plot][1])
            np.testing.assert_array_equal(view.grids[plot].counts,
                                          canvas.points(of_tool[of_tool.subject_id.isin(shown)], x, y).to_numpy())


def test_a_subject_mask_is_the_same_through_the_table_of_ids_and_their_hash(demo_files, tmp_path, monkeypatch):
    _, stored = _demo(demo_files, tmp_path)
    plotted = stored.plotted
    ids = plotted.subject_ids
    rng = np.random.default_rng(7)
    asked = np.concatenate([rng.choice(ids, len(ids) // 2, replace=False), [ids.min() - 1, ids.max() + 5, -3]])
    assert plotted._id_span is not None  # the demo's ids lie close together
    through_table = plotted.subject_mask(asked)
    monkeypatch.setattr(plotted_module, "ID_SPAN_PER_SUBJECT", 0)
    hashed = PlottedMarks(stored.store.folder)
    assert hashed._id_span is None
    np.testing.assert_array_equal(through_table, hashed.subject_mask(asked))
    np.testing.assert_array_equal(through_table, np.isin(ids, asked))
    # Rows of ids the same way: -1 for an id not in the store.
    expected = [int(np.flatnonzero(ids == subject)[0]) if subject in ids else -1 for subject in asked]
    assert plotted.rows_of(asked).tolist() == hashed.rows_of(asked).tolist() == expected


@pytest.mark.parametrize("max_buckets", [plotted_module.MAX_BUCKETS, 3])
def test_a_view_starts_from_the_buckets_of_volunteers_per_subject(demo_files, tmp_path, monkeypatch, max_buckets):
    # The store keeps every subject's binning split by volunteers per subject: a minimum volunteers filter in the whole
    # ranges is a sum of whole buckets (no mark binned when each bucket is one value), any other mask the closest sum
    # plus or minus the subjects it changes: the same grids and counts as one pass, and as datashader's.
    monkeypatch.setattr(plotted_module, "BLOCK_MARKS", 17)
    in_memory, stored = _demo(demo_files, tmp_path)
    if max_buckets != plotted_module.MAX_BUCKETS:  # buckets of several values each: written again
        monkeypatch.setattr(plotted_module, "MAX_BUCKETS", max_buckets)
        write_density_grids(stored.store.folder)
    assert (stored.store.folder / plotted_module.PLOTTED_FOLDER / plotted_module.BUCKETS_FILE).is_file()
    stats = in_memory.subject_stats
    marks = in_memory.marks
    matched = marks[marks.consensus_id >= 0]
    ids = stats.subject_id.to_numpy()
    binned = []
    original = PlottedMarks._binned

    def counted(self, mask, frame, *split):
        binned.append(int(self._marks_per_subject[mask].sum()))
        return original(self, mask, frame, *split)

    monkeypatch.setattr(PlottedMarks, "_binned", counted)
    plotted = PlottedMarks(stored.store.folder)
    plotted._kept, plotted._whole = plotted_module.RecentlyUsed(0), []  # no kept binning: the buckets alone
    whole = plotted.view(plotted.subject_mask(), shape=DENSITY_SHAPE)
    ranges = {plot: (grid.x_range, grid.y_range) for plot, grid in whole.grids.items()}
    volunteers = np.sort(stats.n_volunteers.unique())
    rng = np.random.default_rng(11)
    for shown in (*(ids[stats.n_volunteers >= value] for value in volunteers[1:4]),
                  np.sort(rng.choice(ids, len(ids) // 2, replace=False)), ids[stats.n_volunteers == volunteers[-1]]):
        binned.clear()
        view = plotted.view(plotted.subject_mask(shown), shape=DENSITY_SHAPE, ranges=ranges)
        if max_buckets > len(volunteers) and len(shown) < len(ids) and \
                np.isin(ids[stats.n_volunteers >= stats.n_volunteers[np.isin(ids, shown)].min()], shown).all():
            assert sum(binned) == 0  # a threshold: whole buckets
        direct = PlottedMarks(stored.store.folder)
        direct._kept, direct._whole, direct._buckets = plotted_module.RecentlyUsed(0), [], None  # one pass each
        expected = direct.view(direct.subject_mask(shown), shape=DENSITY_SHAPE, ranges=ranges)
        assert (view.n_marks, view.n_matched, view.n_sized) == (expected.n_marks, expected.n_matched, expected.n_sized)
        for plot, (x, y) in PLOTS.items():
            np.testing.assert_array_equal(view.grids[plot].counts, expected.grids[plot].counts)
            assert view.grids[plot].marks == expected.grids[plot].marks
            canvas = datashader.Canvas(plot_width=DENSITY_SHAPE[0], plot_height=DENSITY_SHAPE[1],
                                       x_range=ranges[plot][0], y_range=ranges[plot][1])
            np.testing.assert_array_equal(view.grids[plot].counts,
                                          canvas.points(matched[matched.subject_id.isin(shown)], x, y).to_numpy())
