"""The cutout viewer: a subject's image with its volunteers' marks and the consensus marks.

The cutout is one Bokeh figure made once per session, one glyph renderer per layer
(`cutout_layers.CutoutLayer`). Switching subject replaces each layer's data source's
``data`` and sets the axes' ranges; nothing is built again, so a switch is one small
patch of the page. Marks are drawn in image pixel coordinates, origin top-left and y
down (the y range runs from the image's height to 0), so the canonical tables' x, y,
width, height go straight onto the image.
"""

from __future__ import annotations

import functools
import html
import re
from concurrent.futures import wait
from functools import partial

import numpy as np
import pandas as pd
import panel as pn
import param
from bokeh.core.property.validation import validate
from bokeh.events import SelectionGeometry, Tap
from bokeh.models import (
    BoxAnnotation,
    BoxEditTool,
    BoxSelectTool,
    ColumnDataSource,
    HoverTool,
    ImageRGBA,
    MultiLine,
    PanTool,
    Patches,
    Quad,
    Range1d,
    ResetTool,
    Scatter,
    Text,
    WheelZoomTool,
)
from bokeh.palettes import (
    Category10_10,
    Cividis256,
    Greys256,
    Inferno256,
    Magma256,
    Viridis256,
)
from bokeh.plotting import figure as bokeh_figure
from panel.io.state import set_curdoc

from project.core import display_pixels, normalised
from project.reviews import ReviewError
from project.roles import RoleError
from project.selection import ANY

from ..subject_marks import (SubjectMarks, consensus_kinds, project_marks, subject_consensus,
                             subject_marks)
from ..subject_pictures import shared_picture

from .base import CHOSEN_STANDS_OUT, View
from .cutout_layers import LAYERS, CutoutLayer, LegendEntry, add_layer_glyph, legend_html
from .machine_layer import detection_controls
from ..session_threads import in_document, in_session
from .outlines import vertex_lists
from .truth_layer import has_truth
from .volunteer_steps import VolunteerSteps, emphasis_columns

#: The subjects, as steps along the session's order, whose pictures are read ahead while one is shown: the next two
#: (j and → step on) and the one before (k and ←).
PREFETCHED_STEPS = (1, 2, -1)
#: Seconds a served cutout waits for a picture on an image host before it draws the subject without it, saying
#: `PICTURE_COMING`; the picture is drawn when it comes. A host answering in time is not seen to wait.
PICTURE_WAIT_SECONDS = 0.5
PICTURE_COMING = "fetching the picture…"
#: Colours of consensus boxes, in their order within a subject; a volunteer's box takes
#: the colour of the consensus box it supports.
PALETTE = Category10_10
UNLINKED_COLOUR = "#d9d9d9"
UNMATCHED_COLOUR = "#ffffff"
#: Rejected consensus boxes are drawn dashed in grey, at their aggregated place.
REJECTED_COLOUR = "#8c8c8c"
#: The box picked for review gets a ring of this colour just outside its outline.
PICKED_COLOUR = "#ffd92f"
#: A box the reviewer drew (with the box-select or box-draw tool) is shown dashed in this colour.
DRAWN_COLOUR = "#00e5ff"
#: The picked box gets edit handles (drag an edge or a corner to redraw it) when its shorter side
#: is at least this many screen pixels.
HANDLES_LEAST_SIDE = 40

#: How each review status draws a consensus box (each status its own layer): the line dash, and a glyph
#: beside its top-right corner. Unreviewed boxes are dashed, decided ones solid with their mark.
STATUS_LOOKS = {
    "unreviewed": ("dashed", ""),
    "accepted": ("solid", "\u2713"),
    "redrawn": ("solid", "\u270e"),
    "added": ("solid", "+"),
    "rejected": ("dashed", "\u2717"),
}
#: The legend's name of each review status.
STATUS_NAMES = {"unreviewed": "consensus, unreviewed", "accepted": "accepted", "redrawn": "redrawn",
                "added": "added", "rejected": "rejected"}

#: Diameter of a consensus point's marker, in screen pixels.
CONSENSUS_MARKER_SIZE = 18
#: Diameter of a volunteer's point marker, in screen pixels.
MARKER_SIZE = 8
#: The pick ring: its width and its gap from the box's outline, in screen pixels.
PICK_RING_WIDTH = 2.5
PICK_RING_GAP = 2.0
#: Outline widths in screen pixels: the widest a layer draws, reached by boxes whose shorter side
#: is ``widest / LINE_FRACTION`` screen pixels or more; smaller boxes get thinner lines (never under
#: `THINNEST_LINE`), so a 5-pixel clump is not buried under its own outline.
WIDEST_LINES = {"Volunteer": 1.5, "Unmatched": 1.0, "Consensus": 3.0, "Rejected": 2.0, "Band": 1.0,
                "Picked": PICK_RING_WIDTH}
#: Line widths of marks drawn through their vertices (screen pixels): supporting a consensus mark, and not.
OUTLINE_WIDTHS = {"Volunteer": 2.0, "Unmatched": 1.5}
LINE_FRACTION = 0.1
THINNEST_LINE = 1.0
#: Zoom to the picked box: the view spans this many times the box and the marks supporting it, at least
#: `ZOOM_LEAST_SIDE` image pixels and `ZOOM_LEAST_FRACTION` of the image's longer side (a point, or a
#: clump a few pixels wide, still shows its surroundings).
ZOOM_MARGIN = 2.2
ZOOM_LEAST_SIDE = 32.0
ZOOM_LEAST_FRACTION = 0.12
#: Room kept around marks on or past an image's edges, as a share of its longer side (a point's 18 px ring on a
#: 600 px cutout).
EDGE_MARGIN = 0.03
#: After the last move of an edit handle or of a box being drawn, how long to wait (ms) before recording
#: the decision: a drag sends every step, the decision is the box where the mouse let go.
EDIT_SETTLE_MS = 400

#: The view's width beyond its frame (px): the figure's toolbar and the margins.
TOOLBAR_ROOM = 40


#: The settings the cutout is redrawn for: of the session's data store, and of the viewer.
REDRAWN_BY = {
    "data_store": ("subject", "tool", "min_votes", "subject_decisions", "review_box", "drawn_box", "highlighted_volunteer",
                   "score_threshold", "machine_against"),
    "viewer": ("image_kind", "stretch", "cmap", "show_volunteers", "show_unmatched", "show_consensus",
               "show_band", "fit_to_boxes", "zoom_to_pick", "frame_size", "show_detections", "show_truth"),
}

#: How marks are drawn (markers, outlines, paths, boxes): `dashboard.subject_marks`, which works it out once
#: per project. `subject_marks.OUTLINED_KINDS` are drawn as `shape_outlines`.
#: Vertices of a drawn circle or ellipse.
ELLIPSE_VERTICES = 48

#: What hovering a mark tells, per kind of layer: a few lines each, as boxes overlap in crowds.
#: Bokeh inserts the ``@{...}`` values as text, so a volunteer name is never HTML.
VOLUNTEER_TOOLTIPS = (("volunteer", "@{volunteer}"), ("IoU", "@{iou}{0.00}"), ("time", "@{time}"))
UNMATCHED_TOOLTIPS = (("volunteer", "@{volunteer}"), ("matched", "no consensus box"), ("time", "@{time}"))
CONSENSUS_TOOLTIPS = (("consensus box", "@{consensus_box}"), ("votes", "@{votes}"), ("seen by", "@{seen_by}"))
#: Where each kind of layer's tooltip points (a side of its box, on screen) and sits, so that
#: the layers hit at once do not cover each other: consensus above, volunteers below.
HOVER_PLACES = {"Consensus": ("top_center", "above"), "Volunteer": ("bottom_center", "below"),
                "Unmatched": ("center_right", "right")}

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

#: A box layer's source columns of its left, top, right and bottom edges, in image pixels.
BOX_COLUMNS = ("x0", "y0", "x1", "y1")


