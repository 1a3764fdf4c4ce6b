"""The cutout's truth layer: the subject's true objects, off until ticked, listed in the legend when shown."""

from __future__ import annotations

import pandas as pd
import panel as pn

from dashboard.data_store import DataStore
from dashboard.views import CutoutViewer


def test_the_true_objects_show_when_ticked_and_follow_the_subject(tiny_project):
    tiny_project.truth = pd.DataFrame({"subject_id": [1, 1, 2], "truth_id": ["a", "b", "c"], "x": [10.0, 60.0, 30.0],
                                       "y": [10.0, 60.0, 30.0], "width": [20.0, 10.0, 10.0],
                                       "height": [20.0, 10.0, 10.0]})
    viewer = CutoutViewer(data_store=DataStore(project=tiny_project, subject=1))
    assert len(viewer.drawn("truth")) == 0  # off by default
    assert not any(entry.name.startswith("true object") for entry in viewer.legend_entries())
    viewer.show_truth = True
    assert viewer.drawn("truth")[["x0", "y0", "x1", "y1", "truth"]].values.tolist() == [
        [10, 10, 30, 30, "a"], [60, 60, 70, 70, "b"]]
    assert "true object" in viewer._legend.object
    viewer.data_store.subject = 2
    assert viewer.drawn("truth").truth.tolist() == ["c"]
    # Its switch is among the cutout's toggles.
    labels = [widget.name for widget in pn.panel(viewer).select(pn.widgets.Checkbox)]
    assert "truth" in labels


def test_without_truth_there_is_no_switch_and_nothing_drawn(tiny_project):
    viewer = CutoutViewer(data_store=DataStore(project=tiny_project, subject=1), show_truth=True)
    assert len(viewer.drawn("truth")) == 0
    assert not any(entry.name.startswith("true object") for entry in viewer.legend_entries())
    assert "truth" not in [widget.name for widget in pn.panel(viewer).select(pn.widgets.Checkbox)]
