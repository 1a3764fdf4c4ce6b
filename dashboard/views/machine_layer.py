"""The machine detections layer of the cutout: the current subject's detections with their scores.

Drawn over the volunteers' marks in their own colour, dash-dotted: detections a consensus mark
matched in full, the others (machine-only) fainter. Only detections scoring at least the session's
score threshold (`project.selection.Selection.score_threshold`) show, so the slider here and on
the Machine tab move the same line. Hovering tells the score, the label and what it matched.
"""

from __future__ import annotations

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn

from .cutout_layers import LegendEntry

#: Outline of machine detections: a magenta no consensus colour (Category10) or overlay colour uses.
DETECTION_COLOUR = "#ff2bd6"
#: Line alpha of detections a consensus mark matched, and of machine-only ones.
MATCHED_ALPHA, MACHINE_ONLY_ALPHA = 1.0, 0.55
#: The layer's line in the cutout's legend.
LEGEND = LegendEntry("machine detection (faint: no consensus mark matched it)", DETECTION_COLOUR, dash="dashdot",
                     width=2.5)
#: The element group of the layer (`Rectangles.Machine`, `Points.Machine` in the overlay's options).
GROUP = "Machine"

BOX_DIMENSIONS = [hv.Dimension(name) for name in ("x0", "y0", "x1", "y1")]
POINT_DIMENSIONS = [hv.Dimension(name) for name in ("x", "y")]
VALUE_DIMENSIONS = [hv.Dimension(name) for name in ("detection", "score", "label", "matched", "alpha", "area")]
TOOLTIPS = [("machine detection", "@{detection}"), ("score", "@{score}{0.000}"), ("label", "@{label}"),
            ("matched", "@{matched}")]


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


def detection_layers(viewer) -> list[hv.Element]:
    """The layer's elements (boxes, and points for point detections), empty or not; none without detections.

    Always both elements while the project has detections: a layer appearing in a later frame
    would be drawn by another layer's glyphs (see `CutoutViewer.box_layers`).
    """
    if not has_detections(viewer):
        return []
    detections = shown_detections(viewer)
    point = (detections["width"].fillna(0).eq(0) & detections["height"].fillna(0).eq(0)).to_numpy()
    boxes, points = detections[~point], detections[point]
    box_data = {"x0": boxes["x"].to_numpy(float), "y0": boxes["y"].to_numpy(float),
                "x1": (boxes["x"] + boxes["width"]).to_numpy(float),
                "y1": (boxes["y"] + boxes["height"]).to_numpy(float), **_values(boxes)}
    point_data = {"x": points["x"].to_numpy(float), "y": points["y"].to_numpy(float), **_values(points)}
    return [hv.Rectangles(box_data, kdims=BOX_DIMENSIONS, vdims=VALUE_DIMENSIONS, group=GROUP),
            hv.Points(point_data, kdims=POINT_DIMENSIONS, vdims=VALUE_DIMENSIONS, group=GROUP)]


def detection_options(elements: list[hv.Element]) -> dict:
    """The overlay options of the layer's elements, keyed as `hv.Overlay.opts` takes them."""
    if not elements:
        return {}
    # A fixed colour, not a column: an empty element cannot build a colour mapper. The alpha is a column
    # only when there are rows for the same reason.
    common = dict(tools=["hover"], hover_tooltips=TOOLTIPS, framewise=True, nonselection_alpha=1.0)
    boxes, points = elements
    return {
        f"Rectangles.{GROUP}": dict(common, fill_alpha=0, hover_fill_alpha=0.15, line_width=2.5,
                                    line_dash="dashdot", line_color=DETECTION_COLOUR,
                                    line_alpha="alpha" if len(boxes) else MATCHED_ALPHA),
        f"Points.{GROUP}": dict(common, marker="x", size=16, line_width=3, color=DETECTION_COLOUR,
                                alpha="alpha" if len(points) else MATCHED_ALPHA),
    }


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
