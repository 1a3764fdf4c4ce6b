"""The review panel on the tiny project: decisions made through its widgets land in a real SQLite store.

Subject 1 has consensus boxes 10 at (10, 10, 20, 20) and 11 at (60, 60, 10, 10); subject 2 has
box 20 (see tests/dashboard/tiny.py). Expected statuses follow `ReviewStore.subject_status`'s rules,
worked out by hand in the comments.
"""

from __future__ import annotations

import io
import json
import zipfile

import pandas as pd
import panel as pn
import pytest

from dashboard import Explorer
from dashboard.data_store import DataStore
from project.reviews import ReviewError
from project.roles import OIDC, SHARED_PASSWORD, USERS_FILE, Reviewer, RoleError
from dashboard.views import ExportView, ReviewPanel, get_view
from dashboard.views.cutout import REJECTED_COLOUR
from dashboard.views.geometry_inputs import GeometryInputs


@pytest.fixture
def explorer(tiny_project, review_store):
    explorer = Explorer(tiny_project, reviews=review_store)
    explorer.data_store.subject = 1
    return explorer


def widgets(view, kind):
    """The view's widgets of one kind, by label (buttons) or name (inputs), its folded cards unfolded
    (their contents are made then)."""
    layout = view.__panel__()
    for card in layout.select(pn.Card):
        card.collapsed = False
    return {getattr(widget, "label", None) or widget.name: widget for widget in layout.select(kind)}


def click(view, label):
    widgets(view, pn.widgets.Button)[label].clicks += 1


def test_registered_by_short_name():
    assert get_view("review") is ReviewPanel


def test_no_decision_without_a_reviewer_name(explorer, review_store):
    with pytest.raises(ReviewError, match="enter your name"):
        explorer.review.accept()
    assert review_store.last_decision_id() == 0


def test_switching_subject_moves_the_pick_without_a_second_redraw(explorer):
    # The pick follows the subject by derivation: were review_box set on each switch, the cutout
    # (which depends on it) would redraw twice per switch.
    data_store, changes = explorer.data_store, []
    data_store.param.watch(changes.append, "review_box")
    data_store.subject = 2
    assert data_store.picked_box_id() == 20 and explorer.review._boxes.selection == [0]
    assert explorer.cutout.drawn("picked").consensus_box.tolist() == [20]
    data_store.subject = 3  # no consensus box
    assert data_store.picked_box_id() is None and len(explorer.cutout.drawn("picked")) == 0
    assert changes == []
    explorer.review._boxes.selection = []
    data_store.subject = 1
    explorer.review._boxes.selection = [1]  # a reviewer's pick does change it
    assert [event.new for event in changes] == [11] and data_store.picked_box_id() == 11


def test_accept_and_reject_through_the_buttons(explorer, review_store, tiny_project):
    review, data_store = explorer.review, explorer.data_store
    data_store.reviewer = "ann"
    assert data_store.picked_box_id() == 10  # the subject's first box is picked to start with
    click(review, "Accept")
    history = review_store.history()
    assert history[["subject_id", "consensus_id", "action", "reviewer"]].values.tolist() == [[1, 10, "accept", "ann"]]
    assert history["consensus_source"].iloc[0] == tiny_project.consensus_source
    assert history["before"].iloc[0] == {"x": 10.0, "y": 10.0, "width": 20.0, "height": 20.0, "angle": 0.0,
                                         "status": "unreviewed"}
    # Box 10 accepted, box 11 not reviewed: mixed.
    assert data_store.subjects.set_index("subject_id").review_status.to_dict() == {
        1: "mixed", 2: "unreviewed", 3: "unreviewed"}
    assert review._boxes.value.status.tolist() == ["accepted", "unreviewed"]

    review._boxes.selection = [1]  # pick box 11 in the table
    assert data_store.review_box == 11
    widgets(review, pn.widgets.TextInput)["Reason"].value = "a cosmic ray"
    click(review, "Reject")
    last = review_store.history().iloc[-1]
    assert (last.consensus_id, last.action, last.reason) == (11, "reject", "a cosmic ray")
    assert review.reason == ""  # the reason went with that decision
    # One accepted, one rejected: still mixed; the cutout draws 11 dashed grey, 10 as before.
    assert data_store.review_status_of([1]).tolist() == ["mixed"]
    assert explorer.cutout.consensus_boxes().consensus_box.tolist() == [10]
    rejected = explorer.cutout.drawn("consensus rejected")
    assert rejected[["consensus_box", "x0", "y0", "x1", "y1"]].values.tolist() == [[11, 60, 60, 70, 70]]
    assert rejected.colour.tolist() == [REJECTED_COLOUR]

    review._boxes.selection = [1]
    click(review, "Accept")  # changed mind: every box accepted
    assert data_store.review_status_of([1]).tolist() == ["accepted"]


