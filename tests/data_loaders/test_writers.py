"""Tests for data_loaders.writers and data_loaders.celestial: catalogue files, sky positions, provenance."""

from __future__ import annotations

import codecs
import hashlib
import io
import json
import math
import zipfile
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.io.votable import parse
from astropy.table import Table
from astropy.wcs import WCS

from data_loaders import FormatError
from data_loaders.celestial import box_sky_positions, tangent_plane_sky, wcs_sky
from data_loaders.schema import conform, empty_table
from data_loaders.writers import Export, export_bytes, neutralise_formulas, prepare_export, to_safe_csv, write
from zoolens import __version__

SOURCE = json.dumps({"method": "iou", "min_iou": 0.3, "min_votes": 2, "zoolens": "0.1.0"}, sort_keys=True)

#: Volunteer names and labels the public could write; the first six start like formulas.
HOSTILE = [
    '=HYPERLINK("http://evil.example","click")',
    "+SUM(A1:A9)",
    "-2+3",
    "@cmd|' /C calc'!A0",
    "\tTabbed",
    "\rCarriage",
    "<script>alert(1)</script>",
    "Zoë 🌟 \\ back",
    "ctrl\x01char",
    "not-logged-in-3d81a08741b8039e12a3",
]
FORMULA_LEADING = HOSTILE[:6]


@pytest.fixture
def consensus() -> pd.DataFrame:
    """Five boxes on three subjects, with producer columns, a hostile label and negative numbers."""
    table = pd.DataFrame({
        "subject_id": [101, 101, 102, 103, 103],
        "consensus_id": [1010, 1011, 1020, 1030, 1031],
        "x": [45.0, -3.5, 10.25, 0.0, 80.0],
        "y": [25.0, 4.0, 50.0, 0.0, 20.0],
        "width": [10.0, 8.0, 4.5, 6.0, 12.0],
        "height": [10.0, 8.0, 4.5, 6.0, 12.0],
        "angle": [0.0, 0.0, 30.0, 0.0, -15.0],
        "n_votes": [7, 3, 5, 2, 4],
        "n_seen": [9, 9, 6, 5, 5],
        "source": [SOURCE] * 4 + ["shape_reducer_dbscan (panoptes_aggregation 4.1.0; eps=5)"],
        "risk": [-0.25, 0.5, np.nan, 0.125, 1e-17],
        "label": ["=1+2", "clump", None, "-odd", "@home"],
    })
    return conform(table, "consensus")


@pytest.fixture
def marks() -> pd.DataFrame:
    users = HOSTILE
    table = pd.DataFrame({
        "mark_id": np.arange(1, 11, dtype=np.int64),
        "classification_id": np.arange(501, 511, dtype=np.int64),
        "subject_id": [101] * 4 + [102] * 3 + [103] * 3,
        "user": users,
        "task": ["T0"] * 10,
        "tool": [0] * 10,
        "tool_label": ["+Clump", "Clump"] * 5,
        "frame": [0] * 10,
        "x": np.linspace(-5.0, 80.0, 10),
        "y": np.linspace(0.0, 50.0, 10),
        "width": [8.0] * 10,
        "height": [8.0] * 10,
        "angle": [0.0] * 10,
        "kind": ["rectangle"] * 10,
    })
    return conform(table, "marks")


@pytest.fixture
def links() -> pd.DataFrame:
    # Mark 10 is not in the links at all (the aggregation never saw it); mark 9 matched nothing.
    return conform(pd.DataFrame({
        "mark_id": np.arange(1, 10, dtype=np.int64),
        "consensus_id": [1010, 1010, 1011, -1, 1020, 1020, 1020, 1030, -1],
        "iou": [0.8, 0.7, 0.9, np.nan, 0.6, 0.5, 0.75, 0.95, np.nan],
    }), "links")


@pytest.fixture
def export_file(tmp_path):
    path = tmp_path / "inputs" / "classifications.csv"
    path.parent.mkdir()
    path.write_bytes(b"classification_id,user_name\n1,=cmd\n" + bytes(range(256)))
    return path


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tan_wcs(crval, crpix, degrees_per_pixel, shape=None, frame=("RA---TAN", "DEC--TAN")) -> WCS:
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = list(frame)
    wcs.wcs.crval = list(crval)
    wcs.wcs.crpix = list(crpix)
    wcs.wcs.cdelt = [-degrees_per_pixel, degrees_per_pixel]
    if frame[0].startswith("RA"):
        wcs.wcs.radesys = "ICRS"
    if shape is not None:
        wcs.pixel_shape = shape
    return wcs


# --------------------------------------------------------------------------- formula neutralisation


