"""A second read from the Parquet cache gives the same tables and report as the first parse."""

from __future__ import annotations

import pandas as pd
import pytest

from data_loaders import (
    read_aggregation_output,
    read_boxaggregator,
    read_caesar_export,
    read_subjects,
    read_workflows,
)
from data_loaders.cache import cache_dir

CASES = [
    (read_subjects, "penguin_watch/penguin-watch-subjects-trim.csv", {}),
    (read_subjects, "aggregation_for_caesar/cat-project-subjects.csv", {"workflow_id": 28090}),
    (read_workflows, "penguin_watch/penguin-watch-workflows.csv", {}),
    (read_aggregation_output, "aggregation_for_caesar/polygon_reducer_reductions_median.csv", {}),
    (read_aggregation_output, "handmade/shape_extractor_rectangle_extractions.csv", {}),
    (read_caesar_export, "handmade/caesar_reductions_rectangles.csv", {}),
    (read_boxaggregator, "handmade/boxaggregator_consensus.csv", {"offset": (100, 100)}),
]


@pytest.mark.parametrize("read, name, options", CASES, ids=[case[1] for case in CASES])
def test_cached_read_equals_first_parse(data_dir, read, name, options):
    if read is read_boxaggregator:
        options = {**options, "annotations": data_dir / "handmade/boxaggregator_annotations.csv"}
    first = read(data_dir / name, **options)
    entries = list((cache_dir() / first.report.format).glob("*/report.json"))
    assert len(entries) == 1  # the second read below is served from this entry
    cached = read(data_dir / name, **options)
    assert sorted(cached.tables) == sorted(first.tables)
    for table in first.tables:
        pd.testing.assert_frame_equal(cached.tables[table], first.tables[table])
    assert cached.report.to_dict() == first.report.to_dict()
