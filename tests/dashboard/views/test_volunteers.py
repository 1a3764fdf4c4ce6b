"""The volunteers view: statistics table, one volunteer's marks, click-through to a subject."""

from __future__ import annotations

import html

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
