"""The volunteers: per-volunteer statistics, and one volunteer's marks across subjects."""

from __future__ import annotations

import html

import pandas as pd
import panel as pn
import param
from bokeh.models.widgets.tables import NumberFormatter

from ..data_store import ANY
from .base import View

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
    """Per-volunteer statistics; picking a volunteer lists their marks, picking a mark shows its subject."""

    view_type = "volunteers"

    page_size = param.Integer(default=15, bounds=(5, 200), doc="Rows per page of each table.")

    def __init__(self, **params):
        super().__init__(**params)
        ratio = NumberFormatter(format="0.00")
        self._volunteers = pn.widgets.Tabulator(
            self.data_store.project.volunteer_stats[list(COLUMNS)], pagination="remote",
            page_size=self.page_size, selectable=1, disabled=True, show_index=False, titles=COLUMNS,
            formatters={column: ratio for column in ("marks_per_classification", "empty_share", "precision",
                                                     "recall", "mean_iou")},
            sizing_mode="stretch_width",
        )
        self._marks = pn.widgets.Tabulator(
            self.volunteer_marks(), pagination="remote", page_size=self.page_size, selectable=1,
            disabled=True, show_index=False, titles=MARK_COLUMNS, sizing_mode="stretch_width",
            formatters={column: NumberFormatter(format="0.0") for column in ("x", "y", "width", "height")}
            | {"iou": ratio, "subject_id": NumberFormatter(format="0")},
        )
        self._volunteers.param.watch(self._pick_volunteer, "selection")
        self._marks.param.watch(self._pick_mark, "selection")
        self.data_store.param.watch(self._refresh_marks, ["volunteer", "tool"])

    def volunteer_marks(self) -> pd.DataFrame:
        """The marks of the session's current volunteer, newest first."""
        volunteer = self.data_store.volunteer
        marks = self.data_store.project.marks
        if volunteer is None:
            return marks.iloc[0:0][list(MARK_COLUMNS)]
        mine = marks[marks.user == volunteer]
        if self.data_store.tool != ANY:
            mine = mine[mine.tool_label == self.data_store.tool]
        return mine.sort_values(["created_at", "mark_id"], ascending=[False, True])[list(MARK_COLUMNS)]

    def _pick_volunteer(self, event):
        picked = self._volunteers.selected_dataframe
        if len(picked):
            self.data_store.volunteer = str(picked.user.iloc[0])

    def _pick_mark(self, event):
        picked = self._marks.selected_dataframe
        if len(picked):
            self.data_store.subject = int(picked.subject_id.iloc[0])

    def _refresh_marks(self, event=None):
        self._marks.value = self.volunteer_marks()

    @param.depends("data_store.volunteer")
    def _heading(self):
        volunteer = self.data_store.volunteer
        if volunteer is None:
            return pn.pane.Markdown("Pick a volunteer to list their marks; pick a mark to show its subject.")
        # A volunteer name is untrusted text: escaped here, into an HTML pane. Panel's Str
        # and Markdown panes are no safe home for it: both end in an HTML model that runs
        # <script> tags (Panel 1.9: a volunteer named <script>alert(1)</script> shown
        # with pn.pane.Str ran the script).
        return pn.pane.HTML(f"<h4>Marks by <code>{html.escape(volunteer)}</code></h4>")

    def __panel__(self):
        return pn.Column(self._volunteers, self._heading, self._marks, sizing_mode="stretch_width")
