"""The shared Project's derived tables and a session's DataStore filters, on the hand-made project."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from dashboard.data_store import ANY, DataStore
from project import Project


def test_subject_statistics_match_the_hand_count(tiny_project):
    stats = tiny_project.subject_stats.set_index("subject_id")
    assert stats.loc[1, ["n_classifications", "n_volunteers", "n_empty", "n_marks", "n_consensus", "max_votes"]
                     ].tolist() == [3, 3, 1, 3, 2, 2]
    assert stats.loc[2, ["n_classifications", "n_volunteers", "n_empty", "n_marks", "n_consensus", "max_votes"]
                     ].tolist() == [2, 2, 0, 2, 1, 2]
    assert stats.loc[3, ["n_classifications", "n_marks", "n_consensus"]].tolist() == [0, 0, 0]
    assert stats.loc[1, "mean_iou"] == pytest.approx(1.0)
    assert stats.loc[1, "unmatched_fraction"] == pytest.approx(1 / 3)
    assert stats.loc[1, "disagreement"] == pytest.approx(11 / 18)
    assert stats.loc[2, "mean_iou"] == pytest.approx(5 / 7)
    assert stats.loc[2, "disagreement"] == pytest.approx(2 / 7)
    assert np.isnan(stats.loc[3, "disagreement"])
    assert stats.loc[1, "ra"] == 150.0 and tiny_project.metadata_columns == ["ra", "dec"]


def test_volunteer_statistics_match_the_hand_count(tiny_project):
    stats = tiny_project.volunteer_stats.set_index("user")
    assert stats.loc["alice", ["n_classifications", "n_subjects", "n_marks"]].tolist() == [2, 2, 3]
    assert stats.loc["alice", ["precision", "recall", "mean_iou"]].tolist() == pytest.approx([2 / 3, 2 / 3, 1.0])
    assert stats.loc["bob", ["precision", "recall", "mean_iou"]].tolist() == pytest.approx([1.0, 2 / 3, 5 / 7])
    carol = stats.loc["not-logged-in-abc"]
    assert carol.n_marks == 0 and carol.empty_share == 1.0 and not carol.logged_in and np.isnan(carol.mean_iou)
    assert carol.recall == 0.0
    assert stats.loc["alice", "logged_in"]


def test_marks_carry_their_consensus_box_and_offsets(tiny_project):
    marks = tiny_project.marks_of(2).set_index("mark_id")
    assert marks.consensus_id.tolist() == [20, 20]
    assert marks.loc[5, "dx"] == pytest.approx(4.0) and marks.loc[5, "dy"] == pytest.approx(0.0)
    assert marks.loc[5, "iou"] == pytest.approx(3 / 7)
    assert marks.loc[4, "created_at"] == pd.Timestamp("2023-04-01 10:00", tz="UTC")
    unmatched = tiny_project.marks_of(1).set_index("mark_id").loc[2]
    assert unmatched.consensus_id == -1 and np.isnan(unmatched.dx)
    assert tiny_project.marks_of(3).empty and tiny_project.marks_of(999).empty
    assert tiny_project.consensus_of(1).consensus_id.tolist() == [10, 11]


def test_image_locations_stay_inside_the_image_roots(tiny_project, tmp_path):
    image, problem = tiny_project.image(1)
    assert problem is None and image.array.shape == (100, 100, 3)
    assert tiny_project.subject(1).thumbnail == "zoolens-images/0/images/1.png"
    assert (tmp_path / "outside.png").exists()  # subject 2's "../outside.png" points here
    image, problem = tiny_project.image(2)
    assert image is None and "outside the image roots" in problem
    assert tiny_project.subject(2).thumbnail == ""
    image, problem = tiny_project.image(3)  # a URL on a host not allowed: never fetched
    assert image is None and "not allowed" in problem and tiny_project.subject(3).thumbnail == ""
    fits, problem = tiny_project.image(1, "fits")
    assert fits.wcs is None and fits.array[20, 20] == 100.0  # top row first, as the PNG
    assert tiny_project.image(2, "fits") == (None, "subject 2 has no FITS file")
    assert tiny_project.image(999)[0] is None


def test_thumbnails_of_allowed_urls_and_absolute_paths(tiny_tables, tmp_path):
    from tests.dashboard import tiny

    root = tmp_path / "root"
    tiny_tables["subjects"]["locations"] = [
        {"0": "https://panoptes-uploads.zooniverse.org/subject_location/a b.png"},
        {"0": str(root / "images" / "1.png")},
        {"0": "images/../../outside.png"},
    ]
    project = tiny.tiny_project(root, tiny_tables)
    # The remote picture's thumbnail is made and served by the server: the browser never asks the image host.
    assert re.fullmatch(r"zoolens-images/thumbnails/[0-9a-f]{32}\.png", project.subject(1).thumbnail)
    assert project.subject(2).thumbnail == "zoolens-images/0/images/1.png"
    assert project.subject(3).thumbnail == ""


def test_a_project_without_subjects_consensus_or_links(tiny_tables):
    project = Project(tiny_tables["classifications"], tiny_tables["marks"])
    assert project.subject_stats.subject_id.tolist() == [1, 2]
    assert not project.has_links and project.consensus.empty
    assert project.marks.consensus_id.eq(-1).all()
    assert project.subject_stats.disagreement.isna().all()


def test_filters_keep_the_right_subjects(tiny_project):
    store = DataStore(project=tiny_project)
    assert store.subjects.subject_id.tolist() == [1, 2, 3]  # most disagreement first, never-seen last
    assert store.subject == 1
    store.min_volunteers = 3
    assert store.subjects.subject_id.tolist() == [1]
    store.min_volunteers = 0
    store.disagreement = (0.0, 0.3)
    assert store.subjects.subject_id.tolist() == [2]
    store.disagreement = (0.0, 1.0)
    store.workflow = "9001 v12.4"
    assert store.subjects.subject_id.tolist() == [2]
    store.workflow = ANY
    store.tool = "Odd clump"
    assert store.subjects.subject_id.tolist() == [1]
    assert store.marks_of(1).mark_id.tolist() == [2]
    store.tool = ANY
    store.metadata_ranges = {"ra": (180.0, 260.0)}
    assert store.subjects.subject_id.tolist() == [2, 3]
    store.metadata_ranges = {}
    store.selection = np.array([3, 1])
    assert store.subjects.subject_id.tolist() == [1, 3]
    store.clear_selection()
    assert len(store.subjects) == 3


def test_min_votes_hides_weak_consensus_boxes(tiny_project):
    store = DataStore(project=tiny_project, min_votes=2)
    assert store.subjects.subject_id.tolist() == [1, 2]
    assert store.consensus_of(1).consensus_id.tolist() == [10]
    assert store.filtered_consensus().consensus_id.tolist() == [10, 20]


def test_step_subject_walks_the_filtered_order_and_wraps(tiny_project):
    store = DataStore(project=tiny_project)
    store.step_subject(1)
    assert store.subject == 2
    store.step_subject(2)
    assert store.subject == 1
    store.step_subject(-1)
    assert store.subject == 3


def test_sessions_share_the_project_but_not_their_filters(tiny_project):
    before = pd.util.hash_pandas_object(tiny_project.marks.drop(columns=["created_at"])).sum()
    first, second = DataStore(project=tiny_project), DataStore(project=tiny_project)
    first.min_volunteers = 3
    first.subject = 2
    assert second.min_volunteers == 0 and second.subject == 1 and len(second.subjects) == 3
    assert first.project is second.project
    assert first.param.workflow.objects == [ANY, "9001 v12.4", "9001 v13.10"]
    assert pd.util.hash_pandas_object(tiny_project.marks.drop(columns=["created_at"])).sum() == before


def test_counts_a_producer_did_not_record_come_from_the_data(tiny_tables, tmp_path):
    from tests.dashboard import tiny

    tiny_tables["consensus"]["n_votes"] = pd.array([2, None, 2], dtype="Int64")  # box 11: bob's one link
    tiny_tables["consensus"]["n_seen"] = pd.array([3, 3, None], dtype="Int64")  # subject 2: alice and bob
    project = tiny.tiny_project(tmp_path / "root", tiny_tables)
    boxes = project.consensus.set_index("consensus_id")
    assert boxes.n_votes.tolist() == [2, 1, 2] and boxes.n_seen.tolist() == [3, 3, 2]
    store = DataStore(project=project, min_votes=2)
    assert store.consensus_of(1).consensus_id.tolist() == [10]


def test_a_consensus_without_links_is_matched(tiny_tables):
    project = Project(tiny_tables["classifications"], tiny_tables["marks"], consensus=tiny_tables["consensus"])
    links = project.marks.set_index("mark_id")
    # Marks 1, 3, 4 sit exactly on boxes 10, 11, 20; mark 5 overlaps box 20 with IoU 3/7,
    # below the 0.5 a vote needs; mark 2 overlaps nothing.
    assert links.consensus_id.to_dict() == {1: 10, 2: -1, 3: 11, 4: 20, 5: -1}
    assert links.iou[1] == pytest.approx(1.0)
    assert project.has_links
    spread = project.consensus.set_index("consensus_id")
    assert spread.n_votes.tolist() == [2, 1, 2]  # as the hand-made consensus says
    assert {"x_err", "sigma_width"} <= set(spread.columns)


def test_a_held_change_walks_the_document_only_when_it_added_or_removed_models(monkeypatch):
    from bokeh.document import Document
    from bokeh.models import Column, Div

    from dashboard.data_store import changes_held

    document, text = Document(), Div(text="before")
    document.add_root(Column(children=[text]))
    walks = []
    recompute = type(document.models).recompute
    monkeypatch.setattr(type(document.models), "recompute", lambda models: walks.append(1) or recompute(models))
    with changes_held(document):
        text.text = "after"  # data only: the document's models are the same
    assert walks == [] and document.models._freeze_count == 0
    added = Div(text="new")
    with changes_held(document):
        document.roots[0].children = [text, added]
    assert walks == [1] and document.get_model_by_id(added.id) is added
    with changes_held(document), changes_held(document):  # nested: the outer one walks, once
        document.roots[0].children = [text]
    assert walks == [1, 1] and document.get_model_by_id(added.id) is None


def test_the_sidebar_line_on_pictures_not_shown_follows_the_subjects_looked_at(tiny_project):
    store = DataStore(project=tiny_project)
    line = store._image_problems_pane()
    assert store.subject == 1 and line.value == ""  # its picture is inside the image root
    store.subject = 2  # its location points outside the image root: refused, and counted
    assert line.value == "Pictures not shown so far: 1 (image location not allowed: 1)"
    store.subject = 1
    assert line.value == "Pictures not shown so far: 1 (image location not allowed: 1)"  # so far, not now


def test_a_picture_on_a_host_not_allowed_says_how_to_allow_it():
    from project import Project
    from tests.project.test_images import _tables

    classifications, marks, subjects = _tables([1], [{"0": "https://images.example.org/1.png"}])
    store = DataStore(project=Project(classifications, marks, subjects=subjects))
    # No request is made: the host is checked first (the cutout's caption names it and the hosts allowed).
    assert store._image_problems_pane().value == ("Pictures not shown so far: 1 (image host not allowed: 1). Allow a "
                                                  "host with --image-host (image_hosts in Python)")
    assert "host images.example.org is not allowed" in store.project.image(1)[1]


def test_the_sidebar_line_on_pictures_not_shown_counts_a_gallery_page(tiny_project):
    from dashboard.views import Gallery

    store = DataStore(project=tiny_project)
    line = store._image_problems_pane()
    assert store.subject == 1 and line.value == ""
    # The gallery's page tries every subject's picture (subjects 2 and 3 are refused): the line says so at once, without
    # waiting for them to be opened (it stayed at what the cutouts alone had met).
    Gallery(data_store=store)._grid()
    assert store.subject == 1 and line.value == ("Pictures not shown so far: 2 (image host not allowed: 1; image "
                                                 "location not allowed: 1). Allow a host with --image-host "
                                                 "(image_hosts in Python)")
