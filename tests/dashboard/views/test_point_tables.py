"""The tables of a point project speak of points: counts of points, distances to them, no IoU, width or height."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import panel as pn
import pytest

from dashboard.data_store import DataStore
from dashboard.subject_marks import ConsensusKinds, consensus_kinds
from dashboard.views import (CutoutViewer, ExportView, Gallery, ReaggregationSandbox, ReviewPanel, SubjectBrowser,
                             VolunteerTable)
from dashboard.views.geometry_inputs import GeometryInputs
from project import load_project

PENGUINS = Path(__file__).resolve().parents[2] / "data" / "penguin_watch" / "penguin-watch-classifications-trim.csv"


@pytest.fixture(scope="module")
def penguins():
    return load_project([PENGUINS], workflow_id=6465, method="point")


def _linked_distances(marks):
    """Each linked click's distance to its consensus point, worked out here from the positions."""
    linked = marks[marks.consensus_id >= 0]
    return linked.assign(distance=np.hypot(linked.dx, linked.dy))


def test_the_subjects_table_counts_points_and_their_distance_instead_of_iou(penguins, tiny_project):
    assert consensus_kinds(penguins) == ConsensusKinds(boxes=False, points=True)
    table = SubjectBrowser(data_store=DataStore(project=penguins)).table
    assert table.titles["n_consensus"] == "Points" and table.titles["mean_distance"] == "Dist."
    assert "distance in pixels" in table.header_tooltips["mean_distance"]  # the short title said in full
    assert "mean_iou" not in table.value.columns
    expected = _linked_distances(penguins.marks).groupby("subject_id").distance.mean()
    shown = table.value.set_index("subject_id").mean_distance
    assert len(expected) > 10 and shown.notna().sum() == len(expected)
    np.testing.assert_allclose(shown[expected.index], expected, rtol=1e-9)
    # A box project keeps its words.
    boxes = SubjectBrowser(data_store=DataStore(project=tiny_project)).table
    assert boxes.titles["n_consensus"] == "Boxes" and "mean_iou" in boxes.value.columns
    assert "mean_distance" not in boxes.value.columns


def test_the_volunteers_tables_give_distances_to_points(penguins, tiny_project):
    store = DataStore(project=penguins)
    view = VolunteerTable(data_store=store)
    stats = view._volunteers.value
    assert "mean_iou" not in stats.columns and view._volunteers.titles["mean_distance"] == "Mean distance (px)"
    expected = _linked_distances(penguins.marks).groupby("user").distance.mean()
    np.testing.assert_allclose(stats.set_index("user").mean_distance[expected.index], expected, rtol=1e-9)
    store.volunteer = busiest = str(stats.user.iloc[0])
    marks = view._marks.value
    assert not {"width", "height", "iou"} & set(marks.columns)
    assert view._marks.titles["consensus_id"] == "Consensus point"
    mine = penguins.marks[penguins.marks.user == busiest]
    assert len(marks) == len(mine)
    linked = marks[marks.consensus_id >= 0]
    np.testing.assert_allclose(np.sort(linked.distance), np.sort(_linked_distances(mine).distance), rtol=1e-9)
    # A box project's volunteers keep their IoU.
    assert "mean_iou" in VolunteerTable(data_store=DataStore(project=tiny_project))._volunteers.value.columns


def test_the_review_panel_names_points_without_a_size(penguins, tiny_project):
    subject = int(penguins.consensus.subject_id.iloc[0])
    panel = ReviewPanel(data_store=DataStore(project=penguins, subject=subject))
    assert list(panel._boxes.titles) == ["consensus_id", "status", "x", "y", "n_votes"]
    assert panel._boxes.titles["consensus_id"] == "Point"
    votes = [row[4] for row in panel._boxes.shown["cells"]]
    assert votes and all(vote.isdigit() for vote in votes)  # whole votes, not "3.0"
    boxes = ReviewPanel(data_store=DataStore(project=tiny_project, subject=1))._boxes
    assert boxes.titles["consensus_id"] == "Box" and "width" in boxes.titles


def test_a_project_of_boxes_and_points_shows_both():
    columns = {"n": "Boxes", "iou": "IoU", "other": "Other"}
    both = ConsensusKinds(boxes=True, points=True).columns(columns, sized=("iou",), point_columns={"d": "Dist"},
                                                          point_titles={"n": "Points"}, mixed_titles={"n": "Both"})
    assert both == {"n": "Both", "iou": "IoU", "d": "Dist", "other": "Other"}
    only = ConsensusKinds(boxes=False, points=True).columns(columns, sized=("iou",), point_columns={"d": "Dist"},
                                                           point_titles={"n": "Points"})
    assert only == {"n": "Points", "d": "Dist", "other": "Other"}
    boxes = ConsensusKinds(boxes=True, points=False)
    assert boxes.columns(columns, sized=("iou",), point_columns={"d": "D"}) == columns