def test_neutralise_formulas_quotes_text_and_leaves_numbers():
    table = pd.DataFrame({
        "name": pd.array(["=1+1", "+1", "-1", "@a", "\tb", "\rc", "a=b", " =x", None], dtype="string"),
        "count": [-1, -2, 3, 4, 5, 6, 7, 8, 9],
        "value": [-1.5, np.nan, 0.0, -0.0, 1e300, -1e-300, 2.0, 3.0, 4.0],
        "=evil": ["x"] * 9,
    })
    safe = neutralise_formulas(table)
    assert list(safe.columns) == ["name", "count", "value", "'=evil"]
    assert safe["name"].tolist()[:8] == ["'=1+1", "'+1", "'-1", "'@a", "'\tb", "'\rc", "a=b", " =x"]
    assert pd.isna(safe["name"].iloc[8])
    assert safe["count"].tolist() == [-1, -2, 3, 4, 5, 6, 7, 8, 9]
    assert safe["count"].dtype == np.int64
    np.testing.assert_array_equal(safe["value"].to_numpy(), table["value"].to_numpy())


def test_timestamps_are_written_as_iso_utc_text(tmp_path, consensus):
    consensus["reviewed_at"] = pd.to_datetime(["2024-03-01T12:00:00+01:00", None, "2024-03-02T00:00:00.5Z",
                                               "2024-03-03T00:00:00Z", "2024-03-04T00:00:00Z"], utc=True, format="ISO8601")
    write(consensus, tmp_path / "cat.csv")
    write(consensus, tmp_path / "cat.fits")
    expected = ["2024-03-01T11:00:00.000000Z", "", "2024-03-02T00:00:00.500000Z", "2024-03-03T00:00:00.000000Z",
                "2024-03-04T00:00:00.000000Z"]  # "": missing
    assert pd.read_csv(tmp_path / "cat.csv")["reviewed_at"].fillna("").tolist() == expected
    column = Table.read(tmp_path / "cat.fits", hdu="CONSENSUS")["reviewed_at"]
    assert [("" if masked else value) for value, masked in zip(column.astype(str), column.mask)] == expected


def test_to_safe_csv_keeps_one_row_per_record_whatever_the_names_hold():
    table = pd.DataFrame({"user": HOSTILE, "n": range(len(HOSTILE))})
    buffer = io.StringIO()
    assert to_safe_csv(table, buffer) == len(FORMULA_LEADING)
    back = pd.read_csv(io.StringIO(buffer.getvalue()), keep_default_na=False)
    assert back["n"].tolist() == list(range(len(HOSTILE)))
    assert back["user"].tolist() == ["'" + name if name in FORMULA_LEADING else name for name in HOSTILE]
    # What to_safe_csv guards against: with LF line ends pandas leaves a bare CR unquoted.
    unquoted = io.StringIO()
    table.to_csv(unquoted, index=False, lineterminator="\n")
    assert "\n\rCarriage,5\n" in unquoted.getvalue()


def test_neutralise_formulas_turns_objects_into_json_text_first():
    table = pd.DataFrame({"meta": [{"a": 1}, ["=x"], "=y", 5]})
    safe = neutralise_formulas(table)
    assert safe["meta"].tolist() == ['{"a": 1}', '["=x"]', "'=y", "5"]


# --------------------------------------------------------------------------- CSV


def test_csv_round_trip_with_marks_and_hostile_text(tmp_path, consensus, marks, links, export_file):
    files = write({"consensus": consensus, "marks": marks, "links": links}, tmp_path / "cat.csv",
                  include_marks=True, sources={"classifications": export_file}, filters={"min_votes": 2})
    assert [file.name for file in files] == ["cat.csv", "cat.marks.csv", "cat.provenance.json"]

    for back in (pd.read_csv(tmp_path / "cat.csv"), Table.read(tmp_path / "cat.csv", format="ascii.csv").to_pandas()):
        assert back["subject_id"].tolist() == [101, 101, 102, 103, 103]
        assert back["consensus_id"].tolist() == [1010, 1011, 1020, 1030, 1031]
        # Negative numbers stay numbers, every digit kept.
        assert back["x"].tolist() == [45.0, -3.5, 10.25, 0.0, 80.0]
        assert back["angle"].tolist() == [0.0, 0.0, 30.0, 0.0, -15.0]
        np.testing.assert_array_equal(back["risk"].to_numpy(dtype=float), [-0.25, 0.5, np.nan, 0.125, 1e-17])
        assert back["x_center"].tolist() == [50.0, 0.5, 12.5, 3.0, 86.0]
        assert back["y_center"].tolist() == [30.0, 8.0, 52.25, 3.0, 26.0]
        assert back["label"].tolist()[:2] == ["'=1+2", "clump"]
        assert pd.isna(back["label"].iloc[2])
        assert back["label"].tolist()[3:] == ["'-odd", "'@home"]
        assert "ra" not in back.columns and "dec" not in back.columns

    back_marks = pd.read_csv(tmp_path / "cat.marks.csv", keep_default_na=False, na_values=[""])
    # One row per mark: a name holding a carriage return or a tab does not break or shift a row.
    assert len(back_marks) == 10
    # A formula-leading cell gets exactly one quote in front; every other cell is unchanged.
    expected_users = ["'" + name if name in FORMULA_LEADING else name for name in HOSTILE]
    # The CSV reader turns a quoted CR into LF inside a cell only if it rewrote it; it must not.
    assert back_marks["user"].tolist() == expected_users
    assert back_marks["tool_label"].tolist() == ["'+Clump", "Clump"] * 5
    assert back_marks["x"].tolist() == np.linspace(-5.0, 80.0, 10).tolist()
    assert back_marks["consensus_id"].tolist()[:9] == [1010, 1010, 1011, -1, 1020, 1020, 1020, 1030, -1]
    assert pd.isna(back_marks["consensus_id"].iloc[9])  # never aggregated: empty, not -1
    no_formula = back_marks.select_dtypes(exclude="number").apply(
        lambda column: column.dropna().str.match(r"^[=+\-@\t\r]").any())
    assert not no_formula.any()