def layer_table(columns_of):
    """A layer's columns as its public method gives them: a table; the layer's source is filled from the plain
    columns (``method.columns``, a dict of arrays). A DataFrame of a subject's few rows cost more to make and to
    read back for Bokeh than everything else of its layer (pandas keeps text as Arrow strings, converted there and
    back): 18 layers' tables were a quarter of a switch."""
    @functools.wraps(columns_of)
    def table(viewer, *args) -> pd.DataFrame:
        return pd.DataFrame(columns_of(viewer, *args))
    table.columns = columns_of
    return table


class CutoutViewer(View):
    """The current subject's image with volunteer marks coloured by the consensus mark they support.

    Marks that matched no consensus mark are dashed; consensus boxes are bold. Hover
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
    show_truth = param.Boolean(default=False, doc="Draw the true objects (when the project has them, as the "
                                                  "demo does), to see how good the consensus is.")
    zoom_to_pick = param.Boolean(default=True, doc="Zoom to a box picked for review (in the image, the box "
                                                   "table or by key), with the marks supporting it; off: "
                                                   "the whole image.")
    frame_size = param.Integer(default=600, bounds=(200, 2000), doc="Width of the image in screen pixels.")
    edited_box = param.NumericTuple(default=None, allow_None=True, length=5,
                                    doc="Output: a consensus box redrawn by dragging its edit handles on the "
                                        "image: its id and new x, y, width, height in image pixels (y down).")
    extra_layers = param.List(default=[], item_type=CutoutLayer, doc="Layers of this viewer only (another "
                              "view's, e.g. the sandbox's boxes), drawn over the registered ones.")
    added_box = param.NumericTuple(default=None, allow_None=True, length=4,
                                   doc="Output: a box drawn on the image with the box-draw tool (shift-drag), "
                                       "to add: its x, y, width, height in image pixels (y down).")

    def __init__(self, **params):
        super().__init__(**params)
        self._figure = None
        #: Each layer's data source, by layer name (made with the figure).
        self._sources: dict[str, ColumnDataSource] = {}
        #: Each layer's glyph renderer on the figure, by layer name.
        self._renderers: dict = {}
        #: Each layer's columns with no rows (its source when the layer is not shown), by layer name.
        self._empty: dict[str, dict] = {}
        self._handle: BoxAnnotation | None = None
        self._placing = False
        self._settling = None
        self._memo = None
        self._limits = None
        self._colours = None
        self._rectangles_memo = None
        self._consensus_memo = None
        #: The current subject's images by (project, subject, kind), as `_image` read them.
        self._images: dict = {}
        #: The subject whose picture, on an image host, is drawn when it comes (`_picture_coming`), or None.
        self._coming: int | None = None
        # As wide as the view leaves it beside the Previous and Next buttons, whatever the frame's size: a width of
        # its own, set again when the frame shrank, kept the width it was first laid out with, over the review panel.
        self._caption = pn.pane.HTML("", margin=(0, 10), sizing_mode="stretch_width")
        self._legend = pn.pane.HTML("", sizing_mode="stretch_width", margin=(0, 10))
        self.data_store.param.watch(self.redraw, list(REDRAWN_BY["data_store"]))
        self.param.watch(self.redraw, list(REDRAWN_BY["viewer"]))

    # -- what the layers draw (plain methods, so notebooks and tests can call them) ----------

    def _image(self, kind: str = "rendering"):
        """The current subject's image of ``kind`` (or None) and why there is none."""
        subject_id = self.data_store.subject
        if subject_id is None:
            return None, "no subject passes the filters"
        # Read and decoded once per subject: the extent, the caption and the image layer all ask for it.
        key = (self.data_store.project, subject_id, kind)
        if key not in self._images:
            if kind == "rendering":
                # Read while this one is: the subjects j and k step to are shown without waiting for their host.
                self.data_store.project.prefetch_pictures(self.data_store.subjects_along(PREFETCHED_STEPS))
                if self._picture_coming(subject_id):
                    return None, PICTURE_COMING
            self._images = {known: image for known, image in self._images.items() if known[:2] == key[:2]}
            self._images[key] = self.data_store.project.image(subject_id, kind)
        return self._images[key]

    def _picture_coming(self, subject_id: int) -> bool:
        """Whether a served page shows the subject without its picture for now: one on an image host that has not
        come within `PICTURE_WAIT_SECONDS`. The marks are drawn on the subject's canvas meanwhile, and drawn again
        on the picture when it comes (the page waited for the host: up to its timeout for one that does not
        answer). In a notebook or a test the picture is read at once, as before."""
        # The figure's document; before the figure is in one (the page's first subject), the session being made.
        document = (self._figure.document if self._figure is not None else None) or pn.state.curdoc
        if document is None or document.session_context is None:
            return False
        if self._coming == subject_id:  # already waited for, in this redraw or an earlier one
            return True
        read = self.data_store.project.picture_read(subject_id)
        if read is None or not wait([read], timeout=PICTURE_WAIT_SECONDS).not_done:
            return False
        self._coming = subject_id
        read.add_done_callback(lambda _: in_session(document, partial(self._picture_came, subject_id)))
        return True

    def _picture_came(self, subject_id: int) -> None:
        """Draw the subject again with the picture that came, if it is still the one shown."""
        if self._coming == subject_id:
            self._coming = None
        if self.data_store.subject == subject_id:
            self.redraw()

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
        # Every box layer's outline widths ask for it (through `screen_scale`): worked out once per state.
        store = self.data_store
        # Whether the picture is still coming too: the image's size is known once it has come.
        key = (store.project, store.subject, store.tool, store.min_votes, store.review_box, self.zoom_to_pick,
               self.fit_to_boxes, self._coming == store.subject)
        boxes = store.reviewed_consensus_of()
        if self._limits is None or self._limits[0] != key or self._limits[1] is not boxes:
            self._limits = (key, boxes, self._view_limits())
        return self._limits[2]

    def _view_limits(self) -> tuple[tuple[float, float], tuple[float, float]]:
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
        marks, boxes = self.data_store.marks_of(), self.data_store.consensus_of()
        x0 = pd.concat([marks.x, boxes.x])
        y0 = pd.concat([marks.y, boxes.y])
        x1 = pd.concat([marks.x + marks.width.fillna(0), boxes.x + boxes.width.fillna(0)])
        y1 = pd.concat([marks.y + marks.height.fillna(0), boxes.y + boxes.height.fillna(0)])
        if len(x0) and self.fit_to_boxes:
            margin = 0.15 * max(x1.max() - x0.min(), y1.max() - y0.min(), 10.0)
            left, top = x0.min() - margin, y0.min() - margin
            right, bottom = x1.max() + margin, y1.max() + margin
        elif len(x0):
            # Marks on or past the image's edges are drawn whole, with room for a point's ring: a subject whose
            # size is known only from its marks ends at its farthest mark, and real exports hold marks off the image.
            margin = EDGE_MARGIN * max(width, height)
            left, top = min(left, float(x0.min()) - margin), min(top, float(y0.min()) - margin)
            right, bottom = max(right, float(x1.max()) + margin), max(bottom, float(y1.max()) + margin)
        side = max(right - left, bottom - top)
        centre_x, centre_y = (left + right) / 2, (top + bottom) / 2
        return (centre_x - side / 2, centre_x + side / 2), (centre_y - side / 2, centre_y + side / 2)

    def image(self) -> np.ndarray:
        """The image as 8-bit RGBA rows, row 0 at the top of the image (y = 0): the rendering, or the FITS
        image stretched and colour-mapped; without an image, a neutral grey canvas (2 x 2 pixels, stretched
        over the subject's extent)."""
        pixels = None
        if self.image_kind == "fits":
            fits, _ = self._image("fits")
            if fits is not None:
                values = STRETCHES[self.stretch](normalised(fits.array.astype(np.float32)))
                pixels = COLOUR_MAPS[self.cmap][np.nan_to_num(values * 255).astype(np.uint8)]
        if pixels is None:
            rendering, _ = self._image()
            pixels = (display_pixels(rendering.array) if rendering is not None
                      else np.full((2, 2, 3), PLACEHOLDER_GREY, dtype=np.uint8))
        if pixels.shape[2] == 3:
            pixels = np.concatenate([pixels, np.full(pixels.shape[:2] + (1,), 255, dtype=np.uint8)], axis=2)
        return np.ascontiguousarray(pixels)

    def image_columns(self) -> pd.DataFrame:
        """The image layer's source: the image packed as RGBA words, placed over the subject's extent (the FITS
        image over its own size). The words are shared by the sessions (`dashboard.subject_pictures`): the same
        array for the same subject and look."""
        return pd.DataFrame(self._image_source())

    def _image_source(self) -> dict:
        """`image_columns` as the source's data."""
        width, height = self.extent()
        if self.image_kind == "fits":
            fits, _ = self._image("fits")
            if fits is not None:
                width, height = float(fits.width), float(fits.height)
        look = (self.image_kind, self.stretch, self.cmap) if self.image_kind == "fits" else ("rendering",)
        if self._coming is not None and self._coming == self.data_store.subject and look == ("rendering",):
            words = self._image_words()  # the canvas until the picture comes: not kept as the subject's picture
        else:
            words = shared_picture(self.data_store.project, (self.data_store.subject, *look), self._image_words)
        return {"image": [words], "x": [0.0], "y": [0.0], "dw": [width], "dh": [height]}

    def _image_words(self) -> np.ndarray:
        pixels = self.image()
        return pixels.view(np.uint32).reshape(pixels.shape[:2])

    def _consensus_colours(self) -> pd.Series:
        # Boxes reviewers added follow the aggregated ones, so those keep their colours.
        boxes = self.data_store.reviewed_consensus_of()
        if self._colours is None or self._colours[0] is not boxes:
            colours = np.array(PALETTE, dtype=object)[np.arange(len(boxes)) % len(PALETTE)]
            self._colours = (boxes, pd.Series(colours, index=boxes.consensus_id.to_numpy(), dtype=object))
        return self._colours[1]

    def screen_scale(self) -> float:
        """Screen pixels per image pixel in the current view (`view_limits` across `frame_size`)."""
        (left, right), _ = self.view_limits()
        return self.frame_size / max(right - left, 1e-9)

    def line_widths(self, width, height, group: str) -> np.ndarray:
        """Outline widths (screen pixels) of boxes of ``width`` x ``height`` image pixels in layer ``group``,
        as they show in the current view (`scaled_line_widths`)."""
        return scaled_line_widths(np.asarray(width, dtype=float), np.asarray(height, dtype=float),
                                  self.screen_scale(), WIDEST_LINES[group])

    def _classified_marks(self) -> dict:
        """The current subject's marks split by how they are drawn (box, point, outline, path) and by whether
        they support a consensus mark, with their colours; made once per subject, tool filter and review state
        (every mark layer asks for it on each switch) from the project's arrays (`dashboard.subject_marks`)."""
        store = self.data_store
        # The marks follow the subject and the tool filter (the project is read-only), the colours the boxes.
        boxes, key = store.reviewed_consensus_of(), (store.project, store.subject, store.tool)
        if self._memo is not None and self._memo[0] == key and self._memo[1] is boxes:
            return self._memo[2]
        marks = self._subject_marks()
        if store.project.has_links:
            linked = marks.consensus_id >= 0
            colours = np.where(linked, _colours_of(marks.consensus_id, self._consensus_colours()), UNMATCHED_COLOUR)
        else:  # every mark drawn as matched, in the unlinked grey
            linked = np.ones(len(marks), dtype=bool)
            colours = np.full(len(marks), UNLINKED_COLOUR, dtype=object)
        drawn_as = {"point": marks.point, "outline": marks.outline, "path": marks.path, "box": marks.box}
        classified = {(shape, matched): (marks.take(rows & (linked if matched else ~linked)),
                                         colours[rows & (linked if matched else ~linked)])
                      for shape, rows in drawn_as.items() for matched in (True, False)}
        self._memo = (key, boxes, classified)
        return classified

    def _subject_marks(self) -> SubjectMarks:
        """The current subject's marks passing the tool filter, as arrays (`dashboard.subject_marks`)."""
        store = self.data_store
        marks = subject_marks(store.project, store.subject)
        return marks if store.tool == ANY else marks.take(marks.tool_label == store.tool)

    def _marks_drawn_as(self, drawn_as: str, matched: bool) -> tuple[SubjectMarks, np.ndarray]:
        """The current subject's marks drawn as ``"box"``, ``"point"``, ``"outline"`` (closed) or ``"path"``
        (open), with their colours.

        ``matched``: the marks supporting a consensus mark (all marks, in the unlinked grey,
        when there are no links), in its colour; else the marks that matched none (none
        when there are no links), in the unmatched colour.
        """
        return self._classified_marks()[drawn_as, matched]

    def _mark_values(self, marks: SubjectMarks, colours, group: str, width, size=None) -> dict:
        """What every mark layer's source holds beside the geometry: who, IoU, time, colour and the look
        (outline width, opacity and, for markers, ``size``: the highlighted volunteer's bold, the others'
        faded)."""
        values = {"volunteer": marks.user, "iou": np.round(marks.iou, 3), "time": marks.times(),
                  "consensus_box": marks.consensus_id, "colour": np.asarray(colours, dtype=object),
                  "area": np.nan_to_num(marks.width * marks.height), "outline": width,
                  "alpha": np.ones(len(marks))} | ({} if size is None else {"size": size})
        emphasis = emphasis_columns(values["volunteer"], self.data_store.highlighted_volunteer)
        return values | {name: column for name, column in emphasis.items() if name in values}

    def _rectangles(self, marks: SubjectMarks, colours, group: str) -> dict:
        return {"x0": marks.x, "y0": marks.y, "x1": marks.x + marks.width, "y1": marks.y + marks.height,
                **self._mark_values(marks, colours, group, self.line_widths(marks.width, marks.height, group))}

    @layer_table
    def volunteer_boxes(self) -> pd.DataFrame:
        """Volunteer boxes that support a consensus box (all boxes when there are no links).

        Marks drawn otherwise (`volunteer_points`, `volunteer_outlines`) are left out.
        """
        return self._rectangles(*self._marks_drawn_as("box", matched=True), "Volunteer")

    @layer_table
    def unmatched_boxes(self) -> pd.DataFrame:
        """Volunteer boxes that matched no consensus box (none when there are no links)."""
        return self._rectangles(*self._marks_drawn_as("box", matched=False), "Unmatched")

    def _points(self, marks: SubjectMarks, colours, group: str) -> dict:
        # Hollow markers (matched nothing) get a thicker ring to show.
        values = self._mark_values(marks, colours, group, np.full(len(marks), 2.0 if group == "Unmatched" else 1.0),
                                   size=np.full(len(marks), float(MARKER_SIZE)))
        return {"x": marks.x, "y": marks.y, **values}

    @layer_table
    def volunteer_points(self) -> pd.DataFrame:
        """Volunteer points that support a consensus mark, as filled markers in its colour (all, grey, without links)."""
        return self._points(*self._marks_drawn_as("point", matched=True), "Volunteer")

    @layer_table
    def unmatched_points(self) -> pd.DataFrame:
        """Volunteer points that matched no consensus mark, as hollow markers."""
        return self._points(*self._marks_drawn_as("point", matched=False), "Unmatched")

    def _outlines(self, marks: SubjectMarks, colours, group: str) -> dict:
        # A mark's own vertices where it has them (`outlines.vertex_lists`), else its shape's outline; most
        # subjects have no such marks, and the vertex lookup is skipped.
        xs, ys = [], []
        if len(marks):
            traced_x, traced_y = vertex_lists(marks, self.data_store.project.vertices_of(marks.mark_id))
            shape_x, shape_y = shape_outlines(marks)
            xs = [x if x is not None else shape for x, shape in zip(traced_x, shape_x)]
            ys = [y if y is not None else shape for y, shape in zip(traced_y, shape_y)]
        values = self._mark_values(marks, colours, group, np.full(len(marks), OUTLINE_WIDTHS[group]))
        return {"xs": xs, "ys": ys, **values}

    @layer_table
    def volunteer_outlines(self) -> pd.DataFrame:
        """Circles, ellipses, rotated rectangles, polygons and freehand shapes that support a consensus mark,
        drawn as what they are (closed: ``xs``, ``ys`` their vertices)."""
        return self._outlines(*self._marks_drawn_as("outline", matched=True), "Volunteer")

    @layer_table
    def unmatched_outlines(self) -> pd.DataFrame:
        """Closed outlines (as `volunteer_outlines`) that matched no consensus mark (dashed)."""
        return self._outlines(*self._marks_drawn_as("outline", matched=False), "Unmatched")

    @layer_table
    def volunteer_paths(self) -> pd.DataFrame:
        """Lines and freehand lines that support a consensus mark, as open paths through their vertices."""
        return self._outlines(*self._marks_drawn_as("path", matched=True), "Volunteer")

    @layer_table
    def unmatched_paths(self) -> pd.DataFrame:
        """Lines and freehand lines that matched no consensus mark (dashed)."""
        return self._outlines(*self._marks_drawn_as("path", matched=False), "Unmatched")

    def _consensus_arrays(self) -> dict[str, np.ndarray]:
        """The current subject's boxes as reviewed (`DataStore.reviewed_consensus_of`), as arrays with their
        colours and whether each is a point; made once per review state (every consensus layer asks on each
        switch, and selects from arrays faster than from the table)."""
        boxes = self.data_store.reviewed_consensus_of()
        if self._consensus_memo is None or self._consensus_memo[0] is not boxes:
            width, height = boxes.width.to_numpy(dtype=float), boxes.height.to_numpy(dtype=float)
            arrays = {"x": boxes.x.to_numpy(dtype=float), "y": boxes.y.to_numpy(dtype=float), "width": width,
                      "height": height, "consensus_box": boxes.consensus_id.to_numpy(dtype=np.int64),
                      "votes": boxes.n_votes.to_numpy(dtype=float, na_value=np.nan),
                      "seen_by": boxes.n_seen.to_numpy(dtype=float, na_value=np.nan),
                      "status": boxes.status.to_numpy(dtype=object, na_value=""),
                      "colour": self._consensus_colours().to_numpy(dtype=object),
                      # No extent (width and height missing or zero): drawn as a marker.
                      "point": (np.nan_to_num(width) == 0) & (np.nan_to_num(height) == 0)}
            self._consensus_memo = (boxes, arrays)
        return self._consensus_memo[1]

    @layer_table
    def consensus_points(self) -> pd.DataFrame:
        """The subject's consensus marks that are points (no extent), as large ringed crosses; rejected ones left out."""
        boxes = self._consensus_arrays()
        kept = (boxes["status"] != "rejected") & boxes["point"]
        return {**{name: boxes[name][kept] for name in ("x", "y", "consensus_box", "votes", "seen_by", "status", "colour")},
                "area": np.zeros(int(kept.sum())), "outline": np.full(int(kept.sum()), THINNEST_LINE)}

    @layer_table
    def consensus_boxes(self, status: str | None = None) -> pd.DataFrame:
        """The subject's consensus boxes as reviewed, each in its own colour, rejected ones and points left out.

        Redrawn boxes are at their new place; boxes reviewers added are included. With
        ``status`` (unreviewed, accepted, redrawn, added), only the boxes of that review
        status, outlined as that status draws (`STATUS_LOOKS`).
        """
        # Made once per review state and zoom (all the statuses' layers ask on each switch), then sliced.
        boxes, scale = self._consensus_arrays(), self.screen_scale()
        if self._rectangles_memo is None or self._rectangles_memo[0] is not boxes or self._rectangles_memo[1] != scale:
            kept = (boxes["status"] != "rejected") & ~boxes["point"]
            # Every status but rejected outlines as widely as the unreviewed consensus (`WIDEST_LINES`).
            columns = self._consensus_rectangles(boxes, kept, boxes["colour"][kept], "Consensus")
            self._rectangles_memo = (boxes, scale, columns)
        columns = self._rectangles_memo[2]
        shown = slice(None) if status is None else columns["status"] == status
        return {name: values[shown] for name, values in columns.items()}

    @layer_table
    def rejected_boxes(self) -> pd.DataFrame:
        """The subject's consensus boxes a reviewer rejected, at their aggregated place."""
        boxes = self._consensus_arrays()
        kept = boxes["status"] == "rejected"
        return self._consensus_rectangles(boxes, kept, np.full(int(kept.sum()), REJECTED_COLOUR, dtype=object),
                                          "Rejected")

    @layer_table
    def status_glyphs(self) -> pd.DataFrame:
        """A mark beside the top-right corner of each decided box (✓ accepted, ✎ redrawn, + added, ✗ rejected),
        in the box's colour, so a decision shows without reading the table."""
        boxes = self._consensus_arrays()
        glyphs = np.full(len(boxes["status"]), "", dtype=object)
        for status, (_, glyph) in STATUS_LOOKS.items():  # the few statuses, not the boxes
            glyphs[boxes["status"] == status] = glyph
        kept = glyphs != ""
        colours = np.where(boxes["status"] == "rejected", REJECTED_COLOUR, boxes["colour"])
        return {"x": (boxes["x"] + np.nan_to_num(boxes["width"]))[kept], "y": boxes["y"][kept],
                "glyph": glyphs[kept], "colour": colours[kept].astype(object)}

    def _picked_rows(self) -> np.ndarray:
        """Which of `_consensus_arrays` is the box picked for review (`DataStore.picked_box_id`): one or none."""
        boxes = self._consensus_arrays()
        return boxes["consensus_box"] == self.data_store.picked_box_id(self.data_store.reviewed_consensus_of())

    @layer_table
    def picked_box(self) -> pd.DataFrame:
        """The box picked for review (`DataStore.picked_box_id`), at its reviewed place; empty when none.

        Drawn as a ring `PICK_RING_GAP` screen pixels outside the box's outline, so that
        it never covers the box or the marks inside it, however small the box.
        """
        boxes, picked = self._consensus_arrays(), self._picked_rows()
        # Around a point, outside its marker.
        outside = np.where(boxes["point"][picked], CONSENSUS_MARKER_SIZE / 2, WIDEST_LINES["Consensus"] / 2)
        grow = (PICK_RING_GAP + PICK_RING_WIDTH / 2 + outside) / self.screen_scale()
        x0, y0 = boxes["x"][picked] - grow, boxes["y"][picked] - grow
        x1 = x0 + np.nan_to_num(boxes["width"][picked]) + 2 * grow
        y1 = y0 + np.nan_to_num(boxes["height"][picked]) + 2 * grow
        return {"x0": x0, "y0": y0, "x1": x1, "y1": y1, "consensus_box": boxes["consensus_box"][picked],
                "outline": self.line_widths(x1 - x0, y1 - y0, "Picked")}

    @layer_table
    def drawn_box(self) -> pd.DataFrame:
        """The box the reviewer drew with the box-select tool, for a redraw or an added box
        (`DataStore.drawn_box`); empty when none."""
        drawn = self.data_store.drawn_box
        if drawn is None:
            return {name: np.zeros(0) for name in ("left", "right", "top", "bottom")}
        x, y, width, height = drawn
        return {"left": np.array([x]), "right": np.array([x + width]), "top": np.array([y]),
                "bottom": np.array([y + height])}

    @layer_table
    def band_boxes(self) -> pd.DataFrame:
        """Each consensus box grown and shrunk by the standard error of its edges.

        The errors are the consensus layer's (`consensus.agreement.box_agreement`:
        ``x_err``, ``y_err``, ``width_err``, ``height_err``); the right and bottom edges
        move by the errors of corner and size combined. Boxes with fewer than two votes
        have no band; a shrunk box that would vanish is left out.
        """
        store = self.data_store
        boxes = subject_consensus(store.project, store.subject)
        # The boxes passing the vote threshold (`DataStore.consensus_of`), with an error on every edge.
        kept = np.nan_to_num(boxes["n_votes"]) >= store.min_votes
        for name in ("x_err", "y_err", "width_err", "height_err"):
            kept &= ~np.isnan(boxes[name])
        x, y, width, height, x_err, y_err, width_err, height_err = (
            boxes[name][kept] for name in ("x", "y", "width", "height", "x_err", "y_err", "width_err", "height_err"))
        right_err, bottom_err = np.hypot(x_err, width_err), np.hypot(y_err, height_err)
        inner = np.stack([x + x_err, y + y_err, x + width - right_err, y + height - bottom_err])
        shown = (inner[2] > inner[0]) & (inner[3] > inner[1])
        outer = np.stack([x - x_err, y - y_err, x + width + right_err, y + height + bottom_err])
        edges = np.concatenate([outer, inner[:, shown]], axis=1)
        ids = boxes["consensus_id"][kept]
        ids = np.concatenate([ids, ids[shown]])
        return {"x0": edges[0], "y0": edges[1], "x1": edges[2], "y1": edges[3], "consensus_box": ids,
                "colour": _colours_of(ids, self._consensus_colours()),
                "outline": self.line_widths(edges[2] - edges[0], edges[3] - edges[1], "Band")}

    def _consensus_rectangles(self, boxes: dict[str, np.ndarray], kept: np.ndarray, colours, group: str) -> dict:
        """The source columns of the ``kept`` boxes of `_consensus_arrays`, outlined as layer ``group``."""
        x, y, width, height = (boxes[name][kept] for name in ("x", "y", "width", "height"))
        return {"x0": x, "y0": y, "x1": x + width, "y1": y + height,
                **{name: boxes[name][kept] for name in ("consensus_box", "votes", "seen_by", "status")},
                "colour": np.asarray(colours, dtype=object), "area": width * height,
                "outline": self.line_widths(width, height, group)}

    # -- the layers, the legend and the caption ----------------------------------------------

    def layers(self) -> list[CutoutLayer]:
        """The cutout's own layers (`OWN_LAYERS`), those other modules registered (`LAYERS`), then this viewer's
        ``extra_layers``."""
        return [*OWN_LAYERS, *LAYERS.values(), *self.extra_layers]

    def layer_columns(self) -> dict[str, pd.DataFrame | dict]:
        """Each layer's source for the current subject and settings, by layer name (no rows when not shown): its
        columns as the layer gives them (`CutoutLayer.columns`: a table, or a dict of columns)."""
        columns = {}
        for layer in self.layers():
            # A layer left off the figure (`CutoutLayer.possible`) has nothing to draw.
            if layer.shown(self) and (self._figure is None or layer.name in self._sources):
                columns[layer.name] = layer.columns(self)
            else:  # its columns as the figure was made with them, no rows: hidden layers cost nothing
                empty = self._empty.get(layer.name)
                columns[layer.name] = empty if empty is not None else _no_rows(layer.columns(self))
        return columns

    def legend_entries(self) -> list[LegendEntry]:
        """What the legend lists: the entries of every layer shown (statuses always with the consensus, so a
        reviewer knows the looks before deciding)."""
        return [entry for layer in self.layers()
                if layer.shown(self) and (self._figure is None or layer.name in self._sources) for entry in layer.legend]

    def caption(self) -> str:
        """The caption's HTML: the subject, what its volunteers drew, and why no image shows when none does."""
        subject_id = self.data_store.subject
        if subject_id is None:
            return "No subject passes the filters."
        stats = self.data_store.project.stats_of(subject_id)
        n_consensus = int((self._consensus_arrays()['consensus_box'] >= 0).sum())
        one, many = consensus_kinds(self.data_store.project).words
        caption = (f"<b style='font-size:15px'>Subject {subject_id}</b><br><small>"
                   f"{marks_in_words(self._subject_marks().kind)} from "
                   f"{stats.n_classifications} classifications ({stats.n_empty} drew nothing); "
                   f"{n_consensus} consensus {one if n_consensus == 1 else many}.</small>")
        image, problem = self._image("fits" if self.image_kind == "fits" else "rendering")
        if image is None:
            # The reason quotes a location from the data: escaped.
            caption += f"<br><small>No image shown: {html.escape(problem)}</small>"
        return caption

    # -- the figure: made once, its sources replaced on each change --------------------------

    def figure(self):
        """The session's cutout figure (made on first call): the image and one renderer per layer."""
        if self._figure is None:
            self._figure = self._make_figure()
            self.redraw()
        return self._figure

    def _make_figure(self):
        (x_start, x_end), (y_start, y_end) = self.view_limits()
        figure = bokeh_figure(
            x_range=Range1d(x_start, x_end), y_range=Range1d(y_end, y_start),  # y down the image
            frame_width=self.frame_size, frame_height=self.frame_size, x_axis_type=None, y_axis_type=None,
            toolbar_location="right", tools=[], min_border=0, outline_line_color=None)
        image_source = self._sources["image"] = ColumnDataSource(self._image_source())
        image = add_layer_glyph(figure, ImageRGBA, image_source, image="image", x="x", y="y", dw="dw", dh="dh")
        renderers = self._renderers
        for layer in self.layers():
            self._empty[layer.name] = _no_rows(layer.columns(self))
            if not layer.possible(self):
                continue
            source = self._sources[layer.name] = ColumnDataSource(_source_data(self._empty[layer.name]))
            renderers[layer.name] = layer.draw(figure, source)
        hovers = []
        for layer in self.layers():
            if not layer.tooltips or layer.name not in renderers:
                continue
            hover = HoverTool(renderers=[renderers[layer.name]], tooltips=list(layer.tooltips),
                              description=f"Hover: {layer.name}")
            if layer.hover_place is not None:
                # One box's tooltip per layer, at the box: in a crowd, one per box would cover the page. The box
                # is the smallest under the pointer, as for picking (`box_at`), so any box can be told by
                # pointing where no smaller box of its layer lies.
                hover.update(limit=1, sort_by="area", point_policy="snap_to_data", anchor=layer.hover_place[0],
                             attachment=layer.hover_place[1])
            hovers.append(hover)
        pan, zoom = PanTool(), WheelZoomTool()
        figure.add_tools(pan, zoom, ResetTool())
        if "new box" in renderers:  # boxes to draw for the review (`_boxes_reviewed`)
            # A box-select drag draws a box for Redraw / Add box; it selects nothing (only the image, which no
            # selection fades), so the marks outside it keep their look.
            select = BoxSelectTool(renderers=[image], continuous=False)
            # Shift-drag with the box-draw tool adds a box at once (`added_box`).
            draw = BoxEditTool(renderers=[renderers["new box"]], num_objects=1,
                               description="Draw a box to add (shift-drag)")
            figure.add_tools(select, draw)
            self._sources["new box"].on_change("data", self._box_being_drawn)
            figure.on_event(SelectionGeometry, self._selection_drawn)
        figure.add_tools(*hovers)
        figure.toolbar.active_drag, figure.toolbar.active_scroll = pan, zoom
        figure.toolbar.active_inspect = hovers
        figure.on_event(Tap, lambda event: self._pick_box(event.x, event.y))
        # The picked box's edit handles: only its corner and edge handles show, the box's own outline tells its
        # review status, and nothing (no move handle) covers its middle, where the object is.
        self._handle = BoxAnnotation(editable=True, resizable="all", movable="none", fill_alpha=0.0, line_alpha=0.0,
                                     use_handles=True, level="overlay", visible=False)
        figure.add_layout(self._handle)
        for edge in ("left", "right", "top", "bottom"):
            self._handle.on_change(edge, partial(self._handle_moved, self._handle))
        return figure

    def drawn(self, layer: str) -> pd.DataFrame:
        """What the figure's source of ``layer`` (a layer's name, or ``image``) holds now, as a table (no rows for a
        layer the project cannot draw: it has no source)."""
        self.figure()
        if layer not in self._sources and layer in self._empty:
            return pd.DataFrame(self._empty[layer])
        return pd.DataFrame(dict(self._sources[layer].data))

    def renderer(self, layer: str):
        """The figure's glyph renderer of ``layer`` (a layer's name)."""
        self.figure()
        return self._renderers[layer]

    def redraw(self, *events) -> None:
        """Fill every layer's source for the current subject and settings, set the ranges, caption and legend
        (once the figure is made: until it is shown, a change costs nothing).

        Called within the data store's change, which holds the session's document: the new
        sources go to the browser as one message. Everything is worked out here, on the thread the change
        came on; the figure's models are set by `_draw` through `session_threads.in_document` (from a worker
        thread, by the server's event loop next, as Bokeh sends a document's changes only under its lock).
        """
        if self._figure is None:
            return
        # The columns are the layers' own, made here: Bokeh need not check them again.
        drawing = partial(self._draw, self.caption(), legend_html(self.legend_entries()), self.view_limits(),
                          self._image_source(),
                          {name: _source_data(table) for name, table in self.layer_columns().items()},
                          self._handle_place())
        in_document(self._figure.document, drawing)

    def _draw(self, caption: str, legend: str, limits, image: dict, layers: dict[str, dict], handle: dict) -> None:
        """Set the figure's models to what `redraw` worked out."""
        # Panes whose text changes in place: a switch replaces no pane.
        if caption != self._caption.object:
            self._caption.object = caption
        if legend != self._legend.object:
            self._legend.object = legend
        figure = self._figure
        (x_start, x_end), (y_start, y_end) = limits
        figure.x_range.update(start=x_start, end=x_end, reset_start=x_start, reset_end=x_end)
        figure.y_range.update(start=y_end, end=y_start, reset_start=y_end, reset_end=y_start)
        if figure.frame_width != self.frame_size:
            figure.update(frame_width=self.frame_size, frame_height=self.frame_size)
        with validate(False):
            shown = self._sources["image"].data
            # The same picture (a box picked, a zoom, a box decided): its words are the same shared array, and
            # sending them again would be most of the message.
            if not (len(shown.get("image", ())) and shown["image"][0] is image["image"][0]
                    and all(shown[name] == image[name] for name in ("x", "y", "dw", "dh"))):
                self._sources["image"].data = image
            for name, data in layers.items():
                source = self._sources.get(name)
                # A layer registered after the figure was made waits for the next session; an empty layer that
                # stays empty sends nothing.
                if source is not None and (len(next(iter(data.values()), ())) or len(next(iter(source.data.values()), ()))):
                    source.data = data
        self._set_handle(self._handle, handle)

    def _selection_drawn(self, event: SelectionGeometry) -> None:
        geometry = event.geometry
        if event.final and geometry.get("type") == "rect":
            self._draw_box((geometry["x0"], geometry["y0"], geometry["x1"], geometry["y1"]))

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

    def box_at(self, x: float, y: float) -> int | None:
        """The id of the smallest of the subject's reviewed boxes holding the point (x, y), if any; else of the
        consensus point nearest it whose marker it falls on (a point has no area to hold a click)."""
        boxes = self.data_store.reviewed_consensus_of()
        inside = boxes[(boxes.x <= x) & (x <= boxes.x + boxes.width)
                       & (boxes.y <= y) & (y <= boxes.y + boxes.height)]
        if len(inside):
            return int(inside.consensus_id.to_numpy()[np.argmin((inside.width * inside.height).to_numpy())])
        points = boxes[(boxes.width == 0) & (boxes.height == 0)]
        if not len(points):
            return None
        distances = np.hypot(points.x.to_numpy(float) - x, points.y.to_numpy(float) - y)
        nearest = int(np.argmin(distances))
        on_marker = distances[nearest] * self.screen_scale() <= CONSENSUS_MARKER_SIZE / 2
        return int(points.consensus_id.iloc[nearest]) if on_marker else None

    def _pick_box(self, x=None, y=None):
        """A click on the image picks the box under it for review."""
        if x is not None and y is not None:
            picked = self.box_at(x, y)
            if picked is not None:
                self.data_store.review_box = picked

    # -- editing on the image: the picked box's handles, and drawing a box to add -----------

    def _place_handle(self, handle: BoxAnnotation) -> None:
        """Put ``handle`` on the picked box at its reviewed place (hidden when none can be redrawn here)."""
        in_document(handle.document, partial(self._set_handle, handle, self._handle_place()))

    def _handle_place(self) -> dict:
        """The edit handles' properties: on the picked box at its reviewed place, or hidden when none can be
        redrawn here."""
        boxes = self._consensus_arrays()
        picked = np.flatnonzero(self._picked_rows() & ~boxes["point"] & (boxes["status"] != "rejected"))[:1]
        x, y, width, height, box_id = (boxes[name][picked] for name in ("x", "y", "width", "height", "consensus_box"))
        # On a box too small on screen the handles would hide it: picking it zooms to it first.
        if (not len(picked) or not self._may("redraw")
                or min(width[0], height[0]) * self.screen_scale() < HANDLES_LEAST_SIDE):
            return dict(visible=False, editable=False)
        return dict(left=float(x[0]), right=float(x[0] + width[0]), top=float(y[0]), bottom=float(y[0] + height[0]),
                    visible=True, editable=True, tags=[int(box_id[0])])

    def _set_handle(self, handle: BoxAnnotation, properties: dict) -> None:
        self._placing = True  # the handles' own moves are the reviewer's edits, not these
        try:
            handle.update(**properties)
        finally:
            self._placing = False

    def _may(self, action: str) -> bool:
        """Whether this session may ``action`` (a typed name has every right; the store checks anyway)."""
        store = self.data_store
        return store.reviews is not None and (not store.reviewer.strip() or store.identity().may(action))

    def _settle(self, document, callback) -> None:
        # A drag sends every step: the decision waits until the steps stop.
        if self._settling is not None:
            try:
                document.remove_timeout_callback(self._settling)
            except ValueError:  # it already ran
                pass
        self._settling = document.add_timeout_callback(callback, EDIT_SETTLE_MS)

    def _handle_moved(self, handle: BoxAnnotation, attr, old, new) -> None:
        if self._placing or handle.document is None:
            return
        self._settle(handle.document, partial(self._handle_settled, handle))

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
        self._decide_on_image(handle.document, "edited_box", (handle.tags[0], x, y, right - x, bottom - y),
                              lambda: self._place_handle(handle))

    def _box_being_drawn(self, attr, old, new) -> None:
        source = self._sources["new box"]
        if self._placing or source.document is None or not len(new.get("left", ())):
            return
        self._settle(source.document, self._box_drawn)

    def _box_drawn(self) -> None:
        """The box-draw tool has stopped: the drawn box becomes `added_box` (an added box), and leaves the tool."""
        self._settling = None
        source = self._sources["new box"]
        data = source.data
        if not len(data["left"]):
            return
        x, right = sorted((float(data["left"][-1]), float(data["right"][-1])))
        y, bottom = sorted((float(data["top"][-1]), float(data["bottom"][-1])))
        if not (right - x > 0 and bottom - y > 0):
            return  # the box's first corner, sent as the drag began (a slow server sees it settle): wait for the rest
        self._placing = True
        try:
            source.data = {name: [] for name in data}
        finally:
            self._placing = False
        self._decide_on_image(source.document, "added_box", (x, y, right - x, bottom - y), lambda: None)

    def _decide_on_image(self, document, output: str, value: tuple, undo) -> None:
        """Set the output ``output`` (which the review panel records); a refused decision is undone and told."""
        with set_curdoc(document):
            try:
                setattr(self, output, value)
            except (ReviewError, RoleError) as error:
                undo()
                if pn.config.exception_handler is None:
                    raise
                pn.config.exception_handler(error)
            finally:
                with param.discard_events(self):
                    setattr(self, output, None)

    # -- layout --------------------------------------------------------------------------------

    def __panel__(self):
        previous_button = pn.widgets.Button(label="◀ Previous", width=100)
        next_button = pn.widgets.Button(label="Next ▶", width=90)
        whole_image = pn.widgets.Button(label="Whole image", width=110)
        previous_button.on_click(lambda event: self.data_store.step_subject(-1))
        next_button.on_click(lambda event: self.data_store.step_subject(1))
        whole_image.on_click(lambda event: setattr(self, "zoom_to_pick", False))
        toggle_names = {"show_volunteers": "volunteers", "show_unmatched": "unmatched", "show_consensus": "consensus",
                        "show_band": "band", "fit_to_boxes": f"fit to {consensus_kinds(self.data_store.project).words[1]}",
                        "zoom_to_pick": "zoom to pick"}
        if has_truth(self):
            toggle_names["show_truth"] = "truth"
        toggles = pn.Param(self, parameters=list(toggle_names), show_name=False, default_layout=pn.FlexBox,
                           widgets={name: {"name": label, "margin": (2, 5)} for name, label in toggle_names.items()})
        image_row = pn.Row(whole_image)
        if self.data_store.project.sky.has_fits:  # the rendering / FITS toggle, the stretch and the colour map
            image_row.append(pn.Param(
                self, parameters=["image_kind", "stretch", "cmap"], show_name=False, default_layout=pn.Row,
                # Unlabelled, to keep to one line: the options say what they are.
                widgets={"image_kind": {"type": pn.widgets.RadioButtonGroup, **CHOSEN_STANDS_OUT},
                         "stretch": {"width": 100, "name": ""}, "cmap": {"width": 100, "name": ""}}))
        plot = pn.pane.Bokeh(self.figure())
        layout = pn.Column(pn.Row(previous_button, next_button, self._caption, sizing_mode="stretch_width"), plot,
                           self._legend, toggles,
                           image_row, *detection_controls(self),
                           VolunteerSteps(data_store=self.data_store), width=self.frame_size + TOOLBAR_ROOM)
        self.param.watch(lambda event: setattr(layout, "width", event.new + TOOLBAR_ROOM), "frame_size")
        return layout


