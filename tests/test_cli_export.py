"""``zoolens export`` on the built-in demo: catalogues with RA/Dec, provenance and safe text.

Expected values come from routes independent of the export code: the demo's simulation
(the marks volunteers drew, the true clumps), the demo's FITS headers read here with
astropy, and file hashes computed here with hashlib.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

from tests.zoolens.test_demo import demo_files, simulation  # noqa: F401  (fixtures: the demo files, its simulation)
from zoolens import demo
from zoolens.cli import main

ROOT = Path(__file__).resolve().parents[1]
FORMULA = r"^[=+\-@\t\r]"


def zoolens(*args, cache):
    return subprocess.run([sys.executable, "-m", "zoolens", *map(str, args)], check=False, capture_output=True, text=True,
                          cwd=ROOT, env={"PATH": "/usr/bin:/bin", "ZOOLENS_CACHE_DIR": str(cache)})


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def fits_table(path: Path, hdu: str) -> pd.DataFrame:
    table = Table.read(path, hdu=hdu)
    table.convert_bytestring_to_unicode()  # FITS text columns come back as bytes
    return table.to_pandas()


@pytest.fixture(scope="module")
def fits_catalogue(demo_files, tmp_path_factory) -> Path:
    """The demo exported to FITS with each subject's WCS and the raw marks."""
    out = tmp_path_factory.mktemp("fits")
    done = zoolens("export", demo_files.classifications, demo_files.subjects, "--workflow", demo.WORKFLOW_ID,
                   "--workflow-version", demo.WORKFLOW_VERSION,
                   "--images", demo_files.folder, "--fits-column", "fits_file", "--marks",
                   "-o", out / "catalogue.fits", cache=out / "cache")
    assert done.returncode == 0, done.stderr
    assert "RA/Dec: wcs" in done.stdout
    return out / "catalogue.fits"


def test_fits_catalogue_places_every_box_with_its_subjects_wcs(fits_catalogue, demo_files, simulation):
    boxes = fits_table(fits_catalogue, "CONSENSUS")
    assert (boxes["sky_method"] == "wcs").all()
    checked = 0
    for subject_id, subject_boxes in boxes.groupby("subject_id"):
        header = fits.getheader(demo_files.images / f"{subject_id}.fits")
        wcs = WCS(header)
        # The PNG is the FITS array flipped: picture row y (from the top) is FITS row NAXIS2 - y.
        sky = wcs.pixel_to_world(subject_boxes["x_center"].to_numpy() - 0.5,
                                 header["NAXIS2"] - subject_boxes["y_center"].to_numpy() - 0.5)
        np.testing.assert_allclose(subject_boxes["ra"], sky.ra.deg, rtol=0, atol=1e-10)
        np.testing.assert_allclose(subject_boxes["dec"], sky.dec.deg, rtol=0, atol=1e-10)
        checked += len(subject_boxes)
    assert checked == len(boxes) > 0
    # Every box lies on its 200 x 200 picture of 0.396"/pixel: within 200 * 0.396 / sqrt(2) = 56"
    # of the subject's centre, as the subject export's metadata gives it.
    subjects = pd.read_csv(demo_files.subjects).drop_duplicates("subject_id")
    metadata = subjects["metadata"].map(json.loads)
    centres = pd.DataFrame({"ra": metadata.map(lambda m: float(m["ra"])).to_numpy(),
                            "dec": metadata.map(lambda m: float(m["dec"])).to_numpy()},
                           index=subjects["subject_id"].to_numpy())
    centre = SkyCoord(centres.loc[boxes["subject_id"], "ra"].to_numpy() * u.deg,
                      centres.loc[boxes["subject_id"], "dec"].to_numpy() * u.deg)
    separation = centre.separation(SkyCoord(boxes["ra"].to_numpy() * u.deg, boxes["dec"].to_numpy() * u.deg))
    assert separation.arcsec.max() < 200 * demo.PIXEL_SCALE_ARCSEC / np.sqrt(2)

    marks = fits_table(fits_catalogue, "MARKS")
    assert len(marks) == len(simulation.marks)  # every mark of version 13.10, none of the dirt