def test_csv_provenance_sidecar(tmp_path, consensus, export_file):
    subjects_file = tmp_path / "inputs" / "subjects.csv"
    subjects_file.write_text("subject_id,metadata,locations\n101,{},{}\n", encoding="utf-8")
    before = datetime.now(timezone.utc).replace(microsecond=0)
    write(consensus, tmp_path / "cat.csv",
          sources={"classifications": export_file, "subjects": [subjects_file]},
          filters={"workflow_id": 9001, "min_votes": np.int64(2), "review": ["accepted"]})
    after = datetime.now(timezone.utc)
    provenance = json.loads((tmp_path / "cat.provenance.json").read_text(encoding="utf-8"))

    assert provenance["format"] == "csv"
    assert provenance["files"] == {"consensus": "cat.csv", "provenance": "cat.provenance.json"}
    assert provenance["software"]["zoolens"] == __version__
    created = datetime.fromisoformat(provenance["created_utc"].replace("Z", "+00:00"))
    assert before <= created <= after + timedelta(seconds=1)
    assert provenance["sources"] == [
        {"role": "classifications", "path": str(export_file), "name": "classifications.csv",
         "bytes": export_file.stat().st_size, "sha256": sha256(export_file)},
        {"role": "subjects", "path": str(subjects_file), "name": "subjects.csv",
         "bytes": len("subject_id,metadata,locations\n101,{},{}\n"), "sha256": sha256(subjects_file)},
    ]
    assert provenance["filters"] == {"workflow_id": 9001, "min_votes": 2, "review": ["accepted"]}
    assert provenance["rows"] == {"consensus": 5, "subjects": 3}
    zoolens_run, reducer = provenance["aggregation"]
    assert zoolens_run["method"] == "iou" and zoolens_run["consensus_rows"] == 4
    assert zoolens_run["settings"] == json.loads(SOURCE)
    assert reducer == {"consensus_rows": 1, "description": "shape_reducer_dbscan (panoptes_aggregation 4.1.0; eps=5)"}
    assert provenance["sky"]["method"] == "none"
    assert "no RA/Dec columns" in provenance["sky"]["note"]
    assert provenance["text_cells"]["formula_cells_neutralised"] == {"consensus": 3}
    units = {column["name"]: column["unit"] for column in provenance["columns"]["consensus"]}
    assert units["x"] == "pix" and units["x_center"] == "pix" and units["angle"] == "deg"
    assert units["n_votes"] is None


def test_missing_source_file_is_an_error_naming_it(tmp_path, consensus):
    with pytest.raises(FileNotFoundError, match="nowhere.csv"):
        write(consensus, tmp_path / "cat.csv", sources=[tmp_path / "nowhere.csv"])
    assert not (tmp_path / "cat.csv").exists()


# --------------------------------------------------------------------------- FITS


