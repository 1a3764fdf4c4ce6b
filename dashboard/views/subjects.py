"""The subject browser: every subject passing the filters, in the session's order, in a paginated table."""

from __future__ import annotations

import json
import math

import numpy as np
import panel as pn
import param
from bokeh.models.widgets.tables import HTMLTemplateFormatter, NumberFormatter

from ..subject_marks import consensus_kinds
from .base import COMPACT_HEADER, ReadOnlyTable, View

#: Statistics columns shown, in order, with their headers: short, so that every column is in view beside the
#: cutout in a laptop's 1,366 px window (the table has 360 px there); `TOOLTIPS` says each in full. The disagreement
#: (the default order) comes right after the subject. The volunteers' mark count (`HIDDEN_FIRST`) shows only where
#: the table has room for it: it is in the cutout's caption and the gallery too.
COLUMNS = {
    "subject_id": "Subject",
    "disagreement": "Disagr.",
    "review_status": "Review",
    "n_volunteers": "Vol.",
    "n_marks": "Marks",
    "n_consensus": "Boxes",
    "mean_iou": "IoU",
}
#: What each header means, shown when the pointer rests on it.
TOOLTIPS = {
    "subject_id": "Zooniverse subject id",
    "disagreement": "Disagreement: 1 - the volunteers' mean agreement with the consensus (0 = all agree)",
    "review_status": "Review status: – unreviewed, ✓ accepted, ✗ rejected (every box), ⚑ flagged, "
                     "✎ edited (a box redrawn or added), ± mixed (other decisions)",
    "n_volunteers": "Volunteers who saw the subject (those who drew nothing too)",
    "n_marks": "Marks the volunteers drew",
    "n_consensus": "Consensus marks",
    "mean_iou": "Mean IoU of the volunteers' boxes with the consensus box they support",
    "mean_distance": "Mean distance in pixels of the volunteers' points to the consensus point they support",
}
#: The review status as one sign (the word shows when the pointer rests on the cell), as the cutout marks a decided
#: box (`cutout` draws ✓ and ✗ on it): a column of words ("unreviewed") took a quarter of the table's width.
STATUS_SIGNS = {"unreviewed": "–", "accepted": "✓", "rejected": "✗", "flagged": "⚑", "edited": "✎", "mixed": "±"}
#: A status cell: its sign, read out by screen readers as the status's word (sighted users get it on hover). The
#: value is one of `STATUS_SIGNS`' words, made by zoolens, never text from an export.
STATUS_CELL = ('<span role="img" aria-label="<%= value %>"><%= (' + json.dumps(STATUS_SIGNS, ensure_ascii=False)
               + ')[value] %></span>')

#: A thumbnail's frame: a neutral grey square, what shows when there is no picture.
PLACEHOLDER_OPEN = ('<span style="display:inline-block;width:40px;height:40px;background:#e3e3e3;'
                    'vertical-align:middle">')
HIDE_IF_BROKEN = """onerror="this.style.visibility='hidden'"></span>"""
#: Column widths in pixels, each as wide as its title (12 px, bold) or its values in 13 px type (the subject's,
#: `subject_width`, as its project's longest id): the table fits the 360 px it has beside the cutout in a 1,366 px
#: window with subject ids of 9 digits.
WIDTHS = {"thumbnail": 44, "n_marks": 50, "n_volunteers": 34, "n_consensus": 48, "mean_iou": 38, "mean_distance": 40,
          "disagreement": 52, "review_status": 54}
#: The column Tabulator hides when the table is narrower than its columns (none other hides).
HIDDEN_FIRST = "n_marks"
#: Titles in 12 px type, cells in 13 px with figures of one width, and a thumbnail's cell padded less than others.
COMPACT_CELLS = (".tabulator .tabulator-header .tabulator-col .tabulator-col-title { font-size: 12px !important; } "
                 ".tabulator-row .tabulator-cell { font-size: 13px; font-variant-numeric: tabular-nums; } "
                 ".tabulator-row .tabulator-cell[tabulator-field=thumbnail] { padding: 2px; }")


def subject_width(subject_ids) -> int:
    """The subject column's width in pixels: its longest id's digits (8.3 px each in 13 px type) and the padding."""
    subject_ids = np.asarray(subject_ids, dtype=np.int64)
    digits = len(str(int(subject_ids.max()))) if len(subject_ids) else 1
    return max(60, math.ceil(8.3 * digits) + 9)