def test_the_sandbox_starts_with_the_method_that_made_the_loaded_consensus(penguins, tiny_project):
    subject = int(penguins.consensus.subject_id.iloc[0])
    sandbox = ReaggregationSandbox(data_store=DataStore(project=penguins, subject=subject))
    # The iou method finds no box among clicks: the first view said "0 sandbox boxes against 16 loaded".
    assert sandbox.method == "point"
    tried = sandbox.subject_consensus()
    assert len(tried) == len(penguins.consensus_of(subject)) > 0
    line, table = sandbox._comparison()
    assert f"**{len(tried)}** sandbox points" in line.object and "IoU" not in line.object
    assert list(table.titles) == ["consensus_id", "x", "y", "n_votes", "n_seen"]
    assert table.titles["consensus_id"] == "Sandbox point"
    assert not sandbox._quorum().objects  # the iou method's quorum is no setting of the point method
    assert "compare point counts" in sandbox._selection().object
    summary = sandbox.run_on_selection()
    line, counts = sandbox._selection()
    assert (summary.loaded_boxes == summary.sandbox_boxes).all()  # the method and settings that made them
    assert line.object == (f"50 subjects: {len(penguins.consensus):,} loaded points, {len(penguins.consensus):,} with "
                           "these settings; 0 subjects changed their number of points.")
    assert counts.titles["loaded_boxes"] == "Loaded points"
    # A project whose consensus came with its tables starts at iou, as before.
    boxes = ReaggregationSandbox(data_store=DataStore(project=tiny_project, subject=1))
    assert boxes.method == "iou" and len(boxes._quorum().objects) == 3
    assert "width" in boxes._comparison()[1].titles


def test_the_review_panel_of_points_offers_no_box_to_redraw_or_add(penguins, review_store):
    subject = int(penguins.consensus.subject_id.iloc[0])
    store = DataStore(project=penguins, subject=subject, reviews=review_store, reviewer="ann")
    layout = ReviewPanel(data_store=store).__panel__()
    buttons = {button.label for button in layout.select(pn.widgets.Button)}
    # A point has no handles to drag and the store refuses a box of no size: Redraw and Add box could only fail.
    assert {"Accept", "Reject", "Revert last"} <= buttons and not {"Redraw", "Add box"} & buttons
    assert not layout.select(GeometryInputs)
    words = " ".join(str(pane.object) for pane in layout.select(pn.pane.HTML))
    assert "box" not in words.lower()
    # A point is accepted, rejected and the rejection reverted (the store took only boxes of positive size).
    panel = ReviewPanel(data_store=store)
    first, second = penguins.consensus_of(subject).consensus_id.iloc[:2].astype(int)
    assert panel.accept(first).action == "accept" and panel.reject(second).action == "reject"
    assert panel.revert_last().action == "revert"
    status = review_store.subject_status(penguins.consensus_source).set_index("subject_id").loc[subject]
    assert (status.n_accepted, status.n_rejected) == (1, 0)


def test_the_gallery_counts_consensus_points(penguins):
    store = DataStore(project=penguins)
    card = Gallery(data_store=store, per_page=6)._grid().objects[0]
    first = store.subjects.iloc[0]
    assert f"· {int(first.n_consensus)} consensus points ·" in card[2].object  # it said "58 consensus ·"


def test_the_export_tab_counts_consensus_points(penguins, tiny_project):
    view = ExportView(data_store=DataStore(project=penguins))
    assert view._summary().object == (f"**50** subjects pass the filters, with **{len(penguins.consensus):,}** "
                                      "consensus points.")  # it said "1,911 consensus boxes"
    assert "The consensus points with RA/Dec" in view.__panel__()[0].object
    assert ExportView(data_store=DataStore(project=tiny_project))._summary().object.endswith("**3** consensus boxes.")


def test_a_click_on_a_consensus_point_picks_it(penguins):
    subject = int(penguins.consensus.subject_id.iloc[0])
    viewer = CutoutViewer(data_store=DataStore(project=penguins, subject=subject))
    points = penguins.consensus_of(subject)
    # A click 2 px right and 1 px below a point (its ring is 18 screen px wide) picks the point nearest the click;
    # only a click exactly on a point's centre picked it before (a point has no area to hold a click).
    x, y = points.x.iloc[0] + 2, points.y.iloc[0] + 1
    nearest = points.consensus_id.iloc[np.argmin(np.hypot(points.x - x, points.y - y))]
    assert viewer.box_at(x, y) == nearest
    # A click far from every point picks nothing.
    grid = np.stack(np.meshgrid(np.arange(0, 1000, 25.0), np.arange(0, 750, 25.0)), axis=-1).reshape(-1, 2)
    nearest_distance = np.min(np.hypot(grid[:, :1] - points.x.to_numpy(), grid[:, 1:] - points.y.to_numpy()), axis=1)
    far = grid[np.argmax(nearest_distance)]
    assert viewer.box_at(*far) is None