def test_fits_round_trip_units_and_provenance(tmp_path, consensus, marks, links, export_file):
    wcs = {101: tan_wcs((150.0, 2.5), (50.5, 30.5), 0.396 / 3600, shape=(100, 60))}
    write({"consensus": consensus, "marks": marks, "links": links}, tmp_path / "cat.fits", include_marks=True,
          wcs=wcs, sources={"classifications": export_file}, filters={"workflow_id": 9001})

    table = Table.read(tmp_path / "cat.fits", hdu="CONSENSUS")
    assert table["x"].unit == u.pix and table["x_center"].unit == u.pix
    assert table["angle"].unit == u.deg and table["ra"].unit == u.deg and table["dec"].unit == u.deg
    assert table["subject_id"].tolist() == [101, 101, 102, 103, 103]
    assert table["x"].tolist() == [45.0, -3.5, 10.25, 0.0, 80.0]
    np.testing.assert_array_equal(np.asarray(table["risk"]), [-0.25, 0.5, np.nan, 0.125, 1e-17])
    # Box 1010 is centred on CRPIX (natural (50, 30) on a 100 x 60 picture): the answer is CRVAL.
    assert table["ra"][0] == pytest.approx(150.0, abs=1e-12)
    assert table["dec"][0] == pytest.approx(2.5, abs=1e-12)
    assert list(table["sky_method"][:2]) == ["wcs", "wcs"]
    assert np.isnan(table["ra"].filled(np.nan)[2:]).all()

    with fits.open(tmp_path / "cat.fits") as hdus:
        assert [hdu.name for hdu in hdus] == ["PRIMARY", "CONSENSUS", "MARKS", "PROVENANCE"]
        for header in (hdus[0].header, hdus["CONSENSUS"].header):
            assert header["ZLVERS"] == __version__
            assert header["NCONS"] == 5 and header["NMARKS"] == 10 and header["NSUBJ"] == 3
            assert header["SKYMETH"] == "wcs"
            assert header["AGGMETH"] == "external,iou"
            assert f"sha256={sha256(export_file)}" in list(header["HISTORY"])
        provenance = json.loads(hdus["PROVENANCE"].data["JSON"][0])
        users = [codecs.decode(value, "unicode_escape") for value in hdus["MARKS"].data["user"]]
        raw_users = list(hdus["MARKS"].data["user"])
    assert provenance["sources"][0]["sha256"] == sha256(export_file)
    assert provenance["filters"] == {"workflow_id": 9001}
    assert provenance["rows"] == {"consensus": 5, "subjects": 3, "marks": 10}
    assert provenance["sky"]["boxes"] == {"wcs": 2, "tangent_plane": 0, "none": 3}
    # FITS text is ASCII; the escaping gives back every hostile name exactly.
    assert all(value.isascii() for value in raw_users)
    assert users == HOSTILE
    assert provenance["text_cells"]["escaped_cells"] == {"consensus": 0, "marks": 4}


def test_fits_keeps_missing_integers_and_booleans_missing(tmp_path, consensus):
    consensus["reviewed"] = pd.array([True, None, False, True, None], dtype="boolean")
    consensus["reviewer_id"] = pd.array([7, None, 9, None, 11], dtype="Int64")
    write(consensus, tmp_path / "cat.fits")
    table = Table.read(tmp_path / "cat.fits", hdu="CONSENSUS")
    assert table["reviewed"].mask.tolist() == [False, True, False, False, True]
    assert table["reviewed"].filled(-1).tolist() == [1, -1, 0, 1, -1]
    assert table["reviewer_id"].mask.tolist() == [False, True, False, True, False]
    assert table["reviewer_id"].filled(0).tolist() == [7, 0, 9, 0, 11]


# --------------------------------------------------------------------------- VOTable


def test_votable_round_trip_infos_params_and_xml_safety(tmp_path, consensus, marks, links, export_file):
    write({"consensus": consensus, "marks": marks, "links": links}, tmp_path / "cat.vot", include_marks=True,
          sources={"classifications": export_file}, filters={"label": "<b>&"})
    document = parse(tmp_path / "cat.vot")
    resource = document.resources[0]
    infos = {info.name: info for info in resource.infos}
    assert infos["zoolens_version"].value == __version__
    assert infos["source_sha256"].value == sha256(export_file)
    assert infos["source_sha256"].content == str(export_file)
    assert json.loads(infos["filters"].value) == {"label": "<b>&"}
    provenance = json.loads(infos["provenance"].value)
    assert provenance["rows"] == {"consensus": 5, "subjects": 3, "marks": 10}
    assert provenance["text_cells"]["replaced_cells"] == {"consensus": 0, "marks": 1}

    consensus_table = document.get_table_by_id("consensus")
    assert {param.name: param.value for param in consensus_table.params} == {"n_rows": 5}
    fields = {field.name: field for field in consensus_table.fields}
    assert fields["consensus_id"].ucd == "meta.id;meta.main"
    table = consensus_table.to_table()
    assert table["width"].unit == u.pix and table["angle"].unit == u.deg
    assert table["x"].tolist() == [45.0, -3.5, 10.25, 0.0, 80.0]
    assert table["label"].tolist()[:2] == ["=1+2", "clump"]  # not a CSV: formulas are harmless here

    users = document.get_table_by_id("marks").to_table()["user"].tolist()
    # TABLEDATA readers strip the whitespace around a cell (the leading tab and CR here).
    assert users == [name.replace("\x01", "\ufffd").strip() for name in HOSTILE]


