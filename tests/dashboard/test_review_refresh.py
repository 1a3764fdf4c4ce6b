"""The review refresh shared by a process's sessions: counted work per decision, and every decision shown everywhere.

Tiny project (tests/dashboard/tiny.py): subject 1 has boxes 10 and 11, subject 2 box 20, subject 3
none; subject 1 has 3 volunteers, subject 2 two, subject 3 none. Statuses follow
`ReviewStore.subject_status`: one of subject 1's two boxes accepted is "mixed", subject 2's one box
rejected is "rejected".
"""

from __future__ import annotations

import numpy as np
import pytest
from bokeh.document import Document

from dashboard import review_refresh
from dashboard.data_store import DataStore
from dashboard.review_refresh import shared_reviews
from dashboard.views import SubjectBrowser
from project.reviews import GEOMETRY, ReviewStore


class Session:
    """One reviewer's session as the server makes it: the data store, the subjects table in a Bokeh document,
    the sidebar's counts."""

    def __init__(self, project, reviews, **filters):
        self.store = DataStore(project=project, reviews=reviews, **filters)
        self.browser = SubjectBrowser(data_store=self.store)
        self.model = self.browser.table.get_root(Document())
        self.replaced = []  # the table's rows replaced: Tabulator sends and styles a whole page
        self.browser.table.param.watch(self.replaced.append, "value")
        self.counts = self.store._counts_pane()

    def shown(self) -> dict[int, str]:
        """Subject -> status as the page's data source holds them."""
        data = self.model.source.data
        return dict(zip(np.asarray(data["subject_id"]).tolist(), np.asarray(data["review_status"]).tolist()))


def decide(project, reviews, subject_id, action, reviewer, consensus_id):
    """A decision made in another session (or process): straight into the store."""
    box = project.consensus[project.consensus.consensus_id == consensus_id].iloc[0]
    reviews.record(project.consensus_source, subject_id, action, reviewer, consensus_id=consensus_id,
                   original={name: float(box[name]) for name in GEOMETRY})


@pytest.fixture
def counted(monkeypatch):
    """Counts of the work done: readings of the store's decisions, filter passes."""
    counts = {"readings": 0, "passing_filters": []}
    review_state, passing_filters = ReviewStore.review_state, DataStore.passing_filters

    def counted_review_state(self, *args, **kwargs):
        counts["readings"] += 1
        return review_state(self, *args, **kwargs)

    def counted_passing_filters(self, *args, **kwargs):
        counts["passing_filters"].append(self)
        return passing_filters(self, *args, **kwargs)

    monkeypatch.setattr(ReviewStore, "review_state", counted_review_state)
    monkeypatch.setattr(DataStore, "passing_filters", counted_passing_filters)
    return counts


def test_a_decision_is_read_once_and_patches_only_the_status_cells_in_every_session(tiny_project, review_store,
                                                                                   counted):
    sessions = [Session(tiny_project, review_store) for _ in range(4)]
    only_subject_1 = Session(tiny_project, review_store, min_volunteers=3)
    unreviewed_only = Session(tiny_project, review_store, review_status="unreviewed")
    counted["readings"], counted["passing_filters"][:] = 0, []
    decide(tiny_project, review_store, 2, "reject", "ann", 20)
    for session in [*sessions, only_subject_1, unreviewed_only]:
        assert session.store.refresh_reviews() is True
    # One reading of the store for six sessions; filtered again only where a status filter decides which pass.
    assert counted["readings"] == 1
    assert counted["passing_filters"] == [unreviewed_only.store]
    for session in sessions:
        # The Review cell patched in the page's rows, the table's rows not replaced.
        assert session.replaced == []
        assert session.shown() == {1: "unreviewed", 2: "rejected", 3: "unreviewed"}
        assert "<b>1</b> of 3 reviewed (ann 1)" in session.counts.value
    # A session not showing subject 2 does nothing with the decision.
    assert only_subject_1.replaced == [] and only_subject_1.store.review_changes is None
    assert only_subject_1.shown() == {1: "unreviewed"}
    assert "<b>0</b> of 1 reviewed" in only_subject_1.counts.value
    assert unreviewed_only.shown() == {1: "unreviewed", 3: "unreviewed"}

    # A second decision, on subject 1, by another reviewer: again one reading, every session shows it.
    decide(tiny_project, review_store, 1, "accept", "bob", 10)
    for session in [*sessions, only_subject_1, unreviewed_only]:
        assert session.store.refresh_reviews() is True
    assert counted["readings"] == 2
    for session in sessions:
        assert session.replaced == []
        assert session.shown() == {1: "mixed", 2: "rejected", 3: "unreviewed"}
        assert "<b>2</b> of 3 reviewed (ann 1 · bob 1)" in session.counts.value
    assert only_subject_1.replaced == [] and only_subject_1.shown() == {1: "mixed"}
    assert "<b>1</b> of 1 reviewed (bob 1)" in only_subject_1.counts.value
    assert unreviewed_only.shown() == {3: "unreviewed"}
    assert all(session.store.refresh_reviews() is False for session in sessions)  # nothing new
    assert counted["readings"] == 2