def test_review_by_keyboard(explorer, review_store, monkeypatch):
    data_store, keys = explorer.data_store, explorer.keys
    # Errors go where Panel sends those of button callbacks (a notification in the app).
    errors = []
    monkeypatch.setattr(pn.config, "exception_handler", errors.append)

    def press(*names):
        for name in names:
            keys._handle_msg({"key": name})

    press("a")  # no reviewer name yet: nothing recorded
    assert "enter your name" in str(errors.pop())
    assert review_store.last_decision_id() == 0 and data_store.picked_box_id() == 10
    data_store.reviewer = "ann"
    press("n", "n")  # box 10 -> 11 -> back to 10 (the subject has two)
    assert data_store.picked_box_id() == 10
    press("p")
    assert data_store.picked_box_id() == 11
    press("x")  # reject 11; the pick moves on, wrapping to 10
    assert data_store.picked_box_id() == 10
    press("a")  # accept 10; the pick moves on to 11
    history = review_store.history()
    assert history[["consensus_id", "action", "reviewer"]].values.tolist() == [
        [11, "reject", "ann"], [10, "accept", "ann"]]
    assert data_store.picked_box_id() == 11 and explorer.review._boxes.selection == [1]
    assert explorer.review._boxes.value.status.tolist() == ["accepted", "rejected"]
    press("u")  # revert the accept of 10
    assert review_store.history().iloc[-1].action == "revert"
    assert explorer.review._boxes.value.status.tolist() == ["unreviewed", "rejected"]
    press("j")  # next subject: 2, whose one box is picked
    assert data_store.subject == 2 and data_store.picked_box_id() == 20
    press("n")
    assert data_store.picked_box_id() == 20
    data_store.subject = 3  # no box: box keys do nothing, decisions say why
    press("n")
    assert data_store.picked_box_id() is None
    press("a")
    assert "pick a box" in str(errors.pop())
    assert len(review_store.history()) == 3 and errors == []


def test_redraw_and_add_boxes_through_the_geometry_inputs(explorer, review_store):
    review, data_store = explorer.review, explorer.data_store
    data_store.reviewer = "ann"
    data_store.review_box = 11
    inputs, = widgets(review, GeometryInputs).values()  # the panel's four typed numbers
    assert inputs.shown() == {"x": 60.0, "y": 60.0, "width": 10.0, "height": 10.0}
    inputs.values = [58.0, 60.0, 14.0, 10.0]  # as the page sends them, x and width typed
    click(review, "Redraw")
    box = review_store.box_status(data_store.project.consensus_source).set_index("consensus_id").loc[11]
    assert (box.status, box.x, box.y, box.width, box.height) == ("redrawn", 58.0, 60.0, 14.0, 10.0)
    assert (box.original_x, box.original_width) == (60.0, 10.0)
    assert data_store.review_status_of([1]).tolist() == ["edited"]
    drawn = explorer.cutout.drawn("consensus redrawn").set_index("consensus_box")
    assert drawn.loc[11, ["x0", "y0", "x1", "y1", "status"]].tolist() == [58, 60, 72, 70, "redrawn"]

    inputs.values = [40.0, 70.0, 6.0, 8.0]
    click(review, "Add box")
    added = review_store.history().iloc[-1]
    assert added.action == "add" and added.consensus_id < 0 and added.after["status"] == "added"
    assert data_store.review_box == added.consensus_id
    drawn = explorer.cutout.drawn("consensus added")
    assert drawn[["consensus_box", "x0", "y0", "x1", "y1"]].values.tolist() == [[added.consensus_id, 40, 70, 46, 78]]
    assert len(review._boxes.value) == 3
    # A click inside the added box (and inside nothing else) picks it.
    data_store.review_box = 10
    explorer.cutout._pick_box(x=43.0, y=75.0)
    assert data_store.review_box == added.consensus_id
    # The pick is a ring around the box, a few screen pixels out, whatever the zoom.
    picked = explorer.cutout.drawn("picked")
    ring = 4.75 / explorer.cutout.screen_scale()  # gap 2 + half the ring 1.25 + half the widest outline 1.5
    assert picked.consensus_box.tolist() == [added.consensus_id]
    assert picked[["x0", "y0", "x1", "y1"]].values.tolist()[0] == pytest.approx(
        [40 - ring, 70 - ring, 46 + ring, 78 + ring])
    explorer.cutout._pick_box(x=20.0, y=20.0)
    assert data_store.review_box == 10
    explorer.cutout._pick_box(x=95.0, y=5.0)  # on no box: the pick stays
    assert data_store.review_box == 10