def test_fits_catalogue_provenance(fits_catalogue, demo_files):
    with fits.open(fits_catalogue) as hdus:
        header = hdus["CONSENSUS"].header
        provenance = json.loads(hdus["PROVENANCE"].data["JSON"][0])
    hashes = {(source["role"], Path(source["path"]).name): source["sha256"] for source in provenance["sources"]}
    assert hashes[("classifications", "demo-classifications.csv")] == sha256(demo_files.classifications)
    assert hashes[("subjects", "demo-subjects.csv")] == sha256(demo_files.subjects)
    images = sorted(demo_files.images.glob("*.fits"))
    assert len(images) == 60
    for image in images:
        assert hashes[("image", image.name)] == sha256(image)
    assert header["NSOURCE"] == 62
    assert f"sha256={sha256(demo_files.classifications)}" in list(header["HISTORY"])
    # The loading filters, then the selection's (every subject: each filter at its default), as the app records them.
    assert provenance["filters"] == {"workflow_id": demo.WORKFLOW_ID, "workflow_version": demo.WORKFLOW_VERSION,
                                     "workflow": "any", "tool": "any", "min_votes": 0, "min_volunteers": 0,
                                     "disagreement": [0.0, 1.0], "metadata_ranges": {},
                                     "plot_selection_subjects": None, "review_status": "any"}
    (aggregation,) = provenance["aggregation"]
    # The default for boxes, with its settings recorded.
    assert aggregation["method"] == "lean" and aggregation["settings"]["min_iou"] == 0.3
    assert provenance["images"]["subjects"] == {"wcs": 60}
    # The classification report: 927 rows, of which 1 broken, 6 of another workflow, 8 of an older version.
    report = provenance["load_reports"][0]
    assert report["rows_read"] == 927 and report["rows_loaded"] == 912