def test_the_current_subjects_views_follow_a_decision_on_it_only(tiny_project, review_store):
    on_1, on_2 = (DataStore(project=tiny_project, reviews=review_store, subject=subject) for subject in (1, 2))
    before = on_1.subject_decisions, on_2.subject_decisions
    decide(tiny_project, review_store, 2, "reject", "ann", 20)
    on_1.refresh_reviews(), on_2.refresh_reviews()
    assert (on_1.subject_decisions - before[0], on_2.subject_decisions - before[1]) == (0, 1)
    assert on_2.reviewed_consensus_of().status.tolist() == ["rejected"]


def test_the_newest_decision_is_asked_once_per_poll_age_for_all_sessions(tiny_project, review_store, monkeypatch):
    sessions = [DataStore(project=tiny_project, reviews=review_store) for _ in range(3)]
    asked, last_decision_id = [], ReviewStore.last_decision_id
    monkeypatch.setattr(ReviewStore, "last_decision_id", lambda self: asked.append(1) or last_decision_id(self))
    decide(tiny_project, review_store, 2, "reject", "ann", 20)
    assert sessions[0].refresh_reviews() is True  # asks now (the deciding session does this)
    assert [session.refresh_reviews(poll_age=60) for session in sessions[1:]] == [True, True]
    assert len(asked) == 1
    assert all(session.review_status_of([2]).tolist() == ["rejected"] for session in sessions)


def test_a_session_further_behind_than_the_kept_changes_takes_the_whole_state(tiny_project, review_store,
                                                                              monkeypatch):
    monkeypatch.setattr(review_refresh, "KEPT_CHANGES", 2)
    active, asleep = Session(tiny_project, review_store), Session(tiny_project, review_store)
    for subject, action, box in ((1, "accept", 10), (1, "accept", 11), (2, "reject", 20), (1, "reject", 10)):
        decide(tiny_project, review_store, subject, action, "ann", box)
        assert active.store.refresh_reviews()
    shared = shared_reviews(review_store, tiny_project)
    assert shared.changed_since(asleep.store.last_decision, shared.reading(review_store.last_decision_id())) is None
    assert asleep.store.refresh_reviews()
    assert asleep.shown() == active.shown() == {1: "mixed", 2: "rejected", 3: "unreviewed"}
    assert asleep.store.review_progress() == active.store.review_progress() == (2, 3, {"ann": 2})


def test_the_subjects_changed_between_readings(tiny_project, review_store):
    shared = shared_reviews(review_store, tiny_project)
    readings = [shared.reading(0)]
    # A first decision on a box adds its row; a second changes that row only; then another subject.
    for subject, action, box in ((2, "reject", 20), (2, "accept", 20), (1, "accept", 10)):
        decide(tiny_project, review_store, subject, action, "ann", box)
        readings.append(shared.reading(review_store.last_decision_id()))
    assert [shared.changed_since(before.decision, after).tolist()
            for before, after in zip(readings, readings[1:])] == [[2], [2], [1]]
    assert shared.changed_since(readings[0].decision, readings[-1]).tolist() == [1, 2]
    assert shared.changed_since(readings[-1].decision, readings[-1]).tolist() == []
    assert shared.changed_since(99, readings[-1]) is None  # not a reading of this process
    assert shared.reads == 4
