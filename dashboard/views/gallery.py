"""The gallery: many subjects at once, with every volunteer and consensus mark drawn on, worst first.

A page of thumbnails (`project.thumbnails`: each mark drawn as what it is, rendered on the server
once and cached) in the session's order (its ``sort_by``, most disagreement first by default) over the
subjects passing its filters and plot selection. Opening one shows it in the Subjects tab.
"""

from __future__ import annotations

import html
import logging
import math
from concurrent.futures import Future, wait

import panel as pn
import param

from project.selection import SORT_WORDS
from project.thumbnails import CANVAS, THUMBNAIL_MAKERS

from ..session_threads import in_document
from ..subject_marks import consensus_kinds
from .base import View

log = logging.getLogger(__name__)

#: The side of every card's picture frame, in screen pixels: a thumbnail of any shape is centred in it.
FRAME = 164
#: The frame around a thumbnail narrower or shorter than it: the colour of the canvas a subject without a picture
#: is drawn on, so that every frame is one square of one colour, pictures and placeholders alike.
FRAME_COLOUR = "#{:02x}{:02x}{:02x}".format(*CANVAS)
#: Seconds a page waits for its thumbnails before it shows: those made by then show with it, the others (pictures
#: an image host is slow to send, or never sends until its timeout) fill their empty frames as they come, so a
#: host that does not answer holds up neither the page nor the session.
PAGE_WAIT_SECONDS = 1.0
#: A frame still waiting for its thumbnail says so in words, under Panel's spinner made white and larger. Panel's
#: own (a light grey spinner on a half-white veil) was faint on the dark frame, and a waiting frame looked like an
#: empty one. "!important": Panel's rules for it are also in the page's own style sheets, which win otherwise.
WAITING_FRAME = """
:host(.pn-loading):after {
  content: "fetching the picture…" !important; background-color: rgba(0, 0, 0, 0.25) !important;
  color: #f0f0f0; font-size: 12px; display: flex; align-items: flex-end; justify-content: center;
  padding-bottom: 28px; box-sizing: border-box;
}
:host(.pn-loading):before {
  background-color: #ffffff !important; width: 56px !important; height: 56px !important;
  mask-size: 56px 56px !important; -webkit-mask-size: 56px 56px !important;
}
"""


