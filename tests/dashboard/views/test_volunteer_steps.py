"""One volunteer on the image: picked in the Volunteers tab, drawn bold on the cutout, stepped through their subjects."""

from __future__ import annotations

import numpy as np
import pandas as pd
from bokeh.models import GlyphRenderer, Quad

from dashboard.data_store import DataStore
from dashboard.views import CutoutViewer, VolunteerSteps, VolunteerTable
from dashboard.views.volunteer_steps import FADED_ALPHA, FADED_WIDTH, HIGHLIGHTED_ALPHA, HIGHLIGHTED_WIDTH


def _volunteer_quads(viewer: CutoutViewer) -> pd.DataFrame:
    """The cutout's volunteer boxes (Bokeh quads with a ``volunteer`` column): who, outline width, opacity."""
    figure = viewer.figure()
    frames = []
    for renderer in figure.select(GlyphRenderer):
        glyph, data = renderer.glyph, renderer.data_source.data
        if isinstance(glyph, Quad) and "volunteer" in data:
            # A style is a column of the data (its name) when it varies between boxes, else one value.
            styles = {name: data[spec] if isinstance(spec, str) else [spec] * len(data["volunteer"])
                      for name, spec in (("line_width", glyph.line_width), ("line_alpha", glyph.line_alpha))}
            frames.append(pd.DataFrame({"volunteer": data["volunteer"], **styles}))
    return pd.concat(frames, ignore_index=True)


def test_picking_a_volunteer_highlights_them_and_steps_go_through_their_subjects(tiny_project):
    store = DataStore(project=tiny_project)
    table = VolunteerTable(data_store=store)
    table._volunteers.selection = [1]  # bob
    assert store.volunteer == "bob" and store.highlighted_volunteer == "bob"
    steps = VolunteerSteps(data_store=store)
    # Bob classified subject 2 on 1 April and subject 1 on 1 May.
    assert steps.volunteer_subjects().tolist() == [2, 1]
    store.subject = 3  # not one of his: a step forward goes to his first
    assert steps.step(1) and store.subject == 2
    assert "subject 1 of the 2 they classified" in steps._where.object
    steps.step(1)
    assert store.subject == 1
    steps.step(1)  # wraps
    assert store.subject == 2
    steps.step(-1)
    assert store.subject == 1
    # The filters hold: subject 2 is of workflow version 12.4.
    store.workflow = "9001 v13.10"
    assert steps.volunteer_subjects().tolist() == [1]
    steps.stop()
    assert store.highlighted_volunteer is None and not steps.step(1)


def test_a_step_from_the_volunteers_tab_brings_the_cutout_forward(tiny_project):
    store = DataStore(project=tiny_project, highlighted_volunteer="alice")
    shown = []
    store.param.watch(lambda event: shown.append(store.subject), "show_subject")
    VolunteerSteps(data_store=store, bring_forward=True).step(1)
    assert shown == [2]
    VolunteerSteps(data_store=store).step(1)
    assert shown == [2]  # a bar beside the cutout leaves the tabs alone


def test_the_cutout_draws_the_highlighted_volunteers_boxes_bold_and_the_others_faded(tiny_project):
    store = DataStore(project=tiny_project, subject=1)
    viewer = CutoutViewer(data_store=store)
    before = _volunteer_quads(viewer)
    assert set(before.volunteer) == {"alice", "bob"}
    assert (before.line_alpha == 1).all() and before.line_width.max() < HIGHLIGHTED_WIDTH  # all alike
    store.highlighted_volunteer = "bob"
    after = _volunteer_quads(viewer)
    bob, others = after[after.volunteer == "bob"], after[after.volunteer != "bob"]
    assert len(bob) == 1 and len(others) == 2
    assert (bob.line_width == HIGHLIGHTED_WIDTH).all() and (bob.line_alpha == HIGHLIGHTED_ALPHA).all()
    assert (others.line_width == FADED_WIDTH).all() and np.allclose(others.line_alpha, FADED_ALPHA)


def test_a_highlighted_name_holding_html_is_escaped(tiny_project):
    store = DataStore(project=tiny_project, highlighted_volunteer="<script>alert(1)</script>")
    text = VolunteerSteps(data_store=store)._where.object
    assert "<script>" not in text and "&lt;script&gt;" in text
