"""Export the current selection: consensus boxes, optionally with the raw marks, in any catalogue format."""

from __future__ import annotations

import io

import panel as pn
import param

from data_loaders.writers import WRITERS
from project.export import export_selection

from ..subject_marks import consensus_kinds
from .base import CHOSEN_STANDS_OUT, View


class ExportView(View):
    """Download the consensus boxes of the subjects passing the filters (and their raw marks)."""

    short_name = "export"
    tab = "Export"

    format = param.Selector(default="csv", objects=list(WRITERS), doc="Catalogue format of the download.")
    include_marks = param.Boolean(default=False, doc="Also export every raw mark of the selection, with the "
                                                     "consensus box it supports.")
    reviewed = param.Boolean(default=False, doc="Export the reviewed catalogue: the team's decisions applied "
                                                "(rejected boxes left out, redrawn boxes at their new place, "
                                                "added boxes in), with the review store and decision counts "
                                                "in the provenance.")

    def export(self) -> tuple[str, bytes]:
        """File name and bytes of the selection in `format` (a zip when the format makes several files)."""
        store = self.data_store
        return export_selection(store.project, store, self.format, include_marks=self.include_marks,
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
                             f"The consensus {consensus_kinds(self.data_store.project).words[1]} with RA/Dec where "
                             "a FITS WCS allows, and optionally every "
                             "raw mark. Each export records its source files (with SHA-256), the aggregation "
                             "settings, these filters, the zoolens version and the time; CSV comes as a zip "
                             "with its provenance beside it."),
            pn.Param(self, parameters=["format", "include_marks",
                                       *(["reviewed"] if self.data_store.reviews is not None else [])],
                     show_name=False,
                     widgets={"format": {"type": pn.widgets.RadioButtonGroup, **CHOSEN_STANDS_OUT}}),
            self._summary,
            download,
        )

    @param.depends("data_store.subjects", "data_store.min_votes")
    def _summary(self) -> pn.pane.Markdown:
        store = self.data_store
        boxes = store.filtered_consensus()
        words = consensus_kinds(store.project).words
        return pn.pane.Markdown(f"**{len(store.subjects):,}** subjects pass the filters, with "
                                f"**{len(boxes):,}** consensus {words[len(boxes) != 1]}.")
