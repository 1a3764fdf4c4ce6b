"""A subject's consensus boxes as reviewed, made from arrays (`dashboard.reviewed_boxes`)."""

from __future__ import annotations

import pandas as pd

from dashboard.data_store import DataStore
from project.reviews import open_store
from project.roles import Reviewer

LEAD = Reviewer("ann", "lead", "unverified")
A = {"x": 10.0, "y": 10.0, "width": 20.0, "height": 20.0, "angle": 0.0}
B = {"x": 60.0, "y": 60.0, "width": 10.0, "height": 10.0, "angle": 0.0}
C = {"x": 30.0, "y": 30.0, "width": 10.0, "height": 10.0, "angle": 0.0}


def test_boxes_without_decisions_are_unreviewed_at_their_aggregated_place(tiny_project, tmp_path):
    store = DataStore(project=tiny_project, reviews=open_store(str(tmp_path / "reviews.sqlite")), reviewer="ann")
    boxes = store.reviewed_consensus_of(1)
    assert boxes.consensus_id.tolist() == [10, 11] and boxes.subject_id.tolist() == [1, 1]
    assert boxes.status.tolist() == ["unreviewed", "unreviewed"] and boxes.reviewer.tolist() == [None, None]
    assert boxes.x.tolist() == boxes.original_x.tolist() == [10.0, 60.0]
    assert boxes.n_votes.tolist() == [2, 1] and str(boxes.n_votes.dtype) == "Int64"
    assert str(boxes.decided_at.dtype) == "datetime64[ns, UTC]" and boxes.decided_at.isna().all()
    assert len(store.reviewed_consensus_of(3)) == 0  # never classified: no box
    store.min_votes = 2
    assert store.reviewed_consensus_of(1).consensus_id.tolist() == [10]  # B has one vote


def test_decisions_set_status_place_and_reviewer_and_added_boxes_follow(tiny_project, tmp_path):
    reviews = open_store(str(tmp_path / "reviews.sqlite"))
    source = tiny_project.consensus_source
    reviews.record(source, 1, "accept", LEAD, consensus_id=10, original=A)
    reviews.record(source, 1, "redraw", LEAD, consensus_id=11, original=B,
                   geometry={"x": 61.0, "y": 62.0, "width": 9.0, "height": 8.0})
    reviews.record(source, 2, "reject", LEAD, consensus_id=20, original=C)
    reviews.record(source, 2, "add", LEAD, geometry={"x": 1.0, "y": 2.0, "width": 3.0, "height": 4.0})
    store = DataStore(project=tiny_project, reviews=reviews, reviewer="ann")
    first = store.reviewed_consensus_of(1)
    assert first.status.tolist() == ["accepted", "redrawn"] and first.reviewer.tolist() == ["ann", "ann"]
    assert first.x.tolist() == [10.0, 61.0] and first.height.tolist() == [20.0, 8.0]
    assert first.original_x.tolist() == [10.0, 60.0] and first.original_height.tolist() == [20.0, 10.0]
    assert first.decided_at.notna().all() and str(first.decided_at.dt.tz) == "UTC"
    second = store.reviewed_consensus_of(2)
    # The aggregated box first (rejected, in place), then the added one: negative id, no counts, no original.
    assert second.status.tolist() == ["rejected", "added"] and second.subject_id.tolist() == [2, 2]
    assert second.consensus_id.iloc[0] == 20 and second.consensus_id.iloc[1] < 0
    assert second.x.tolist() == [30.0, 1.0] and second.width.tolist() == [10.0, 3.0]
    assert second.n_votes.isna().tolist() == [False, True] and pd.isna(second.original_x.iloc[1])
    # Another subject's decisions never leak in.
    assert store.reviewed_consensus_of(3).empty