def test_csv_from_subject_positions_matches_the_wcs_and_neutralises_names(fits_catalogue, demo_files,
                                                                         simulation, tmp_path):
    # No FITS: RA/Dec from the subjects' ra/dec and the demo's pixel scale, picture sizes from the PNGs.
    done = zoolens("export", demo_files.classifications, demo_files.subjects, "--workflow", demo.WORKFLOW_ID,
                   "--workflow-version", demo.WORKFLOW_VERSION,
                   "--images", demo_files.folder, "--pixel-scale", demo.PIXEL_SCALE_ARCSEC, "--marks",
                   "-o", tmp_path / "catalogue.csv", cache=tmp_path / "cache")
    assert done.returncode == 0, done.stderr
    assert "RA/Dec: tangent_plane" in done.stdout
    boxes = pd.read_csv(tmp_path / "catalogue.csv")
    with_wcs = fits_table(fits_catalogue, "CONSENSUS")
    # The demo's cutouts are exactly the assumed geometry (centred, north up, east left, TAN).
    np.testing.assert_allclose(boxes["ra"], with_wcs["ra"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(boxes["dec"], with_wcs["dec"], rtol=0, atol=1e-9)

    marks = pd.read_csv(tmp_path / "catalogue.marks.csv", keep_default_na=False, na_values=[""])
    assert len(marks) == len(simulation.marks)
    formula_user = '=HYPERLINK("http://x","y")'
    expected = int((simulation.marks["user"] == formula_user).sum())
    assert expected > 0
    assert int((marks["user"] == "'" + formula_user).sum()) == expected
    text = marks.select_dtypes(exclude="number")
    assert not text.apply(lambda column: column.dropna().astype(str).str.match(FORMULA).any()).any()
    provenance = json.loads((tmp_path / "catalogue.provenance.json").read_text())
    assert provenance["sky"]["pixel_scale_arcsec"] == demo.PIXEL_SCALE_ARCSEC
    assert any("gnomonic (TAN) projection" in note for note in provenance["sky"]["notes"])


def test_consensus_file_is_exported_with_marks_linked_to_it(demo_files, simulation, tmp_path):
    # The true clumps as BoxAggregator consensus boxes, one label hostile.
    truth = pd.read_csv(demo_files.truth)
    boxes = pd.DataFrame({"subject_id": truth["subject_id"], "x1": truth["x"], "x2": truth["x"] + truth["width"],
                          "y1": truth["y"], "y2": truth["y"] + truth["height"], "association": truth["truth_id"],
                          "label": ["=cmd|' /C calc'!A0"] + ["clump"] * (len(truth) - 1)})
    boxes.to_csv(tmp_path / "truth-boxes.csv", index=False)
    done = zoolens("export", demo_files.classifications, "--workflow", demo.WORKFLOW_ID,
                   "--workflow-version", demo.WORKFLOW_VERSION, "--consensus", tmp_path / "truth-boxes.csv",
                   "--marks", "-o", tmp_path / "catalogue.csv", cache=tmp_path / "cache")
    assert done.returncode == 0, done.stderr
    assert "RA/Dec: none" in done.stdout
    catalogue = pd.read_csv(tmp_path / "catalogue.csv")
    assert len(catalogue) == len(truth)
    assert catalogue["label"].tolist() == ["'=cmd|' /C calc'!A0"] + ["clump"] * (len(truth) - 1)
    assert "ra" not in catalogue.columns

    marks = pd.read_csv(tmp_path / "catalogue.marks.csv")
    assert len(marks) == len(simulation.marks)
    # Each exported mark against the simulation's record of which true clump the volunteer was boxing.
    key = ["classification_id", "x", "y"]
    simulated = simulation.marks[key + ["truth_id", "double"]].round({"x": 6, "y": 6})
    joined = marks.round({"x": 6, "y": 6}).merge(simulated, on=key, how="inner", validate="one_to_one")
    assert len(joined) == len(marks)
    box_of = catalogue[["consensus_id", "subject_id", "association"]].rename(columns={"subject_id": "box_subject"})
    linked = joined.merge(box_of, on="consensus_id", how="left")
    assert (linked["consensus_id"] >= 0).sum() > 0
    on_box = linked[linked["consensus_id"] >= 0]
    assert (on_box["subject_id"] == on_box["box_subject"]).all()
    # A mark aimed at a true clump (not a volunteer's second box on it) supports that clump's box or,
    # when drawn too sloppily to reach the matching IoU, none: never another clump's box.
    aimed = linked[(linked["truth_id"] >= 0) & ~linked["double"]]
    on_a_box = aimed[aimed["consensus_id"] >= 0]
    assert (on_a_box["association"] == on_a_box["truth_id"]).all()
    assert len(on_a_box) > 0.8 * len(aimed)
    provenance = json.loads((tmp_path / "catalogue.provenance.json").read_text())
    assert provenance["sources"][1]["role"] == "consensus"
    assert provenance["sources"][1]["sha256"] == sha256(tmp_path / "truth-boxes.csv")
    assert provenance["aggregation"][0]["description"] == "BoxAggregator"


def test_errors_name_the_problem_without_a_traceback(demo_files, tmp_path, capsys):
    assert main(["export", str(demo_files.classifications), "-o", str(tmp_path / "c.csv")]) == 1
    assert "holds workflows 9001, 9002: choose one with --workflow" in capsys.readouterr().err

    assert main(["export", str(demo_files.classifications), "--workflow", "9001",
                 "-o", str(tmp_path / "c.xlsx")]) == 1
    error = capsys.readouterr().err
    assert "cannot tell the export format" in error and "votable" in error

    assert main(["export", str(demo_files.classifications), "--workflow", "9001", "--param", "min_votes",
                 "-o", str(tmp_path / "c.csv")]) == 1
    assert "expected NAME=VALUE" in capsys.readouterr().err

    assert main(["export", str(demo_files.classifications), "--workflow", "9001", "--param", "min_vots=3",
                 "-o", str(tmp_path / "c.csv")]) == 1
    assert "no parameter(s) ['min_vots']" in capsys.readouterr().err

    (tmp_path / "c.csv").write_text("keep me\n")
    assert main(["export", str(demo_files.classifications), "--workflow", "9001",
                 "-o", str(tmp_path / "c.csv")]) == 1
    assert "already exist" in capsys.readouterr().err
    assert (tmp_path / "c.csv").read_text() == "keep me\n"


def test_reviewed_catalogue_from_decisions_made_in_the_dashboard(demo_files, tmp_path):
    from project import load_project
    from project.reviews import ReviewStore

    # The project as `zoolens demo` serves it, and three decisions a reviewer made on it.
    project = load_project([demo_files.classifications, demo_files.subjects, demo_files.workflows],
                           image_roots=[demo_files.folder], **demo.PROJECT_OPTIONS)
    rejected, redrawn = project.consensus.iloc[0], project.consensus.iloc[1]
    with ReviewStore(path=tmp_path / "reviews.sqlite") as store:
        source = project.consensus_source
        store.record(source, int(rejected.subject_id), "reject", "ann", consensus_id=int(rejected.consensus_id),
                     original=rejected.to_dict(), reason="a star")
        store.record(source, int(redrawn.subject_id), "redraw", "bob", consensus_id=int(redrawn.consensus_id),
                     original=redrawn.to_dict(), geometry={"x": 5.0, "y": 6.0, "width": 7.0, "height": 8.0})
        store.record(source, int(redrawn.subject_id), "add", "bob",
                     geometry={"x": 50.0, "y": 60.0, "width": 9.0, "height": 9.0})
        store.record("another-run", 1, "flag", "ann")

    done = zoolens("export", demo_files.classifications, "--workflow", demo.WORKFLOW_ID,
                   "--workflow-version", demo.WORKFLOW_VERSION, "--reviews", tmp_path / "reviews.sqlite",
                   "-o", tmp_path / "reviewed.csv", cache=tmp_path / "cache")
    assert done.returncode == 0, done.stderr
    assert f"reviewed: 3 decisions in effect of 3 on consensus run {source}" in done.stdout
    catalogue = pd.read_csv(tmp_path / "reviewed.csv").set_index(["subject_id", "consensus_id"])
    # One box left out, one added: as many rows as the consensus the dashboard showed.
    assert len(catalogue) == len(project.consensus)
    assert (rejected.subject_id, rejected.consensus_id) not in catalogue.index
    box = catalogue.loc[(redrawn.subject_id, redrawn.consensus_id)]
    assert (box.x, box.y, box.width, box.height, box.review_status, box.reviewed_by) == (5, 6, 7, 8, "redrawn", "bob")
    assert (box.original_x, box.original_width) == (redrawn.x, redrawn.width)
    added = catalogue[catalogue.review_status == "added"]
    assert added[["x", "y", "width", "height"]].values.tolist() == [[50, 60, 9, 9]]
    assert (catalogue.review_status == "unreviewed").sum() == len(project.consensus) - 2
    review = json.loads((tmp_path / "reviewed.provenance.json").read_text())["review"]
    assert (review["decisions"], review["in_effect"], review["reviewers"]) == (3, 3, 2)
    assert review["by_action"] == {"add": 1, "redraw": 1, "reject": 1}
    assert review["rejected_boxes"] == "drop" and review["store"].endswith("reviews.sqlite")

    kept = zoolens("export", demo_files.classifications, "--workflow", demo.WORKFLOW_ID, "--keep-rejected",
                   "--workflow-version", demo.WORKFLOW_VERSION,
                   "--reviews", tmp_path / "reviews.sqlite", "-o", tmp_path / "kept.csv", cache=tmp_path / "cache")
    assert kept.returncode == 0, kept.stderr
    assert (pd.read_csv(tmp_path / "kept.csv").review_status == "rejected").sum() == 1

    missing = zoolens("export", demo_files.classifications, "--workflow", demo.WORKFLOW_ID,
                      "--reviews", tmp_path / "nope.sqlite", "-o", tmp_path / "x.csv", cache=tmp_path / "cache")
    assert missing.returncode == 1 and "no such review store" in missing.stderr


def test_export_through_a_project_store_writes_the_in_memory_files(demo_files, tmp_path):
    options = ["--workflow", str(demo.WORKFLOW_ID), "--workflow-version", demo.WORKFLOW_VERSION, "--marks"]
    assert main(["export", str(demo_files.classifications), *options, "-o", str(tmp_path / "memory.csv")]) == 0
    for run in ("written", "reopened"):  # the store is written by the first run, read as it is by the second
        assert main(["export", str(demo_files.classifications), *options, "--store", str(tmp_path / "store"),
                     "-o", str(tmp_path / f"{run}.csv")]) == 0
        for suffix in (".csv", ".marks.csv"):
            assert (tmp_path / f"{run}{suffix}").read_text() == (tmp_path / f"memory{suffix}").read_text()


def test_aggregate_and_export_take_the_exports_serve_takes_in_any_order(tmp_path, capsys):
    # As `zoolens serve` does: the classification export with the subject and workflow exports beside it. Both
    # commands took the classification export alone ("unrecognized arguments" for the others), so a classic-front-end
    # project's triangles and curves, which only the workflow export names, could not be aggregated or exported.
    folder = ROOT / "tests" / "data" / "penguin_watch"
    files = [str(folder / f"penguin-watch-{name}.csv") for name in ("workflows", "classifications-trim", "subjects-trim")]
    assert main(["aggregate", *files, "--workflow", "6465", "-o", str(tmp_path / "points.csv")]) == 0
    assert "1911 consensus points on 50 subjects" in capsys.readouterr().err
    assert len(pd.read_csv(tmp_path / "points.csv")) == 1911
    # The workflow export, read first, lists workflows 6465 and 6466; the classification export holds only 6465, so
    # no --workflow is needed (only the classification export's workflows ask for a choice).
    assert main(["export", *files, "-o", str(tmp_path / "points.ecsv")]) == 0
    out = capsys.readouterr().out
    assert "1911 consensus points on 50 subjects" in out and "points by route" in out  # it said "boxes"
    assert len(Table.read(tmp_path / "points.ecsv")) == 1911