class Gallery(View):
    """A grid of subject thumbnails with their marks, in the current order; open one to review it."""

    short_name = "gallery"
    tab = "Gallery"

    per_page = param.Integer(default=24, bounds=(6, 96), doc="Thumbnails on a page.")
    page = param.Integer(default=1, bounds=(1, None), doc="The page shown (1 is the most disagreement).")

    @param.depends("data_store.subjects", watch=True)
    def _first_page(self):
        """New filters show their worst subjects first."""
        self.page = 1

    @property
    def pages(self) -> int:
        return max(1, math.ceil(len(self.data_store.subjects) / self.per_page))

    def shown(self):
        """The subject statistics rows of the page shown."""
        page = min(self.page, self.pages)
        start = (page - 1) * self.per_page
        return self.data_store.subjects.iloc[start:start + self.per_page]

    def open(self, subject_id: int) -> None:
        """Show ``subject_id`` in the Subjects tab."""
        self.data_store.subject = int(subject_id)
        self.data_store.param.trigger("show_subject")

    def _card(self, row, thumbnail: Future) -> pn.Column:
        subject_id = int(row.subject_id)
        disagreement = "–" if row.disagreement != row.disagreement else f"{row.disagreement:.2f}"
        button = pn.widgets.Button(name=f"{subject_id}", button_type="light", width=FRAME, margin=(0, 2),
                                   description=f"Open subject {subject_id} in the Subjects tab")
        button.on_click(lambda event: self.open(subject_id))
        volunteers, consensus = int(row.n_volunteers), int(row.n_consensus)
        caption = pn.pane.HTML(
            f"<small>disagreement {html.escape(disagreement)} · {volunteers} volunteer{'' if volunteers == 1 else 's'}"
            f" · {consensus} consensus {consensus_kinds(self.data_store.project).words[consensus != 1]} · "
            f"{html.escape(str(row.review_status))}</small>", width=FRAME, margin=(0, 2))
        # Panel's spinner over the frame until the thumbnail is made.
        picture = pn.pane.PNG(None, width=FRAME, height=FRAME, fixed_aspect=True, margin=2, loading=True,
                              styles={"background": FRAME_COLOUR}, stylesheets=[WAITING_FRAME],
                              css_classes=["zoolens-gallery-frame"])
        # At once if made in time; otherwise from the maker's thread when it is (Panel sends it to the page).
        thumbnail.add_done_callback(lambda made: picture.param.update(object=_png_of(subject_id, made), loading=False))
        return pn.Column(picture, button, caption, width=FRAME + 8, css_classes=["zoolens-gallery-card"])

    @param.depends("data_store.subjects", "data_store.review_changes", "page", "per_page")
    def _grid(self):
        rows = self.shown()
        if not len(rows):
            return pn.pane.Alert("No subject passes the filters: widen them to see thumbnails.",
                                 alert_type="info")
        thumbnails = self.data_store.project.thumbnails
        made = [THUMBNAIL_MAKERS.submit(thumbnails.png, subject_id) for subject_id in rows.subject_id]
        wait(made, timeout=PAGE_WAIT_SECONDS)
        grid = pn.FlexBox(*(self._card(row, thumbnail) for row, thumbnail in zip(rows.itertuples(), made)),
                          sizing_mode="stretch_width")
        # The page's pictures that could not be had are counted: now, or once the last has come.
        if all(thumbnail.done() for thumbnail in made):
            self.data_store.param.trigger("pictures_fetched")
            return grid
        document = pn.state.curdoc

        def recount():
            self.data_store.param.trigger("pictures_fetched")

        def recount_after_the_last(_):
            if all(thumbnail.done() for thumbnail in made):
                in_document(document, recount)

        for thumbnail in made:
            thumbnail.add_done_callback(recount_after_the_last)
        return grid

    @param.depends("data_store.subjects", "page", "per_page")
    def _header(self):
        total = len(self.data_store.subjects)
        first = (min(self.page, self.pages) - 1) * self.per_page
        return pn.pane.Markdown(
            f"Subjects **{first + 1 if total else 0:,}–{min(first + self.per_page, total):,}** of {total:,} passing "
            f"the filters, {SORT_WORDS[self.data_store.sort_by]}. Each mark is drawn as what it is (box, circle, "
            "polygon, line, point cross): volunteers' thin, in the colour of the consensus mark they support (grey: "
            "none); consensus marks bold, consensus points rings.", sizing_mode="stretch_width")

    def __panel__(self):
        previous = pn.widgets.Button(name="◀ Previous page", width=140)
        following = pn.widgets.Button(name="Next page ▶", width=140)
        previous.on_click(lambda event: self.param.update(page=max(1, self.page - 1)))
        following.on_click(lambda event: self.param.update(page=min(self.pages, self.page + 1)))

        def at_the_ends(*events):
            """No going back from the first page or on from the last: those buttons would do nothing."""
            page = min(self.page, self.pages)
            previous.disabled, following.disabled = page <= 1, page >= self.pages

        at_the_ends()
        self.param.watch(at_the_ends, ["page", "per_page"])
        self.data_store.param.watch(at_the_ends, "subjects")
        return pn.Column(self._header, pn.Row(previous, following), self._grid, sizing_mode="stretch_width")


def _png_of(subject_id: int, made: Future) -> bytes | None:
    """The thumbnail a maker made, or None (the empty frame) if making it failed, which is logged."""
    error = made.exception()
    if error is not None:
        log.error("thumbnail of subject %s could not be made", subject_id, exc_info=error)
        return None
    return made.result()
