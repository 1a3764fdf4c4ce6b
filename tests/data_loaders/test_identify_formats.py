"""Every real file is recognised by exactly one format; an unknown file gets a clear error."""

from __future__ import annotations

import pytest

from data_loaders import REGISTRY, FormatError, identify_format, known_formats
from data_loaders.base import read_head

#: Files in tests/data and the format each is (one identifier, and only one, must claim it).
REPO_FILES = {
    "aggregation_for_caesar/batch_wf_export.csv": "workflows",
    "aggregation_for_caesar/cat-project-classifications.csv": "classifications",
    "aggregation_for_caesar/cat-project-subjects.csv": "subjects",
    "aggregation_for_caesar/polygon_extractor_extractions.csv": "panoptes_aggregation",
    "aggregation_for_caesar/polygon_reducer_reductions_median.csv": "panoptes_aggregation",
    "clumpscout/consensus_boxes_excerpt.csv": "boxaggregator",
    "discnet/many-tools-classifications.csv": "classifications",
    "discnet/many-tools-classifications_march_7_2023.csv": "classifications",
    "handmade/boxaggregator_annotations.csv": "boxaggregator",
    "handmade/boxaggregator_consensus.csv": "boxaggregator",
    "handmade/caesar_extracts_rectangles.csv": "caesar",
    "handmade/detections.csv": "detections",
    "handmade/detections_coco.json": "detections",
    "handmade/caesar_reductions_rectangles.csv": "caesar",
    "handmade/shape_extractor_rectangle_extractions.csv": "panoptes_aggregation",
    "handmade/shape_reducer_dbscan_reductions.csv": "panoptes_aggregation",
    "handmade/shape_reducer_hdbscan_reductions.csv": "panoptes_aggregation",
    "penguin_watch/penguin-watch-classifications-trim.csv": "classifications",
    "penguin_watch/penguin-watch-subjects-trim.csv": "subjects",
    "penguin_watch/penguin-watch-workflows.csv": "workflows",
    "penguin_watch/subjects/20860279_100x75.png": "image",
}

#: Files only in ../shared/data (too large, GPL-3.0 or unlicensed for the repository).
SHARED_FILES = {
    "aggregation_for_caesar/batch_cls_export.csv": "classifications",
    "catalogues/GZH_S82_Clump_Catalog.fits": "catalogue",
    "clumpscout/consensus_boxes.csv.gz": "boxaggregator",
    "cutouts/gzh_s82/objID08647474690313946727.jpg": "image",
    "cutouts/zoobot_decals/J000411.19+020924.0.png": "image",
    "penguin_watch/subjects/20860279.png": "image",
}


def _claimed_by(path) -> list[str]:
    head = read_head(path)
    return sorted(cls.short_name for cls in REGISTRY.values() if cls.identify(path, head))


@pytest.mark.parametrize("name, expected", sorted(REPO_FILES.items()))
def test_repo_files_are_identified_by_one_format(data_dir, name, expected):
    assert _claimed_by(data_dir / name) == [expected]
    assert identify_format(data_dir / name) == expected


@pytest.mark.parametrize("name, expected", sorted(SHARED_FILES.items()))
def test_shared_files_are_identified_by_one_format(shared_data, name, expected):
    assert _claimed_by(shared_data / name) == [expected]


def test_every_format_is_registered():
    assert known_formats() == ("boxaggregator, caesar, catalogue, classifications, detections, image, "
                               "panoptes_aggregation, subjects, workflows")


def test_an_unknown_file_lists_the_known_formats(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("shopping list\nmilk, eggs\n")
    with pytest.raises(FormatError) as raised:
        identify_format(path)
    message = str(raised.value)
    assert str(path) in message and "format could not be identified" in message
    assert known_formats() in message


def test_a_real_csv_of_no_known_format(shared_data):
    # The zoobot ring catalogue has labels but no RA/Dec, ids or Zooniverse columns.
    path = shared_data / "cutouts/zoobot_decals/example_ring_catalog_basic_subset.csv"
    assert _claimed_by(path) == []
    with pytest.raises(FormatError, match="format could not be identified"):
        identify_format(path)
