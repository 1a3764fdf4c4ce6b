"""The volunteers view: statistics table, one volunteer's marks, click-through to a subject."""

from __future__ import annotations

import html

import numpy as np
import panel as pn

from dashboard.data_store import DataStore
from dashboard.views import VolunteerTable


def test_picking_a_volunteer_lists_their_marks_and_a_mark_its_subject(tiny_project):
    store = DataStore(project=tiny_project)
    view = VolunteerTable(data_store=store)
    assert view.volunteer_marks().empty
    volunteers = view._volunteers
    assert volunteers.value.user.tolist()[:2] == ["alice", "bob"]
    volunteers.selection = [1]
    assert store.volunteer == "bob"
    marks = view._marks.value
    assert marks.subject_id.tolist() == [1, 2]  # bob's marks 3 (May) and 5 (April), newest first
    view._marks.selection = [1]
    assert store.subject == 2
    store.tool = "Odd clump"
    store.volunteer = "alice"
    assert view._marks.value.x.tolist() == [80.0]


def test_a_volunteer_name_holding_html_is_escaped(tiny_project):
    store = DataStore(project=tiny_project, volunteer="<script>alert(1)</script>")
    heading = VolunteerTable(data_store=store)._heading()
    assert isinstance(heading, pn.pane.HTML)
    assert "<script>" not in heading.object
    assert html.escape("<script>alert(1)</script>") in heading.object


def test_activity_counts_classifications_per_day_and_week(tiny_project):
    import pandas as pd

    store = DataStore(project=tiny_project)
    view = VolunteerTable(data_store=store)
    everyone = view.activity().set_index("start").n_classifications
    # 1 April 2023 (alice, bob) to 2 May (carol): 32 days, classifications on three of them.
    assert len(everyone) == 32
    day = pd.Timestamp
    assert everyone[everyone > 0].to_dict() == {day("2023-04-01", tz="UTC"): 2, day("2023-05-01", tz="UTC"): 2,
                                                 day("2023-05-02", tz="UTC"): 1}
    bob = view.activity("bob").set_index("start").n_classifications
    assert bob[bob > 0].to_dict() == {day("2023-04-01", tz="UTC"): 1, day("2023-05-01", tz="UTC"): 1}
    view.period = "week"
    weekly = view.activity().set_index("start").n_classifications
    # 1 April 2023 is a Saturday (week of Monday 27 March), 1 May a Monday: six weeks.
    assert weekly.index[0] == day("2023-03-27", tz="UTC") and len(weekly) == 6
    assert weekly[weekly > 0].to_dict() == {day("2023-03-27", tz="UTC"): 2, day("2023-05-01", tz="UTC"): 3}


def test_activity_plot_puts_the_picked_volunteer_over_everyone(tiny_project):
    store = DataStore(project=tiny_project)
    view = VolunteerTable(data_store=store)
    assert len(view.activity_plot()) == 1
    store.volunteer = "bob"
    everyone, bob = view.activity_plot()
    assert everyone.dimension_values("n_classifications").sum() == 5
    assert bob.dimension_values("n_classifications").sum() == 2
    assert pn.panel(view).get_root() is not None


def test_the_tables_follow_the_filters_and_the_plot_selection(tiny_project):
    store = DataStore(project=tiny_project)
    view = VolunteerTable(data_store=store)
    everyone = view._volunteers.value.set_index("user")
    store.volunteer = "bob"
    assert view._marks.value.subject_id.tolist() == [1, 2]
    store.selection = np.array([2])
    counted = view._volunteers.value.set_index("user")
    seen = tiny_project.classifications[tiny_project.classifications.subject_id == 2]
    assert sorted(counted.index) == sorted(seen.user.unique())
    assert (counted.n_classifications <= everyone.n_classifications.reindex(counted.index)).all()
    assert counted.n_subjects.max() == 1
    assert view._marks.value.subject_id.tolist() == [2]
    assert "1 of" in view._scope().object
    store.clear_selection()
    assert view._volunteers.value.equals(everyone.reset_index())
