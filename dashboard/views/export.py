"""Export the current selection: consensus boxes or raw marks, as CSV, FITS or VOTable."""

from __future__ import annotations

import io

import numpy as np
import panel as pn
import param

from ..export import FORMATS, consensus_catalogue, marks_table, provenance, write_table
from .base import View

#: Data store parameters recorded in every export's provenance.
RECORDED_FILTERS = ("workflow", "tool", "min_votes", "min_volunteers", "disagreement", "metadata_ranges")


class ExportView(View):
    """Download the subjects passing the filters: their consensus boxes, or every raw mark."""

    view_type = "export"

    format = param.Selector(default="csv", objects=list(FORMATS), doc="File format of the download.")

    def filters(self) -> dict:
        """The session's filters, as recorded in the provenance."""
        store = self.data_store
        recorded = {name: getattr(store, name) for name in RECORDED_FILTERS}
        recorded["plot_selection_subjects"] = None if store.selection is None else len(store.selection)
        return recorded

    def export(self, what: str) -> bytes:
        """The file of ``what`` ("consensus" or "marks") for the current selection, in `format`."""
        subject_ids = self.data_store.subjects.subject_id.to_numpy(dtype=np.int64)
        if what == "consensus":
            table = consensus_catalogue(self.data_store.project, subject_ids, self.data_store.min_votes)
        elif what == "marks":
            table = marks_table(self.data_store.project, subject_ids)
        else:
            raise ValueError(f"unknown export {what!r}; choose consensus or marks")
        record = provenance(self.data_store.project, self.filters(), len(subject_ids))
        record["table"] = what
        return write_table(table, self.format, record)

    def _download(self, what: str, label: str) -> pn.widgets.FileDownload:
        download = pn.widgets.FileDownload(callback=lambda: io.BytesIO(self.export(what)), label=label,
                                           filename=self._filename(what), width=260)
        self.param.watch(lambda event: setattr(download, "filename", self._filename(what)), "format")
        return download

    def _filename(self, what: str) -> str:
        return f"zoolens-{what}{FORMATS[self.format][0]}"

    def __panel__(self):
        return pn.Column(
            pn.pane.Markdown("### Export the subjects passing the filters\n"
                             "Every file records its source files (with SHA-256), the consensus "
                             "settings, these filters, the zoolens version and the time."),
            pn.Param(self, parameters=["format"], show_name=False,
                     widgets={"format": pn.widgets.RadioButtonGroup}),
            self._download("consensus", "Consensus boxes"),
            self._download("marks", "Raw marks"),
        )
