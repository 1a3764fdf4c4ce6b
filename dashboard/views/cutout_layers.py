"""The cutout's layers and legend, and the hook through which other modules add a layer to the cutout.

The cutout is one Bokeh figure made once per session; each layer is one glyph renderer on
it with its own `ColumnDataSource`, whose ``data`` is replaced when the subject (or a
setting) changes. A `CutoutLayer` says how to draw the layer once (``draw``: add a renderer
for the source to the figure) and how to fill its source from the current subject's tables
(``columns``). It names itself in the legend with one or more `LegendEntry` (a name and
how it looks). A module with a layer of its own (machine detections, the demo's truth)
registers it once, at import::

    register_layer(CutoutLayer(name="truth", columns=truth_columns, draw=draw_truth,
                               legend=(LegendEntry("true object", "#ffffff", dash="dotted"),)))

and every cutout then draws it over its own layers and lists its entries in the legend.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
from bokeh.models import CDSView, GlyphRenderer

#: SVG stroke patterns of Bokeh's named line dashes, for the legend's swatches.
SVG_DASHES = {"solid": "", "dashed": "6 3", "dotted": "1.5 2.5", "dotdash": "1.5 2.5 6 2.5",
              "dashdot": "6 2.5 1.5 2.5"}


@dataclass(frozen=True)
class LegendEntry:
    """One line of the cutout's legend: a swatch drawn as the layer draws its marks, and a name."""

    name: str
    colour: str
    dash: str = "solid"
    width: float = 2.0
    #: A character drawn beside the box on the image (✓ for accepted...), shown beside the swatch too.
    glyph: str = ""
    #: ``box`` (an outline), ``marker`` (a filled circle) or ``ring`` (a hollow circle).
    shape: str = "box"
    #: Extra colours of a layer coloured per box (volunteer boxes take their consensus box's colour).
    more_colours: tuple[str, ...] = ()

    def swatch(self) -> str:
        """The entry's swatch as inline SVG (colours and dashes are the module's own constants)."""
        colours = (self.colour, *self.more_colours)
        step = 9
        size = 16 + step * (len(colours) - 1)
        shapes = []
        for index, colour in enumerate(colours):
            left = 2 + index * step
            if self.shape == "box":
                shapes.append(f'<rect x="{left}" y="3" width="14" height="11" fill="none" stroke="{colour}" '
                              f'stroke-width="{self.width}" stroke-dasharray="{SVG_DASHES[self.dash]}"/>')
            else:
                fill = colour if self.shape == "marker" else "none"
                stroke = "black" if self.shape == "marker" else colour
                shapes.append(f'<circle cx="{left + 7}" cy="8.5" r="5" fill="{fill}" stroke="{stroke}" '
                              f'stroke-width="1.5"/>')
        return (f'<svg width="{size + 2}" height="17" style="vertical-align:middle;background:#3a3a3a;'
                f'border-radius:2px">{"".join(shapes)}</svg>')

    def html(self) -> str:
        glyph = (f' <b style="color:{self.colour};text-shadow:0 0 2px #000">{html.escape(self.glyph)}</b>'
                 if self.glyph else "")
        return (f'<span class="zoolens-legend-entry" style="white-space:nowrap;margin-right:12px">'
                f'{self.swatch()}{glyph} {html.escape(self.name)}</span>')


@dataclass(frozen=True)
class CutoutLayer:
    """A layer of the cutout: one glyph renderer and its data source, with its legend entries.

    ``draw(figure, source)`` adds the layer's renderer for ``source`` to the cutout's Bokeh
    figure and returns it; it runs once per session. ``columns(viewer)`` gets the
    `CutoutViewer` (its ``data_store`` holds the current subject) and returns the source's
    columns for that subject as a DataFrame or a dict of equal-length arrays (cheaper for a
    subject's few rows), the same columns for every subject (no rows when there is nothing
    to draw). ``shown(viewer)``: whether the layer is drawn (its
    source is emptied otherwise) and its entries listed. ``tooltips``: what hovering one of
    its glyphs tells (Bokeh inserts the ``@{...}`` values as text, so data is never HTML),
    and ``hover_place`` where the tooltip points and sits (for boxes: one tooltip per layer,
    for the smallest box under the pointer). ``possible(viewer)``: whether the viewer's project can
    give the layer rows at all (asked once, as the figure is made): a layer that cannot (outlines in a
    project of boxes, detections in a project without) gets no renderer, source or hover tool, which
    a session's page would otherwise build, send and keep for nothing.
    """

    name: str
    columns: Callable[[object], pd.DataFrame | dict]
    draw: Callable
    legend: tuple[LegendEntry, ...] = ()
    shown: Callable[[object], bool] = lambda viewer: True
    tooltips: tuple[tuple[str, str], ...] = ()
    hover_place: tuple[str, str] | None = None
    possible: Callable[[object], bool] = lambda viewer: True


#: Layers registered by other modules, drawn over the cutout's own, in registration order.
LAYERS: dict[str, CutoutLayer] = {}


def register_layer(layer: CutoutLayer) -> None:
    """Add ``layer`` to every cutout made from now on (replacing a layer registered under the same name)."""
    LAYERS[layer.name] = layer


def legend_html(entries) -> str:
    """The legend of ``entries`` (`LegendEntry`) as one HTML block, names escaped."""
    return ('<div class="zoolens-legend" style="line-height:1.9;font-size:13px">'
            + "".join(entry.html() for entry in entries) + "</div>")


def add_layer_glyph(figure, glyph_type: type, source, hover: dict | None = None, **looks) -> GlyphRenderer:
    """Add a layer's renderer to ``figure``: a ``glyph_type`` glyph (e.g. `bokeh.models.Quad`) with ``looks`` (its
    columns and visuals), drawn from ``source``; with ``hover``, the visuals that change under the pointer.

    `bokeh.plotting`'s glyph methods also make a glyph for unselected and one for muted marks; the cutout never
    selects (box select selects only the image) nor mutes a layer's marks, and each such glyph was one more model
    for every session to build, send to its page and keep. Bokeh draws those states from the glyph itself when
    the renderer asks for them ("auto"), as it does for selected marks already. For the same reason the figure's
    renderers share one view filter (every row) and one selection policy: neither keeps any state.
    """
    first = next((renderer for renderer in figure.renderers if isinstance(renderer, GlyphRenderer)), None)
    view = CDSView() if first is None else CDSView(filter=first.view.filter)
    if first is not None:
        source.selection_policy = first.data_source.selection_policy
    return figure.add_glyph(source, glyph_type(**looks), view=view,
                            hover_glyph=None if hover is None else glyph_type(**{**looks, **hover}))
