"""The catalogues zoolens writes are valid by the standards' own checkers: astropy's VOTable validator and
the VOTable XML schema it ships (through lxml), and astropy's FITS verification with warnings as errors."""

from __future__ import annotations

import io
import re
import warnings
from pathlib import Path

import pytest
from astropy.io import fits
from astropy.io.votable import validate

from project import load_project
from project.export import export_selection
from project.selection import Selection
from tests.zoolens.test_demo import demo_files  # noqa: F401  (fixture: the demo files)
from zoolens import demo

etree = pytest.importorskip("lxml.etree")


@pytest.fixture(scope="module")
def demo_project(demo_files):
    return load_project([demo_files.classifications, demo_files.subjects], image_roots=[demo_files.folder],
                        **demo.PROJECT_OPTIONS)


@pytest.mark.parametrize("include_marks", [False, True])
def test_votable_passes_astropys_validator_and_the_schema(demo_project, include_marks):
    _, content = export_selection(demo_project, Selection(project=demo_project), "votable",
                                  include_marks=include_marks)
    report = io.StringIO()
    assert validate(io.BytesIO(content), output=report, xmllint=False), report.getvalue()
    assert "found no violations" in report.getvalue()
    version = re.search(rb'<VOTABLE[^>]*version="([0-9.]+)"', content).group(1).decode()
    import astropy.io.votable

    schema_file = Path(astropy.io.votable.__file__).parent / "data" / f"VOTable.v{version}.xsd"
    schema = etree.XMLSchema(etree.parse(str(schema_file)))
    document = etree.parse(io.BytesIO(content))
    assert schema.validate(document), schema.error_log
    # The catalogue is in it, positions and all.
    tables = document.getroot().findall(".//{*}TABLE")
    assert [table.get("name") for table in tables] == ["consensus", *(["marks"] if include_marks else [])]


@pytest.mark.parametrize("include_marks", [False, True])
def test_fits_passes_astropys_verification(demo_project, include_marks):
    _, content = export_selection(demo_project, Selection(project=demo_project), "fits", include_marks=include_marks)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a card astropy would fix or warn about is a failure
        with fits.open(io.BytesIO(content)) as hdus:
            hdus.verify("exception")
            names = [hdu.name for hdu in hdus]
            assert names == ["PRIMARY", "CONSENSUS", *(["MARKS"] if include_marks else []), "PROVENANCE"]
            assert {"RA", "DEC"} <= {name.upper() for name in hdus["CONSENSUS"].columns.names}
