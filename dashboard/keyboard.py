"""Keyboard shortcuts for the session: next / previous subject without the mouse."""

from __future__ import annotations

from typing import ClassVar

import param
from panel.custom import JSComponent

from .data_store import DataStore


class SubjectKeys(JSComponent):
    """Right arrow or ``j``: next subject; left arrow or ``k``: previous subject.

    Keys typed into an input field are left alone. The listener is on the document,
    so it works wherever the focus is, and is removed with the component.
    """

    data_store = param.ClassSelector(class_=DataStore, doc="The session's data store whose subject the keys move.")

    # The data store stays on the server: only key presses travel.
    _rename: ClassVar[dict[str, str | None]] = {"data_store": None}

    #: Key -> step along the filtered subjects.
    STEPS: ClassVar[dict[str, int]] = {"ArrowRight": 1, "j": 1, "ArrowLeft": -1, "k": -1}

    _esm = """
    const KEYS = new Set(["ArrowRight", "ArrowLeft", "j", "k"]);
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

    def _handle_msg(self, message) -> None:
        step = self.STEPS.get(message.get("key")) if isinstance(message, dict) else None
        if step is not None:
            self.data_store.step_subject(step)
