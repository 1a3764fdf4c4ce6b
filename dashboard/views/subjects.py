"""The subject browser: every subject passing the filters, in a sortable, paginated table."""

from __future__ import annotations

import panel as pn
import param
from bokeh.models.widgets.tables import NumberFormatter

from ..subject_marks import consensus_kinds
from .base import COMPACT_HEADER, ReadOnlyTable, View

#: Statistics columns shown, in order, with their headers. The disagreement (the default sort) comes right after
#: the subject, so it stays in view where the table is narrower than its columns (a laptop's
#: 1,366-1,536 px window) and the rest scroll.
COLUMNS = {
    "subject_id": "Subject",
    "disagreement": "Disagreement",
    "review_status": "Review",
    "n_volunteers": "Volunteers",
    "n_marks": "Marks",
    "n_consensus": "Boxes",
    "mean_iou": "IoU",
}

#: A thumbnail's frame: a neutral grey square, what shows when there is no picture.
PLACEHOLDER_OPEN = ('<span style="display:inline-block;width:40px;height:40px;background:#e3e3e3;'
                    'vertical-align:middle">')
HIDE_IF_BROKEN = """onerror="this.style.visibility='hidden'"></span>"""
#: Column widths in pixels (titles and sort arrows fit): the table fits under the review panel beside a
#: 600-pixel cutout in a 1600 px window. Volunteers who drew nothing are in the cutout's caption, not a
#: column, to make that room.
WIDTHS = {"thumbnail": 48, "subject_id": 88, "n_volunteers": 98, "n_marks": 68,
          "n_consensus": 68, "mean_iou": 52, "mean_distance": 76, "disagreement": 122,
          "review_status": 88}
#: Wider columns where a project's consensus holds boxes and points, whose count is headed "Consensus".
MIXED_WIDTHS = {"n_consensus": 96}

class SubjectBrowser(View):
    """Subjects passing the filters, most disagreement first; picking a row shows it in the cutout viewer.

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
            COLUMNS, sized=("mean_iou",), point_columns={"mean_distance": "Dist. px"},
            point_titles={"n_consensus": "Points"}, mixed_titles={"n_consensus": "Consensus"})
        self._table = ReadOnlyTable(
            self._rows(), pagination="remote", page_size=self.page_size, selectable=1,
            show_index=False, widths={**WIDTHS, **MIXED_WIDTHS} if kinds.boxes and kinds.points else WIDTHS,
            titles={"thumbnail": "", **self._columns}, layout="fit_data_table",
            stylesheets=[COMPACT_HEADER],
            formatters={
                "thumbnail": {"type": "html"},
                "subject_id": NumberFormatter(format="0"),
                "mean_iou": NumberFormatter(format="0.00"),
                "mean_distance": NumberFormatter(format="0.0"),
                "disagreement": NumberFormatter(format="0.00"),
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