def test_boxes_drawn_on_the_cutout_feed_redraw_and_add(explorer, review_store):
    review, data_store, cutout = explorer.review, explorer.data_store, explorer.cutout
    data_store.reviewer = "ann"
    data_store.review_box = 11
    # A box-select drag from (70, 62) to (56, 58): the y axis runs down the image, so the
    # tool's "bottom" is the larger y; drags of no area draw nothing.
    cutout._draw_box(bounds=(70.0, 62.0, 56.0, 58.0))
    assert data_store.drawn_box == (56.0, 58.0, 14.0, 4.0)
    cutout._draw_box(bounds=(30.0, 30.0, 30.0, 40.0))
    cutout._draw_box(bounds=None)
    assert data_store.drawn_box == (56.0, 58.0, 14.0, 4.0)
    inputs, = widgets(review, GeometryInputs).values()  # the panel's four typed numbers
    assert inputs.shown() == {"x": 56.0, "y": 58.0, "width": 14.0, "height": 4.0}
    drawn = cutout.drawn("drawn box")
    assert drawn[["left", "top", "right", "bottom"]].values.tolist() == [[56, 58, 70, 62]]
    click(review, "Redraw")
    box = review_store.box_status(data_store.project.consensus_source).set_index("consensus_id").loc[11]
    assert (box.status, box.x, box.y, box.width, box.height) == ("redrawn", 56.0, 58.0, 14.0, 4.0)
    assert data_store.drawn_box is None and len(cutout.drawn("drawn box")) == 0

    cutout._draw_box(bounds=(5.0, 95.0, 25.0, 80.0))
    click(review, "Add box")
    added = review_store.history().iloc[-1]
    assert added.action == "add" and [added.after[name] for name in ("x", "y", "width", "height")] == [
        5.0, 80.0, 20.0, 15.0]
    cutout._draw_box(bounds=(5.0, 5.0, 9.0, 9.0))
    data_store.subject = 2  # a drawn box belongs to its subject
    assert data_store.drawn_box is None


def test_a_box_drawn_with_the_box_draw_tool_is_added_at_once(explorer, review_store):
    from bokeh.document import Document

    cutout, data_store = explorer.cutout, explorer.data_store
    data_store.reviewer = "ann"
    document = Document()
    document.add_root(cutout.figure())
    tool = [tool for tool in cutout.figure().tools if type(tool).__name__ == "BoxEditTool"][0]
    assert tool.renderers == [cutout.renderer("new box")]
    # The browser's tool puts the drawn box in the layer's source (y down: its "top" the larger y here), step
    # by step; once the steps stop the box is added and the source emptied.
    source = cutout.renderer("new box").data_source
    source.data = {"left": [52.0], "right": [40.0], "top": [90.0], "bottom": [80.0]}
    cutout._box_drawn()
    added = review_store.history().iloc[-1]
    assert (added.action, added.reviewer) == ("add", "ann")
    assert [added.after[name] for name in ("x", "y", "width", "height")] == [40.0, 80.0, 12.0, 10.0]
    assert data_store.review_box == added.consensus_id  # the added box is picked, as a typed add's is
    assert len(source.data["left"]) == 0
    assert cutout.drawn("consensus added").consensus_box.tolist() == [added.consensus_id]


