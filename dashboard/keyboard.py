"""Keyboard shortcuts for the session: move between subjects and review boxes without the mouse."""

from __future__ import annotations

from typing import ClassVar

import panel as pn
import param

from project.reviews import ReviewError

from .data_store import DataStore
from .invisible import Invisible
from .views.review import ReviewPanel


class Shortcuts(Invisible):
    """Keys for the subject browser and the review panel.

    - right arrow or ``j``: next subject; left arrow or ``k``: previous subject;
    - ``n`` / ``p``: next / previous box of the subject;
    - ``a``: accept the picked box, ``x``: reject it, each then picking the next box;
    - ``u``: revert the subject's last decision;
    - ``r``: the next subject nobody has reviewed yet.

    Keys typed into an input field are left alone. The listener is on the document,
    so it works wherever the focus is, and is removed with the component.
    """

    data_store = param.ClassSelector(class_=DataStore, doc="The session's data store whose subject the keys move.")
    review = param.ClassSelector(class_=ReviewPanel, default=None, allow_None=True,
                                 doc="The review panel whose decisions the keys make (none: subject keys only).")

    # The data store and review panel stay on the server: only key presses travel.
    _rename: ClassVar[dict[str, str | None]] = {"data_store": None, "review": None}

    #: Key -> step along the filtered subjects.
    SUBJECT_STEPS: ClassVar[dict[str, int]] = {"ArrowRight": 1, "j": 1, "ArrowLeft": -1, "k": -1}
    #: Key -> step along the current subject's boxes.
    BOX_STEPS: ClassVar[dict[str, int]] = {"n": 1, "p": -1}
    #: Key -> review decision on the picked box, after which the next box is picked.
    DECISIONS: ClassVar[dict[str, str]] = {"a": "accept", "x": "reject"}

    _esm = """
    const KEYS = new Set(["ArrowRight", "ArrowLeft", "j", "k", "n", "p", "a", "x", "u", "r"]);
    export function render({ model }) {
      function onKey(event) {
        // Bokeh widgets live in shadow roots: the real target is the first element of the path.
        const target = event.composedPath()[0];
        const tag = target && target.tagName ? target.tagName.toUpperCase() : "";
        if (["INPUT", "TEXTAREA", "SELECT"].includes(tag) || (target && target.isContentEditable)) {
          return;
        }
        if (KEYS.has(event.key) && !event.altKey && !event.ctrlKey && !event.metaKey) {
          model.send_msg({ key: event.key });
        }
      }
      document.addEventListener("keydown", onKey);
      model.on("remove", () => document.removeEventListener("keydown", onKey));
      return document.createElement("span");
    }
    """

    def describe(self) -> str:
        """What the keys do, in one line for the sidebar."""
        subjects = "j / k or → / ← next / previous subject"
        if self.review is None:
            return subjects
        return f"{subjects} · n / p box · a accept · x reject · u revert · r next unreviewed"

    def _handle_msg(self, message) -> None:
        key = message.get("key") if isinstance(message, dict) else None
        if key in self.SUBJECT_STEPS:
            self.data_store.step_subject(self.SUBJECT_STEPS[key])
        elif self.review is None:
            return
        elif key == "r":
            self.data_store.next_unreviewed()
        elif key in self.BOX_STEPS:
            self.review.step_box(self.BOX_STEPS[key])
        elif key in self.DECISIONS or key == "u":
            try:
                if key == "u":
                    self.review.revert_last()
                else:
                    getattr(self.review, self.DECISIONS[key])()
                    self.review.step_box(1)
            except ReviewError as error:
                # Panel hands errors of button callbacks to its exception handler (a
                # notification in the app), but not those of component messages.
                if pn.config.exception_handler is None:
                    raise
                pn.config.exception_handler(error)