# --------------------------------------------------------------------------- ECSV


def test_ecsv_round_trip_units_meta_and_neutralised(tmp_path, consensus, marks, export_file):
    files = write({"consensus": consensus, "marks": marks}, tmp_path / "cat.ecsv", sources=[export_file],
                  include_marks=True)
    assert [file.name for file in files] == ["cat.ecsv", "cat.marks.ecsv"]
    users = Table.read(tmp_path / "cat.marks.ecsv")["user"].tolist()
    # ECSV readers read a quoted CR as a line feed; the row itself stays whole.
    assert users == [("'" + name if name in FORMULA_LEADING else name).replace("\r", "\n") for name in HOSTILE]
    table = Table.read(tmp_path / "cat.ecsv")
    assert table["x"].unit == u.pix and table["angle"].unit == u.deg
    assert table["x"].tolist() == [45.0, -3.5, 10.25, 0.0, 80.0]
    assert table["label"].tolist()[:2] == ["'=1+2", "clump"]
    assert table["label"].mask.tolist() == [False, False, True, False, False]
    provenance = table.meta["zoolens_provenance"]
    assert provenance["sources"][0]["sha256"] == sha256(export_file)
    assert provenance["sources"][0]["role"] == "input"
    # Three labels; six user names and five "+Clump" tool labels.
    assert provenance["text_cells"]["formula_cells_neutralised"] == {"consensus": 3, "marks": 11}


# --------------------------------------------------------------------------- formats, overwrite


def test_unknown_extension_and_format_list_the_known_ones(tmp_path, consensus):
    with pytest.raises(FormatError, match=r"cat\.xlsx.*csv \(\.csv, \.csv\.gz\).*ecsv.*fits.*votable"):
        write(consensus, tmp_path / "cat.xlsx")
    with pytest.raises(FormatError, match=r"unknown export format 'parquet'.*csv.*ecsv.*fits.*votable"):
        write(consensus, tmp_path / "cat.csv", format="parquet")
    assert list(tmp_path.iterdir()) == []


def test_explicit_format_beats_the_extension(tmp_path, consensus):
    write(consensus, tmp_path / "cat.txt", format="fits")
    assert Table.read(tmp_path / "cat.txt", format="fits", hdu="CONSENSUS")["n_votes"].tolist() == [7, 3, 5, 2, 4]


def test_existing_files_are_kept_unless_overwrite(tmp_path, consensus, marks):
    (tmp_path / "cat.marks.csv").write_text("precious\n")
    with pytest.raises(FileExistsError, match="cat.marks.csv"):
        write({"consensus": consensus, "marks": marks}, tmp_path / "cat.csv", include_marks=True)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["cat.marks.csv"]
    write({"consensus": consensus, "marks": marks}, tmp_path / "cat.csv", include_marks=True, overwrite=True)
    assert len(pd.read_csv(tmp_path / "cat.marks.csv")) == 10
    # Nothing staged is left behind.
    assert sorted(path.name for path in tmp_path.iterdir()) == ["cat.csv", "cat.marks.csv", "cat.provenance.json"]


def test_one_prepared_export_written_in_every_format(tmp_path, consensus):
    export = prepare_export(consensus, filters={"workflow_id": 1})
    assert isinstance(export, Export)
    for name in ("cat.csv.gz", "cat.ecsv", "cat.fits", "cat.xml"):
        write(export, tmp_path / name)
    assert pd.read_csv(tmp_path / "cat.csv.gz")["n_seen"].tolist() == [9, 9, 6, 5, 5]
    assert json.loads((tmp_path / "cat.provenance.json").read_text())["filters"] == {"workflow_id": 1}
    with pytest.raises(TypeError, match="include_marks"):
        write(export, tmp_path / "again.csv", include_marks=True)


def test_an_empty_selection_writes_every_format(tmp_path):
    tables = {"consensus": empty_table("consensus"), "marks": empty_table("marks")}
    for name in ("empty.csv", "empty.ecsv", "empty.fits", "empty.xml"):
        write(tables, tmp_path / name, include_marks=True)
    assert len(pd.read_csv(tmp_path / "empty.csv")) == 0
    assert len(pd.read_csv(tmp_path / "empty.marks.csv")) == 0
    assert len(Table.read(tmp_path / "empty.fits", hdu="MARKS")) == 0
    assert len(Table.read(tmp_path / "empty.xml", table_id="consensus")) == 0
    assert json.loads((tmp_path / "empty.provenance.json").read_text())["rows"] == {
        "consensus": 0, "subjects": 0, "marks": 0}


