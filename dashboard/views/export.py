"""Export the current selection: consensus boxes, optionally with the raw marks, in any catalogue format."""

from __future__ import annotations

import io

import numpy as np
import panel as pn
import param

from data_loaders.writers import WRITERS

from ..export import export_selection
from .base import View

#: Data store parameters recorded in every export's provenance.
RECORDED_FILTERS = ("workflow", "tool", "min_votes", "min_volunteers", "disagreement", "metadata_ranges")


class ExportView(View):
    """Download the consensus boxes of the subjects passing the filters (and their raw marks)."""

    view_type = "export"

    format = param.Selector(default="csv", objects=list(WRITERS), doc="Catalogue format of the download.")
    include_marks = param.Boolean(default=False, doc="Also export every raw mark of the selection, with the "
                                                     "consensus box it supports.")
    reviewed = param.Boolean(default=False, doc="Export the reviewed catalogue: the team's decisions applied "
                                                "(rejected boxes left out, redrawn boxes at their new place, "
                                                "added boxes in), with the review store and decision counts "
                                                "in the provenance.")

    def filters(self) -> dict:
        """The session's filters, as recorded in the provenance."""
        store = self.data_store
        recorded = {name: getattr(store, name) for name in RECORDED_FILTERS}
        recorded["plot_selection_subjects"] = None if store.selection is None else len(store.selection)
        recorded["review_status"] = store.review_status
        return recorded

    def export(self) -> tuple[str, bytes]:
        """File name and bytes of the selection in `format` (a zip when the format makes several files)."""
        store = self.data_store
        return export_selection(store.project, store.subjects.subject_id.to_numpy(dtype=np.int64), self.format,
                                self.filters(), min_votes=store.min_votes, include_marks=self.include_marks,
                                reviews=store.reviews if self.reviewed else None)

    def __panel__(self):
        download = pn.widgets.FileDownload(label="Download the selection", filename="zoolens-selection.csv",
                                           width=300)

        def transfer():
            # The file name depends on the format and on whether it became a zip.
            download.filename, content = self.export()
            return io.BytesIO(content)

        download.callback = transfer
        return pn.Column(
            pn.pane.Markdown("### Export the subjects passing the filters\n"
                             "The consensus boxes with RA/Dec where a FITS WCS allows, and optionally every "
                             "raw mark. Each export records its source files (with SHA-256), the aggregation "
                             "settings, these filters, the zoolens version and the time; CSV comes as a zip "
                             "with its provenance beside it."),
            pn.Param(self, parameters=["format", "include_marks",
                                       *(["reviewed"] if self.data_store.reviews is not None else [])],
                     show_name=False,
                     widgets={"format": pn.widgets.RadioButtonGroup}),
            download,
        )
