"""Agreement plots: how volunteers' boxes relate to the consensus, at full volume.

Point clouds are rasterized by datashader on the server (HoloViews ``rasterize``):
the browser gets an aggregated array, colour-mapped on the client, so the plots stay
fast with millions of marks, and zooming re-aggregates. Box-selecting in any plot
sets the session's plot selection (the subjects behind the selected points), which
filters the subject browser and every other plot; a later box refines it, and the
"Clear selection" button (here and in the sidebar) drops it.

The linking goes through per-session bounds streams and the data store rather than
``hv.link_selections``: the plots show different tables (marks, consensus boxes,
subjects), which only index-based linking (``index_cols=["subject_id"]``) can join,
and HoloViews 1.23 fails on index-based selections of rasterized plots
(holoviz/holoviews#5596, #5118).
"""

from __future__ import annotations

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import param

from .base import View


class AgreementPlots(View):
    """IoU against box size, centre offsets, votes per consensus box, volunteers per subject, sky map."""

    short_name = "agreement"
    tab = "Agreement"

    cmap = param.Selector(default="fire", objects=["fire", "kbc", "viridis", "inferno", "blues"],
                          doc="Colour map of the density plots.")
    plot_size = param.Integer(default=320, bounds=(200, 1200), doc="Width of each plot in screen pixels.")

    # -- data of each plot (plain methods: tests and notebooks call them) --------------------

    def _matched_marks(self) -> pd.DataFrame:
        marks = self.data_store.filtered_marks()
        return marks[marks.consensus_id >= 0]

    def iou_size_points(self) -> hv.Points:
        """One point per mark that supports a consensus box: box size (px) against IoU."""
        marks = self._matched_marks()
        return hv.Points(marks[["size", "iou", "subject_id"]], kdims=["size", "iou"], vdims=["subject_id"])

    def offset_points(self) -> hv.Points:
        """Mark centre minus its consensus box centre, in pixels (y down)."""
        marks = self._matched_marks()
        return hv.Points(marks[["dx", "dy", "subject_id"]], kdims=["dx", "dy"], vdims=["subject_id"])

    def votes_histogram(self) -> hv.Histogram:
        """How many consensus boxes got how many votes."""
        votes = self.data_store.filtered_consensus().n_votes.dropna().to_numpy(dtype=np.int64)
        return _integer_histogram(votes, "votes", "consensus boxes")

    def volunteers_histogram(self) -> hv.Histogram:
        """How many subjects were seen by how many volunteers (those who drew nothing included)."""
        return _integer_histogram(self.data_store.subjects.n_volunteers.to_numpy(), "volunteers", "subjects")

    def has_sky(self) -> bool:
        return {"ra", "dec"} <= set(self.data_store.project.metadata_columns)

    def sky_points(self) -> hv.Points:
        """Subjects at their RA/Dec (degrees)."""
        subjects = self.data_store.subjects
        return hv.Points(subjects[["ra", "dec", "subject_id"]], kdims=["ra", "dec"], vdims=["subject_id"])

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
            marks = self.data_store.filtered_marks()
            if not len(marks):
                return "No marks in this selection."
            matched = marks[marks.consensus_id >= 0]
            if not len(matched):
                return "No mark in this selection supports a consensus mark."
            if plot == "iou_size" and not (matched["size"].notna() & matched.iou.notna()).any():
                return "These marks are points: they have no size or IoU (the offsets plot shows how far they lie)."
        elif plot == "votes":
            if not len(self.data_store.project.consensus):
                return no_consensus
            if not len(self.data_store.filtered_consensus().n_votes.dropna()):
                return "No consensus marks with a vote count in this selection (or above the minimum votes)."
        elif plot == "sky" and not self.has_sky():
            return "No RA/Dec in the subject metadata: the sky map needs ra and dec columns."
        return None

    def _reason_pane(self, plot: str):
        """A line saying why ``plot`` is empty, following the filters (nothing when it is not)."""
        store = self.data_store.param

        def reason(subjects, tool, min_votes):
            text = self.empty_reason(plot)
            return pn.pane.Alert(text, alert_type="secondary", width=self.plot_size) if text else None

        return pn.panel(pn.bind(reason, store.subjects, store.tool, store.min_votes))

    # -- selections: the subjects behind a box-selected region --------------------------------

    def select_iou_size(self, bounds) -> None:
        self._select_points(self.iou_size_points(), bounds)

    def select_offsets(self, bounds) -> None:
        self._select_points(self.offset_points(), bounds)

    def select_sky(self, bounds) -> None:
        self._select_points(self.sky_points(), bounds)

    def select_votes(self, boundsx) -> None:
        low, high = boundsx
        boxes = self.data_store.filtered_consensus()
        self._select(boxes.subject_id[boxes.n_votes.between(low, high).fillna(False).to_numpy(dtype=bool)])

    def select_volunteers(self, boundsx) -> None:
        low, high = boundsx
        subjects = self.data_store.subjects
        self._select(subjects.subject_id[subjects.n_volunteers.between(low, high)])

    def _select_points(self, points: hv.Points, bounds) -> None:
        x0, y0, x1, y1 = bounds
        table = points.data
        x, y = points.kdims[0].name, points.kdims[1].name
        inside = table[x].between(min(x0, x1), max(x0, x1)) & table[y].between(min(y0, y1), max(y0, y1))
        self._select(table.subject_id[inside])

    def _select(self, subject_ids) -> None:
        self.data_store.selection = np.unique(np.asarray(subject_ids, dtype=np.int64))

    # -- panes ------------------------------------------------------------------------------

    def _follow_filters(self, element_method):
        """``element_method`` as a callback re-run whenever the session's filters change."""
        store = self.data_store.param
        return pn.bind(lambda subjects, tool, min_votes: element_method(), store.subjects, store.tool,
                       store.min_votes)

    def _density(self, points_method, select, title, xlabel, ylabel):
        # Imported here: datashader takes seconds to import, and the page should paint
        # before anyone opens the Agreement tab.
        from holoviews.operation.datashader import dynspread, rasterize

        # dynspread widens isolated pixels a little, so a few thousand points stay
        # visible; dense regions are left as they are.
        raster = dynspread(rasterize(hv.DynamicMap(self._follow_filters(points_method))),
                           threshold=0.5, max_px=3).opts(
            # On black: with eq_hist, where every pixel holds the same count (the sky map's
            # one subject per pixel) all take the top colour, white in most maps.
            title=title, xlabel=xlabel, ylabel=ylabel, colorbar=True, cnorm="eq_hist", bgcolor="black",
            padding=0.03,  # points on the data's edge stay whole
            # Brushing is what these plots are for: the box select is the active drag tool.
            tools=["box_select", "hover"], active_tools=["box_select", "wheel_zoom"],
            frame_width=self.plot_size, frame_height=int(self.plot_size * 0.75),
        ).apply.opts(cmap=self.param.cmap)
        bounds = hv.streams.BoundsXY(source=raster)
        bounds.param.watch(lambda event: event.new is not None and select(event.new), "bounds")
        return pn.pane.HoloViews(raster, linked_axes=False)

    def _histogram(self, histogram_method, select, title):
        histogram = hv.DynamicMap(self._follow_filters(histogram_method)).opts(
            title=title, tools=["xbox_select", "hover"], active_tools=["xbox_select"], framewise=True,
            frame_width=self.plot_size, frame_height=int(self.plot_size * 0.75), fill_color="#4c72b0",
            line_color="white",
            # The plot redraws with the selected subjects only: Bokeh's own fading of the
            # bars outside the box would then fade bars of the new data.
            nonselection_alpha=1.0)
        bounds = hv.streams.BoundsX(source=histogram)
        bounds.param.watch(lambda event: event.new is not None and select(event.new), "boundsx")
        return pn.pane.HoloViews(histogram, linked_axes=False)

    def __panel__(self):
        panes = [
            pn.Column(self._reason_pane("iou_size"), self._density(
                self.iou_size_points, self.select_iou_size, "IoU with the consensus box against box size",
                "box size (px, square root of the area)", "IoU")),
            pn.Column(self._reason_pane("offsets"), self._density(
                self.offset_points, self.select_offsets, "Mark centre offset from its consensus box",
                "dx (px)", "dy (px, down)")),
            pn.Column(self._reason_pane("votes"), self._histogram(
                self.votes_histogram, self.select_votes, "Votes per consensus box")),
            pn.Column(self._reason_pane("volunteers"), self._histogram(
                self.volunteers_histogram, self.select_volunteers, "Volunteers per subject")),
        ]
        if self.has_sky():
            panes.append(pn.Column(self._reason_pane("sky"), self._density(
                self.sky_points, self.select_sky, "Subjects on the sky", "RA (deg)", "Dec (deg)")))
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


def _integer_histogram(values: np.ndarray, name: str, counted: str) -> hv.Histogram:
    """A histogram with one bin per integer value, from the smallest value to the largest."""
    low, top = (int(values.min()), int(values.max())) if len(values) else (0, 1)
    edges = np.arange(low - 0.5, top + 1.5)
    counts, _ = np.histogram(values, bins=edges)
    return hv.Histogram((edges, counts), kdims=[name], vdims=[counted])
