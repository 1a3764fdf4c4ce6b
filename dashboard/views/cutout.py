"""The cutout viewer: a subject's image with its volunteers' boxes and the consensus boxes.

Boxes are drawn in image pixel coordinates, origin top-left and y down (the y axis
is inverted), so the canonical tables' x, y, width, height go straight onto the image.
"""

from __future__ import annotations

import html
from functools import partial

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import param
from bokeh.models import BoxAnnotation
from bokeh.palettes import Category10_10, Cividis256, Greys256, Inferno256, Magma256, Viridis256
from panel.io.state import set_curdoc

from project.core import display_pixels, normalised
from project.reviews import ReviewError
from project.roles import RoleError

from .base import CHOSEN_STANDS_OUT, View
from .cutout_layers import LAYERS, LegendEntry, legend_html
from .machine_layer import LEGEND as DETECTION_LEGEND
from .machine_layer import detection_controls, detection_layers, detection_options, has_detections
from .outlines import is_open, vertex_lists, with_vertices
from .volunteer_steps import VolunteerSteps, emphasise_volunteer

#: Colours of consensus boxes, in their order within a subject; a volunteer's box takes
#: the colour of the consensus box it supports.
PALETTE = Category10_10
UNLINKED_COLOUR = "#d9d9d9"
UNMATCHED_COLOUR = "#ffffff"
#: Rejected consensus boxes are drawn dashed in grey, at their aggregated place.
REJECTED_COLOUR = "#8c8c8c"
#: The box picked for review gets a ring of this colour just outside its outline.
PICKED_COLOUR = "#ffd92f"
#: A box the reviewer drew (with the box-select tool) is shown dashed in this colour until used.
DRAWN_COLOUR = "#00e5ff"
#: The picked box gets edit handles (drag an edge or a corner to redraw it) when its shorter side
#: is at least this many screen pixels.
HANDLES_LEAST_SIDE = 40

#: How each review status draws a consensus box: the element group, the line dash, and a glyph
#: beside its top-right corner. Unreviewed boxes are dashed, decided ones solid with their mark.
STATUS_LOOKS = {
    "unreviewed": ("Consensus", "dashed", ""),
    "accepted": ("Accepted", "solid", "\u2713"),
    "redrawn": ("Redrawn", "solid", "\u270e"),
    "added": ("Added", "solid", "+"),
    "rejected": ("Rejected", "dashed", "\u2717"),
}

#: Diameter of a consensus point's marker, in screen pixels.
CONSENSUS_MARKER_SIZE = 18
#: The pick ring: its width and its gap from the box's outline, in screen pixels.
PICK_RING_WIDTH = 2.5
PICK_RING_GAP = 2.0
#: Outline widths in screen pixels: the widest a layer draws, reached by boxes whose shorter side
#: is ``widest / LINE_FRACTION`` screen pixels or more; smaller boxes get thinner lines (never under
#: `THINNEST_LINE`), so a 5-pixel clump is not buried under its own outline.
WIDEST_LINES = {"Volunteer": 1.5, "Unmatched": 1.0, "Consensus": 3.0, "Accepted": 3.0, "Redrawn": 3.0,
                "Added": 3.0, "Rejected": 2.0, "Band": 1.0, "Picked": PICK_RING_WIDTH}
LINE_FRACTION = 0.1
THINNEST_LINE = 1.0
#: Zoom to the picked box: the view spans this many times the box and the marks supporting it, at least
#: `ZOOM_LEAST_SIDE` image pixels and `ZOOM_LEAST_FRACTION` of the image's longer side (a point, or a
#: clump a few pixels wide, still shows its surroundings).
ZOOM_MARGIN = 2.2
ZOOM_LEAST_SIDE = 32.0
ZOOM_LEAST_FRACTION = 0.12
#: After the last move of an edit handle, how long to wait (ms) before recording the redraw: a drag
#: sends every step, the decision is the box where the mouse let go.
EDIT_SETTLE_MS = 400

#: The settings the cutout is redrawn for: of the session's data store, and of the viewer.
REDRAWN_BY = {
    "data_store": ("subject", "tool", "min_votes", "subject_decisions", "review_box", "drawn_box", "highlighted_volunteer",
                   "score_threshold", "machine_against"),
    "viewer": ("image_kind", "stretch", "cmap", "show_volunteers", "show_unmatched", "show_consensus",
               "show_band", "fit_to_boxes", "zoom_to_pick", "frame_size", "show_detections"),
}

# Dimensions are made once: building them per subject costs more than the boxes.
BOX_DIMENSIONS = [hv.Dimension(name) for name in ("x0", "y0", "x1", "y1")]
MARK_DIMENSIONS = [hv.Dimension(name) for name in ("volunteer", "iou", "time", "consensus_box", "colour", "area",
                                                    "outline")]
CONSENSUS_DIMENSIONS = [hv.Dimension(name) for name in ("consensus_box", "votes", "seen_by", "status", "colour",
                                                         "area", "outline")]
BAND_DIMENSIONS = [hv.Dimension(name) for name in ("consensus_box", "colour", "outline")]
GLYPH_DIMENSIONS = [hv.Dimension(name) for name in ("glyph", "colour")]
POINT_DIMENSIONS = [hv.Dimension(name) for name in ("x", "y")]

#: Mark kinds drawn as markers at their position (they have no extent).
POINT_KINDS = ("point",)
#: Mark kinds drawn as their own outline (`shape_outlines`): circles and ellipses as the ellipse
#: filling their bounding box, rotated rectangles turned by their angle about their centre. Marks
#: with vertices (polygons, lines, freehand lines: `outlines`) are drawn through them; other
#: kinds (rectangles, points as boxes) as their bounding box.
OUTLINED_KINDS = ("circle", "ellipse", "rotateRectangle")
#: Vertices of a drawn circle or ellipse.
ELLIPSE_VERTICES = 48

#: What hovering a box tells, per layer: a few lines each, as boxes overlap in crowds.
#: Bokeh inserts the ``@{...}`` values as text, so a volunteer name is never HTML.
HOVER_TOOLTIPS = {
    "Volunteer": [("volunteer", "@{volunteer}"), ("IoU", "@{iou}{0.00}"), ("time", "@{time}")],
    "Unmatched": [("volunteer", "@{volunteer}"), ("matched", "no consensus box"), ("time", "@{time}")],
    "Consensus": [("consensus box", "@{consensus_box}"), ("votes", "@{votes}"), ("seen by", "@{seen_by}")],
}
#: What hovering a marker or an outline tells (no one-per-layer hook: markers are small and rarely overlap).
POINT_TOOLTIPS = {
    "Volunteer": HOVER_TOOLTIPS["Volunteer"], "Unmatched": HOVER_TOOLTIPS["Unmatched"],
    "Consensus": HOVER_TOOLTIPS["Consensus"],
}
#: Where each layer's tooltip points (a side of its box, on screen) and sits, so that
#: the layers hit at once do not cover each other: consensus above, volunteers below.
HOVER_PLACES = {"Consensus": ("top_center", "above"), "Volunteer": ("bottom_center", "below"),
                "Unmatched": ("center_right", "right")}