def test_export_bytes_for_a_download(consensus, marks, tmp_path):
    name, content = export_bytes({"consensus": consensus, "marks": marks}, "selection.csv", include_marks=True,
                                 filters={"min_votes": 2})
    assert name == "selection.zip"
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        assert sorted(archive.namelist()) == ["selection.csv", "selection.marks.csv", "selection.provenance.json"]
        assert len(pd.read_csv(archive.open("selection.marks.csv"))) == 10
        assert json.loads(archive.read("selection.provenance.json"))["filters"] == {"min_votes": 2}
    name, content = export_bytes(consensus, "selection.fits")
    assert name == "selection.fits" and content.startswith(b"SIMPLE  =")
    with pytest.raises(ValueError, match="without a folder"):
        export_bytes(consensus, "../elsewhere.csv")


def test_extra_provenance_cannot_replace_the_exports_own(consensus):
    export = prepare_export(consensus, extra={"review_session": "s1"})
    assert export.provenance["review_session"] == "s1"
    for key in ("sources", "files", "format"):
        with pytest.raises(ValueError, match=key):
            prepare_export(consensus, extra={key: "mine"})


def test_an_aggregation_result_is_written_with_its_links(tmp_path):
    from consensus import aggregate

    # Three volunteers draw the same box on one subject: one consensus box with their three votes.
    marks = conform(pd.DataFrame({
        "mark_id": [1, 2, 3], "classification_id": [11, 12, 13], "subject_id": [7, 7, 7],
        "user": ["=a", "b", "c"], "task": "T0", "tool": 0, "tool_label": "Clump", "frame": 0,
        "x": [10.0, 10.0, 10.0], "y": [20.0, 20.0, 20.0], "width": [6.0, 6.0, 6.0], "height": [4.0, 4.0, 4.0],
        "angle": 0.0, "kind": "rectangle",
    }), "marks")
    result = aggregate(marks, method="iou")
    write(result, tmp_path / "cat.csv", include_marks=True)
    boxes = pd.read_csv(tmp_path / "cat.csv")
    assert boxes[["x", "y", "width", "height", "n_votes"]].values.tolist() == [[10.0, 20.0, 6.0, 4.0, 3]]
    assert boxes[["x_center", "y_center"]].values.tolist() == [[13.0, 22.0]]
    links = pd.read_csv(tmp_path / "cat.marks.csv")  # links alone: the result holds no marks
    assert links["mark_id"].tolist() == [1, 2, 3]
    assert (links["consensus_id"] == boxes["consensus_id"][0]).all()
    (aggregation,) = json.loads((tmp_path / "cat.provenance.json").read_text())["aggregation"]
    assert aggregation["method"] == "iou" and aggregation["consensus_rows"] == 1


def test_ra_dec_given_in_the_consensus_are_kept(tmp_path, consensus):
    consensus["ra"] = [1.0, 2.0, 3.0, 4.0, 5.0]
    consensus["dec"] = -1.0
    wcs = {101: tan_wcs((150.0, 2.5), (50.5, 30.5), 0.001, shape=(100, 60))}
    export = prepare_export(consensus, wcs=wcs)
    assert export.consensus["ra"].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert export.provenance["sky"]["method"] == "input"


def test_no_consensus_table_is_an_error(marks):
    with pytest.raises(ValueError, match=r"no consensus table among \['marks'\]"):
        prepare_export({"marks": marks})


def test_missing_canonical_column_is_named(consensus):
    with pytest.raises(ValueError, match="n_seen"):
        prepare_export(consensus.drop(columns="n_seen"))


# --------------------------------------------------------------------------- sky positions


def test_wcs_at_crpix_is_crval_and_offsets_follow_the_tan_projection():
    # 36 arcsec per pixel = 0.01 deg; CRVAL on the equator so the TAN projection is easy by hand:
    # a point xi east and eta north of CRVAL (radians on the tangent plane) has
    # ra = ra0 + atan(xi), dec = 0 (eta = 0), or ra = ra0, dec = atan(eta) (xi = 0).
    wcs = tan_wcs((30.0, 0.0), (50.5, 30.5), 0.01, shape=(100, 60))
    x = np.array([50.0, 40.0, 50.0])  # CRPIX; 10 pixels left (east); CRPIX x
    y = np.array([30.0, 30.0, 10.0])  # CRPIX; CRPIX y; 20 pixels up (north, y down in the picture)
    ra, dec = wcs_sky(x, y, wcs)
    step = math.radians(0.01)
    assert ra[0] == pytest.approx(30.0, abs=1e-12) and dec[0] == pytest.approx(0.0, abs=1e-12)
    assert ra[1] == pytest.approx(30.0 + math.degrees(math.atan(10 * step)), abs=1e-10)
    assert dec[1] == pytest.approx(0.0, abs=1e-12)
    assert ra[2] == pytest.approx(30.0, abs=1e-12)
    assert dec[2] == pytest.approx(math.degrees(math.atan(20 * step)), abs=1e-10)


