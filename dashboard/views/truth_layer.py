"""The truth layer of the cutout: the current subject's true objects, when the project knows them.

The built-in demo simulates its clumps, so it knows where they truly are (``demo-truth.csv``,
loaded as `project.core.Project.truth`). Drawn as thin white dotted boxes under the pointer's
hover ("true object"), off until the reviewer ticks "truth": a reviewer judges the
consensus by eye first, then checks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bokeh.models import Quad

from .cutout_layers import CutoutLayer, LegendEntry, add_layer_glyph, register_layer

#: Outline of true objects: white, dotted, thin, so the volunteers' and consensus marks stay readable.
TRUTH_COLOUR = "#ffffff"
LEGEND = LegendEntry("true object (the demo's simulated clumps)", TRUTH_COLOUR, dash="dotted", width=2.0)
TOOLTIPS = (("true object", "@{truth}"),)


def has_truth(viewer) -> bool:
    """Whether the viewer's project knows its true objects (else the layer and its switch are left out)."""
    return viewer.data_store.project.truth is not None


def truth_boxes(viewer) -> pd.DataFrame:
    """The layer's source: the current subject's true objects as boxes (none without truth)."""
    truth = viewer.data_store.project.truth
    if truth is None or viewer.data_store.subject is None:
        return pd.DataFrame({name: np.zeros(0) for name in ("x0", "y0", "x1", "y1", "truth", "area")})
    truth = truth[(truth.subject_id == viewer.data_store.subject).to_numpy(dtype=bool)]
    labels = truth["truth_id"].astype(str) if "truth_id" in truth else pd.Series(truth.index.astype(str))
    return pd.DataFrame({"x0": truth.x.to_numpy(float), "y0": truth.y.to_numpy(float),
                         "x1": (truth.x + truth.width).to_numpy(float), "y1": (truth.y + truth.height).to_numpy(float),
                         "truth": labels.to_numpy(dtype=object), "area": (truth.width * truth.height).to_numpy(float)})


def _draw(figure, source):
    return add_layer_glyph(figure, Quad, source, hover={"fill_alpha": 0.15}, left="x0", right="x1", top="y0",
                           bottom="y1", fill_alpha=0, fill_color=TRUTH_COLOUR, line_width=2, line_dash="dotted",
                           line_color=TRUTH_COLOUR)


register_layer(CutoutLayer("truth", truth_boxes, _draw, legend=(LEGEND,), tooltips=TOOLTIPS,
                           shown=lambda viewer: viewer.show_truth and has_truth(viewer), possible=has_truth))