# Consensus boxes of every review status tell the same, from the same place.
HOVER_TOOLTIPS |= {group: HOVER_TOOLTIPS["Consensus"] + [("status", "@{status}")]
                   for group, _, _ in STATUS_LOOKS.values() if group != "Consensus"}
HOVER_PLACES |= {group: HOVER_PLACES["Consensus"] for group, _, _ in STATUS_LOOKS.values()}


def _one_tooltip_per_layer(plot, element) -> None:
    """Show one box's tooltip per layer, at the box: in a crowd, one per box would cover the page.

    The box is the smallest under the pointer, as for picking (`CutoutViewer.box_at`), so
    any box can be told by pointing where no smaller box of its layer lies.
    """
    hover = plot.handles.get("hover")
    if hover is not None:
        hover.limit = 1
        hover.sort_by = "area"
        hover.point_policy = "snap_to_data"
        hover.anchor, hover.attachment = HOVER_PLACES[element.group]


#: FITS display stretches: normalised pixel values (0-1) -> display values (0-1).
STRETCHES = {
    "asinh": lambda v: np.arcsinh(10 * v) / np.arcsinh(10),
    "linear": lambda v: v,
    "sqrt": np.sqrt,
    "log": lambda v: np.log10(1 + 1000 * v) / 3,
}

#: FITS colour maps: 256 colours from dark to light, as 8-bit RGB rows.
COLOUR_MAPS = {name: np.array([[int(colour[i:i + 2], 16) for i in (1, 3, 5)] for colour in palette], dtype=np.uint8)
               for name, palette in {"gray": Greys256, "viridis": Viridis256, "inferno": Inferno256,
                                     "magma": Magma256, "cividis": Cividis256}.items()}
#: The canvas under the marks when a subject's image cannot be shown: neutral light grey.
PLACEHOLDER_GREY = 224


