"""BoxAggregator output: the real Clump Scout consensus table, Parquet, annotation links, junk."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from data_loaders import FormatError, identify_format
from data_loaders.boxaggregator import read_boxaggregator
from tests.data_loaders.loader_properties import junk_bytes_test, junk_rows_test, write

DATA = Path(__file__).resolve().parents[1] / "data"
EXCERPT = "clumpscout/consensus_boxes_excerpt.csv"
CONSENSUS = "handmade/boxaggregator_consensus.csv"
ANNOTATIONS = "handmade/boxaggregator_annotations.csv"


def test_full_clump_scout_table(shared_data):
    result = read_boxaggregator(shared_data / "clumpscout/consensus_boxes.csv.gz", offset=(100, 100))
    consensus, counts = result.consensus, result.report.counts
    # ../shared/data/SOURCES.md: 46,164 boxes on 19,956 subjects, 1-9 per subject (median 2),
    # labels clumpy 33,411 / clumpy, odd 12,753, 944 boxes with x1 or y1 < 0 (min x1 -106.1).
    assert result.report.rows_read == 46_164 and result.report.rows_loaded == 46_164
    assert counts["subjects"] == 19_956
    assert counts["boxes_per_subject"] == {"min": 1, "median": 2.0, "max": 9}
    assert counts["labels"] == {"clumpy": 33_411, "clumpy, odd": 12_753}
    assert ((consensus["x"] < 100) | (consensus["y"] < 100)).sum() == 944
    assert consensus["x"].min() == pytest.approx(-106.1 + 100, abs=0.05)
    assert consensus["width"].to_numpy() == pytest.approx(consensus["height"].to_numpy())
    assert consensus["n_votes"].isna().all() and consensus["n_seen"].isna().all()


def test_excerpt_with_and_without_offset(data_dir):
    plain = read_boxaggregator(data_dir / EXCERPT)
    shifted = read_boxaggregator(data_dir / EXCERPT, offset=(100, 100))
    # The first 300 rows, counted with the csv module: 114 subjects, labels 1: 191, 2: 109.
    assert plain.report.rows_read == 300 and len(plain.consensus) == 300
    assert plain.report.counts["subjects"] == 114
    assert plain.consensus["label"].value_counts().to_dict() == {1: 191, 2: 109}
    first = plain.consensus.iloc[0]
    assert first["subject_id"] == 36718138 and first["local_id"] == 366658689799
    assert first["label_text"] == "clumpy, odd"
    # x1=59.20810030229011, x2=75.80607481420569, y1=86.66786828852253 in the file, exactly.
    assert first["x"] == 59.20810030229011 and first["y"] == 86.66786828852253
    assert first["width"] == 75.80607481420569 - 59.20810030229011
    assert (shifted.consensus["x"] - plain.consensus["x"]).tolist() == pytest.approx([100.0] * 300)
    assert (shifted.consensus["width"] == plain.consensus["width"]).all()


def test_parquet_reads_like_csv(data_dir, tmp_path):
    table = pd.read_csv(data_dir / EXCERPT)
    table.to_parquet(tmp_path / "boxes.parquet")
    assert identify_format(tmp_path / "boxes.parquet") == "boxaggregator"
    from_parquet = read_boxaggregator(tmp_path / "boxes.parquet").consensus
    from_csv = read_boxaggregator(data_dir / EXCERPT).consensus
    pd.testing.assert_frame_equal(from_parquet, from_csv, check_dtype=False)


def test_annotation_links(data_dir):
    result = read_boxaggregator(data_dir / CONSENSUS, annotations=data_dir / ANNOTATIONS)
    consensus, links = result.consensus, result.links
    # Hand-made (SOURCES.md): image 501 has ground truths 0 (three boxes) and 4 (two boxes) and
    # one unmatched box; image 502 one unmatched box.
    assert consensus[["association", "n_votes", "n_seen"]].values.tolist() == [[0, 3, 3], [4, 2, 3]]
    assert links["consensus_id"].tolist() == [0, 0, 0, -1, 1, 1, -1]
    assert links["mark_id"].tolist() == [0, 1, 2, 3, 4, 5, 6]
    # 1 - ground_truth_distance: box 1 overlaps the mean box by 18 x 19 inside a 21 x 21 enclosure.
    assert links.loc[1, "iou"] == pytest.approx(342 / 441)
    assert consensus.loc[1, ["x", "y", "width", "height"]].tolist() == [200.5, 201.0, 29.0, 29.5]
    assert consensus.loc[0, "risk"] == pytest.approx(0.0021 + 0.0103 * (2 - 0.0021))
    assert result.report.counts["unmatched_annotations"] == 2


def test_annotation_table_alone_is_explained(data_dir):
    assert identify_format(data_dir / ANNOTATIONS) == "boxaggregator"
    with pytest.raises(FormatError, match="annotation table.*annotations="):
        read_boxaggregator(data_dir / ANNOTATIONS)


def test_bad_rows(data_dir, tmp_path):
    lines = (data_dir / EXCERPT).read_text().splitlines()
    bad_number = lines[1].replace("59.20810030229011", "fifty")
    swapped = lines[2].split(",")
    swapped[4], swapped[5] = swapped[5], swapped[4]
    path = write(tmp_path / "b.csv", "\n".join([lines[0], bad_number, ",".join(swapped),
                                                 "1,2", lines[3]]) + "\n")
    report = read_boxaggregator(path).report
    assert report.rows_read == 4 and report.rows_loaded == 1
    assert report.skipped == {"x1 is not a number": 1, "x2 < x1 or y2 < y1": 1,
                              "wrong number of columns": 1}
    assert report.skipped_lines["x2 < x1 or y2 < y1"] == [3]


test_junk_bytes = junk_bytes_test(read_boxaggregator, "boxes.csv",
                                  prefix=b"subject_id,x1,x2,y1,y2\n", use_cache=False)
test_junk_parquet = junk_bytes_test(read_boxaggregator, "boxes.parquet", prefix=b"PAR1",
                                    suffix=b"PAR1", use_cache=False)
test_junk_rows = junk_rows_test(read_boxaggregator, DATA / EXCERPT, first_lines=40, use_cache=False)