class SubjectBrowser(View):
    """Subjects passing the filters in the session's order (``sort_by``); picking a row shows it in the cutout viewer.

    The table is paginated on the server (only the visible page goes to the
    browser) and sorted there, so it stays fast with 100,000 subjects.
    """

    short_name = "subjects"
    tab = "Subjects"

    page_size = param.Integer(default=7, bounds=(5, 200), doc="Rows per page (few: the table sits under the "
                                                                "review panel, beside the cutout).")

    def __init__(self, **params):
        super().__init__(**params)
        #: The statistics columns this project's table shows, with their headers: a point project counts points
        #: and shows how far its clicks lie from their consensus point (mean, pixels) where boxes show their IoU.
        kinds = consensus_kinds(self.data_store.project)
        self._columns = kinds.columns(
            COLUMNS, sized=("mean_iou",), point_columns={"mean_distance": "Dist."},
            point_titles={"n_consensus": "Points"}, mixed_titles={"n_consensus": "Cons."})
        self._table = ReadOnlyTable(
            self._rows(), pagination="remote", page_size=self.page_size, selectable=1,
            show_index=False, titles={"thumbnail": "", **self._columns},
            # As wide as the column it is in, and no wider (no side margins: the 360 px at 1,366 px are all the
            # table's), so that a wider window gives the mark count back (Tabulator shows a hidden column when the
            # table grows, and the table only grows with its container).
            layout="fit_data_fill", sizing_mode="stretch_width", margin=(5, 0),
            widths={**WIDTHS, "subject_id": subject_width(self.data_store.project.subject_stats.subject_id)},
            header_tooltips={name: TOOLTIPS[name] for name in self._columns},
            # The order is the session's (the sidebar's "Sort subjects by"), which Next, Previous, the keys and the
            # gallery follow: a header click sorted this table alone. No sort arrows, which took 13 px a column.
            sortable=False, stylesheets=[COMPACT_HEADER, COMPACT_CELLS],
            # The word of a review status sign when the pointer rests on it; the mark count hidden where it does not
            # fit, no other column; columns narrower than Tabulator's least (40 px) where their titles and values fit;
            # three page buttons, not five: the pager fits under the table. Columns sized to fit are not resized by
            # hand: each cell's resize grip took a click on a row at the cell's edge, and the row was not picked.
            configuration={"columns": [{"field": "review_status", "tooltip": True},
                                       {"field": HIDDEN_FIRST, "responsive": 1}],
                           "responsiveLayout": "hide",
                           "columnDefaults": {"responsive": 0, "minWidth": 30, "resizable": False},
                           "paginationButtonCount": 3},
            formatters={
                "thumbnail": {"type": "html"},
                "subject_id": NumberFormatter(format="0"),
                "mean_iou": NumberFormatter(format="0.00"),
                "mean_distance": NumberFormatter(format="0.0"),
                "disagreement": NumberFormatter(format="0.00"),
                # A formatter of its own: a Bokeh model joins the session's document, and one shared by every
                # table would keep each closed session's document, and all it holds, alive.
                "review_status": HTMLTemplateFormatter(template=STATUS_CELL),
            },
        )
        self._table.param.watch(self._pick, "selection")
        self.data_store.param.watch(self._refresh, "subjects")
        self.data_store.param.watch(self._patch_statuses, "review_changes")
        self.data_store.param.watch(self._follow, "subject")
        self._follow()
        self.param.watch(self._resize, "page_size")

    def _rows(self):
        subjects = self.data_store.subjects
        columns = list(self._columns)
        if not subjects.thumbnail.astype(bool).any():
            return subjects[columns]
        # The URL comes from a location in the subject export (untrusted), but it was
        # percent-quoted when resolved: no quote, <, > or & can reach the HTML.
        urls = subjects.thumbnail.astype(str)
        # A picture the server already failed to fetch is not asked for again whenever the rows are redrawn.
        urls = urls.mask(urls.isin(self.data_store.project.unavailable_thumbnails()), "")
        # On a neutral grey square: a picture that cannot be fetched (host not reachable) hides itself
        # rather than show the browser's broken-image icon.
        pictures = PLACEHOLDER_OPEN + '<img src="' + urls + '" width="40" height="40" alt="" ' + HIDE_IF_BROKEN
        thumbnails = pictures.where(urls != "", PLACEHOLDER_OPEN + "</span>")
        return subjects[columns].assign(thumbnail=thumbnails)[["thumbnail", *columns]]

    def _refresh(self, event=None):
        self._table.value = self._rows()
        self._follow()

    def _patch_statuses(self, event):
        """New decisions on shown subjects: their Review cells change in place (the page redraws those cells),
        not the table (Tabulator sends and styles a whole page for a new value, in every open session)."""
        changes = event.new
        if changes is None or not len(changes):
            return
        rows = changes.row.to_numpy()
        shown = self._table.value.review_status.to_numpy()[rows]
        differ = changes.review_status.to_numpy() != shown
        if differ.any():
            self._table.patch({"review_status": list(zip(rows[differ].tolist(),
                                                         changes.review_status[differ].tolist()))}, as_index=False)

    def _follow(self, event=None):
        """Highlight the current subject's row, on its page, whoever picked it (keys, gallery, plots)."""
        rows = (self.data_store.subjects.subject_id == self.data_store.subject).to_numpy().nonzero()[0]
        selection = [int(rows[0])] if len(rows) else []
        if selection != self._table.selection:
            self._table.selection = selection
        if selection:
            self._table.page = selection[0] // self._table.page_size + 1

    def _resize(self, event):
        self._table.page_size = event.new

    def _pick(self, event):
        picked = self._table.selected_dataframe
        if len(picked):
            self.data_store.subject = int(picked.subject_id.iloc[0])

    @property
    def table(self) -> pn.widgets.Tabulator:
        """The Tabulator widget (for tests and notebook users)."""
        return self._table

    def __panel__(self):
        return pn.Column(self._table)