class CutoutViewer(View):
    """The current subject's image with volunteer boxes coloured by the consensus box they support.

    Marks that matched no consensus box are dashed; consensus boxes are bold. Hover
    shows the volunteer, the IoU with the consensus box and the classification time.
    """

    short_name = "cutout"
    tab = "Subjects"

    image_kind = param.Selector(default="rendering", objects=["rendering", "fits"],
                                doc="Show the volunteers' rendering (PNG/JPEG) or the FITS image.")
    stretch = param.Selector(default="asinh", objects=list(STRETCHES), doc="Stretch of the FITS image.")
    cmap = param.Selector(default="gray", objects=list(COLOUR_MAPS),
                          doc="Colour map of the FITS image.")
    show_volunteers = param.Boolean(default=True, doc="Draw volunteer boxes that support a consensus box.")
    show_unmatched = param.Boolean(default=True, doc="Draw volunteer boxes that matched no consensus box.")
    show_consensus = param.Boolean(default=True, doc="Draw the consensus boxes.")
    show_band = param.Boolean(default=True, doc="Draw each consensus box's uncertainty band (about 68 %, "
                                                "from the spread of its votes) as dotted edges.")
    fit_to_boxes = param.Boolean(default=False, doc="Frame the region holding the boxes (with a margin) "
                                                     "instead of the whole image.")
    show_detections = param.Boolean(default=True, doc="Draw the machine detections scoring at least the score "
                                                      "threshold (when the project has detections).")
    zoom_to_pick = param.Boolean(default=True, doc="Zoom to a box picked for review (in the image, the box "
                                                   "table or by key), with the marks supporting it; off: "
                                                   "the whole image.")
    frame_size = param.Integer(default=600, bounds=(200, 2000), doc="Width of the image in screen pixels.")
    edited_box = param.NumericTuple(default=None, allow_None=True, length=5,
                                    doc="Output: a consensus box redrawn by dragging its edit handles on the "
                                        "image: its id and new x, y, width, height in image pixels (y down).")

    def __init__(self, **params):
        super().__init__(**params)
        # The picked box's edit handles: one annotation per plot (a pane can draw the map more than once).
        self._handles: dict[str, BoxAnnotation] = {}
        self._placing = False
        self._settling = None

    # -- elements (plain methods, so notebooks and tests can call them) ---------------------

    def _image(self, kind: str = "rendering"):
        """The current subject's image of ``kind`` (or None) and why there is none."""
        subject_id = self.data_store.subject
        if subject_id is None:
            return None, "no subject passes the filters"
        return self.data_store.project.image(subject_id, kind)

    def extent(self) -> tuple[float, float]:
        """Width and height of the current subject's image in pixels.

        Without an image: the subject's recorded size, else the extent of its marks.
        """
        image, _ = self._image()
        if image is not None:
            return float(image.width), float(image.height)
        subject_id = self.data_store.subject
        subject = self.data_store.project.subject(subject_id) if subject_id is not None else None
        if subject is not None and subject.width > 0 and subject.height > 0:
            return float(subject.width), float(subject.height)
        marks = self.data_store.marks_of()
        # Points have no extent (NaN width and height): their position is their far edge.
        far = (marks.x + marks.width.fillna(0)).max() if len(marks) else np.nan
        low = (marks.y + marks.height.fillna(0)).max() if len(marks) else np.nan
        return (float(far) if far > 0 else 100.0), (float(low) if low > 0 else 100.0)

    def zoomed_box(self) -> pd.DataFrame:
        """The box the view zooms to: the one picked for review, when ``zoom_to_pick`` is on and a box of
        the current subject was picked (a new subject shows whole until one is); else no row."""
        boxes = self.data_store.reviewed_consensus_of()
        picked = self.data_store.review_box
        if not self.zoom_to_pick or picked is None:
            return boxes.iloc[0:0]
        return boxes[(boxes.consensus_id == picked).to_numpy(dtype=bool)]

    def view_limits(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """x and y limits of a square view: the whole image, the boxes with a margin, or the picked box.

        The square spans the longer side, centred, so pixels stay square for any shape.
        Zoomed to a picked box (`zoomed_box`), it spans the box and the volunteer marks
        supporting it, `ZOOM_MARGIN` times over, at least `ZOOM_LEAST_SIDE` pixels and
        `ZOOM_LEAST_FRACTION` of the image.
        """
        width, height = self.extent()
        left, top, right, bottom = 0.0, 0.0, width, height
        zoomed = self.zoomed_box()
        if len(zoomed):
            marks = self.data_store.marks_of()
            marks = marks[(marks.consensus_id == zoomed.consensus_id.iloc[0]).to_numpy(dtype=bool)]
            x0 = np.r_[zoomed.x.to_numpy(float), marks.x.to_numpy(float)]
            y0 = np.r_[zoomed.y.to_numpy(float), marks.y.to_numpy(float)]
            x1 = x0 + np.nan_to_num(np.r_[zoomed.width.to_numpy(float), marks.width.to_numpy(float)])
            y1 = y0 + np.nan_to_num(np.r_[zoomed.height.to_numpy(float), marks.height.to_numpy(float)])
            side = max(ZOOM_MARGIN * max(np.nanmax(x1) - np.nanmin(x0), np.nanmax(y1) - np.nanmin(y0)),
                       ZOOM_LEAST_SIDE, ZOOM_LEAST_FRACTION * max(width, height))
            centre_x, centre_y = (np.nanmin(x0) + np.nanmax(x1)) / 2, (np.nanmin(y0) + np.nanmax(y1)) / 2
            return (centre_x - side / 2, centre_x + side / 2), (centre_y - side / 2, centre_y + side / 2)
        if self.fit_to_boxes:
            marks, boxes = self.data_store.marks_of(), self.data_store.consensus_of()
            x0 = pd.concat([marks.x, boxes.x])
            y0 = pd.concat([marks.y, boxes.y])
            x1 = pd.concat([marks.x + marks.width.fillna(0), boxes.x + boxes.width.fillna(0)])
            y1 = pd.concat([marks.y + marks.height.fillna(0), boxes.y + boxes.height.fillna(0)])
            if len(x0):
                margin = 0.15 * max(x1.max() - x0.min(), y1.max() - y0.min(), 10.0)
                left, top = x0.min() - margin, y0.min() - margin
                right, bottom = x1.max() + margin, y1.max() + margin
        side = max(right - left, bottom - top)
        centre_x, centre_y = (left + right) / 2, (top + bottom) / 2
        return (centre_x - side / 2, centre_x + side / 2), (centre_y - side / 2, centre_y + side / 2)

    def image(self) -> hv.RGB:
        """The image as an `hv.RGB`, y down: the rendering, or the FITS image stretched and colour-mapped.

        Always RGB, the FITS image too (coloured here): the plot's map must return one element
        type whichever kind is shown. Without an image, a neutral grey canvas of the subject's
        size. HoloViews puts an array's first row at the top of its bounds; with the y axis
        inverted that top is y = height, so rows are flipped to keep row 0 at y = 0.
        """
        if self.image_kind == "fits":
            fits, _ = self._image("fits")
            if fits is not None:
                values = STRETCHES[self.stretch](normalised(fits.array.astype(np.float32)))
                levels = np.nan_to_num(values * 255).astype(np.uint8)
                pixels = COLOUR_MAPS[self.cmap][levels]
                return hv.RGB(pixels[::-1], bounds=(0, 0, fits.width, fits.height), kdims=["x", "y"])
        width, height = self.extent()
        rendering, _ = self._image()
        pixels = (display_pixels(rendering.array) if rendering is not None
                  else np.full((2, 2, 3), PLACEHOLDER_GREY, dtype=np.uint8))
        return hv.RGB(pixels[::-1], bounds=(0, 0, width, height), kdims=["x", "y"])

    def _consensus_colours(self) -> pd.Series:
        # Boxes reviewers added follow the aggregated ones, so those keep their colours.
        boxes = self.data_store.reviewed_consensus_of()
        colours = [PALETTE[position % len(PALETTE)] for position in range(len(boxes))]
        return pd.Series(colours, index=boxes.consensus_id.to_numpy(), dtype=object)

    def _rectangles(self, marks: pd.DataFrame, colours, group: str) -> hv.Rectangles:
        created = marks.created_at
        data = {
            "x0": marks.x.to_numpy(), "y0": marks.y.to_numpy(),
            "x1": (marks.x + marks.width).to_numpy(), "y1": (marks.y + marks.height).to_numpy(),
            "volunteer": marks.user.to_numpy(dtype=object),
            "iou": marks.iou.round(3).to_numpy(),
            "time": created.dt.strftime("%Y-%m-%d %H:%M UTC").fillna("").to_numpy(dtype=object),
            "consensus_box": marks.consensus_id.to_numpy(),
            "colour": np.asarray(colours, dtype=object),
            "area": (marks.width * marks.height).to_numpy(),
            "outline": self.line_widths(marks.width, marks.height, group),
        }
        return hv.Rectangles(data, kdims=BOX_DIMENSIONS, vdims=MARK_DIMENSIONS, group=group)

    def screen_scale(self) -> float:
        """Screen pixels per image pixel in the current view (`view_limits` across `frame_size`)."""
        (left, right), _ = self.view_limits()
        return self.frame_size / max(right - left, 1e-9)

    def line_widths(self, width, height, group: str) -> np.ndarray:
        """Outline widths (screen pixels) of boxes of ``width`` x ``height`` image pixels in layer ``group``,
        as they show in the current view (`scaled_line_widths`)."""
        return scaled_line_widths(np.asarray(width, dtype=float), np.asarray(height, dtype=float),
                                  self.screen_scale(), WIDEST_LINES[group])

    def _marks_drawn_as(self, drawn_as: str, matched: bool) -> tuple[pd.DataFrame, np.ndarray]:
        """The current subject's marks drawn as ``"box"``, ``"point"``, ``"outline"`` (closed) or ``"path"``
        (open), with their colours.

        ``matched``: the marks supporting a consensus mark (all marks, in the unlinked grey,
        when there are no links), in its colour; else the marks that matched none (none
        when there are no links), in the unmatched colour.
        """
        marks = self.data_store.marks_of()
        kinds = marks.kind.fillna("").to_numpy(dtype=object)
        point, outline = np.isin(kinds, POINT_KINDS), np.isin(kinds, OUTLINED_KINDS)
        traced = with_vertices(marks, self.data_store.project.vertices_of(marks.mark_id))
        path, outline = traced & is_open(marks), outline | (traced & ~is_open(marks))
        marks = marks[{"point": point, "outline": outline, "path": path, "box": ~(point | outline | path)}[drawn_as]]
        if not self.data_store.project.has_links:
            marks = marks if matched else marks.iloc[0:0]
            return marks, np.full(len(marks), UNLINKED_COLOUR if matched else UNMATCHED_COLOUR, dtype=object)
        if not matched:
            marks = marks[marks.consensus_id < 0]
            return marks, np.full(len(marks), UNMATCHED_COLOUR, dtype=object)
        marks = marks[marks.consensus_id >= 0]
        return marks, marks.consensus_id.map(self._consensus_colours()).fillna(UNLINKED_COLOUR).to_numpy()

    def volunteer_boxes(self) -> hv.Rectangles:
        """Volunteer boxes that support a consensus box (all boxes when there are no links).

        Marks drawn otherwise (`volunteer_points`, `volunteer_outlines`) are left out.
        """
        return self._rectangles(*self._marks_drawn_as("box", matched=True), "Volunteer")

    def unmatched_boxes(self) -> hv.Rectangles:
        """Volunteer boxes that matched no consensus box (none when there are no links)."""
        return self._rectangles(*self._marks_drawn_as("box", matched=False), "Unmatched")

    def _points(self, marks: pd.DataFrame, colours, group: str) -> hv.Points:
        data = {
            "x": marks.x.to_numpy(), "y": marks.y.to_numpy(),
            "volunteer": marks.user.to_numpy(dtype=object), "iou": marks.iou.round(3).to_numpy(),
            "time": marks.created_at.dt.strftime("%Y-%m-%d %H:%M UTC").fillna("").to_numpy(dtype=object),
            "consensus_box": marks.consensus_id.to_numpy(), "colour": np.asarray(colours, dtype=object),
            "area": np.zeros(len(marks)), "outline": np.full(len(marks), THINNEST_LINE),
        }
        return hv.Points(data, kdims=POINT_DIMENSIONS, vdims=MARK_DIMENSIONS, group=group)

    def volunteer_points(self) -> hv.Points:
        """Volunteer points that support a consensus mark, as filled markers in its colour (all, grey, without links)."""
        return self._points(*self._marks_drawn_as("point", matched=True), "Volunteer")

    def unmatched_points(self) -> hv.Points:
        """Volunteer points that matched no consensus mark, as hollow markers."""
        return self._points(*self._marks_drawn_as("point", matched=False), "Unmatched")

    def consensus_points(self) -> hv.Points:
        """The subject's consensus marks that are points (no extent), as large ringed crosses; rejected ones left out."""
        boxes = self.data_store.reviewed_consensus_of()
        colours = self._consensus_colours().to_numpy()
        kept = ((boxes.status != "rejected") & _is_point(boxes)).to_numpy(dtype=bool)
        boxes = boxes[kept]
        data = {"x": boxes.x.to_numpy(), "y": boxes.y.to_numpy(), "consensus_box": boxes.consensus_id.to_numpy(),
                "votes": boxes.n_votes.astype("float64").to_numpy(),
                "seen_by": boxes.n_seen.astype("float64").to_numpy(), "status": boxes.status.to_numpy(dtype=object),
                "colour": np.asarray(colours[kept], dtype=object), "area": np.zeros(len(boxes)),
                "outline": np.full(len(boxes), THINNEST_LINE)}
        return hv.Points(data, kdims=POINT_DIMENSIONS, vdims=CONSENSUS_DIMENSIONS, group="Consensus")

    def _outlines(self, marks: pd.DataFrame, colours, group: str, element=hv.Polygons) -> hv.Polygons | hv.Contours:
        # A mark's own vertices where it has them (`outlines.vertex_lists`), else its shape's outline.
        traced = zip(*vertex_lists(marks, self.data_store.project.vertices_of(marks.mark_id)))
        outlines = [(x, y) if x is not None else shape for (x, y), shape in zip(traced, zip(*shape_outlines(marks)))]
        times = marks.created_at.dt.strftime("%Y-%m-%d %H:%M UTC").fillna("").to_numpy(dtype=object)
        data = [{"x": x, "y": y, "volunteer": volunteer, "iou": iou, "time": time, "consensus_box": box,
                 "colour": colour}
                for (x, y), volunteer, iou, time, box, colour in zip(
                    outlines, marks.user.to_numpy(dtype=object), marks.iou.round(3).to_numpy(), times,
                    marks.consensus_id.to_numpy(), colours)]
        return element(data, kdims=POINT_DIMENSIONS, vdims=["volunteer", "iou", "time", "consensus_box", "colour"],
                       group=group)

    def volunteer_outlines(self) -> hv.Polygons:
        """Circles, ellipses, rotated rectangles, polygons and freehand shapes that support a consensus mark,
        drawn as what they are."""
        return self._outlines(*self._marks_drawn_as("outline", matched=True), "Volunteer")

    def unmatched_outlines(self) -> hv.Polygons:
        """Closed outlines (as `volunteer_outlines`) that matched no consensus mark (dashed)."""
        return self._outlines(*self._marks_drawn_as("outline", matched=False), "Unmatched")

    def volunteer_paths(self) -> hv.Contours:
        """Lines and freehand lines that support a consensus mark, as open paths through their vertices.

        Contours rather than Path: a Path with hover is drawn one segment per glyph, a Contours one path.
        """
        return self._outlines(*self._marks_drawn_as("path", matched=True), "Volunteer", hv.Contours)

    def unmatched_paths(self) -> hv.Contours:
        """Lines and freehand lines that matched no consensus mark (dashed)."""
        return self._outlines(*self._marks_drawn_as("path", matched=False), "Unmatched", hv.Contours)

    def consensus_boxes(self, status: str | None = None) -> hv.Rectangles:
        """The subject's consensus boxes as reviewed, each in its own colour, rejected ones and points left out.

        Redrawn boxes are at their new place; boxes reviewers added are included. With
        ``status`` (unreviewed, accepted, redrawn, added), only the boxes of that review
        status, in the group that styles them (`STATUS_LOOKS`).
        """
        boxes = self.data_store.reviewed_consensus_of()
        colours = self._consensus_colours().to_numpy()
        kept = ((boxes.status != "rejected") & ~_is_point(boxes)).to_numpy(dtype=bool)
        if status is not None:
            kept = kept & (boxes.status == status).to_numpy(dtype=bool)
        group = "Consensus" if status is None else STATUS_LOOKS[status][0]
        return self._consensus_rectangles(boxes[kept], colours[kept], group)

    def rejected_boxes(self) -> hv.Rectangles:
        """The subject's consensus boxes a reviewer rejected, at their aggregated place."""
        boxes = self.data_store.reviewed_consensus_of()
        boxes = boxes[(boxes.status == "rejected").to_numpy(dtype=bool)]
        return self._consensus_rectangles(boxes, np.full(len(boxes), REJECTED_COLOUR, dtype=object), "Rejected")

    def status_glyphs(self) -> hv.Labels:
        """A mark beside the top-right corner of each decided box (✓ accepted, ✎ redrawn, + added, ✗ rejected),
        in the box's colour, so a decision shows without reading the table."""
        boxes = self.data_store.reviewed_consensus_of()
        colours = self._consensus_colours().to_numpy()
        glyphs = boxes.status.astype(str).map({status: look[2] for status, look in STATUS_LOOKS.items()})
        kept = (glyphs.fillna("") != "").to_numpy(dtype=bool)
        colours = np.where(boxes.status.astype(str) == "rejected", REJECTED_COLOUR, colours)
        boxes = boxes[kept]
        data = {"x": (boxes.x + boxes.width.fillna(0)).to_numpy(float), "y": boxes.y.to_numpy(float),
                "glyph": glyphs[kept].to_numpy(dtype=object), "colour": np.asarray(colours[kept], dtype=object)}
        return hv.Labels(data, kdims=POINT_DIMENSIONS, vdims=GLYPH_DIMENSIONS, group="Status")

    def picked_box(self) -> hv.Rectangles:
        """The box picked for review (`DataStore.picked_box_id`), at its reviewed place; empty when none.

        Drawn as a ring `PICK_RING_GAP` screen pixels outside the box's outline, so that
        it never covers the box or the marks inside it, however small the box.
        """
        boxes = self.data_store.reviewed_consensus_of()
        boxes = boxes[(boxes.consensus_id == self.data_store.picked_box_id(boxes)).to_numpy(dtype=bool)]
        # Around a point, outside its marker.
        outside = np.where(_is_point(boxes), CONSENSUS_MARKER_SIZE / 2, WIDEST_LINES["Consensus"] / 2)
        grow = (PICK_RING_GAP + PICK_RING_WIDTH / 2 + outside) / self.screen_scale()
        ring = boxes.assign(x=boxes.x - grow, y=boxes.y - grow, width=boxes.width.fillna(0) + 2 * grow,
                            height=boxes.height.fillna(0) + 2 * grow)
        return self._consensus_rectangles(ring, np.full(len(boxes), PICKED_COLOUR, dtype=object), "Picked")

    def drawn_box(self) -> hv.Rectangles:
        """The box the reviewer drew for a redraw or an added box (`DataStore.drawn_box`); empty when none."""
        drawn = self.data_store.drawn_box
        x, y, width, height = drawn if drawn is not None else (np.nan,) * 4
        corners = {"x0": [x], "y0": [y], "x1": [x + width], "y1": [y + height]} if drawn is not None else {
            "x0": [], "y0": [], "x1": [], "y1": []}
        return hv.Rectangles(corners, kdims=BOX_DIMENSIONS, group="Drawn")

    def _draw_box(self, bounds=None):
        """A box-select drag on the image draws a box for the review panel (Redraw or Add box)."""
        if bounds is None:
            return
        left, bottom, right, top = bounds
        # The y axis runs down the image, so "bottom" may be the smaller y.
        x, y = min(left, right), min(bottom, top)
        width, height = abs(right - left), abs(top - bottom)
        if width > 0 and height > 0:
            self.data_store.drawn_box = (float(x), float(y), float(width), float(height))

    def _consensus_rectangles(self, boxes: pd.DataFrame, colours, group: str) -> hv.Rectangles:
        data = {
            "x0": boxes.x.to_numpy(), "y0": boxes.y.to_numpy(),
            "x1": (boxes.x + boxes.width).to_numpy(), "y1": (boxes.y + boxes.height).to_numpy(),
            "consensus_box": boxes.consensus_id.to_numpy(), "votes": boxes.n_votes.astype("float64").to_numpy(),
            "seen_by": boxes.n_seen.astype("float64").to_numpy(), "status": boxes.status.to_numpy(dtype=object),
            "colour": np.asarray(colours, dtype=object),
            "area": (boxes.width * boxes.height).to_numpy(),
            "outline": self.line_widths(boxes.width, boxes.height, group),
        }
        return hv.Rectangles(data, kdims=BOX_DIMENSIONS, vdims=CONSENSUS_DIMENSIONS, group=group)

    def box_at(self, x: float, y: float) -> int | None:
        """The id of the smallest of the subject's reviewed boxes holding the point (x, y), if any."""
        boxes = self.data_store.reviewed_consensus_of()
        inside = boxes[(boxes.x <= x) & (x <= boxes.x + boxes.width)
                       & (boxes.y <= y) & (y <= boxes.y + boxes.height)]
        if not len(inside):
            return None
        return int(inside.consensus_id.to_numpy()[np.argmin((inside.width * inside.height).to_numpy())])

    def _pick_box(self, x=None, y=None):
        """A click on the image picks the box under it for review."""
        if x is not None and y is not None:
            picked = self.box_at(x, y)
            if picked is not None:
                self.data_store.review_box = picked

    def band_boxes(self) -> hv.Rectangles:
        """Each consensus box grown and shrunk by the standard error of its edges.

        The errors are the consensus layer's (`consensus.agreement.box_agreement`:
        ``x_err``, ``y_err``, ``width_err``, ``height_err``); the right and bottom edges
        move by the errors of corner and size combined. Boxes with fewer than two votes
        have no band; a shrunk box that would vanish is left out.
        """
        boxes = self.data_store.consensus_of()
        colours = self._consensus_colours()
        if not {"x_err", "y_err", "width_err", "height_err"} <= set(boxes.columns):
            boxes = boxes.iloc[0:0].assign(x_err=[], y_err=[], width_err=[], height_err=[])
        boxes = boxes[boxes[["x_err", "y_err", "width_err", "height_err"]].notna().all(axis=1)]
        right_err = np.hypot(boxes.x_err, boxes.width_err)
        bottom_err = np.hypot(boxes.y_err, boxes.height_err)
        outer = pd.DataFrame({"x0": boxes.x - boxes.x_err, "y0": boxes.y - boxes.y_err,
                              "x1": boxes.x + boxes.width + right_err, "y1": boxes.y + boxes.height + bottom_err})
        inner = pd.DataFrame({"x0": boxes.x + boxes.x_err, "y0": boxes.y + boxes.y_err,
                              "x1": boxes.x + boxes.width - right_err, "y1": boxes.y + boxes.height - bottom_err})
        inner = inner[(inner.x1 > inner.x0) & (inner.y1 > inner.y0)]
        ids = boxes.consensus_id
        edges = pd.concat([outer.assign(consensus_box=ids), inner.assign(consensus_box=ids[inner.index])])
        data = {column: edges[column].to_numpy() for column in ("x0", "y0", "x1", "y1", "consensus_box")}
        data["colour"] = edges.consensus_box.map(colours).to_numpy(dtype=object)
        data["outline"] = self.line_widths(edges.x1 - edges.x0, edges.y1 - edges.y0, "Band")
        return hv.Rectangles(data, kdims=BOX_DIMENSIONS, vdims=BAND_DIMENSIONS, group="Band")

    def image_layer(self) -> hv.Element:
        """The image, framed: the whole of it, or the boxes with a margin (`view_limits`)."""
        # A square frame whose limits span the image's longer side, centred: pixels stay
        # square for any image shape. Explicit and framewise, so each subject sets the
        # axes to its own image. (data_aspect is avoided: HoloViews 1.23 then keeps the
        # first subject's frame and reverses the x range to fit a new image into it.)
        xlim, ylim = self.view_limits()
        return self.image().opts(
            invert_yaxis=True, frame_width=self.frame_size, frame_height=self.frame_size,
            xaxis=None, yaxis=None, toolbar="right", default_tools=["pan", "wheel_zoom", "reset"],
            tools=["box_select"], xlim=xlim, ylim=ylim, framewise=True, hooks=[self._edit_handles])

    # -- editing the picked box on the image -------------------------------------------------

    def _edit_handles(self, plot, element) -> None:
        """Plot hook: put the picked box's edit handles (a Bokeh editable `BoxAnnotation`) on it.

        Dragging an edge, a corner or the inside of the box moves the annotation in the
        browser, which sends each step to the server (`_handle_moved`); once the mouse has
        let go (`EDIT_SETTLE_MS`) the box's new place becomes `edited_box`, which the review
        panel records as a redraw decision (the store checks the reviewer's role).
        """
        figure = plot.state
        handle = self._handles.get(figure.id)
        if handle is None:
            # Only its corner and edge handles show: the box's own outline tells its review status, and
            # nothing (no move handle) covers its middle, where the object is.
            handle = BoxAnnotation(editable=True, resizable="all", movable="none", fill_alpha=0.0, line_alpha=0.0,
                                   use_handles=True, level="overlay", visible=False)
            figure.add_layout(handle)
            for edge in ("left", "right", "top", "bottom"):
                handle.on_change(edge, partial(self._handle_moved, handle))
            self._handles[figure.id] = handle
        self._place_handle(handle)

    def _place_handle(self, handle: BoxAnnotation) -> None:
        """Put ``handle`` on the picked box at its reviewed place (hidden when none can be redrawn here)."""
        store = self.data_store
        boxes = store.reviewed_consensus_of()
        picked = boxes[(boxes.consensus_id == store.picked_box_id(boxes)).to_numpy(dtype=bool)]
        picked = picked[~_is_point(picked).to_numpy(dtype=bool) & (picked.status != "rejected").to_numpy(dtype=bool)]
        may_redraw = (store.reviews is not None and (not store.reviewer.strip() or store.identity().may("redraw")))
        self._placing = True
        try:
            # On a box too small on screen the handles would hide it: picking it zooms to it first.
            if (not len(picked) or not may_redraw
                    or min(picked.width.iloc[0], picked.height.iloc[0]) * self.screen_scale() < HANDLES_LEAST_SIDE):
                handle.update(visible=False, editable=False)
                return
            box = picked.iloc[0]
            handle.update(left=float(box.x), right=float(box.x + box.width), top=float(box.y),
                          bottom=float(box.y + box.height), visible=True, editable=True,
                          tags=[int(box.consensus_id)])
        finally:
            self._placing = False

    def _handle_moved(self, handle: BoxAnnotation, attr, old, new) -> None:
        if self._placing or handle.document is None:
            return
        # A drag sends every step: the decision waits until the steps stop.
        if self._settling is not None:
            try:
                handle.document.remove_timeout_callback(self._settling)
            except ValueError:  # it already ran
                pass
        self._settling = handle.document.add_timeout_callback(partial(self._handle_settled, handle),
                                                              EDIT_SETTLE_MS)

    def _handle_settled(self, handle: BoxAnnotation) -> None:
        """The handles have stopped: their box becomes `edited_box`; a refused edit puts them back."""
        self._settling = None
        x, right = sorted((float(handle.left), float(handle.right)))
        y, bottom = sorted((float(handle.top), float(handle.bottom)))
        boxes = self.data_store.reviewed_consensus_of()
        box = boxes[(boxes.consensus_id == handle.tags[0]).to_numpy(dtype=bool)]
        # Moves that leave the box where it is (the browser echoing where the server put the handles) decide nothing.
        if not len(box) or np.allclose([x, y, right - x, bottom - y],
                                       box[["x", "y", "width", "height"]].to_numpy(float)[0], atol=1e-6):
            return
        with set_curdoc(handle.document):
            try:
                self.edited_box = (handle.tags[0], x, y, right - x, bottom - y)
            except (ReviewError, RoleError) as error:
                self._place_handle(handle)
                if pn.config.exception_handler is None:
                    raise
                pn.config.exception_handler(error)
            finally:
                with param.discard_events(self):
                    self.edited_box = None

    def box_layers(self) -> hv.Overlay:
        """The boxes of the layers switched on, styled, and the layers other modules registered (`LAYERS`)."""
        layers, markers = [], []
        if self.show_volunteers:
            layers.append(self.volunteer_boxes())
        if self.show_unmatched:
            layers.append(self.unmatched_boxes())
        if self.show_consensus:
            layers.extend([self.picked_box(), *(self.consensus_boxes(status) for status in STATUS_LOOKS
                                                if status != "rejected"), self.rejected_boxes()])
        if self.show_band:
            layers.append(self.band_boxes())
        # Always there, empty or not: a layer appearing in a later frame would be drawn
        # by another layer's glyphs (and tooltips).
        layers.append(self.drawn_box())
        if self.show_volunteers:
            markers.extend([self.volunteer_outlines(), self.volunteer_paths(), self.volunteer_points()])
        if self.show_unmatched:
            markers.extend([self.unmatched_outlines(), self.unmatched_paths(), self.unmatched_points()])
        if self.show_consensus:
            markers.extend([self.consensus_points(), self.status_glyphs()])
        rectangles = dict(fill_alpha=0, hover_fill_alpha=0.15, hover_line_alpha=1, tools=["hover"], framewise=True,
                          # A box-select drag draws a box; it must not fade the boxes outside it.
                          nonselection_alpha=1.0)
        dashes = {group: dash for group, dash, _ in STATUS_LOOKS.values()} | {
            "Unmatched": "dashed", "Band": "dotted", "Drawn": "dashed"}
        # Styles go on the overlay once (an .opts per element clones it), keyed by group.
        options = {}
        for layer in layers:
            group = layer.group
            style = dict(rectangles, line_dash=dashes.get(group, "solid"),
                         line_color=DRAWN_COLOUR if group == "Drawn" else _style_spec(layer, "colour", UNLINKED_COLOUR),
                         line_width=2 if group == "Drawn" else _style_spec(layer, "outline", THINNEST_LINE))
            if group in HOVER_TOOLTIPS:
                style |= {"hover_tooltips": HOVER_TOOLTIPS[group], "hooks": [_one_tooltip_per_layer]}
            if group in ("Band", "Picked", "Drawn"):
                style["tools"] = []
            if group == "Picked":
                style["line_alpha"] = 0.9
            options[f"Rectangles.{group}"] = style
        for marker in markers:
            kind, group = type(marker).__name__, marker.group
            colour = _style_spec(marker, "colour", UNLINKED_COLOUR)
            if kind == "Labels":
                # Beside the top-right corner, on a light tile to show on any picture.
                options[f"Labels.{group}"] = dict(text_color=colour, text_font_size="16px", text_font_style="bold",
                                                  text_align="left", text_baseline="bottom",
                                                  background_fill_color="white", background_fill_alpha=0.85,
                                                  border_radius=3, framewise=True)
                continue
            style = dict(tools=["hover"], hover_tooltips=POINT_TOOLTIPS[group], framewise=True,
                         nonselection_alpha=1.0)
            if kind in ("Polygons", "Contours"):
                # ``color`` as well as ``line_color``: without it HoloViews colours a path by its first value
                # column through a colour mapper, which fails once that column's type changes; alone, it
                # leaves a polygon's outline black.
                style |= dict(line_width=2 if group == "Volunteer" else 1.5, color=colour, line_color=colour,
                              line_dash="solid" if group == "Volunteer" else "dashed")
                style |= dict(fill_alpha=0) if kind == "Polygons" else {}
            elif group == "Consensus":
                style |= dict(marker="circle_cross", size=CONSENSUS_MARKER_SIZE, fill_alpha=0, line_width=3,
                              color=colour)
            elif group == "Volunteer":
                # Filled in the consensus mark's colour, ringed in black to stand out on any picture.
                style |= dict(marker="circle", size=8, fill_color=colour, line_color="black", line_width=1)
            else:
                style |= dict(marker="circle", size=8, fill_alpha=0, line_color=colour, line_width=2)
            options[f"{kind}.{group}"] = style
        options = emphasise_volunteer(options, self.data_store.highlighted_volunteer)
        machine = detection_layers(self)
        options |= detection_options(machine)
        extra = [layer.element(self) for layer in LAYERS.values()]
        return hv.Overlay(layers + markers + machine + extra).opts({**options, "Overlay": dict(framewise=True)})

    def legend_entries(self) -> list[LegendEntry]:
        """What the legend lists: every layer switched on (statuses always, so a reviewer knows the looks
        before deciding), and the registered layers that say they are shown."""
        entries = []
        if self.show_volunteers:
            entries.append(LegendEntry("volunteer mark (its consensus mark's colour)", PALETTE[0],
                                       width=1.5, more_colours=tuple(PALETTE[1:3])))
        if self.show_unmatched:
            entries.append(LegendEntry("unmatched volunteer mark", UNMATCHED_COLOUR, dash="dashed",
                                       width=1))
        if self.show_consensus:
            names = {"unreviewed": "consensus, unreviewed", "accepted": "accepted", "redrawn": "redrawn",
                     "added": "added", "rejected": "rejected"}
            entries += [LegendEntry(names[status], REJECTED_COLOUR if status == "rejected" else PALETTE[0],
                                    dash=dash, width=2.5, glyph=glyph)
                        for status, (_, dash, glyph) in STATUS_LOOKS.items()]
            entries.append(LegendEntry("picked (drag its handles to redraw)", PICKED_COLOUR,
                                       width=2.5))
        if self.show_band:
            entries.append(LegendEntry("uncertainty band (68 %)", PALETTE[0], dash="dotted", width=1.5))
        entries.append(LegendEntry("box you drew", DRAWN_COLOUR, dash="dashed"))
        if self.show_detections and has_detections(self):
            entries.append(DETECTION_LEGEND)
        for layer in LAYERS.values():
            if layer.shown(self):
                entries.extend(layer.legend)
        return entries

    @param.depends("show_volunteers", "show_unmatched", "show_consensus", "show_band", "show_detections")
    def _legend(self) -> pn.pane.HTML:
        return pn.pane.HTML(legend_html(self.legend_entries()), sizing_mode="stretch_width", margin=(0, 10))

    def overlay(self) -> hv.Overlay:
        """The image with the layers switched on (`image_layer` under `box_layers`)."""
        return self.image_layer() * self.box_layers()

    def dynamic_overlay(self) -> hv.DynamicMap:
        """`overlay` following the session's settings, where a click picks a box and a box-select drag draws one."""
        # Two maps, so that clicks and drags can be taken from the image's: HoloViews
        # 1.23 links no Tap or BoundsXY stream to a map that returns a whole overlay.
        # They share their streams, so that a change redraws the plot once, not once per map.
        streams = [hv.streams.Params(self.data_store, list(REDRAWN_BY["data_store"])),
                   hv.streams.Params(self, list(REDRAWN_BY["viewer"]))]
        image = hv.DynamicMap(lambda **settings: self.image_layer(), streams=streams)
        hv.streams.Tap(source=image).add_subscriber(self._pick_box)
        hv.streams.BoundsXY(source=image).add_subscriber(self._draw_box)
        return image * hv.DynamicMap(lambda **settings: self.box_layers(), streams=streams)

    @param.depends("data_store.subject", "data_store.tool", "data_store.min_votes", "image_kind")
    def _caption(self) -> pn.pane.HTML:
        subject_id = self.data_store.subject
        if subject_id is None:
            return pn.pane.HTML("No subject passes the filters.")
        stats = self.data_store.project.stats_of(subject_id)
        caption = (f"<b style='font-size:15px'>Subject {subject_id}</b><br><small>"
                   f"{_marks_in_words(self.data_store.marks_of())} from {stats.n_classifications} classifications "
                   f"({stats.n_empty} drew nothing); {_counted(len(self.data_store.consensus_of()), 'consensus mark')}."
                   "</small>")
        image, problem = self._image("fits" if self.image_kind == "fits" else "rendering")
        if image is None:
            # The reason quotes a location from the data: escaped.
            caption += f"<br><small>No image shown: {html.escape(problem)}</small>"
        return pn.pane.HTML(caption, margin=(0, 10), width=self.frame_size - 210)

    def __panel__(self):
        previous_button = pn.widgets.Button(label="◀ Previous", width=100)
        next_button = pn.widgets.Button(label="Next ▶", width=90)
        whole_image = pn.widgets.Button(label="Whole image", width=110)
        previous_button.on_click(lambda event: self.data_store.step_subject(-1))
        next_button.on_click(lambda event: self.data_store.step_subject(1))
        whole_image.on_click(lambda event: setattr(self, "zoom_to_pick", False))
        toggles = pn.Param(self, parameters=["show_volunteers", "show_unmatched", "show_consensus", "show_band",
                                             "fit_to_boxes", "zoom_to_pick"],
                           show_name=False, default_layout=pn.FlexBox,
                           widgets={name: {"name": label, "margin": (2, 5)} for name, label in (
                               ("show_volunteers", "volunteers"), ("show_unmatched", "unmatched"),
                               ("show_consensus", "consensus"), ("show_band", "band"),
                               ("fit_to_boxes", "fit to boxes"), ("zoom_to_pick", "zoom to pick"))})
        image_controls = pn.Param(self, parameters=["image_kind", "stretch", "cmap"], show_name=False,
                                  default_layout=pn.Row,
                                  # Unlabelled, to keep to one line: the options say what they are.
                                  widgets={"image_kind": {"type": pn.widgets.RadioButtonGroup, **CHOSEN_STANDS_OUT},
                                           "stretch": {"width": 100, "name": ""},
                                           "cmap": {"width": 100, "name": ""}})
        plot = pn.pane.HoloViews(self.dynamic_overlay(), linked_axes=False)
        return pn.Column(pn.Row(previous_button, next_button, self._caption), plot, self._legend, toggles,
                         pn.Row(whole_image, image_controls), *detection_controls(self),
                         VolunteerSteps(data_store=self.data_store), width=self.frame_size + 40)


#: How the caption names each kind of mark, singular and plural.
KIND_WORDS = {"point": ("point", "points"), "rectangle": ("box", "boxes"), "point-as-box": ("box", "boxes"),
              "rotateRectangle": ("rotated box", "rotated boxes"), "circle": ("circle", "circles"),
              "ellipse": ("ellipse", "ellipses"), "polygon": ("polygon", "polygons"), "line": ("line", "lines"),
              "freehandLine": ("freehand line", "freehand lines")}


def _counted(count: int, thing: str) -> str:
    """"1 consensus mark", "3 consensus marks"."""
    return f"{count} {thing}{'' if count == 1 else 's'}"


def _marks_in_words(marks: pd.DataFrame) -> str:
    """"216 points", "35 marks: 20 boxes, 10 points, 5 circles": what a subject's volunteers drew."""
    counts = marks.kind.fillna("mark").value_counts()
    parts = [f"{count} {KIND_WORDS.get(kind, (kind, kind + 's'))[count != 1]}" for kind, count in counts.items()]
    if len(parts) == 1:
        return parts[0]
    return f"{len(marks)} marks" + (f": {', '.join(parts)}" if parts else "")


def _is_point(marks: pd.DataFrame) -> pd.Series:
    """Rows with no extent (width and height missing or zero): points, drawn as markers."""
    return marks.width.fillna(0).eq(0) & marks.height.fillna(0).eq(0)


def shape_outlines(marks: pd.DataFrame) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The outline of each mark as x and y vertex arrays, in image pixels.

    A circle or an ellipse is the ellipse filling its bounding box; a rotated rectangle is
    its box turned by ``angle`` degrees about its centre (clockwise on screen, y down);
    anything else is its bounding box.
    """
    half_w, half_h = (marks.width / 2).to_numpy(), (marks.height / 2).to_numpy()
    centre_x, centre_y = marks.x.to_numpy() + half_w, marks.y.to_numpy() + half_h
    kinds = marks.kind.fillna("").to_numpy(dtype=object)
    round_shape = np.isin(kinds, ("circle", "ellipse"))
    # One unit outline per shape, scaled by its half sizes: round ones a polygon of many vertices,
    # the others the four corners (repeated to the same vertex count, so all is one array).
    steps = np.linspace(0, 2 * np.pi, ELLIPSE_VERTICES, endpoint=False)
    circle = np.stack([np.cos(steps), np.sin(steps)])
    corner = np.array([[-1, 1, 1, -1], [-1, -1, 1, 1]], dtype=float)[:, np.arange(ELLIPSE_VERTICES) * 4 // ELLIPSE_VERTICES]
    unit = np.where(round_shape[:, None, None], circle[None], corner[None])
    dx, dy = unit[:, 0] * half_w[:, None], unit[:, 1] * half_h[:, None]
    angle = np.radians(np.where(kinds == "rotateRectangle", np.nan_to_num(marks.angle.to_numpy()), 0.0))[:, None]
    xs = centre_x[:, None] + dx * np.cos(angle) - dy * np.sin(angle)
    ys = centre_y[:, None] + dx * np.sin(angle) + dy * np.cos(angle)
    return list(xs), list(ys)


def _style_spec(element: hv.Element, column: str, fixed):
    """Style each glyph of ``element`` by its ``column`` (its colour, its outline width).

    An empty element gets the ``fixed`` value instead: with no values HoloViews would try
    to build a colour mapper from the column and fail.
    """
    return column if len(element) else fixed


def scaled_line_widths(width: np.ndarray, height: np.ndarray, screen_scale: float, widest: float) -> np.ndarray:
    """Outline widths in screen pixels for boxes of ``width`` x ``height`` image pixels.

    A box's shorter side on screen (``screen_scale`` screen pixels per image pixel) times
    `LINE_FRACTION`, between `THINNEST_LINE` and ``widest``: large boxes get the layer's full
    width, a box a few pixels wide a thin line that leaves it visible. Missing sizes count as 0.
    """
    side = np.minimum(np.nan_to_num(width), np.nan_to_num(height)) * screen_scale
    return np.clip(side * LINE_FRACTION, THINNEST_LINE, max(widest, THINNEST_LINE))