def test_flag_filter_and_revert(explorer, review_store):
    review, data_store = explorer.review, explorer.data_store
    data_store.reviewer = "ann"
    review.reason = "two galaxies overlap"
    click(review, "Flag subject")
    flag = review_store.history().iloc[-1]
    assert (flag.action, pd.isna(flag.consensus_id), flag.reason) == ("flag", True, "two galaxies overlap")
    data_store.review_status = "flagged"
    assert data_store.subjects.subject_id.tolist() == [1]
    data_store.review_status = "unreviewed"
    assert sorted(data_store.subjects.subject_id) == [2, 3]
    data_store.review_status = "any"

    click(review, "Revert last")  # undoes the flag
    assert review_store.history().action.tolist() == ["flag", "revert"]
    assert data_store.review_status_of([1]).tolist() == ["unreviewed"]
    history = review.history_table.value
    assert history[["action", "consensus_id", "active"]].values.tolist() == [
        ["revert", "subject", True], ["flag", "subject", False]]
    with pytest.raises(ReviewError, match="no decision in effect"):
        review.revert_last()


def test_other_sessions_see_decisions_on_refresh(explorer, review_store, tiny_project):
    other = DataStore(project=tiny_project, reviews=review_store, subject=1)
    explorer.data_store.reviewer = "ann"
    explorer.review.reject(10)
    assert other.review_status_of([1]).tolist() == ["unreviewed"]  # not read yet
    assert other.refresh_reviews() is True
    assert other.review_status_of([1]).tolist() == ["mixed"]
    assert other.reviewed_consensus_of().status.tolist() == ["rejected", "unreviewed"]
    assert other.refresh_reviews() is False  # nothing new


def test_another_sessions_decision_updates_the_status_column_without_filtering_again(explorer, review_store,
                                                                                     tiny_project, monkeypatch):
    other = DataStore(project=tiny_project, reviews=review_store, subject=1)
    unreviewed_only = DataStore(project=tiny_project, reviews=review_store, subject=1, review_status="unreviewed")
    order = other.subjects.subject_id.tolist()
    filtered, passing_filters = [], DataStore.passing_filters

    def counted(self, *args, **kwargs):
        filtered.append(self)
        return passing_filters(self, *args, **kwargs)

    monkeypatch.setattr(DataStore, "passing_filters", counted)
    explorer.data_store.reviewer = "ann"
    explorer.review.reject(10)
    assert other.refresh_reviews() and unreviewed_only.refresh_reviews()
    # No status filter: the same subjects in the same order, subject 1 now "mixed", no filtering again.
    assert other.subjects.subject_id.tolist() == order
    assert dict(zip(other.subjects.subject_id, other.subjects.review_status)) == {
        subject: ("mixed" if subject == 1 else "unreviewed") for subject in order}
    # A status filter keeps subjects by their status: filtered again, subject 1 gone.
    assert filtered == [unreviewed_only] and 1 not in unreviewed_only.subjects.subject_id.tolist()


def test_names_are_escaped_in_the_heading(explorer):
    explorer.data_store.reviewer = "<img src=x onerror=alert(1)>"
    heading = explorer.review._heading()
    assert "&lt;img src=x onerror=alert(1)&gt;" in heading.value and "<img" not in heading.value


def test_without_a_store_the_panel_says_how_to_start(tiny_project):
    explorer = Explorer(tiny_project)
    assert "--reviews" in explorer.review._heading().value
    assert explorer.data_store.subjects.review_status.unique().tolist() == ["unreviewed"]
    explorer.data_store.reviewer = "ann"
    with pytest.raises(ReviewError, match="no review store"):
        explorer.review.accept()


