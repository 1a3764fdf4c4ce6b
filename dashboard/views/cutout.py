"""The cutout viewer: a subject's image with its volunteers' boxes and the consensus boxes.

Boxes are drawn in image pixel coordinates, origin top-left and y down (the y axis
is inverted), so the canonical tables' x, y, width, height go straight onto the image.
"""

from __future__ import annotations

import html

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import param
from bokeh.palettes import Category10_10, Cividis256, Greys256, Inferno256, Magma256, Viridis256

from project.core import display_pixels, normalised

from .base import CHOSEN_STANDS_OUT, View
from .machine_layer import detection_controls, detection_layers, detection_options
from .outlines import is_open, vertex_lists, with_vertices
from .volunteer_steps import VolunteerSteps, emphasise_volunteer

#: Colours of consensus boxes, in their order within a subject; a volunteer's box takes
#: the colour of the consensus box it supports.
PALETTE = Category10_10
UNLINKED_COLOUR = "#d9d9d9"
UNMATCHED_COLOUR = "#ffffff"
#: Rejected consensus boxes are drawn dashed in grey, at their aggregated place.
REJECTED_COLOUR = "#8c8c8c"
#: The box picked for review gets a broad halo of this colour under its outline.
PICKED_COLOUR = "#ffd92f"
#: A box the reviewer drew (with the box-select tool) is shown dashed in this colour until used.
DRAWN_COLOUR = "#00e5ff"

#: The settings the cutout is redrawn for: of the session's data store, and of the viewer.
REDRAWN_BY = {
    "data_store": ("subject", "tool", "min_votes", "last_decision", "review_box", "drawn_box", "highlighted_volunteer",
                   "score_threshold", "machine_against"),
    "viewer": ("image_kind", "stretch", "cmap", "show_volunteers", "show_unmatched", "show_consensus",
               "show_band", "fit_to_boxes", "frame_size", "show_detections"),
}

# Dimensions are made once: building them per subject costs more than the boxes.
BOX_DIMENSIONS = [hv.Dimension(name) for name in ("x0", "y0", "x1", "y1")]
MARK_DIMENSIONS = [hv.Dimension(name) for name in ("volunteer", "iou", "time", "consensus_box", "colour", "area")]
CONSENSUS_DIMENSIONS = [hv.Dimension(name) for name in ("consensus_box", "votes", "seen_by", "status", "colour",
                                                         "area")]