def test_wcs_flip_puts_a_fits_pixel_where_the_picture_shows_it():
    # A FITS image with one marked pixel; the picture volunteers saw is the array drawn bottom row first.
    height, width = 40, 70
    data = np.zeros((height, width))
    row, column = 7, 52  # FITS array index [row, column], row 0 at the bottom
    data[row, column] = 1.0
    picture = data[::-1]
    picture_row, picture_column = np.argwhere(picture == 1.0)[0]
    wcs = tan_wcs((210.0, -35.0), (10.0, 12.0), 0.5 / 3600, shape=(width, height))
    # Centre of the marked picture pixel, in natural (top-left, y down) coordinates.
    ra, dec = wcs_sky([picture_column + 0.5], [picture_row + 0.5], wcs)
    expected = wcs.pixel_to_world(column, row)
    assert ra[0] == pytest.approx(expected.ra.deg, abs=1e-12)
    assert dec[0] == pytest.approx(expected.dec.deg, abs=1e-12)


def test_wcs_on_a_resampled_picture_and_without_naxis():
    wcs = tan_wcs((150.0, 2.5), (50.5, 30.5), 0.001, shape=(100, 60))
    ra, dec = wcs_sky([100.0], [60.0], wcs, picture_shape=(200, 120))  # picture twice the FITS size
    assert (ra[0], dec[0]) == (pytest.approx(150.0, abs=1e-12), pytest.approx(2.5, abs=1e-12))
    no_naxis = tan_wcs((150.0, 2.5), (50.5, 30.5), 0.001)
    ra, dec = wcs_sky([50.0], [30.0], no_naxis, picture_shape=(100, 60))
    assert (ra[0], dec[0]) == (pytest.approx(150.0, abs=1e-12), pytest.approx(2.5, abs=1e-12))
    with pytest.raises(ValueError, match="image height is unknown"):
        wcs_sky([50.0], [30.0], no_naxis)


def test_galactic_wcs_gives_icrs():
    wcs = tan_wcs((120.0, 30.0), (25.5, 25.5), 0.001, shape=(50, 50), frame=("GLON-TAN", "GLAT-TAN"))
    ra, dec = wcs_sky([25.0], [25.0], wcs)
    expected = SkyCoord(l=120.0 * u.deg, b=30.0 * u.deg, frame="galactic").icrs
    assert ra[0] == pytest.approx(expected.ra.deg, abs=1e-9)
    assert dec[0] == pytest.approx(expected.dec.deg, abs=1e-9)


def test_swapped_axes_and_cubes_match_pixel_to_world():
    swapped = tan_wcs((2.0, 150.0), (50.5, 30.5), 0.001, shape=(100, 60), frame=("DEC--TAN", "RA---TAN"))
    swapped.wcs.cdelt = [0.001, -0.001]
    ra, dec = wcs_sky([10.0], [3.0], swapped)
    expected = swapped.pixel_to_world(9.5, 60 - 3.0 - 0.5)
    assert (ra[0], dec[0]) == (pytest.approx(expected.ra.deg, abs=1e-12), pytest.approx(expected.dec.deg, abs=1e-12))

    cube = WCS(naxis=3)
    cube.wcs.ctype = ["RA---TAN", "DEC--TAN", "FREQ"]
    cube.wcs.crval = [150.0, 2.5, 1.4e9]
    cube.wcs.crpix = [50.5, 30.5, 1.0]
    cube.wcs.cdelt = [-0.001, 0.001, 1e6]
    cube.pixel_shape = (100, 60, 5)
    ra, dec = wcs_sky([50.0], [30.0], cube)  # CRPIX of the celestial axes
    assert (ra[0], dec[0]) == (pytest.approx(150.0, abs=1e-12), pytest.approx(2.5, abs=1e-12))


def test_a_wcs_without_celestial_axes_is_reported(consensus):
    linear = WCS(naxis=2)
    linear.pixel_shape = (100, 60)
    positions, summary = box_sky_positions(consensus, wcs={101: linear})
    assert positions["ra"].isna().all()
    assert summary.subjects_without_position == {
        "WCS not usable: the WCS has no celestial axes (CTYPE ['', ''])": 1,
        "no WCS, and no subjects table with ra/dec for the tangent-plane route": 2,
    }