def test_the_reviewed_export(explorer, review_store):
    data_store = explorer.data_store
    data_store.reviewer = "ann"
    explorer.review.reject(11)
    explorer.review.x, explorer.review.y, explorer.review.width, explorer.review.height = 40.0, 70.0, 6.0, 8.0
    explorer.review.add()
    export = ExportView(data_store=data_store, reviewed=True)
    name, content = export.export()
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        catalogue = pd.read_csv(archive.open("zoolens-selection.csv"))
        provenance = json.loads(archive.read("zoolens-selection.provenance.json"))
    # 11 rejected and left out; 10 and 20 unreviewed; the added box in.
    assert sorted(catalogue.consensus_id) == [-2, 10, 20]
    assert catalogue.set_index("consensus_id").review_status.to_dict() == {
        10: "unreviewed", 20: "unreviewed", -2: "added"}
    review = provenance["review"]
    assert (review["decisions"], review["in_effect"], review["by_action"]) == (2, 2, {"add": 1, "reject": 1})
    assert review["consensus_source"] == data_store.project.consensus_source
    assert review["store"].endswith("reviews.sqlite")
    plain = ExportView(data_store=data_store)
    with zipfile.ZipFile(io.BytesIO(plain.export()[1])) as archive:
        assert sorted(pd.read_csv(archive.open("zoolens-selection.csv")).consensus_id) == [10, 11, 20]


def test_sessions_share_one_reading_of_the_store(explorer, review_store, tiny_project):
    others = [DataStore(project=tiny_project, reviews=review_store) for _ in range(2)]
    explorer.data_store.reviewer = "ann"
    explorer.review.accept(10)
    for other in others:
        assert other.refresh_reviews() is True
    # The deciding session read the store; the others reuse that reading, not a copy of it.
    assert others[0].review_statuses is others[1].review_statuses is explorer.data_store.review_statuses


# --- roles ------------------------------------------------------------------------------------

def signed_in_explorer(project, store, name, role, authentication=USERS_FILE):
    explorer = Explorer(project, reviews=store, reviewer=Reviewer(name, role, authentication))
    explorer.data_store.subject = 1
    return explorer


def test_revert_last_takes_a_reviewers_own_decision_and_a_leads_anyones(tiny_project, review_store):
    bob = signed_in_explorer(tiny_project, review_store, "bob", "reviewer")
    carol = signed_in_explorer(tiny_project, review_store, "carol", "reviewer")
    ann = signed_in_explorer(tiny_project, review_store, "ann", "lead")
    bob.review.accept(10)
    carol.review.reject(11)  # the newest decision on subject 1 is carol's
    for session in (bob, carol, ann):
        session.data_store.refresh_reviews()
    reverted = bob.review.revert_last()  # bob's own, not carol's newer one
    assert (reverted.reviewer, reverted.role, reverted.authentication) == ("bob", "reviewer", USERS_FILE)
    with pytest.raises(ReviewError, match="subject 1 has no decision of yours in effect to revert"):
        bob.review.revert_last()
    assert ann.review.revert_last().reverts == 2  # a lead takes anyone's: carol's reject
    history = review_store.history()
    assert history[["reviewer", "role", "action", "reverts"]].astype(object).values.tolist() == [
        ["bob", "reviewer", "accept", pd.NA], ["carol", "reviewer", "reject", pd.NA],
        ["bob", "reviewer", "revert", 1], ["ann", "lead", "revert", 2]]
    rows = ann.review.history_table.value
    assert rows[["reviewer", "role"]].values.tolist()[0] == ["ann", "lead"]  # the panel shows the role


