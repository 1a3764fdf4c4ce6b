"""Agreement plots: how volunteers' boxes relate to the consensus, at full volume.

Point clouds are rasterized by datashader on the server (HoloViews ``rasterize``):
the browser gets an aggregated array, colour-mapped on the client, so the plots stay
fast with millions of marks, and zooming re-aggregates. A store-backed project's
density plots are grids instead, binned as datashader bins the marks: written with the
store for the whole project, and for any filter, tool or selection one compiled pass over
the store's flat per-mark columns of the subjects shown (`project.plotted`), which also
counts the marks for the empty-plot reasons and finds the subjects behind a box (zooming
into a grid enlarges its pixels). Both kinds frame the whole project's matched marks whatever the filters (what
the plot showed first stays in place, so filtered views compare at a glance, and a store's filtered view is a sum
of its stored binnings in that one frame). Box-selecting in any plot
sets the session's plot selection (the subjects behind the selected points), which
filters the subject browser and every other plot; a later box refines it, and the
"Clear selection" button (here and in the sidebar) drops it. The box stays drawn,
and the selected subjects' marks are drawn in colour over the rest of the subjects
the filters keep, in grey.

Read as an astronomer expects: density colour bars count marks on a log scale with
whole-number ticks, histograms of counts have whole-number ticks, hovering an empty
pixel shows nothing, and RA increases to the left on the sky map.

The linking goes through per-session bounds streams and the data store rather than
``hv.link_selections``: the plots show different tables (marks, consensus boxes,
subjects), which only index-based linking (``index_cols=["subject_id"]``) can join,
and HoloViews 1.23 fails on index-based selections of rasterized plots
(holoviz/holoviews#5596, #5118).
"""

from __future__ import annotations

import hashlib
import weakref

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import param
from bokeh.models import CustomJS, LogTicker, NumeralTickFormatter

from consensus.distributed import is_dask
from project.selection import ANY
from project.plotted import View as PlottedView, axis_range
from project.recent import RecentlyUsed
from project.stored import DENSITY_PLOTS, DENSITY_SHAPE, computed, no_rows

from ..warm_up import warming_up
from .base import View

#: Plots, by the name their selections and empty-plot reasons use.
PLOTS = ("iou_size", "offsets", "votes", "volunteers", "sky")
#: Histograms among them: their brushed region is an x range.
HISTOGRAMS = ("votes", "volunteers")
#: The subjects a box-select left out, drawn under the selected ones: a density plot's pixels, a histogram's bars.
UNSELECTED_PIXELS, UNSELECTED_BARS = "#8c8c8c", "#d4d4d4"
#: A histogram's bars (the selected subjects' when there is a selection).
BARS = "#4c72b0"
#: The outline of a box-selected region, drawn until the selection is cleared.
BRUSH = "#00e5ff"
#: Share of each colour map's dark end left out: the density plots are on black, where a
#: pixel holding one mark must still show.
DARK_END = 0.2
#: Each consensus table's boxes with a vote count (`_counted_votes`): shared by the sessions, one per project served
#: at once.
_COUNTED_VOTES: RecentlyUsed = RecentlyUsed(2)
#: Share of a density plot's range added beyond its data on each side.
PADDING = 0.03
#: Each project's marks table's whole ranges of both density plots (`_whole_ranges`): shared by the sessions, for two
#: projects served at once.
_WHOLE_RANGES: RecentlyUsed = RecentlyUsed(4)
#: Hovering a density plot shows a pixel's count only where there is one: never "NaN".
HOVER_ONLY_ON_DATA = "export default (args, tool, {value}) => Number.isFinite(value) && value > 0"


