"""Catalogues: the GZH Stripe 82 FITS table (shared data), tiny FITS/VOTable/ECSV/CSV files, junk."""

from __future__ import annotations

import numpy as np
import pytest
from astropy import units as u
from astropy.table import Table

from data_loaders import FormatError, identify_format, read
from data_loaders.catalogues import read_catalogue
from tests.data_loaders.loader_properties import junk_bytes_test, write

GZH = "catalogues/GZH_S82_Clump_Catalog.fits"


def test_gzh_stripe82_clump_catalogue(shared_data):
    result = read_catalogue(shared_data / GZH)
    catalogue, counts = result.catalogue, result.report.counts
    # ../shared/data/SOURCES.md: 543 rows x 109 columns, 92 galaxies, RA 0.013-357.97 with 155
    # rows above 180 (Stripe 82 wraps through RA 0), Dec -1.25 to +1.24, no NaNs.
    assert result.report.rows_read == 543 and result.report.rows_loaded == 543
    assert counts["positions"] == {"": ["ra", "dec"], "clump": ["clump_ra", "clump_dec"]}
    assert counts["position_columns"] == ["ra", "dec"]
    assert len(catalogue.columns) == 109  # ra/dec are the file's own columns here
    assert catalogue["id"].nunique() == 92
    assert (catalogue["ra"] > 180).sum() == 155
    assert catalogue["ra"].min() == pytest.approx(0.013, abs=5e-4)
    assert catalogue["ra"].max() == pytest.approx(357.97, abs=5e-3)
    assert catalogue["dec"].min() == pytest.approx(-1.25, abs=5e-3)
    assert isinstance(catalogue.loc[0, "specobjid"], str)  # a 20-byte FITS string, decoded
    assert (catalogue["clump_specobjid"].isna()).sum() == 469

    clumps = read_catalogue(shared_data / GZH, position="clump").catalogue
    assert (clumps["ra"] == clumps["clump_ra"]).all()
    assert (clumps["catalogue_ra"] == catalogue["ra"]).all()  # the galaxy positions, kept
    assert identify_format(shared_data / GZH) == "catalogue"


def _sources() -> Table:
    table = Table({"name": ["a", "b", "c"], "RAJ2000": [10.5, 200.25, 359.0] * u.deg,
                   "DEJ2000": [-5.0, 45.5, 89.0] * u.deg, "flux": [1.5, 2.5, 3.5]})
    table["profile"] = np.arange(6.0).reshape(3, 2)
    return table


@pytest.mark.parametrize("suffix, format", [(".fits", "fits"), (".vot", "votable"),
                                            (".ecsv", "ascii.ecsv")])
def test_tiny_astropy_files(tmp_path, suffix, format):
    path = tmp_path / f"sources{suffix}"
    _sources().write(path, format=format)
    assert identify_format(path) == "catalogue"
    result = read(path)
    catalogue = result.catalogue
    assert catalogue["ra"].tolist() == [10.5, 200.25, 359.0]
    assert catalogue["dec"].tolist() == [-5.0, 45.5, 89.0]
    assert catalogue["name"].tolist() == ["a", "b", "c"]
    assert catalogue["profile"].tolist() == [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]
    assert result.report.counts["position_columns"] == ["RAJ2000", "DEJ2000"]


def test_hours_and_out_of_range_rows(tmp_path):
    table = Table({"RA": [1.0, 12.0, 30.0] * u.hourangle, "DEC": [0.0, -91.0, 10.0] * u.deg})
    table.write(tmp_path / "hours.ecsv")
    result = read_catalogue(tmp_path / "hours.ecsv")
    # 1 h = 15 deg; row 2 has Dec -91 and row 3 RA 30 h = 450 deg: both skipped.
    assert result.catalogue["ra"].tolist() == pytest.approx([15.0])
    assert result.report.skipped == {"ra/dec missing or out of range": 2}
    assert result.report.skipped_lines["ra/dec missing or out of range"] == [2, 3]


def test_csv_catalogue_with_sexagesimal_text_and_a_bad_row(tmp_path):
    path = write(tmp_path / "clumps.csv", "objid,ra,dec,mag\n"
                 "08647474690313946727,10:00:00,-01:30:00,17.5\n"
                 "2,150.5,2.25\n"
                 "3,150.5,2.25,-99\n")
    assert identify_format(path) == "catalogue"
    result = read_catalogue(path)
    assert result.report.rows_read == 3 and result.report.rows_loaded == 2
    assert result.report.skipped_lines == {"wrong number of columns": [3]}
    catalogue = result.catalogue
    assert catalogue["ra"].tolist() == pytest.approx([150.0, 150.5])
    assert catalogue["dec"].tolist() == pytest.approx([-1.5, 2.25])
    assert catalogue["objid"].tolist() == ["08647474690313946727", "3"]


def test_catalogue_without_positions_loads_with_nan(tmp_path):
    Table({"x": [1, 2]}).write(tmp_path / "plain.fits")
    result = read_catalogue(tmp_path / "plain.fits")
    assert result.report.counts["position_columns"] is None
    assert np.isnan(result.catalogue["ra"]).all() and len(result.catalogue) == 2


def test_choice_errors(tmp_path):
    _sources().write(tmp_path / "s.fits")
    with pytest.raises(ValueError, match="no RA/Dec pair with prefix 'clump'"):
        read_catalogue(tmp_path / "s.fits", position="clump")
    result = read_catalogue(tmp_path / "s.fits", ra_column="flux", dec_column="DEJ2000")
    assert result.catalogue["ra"].tolist() == [1.5, 2.5, 3.5]


def test_not_a_catalogue(tmp_path):
    path = write(tmp_path / "x.fits", b"SIMPLE  =                    T" + b" " * 100)
    with pytest.raises(FormatError, match="not an astronomy catalogue"):
        read_catalogue(path)


_FITS_TABLE_HEADER = (
    (b"SIMPLE  =                    T".ljust(80) + b"NAXIS   =                    0".ljust(80)
     + b"END".ljust(80)).ljust(2880) + b"XTENSION= 'BINTABLE'".ljust(80))

test_junk_fits = junk_bytes_test(read_catalogue, "junk.fits", prefix=_FITS_TABLE_HEADER)
test_junk_csv = junk_bytes_test(read_catalogue, "junk.csv", prefix=b"ra,dec,name\n")
