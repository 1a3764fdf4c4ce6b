"""The volunteers: per-volunteer statistics, their activity over time, and one volunteer's marks.

Picking a volunteer also highlights their marks on the cutout (`volunteer_steps`), with
buttons stepping through the subjects they classified.
"""

from __future__ import annotations

import html

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import param
from bokeh.models.widgets.tables import NumberFormatter

from project.stored import computed, no_rows

from ..data_store import ANY
from ..subject_marks import consensus_kinds
from .base import CHOSEN_STANDS_OUT, COMPACT_HEADER, View
from .volunteer_steps import VolunteerSteps

#: Per-volunteer columns shown, with their headers.
COLUMNS = {
    "user": "Volunteer",
    "n_classifications": "Classifications",
    "n_subjects": "Subjects",
    "n_marks": "Marks",
    "marks_per_classification": "Marks per classification",
    "empty_share": "Drew nothing",
    "precision": "Precision",
    "recall": "Recall",
    "mean_iou": "Mean IoU",
    "n_double_marks": "Double marks",
    "logged_in": "Logged in",
}

#: Columns of the selected volunteer's marks.
MARK_COLUMNS = {
    "subject_id": "Subject",
    "created_at": "Time",
    "x": "x", "y": "y", "width": "Width", "height": "Height",
    "consensus_id": "Consensus box",
    "iou": "IoU",
}