class AgreementPlots(View):
    """IoU against box size, centre offsets, votes per consensus box, volunteers per subject, sky map."""

    short_name = "agreement"
    tab = "Agreement"

    cmap = param.Selector(default="fire", objects=["fire", "kbc", "viridis", "inferno", "kgy"],
                          doc="Colour map of the density plots (its darkest end left out: they are on black).")
    plot_size = param.Integer(default=320, bounds=(200, 1200), doc="Width of each plot in screen pixels.")
    brushed = param.Dict(default={}, doc="Plot name -> the region last box-selected in it, drawn until the "
                                         "selection is cleared: (x0, y0, x1, y1), or (x0, x1) on a histogram.")
    filters_changed = param.Integer(default=0, precedence=-1, doc=(
        "Output: a count that goes up whenever the session's filters change (subjects, tool, minimum votes). "
        "The plots follow it rather than the subjects table, which HoloViews would hash on every redraw "
        "(seconds for millions of subjects)."))
    faded_changed = param.Integer(default=0, precedence=-1, doc=(
        "Output: a count that goes up when the filters change while there is a plot selection, or when the "
        "selection is dropped: the density plots' faded layers of the subjects left out follow it. Without a "
        "selection they are empty, and HoloViews re-running them (rasterize, spread) on every filter change "
        "was about half of its share of a re-render."))

    def __init__(self, **params):
        super().__init__(**params)
        self.data_store.param.watch(self._forget_brushes, "selection")
        self.data_store.param.watch(self._count_filter_change, ["subjects", "tool", "min_votes"])
        #: The plotted columns binned for the subjects shown, by (faded layer or not, tool, subjects' hash).
        self._views: dict[tuple, PlottedView] = {}
        #: The last subjects table shown, and what was worked out from it (the hash of its ids, the boxes' votes):
        #: asked for by several plots and their empty-plot reasons per filter change, seconds at 2.2 million subjects.
        self._of_subjects: tuple[pd.DataFrame | None, dict] = (None, {})
        #: Whether the faded layers were last drawn with a selection (not empty).
        self._faded_drawn = False
        #: `marks_are_points`, once asked.
        self._points: bool | None = None

    def _count_filter_change(self, event) -> None:
        self.filters_changed += 1
        selected = self.data_store.selection is not None
        if selected or self._faded_drawn:
            self.faded_changed += 1
        self._faded_drawn = selected

    def _forget_brushes(self, event) -> None:
        if event.new is None:
            self.brushed = {}

    # -- data of each plot (plain methods: tests and notebooks call them) --------------------
    # With ``chosen_from``: the data of every subject passing the filters, the plot selection
    # left out; drawn faded under the selected subjects' data (marks: none without a selection).

    def _subjects(self, chosen_from: bool) -> pd.DataFrame:
        store = self.data_store
        return store.passing_filters(plot_selection=False) if chosen_from and store.selection is not None \
            else store.subjects

    def _matched_points(self, chosen_from: bool, kdims: list[str]) -> hv.Points:
        """The shown marks that support a consensus mark, as points of ``kdims`` (`_points`)."""
        every_mark = self.data_store.project.marks
        if chosen_from and self.data_store.selection is None:
            # The grey layer is not drawn without a selection (`density_plot`): no pass over any mark, nor a frame.
            return hv.Points(no_rows(every_mark)[[*kdims, "subject_id"]], kdims=kdims, vdims=["subject_id"])
        marks = self.data_store.filtered_marks(self._subjects(chosen_from))
        return _points(marks[marks.consensus_id >= 0][[*kdims, "subject_id"]], kdims, every_mark)

    def iou_size_points(self, chosen_from: bool = False, grid: bool = True) -> hv.Points | hv.Image:
        """One point per mark that supports a consensus box: box size (px) against IoU (with ``grid``, for a
        store-backed project, its density grid: `_stored_grid`)."""
        if grid and (image := self._stored_grid("iou_size", chosen_from)) is not None:
            return image
        return self._matched_points(chosen_from, ["size", "iou"])

    def offset_points(self, chosen_from: bool = False, grid: bool = True) -> hv.Points | hv.Image:
        """Mark centre minus its consensus box centre, in pixels (y down)."""
        if grid and (image := self._stored_grid("offsets", chosen_from)) is not None:
            return image
        return self._matched_points(chosen_from, ["dx", "dy"])

    def _shows_every_mark(self, chosen_from: bool) -> bool:
        store = self.data_store
        return not chosen_from and store.tool == ANY and len(store.subjects) >= len(store.project.subject_stats)

    def _stored_view(self, chosen_from: bool) -> PlottedView | None:
        """A store-backed project's plotted columns (`project.plotted`) binned for the subjects (and tool) this view
        shows: one compiled pass over their marks, shared by both density plots and their empty-plot reasons,
        kept until the subjects or tool change. None for a project without them."""
        store = self.data_store
        plotted = getattr(store.project, "plotted", None)
        if plotted is None:
            return None
        subjects = self._subjects(chosen_from)
        tool = None if store.tool == ANY else store.tool
        # The subjects' ids hashed rather than the table (HoloViews would hash every column).
        key = (chosen_from, tool, self._worked_out(subjects, "ids", lambda: hashlib.blake2b(
            subjects.subject_id.to_numpy(dtype=np.int64).tobytes(), digest_size=16).digest()))
        if key not in self._views:
            self._views = {**{known: view for known, view in self._views.items() if known[0] != chosen_from},
                           key: plotted.view(self._subject_mask(subjects), tool, shape=DENSITY_SHAPE,
                                             ranges=plotted.whole_ranges)}
        return self._views[key]

    def _subject_mask(self, subjects: pd.DataFrame) -> np.ndarray:
        """A store-backed project's mask over its subjects of those in ``subjects`` (worked out once per table)."""
        plotted = self.data_store.project.plotted
        return self._worked_out(subjects, "mask", lambda: plotted.subject_mask(subjects.subject_id.to_numpy(
            dtype=np.int64)))

    def _stored_grid(self, plot: str, chosen_from: bool) -> hv.Image | hv.Points | None:
        """A store-backed project's density grid of ``plot``: the one written with the store when the view shows
        every matched mark (no filter, tool or selection leaves any out: no pass over the marks), else the
        plotted columns binned for the subjects shown (`_stored_view`). None for a project without them,
        or for the faded layer without a selection (not drawn)."""
        store = self.data_store
        grids = getattr(store.project, "density_grids", None)
        if grids and plot in grids and self._shows_every_mark(chosen_from):
            return _image(grids[plot], plot)
        if chosen_from and store.selection is None:
            return None
        view = self._stored_view(chosen_from)
        if view is None:
            return None
        if view.grids[plot] is None:  # no matched mark with both values: nothing to plot
            return hv.Points(pd.DataFrame({name: np.zeros(0) for name in (*DENSITY_PLOTS[plot], "subject_id")}),
                             kdims=list(DENSITY_PLOTS[plot]), vdims=["subject_id"])
        grid = view.grids[plot]
        return _image({"counts": grid.counts, "x_range": grid.x_range, "y_range": grid.y_range}, plot)

    def votes_histogram(self, chosen_from: bool = False) -> hv.Histogram:
        """How many consensus boxes (points, in a point project) got how many votes."""
        low, counts = self._vote_counts(self._subjects(chosen_from))
        return _histogram_of_counts(low, counts, "votes", "consensus points" if self.marks_are_points()
                                    else "consensus boxes")

    def _worked_out(self, subjects: pd.DataFrame, what: tuple | str, make):
        """``make()``, kept with ``subjects`` (by identity) until another subjects table is asked about."""
        shown, known = self._of_subjects
        if shown is not subjects:
            shown, known = self._of_subjects = (subjects, {})
        if what not in known:
            known[what] = make()
        return known[what]

    def _vote_counts(self, subjects: pd.DataFrame) -> tuple[int, np.ndarray]:
        """How many of ``subjects``' consensus boxes with at least the minimum votes (those without a count left out,
        as `DataStore.filtered_consensus` keeps them) got each number of votes: the smallest number and the counts
        from it (`_counts_from`), from the boxes' two columns: selecting whole rows of millions of boxes with text
        columns took seconds per filter change."""
        return self._worked_out(subjects, ("votes", self.data_store.min_votes),
                                lambda: self._vote_counts_of(subjects))

    def _vote_counts_of(self, subjects: pd.DataFrame) -> tuple[int, np.ndarray]:
        store = self.data_store
        boxes = store.project.consensus
        plotted = getattr(store.project, "plotted", None)
        every = len(subjects) >= len(store.project.subject_stats)
        if plotted is not None:
            # A store-backed project: its counted boxes by subject made once, a filter counts the boxes of the
            # subjects it shows or takes those of the subjects it leaves out from every box's counts (hashing 6
            # million boxes' subject ids against the shown ones cost 0.4 s a filter change).
            low, counts = _counted_votes(boxes, plotted).counts(None if every else self._subject_mask(subjects))
        else:
            votes = boxes.n_votes.to_numpy(dtype=float)
            keep = ~np.isnan(votes)
            if not every:
                keep &= boxes.subject_id.isin(subjects.subject_id).to_numpy()
            low, counts = _counts_from(votes[keep].astype(np.int64))
        return _counts_from_at_least(low, counts, store.min_votes)

    def volunteers_histogram(self, chosen_from: bool = False) -> hv.Histogram:
        """How many subjects were seen by how many volunteers (those who drew nothing included)."""
        return _integer_histogram(self._subjects(chosen_from).n_volunteers.to_numpy(), "volunteers", "subjects")

    def has_sky(self) -> bool:
        return {"ra", "dec"} <= set(self.data_store.project.metadata_columns)

    def sky_points(self, chosen_from: bool = False) -> hv.Points:
        """Subjects at their RA/Dec (degrees)."""
        subjects = self._subjects(chosen_from)
        return hv.Points(subjects[["ra", "dec", "subject_id"]], kdims=["ra", "dec"], vdims=["subject_id"])

    def brush(self, plot: str) -> hv.Element:
        """The region last box-selected in ``plot`` (nothing drawn when there is none)."""
        region = self.brushed.get(plot)
        if plot in HISTOGRAMS:
            return hv.VSpan(*(region or (None, None)))
        return hv.Rectangles([tuple(region)] if region else [])

    # -- why a plot is empty ------------------------------------------------------------------

    def empty_reason(self, plot: str) -> str | None:
        """Why plot ``plot`` (``iou_size``, ``offsets``, ``votes``, ``volunteers``, ``sky``) shows nothing, or None.

        Every empty plot says why, in words: an empty frame alone reads as a broken page.
        """
        if not len(self.data_store.subjects):
            return "No subject passes the filters and plot selection."
        no_consensus = "No consensus loaded: there are no consensus marks to compare the volunteers' marks with."
        if plot in ("iou_size", "offsets"):
            if not self.data_store.project.has_links or not len(self.data_store.project.consensus):
                return no_consensus
            grids = getattr(self.data_store.project, "density_grids", None)
            if grids and plot in grids and self._shows_every_mark(False):
                return None  # a grid is written only from marks that have both of the plot's values
            view = self._stored_view(False)
            n_marks, n_matched, n_sized = ((view.n_marks, view.n_matched, view.n_sized) if view is not None
                                           else _mark_counts(self.data_store.filtered_marks()))
            if not n_marks:
                return "No marks in this selection."
            if not n_matched:
                return "No mark in this selection supports a consensus mark."
            if plot == "iou_size" and not n_sized:
                return "These marks are points: they have no size or IoU (the offsets plot shows how far they lie)."
        elif plot == "votes":
            if not len(self.data_store.project.consensus):
                return no_consensus
            if not self._vote_counts(self.data_store.subjects)[1].sum():
                return "No consensus marks with a vote count in this selection (or above the minimum votes)."
        elif plot == "sky" and not self.has_sky():
            return "No RA/Dec in the subject metadata: the sky map needs ra and dec columns."
        return None

    def _reason_pane(self, plot: str):
        """A line saying why ``plot`` is empty, following the filters (nothing when it is not)."""
        store = self.data_store.param

        def reason(subjects, tool, min_votes):
            text = self.empty_reason(plot)
            # As wide as the plot it stands for, its text inside its padding: given the width itself, the note's text
            # took all of it and ran 14 px past the right padding onto the border.
            return pn.Column(pn.pane.Alert(text, alert_type="secondary", sizing_mode="stretch_width"),
                             width=self.plot_size, margin=0) if text else None

        return pn.panel(pn.bind(reason, store.subjects, store.tool, store.min_votes))

    # -- selections: the subjects behind a box-selected region --------------------------------

    def select_iou_size(self, bounds) -> None:
        if not self._select_stored("iou_size", bounds):
            self._select_points("iou_size", self.iou_size_points(grid=False), bounds)

    def select_offsets(self, bounds) -> None:
        if not self._select_stored("offsets", bounds):
            self._select_points("offsets", self.offset_points(grid=False), bounds)

    def _select_stored(self, plot: str, bounds) -> bool:
        """Select the subjects behind a region of ``plot`` from a store-backed project's plotted columns (one
        compiled pass over the shown subjects' marks); False for a project without them."""
        store = self.data_store
        plotted = getattr(store.project, "plotted", None)
        if plotted is None:
            return False
        mask = self._subject_mask(store.subjects)
        self._select(plot, bounds, plotted.subjects_in(plot, bounds, mask, None if store.tool == ANY else store.tool))
        return True

    def select_sky(self, bounds) -> None:
        self._select_points("sky", self.sky_points(), bounds)

    def select_votes(self, boundsx) -> None:
        low, high = boundsx
        boxes = self.data_store.filtered_consensus()
        self._select("votes", boundsx,
                     boxes.subject_id[boxes.n_votes.between(low, high).fillna(False).to_numpy(dtype=bool)])

    def select_volunteers(self, boundsx) -> None:
        low, high = boundsx
        subjects = self.data_store.subjects
        self._select("volunteers", boundsx, subjects.subject_id[subjects.n_volunteers.between(low, high)])

    def _select_points(self, plot: str, points: hv.Points, bounds) -> None:
        x0, y0, x1, y1 = bounds
        table = points.data
        x, y = points.kdims[0].name, points.kdims[1].name
        inside = table[x].between(min(x0, x1), max(x0, x1)) & table[y].between(min(y0, y1), max(y0, y1))
        self._select(plot, bounds, computed(table.subject_id[inside]))

    def _select(self, plot: str, region, subject_ids) -> None:
        self.brushed = {**self.brushed, plot: tuple(float(value) for value in region)}
        self.data_store.selection = np.unique(np.asarray(subject_ids, dtype=np.int64))

    # -- panes ------------------------------------------------------------------------------

    def _follow_filters(self, element_method, chosen_from: bool = False, counter: str = "filters_changed"):
        """``element_method(chosen_from)`` as a callback re-run whenever the session's filters change (``counter``:
        the count it follows, `filters_changed` or `faded_changed`)."""
        return pn.bind(lambda changed: element_method(chosen_from), self.param[counter])

    def _brush_map(self, plot: str) -> hv.DynamicMap:
        return hv.DynamicMap(lambda brushed: self.brush(plot), streams=[hv.streams.Params(self, ["brushed"])])

    def density_plot(self, plot: str, points_method, title: str, xlabel: str, ylabel: str, counted: str):
        """A density plot of ``points_method``'s points: the selected subjects' in colour over the rest's in grey,
        and the brushed region; box-selecting in it selects the subjects behind the points."""
        # Imported here: datashader takes a second to import, and the page should paint
        # before anyone opens the Agreement tab.
        from .density import density

        def layer(chosen_from):
            # Every pixel widened by one on each side, so a few thousand points stay visible;
            # the same for both layers (the selected points stand out by colour, not size),
            # taking the largest count around, so the colour bar still counts marks.
            counter = "faded_changed" if chosen_from else "filters_changed"
            return density(hv.DynamicMap(self._follow_filters(
                lambda chosen: self._layer_points(points_method, chosen), chosen_from, counter)))

        # Its extent never moves the axes: they frame the selected (or, before a selection, all) points.
        rest = layer(True).opts(cmap=[UNSELECTED_PIXELS], colorbar=False, tools=[], apply_ranges=False)
        selected = layer(False).opts(
            # A log scale with whole-number ticks: counts run from one mark to thousands. Its
            # lower limit under 1, so a pixel holding one mark takes a colour of its own.
            colorbar=True, cnorm="log", clim=(0.5, np.nan), clabel=counted,
            tools=["box_select", "hover"], hooks=[_readable_counts],
            hover_tooltips=[(xlabel, "$x{0.00}"), (ylabel, "$y{0.00}"), (counted, "@image{0,0}")],
        ).apply.opts(cmap=self.param.cmap.rx.pipe(_visible_on_black))
        brush = self._brush_map(plot).opts({"Rectangles": dict(fill_alpha=0, line_color=BRUSH, line_width=2,
                                                                      line_dash="dashed")})
        overlay = (rest * selected * brush).opts(
            title=title, xlabel=xlabel, ylabel=ylabel, bgcolor="black",
            padding=PADDING,  # points on the data's edge stay whole
            # Brushing is what these plots are for: the box select is the active drag tool.
            active_tools=["box_select", "wheel_zoom"],
            # The sky as seen from inside the celestial sphere: east (RA increasing) to the left.
            invert_xaxis=plot == "sky",
            frame_width=self.plot_size, frame_height=int(self.plot_size * 0.75))
        bounds = hv.streams.BoundsXY(source=selected)
        select = getattr(self, f"select_{plot}")
        bounds.param.watch(lambda event: event.new is not None and select(event.new), "bounds")
        return overlay

    def _layer_points(self, points_method, chosen_from: bool) -> hv.Points | hv.Image:
        """A density plot's layer: ``points_method``'s points of the selected subjects, or (``chosen_from``) of the
        rest of the subjects the filters keep, none without a selection (nothing is left out: no grey layer)."""
        points = points_method(chosen_from)
        return points if not chosen_from or self.data_store.selection is not None else points.iloc[:0]

    def density_plots(self) -> dict:
        """The density plots the tab draws, by name, each with the method giving its points: the IoU plot only for
        marks with a size and IoU (not points), the sky map only for subjects with RA/Dec."""
        plots = {} if self.marks_are_points() else {"iou_size": self.iou_size_points}
        plots["offsets"] = self.offset_points
        if self.has_sky():
            plots["sky"] = self.sky_points
        return plots

    def warm_up(self) -> None:
        """Draw each density plot's layers once off screen, as the tab draws them: what numba compiles for them
        (datashader's kernels for these points' glyph, count and dtypes) is then compiled in this process, and
        the first session to open the tab does not wait for the compiler (`dashboard.warm_up`)."""
        from .density import density

        for points_method in self.density_plots().values():
            for chosen_from in (False, True):
                density(self._layer_points(points_method, chosen_from), dynamic=False)

    @classmethod
    def preparing_note(cls) -> str:
        if warming_up():
            return ("The server has just started and is still preparing these plots (once per start): this "
                    "first look takes a few seconds more.")
        return ""

    def histogram_plot(self, plot: str, histogram_method, title: str):
        """A histogram of ``histogram_method``: the selected subjects' bars over the rest's, and the brushed range."""
        bars = dict(line_color="white", framewise=True,
                    # The plot redraws with the selected subjects only: Bokeh's own fading of the
                    # bars outside the box would then fade bars of the new data.
                    nonselection_alpha=1.0)
        rest = hv.DynamicMap(self._follow_filters(histogram_method, True)).opts(fill_color=UNSELECTED_BARS, **bars)
        selected = hv.DynamicMap(self._follow_filters(histogram_method)).opts(
            fill_color=BARS, tools=["xbox_select", "hover"], hooks=[_whole_number_ticks], **bars)
        brush = self._brush_map(plot).opts({"VSpan": dict(color=BRUSH, alpha=0.15, line_color=BRUSH, line_width=2,
                                                                 line_dash="dashed")})
        overlay = (rest * selected * brush).opts(
            title=title, active_tools=["xbox_select"], framewise=True,
            frame_width=self.plot_size, frame_height=int(self.plot_size * 0.75))
        bounds = hv.streams.BoundsX(source=selected)
        select = getattr(self, f"select_{plot}")
        bounds.param.watch(lambda event: event.new is not None and select(event.new), "boundsx")
        return overlay

    def marks_are_points(self) -> bool:
        """Whether the project's marks that support a consensus mark are all points (no size, no IoU): a point
        project (Penguin Watch), whose IoU plot could never show anything. Worked out once per view."""
        if self._points is None:
            project = self.data_store.project
            plotted = getattr(project, "plotted", None)
            if plotted is not None:
                whole = plotted.view(plotted.subject_mask(), None, shape=DENSITY_SHAPE)
                n_matched, n_sized = whole.n_matched, whole.n_sized
            else:
                _, n_matched, n_sized = _mark_counts(project.marks)
            self._points = bool(n_matched > 0 and n_sized == 0)
        return self._points

    def __panel__(self):
        def pane(plot, element):
            return pn.Column(self._reason_pane(plot), pn.pane.HoloViews(element, linked_axes=False))

        # A point project's plots name points, and its IoU plot is only the line saying why there is none: an
        # empty black frame beside its reason read as a broken plot.
        points = self.marks_are_points()
        consensus_mark = "consensus point" if points else "consensus box"
        densities = self.density_plots()
        panes = {
            "iou_size": self._reason_pane("iou_size") if "iou_size" not in densities else
            pane("iou_size", self.density_plot("iou_size", self.iou_size_points,
                                               "IoU with the consensus box against box size",
                                               "box size (px, square root of the area)", "IoU", "marks")),
            "offsets": pane("offsets", self.density_plot(
                "offsets", self.offset_points, f"Mark {'' if points else 'centre '}offset from its {consensus_mark}",
                "dx (px)", "dy (px, down)", "marks")),
            "votes": pane("votes", self.histogram_plot("votes", self.votes_histogram, f"Votes per {consensus_mark}")),
            "volunteers": pane("volunteers", self.histogram_plot("volunteers", self.volunteers_histogram,
                                                                 "Volunteers per subject")),
        }
        # Boxes: a density plot then a histogram, twice; two density plots side by side (about 525 px each with
        # their colour bars) overflow a 1,366 px window's main area, which left the first alone on its row. Points:
        # the offsets beside the narrow note that stands for the IoU plot.
        order = ("iou_size", "offsets", "votes", "volunteers") if points else ("iou_size", "votes", "offsets",
                                                                                "volunteers")
        panes = [panes[plot] for plot in order]
        if "sky" in densities:
            panes.append(pane("sky", self.density_plot("sky", self.sky_points, "Subjects on the sky",
                                                       "RA (deg, increasing to the left)", "Dec (deg)", "subjects")))
        else:
            panes.append(self._reason_pane("sky"))
        controls = pn.Param(self, parameters=["cmap"], show_name=False, default_layout=pn.Row)
        clear = pn.widgets.Button(label="Clear selection", width=150, align="end")
        clear.on_click(lambda event: self.data_store.clear_selection())
        return pn.Column(pn.Row(controls, clear, self._selection_status), pn.FlexBox(*panes))

    @param.depends("data_store.selection")
    def _selection_status(self) -> pn.pane.Markdown:
        if self.data_store.selection is None:
            text = ("Box-select in any plot to keep only the subjects behind the selected points, "
                    "in the subject browser and in every plot.")
        else:
            text = (f"**Selection: {len(self.data_store.selection):,} subjects.** Another box refines it; "
                    "*Clear selection* shows everything again.")
        return pn.pane.Markdown(text, align="end", sizing_mode="stretch_width")