def test_the_cutout_of_points_has_no_box_to_drag_draw_or_add(penguins):
    subject = int(penguins.consensus.subject_id.iloc[0])
    store = DataStore(project=penguins, subject=subject)
    viewer = CutoutViewer(data_store=store)
    tools = {type(tool).__name__ for tool in viewer.figure().tools}
    assert {"PanTool", "WheelZoomTool", "HoverTool"} <= tools and not {"BoxSelectTool", "BoxEditTool"} & tools
    legend = [entry.name for entry in viewer.legend_entries()]
    # The legend said "picked (drag its handles to redraw)" and "box you drew (... Redraw or Add box ...)".
    assert "picked" in legend and not [name for name in legend if "handles" in name or "drew" in name]
    # Nor statuses only a box can have, and the framing toggle names points.
    assert "accepted" in legend and not {"redrawn", "added"} & set(legend)
    toggles = [widget for widget in viewer.__panel__().select(pn.widgets.Checkbox)]
    assert "fit to points" in [toggle.name for toggle in toggles] and "fit to boxes" not in str(toggles)
    store.review_box = int(penguins.consensus_of(subject).consensus_id.iloc[2])
    assert viewer.drawn("picked point").consensus_box.tolist() == [store.review_box]
    # The caption counts consensus points (it said "58 consensus marks").
    assert f"; {len(penguins.consensus_of(subject))} consensus points." in viewer.caption()


def test_a_real_project_of_boxes_and_points_names_its_consensus_marks_not_boxes():
    # DISCnet: boxes, circles and points in one workflow. Its "Boxes" column counted the points too.
    discnet = load_project([PENGUINS.parents[1] / "discnet" / "many-tools-classifications_march_7_2023.csv"])
    assert consensus_kinds(discnet) == ConsensusKinds(boxes=True, points=True)
    store = DataStore(project=discnet)
    assert SubjectBrowser(data_store=store)._columns["n_consensus"] == "Cons."
    assert ReviewPanel(data_store=store)._boxes.titles["consensus_id"] == "Mark"
    assert VolunteerTable(data_store=store)._mark_columns["consensus_id"] == "Consensus mark"


def test_without_sky_positions_the_samp_panel_offers_no_aladin_button_and_says_why(penguins):
    from dashboard.views.samp import SampPanel
    from project.samp import has_sky_positions

    # Penguin Watch: no ra/dec metadata, no FITS. "Point Aladin at this subject" could only answer "no sky position".
    assert not has_sky_positions(penguins)
    panel = SampPanel(data_store=DataStore(project=penguins)).__panel__()
    assert [button.label for button in panel.select(pn.widgets.Button)] == ["Send the selection to TOPCAT"]
    notes = " ".join(pane.object for pane in panel.select(pn.pane.Markdown))
    assert "No subject has a position on the sky" in notes and "nothing to point Aladin at" in notes


def test_subjects_are_sorted_as_the_sidebar_says_and_next_follows(penguins):
    # Sorting by the table's headers sorted that table alone (Next, the keys and the gallery kept their order), so it
    # is off; the sidebar's "Sort subjects by" orders the session's subjects, and offered nothing without detections.
    store = DataStore(project=penguins)
    assert store.param.sort_by.objects == ["disagreement", "volunteers", "marks", "consensus marks"]
    shown = [list(widget.options) for widget in store.__panel__().select(pn.widgets.Select)
             if widget.name == "Sort subjects by"]
    assert shown == [store.param.sort_by.objects]
    by_disagreement = store.subjects.subject_id.tolist()
    stats = penguins.subject_stats
    for order, column in (("volunteers", "n_volunteers"), ("marks", "n_marks"), ("consensus marks", "n_consensus")):
        store.sort_by = order
        expected = stats.sort_values([column, "subject_id"], ascending=[False, True]).subject_id.tolist()
        assert store.subjects.subject_id.tolist() == expected != by_disagreement
        # Next walks that order (the keys and the gallery read the same table), and the gallery says which it is.
        store.subject = expected[0]
        store.step_subject(1)
        assert store.subject == expected[1]
        assert f"passing the filters, most {order} first." in Gallery(data_store=store)._header().object