class VolunteerTable(View):
    """Per-volunteer statistics; picking a volunteer lists their marks and highlights them on the cutout,
    picking a mark shows its subject.

    Both tables count the subjects passing the session's filters and plot selection only.
    """

    short_name = "volunteers"
    tab = "Volunteers"

    page_size = param.Integer(default=15, bounds=(5, 200), doc="Rows per page of each table.")
    period = param.Selector(default="day", objects=["day", "week"],
                            doc="Count classifications per day or per week (weeks start on Monday, UTC).")

    def __init__(self, **params):
        super().__init__(**params)
        kinds = consensus_kinds(self.data_store.project)
        #: Both tables' columns in the words of the project's consensus: points have a distance to their
        #: consensus point (pixels) where boxes have an IoU.
        self._columns = kinds.columns(COLUMNS, sized=("mean_iou",),
                                      point_columns={"mean_distance": "Mean distance (px)"})
        self._mark_columns = kinds.columns(MARK_COLUMNS, sized=("width", "height", "iou"),
                                           point_columns={"distance": "Distance (px)"},
                                           point_titles={"consensus_id": "Consensus point"},
                                           mixed_titles={"consensus_id": "Consensus mark"})
        ratio = NumberFormatter(format="0.00")
        self._volunteers = pn.widgets.Tabulator(
            self.volunteer_stats(), pagination="remote",
            page_size=self.page_size, selectable=1, disabled=True, show_index=False, titles=self._columns,
            # Each column as wide as its title or values (squeezed to the window, "Subjects" showed as "Subj..."), long
            # titles wrapping onto a second line; where they are wider than the window the table scrolls sideways,
            # the volunteer's name staying in view.
            layout="fit_data_table", widths={"user": 170, "marks_per_classification": 118}, frozen_columns=["user"],
            configuration={"columnDefaults": {"headerWordWrap": True}}, stylesheets=[COMPACT_HEADER],
            formatters={column: ratio for column in ("marks_per_classification", "empty_share", "precision",
                                                     "recall", "mean_iou")}
            | {"mean_distance": NumberFormatter(format="0.0")},
            sizing_mode="stretch_width",
        )
        self._marks = pn.widgets.Tabulator(
            self.volunteer_marks(), pagination="remote", page_size=self.page_size, selectable=1,
            disabled=True, show_index=False, titles=self._mark_columns, sizing_mode="stretch_width",
            formatters={column: NumberFormatter(format="0.0")
                        for column in ("x", "y", "width", "height", "distance")}
            | {"iou": ratio, "subject_id": NumberFormatter(format="0")},
        )
        self._volunteers.param.watch(self._pick_volunteer, "selection")
        self._marks.param.watch(self._pick_mark, "selection")
        self.data_store.param.watch(self._refresh_marks, ["volunteer", "tool", "subjects"])
        self.data_store.param.watch(self._refresh_volunteers, "subjects")

    def _filtered_subject_ids(self):
        """The subject ids passing the filters and selection, or None when that is every subject."""
        subjects = self.data_store.subjects
        return None if len(subjects) == len(self.data_store.project.subject_stats) else subjects.subject_id.to_numpy()

    def volunteer_stats(self) -> pd.DataFrame:
        """Per-volunteer statistics over the subjects passing the filters and the plot selection."""
        subject_ids = self._filtered_subject_ids()
        project = self.data_store.project
        stats = project.volunteer_stats if subject_ids is None else project.volunteer_stats_of(subject_ids)
        return stats[list(self._columns)]

    def volunteer_marks(self) -> pd.DataFrame:
        """The marks of the session's current volunteer on the filtered subjects, newest first."""
        volunteer = self.data_store.volunteer
        marks = self.data_store.project.marks
        if volunteer is None:
            return _with_distance(no_rows(marks))[list(self._mark_columns)]
        # One volunteer's marks, a few thousand: from a store-backed project's Dask marks too.
        mine = _with_distance(computed(marks[marks.user == volunteer]))
        subject_ids = self._filtered_subject_ids()
        if subject_ids is not None:
            mine = mine[mine.subject_id.isin(subject_ids)]
        if self.data_store.tool != ANY:
            mine = mine[mine.tool_label == self.data_store.tool]
        return mine.sort_values(["created_at", "mark_id"], ascending=[False, True])[list(self._mark_columns)]

    def activity(self, volunteer: str | None = None) -> pd.DataFrame:
        """Classifications per `period` over the project's whole span, UTC.

        Parameters
        ----------
        volunteer : str, optional
            Count only this volunteer's classifications; default everyone's.

        Returns
        -------
        DataFrame
            ``start`` (first instant of each period, every period from the first to the
            last classification of the project, so volunteers' series line up) and
            ``n_classifications``.
        """
        created = self.data_store.project.classifications.created_at.dropna()
        if created.empty:
            return pd.DataFrame({"start": pd.Series(dtype="datetime64[ns, UTC]"), "n_classifications": []})
        starts = _period_starts(created, self.period)
        span = pd.date_range(starts.min(), starts.max(), freq="D" if self.period == "day" else "7D")
        if volunteer is not None:
            starts = starts[(self.data_store.project.classifications.user[created.index] == volunteer).to_numpy()]
        counts = starts.value_counts().reindex(span, fill_value=0)
        return pd.DataFrame({"start": span, "n_classifications": counts.to_numpy(dtype=np.int64)})

    @param.depends("data_store.volunteer", "period")
    def activity_plot(self) -> hv.Overlay:
        """Everyone's classifications per period (grey), the picked volunteer's in front (blue)."""
        step = pd.Timedelta(days=1 if self.period == "day" else 7)
        layers = [_activity_histogram(self.activity(), step, "everyone").opts(fill_color="#c8c8c8")]
        volunteer = self.data_store.volunteer
        if volunteer is not None:
            mine = _activity_histogram(self.activity(volunteer), step, "volunteer")
            layers.append(mine.opts(fill_color="#1f5f8b"))
        # The title is set as plot text, which Bokeh renders as text (never as HTML).
        title = (f"Classifications per {self.period}: everyone (grey)"
                 + (f", {volunteer} (blue)" if volunteer is not None else ""))
        return hv.Overlay(layers).opts({
            "Histogram": dict(line_color="white", line_width=0.5, tools=["hover"], height=220, responsive=True,
                              xlabel="", ylabel=f"classifications per {self.period}", framewise=True),
            "Overlay": dict(title=title, legend_position="top_left", framewise=True),
        })

    def _pick_volunteer(self, event):
        picked = self._volunteers.selected_dataframe
        if len(picked):
            volunteer = str(picked.user.iloc[0])
            self.data_store.param.update(volunteer=volunteer, highlighted_volunteer=volunteer)

    def _pick_mark(self, event):
        picked = self._marks.selected_dataframe
        if len(picked):
            self.data_store.subject = int(picked.subject_id.iloc[0])

    def _refresh_marks(self, event=None):
        self._marks.value = self.volunteer_marks()

    def _refresh_volunteers(self, event=None):
        self._volunteers.value = self.volunteer_stats()

    @param.depends("data_store.subjects")
    def _scope(self) -> pn.pane.Markdown:
        """What the table counts, and why it is empty when it is."""
        subjects, total = len(self.data_store.subjects), len(self.data_store.project.subject_stats)
        if subjects == 0:
            return pn.pane.Markdown("**No subject passes the filters and plot selection: no volunteers to show.**")
        if subjects == total:
            return pn.pane.Markdown(f"Counting all {total:,} subjects.")
        return pn.pane.Markdown(f"Counting the {subjects:,} of {total:,} subjects passing the filters "
                                "and plot selection.")

    @param.depends("data_store.volunteer")
    def _heading(self):
        volunteer = self.data_store.volunteer
        if volunteer is None:
            return pn.pane.Markdown("Pick a volunteer to list their marks and draw them bold on the image; "
                                   "pick a mark to show its subject.")
        # A volunteer name is untrusted text: escaped here, into an HTML pane. Panel's Str
        # and Markdown panes are no safe home for it: both end in an HTML model that runs
        # <script> tags (Panel 1.9: a volunteer named <script>alert(1)</script> shown
        # with pn.pane.Str ran the script).
        return pn.pane.HTML(f"<h4>Marks by <code>{html.escape(volunteer)}</code></h4>")

    def __panel__(self):
        period = pn.widgets.RadioButtonGroup.from_param(self.param.period, width=140, **CHOSEN_STANDS_OUT)
        activity = pn.pane.HoloViews(hv.DynamicMap(self.activity_plot), sizing_mode="stretch_width",
                                     height=230, linked_axes=False)
        steps = VolunteerSteps(data_store=self.data_store, bring_forward=True)
        return pn.Column(self._scope, self._volunteers, steps,
                         pn.Row(pn.pane.Markdown("**Activity over time**"), period), activity,
                         self._heading, self._marks, sizing_mode="stretch_width")