class _CountedVotes:
    """The consensus boxes with a vote count, by their subject's row in a store's plotted columns (the boxes of
    subjects not in the store in a last row of their own, never shown by a filter), and every box's counts."""

    def __init__(self, boxes: pd.DataFrame, plotted):
        votes = boxes.n_votes.to_numpy(dtype=float)
        counted = ~np.isnan(votes)
        rows = plotted.rows_of(boxes.subject_id.to_numpy(dtype=np.int64)[counted])
        n_rows = len(plotted.subject_ids) + 1
        rows[rows < 0] = n_rows - 1
        order = np.argsort(rows, kind="stable")
        # 32 bits (votes fit): 24 MB at 6 million boxes, held by the server.
        self.votes = votes[counted][order].astype(np.int32)
        self.starts = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n_rows))])
        self.low, self.every = _counts_from(self.votes)

    def counts(self, mask: np.ndarray | None) -> tuple[int, np.ndarray]:
        """The smallest number of votes and the counts from it of the boxes of the subjects ``mask`` keeps (a mask
        over the store's subjects; None: every box): counted from the shown subjects' boxes, or every box's counts
        minus those of the subjects left out, whichever are fewer boxes."""
        if mask is None:
            return self.low, self.every
        shown = np.append(mask, False)  # the last row: boxes of subjects not in the store
        sizes = np.diff(self.starts)
        n_shown = int(sizes[shown].sum())
        if n_shown <= len(self.votes) - n_shown:
            return _counts_from(self.votes[_runs(self.starts, np.flatnonzero(shown))])
        left_out = np.bincount(self.votes[_runs(self.starts, np.flatnonzero(~shown))] - self.low,
                               minlength=len(self.every))
        return self.low, self.every - left_out


