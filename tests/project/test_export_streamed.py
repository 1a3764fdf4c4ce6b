"""A catalogue streamed one range of subjects at a time (`project.export.write_catalogue_streamed`) is the catalogue
written whole: the same CSV, byte for byte, and the same provenance."""

from __future__ import annotations

import json

import pytest

from project import load_project
from project.export import prepare_catalogue, write_catalogue, write_catalogue_streamed
from project.selection import Selection
from project.stored import StoredProject, write_export_store, write_project_store
from data_loaders.writers import write
from tests.zoolens.test_demo import demo_files  # noqa: F401  (fixture: the demo files)
from zoolens import demo


def assert_streamed_as_whole(project, tmp_path, selection=None, **options) -> None:
    selection = selection or Selection(project=project)
    whole = write(prepare_catalogue(project, selection, **options), tmp_path / "whole.csv", overwrite=True)
    for boxes_per_range in (7, 1_000_000):
        streamed, export = write_catalogue_streamed(project, selection, tmp_path / f"streamed-{boxes_per_range}.csv",
                                                    boxes_per_range=boxes_per_range, overwrite=True, **options)
        assert streamed[0].read_bytes() == whole[0].read_bytes()
        provenance = [json.loads(files[1].read_text()) for files in (whole, streamed)]
        for record in provenance:
            record.pop("created_utc")
            record.pop("files")
        assert provenance[0] == provenance[1]
        assert list(export.consensus.columns) == [column["name"] for column in provenance[0]["columns"]["consensus"]]
        assert export.provenance["rows"] == provenance[1]["rows"]


def test_the_demo_streamed_equals_the_demo_written_whole(demo_files, tmp_path):
    # The demo's boxes have RA/Dec (its subjects' positions and pixel scale): sky counts added up over the ranges.
    project = load_project([demo_files.classifications, demo_files.subjects, demo_files.workflows],
                           **demo.PROJECT_OPTIONS)
    assert_streamed_as_whole(project, tmp_path)
    selection = Selection(project=project, min_votes=3, min_volunteers=5)
    assert 0 < len(selection.subject_ids()) < len(project.subject_stats)
    assert_streamed_as_whole(project, tmp_path, selection)
    stored = StoredProject(write_project_store(project, tmp_path / "store", part_rows=300))
    assert_streamed_as_whole(stored, tmp_path)
    # A store-backed project's CSV catalogue is streamed by write_catalogue itself.
    files, export = write_catalogue(stored, Selection(project=stored), tmp_path / "by-write.csv")
    assert files[0].read_bytes() == (tmp_path / "whole.csv").read_bytes() and not len(export.consensus)


def test_a_real_project_streamed_from_its_store_equals_it_written_whole(data_dir, tmp_path):
    path = data_dir / "penguin_watch/penguin-watch-classifications-trim.csv"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    stored = StoredProject(write_export_store(path, tmp_path / "store", method="point", part_rows=50, workflow_id=6465))
    assert len(stored.consensus) > 20
    assert_streamed_as_whole(stored, tmp_path)