def test_the_panel_offers_only_what_the_role_may_do_and_the_store_refuses_the_rest(tiny_project, review_store):
    viewer = signed_in_explorer(tiny_project, review_store, "vic", "viewer", OIDC)
    assert not {"Accept", "Reject", "Revert last", "Flag subject"} & set(widgets(viewer.review, pn.widgets.Button))
    assert "you can look and export" in viewer.review._heading().value
    with pytest.raises(RoleError, match="vic is a viewer: accept needs the reviewer role"):
        viewer.review.accept(10)  # as a message from a forged page would
    reviewer = signed_in_explorer(tiny_project, review_store, "bob", "reviewer")
    buttons = set(widgets(reviewer.review, pn.widgets.Button))
    assert {"Accept", "Revert last"} <= buttons and "Flag subject" not in buttons
    with pytest.raises(RoleError, match="bob is a reviewer: flag needs the lead role"):
        reviewer.review.flag()
    assert review_store.last_decision_id() == 0
    lead = signed_in_explorer(tiny_project, review_store, "ann", "lead")
    assert {"Accept", "Flag subject"} <= set(widgets(lead.review, pn.widgets.Button))
    lead.review.flag()
    assert review_store.history().authentication.tolist() == [USERS_FILE]


def test_shared_password_mode_is_labelled_in_the_page_and_the_records(tiny_project, review_store):
    shared = signed_in_explorer(tiny_project, review_store, "ann", "reviewer", SHARED_PASSWORD)
    assert "shared-password mode" in shared.review._heading().value
    sidebar = [pane.object for pane in pn.Column(*shared.sidebar()).select(pn.pane.HTML)
               if "Reviewing as" in str(pane.object)]
    assert len(sidebar) == 1 and "shared-password mode" in sidebar[0]
    shared.review.accept(10)
    assert review_store.history()[["reviewer", "authentication"]].values.tolist() == [["ann", SHARED_PASSWORD]]


def test_a_signed_in_name_cannot_be_changed_in_the_session(tiny_project, review_store):
    signed_in = signed_in_explorer(tiny_project, review_store, "bob", "reviewer")
    with pytest.raises(TypeError, match="Constant parameter 'reviewer'"):
        signed_in.data_store.reviewer = "ann"
    typed = Explorer(tiny_project, reviews=review_store)  # without sign-in, the name is typed
    typed.data_store.reviewer = "ann"
    assert (signed_in.data_store.reviewer, typed.data_store.reviewer) == ("bob", "ann")


def test_a_lead_assigns_the_subject_and_everyone_sees_it(tiny_project, review_store):
    lead = signed_in_explorer(tiny_project, review_store, "ann", "lead")
    reviewer = signed_in_explorer(tiny_project, review_store, "bob", "reviewer")
    assert "Assign" not in widgets(reviewer.review, pn.widgets.Button)
    reviewer.review.assignee = "bob"
    with pytest.raises(RoleError, match="bob is a reviewer: assign needs the lead role"):
        reviewer.review.assign()
    widgets(lead.review, pn.widgets.TextInput)["Assign to"].value = "<b>bob</b>"
    click(lead.review, "Assign")
    assert review_store.assignments(tiny_project.consensus_source).assignee.tolist() == ["<b>bob</b>"]
    assert "assigned to <b>&lt;b&gt;bob&lt;/b&gt;</b>" in reviewer.review._heading().value
    reviewer.data_store.subject = 2
    assert "assigned to" not in reviewer.review._heading().value


def test_review_progress_per_selection_and_reviewer_and_the_next_unreviewed_key(explorer):
    data_store = explorer.data_store
    assert data_store.review_progress() == (0, 3, {})
    data_store.reviewer = "ann"
    explorer.review.accept()  # subject 1's first box
    data_store.refresh_reviews()
    data_store.subject, data_store.reviewer = 2, "bob"
    explorer.review.reject()
    data_store.refresh_reviews()
    assert data_store.review_progress() == (2, 3, {"ann": 1, "bob": 1})
    assert "<b>2</b> of 3 reviewed (ann 1 · bob 1)" in data_store._counts()
    data_store.min_volunteers = 3  # subject 1 only
    assert data_store.review_progress() == (1, 1, {"ann": 1})
    data_store.min_volunteers = 0
    # r: from subject 1 the next nobody reviewed is 3, and from there, wrapping, none but 3 again.
    data_store.subject = 1
    explorer.keys._handle_msg({"key": "r"})
    assert data_store.subject == 3
    assert data_store.next_unreviewed() and data_store.subject == 3
    assert "r next unreviewed" in explorer.keys.describe()