def _with_distance(marks: pd.DataFrame) -> pd.DataFrame:
    """``marks`` with ``distance``: how far each lies from its consensus mark's centre (pixels; a click from its
    consensus point), from their offsets ``dx``, ``dy``."""
    return marks.assign(distance=np.hypot(marks.dx.to_numpy(dtype=float), marks.dy.to_numpy(dtype=float)))


def _period_starts(times: pd.Series, period: str) -> pd.Series:
    """The first instant (UTC) of the day or the Monday-started week holding each time."""
    days = times.dt.tz_convert("UTC").dt.floor("D")
    if period == "week":
        days = days - pd.to_timedelta(days.dt.day_of_week, unit="D")
    return days


def _activity_histogram(activity: pd.DataFrame, step: pd.Timedelta, label: str) -> hv.Histogram:
    """Counts per period as a histogram whose bins are the periods (naive UTC datetimes for Bokeh)."""
    starts = activity.start.dt.tz_localize(None)
    edges = starts.to_numpy()
    if len(edges):
        edges = np.append(edges, edges[-1] + step.to_timedelta64())
    return hv.Histogram((edges, activity.n_classifications.to_numpy()), label=label,
                        kdims=[hv.Dimension("start", label="time")],
                        vdims=[hv.Dimension("n_classifications", label="classifications")])