#: How the caption names each kind of mark, singular and plural.
KIND_WORDS = {"point": ("point", "points"), "rectangle": ("box", "boxes"), "point-as-box": ("box", "boxes"),
              "rotateRectangle": ("rotated box", "rotated boxes"), "circle": ("circle", "circles"),
              "ellipse": ("ellipse", "ellipses"), "polygon": ("polygon", "polygons"), "line": ("line", "lines"),
              "freehandLine": ("freehand line", "freehand lines"), "freehandShape": ("freehand shape", "freehand shapes"),
              "fullWidthLine": ("full-width line", "full-width lines"),
              "fullHeightLine": ("full-height line", "full-height lines")}


def kind_words(kind: str) -> tuple[str, str]:
    """How the caption names a kind of mark, singular and plural: `KIND_WORDS`, else its camel-case name in
    words ("freehandSegmentShape": "freehand segment shape", "freehand segment shapes")."""
    if kind in KIND_WORDS:
        return KIND_WORDS[kind]
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", str(kind)).lower().replace("_", " ").strip() or "mark"
    return words, words + ("es" if words.endswith(("s", "x", "sh", "ch")) else "s")


def marks_in_words(kinds) -> str:
    """"216 points", "35 marks: 20 boxes, 10 points, 5 circles": what a subject's volunteers drew (``kinds``: their
    marks' kinds, or a table of marks with a ``kind`` column), most common first."""
    kinds = pd.Series(kinds.kind if isinstance(kinds, pd.DataFrame) else kinds, dtype=object).to_numpy()
    kinds = np.where(pd.isna(kinds) | (kinds == ""), "mark", kinds).astype(str)
    names, counts = np.unique(kinds, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    parts = [f"{count} {kind_words(kind)[count != 1]}" for kind, count in zip(names[order], counts[order].tolist())]
    if len(parts) == 1:
        return parts[0]
    return f"{len(kinds)} marks" + (f": {', '.join(parts)}" if parts else "")


def _colours_of(consensus_ids: np.ndarray, colours: pd.Series) -> np.ndarray:
    """Each id's colour in ``colours`` (indexed by consensus id), `UNLINKED_COLOUR` for ids it lacks."""
    known = colours.index.to_numpy()
    if not len(known):
        return np.full(len(consensus_ids), UNLINKED_COLOUR, dtype=object)
    order = np.argsort(known, kind="stable")
    at = order[np.minimum(np.searchsorted(known, consensus_ids, sorter=order), len(known) - 1)]
    return np.where(known[at] == consensus_ids, colours.to_numpy(dtype=object)[at], UNLINKED_COLOUR)


def shape_outlines(marks) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The outline of each mark as x and y vertex arrays, in image pixels.

    A circle or an ellipse is the ellipse filling its bounding box; a rotated rectangle is
    its box turned by ``angle`` degrees about its centre (clockwise on screen, y down);
    anything else is its bounding box. ``marks``: a DataFrame of marks or `SubjectMarks`.
    """
    half_w, half_h = np.asarray(marks.width, dtype=float) / 2, np.asarray(marks.height, dtype=float) / 2
    centre_x, centre_y = np.asarray(marks.x, dtype=float) + half_w, np.asarray(marks.y, dtype=float) + half_h
    kinds = pd.Series(np.asarray(marks.kind, dtype=object)).fillna("").to_numpy(dtype=object)
    round_shape = np.isin(kinds, ("circle", "ellipse"))
    # One unit outline per shape, scaled by its half sizes: round ones a polygon of many vertices,
    # the others the four corners (repeated to the same vertex count, so all is one array).
    steps = np.linspace(0, 2 * np.pi, ELLIPSE_VERTICES, endpoint=False)
    circle = np.stack([np.cos(steps), np.sin(steps)])
    corner = np.array([[-1, 1, 1, -1], [-1, -1, 1, 1]], dtype=float)[:, np.arange(ELLIPSE_VERTICES) * 4 // ELLIPSE_VERTICES]
    unit = np.where(round_shape[:, None, None], circle[None], corner[None])
    dx, dy = unit[:, 0] * half_w[:, None], unit[:, 1] * half_h[:, None]
    angle = np.radians(np.where(kinds == "rotateRectangle", np.nan_to_num(np.asarray(marks.angle, dtype=float)),
                                0.0))[:, None]
    xs = centre_x[:, None] + dx * np.cos(angle) - dy * np.sin(angle)
    ys = centre_y[:, None] + dx * np.sin(angle) + dy * np.cos(angle)
    return list(xs), list(ys)


def scaled_line_widths(width: np.ndarray, height: np.ndarray, screen_scale: float, widest: float) -> np.ndarray:
    """Outline widths in screen pixels for boxes of ``width`` x ``height`` image pixels.

    A box's shorter side on screen (``screen_scale`` screen pixels per image pixel) times
    `LINE_FRACTION`, between `THINNEST_LINE` and ``widest``: large boxes get the layer's full
    width, a box a few pixels wide a thin line that leaves it visible. Missing sizes count as 0.
    """
    side = np.minimum(np.nan_to_num(width), np.nan_to_num(height)) * screen_scale
    return np.clip(side * LINE_FRACTION, THINNEST_LINE, max(widest, THINNEST_LINE))


#: A layer of at most this many rows goes to the browser as lists; a longer one's numeric columns as arrays.
BINARY_LEAST_ROWS = 200


def _source_data(table: pd.DataFrame | dict) -> dict:
    """A layer's columns (a table, or a dict of arrays or lists) as a `ColumnDataSource`'s data: text as lists;
    numbers as lists too when the layer has few rows, else as arrays. Bokeh sends each array as its own binary
    websocket frame: a switch's few dozen small columns cost more as frames (and their writes) than as numbers in
    the message."""
    if isinstance(table, pd.DataFrame):
        table = {name: table[name].to_numpy() for name in table.columns}
    binary = len(next(iter(table.values()), ())) >= BINARY_LEAST_ROWS
    return {name: (values if binary and values.dtype != object else values.tolist())
            if isinstance(values, np.ndarray) else list(values) for name, values in table.items()}


def _no_rows(table: pd.DataFrame | dict) -> dict:
    """A layer's columns (a table, or a dict of arrays or lists) with no rows, as a dict of arrays."""
    if isinstance(table, pd.DataFrame):
        return {name: table[name].to_numpy()[:0] for name in table.columns}
    return {name: np.asarray(values)[:0] if isinstance(values, np.ndarray) else np.zeros(0, dtype=object)
            for name, values in table.items()}


def _boxes(dash: str = "solid", colour="colour", width="outline", alpha=1.0, fields=BOX_COLUMNS, fill_alpha=0.0):
    """How a layer of boxes draws: a quad per row, outlined, filled faintly under the pointer. ``fields``: the
    source's columns of the left, top, right and bottom edges (top the smaller y: y runs down the image)."""
    left, top, right, bottom = fields

    def draw(figure, source):
        return add_layer_glyph(figure, Quad, source, hover={"fill_alpha": 0.15, "line_alpha": 1.0}, left=left,
                               right=right, top=top, bottom=bottom, line_dash=dash, line_color=colour, line_width=width,
                               line_alpha=alpha, fill_color=colour, fill_alpha=fill_alpha)
    return draw


def _outlines(closed: bool, dash: str):
    """How a layer of marks drawn through their vertices draws: closed patches or open lines."""
    def draw(figure, source):
        style = dict(xs="xs", ys="ys", line_color="colour", line_width="outline", line_alpha="alpha", line_dash=dash)
        return (add_layer_glyph(figure, Patches, source, fill_alpha=0, **style) if closed
                else add_layer_glyph(figure, MultiLine, source, **style))
    return draw


def _markers(filled: bool):
    """How a layer of volunteers' points draws: filled in their consensus mark's colour and ringed in black to
    stand out on any picture, or hollow (matched nothing)."""
    def draw(figure, source):
        if filled:
            return add_layer_glyph(figure, Scatter, source, x="x", y="y", marker="circle", size="size",
                                   fill_color="colour", fill_alpha="alpha", line_color="black", line_width="outline",
                                   line_alpha="alpha")
        return add_layer_glyph(figure, Scatter, source, x="x", y="y", marker="circle", size="size", fill_alpha=0,
                               line_color="colour", line_width="outline", line_alpha="alpha")
    return draw


def _consensus_markers(figure, source):
    return add_layer_glyph(figure, Scatter, source, x="x", y="y", marker="circle_cross", size=CONSENSUS_MARKER_SIZE,
                           fill_alpha=0, line_width=3, line_color="colour")


def _status_glyphs(figure, source):
    # Beside the top-right corner, on a light tile to show on any picture.
    return add_layer_glyph(figure, Text, source, x="x", y="y", text="glyph", text_color="colour",
                           text_font_size="16px", text_font_style="bold", text_align="left", text_baseline="bottom",
                           background_fill_color="white", background_fill_alpha=0.85, border_radius=3)


def _shown(toggle: str):
    return lambda viewer: getattr(viewer, toggle)


def _boxes_reviewed(viewer) -> bool:
    """Whether the review redraws and adds boxes here: not in a project of consensus points alone (the review panel
    offers neither), whose cutout then has no box to drag, draw or add."""
    return not consensus_kinds(viewer.data_store.project).only_points


def _drawn_as(drawn_as: str):
    """A layer of marks drawn as ``drawn_as`` is possible when some mark of the project is."""
    return lambda viewer: project_marks(viewer.data_store.project).draws(drawn_as)


#: Every cutout's own layers, bottom to top; the layers other modules register (`cutout_layers.LAYERS`) go
#: over them.
OWN_LAYERS = [
    CutoutLayer("volunteer boxes", CutoutViewer.volunteer_boxes.columns, _boxes(alpha="alpha"),
                shown=_shown("show_volunteers"),
                legend=(LegendEntry("volunteer mark (its consensus mark's colour)", PALETTE[0], width=1.5,
                                    more_colours=tuple(PALETTE[1:3])),),
                tooltips=VOLUNTEER_TOOLTIPS, hover_place=HOVER_PLACES["Volunteer"]),
    CutoutLayer("unmatched boxes", CutoutViewer.unmatched_boxes.columns, _boxes("dashed", alpha="alpha"),
                shown=_shown("show_unmatched"),
                legend=(LegendEntry("unmatched volunteer mark", UNMATCHED_COLOUR, dash="dashed", width=1),),
                tooltips=UNMATCHED_TOOLTIPS, hover_place=HOVER_PLACES["Unmatched"]),
    *(CutoutLayer(f"consensus {status}",
                  (lambda viewer, status=status: CutoutViewer.rejected_boxes.columns(viewer) if status == "rejected"
                   else CutoutViewer.consensus_boxes.columns(viewer, status)),
                  _boxes(dash), shown=_shown("show_consensus"),
                  # Only a box is redrawn or added: a project of points alone has neither status (nor its legend line).
                  possible=_boxes_reviewed if status in ("redrawn", "added") else (lambda viewer: True),
                  legend=(LegendEntry(STATUS_NAMES[status], REJECTED_COLOUR if status == "rejected" else PALETTE[0],
                                      dash=dash, width=2.5, glyph=glyph),),
                  tooltips=CONSENSUS_TOOLTIPS + (("status", "@{status}"),), hover_place=HOVER_PLACES["Consensus"])
      for status, (dash, glyph) in STATUS_LOOKS.items()),
    CutoutLayer("picked", CutoutViewer.picked_box.columns, _boxes(colour=PICKED_COLOUR, alpha=0.9),
                shown=_shown("show_consensus"), possible=_boxes_reviewed,
                legend=(LegendEntry("picked (drag its handles to redraw)", PICKED_COLOUR, width=2.5),)),
    # A point has no handles: the same ring, named for what it is.
    CutoutLayer("picked point", CutoutViewer.picked_box.columns, _boxes(colour=PICKED_COLOUR, alpha=0.9),
                shown=_shown("show_consensus"), possible=lambda viewer: not _boxes_reviewed(viewer),
                legend=(LegendEntry("picked", PICKED_COLOUR, width=2.5),)),
    CutoutLayer("band", CutoutViewer.band_boxes.columns, _boxes("dotted"), shown=_shown("show_band"),
                legend=(LegendEntry("uncertainty band (68 %)", PALETTE[0], dash="dotted", width=1.5),)),
    CutoutLayer("drawn box", CutoutViewer.drawn_box.columns,
                _boxes("dashed", colour=DRAWN_COLOUR, width=2, fields=("left", "top", "right", "bottom")),
                possible=_boxes_reviewed,
                legend=(LegendEntry("box you drew (box select: then Redraw or Add box; box draw, shift-drag: "
                                    "added at once)", DRAWN_COLOUR, dash="dashed"),)),
    CutoutLayer("new box", lambda viewer: {name: np.zeros(0) for name in ("left", "right", "top", "bottom")},
                _boxes(colour=DRAWN_COLOUR, width=2, fields=("left", "top", "right", "bottom"), fill_alpha=0.1),
                possible=_boxes_reviewed),
    CutoutLayer("volunteer outlines", CutoutViewer.volunteer_outlines.columns, _outlines(True, "solid"),
                shown=_shown("show_volunteers"), tooltips=VOLUNTEER_TOOLTIPS, possible=_drawn_as("outline")),
    CutoutLayer("volunteer paths", CutoutViewer.volunteer_paths.columns, _outlines(False, "solid"),
                shown=_shown("show_volunteers"), tooltips=VOLUNTEER_TOOLTIPS, possible=_drawn_as("path")),
    CutoutLayer("volunteer points", CutoutViewer.volunteer_points.columns, _markers(True),
                shown=_shown("show_volunteers"), tooltips=VOLUNTEER_TOOLTIPS, possible=_drawn_as("point")),
    CutoutLayer("unmatched outlines", CutoutViewer.unmatched_outlines.columns, _outlines(True, "dashed"),
                shown=_shown("show_unmatched"), tooltips=UNMATCHED_TOOLTIPS, possible=_drawn_as("outline")),
    CutoutLayer("unmatched paths", CutoutViewer.unmatched_paths.columns, _outlines(False, "dashed"),
                shown=_shown("show_unmatched"), tooltips=UNMATCHED_TOOLTIPS, possible=_drawn_as("path")),
    CutoutLayer("unmatched points", CutoutViewer.unmatched_points.columns, _markers(False),
                shown=_shown("show_unmatched"), tooltips=UNMATCHED_TOOLTIPS, possible=_drawn_as("point")),
    CutoutLayer("consensus points", CutoutViewer.consensus_points.columns, _consensus_markers,
                shown=_shown("show_consensus"), tooltips=CONSENSUS_TOOLTIPS,
                possible=lambda viewer: consensus_kinds(viewer.data_store.project).points),
    CutoutLayer("status glyphs", CutoutViewer.status_glyphs.columns, _status_glyphs, shown=_shown("show_consensus")),
]
