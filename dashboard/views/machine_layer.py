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


#: The detections' columns the layers draw, as arrays (`_shown_arrays`).
DRAWN = ("x", "y", "width", "height", "detection", "score", "label", "matched", "alpha", "area", "point")


def _shown_arrays(viewer) -> dict[str, np.ndarray]:
    """The shown detections (`shown_detections`) as the layers' arrays, made once per subject and setting: both
    layers (boxes and points) ask on each switch, and a subject's few rows cost more to cut with pandas than
    with numpy."""
    store = viewer.data_store
    key = (store.machine(), store.subject, store.score_threshold, viewer.show_detections)
    memo = getattr(viewer, "_detection_memo", None)
    if memo is not None and memo[0][0] is key[0] and memo[0][1:] == key[1:]:
        return memo[1]
    detections = shown_detections(viewer)
    # True, False, or unknown (NA): a subject no volunteer classified, left out of the comparison.
    found = detections["matched"].to_numpy(dtype=object, na_value=None)
    compared = ~pd.isna(found)
    matched = np.where(compared, found, False).astype(bool)
    linked = detections["consensus_id"].to_numpy(dtype=float, na_value=-1).astype(np.int64).astype(str).astype(object)
    what = np.where(matched, "consensus mark " + linked,
                    np.where(compared, "nothing: machine only",
                             "not compared: no volunteer classified the subject")).astype(object)
    x, y, width, height = (detections[name].to_numpy(dtype=float, na_value=np.nan)
                           for name in ("x", "y", "width", "height"))
    arrays = {"x": x, "y": y, "width": width, "height": height, "detection": detections["detection_id"].to_numpy(),
              "score": detections["score"].to_numpy(dtype=float, na_value=np.nan),
              "label": detections["label"].to_numpy(dtype=object, na_value=""), "matched": what,
              "alpha": np.where(matched, MATCHED_ALPHA, MACHINE_ONLY_ALPHA), "area": width * height,
              "point": (np.nan_to_num(width) == 0) & (np.nan_to_num(height) == 0)}
    viewer._detection_memo = (key, arrays)
    return arrays


def _values(arrays: dict, rows: np.ndarray) -> dict:
    return {name: arrays[name][rows] for name in ("detection", "score", "label", "matched", "alpha", "area")}


def detection_boxes(viewer) -> dict[str, np.ndarray]:
    """The boxes layer's source columns: the shown detections with an extent (none without detections)."""
    arrays = _shown_of_kind(viewer)
    rows = ~arrays["point"]
    x, y = arrays["x"][rows], arrays["y"][rows]
    return {"x0": x, "y0": y, "x1": x + arrays["width"][rows], "y1": y + arrays["height"][rows],
            **_values(arrays, rows)}


def detection_points(viewer) -> dict[str, np.ndarray]:
    """The points layer's source columns: the shown detections without an extent (point detections)."""
    arrays = _shown_of_kind(viewer)
    rows = arrays["point"]
    return {"x": arrays["x"][rows], "y": arrays["y"][rows], **_values(arrays, rows)}


def _shown_of_kind(viewer) -> dict[str, np.ndarray]:
    if not has_detections(viewer):
        return {name: np.zeros(0, dtype=bool if name == "point" else object if name in ("label", "matched") else float)
                for name in DRAWN}
    return _shown_arrays(viewer)


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
