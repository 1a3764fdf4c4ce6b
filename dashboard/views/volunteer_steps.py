"""One volunteer on the image: their marks drawn bold on the cutout, the others' faded, and a step through their subjects.

The session's data store holds the highlighted volunteer (``highlighted_volunteer``,
set by picking one in the Volunteers tab). `VolunteerSteps` is the bar that names them
and steps the current subject through the subjects they classified, in the order they
classified them; `emphasis_columns` is what the cutout asks to style its volunteer
layers with.
"""

from __future__ import annotations

import html

import numpy as np
import panel as pn
import param

from .base import View

#: How the highlighted volunteer's marks and everyone else's are drawn: outline width, opacity.
HIGHLIGHTED_WIDTH, FADED_WIDTH = 4, 1
HIGHLIGHTED_ALPHA, FADED_ALPHA = 1.0, 0.25
#: Marker sizes of points (clicks): the highlighted volunteer's larger.
HIGHLIGHTED_SIZE, FADED_SIZE = 14, 7


def emphasis_columns(volunteers: np.ndarray, volunteer: str | None) -> dict[str, np.ndarray]:
    """The look of marks by ``volunteers`` with ``volunteer``'s bold and the others' faded: the ``alpha``,
    ``outline`` (width) and ``size`` (of markers) columns of the cutout's mark layers; none for None.

    Parameters
    ----------
    volunteers : array of str
        Each mark's volunteer (user name).
    volunteer : str or None
        The highlighted volunteer.
    """
    if volunteer is None:
        return {}
    mine = np.asarray(volunteers, dtype=object) == volunteer
    return {"alpha": np.where(mine, HIGHLIGHTED_ALPHA, FADED_ALPHA),
            "outline": np.where(mine, HIGHLIGHTED_WIDTH, FADED_WIDTH).astype(float),
            "size": np.where(mine, HIGHLIGHTED_SIZE, FADED_SIZE).astype(float)}


class VolunteerSteps(View):
    """The highlighted volunteer's name, where the current subject is among theirs, and previous/next buttons."""

    short_name = "volunteer_steps"

    bring_forward = param.Boolean(default=False, doc="Bring the Subjects tab (the cutout) forward on a step: "
                                                     "for a bar shown away from the cutout.")

    def __init__(self, **params):
        super().__init__(**params)
        self._memo = None
        self._where = pn.pane.HTML("", sizing_mode="stretch_width", margin=0)
        # Filled while a volunteer is highlighted (`_show_buttons`), empty otherwise: a plain row whose buttons
        # are made when needed, not a method pane (Panel's re-run machinery, at every session's open).
        self._buttons = pn.Row()
        self._update_where()
        self.data_store.param.watch(self._update_where, ["highlighted_volunteer", "subject", "subjects"])
        self.data_store.param.watch(self._show_buttons, "highlighted_volunteer")
        self._show_buttons()

    def volunteer_subjects(self) -> np.ndarray:
        """Ids of the subjects the highlighted volunteer classified, passing the filters, in the order they
        classified them (empty without a highlighted volunteer)."""
        volunteer, subjects = self.data_store.highlighted_volunteer, self.data_store.subjects
        if volunteer is None:
            return np.array([], dtype=np.int64)
        # Stepping reads the same list again and again: made once per volunteer and filter result.
        if self._memo is None or self._memo[0] != volunteer or self._memo[1] is not subjects:
            classifications = self.data_store.project.classifications
            theirs = classifications[(classifications.user == volunteer).to_numpy(dtype=bool)]
            ordered = theirs.sort_values(["created_at", "classification_id"]).subject_id.drop_duplicates()
            ids = ordered[ordered.isin(subjects.subject_id)].to_numpy(dtype=np.int64)
            self._memo = (volunteer, subjects, ids)
        return self._memo[2]

    def step(self, step: int) -> bool:
        """Move the current subject ``step`` places along the volunteer's subjects (wrapping); whether it moved.

        From a subject that is not theirs, a step forward goes to their first and a step back to their last.
        """
        ids = self.volunteer_subjects()
        if not len(ids):
            return False
        here = np.flatnonzero(ids == self.data_store.subject)
        position = (int(here[0]) + step) % len(ids) if len(here) else (0 if step > 0 else len(ids) - 1)
        self.data_store.subject = int(ids[position])
        if self.bring_forward:
            self.data_store.param.trigger("show_subject")
        return True

    def stop(self) -> None:
        self.data_store.highlighted_volunteer = None

    def where(self) -> str:
        """The bar's line: whose marks are bold and where the current subject is among theirs (empty without a
        highlighted volunteer)."""
        volunteer = self.data_store.highlighted_volunteer
        if volunteer is None:
            return ""
        ids = self.volunteer_subjects()
        here = np.flatnonzero(ids == self.data_store.subject)
        where = (f"subject {int(here[0]) + 1:,} of the {len(ids):,} they classified" if len(here)
                 else f"this subject is not one of the {len(ids):,} they classified")
        # A volunteer name is untrusted text: escaped, into an HTML pane.
        return (f"Marks of <b class='zoolens-highlighted-volunteer'>{html.escape(volunteer)}</b> "
                f"drawn bold: {where}.")

    def _update_where(self, *events) -> None:
        # The pane's text changes in place: a subject switch replaces no pane.
        text = self.where()
        if text != self._where.object:
            self._where.object = text

    def _show_buttons(self, *events) -> None:
        if self.data_store.highlighted_volunteer is None:
            if len(self._buttons):
                self._buttons.clear()
            return
        if len(self._buttons):  # another volunteer: the same buttons
            return
        # Short labels, so the three fit beside the cutout: the line above says what "their" is.
        previous_button = pn.widgets.Button(label="◀ Their previous", width=135)
        next_button = pn.widgets.Button(label="Their next ▶", width=115)
        stop_button = pn.widgets.Button(label="✕ Stop highlighting", width=145, button_type="light")
        previous_button.on_click(lambda event: self.step(-1))
        next_button.on_click(lambda event: self.step(1))
        stop_button.on_click(lambda event: self.stop())
        self._buttons[:] = [previous_button, next_button, stop_button]

    def __panel__(self):
        return pn.Column(self._where, self._buttons, sizing_mode="stretch_width")
