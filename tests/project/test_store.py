"""The partitioned project store: the loader's tables and report, part by part, by subject."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from consensus import aggregate
from data_loaders import read_classifications
from consensus.simulate import simulate_project
from project.store import ProjectStore, store_tables, write_store
from tests.zoolens.test_demo import demo_files  # noqa: F401  (fixture: the demo files)
from zoolens import demo

ROOT = Path(__file__).resolve().parents[2]
PENGUINS = ROOT / "tests" / "data" / "penguin_watch" / "penguin-watch-classifications-trim.csv"
KEYS = {"classifications": ["subject_id", "created_at", "classification_id"], "marks": ["subject_id", "mark_id"]}


def exports(demo_files):
    return [(demo_files.classifications, {"workflow_id": demo.WORKFLOW_ID, "workflow_version": demo.WORKFLOW_VERSION}),
            (PENGUINS, {"workflow_id": 6465})]


@pytest.mark.parametrize("which", [0, 1])
def test_the_store_holds_the_loaders_tables_and_report_in_parts_by_subject(demo_files, tmp_path, which):
    path, options = exports(demo_files)[which]
    # Small parts: many of them, as a large export makes.
    store = write_store(path, tmp_path / "store", part_rows=300, **options)
    loaded = read_classifications(path, use_cache=False, **options)
    assert len(store.parts("marks")) > 3
    for name, keys in KEYS.items():
        expected = getattr(loaded, name).sort_values(keys, ignore_index=True)
        pd.testing.assert_frame_equal(store.table(name).sort_values(keys, ignore_index=True), expected)
    assert store.report.to_dict() == loaded.report.to_dict()
    # Parts follow each other by subject: no subject in two parts, so Dask knows the divisions.
    last = -1
    for part in store.parts("marks"):
        ids = pd.read_parquet(part, columns=["subject_id"]).subject_id
        assert ids.is_monotonic_increasing and ids.iloc[0] > last
        last = ids.iloc[-1]
    assert store.dask("marks").known_divisions
    # One subject's rows come from its part alone.
    for subject_id in loaded.marks.subject_id.unique()[:5]:
        expected = loaded.marks[loaded.marks.subject_id == subject_id].sort_values("mark_id", ignore_index=True)
        pd.testing.assert_frame_equal(store.of_subject("marks", subject_id), expected)
    assert ProjectStore(tmp_path / "store").report.rows_loaded == loaded.report.rows_loaded


def test_consensus_from_the_stores_dask_tables_equals_the_in_memory_one(demo_files, tmp_path):
    path, options = exports(demo_files)[0]
    store = write_store(path, tmp_path / "store", part_rows=300, **options)
    loaded = read_classifications(path, use_cache=False, **options)
    expected = aggregate(loaded.marks, loaded.classifications, method="iou")
    on_dask = aggregate(store.dask("marks"), store.dask("classifications"), method="iou")
    consensus = on_dask.consensus.compute().sort_values(["subject_id", "consensus_id"], ignore_index=True)
    pd.testing.assert_frame_equal(consensus, expected.consensus.sort_values(["subject_id", "consensus_id"],
                                                                            ignore_index=True))


def test_a_stray_quote_reads_again_without_doubling_rows(tmp_path):
    # The quote-counting split gives way to pyarrow's reader: the store starts its spill again.
    lines = PENGUINS.read_text().splitlines(keepends=True)
    broken = tmp_path / "broken.csv"
    broken.write_text("".join([lines[0], lines[1].replace(",", ',"', 1), *lines[2:]]))
    loaded = read_classifications(broken, use_cache=False, workflow_id=6465)
    store = write_store(broken, tmp_path / "store", part_rows=300, workflow_id=6465)
    assert len(store.table("classifications")) == len(loaded.classifications)
    assert store.report.to_dict() == loaded.report.to_dict()


def test_not_a_store(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a zoolens project store"):
        ProjectStore(tmp_path)


def test_tables_made_piece_by_piece_are_stored_as_one_project(tmp_path):
    # Three simulated pieces, each a range of subjects after the one before, as the scale bench makes them.
    pieces = [simulate_project(40, seed=seed, first_subject_id=1000 * (seed + 1), first_classification_id=10**6 * (seed + 1))
              for seed in range(3)]
    tables = [(piece.classifications, piece.marks.drop(columns=["truth_id", "double"]).assign(
        mark_id=lambda marks, offset=10**6 * n: marks.mark_id + offset)) for n, piece in enumerate(pieces)]
    store = store_tables(iter(tables), tmp_path / "store")
    assert len(store.parts("marks")) == 3 and store.dask("marks").known_divisions
    for position, (name, keys) in enumerate(KEYS.items()):
        expected = pd.concat([piece[position] for piece in tables]).sort_values(keys, ignore_index=True)
        pd.testing.assert_frame_equal(store.table(name), expected)
    assert store.report.counts["volunteers"] == len(set().union(*(set(piece.classifications.user) for piece in pieces)))
    subject = int(pieces[1].marks.subject_id.iloc[0])
    assert len(store.of_subject("marks", subject)) == int((pieces[1].marks.subject_id == subject).sum())
    # Pieces out of subject order would break the divisions: refused, naming the part.
    with pytest.raises(ValueError, match="part 1 of the tables starts at subject 1000"):
        store_tables(iter([tables[1], tables[0]]), tmp_path / "wrong")


def test_the_store_keeps_the_marks_vertices_and_circle_handles_by_subject(data_dir, tmp_path):
    path = data_dir / "handmade" / "vertex_tools_classifications.csv"
    store = write_store(path, tmp_path / "store", part_rows=10)
    loaded = read_classifications(path, use_cache=False)
    assert len(store.parts("mark_vertices")) == len(store.parts("marks")) > 1
    for name, keys in (("mark_vertices", ["mark_id", "vertex"]), ("circle_handles", ["mark_id"])):
        expected = loaded.tables[name]
        assert len(expected) or name == "circle_handles"
        stored = store.table(name)
        subject_of_mark = loaded.marks.set_index("mark_id").subject_id
        assert (stored.subject_id.to_numpy() == subject_of_mark.reindex(stored.mark_id).to_numpy()).all()
        pd.testing.assert_frame_equal(stored.drop(columns=["subject_id"]).sort_values(keys, ignore_index=True),
                                      expected.sort_values(keys, ignore_index=True))