def test_a_broken_wcs_falls_back_to_the_subject_position(consensus):
    singular = tan_wcs((150.0, 2.5), (50.5, 30.5), 0.0, shape=(100, 60))  # zero pixel scale: singular matrix
    subjects = pd.DataFrame({"subject_id": [101], "ra": [10.0], "dec": [1.0], "width": [100.0], "height": [60.0]})
    positions, summary = box_sky_positions(consensus, wcs={101: singular, 102: singular}, subjects=subjects,
                                           pixel_scale=0.396)
    assert positions["sky_method"].tolist() == ["tangent_plane", "tangent_plane", "", "", ""]
    assert positions["ra"][0] == pytest.approx(10.0, abs=1e-12)  # box 1010 is centred on the picture
    reasons = summary.subjects_without_position
    assert sorted(reasons.values()) == [1, 1]  # 102: the broken WCS; 103: nothing to go on
    assert any(reason.startswith("WCS not usable") for reason in reasons)


def test_tangent_plane_from_subject_position_and_pixel_scale(tmp_path, consensus):
    # Subject 102 sits on the equator, 103 at dec 60; both pictures are 100 x 60 at 36 arcsec per pixel.
    subjects = pd.DataFrame({"subject_id": [102, 103], "ra": [359.999, 45.0], "dec": [0.0, 60.0],
                             "width": [100.0, 100.0], "height": [60.0, 60.0], "scale": [36.0, 36.0]})
    boxes = pd.DataFrame({"subject_id": [102, 102, 103, 104], "x": [48.0, 48.0, 10.0, 0.0],
                          "y": [28.0, 8.0, 50.0, 0.0], "width": [4.0] * 4, "height": [4.0] * 4})
    positions, summary = box_sky_positions(boxes, subjects=subjects, pixel_scale="scale")
    # Picture centre -> the subject's position.
    assert positions["ra"][0] == pytest.approx(359.999, abs=1e-12) and positions["dec"][0] == pytest.approx(0.0)
    # 20 pixels north on the equator: dec = atan(eta), by hand.
    assert positions["ra"][1] == pytest.approx(359.999, abs=1e-12)
    assert positions["dec"][1] == pytest.approx(math.degrees(math.atan(20 * math.radians(0.01))), abs=1e-10)
    # Off-axis at dec 60: the same sky position as an equivalent astropy TAN WCS, north up, east left.
    equivalent = tan_wcs((45.0, 60.0), (50.5, 30.5), 0.01, shape=(100, 60))
    # Box centre (12, 52) in the picture is 0-based FITS pixel (11.5, 60 - 52 - 0.5).
    expected = equivalent.pixel_to_world(11.5, 7.5)
    assert positions["ra"][2] == pytest.approx(expected.ra.deg, abs=1e-9)
    assert positions["dec"][2] == pytest.approx(expected.dec.deg, abs=1e-9)
    assert positions["sky_method"].tolist()[:3] == ["tangent_plane"] * 3
    assert np.isnan(positions["ra"][3]) and positions["sky_method"][3] == ""
    assert summary.boxes == {"wcs": 0, "tangent_plane": 3, "none": 1}
    assert summary.to_dict()["method"] == "tangent_plane"
    assert any("gnomonic (TAN) projection" in note for note in summary.notes)


def test_tangent_plane_wraps_ra_into_0_360():
    ra, _ = tangent_plane_sky([0.0], [30.0], 359.999, 0.0, 100.0, 60.0, 36.0)
    assert 0.0 <= ra[0] < 360.0
    assert ra[0] == pytest.approx((359.999 + math.degrees(math.atan(50 * math.radians(0.01)))) % 360, abs=1e-10)


def test_export_prefers_wcs_then_subject_position(tmp_path, consensus):
    subjects = pd.DataFrame({"subject_id": [101, 102, 103], "ra": [10.0, 20.0, np.nan], "dec": [1.0, 2.0, 3.0],
                             "width": [100.0, 100.0, 100.0], "height": [60.0, 60.0, 60.0]})
    wcs = {101: tan_wcs((150.0, 2.5), (50.5, 30.5), 0.0001, shape=(100, 60))}
    write(consensus, tmp_path / "cat.csv", subjects=subjects, wcs=wcs, pixel_scale=0.396)
    back = pd.read_csv(tmp_path / "cat.csv", keep_default_na=False, na_values=[""])
    assert back["sky_method"].fillna("").tolist() == ["wcs", "wcs", "tangent_plane", "", ""]
    assert back["ra"][0] == pytest.approx(150.0, abs=1e-12)
    # Box 1020 is centred at (12.5, 52.25): 37.5 px west... east-left: x < W/2 means east, so ra > 20.
    assert back["ra"][2] > 20.0 and back["dec"][2] < 2.0
    sky = json.loads((tmp_path / "cat.provenance.json").read_text())["sky"]
    assert sky["method"] == "wcs+tangent_plane"
    assert sky["boxes"] == {"wcs": 2, "tangent_plane": 1, "none": 2}
    assert sky["pixel_scale_arcsec"] == 0.396
    assert sum(sky["subjects_without_position"].values()) == 1
