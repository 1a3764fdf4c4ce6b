"""Exports: the right rows, formula cells neutralised, provenance that survives every format."""

from __future__ import annotations

import hashlib
import io
import json

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from astropy.io.votable import parse
from astropy.table import Table

from dashboard.data_store import DataStore, load_project
from dashboard.export import consensus_catalogue, neutralise_formulas
from dashboard.views import ExportView

FORMULA = '=HYPERLINK("http://x","y")'


def test_formula_cells_get_a_leading_quote_and_nothing_else_changes():
    table = pd.DataFrame({"user": [FORMULA, "+SUM(A1)", "-2", "@cmd", "\tx", "plain", "a=b", None],
                          "n": [1, 2, 3, 4, 5, 6, 7, 8], "x": [-1.5] * 8})
    safe = neutralise_formulas(table)
    assert safe.user.tolist()[:7] == ["'" + FORMULA, "'+SUM(A1)", "'-2", "'@cmd", "'\tx", "plain", "a=b"]
    assert pd.isna(safe.user.iloc[7])
    assert safe.n.tolist() == table.n.tolist() and (safe.x == -1.5).all()
    assert table.user.iloc[0] == FORMULA  # the input is not modified


def test_consensus_catalogue_rows_and_columns(tiny_project):
    catalogue = consensus_catalogue(tiny_project, [1, 2], min_votes=0).set_index("consensus_id")
    assert sorted(catalogue.index) == [10, 11, 20]
    assert catalogue.loc[10, "x_centre"] == 20 and catalogue.loc[10, "y_centre"] == 20
    assert catalogue.loc[10, "vote_fraction"] == pytest.approx(2 / 3)
    assert catalogue.loc[20, "subject_ra"] == 200.0
    assert sorted(consensus_catalogue(tiny_project, [1], min_votes=2).consensus_id) == [10]


@pytest.fixture
def export_view(tiny_project):
    store = DataStore(project=tiny_project)
    store.min_volunteers = 3  # subject 1 only
    return ExportView(data_store=store)


def test_csv_is_ecsv_with_provenance_and_reads_in_pandas(export_view):
    content = export_view.export("consensus")
    table = Table.read(io.BytesIO(content), format="ascii.ecsv")
    assert sorted(table["consensus_id"]) == [10, 11]
    record = table.meta["zoolens_provenance"]
    assert record["filters"]["min_volunteers"] == 3 and record["subjects"] == 1
    assert record["consensus_sources"] == ["hand-made"] and record["table"] == "consensus"
    assert record["zoolens_version"] and record["created"].endswith("Z")
    frame = pd.read_csv(io.BytesIO(content), comment="#")
    assert sorted(frame.consensus_id) == [10, 11]


def test_fits_and_votable_carry_the_same_rows_and_provenance(export_view):
    export_view.format = "fits"
    with fits.open(io.BytesIO(export_view.export("consensus"))) as hdus:
        assert sorted(hdus[1].data["consensus_id"]) == [10, 11]
        comments = [str(card) for card in hdus[1].header["COMMENT"]]
    record = json.loads("".join(comments[1:]))
    assert record["filters"]["min_volunteers"] == 3
    export_view.format = "votable"
    votable = parse(io.BytesIO(export_view.export("consensus")))
    assert sorted(votable.get_first_table().array["consensus_id"]) == [10, 11]
    info = next(info for info in votable.resources[0].infos if info.name == "zoolens_provenance")
    assert json.loads(info.value)["table"] == "consensus"


def test_marks_export_neutralises_volunteer_formulas(tiny_tables, tmp_path):
    from tests.dashboard import tiny

    for name in ("classifications", "marks"):
        tiny_tables[name]["user"] = tiny_tables[name]["user"].replace({"bob": FORMULA})
    view = ExportView(data_store=DataStore(project=tiny.tiny_project(tmp_path / "root", tiny_tables)))
    frame = pd.read_csv(io.BytesIO(view.export("marks")), comment="#")
    assert sorted(frame.mark_id) == [1, 2, 3, 4, 5]
    assert set(frame.user) == {"alice", "'" + FORMULA}
    with pytest.raises(ValueError, match="consensus or marks"):
        view.export("everything")


def test_sources_are_recorded_with_their_hash(demo_export):
    project = load_project([demo_export], workflow_id=9001, workflow_version="13.10")
    view = ExportView(data_store=DataStore(project=project))
    record = Table.read(io.BytesIO(view.export("marks")), format="ascii.ecsv").meta["zoolens_provenance"]
    (source,) = record["sources"]
    assert source["path"] == str(demo_export) and source["rows_loaded"] == 912
    assert source["sha256"] == hashlib.sha256(demo_export.read_bytes()).hexdigest()


def test_box_centres_get_sky_positions_from_the_subjects_wcs(demo_export):
    """The demo's FITS files have a TAN WCS centred on the subject's ra, dec (0.396 arcsec/px)."""
    from zoolens import demo

    files = demo.DemoFiles(demo_export.parent)
    project = load_project([files.classifications, files.subjects], workflow_id=9001, workflow_version="13.10",
                           method="iou")
    catalogue = consensus_catalogue(project, project.subject_stats.subject_id)
    assert len(catalogue) > 50 and catalogue.ra.notna().all()
    # A box centred at pixel (100, 100), the image centre, would sit exactly at the subject's
    # ra, dec; every box lies within the 200 x 200 image, so within 100 * 0.396 arcsec of it.
    offset_arcsec = 3600 * np.hypot((catalogue.ra - catalogue.subject_ra) * np.cos(np.radians(catalogue.subject_dec)),
                                    catalogue.dec - catalogue.subject_dec)
    centre_offset_px = np.hypot(catalogue.x_centre - 100, catalogue.y_centre - 100)
    np.testing.assert_allclose(offset_arcsec, 0.396 * centre_offset_px, rtol=1e-3, atol=1e-3)
    # North is up: a box above the centre (smaller y) has a larger declination.
    above = catalogue.y_centre < 100
    assert ((catalogue.dec > catalogue.subject_dec) == above).all()