def _runs(starts: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Positions of the runs ``starts[row]:starts[row + 1]`` of each of ``rows``, in order."""
    begins, sizes = starts[rows], starts[rows + 1] - starts[rows]
    ends = np.cumsum(sizes)
    return np.arange(ends[-1] if len(ends) else 0) + np.repeat(begins - (ends - sizes), sizes)


def _counted_votes(boxes: pd.DataFrame, plotted) -> _CountedVotes:
    """``boxes``' `_CountedVotes` in a store's plotted columns, made once per table and shared by the sessions."""
    def made():
        return weakref.ref(boxes), _CountedVotes(boxes, plotted)

    reference, counted = _COUNTED_VOTES.get(id(boxes), made)
    if reference() is not boxes:  # the id of a table since freed: made again, not kept
        counted = made()[1]
    return counted


def _counts_from(values: np.ndarray) -> tuple[int, np.ndarray]:
    """The smallest of the whole numbers ``values`` and how many there are of each number from it to the largest
    (counted by `np.bincount`: `np.histogram` sorts the values against bin edges given as an array, 1.5 s for the
    votes of 6 million boxes); (0, no counts) for no values."""
    if not len(values):
        return 0, np.zeros(0, dtype=np.int64)
    low = int(values.min())
    return low, np.bincount(np.asarray(values, dtype=np.int64) - low)


def _counts_from_at_least(low: int, counts: np.ndarray, least) -> tuple[int, np.ndarray]:
    """Counts from ``low`` (`_counts_from`) of the numbers of at least ``least`` only, from the smallest to the largest
    number counted."""
    numbers = np.flatnonzero(counts)
    numbers = numbers[numbers + low >= least]
    if not len(numbers):
        return 0, np.zeros(0, dtype=np.int64)
    return low + int(numbers[0]), counts[numbers[0]:numbers[-1] + 1]


def _image(grid: dict, plot: str) -> hv.Image:
    """A density grid (counts, x and y range) as an image, its empty pixels blank as rasterized points leave them."""
    counts = grid["counts"].astype(float)
    counts[counts == 0] = np.nan
    (x0, x1), (y0, y1), (rows, columns) = grid["x_range"], grid["y_range"], counts.shape
    xs = x0 + (np.arange(columns) + 0.5) * (x1 - x0) / columns
    ys = y0 + (np.arange(rows) + 0.5) * (y1 - y0) / rows
    return hv.Image((xs, ys, counts), kdims=list(DENSITY_PLOTS[plot]), vdims=["count"], bounds=(x0, y0, x1, y1))


def _points(marks, kdims: list[str], every_mark) -> hv.Points:
    """Marks as points of ``kdims`` (with their subject), framed by the ranges of the project's matched marks
    ``every_mark`` (`_whole_ranges`) whatever the filters: what the plot showed first stays in place, as a
    store-backed project's grids do (`PlottedMarks.whole_ranges`); for a store's Dask marks, rasterizing would
    otherwise also read every mark once for each axis before aggregating them."""
    if is_dask(marks):
        # A hard range: spares the pass over the marks that finding their own extent takes.
        dimensions = [hv.Dimension(name, range=span) if span is not None else name
                      for name, span in zip(kdims, _whole_ranges(every_mark, kdims))]
    else:
        # A soft range takes the place of the data's padded extent: padded here, so marks on the edge stay whole.
        dimensions = [hv.Dimension(name, soft_range=(low - PADDING * (high - low), high + PADDING * (high - low)))
                      if (low, high) != (None, None) else name
                      for name, (low, high) in zip(kdims, (span or (None, None) for span in
                                                           _whole_ranges(every_mark, kdims)))]
    return hv.Points(marks, kdims=dimensions, vdims=["subject_id"])


def _whole_ranges(marks, kdims: list[str]) -> list[tuple[float, float] | None]:
    """The range (`axis_range`) of each of ``kdims`` over the matched marks of a project's ``marks`` (None: no
    values): one pass, once per table (a Dask table's in one computation), shared by the sessions."""
    def made():
        matched = marks[marks.consensus_id >= 0]
        ends = [getattr(matched[name], end)() for name in kdims for end in ("min", "max")]
        if is_dask(marks):
            import dask

            ends = dask.compute(*ends)
        bounds = np.asarray(ends, dtype=float).reshape(len(kdims), 2)
        return weakref.ref(marks), [axis_range(*ends) if np.isfinite(ends).all() else None for ends in bounds]

    reference, ranges = _WHOLE_RANGES.get((id(marks), tuple(kdims)), made)
    if reference() is not marks:  # the id of a table since freed: worked out again, not kept
        ranges = made()[1]
    return ranges


def _mark_counts(marks) -> tuple[int, int, int]:
    """Marks, those supporting a consensus box, and those of them with a size and IoU: in one pass over a
    store-backed project's Dask marks (`project.stored`), or counted in memory."""
    import dask

    matched = marks[marks.consensus_id >= 0]
    counts = (marks.shape[0], matched.shape[0], (matched["size"].notnull() & matched.iou.notnull()).sum())
    return tuple(int(count) for count in dask.compute(*counts))


def _integer_histogram(values: np.ndarray, name: str, counted: str) -> hv.Histogram:
    """A histogram with one bin per integer value, from the smallest value to the largest."""
    return _histogram_of_counts(*_counts_from(values), name, counted)


def _histogram_of_counts(low: int, counts: np.ndarray, name: str, counted: str) -> hv.Histogram:
    """A histogram with one bin per integer from ``low``, of ``counts`` (`_counts_from`; none: two empty bins at 0
    and 1)."""
    if not len(counts):
        low, counts = 0, np.zeros(2, dtype=np.int64)
    edges = np.arange(low - 0.5, low + len(counts) + 0.5)
    return hv.Histogram((edges, counts), kdims=[name], vdims=[counted])


def _visible_on_black(cmap: str) -> list[str]:
    """Colour map ``cmap`` without its darkest end (`DARK_END`), for a plot on black."""
    colours = hv.plotting.util.process_cmap(cmap, 256)
    if _luminance(colours[0]) < _luminance(colours[-1]):
        return colours[int(DARK_END * len(colours)):]
    return colours[:len(colours) - int(DARK_END * len(colours))]


def _luminance(colour: str) -> float:
    red, green, blue = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def _readable_counts(plot, element) -> None:
    """A density plot's colour bar with whole-number ticks (1, 2, 5, 10, 20 …), and hover only on pixels with data."""
    colorbar = plot.handles.get("colorbar")
    if colorbar is not None:
        colorbar.ticker = LogTicker(mantissas=[1, 2, 5], min_interval=1)
        colorbar.formatter = NumeralTickFormatter(format="0,0")
    hover = plot.handles.get("hover")
    if hover is not None:
        hover.filters = {"@image": CustomJS(code=HOVER_ONLY_ON_DATA)}


def _whole_number_ticks(plot, element) -> None:
    """Axis ticks on whole numbers only: both axes of these histograms count things."""
    for axis in (*plot.state.xaxis, *plot.state.yaxis):
        axis.ticker.min_interval = 1