def test_a_lead_splits_the_selection_and_each_reviewer_sees_their_own_queue(explorer, tiny_project, review_store):
    explorer.data_store.reviewer = "lee"  # a typed name on one's own machine decides as a lead
    explorer.review.split_among = "ann, bob"
    # The subjects passing the filters, most disagreement first (1, 2, 3), in runs: ann 1 and 2, bob 3.
    assert explorer.review.split_selection() == {"ann": 2, "bob": 1}
    queues = {}
    for name in ("ann", "bob"):
        session = Explorer(tiny_project, reviews=review_store).data_store
        session.param.update(reviewer=name, mine=True)
        queues[name] = session.subjects.subject_id.tolist()
    assert queues == {"ann": [1, 2], "bob": [3]}
    explorer.review.split_among = " , "
    with pytest.raises(ReviewError, match="name the reviewers"):
        explorer.review.split_selection()


def test_the_history_is_made_when_its_card_is_first_unfolded_and_then_follows_the_decisions(tiny_project, review_store):
    explorer = Explorer(tiny_project, reviews=review_store)
    explorer.data_store.reviewer = "ann"
    review = explorer.review
    layout = review.__panel__()
    card = next(iter(layout.select(pn.Card)))
    assert card.objects == [] and review._history is None  # folded: nothing made, nothing kept current
    review.accept(10)
    card.collapsed = False
    assert review.history_table in card.objects
    assert review.history_table.value[["action", "consensus_id"]].values.tolist() == [["accept", "10"]]
    review.reject(11)
    assert review.history_table.value.action.tolist() == ["reject", "accept"]


def test_a_box_draw_that_has_only_its_first_corner_yet_waits_for_the_rest(explorer, review_store):
    from bokeh.document import Document

    cutout = explorer.cutout
    explorer.data_store.reviewer = "ann"
    Document().add_root(cutout.figure())
    source = cutout.renderer("new box").data_source
    # A slow server may see the drag's first step settle: a box of no area is not added nor thrown away.
    source.data = {"left": [40.0], "right": [40.0], "top": [70.0], "bottom": [70.0]}
    cutout._box_drawn()
    assert len(review_store.history()) == 0 and len(source.data["left"]) == 1
    source.data = {"left": [40.0], "right": [46.0], "top": [70.0], "bottom": [75.0]}
    cutout._box_drawn()
    assert [review_store.history().iloc[-1].after[name] for name in ("x", "y", "width", "height")] == [
        40.0, 70.0, 6.0, 5.0]


@pytest.mark.parametrize("text", [object, "string[pyarrow]"])
def test_the_heading_status_is_the_subjects_own_row_of_the_statuses(text):
    # The heading reads one row's status (the whole column was converted on every switch: 200 ms at 2.2 million
    # subjects): the subject's own, unreviewed for a subject without a row or without a status.
    from dashboard.views.review import _review_status

    statuses = pd.DataFrame({"subject_id": [11, 12, 13, 14],
                             "status": pd.Series(["accepted", None, "flagged", "edited"], dtype=text)})
    assert [_review_status(statuses, subject) for subject in (11, 12, 13, 14, 99)] == [
        "accepted", "unreviewed", "flagged", "edited", "unreviewed"]
    assert _review_status(statuses.iloc[:0], 11) == "unreviewed"


def test_without_a_review_store_the_panel_shows_the_boxes_and_how_to_start_and_no_decision_buttons(tiny_project):
    # The buttons could only answer with an error: a served project without --reviews, a notebook's Explorer
    # without reviews=.
    explorer = Explorer(tiny_project)
    explorer.data_store.subject = 1
    assert not widgets(explorer.review, pn.widgets.Button) and not widgets(explorer.review, pn.widgets.TextInput)
    assert "No review store" in explorer.review.heading_html() and "reviews=" in explorer.review.heading_html()
    with pytest.raises(ReviewError, match="no review store"):  # the keys reach the same check
        explorer.review.accept()