BAND_DIMENSIONS = [hv.Dimension(name) for name in ("consensus_box", "colour")]
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
    frame_size = param.Integer(default=400, bounds=(200, 2000), doc="Width of the image in screen pixels.")

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

    def view_limits(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """x and y limits of a square view: the whole image, or the boxes with a margin.

        The square spans the longer side, centred, so pixels stay square for any shape.
        """
        width, height = self.extent()
        left, top, right, bottom = 0.0, 0.0, width, height
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
        }
        return hv.Rectangles(data, kdims=BOX_DIMENSIONS, vdims=MARK_DIMENSIONS, group=group)

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
            "area": np.zeros(len(marks)),
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
                "colour": np.asarray(colours[kept], dtype=object), "area": np.zeros(len(boxes))}
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

    def consensus_boxes(self) -> hv.Rectangles:
        """The subject's consensus boxes as reviewed, each in its own colour, rejected ones and points left out.

        Redrawn boxes are at their new place; boxes reviewers added are included.
        """
        boxes = self.data_store.reviewed_consensus_of()
        colours = self._consensus_colours().to_numpy()
        kept = ((boxes.status != "rejected") & ~_is_point(boxes)).to_numpy(dtype=bool)
        return self._consensus_rectangles(boxes[kept], colours[kept], "Consensus")

    def rejected_boxes(self) -> hv.Rectangles:
        """The subject's consensus boxes a reviewer rejected, at their aggregated place."""
        boxes = self.data_store.reviewed_consensus_of()
        boxes = boxes[(boxes.status == "rejected").to_numpy(dtype=bool)]
        return self._consensus_rectangles(boxes, np.full(len(boxes), REJECTED_COLOUR, dtype=object), "Rejected")

    def picked_box(self) -> hv.Rectangles:
        """The box picked for review (`DataStore.picked_box_id`), at its reviewed place; empty when none."""
        boxes = self.data_store.reviewed_consensus_of()
        boxes = boxes[(boxes.consensus_id == self.data_store.picked_box_id(boxes)).to_numpy(dtype=bool)]
        return self._consensus_rectangles(boxes, np.full(len(boxes), PICKED_COLOUR, dtype=object), "Picked")

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
            xaxis=None, yaxis=None, toolbar="above", default_tools=["pan", "wheel_zoom", "reset"],
            tools=["box_select"], xlim=xlim, ylim=ylim, framewise=True)

    def box_layers(self) -> hv.Overlay:
        """The boxes of the layers switched on, styled."""
        layers, markers = [], []
        if self.show_volunteers:
            layers.append(self.volunteer_boxes())
        if self.show_unmatched:
            layers.append(self.unmatched_boxes())
        if self.show_consensus:
            layers.extend([self.picked_box(), self.consensus_boxes(), self.rejected_boxes()])
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
            markers.append(self.consensus_points())
        rectangles = dict(fill_alpha=0, hover_fill_alpha=0.15, hover_line_alpha=1, tools=["hover"], framewise=True,
                          # A box-select drag draws a box; it must not fade the boxes outside it.
                          nonselection_alpha=1.0)
        widths = {"Volunteer": 1.5, "Unmatched": 1, "Picked": 12, "Consensus": 4, "Rejected": 2, "Band": 1,
                  "Drawn": 2}
        # Styles go on the overlay once (an .opts per element clones it), keyed by group.
        options = {f"Rectangles.{layer.group}": dict(rectangles, line_width=widths[layer.group],
                                                     line_color=DRAWN_COLOUR if layer.group == "Drawn"
                                                     else _colour_spec(layer))
                   | ({"hover_tooltips": HOVER_TOOLTIPS[layer.group], "hooks": [_one_tooltip_per_layer]}
                      if layer.group in HOVER_TOOLTIPS else {})
                   for layer in layers}
        options["Rectangles.Unmatched"] = dict(options.get("Rectangles.Unmatched", {}), line_dash="dashed")
        options["Rectangles.Band"] = dict(options.get("Rectangles.Band", {}), line_dash="dotted", tools=[])
        options["Rectangles.Rejected"] = dict(options.get("Rectangles.Rejected", {}), line_dash="dashed")
        options["Rectangles.Picked"] = dict(options.get("Rectangles.Picked", {}), line_alpha=0.6, tools=[])
        options["Rectangles.Drawn"] = dict(options.get("Rectangles.Drawn", {}), line_dash="dashed", tools=[])
        for marker in markers:
            kind, group = type(marker).__name__, marker.group
            colour = _colour_spec(marker)
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
                style |= dict(marker="circle_cross", size=18, fill_alpha=0, line_width=3, color=colour)
            elif group == "Volunteer":
                # Filled in the consensus mark's colour, ringed in black to stand out on any picture.
                style |= dict(marker="circle", size=8, fill_color=colour, line_color="black", line_width=1)
            else:
                style |= dict(marker="circle", size=8, fill_alpha=0, line_color=colour, line_width=2)
            options[f"{kind}.{group}"] = style
        options = emphasise_volunteer(options, self.data_store.highlighted_volunteer)
        machine = detection_layers(self)
        options |= detection_options(machine)
        return hv.Overlay(layers + markers + machine).opts({**options, "Overlay": dict(framewise=True)})

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
    def _caption(self) -> pn.pane.Markdown:
        subject_id = self.data_store.subject
        if subject_id is None:
            return pn.pane.Markdown("No subject passes the filters.")
        stats = self.data_store.project.stats_of(subject_id)
        caption = pn.pane.Markdown(
            f"### Subject {subject_id}\n{_marks_in_words(self.data_store.marks_of())} from "
            f"{stats.n_classifications} classifications ({stats.n_empty} drew nothing); "
            f"{_counted(len(self.data_store.consensus_of()), 'consensus mark')}.")
        image, problem = self._image("fits" if self.image_kind == "fits" else "rendering")
        if image is None:
            # The reason quotes a location from the data: escaped, in an HTML pane.
            return pn.Column(caption, pn.pane.HTML(f"<small>No image shown: {html.escape(problem)}</small>"))
        return caption

    def __panel__(self):
        previous_button = pn.widgets.Button(label="◀ Previous", width=110)
        next_button = pn.widgets.Button(label="Next ▶", width=110)
        previous_button.on_click(lambda event: self.data_store.step_subject(-1))
        next_button.on_click(lambda event: self.data_store.step_subject(1))
        toggles = pn.Param(self, parameters=["show_volunteers", "show_unmatched", "show_consensus", "show_band",
                                             "fit_to_boxes"],
                           show_name=False, default_layout=pn.FlexBox)
        image_controls = pn.Param(self, parameters=["image_kind", "stretch", "cmap"], show_name=False,
                                  default_layout=pn.FlexBox,
                                  widgets={"image_kind": {"type": pn.widgets.RadioButtonGroup, **CHOSEN_STANDS_OUT},
                                           "stretch": {"width": 115}, "cmap": {"width": 115}})
        plot = pn.pane.HoloViews(self.dynamic_overlay(), linked_axes=False)
        return pn.Column(pn.Row(previous_button, next_button), VolunteerSteps(data_store=self.data_store),
                         self._caption, toggles, *detection_controls(self), image_controls, plot,
                         width=self.frame_size + 40)


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


def _colour_spec(rectangles: hv.Element) -> str:
    """Outline each rectangle in the colour of its ``colour`` column.

    An empty element gets a fixed colour instead: with no values HoloViews would try
    to build a colour mapper from the column and fail.
    """
    return "colour" if len(rectangles) else UNLINKED_COLOUR
