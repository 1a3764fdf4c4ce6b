"""SAMP from the app: the selection's catalogue to TOPCAT, Aladin pointed at a subject, selections back.

For an app served on the computer the astronomer works at (opened at localhost): the server
talks to the SAMP hub TOPCAT or Aladin runs there (`project.samp.SampLink`), so a page opened
from another computer is told why it cannot. The session connects on its first message and
stays connected until it closes; rows another tool selects in a catalogue this session sent
come back on the SAMP client's thread and are handed to the session's own document, where they
become the session's plot selection (the subjects passing the filters) and current subject.
"""

from __future__ import annotations

import html
import shutil
import tempfile
from functools import partial
from pathlib import Path

import numpy as np
import panel as pn
import param
from panel.io.state import set_curdoc

from project.export import write_catalogue
from project.samp import SampError, SampLink, has_sky_positions, subject_position

from .base import View

#: Host names under which a page is opened on the server's own computer.
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1", "[::1]")


class SampPanel(View):
    """Send the selection's catalogue (VOTable) and the current subject's position to SAMP tools."""

    short_name = "samp"
    tab = "Export"

    status = param.String(default="", doc="Output: what the last SAMP action did, or why it could not.")
    hub = param.String(default=None, allow_None=True,
                       doc="The SAMP hub's lock file; default the standard discovery ($SAMP_HUB, else ~/.samp).")

    def __init__(self, **params):
        super().__init__(**params)
        self._link: SampLink | None = None
        self._document = None
        self._folder: Path | None = None

    def served_locally(self) -> bool:
        """Whether the page was opened on the server's computer (always, in a notebook)."""
        location = pn.state.location
        hostname = getattr(location, "hostname", None) if location is not None else None
        return not hostname or hostname in LOCAL_HOSTS

    def link(self) -> SampLink:
        """The session's link to the hub, connected on first use (`SampError` when no hub runs)."""
        if self._link is None:
            self._link = SampLink(self.hub)
            self._link.on_selection(self._heard)
            self._document = pn.state.curdoc
            if self._document is not None and self._document.session_context is not None:
                self._document.on_session_destroyed(lambda context: self.close())
        return self._link

    def send_selection(self) -> int:
        """Send the consensus boxes of the subjects passing the filters as a VOTable; how many rows."""
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="zoolens-samp-"))
        store = self.data_store
        path = self._folder / f"zoolens-selection-{len(list(self._folder.iterdir())) + 1}.vot"
        _, export = write_catalogue(store.project, store, path, "votable")
        rows = export.consensus["subject_id"]
        self.link().send_catalogue(path, rows, name=f"zoolens: {store.project.title}")
        self.status = (f"Sent {len(rows):,} consensus marks of {rows.nunique():,} subjects to the SAMP hub as a "
                       "VOTable. Rows you select in TOPCAT select their subjects here.")
        return len(rows)

    def point_at_subject(self) -> tuple[float, float]:
        """Point Aladin (and any sky viewer on the hub) at the current subject; its RA, Dec."""
        store = self.data_store
        if store.subject is None:
            raise SampError("no subject passes the filters")
        position = subject_position(store.project, store.subject)
        if position is None:
            raise SampError(f"subject {store.subject} has no sky position (no FITS WCS and no ra/dec metadata)")
        self.link().point_at(*position)
        self.status = (f"Pointed the sky viewers at subject {store.subject}: RA {position[0]:.5f}, "
                       f"Dec {position[1]:+.5f}.")
        return position

    def _heard(self, subject_ids: np.ndarray) -> None:
        """Rows selected in another tool (on the SAMP client's thread): to the session's own event loop."""
        document = self._document
        if document is None or document.session_context is None:
            self.select(subject_ids)
        else:
            document.add_next_tick_callback(partial(self._select_in, document, subject_ids))

    def _select_in(self, document, subject_ids: np.ndarray) -> None:
        with set_curdoc(document):
            self.select(subject_ids)

    def select(self, subject_ids: np.ndarray) -> None:
        """Make ``subject_ids`` the session's plot selection, the first of them the current subject."""
        store = self.data_store
        ids = np.asarray(subject_ids, dtype=np.int64)
        store.selection = ids if len(ids) else None
        if len(ids):
            store.subject = int(ids[0])
        self.status = f"A SAMP tool selected {len(ids):,} subjects: they are the plot selection now."

    def close(self) -> None:
        """Leave the hub and remove the catalogues sent."""
        if self._link is not None:
            self._link.close()
            self._link = None
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    def _run(self, action) -> None:
        try:
            action()
        except SampError as error:
            self.status = f"⚠ {error}"

    @param.depends("status")
    def _status(self) -> pn.pane.HTML:
        # The status may quote a path or a hub's message: escaped.
        return pn.pane.HTML(f"<p>{html.escape(self.status)}</p>" if self.status else "", sizing_mode="stretch_width")

    def __panel__(self):
        heading = pn.pane.Markdown("### Send to TOPCAT and Aladin (SAMP)\nThe selection's catalogue (RA/Dec per "
                                   "consensus mark) goes to every SAMP tool as a VOTable; rows selected there "
                                   "come back as the selection here.")
        if not self.served_locally():
            return pn.Column(heading, pn.pane.Markdown(
                "SAMP reaches the tools on the computer running zoolens: open the app there (at localhost) to "
                "use it, or download the catalogue above and open it in TOPCAT."))
        send = pn.widgets.Button(label="Send the selection to TOPCAT", color="primary", width=280)
        send.on_click(lambda event: self._run(self.send_selection))
        if not has_sky_positions(self.data_store.project):
            # A button that could only answer "no sky position" is not offered; TOPCAT still takes the table.
            return pn.Column(heading, send, pn.pane.Markdown(
                "No subject has a position on the sky (no ra and dec in the subject metadata, no FITS image with a "
                "WCS): the catalogue has pixel positions only, and there is nothing to point Aladin at."),
                self._status)
        point = pn.widgets.Button(label="Point Aladin at this subject", width=280)
        point.on_click(lambda event: self._run(self.point_at_subject))
        return pn.Column(heading, pn.Row(send, point), self._status)
