"""The machine detections layer of the cutout: the current subject's detections with their scores.

Drawn over the volunteers' marks in their own colour, dash-dotted: detections a consensus mark
matched in full, the others (machine-only) fainter. Only detections scoring at least the session's
score threshold (`project.selection.Selection.score_threshold`) show, so the slider here and on
the Machine tab move the same line. Hovering tells the score, the label and what it matched.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import panel as pn

from bokeh.models import Quad, Scatter

from .cutout_layers import CutoutLayer, LegendEntry, add_layer_glyph, register_layer

#: Outline of machine detections: a magenta no consensus colour (Category10) or overlay colour uses.
DETECTION_COLOUR = "#ff2bd6"
#: Line alpha of detections a consensus mark matched, and of machine-only ones.
MATCHED_ALPHA, MACHINE_ONLY_ALPHA = 1.0, 0.55
#: The layer's line in the cutout's legend.
LEGEND = LegendEntry("machine detection (faint: no consensus mark matched it)", DETECTION_COLOUR, dash="dashdot",
                     width=2.5)
TOOLTIPS = (("machine detection", "@{detection}"), ("score", "@{score}{0.000}"), ("label", "@{label}"),
            ("matched", "@{matched}"))


def has_detections(viewer) -> bool:
    """Whether the viewer's project has machine detections (else the layer is left out altogether)."""
    return viewer.data_store.project.machine is not None


def shown_detections(viewer) -> pd.DataFrame:
    """The current subject's detections scoring at least the threshold (none when the layer is off).

    Only called when the project has detections (`has_detections`).
    """
    store = viewer.data_store
    detections = store.machine().detections_of(store.subject if store.subject is not None else -1)
    keep = (detections["score"] >= store.score_threshold).to_numpy() & viewer.show_detections
    return detections[keep]


def _values(detections: pd.DataFrame) -> dict:
    matched = detections["matched"].fillna(False).to_numpy(dtype=bool)
    linked = detections["consensus_id"].fillna(-1).astype(np.int64).astype(str)
    # Not known either way: a subject no volunteer classified, left out of the comparison.
    what = np.where(matched, "consensus mark " + linked,
                    np.where(detections["matched"].isna(), "not compared: no volunteer classified the subject",
                             "nothing: machine only"))
    return {"detection": detections["detection_id"].to_numpy(), "score": detections["score"].to_numpy(float),
            "label": detections["label"].astype(object).fillna("").to_numpy(dtype=object),
            "matched": what.astype(object), "alpha": np.where(matched, MATCHED_ALPHA, MACHINE_ONLY_ALPHA),
            "area": (detections["width"] * detections["height"]).to_numpy(float)}


def detection_boxes(viewer) -> pd.DataFrame:
    """The boxes layer's source: the shown detections with an extent (none without detections)."""
    detections = _shown_of_kind(viewer, point=False)
    return pd.DataFrame({"x0": detections["x"].to_numpy(float), "y0": detections["y"].to_numpy(float),
                         "x1": (detections["x"] + detections["width"]).to_numpy(float),
                         "y1": (detections["y"] + detections["height"]).to_numpy(float), **_values(detections)})


def detection_points(viewer) -> pd.DataFrame:
    """The points layer's source: the shown detections without an extent (point detections)."""
    detections = _shown_of_kind(viewer, point=True)
    return pd.DataFrame({"x": detections["x"].to_numpy(float), "y": detections["y"].to_numpy(float),
                         **_values(detections)})


def _shown_of_kind(viewer, point: bool) -> pd.DataFrame:
    if not has_detections(viewer):
        return pd.DataFrame({name: np.zeros(0) for name in ("x", "y", "width", "height", "score", "detection_id",
                                                            "consensus_id")}).assign(
            label=pd.Series(dtype=object), matched=pd.Series(dtype=object))
    detections = shown_detections(viewer)
    is_point = (detections["width"].fillna(0).eq(0) & detections["height"].fillna(0).eq(0)).to_numpy()
    return detections[is_point if point else ~is_point]


def _draw_boxes(figure, source):
    return add_layer_glyph(figure, Quad, source, hover={"fill_alpha": 0.15}, left="x0", right="x1", top="y0",
                           bottom="y1", fill_alpha=0, fill_color=DETECTION_COLOUR, line_width=2.5, line_dash="dashdot",
                           line_color=DETECTION_COLOUR, line_alpha="alpha")


def _draw_points(figure, source):
    return add_layer_glyph(figure, Scatter, source, x="x", y="y", marker="x", size=16, line_width=3,
                           line_color=DETECTION_COLOUR, line_alpha="alpha")


def _shown(viewer) -> bool:
    return viewer.show_detections and has_detections(viewer)


register_layer(CutoutLayer("machine detections", detection_boxes, _draw_boxes, legend=(LEGEND,), shown=_shown,
                           tooltips=TOOLTIPS, possible=has_detections))
register_layer(CutoutLayer("machine detection points", detection_points, _draw_points, shown=_shown,
                           tooltips=TOOLTIPS, possible=has_detections))


def detection_controls(viewer) -> list:
    """The layer's switch and the score threshold slider (the session's: the Machine tab's too); none without
    detections."""
    if not has_detections(viewer):
        return []
    store = viewer.data_store
    low, high = store.param.score_threshold.bounds
    show = pn.widgets.Checkbox.from_param(viewer.param.show_detections, name="Machine detections", width=170)
    slider = pn.widgets.FloatSlider.from_param(store.param.score_threshold, name="Score threshold",
                                               start=low, end=high, step=(high - low) / 100, width=220)
    return [pn.Row(show, slider)]
