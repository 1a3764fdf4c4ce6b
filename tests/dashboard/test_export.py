"""The dashboard's export: the selection's rows, written by data_loaders.writers with provenance."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from astropy.io.votable import parse
from astropy.table import Table

from dashboard.data_store import DataStore
from project import load_project
from project.export import export_selection, selection_tables
from dashboard.views import ExportView

FORMULA = '=HYPERLINK("http://x","y")'


@pytest.fixture
def export_view(tiny_project):
    store = DataStore(project=tiny_project)
    store.min_volunteers = 3  # subject 1 only
    return ExportView(data_store=store)


def test_selection_tables_hold_the_selected_subjects(tiny_project):
    tables = selection_tables(tiny_project, [1, 2])
    assert sorted(tables["consensus"].consensus_id) == [10, 11, 20]
    assert sorted(tables["subjects"].subject_id) == [1, 2] and "marks" not in tables
    assert sorted(selection_tables(tiny_project, [1], min_votes=2)["consensus"].consensus_id) == [10]
    with_marks = selection_tables(tiny_project, [2], include_marks=True)
    assert sorted(with_marks["marks"].mark_id) == [4, 5] and sorted(with_marks["links"].mark_id) == [4, 5]


def test_csv_comes_zipped_with_its_provenance(export_view):
    name, content = export_view.export()
    assert name == "zoolens-selection.zip"
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        assert sorted(archive.namelist()) == ["zoolens-selection.csv", "zoolens-selection.provenance.json"]
        frame = pd.read_csv(archive.open("zoolens-selection.csv"))
        record = json.loads(archive.read("zoolens-selection.provenance.json"))
    assert sorted(frame.consensus_id) == [10, 11]
    assert record["filters"]["min_volunteers"] == 3 and record["filters"]["plot_selection_subjects"] is None


def test_ecsv_fits_and_votable_carry_the_rows_and_provenance(export_view):
    export_view.format = "ecsv"
    name, content = export_view.export()
    table = Table.read(io.BytesIO(content), format="ascii.ecsv")
    assert name == "zoolens-selection.ecsv" and sorted(table["consensus_id"]) == [10, 11]
    assert table.meta["zoolens_provenance"]["filters"]["min_volunteers"] == 3
    export_view.format = "fits"
    with fits.open(io.BytesIO(export_view.export()[1])) as hdus:
        assert sorted(hdus["CONSENSUS"].data["consensus_id"]) == [10, 11]
        record = json.loads(hdus["PROVENANCE"].data["JSON"][0])
    assert record["filters"]["workflow"] == "any"
    export_view.format = "votable"
    votable = parse(io.BytesIO(export_view.export()[1]))
    assert sorted(votable.get_first_table().array["consensus_id"]) == [10, 11]


def test_raw_marks_with_volunteer_formulas_are_neutralised(tiny_tables, tmp_path):
    from tests.dashboard import tiny

    for name in ("classifications", "marks"):
        tiny_tables[name]["user"] = tiny_tables[name]["user"].replace({"bob": FORMULA})
    view = ExportView(data_store=DataStore(project=tiny.tiny_project(tmp_path / "root", tiny_tables)),
                      include_marks=True)
    with zipfile.ZipFile(io.BytesIO(view.export()[1])) as archive:
        marks = pd.read_csv(archive.open("zoolens-selection.marks.csv"))
    assert sorted(marks.mark_id) == [1, 2, 3, 4, 5]
    assert set(marks.user) == {"alice", "'" + FORMULA}
    with pytest.raises(ValueError, match="votable"):
        export_selection(view.data_store.project, [1], "xlsx", {})


def test_sources_hashes_and_sky_positions_from_the_demo(demo_export):
    """The demo's FITS files have a TAN WCS centred on the subject's ra, dec (0.396 arcsec/px, north up)."""
    from zoolens import demo

    files = demo.DemoFiles(demo_export.parent)
    project = load_project([files.classifications, files.subjects], method="iou", **demo.PROJECT_OPTIONS)
    view = ExportView(data_store=DataStore(project=project), format="ecsv")
    table = Table.read(io.BytesIO(view.export()[1]), format="ascii.ecsv")
    sources = {source["name"]: source["sha256"] for source in table.meta["zoolens_provenance"]["sources"]}
    assert sources["demo-classifications.csv"] == hashlib.sha256(files.classifications.read_bytes()).hexdigest()
    catalogue = table.to_pandas().merge(project.subjects[["subject_id", "ra", "dec"]], on="subject_id",
                                        suffixes=("", "_subject"))
    assert len(catalogue) > 50 and catalogue.ra.notna().all()
    # A box centred on pixel (100, 100), the image centre, would sit at the subject's ra, dec.
    offset_arcsec = 3600 * np.hypot((catalogue.ra - catalogue.ra_subject) * np.cos(np.radians(catalogue.dec_subject)),
                                    catalogue.dec - catalogue.dec_subject)
    centre_offset_px = np.hypot(catalogue.x_center - 100, catalogue.y_center - 100)
    np.testing.assert_allclose(offset_arcsec, 0.396 * centre_offset_px, rtol=1e-3, atol=1e-3)
    assert ((catalogue.dec > catalogue.dec_subject) == (catalogue.y_center < 100)).all()


@pytest.mark.server
def test_a_served_export_runs_on_the_sessions_worker_thread_and_downloads_the_selection(tiny_project, monkeypatch):
    """By default the export's work (the tables, the writer, the zip) is done on a worker thread, so the other
    sessions' answers do not wait for it (the server's event loop only sends the file); the file is the selection's."""
    import base64
    import threading

    from tests.bokeh_protocol import Client, run_apart
    from tests.dashboard.serving import served

    ran_on = []
    export = ExportView.export

    def recording(self):
        ran_on.append(threading.current_thread().name)
        return export(self)

    monkeypatch.setattr(ExportView, "export", recording)
    with served(tiny_project, "test-export-threads") as url:
        async def download():
            client = Client(url, 0)
            await client.open()
            await client.export()
            await client.close()
            return client

        client = run_apart(download())
    assert client.errors == [] and len(ran_on) == 1 and ran_on[0].startswith("zoolens-session")
    sent = [event["new"] for patch in client.patches for event in json.loads(patch)["events"]
            if event.get("model", {}).get("id") == client.export_button and event.get("attr") == "data"]
    content = base64.b64decode(sent[-1].partition("base64,")[2])
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        frame = pd.read_csv(archive.open("zoolens-selection.csv"))
    assert sorted(frame.consensus_id) == sorted(tiny_project.consensus.consensus_id)  # every subject passes
