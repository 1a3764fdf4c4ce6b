"""Subject exports: real Penguin Watch and cat-project files, duplicates, metadata, junk."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from data_loaders import FormatError, identify_format, read
from data_loaders.subjects import read_subjects
from tests.data_loaders.loader_properties import junk_bytes_test, junk_rows_test, write

PENGUIN = "penguin_watch/penguin-watch-subjects-trim.csv"
CAT = "aggregation_for_caesar/cat-project-subjects.csv"
DATA = Path(__file__).resolve().parents[1] / "data"


def test_penguin_subjects(data_dir):
    result = read_subjects(data_dir / PENGUIN)
    subjects, report = result.subjects, result.report
    # SOURCES.md: 50 rows, 50 retired subjects, reasons classification_count 48 / nothing_here 2.
    assert report.rows_read == 50 and report.rows_loaded == 50 and report.rows_skipped == 0
    assert len(subjects) == 50 and subjects["subject_id"].is_unique
    assert subjects["retired"].all()
    assert subjects["retirement_reason"].value_counts().to_dict() == {
        "classification_count": 48, "nothing_here": 2}
    # The leading unnamed pandas index column is not a subject column.
    assert not [c for c in subjects.columns if c == "" or c.startswith("Unnamed")]
    first = subjects.iloc[0]
    assert first["subject_id"] == 20860262
    assert first["workflow_ids"] == "6465"  # written "6465.0" in the file
    assert first["subject_set_ids"] == "20334"
    assert first["locations"] == {"0": "https://panoptes-uploads.zooniverse.org/production/"
                                       "subject_location/2e64c588-6bc3-4c41-a89e-b880de418307.jpeg"}
    assert first["imageid"] == "GODHa2018a_000001.JPG"
    assert first["retired_at"] == pd.Timestamp("2018-09-20 08:35:22", tz="UTC")
    assert math.isnan(first["width"]) and math.isnan(first["ra"])


def test_cat_subjects_metadata_subject_id_does_not_replace_the_subject_id(data_dir):
    result = read_subjects(data_dir / CAT)
    subjects = result.subjects
    # SOURCES.md: 30 subjects, 1 jpeg each, never retired, classifications_count 0.
    assert len(subjects) == 30
    assert not subjects["retired"].any()
    assert (subjects["n_frames"] == 1).all()
    assert (subjects["classifications_count"] == 0).all()
    assert subjects.loc[0, "subject_id"] == 458021
    assert subjects.loc[0, "metadata_subject_id"] == 1  # the metadata's own "subject_id": 1
    assert result.report.counts["metadata_columns"]["subject_id"] == "metadata_subject_id"
    assert subjects.loc[0, "attribution"] == "Moyan Brenn"


def test_rows_repeated_per_subject_set_and_workflow_are_merged(data_dir, tmp_path):
    lines = (data_dir / PENGUIN).read_text().splitlines()
    header, rows = lines[0], lines[1:]
    # The first three subjects again, in another subject set and workflow.
    repeats = [row.replace(",6465.0,20334,", ",6466.0,99999,") for row in rows[:3]]
    path = write(tmp_path / "subjects.csv", "\n".join([header, *rows, *repeats]) + "\n")
    result = read_subjects(path)
    assert result.report.rows_read == 53 and result.report.rows_loaded == 53
    assert result.report.counts["subjects"] == 50
    assert result.report.counts["duplicate_rows_merged"] == 3
    subjects = result.subjects.set_index("subject_id")
    assert subjects.loc[20860262, "subject_set_ids"] == "20334;99999"
    assert subjects.loc[20860262, "workflow_ids"] == "6465;6466"
    assert subjects.loc[20860265, "subject_set_ids"] == "20334"
    assert subjects.loc[20860262, "retired"]


def test_metadata_prefixes_numbers_and_sky_positions(tmp_path):
    header = "subject_id,project_id,workflow_id,subject_set_id,metadata,locations," \
             "classifications_count,retired_at,retirement_reason"
    rows = [
        '1001,7,21,5,"{""#fwhmImagePix"":3.25,""!ra"":""150.1"",""!dec"":-2.5,""#objid"":'
        '""08647474690313946727"",""z"":0.031,""#width"":400,""height"":""400""}",'
        '"{""1"":""https://panoptes-uploads.zooniverse.org/b.png"",'
        '""0"":""https://panoptes-uploads.zooniverse.org/a.png""}",3,,',
        '1002,7,21,5,"{""#fwhmImagePix"":""2.5"",""!ra"":""10:00:00"",""!dec"":""-01:30:00"",'
        '""#objid"":""08647474690313946728"",""z"":0.05}",'
        '"{""0"":""https://panoptes-uploads.zooniverse.org/c.png""}",3,,',
    ]
    path = write(tmp_path / "subjects.csv", "\n".join([header, *rows]) + "\n")
    result = read_subjects(path)
    subjects = result.subjects
    assert result.report.counts["metadata_columns"] == {
        "#fwhmImagePix": "fwhmImagePix", "!ra": "metadata_ra", "!dec": "metadata_dec",
        "#objid": "objid", "z": "z", "#width": "metadata_width", "height": "metadata_height"}
    assert subjects["fwhmImagePix"].tolist() == [3.25, 2.5]
    assert subjects["objid"].tolist() == ["08647474690313946727", "08647474690313946728"]
    assert subjects["ra"].tolist() == pytest.approx([150.1, 150.0])  # 10h = 150 degrees
    assert subjects["dec"].tolist() == pytest.approx([-2.5, -1.5])
    assert result.report.counts["radec_columns"] == ["!ra", "!dec"]
    assert subjects["redshift"].tolist() == pytest.approx([0.031, 0.05])
    assert subjects.loc[0, "width"] == 400 and subjects.loc[0, "height"] == 400
    assert math.isnan(subjects.loc[1, "width"])
    # Frames come in frame order whatever order the JSON object lists them in.
    assert list(subjects.loc[0, "locations"]) == ["0", "1"]


def test_bad_rows_are_skipped_with_their_lines(data_dir, tmp_path):
    lines = (data_dir / PENGUIN).read_text().splitlines()
    header, rows = lines[0], lines[1:6]
    bad_json = rows[1].replace('""imageid""', "imageid", 1)  # an unquoted JSON key
    bad_id = rows[2].replace("20860264", "abc", 1)
    short = "7,20860299,6263"
    path = write(tmp_path / "subjects.csv",
                 "\n".join([header, rows[0], bad_json, bad_id, short, rows[3], rows[4]]) + "\n")
    report = read_subjects(path).report
    assert report.rows_read == 6 and report.rows_loaded == 3
    assert report.skipped == {"metadata is not a JSON object": 1, "subject_id is not an integer": 1,
                              "wrong number of columns": 1}
    assert report.skipped_lines["metadata is not a JSON object"] == [3]
    assert report.skipped_lines["subject_id is not an integer"] == [4]
    assert report.skipped_lines["wrong number of columns"] == [5]


def test_workflow_filter(data_dir, tmp_path):
    result = read_subjects(data_dir / PENGUIN, workflow_id=6466)
    assert len(result.subjects) == 0
    assert result.report.skipped == {"other workflow (kept workflow 6466)": 50}


def test_identified_and_read_through_the_registry(data_dir):
    assert identify_format(data_dir / PENGUIN) == "subjects"
    assert identify_format(data_dir / CAT) == "subjects"
    assert len(read(data_dir / CAT).subjects) == 30


def test_a_file_that_is_not_a_subject_export(tmp_path):
    path = write(tmp_path / "other.csv", "a,b\n1,2\n")
    with pytest.raises(FormatError, match="not a Zooniverse subject export.*subject_id"):
        read_subjects(path)


test_junk_bytes = junk_bytes_test(read_subjects, "subjects.csv", use_cache=False)
test_junk_rows = junk_rows_test(read_subjects, DATA / PENGUIN, use_cache=False)
