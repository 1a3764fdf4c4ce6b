"""The page's address: the current subject and filters in its query string, so that a shared link reopens the view.

Panel's own `Location` sync pushed a new history entry on every change and then sent the page's new
address back to the server, a message per subject switch that cost the server about as much as a
sixth of the switch itself (instructions counted by callgrind over a served session's switches), and
left one entry in the browser's history per subject looked at. Here the server reads the address once,
when the session opens, and from then on only tells the page what the address should say; the page
replaces its address in place and sends nothing back.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import panel as pn
import param

from .invisible import Invisible


class PageAddress(Invisible):
    """Writes ``query`` into the page's address (``history.replaceState``); renders nothing.

    Query parameters of the address that are not in ``names`` are left as they are.
    """

    names = param.List(default=[], item_type=str, constant=True,
                       doc="The query parameters this component writes: set from ``query``, removed when not in it.")
    query = param.Dict(default={}, doc="Query parameter -> the text the address shows for it.")

    _esm = """
    export function render({ model }) {
      function write() {
        const params = new URLSearchParams(window.location.search);
        for (const name of model.names) {
          if (name in model.query) params.set(name, model.query[name]);
          else params.delete(name);
        }
        const search = params.toString();
        const address = window.location.pathname + (search ? "?" + search : "") + window.location.hash;
        // Replaced in place: stepping through subjects leaves no trail of history entries to go back through.
        if (address !== window.location.pathname + window.location.search + window.location.hash) {
          window.history.replaceState(window.history.state, "", address);
        }
      }
      // Written when the view changes, not when drawn: a page opened at a bare address keeps it until the
      // reviewer moves (a sign-in's return to the app lands where it was sent).
      model.on("query", write);
      return document.createElement("span");
    }
    """

    def __init__(self, **params):
        super().__init__(**params)
        self._followed = None

    def follow(self, parameterized: param.Parameterized, read: bool = True) -> None:
        """Keep the address showing ``parameterized``'s parameters ``names`` (those no longer followed are not).

        ``read``: first set them from the address the page was opened with (`opened_with`), as a shared
        link asks; a value the parameter does not take is left at its own.
        """
        if self._followed is not None:
            self._followed[0].param.unwatch(self._followed[1])
        if read:
            for name, value in opened_with(parameterized, self.names).items():
                try:
                    parameterized.param.update({name: value})
                except Exception:  # a hand-edited or outdated link: that parameter keeps its value
                    continue
        self._followed = (parameterized, parameterized.param.watch(self._write, list(self.names)))
        self._write()

    def _write(self, *events) -> None:
        parameterized = self._followed[0]
        self.query = {name: _text(parameterized, name) for name in self.names
                      if getattr(parameterized, name) is not None}


def opened_with(parameterized: param.Parameterized, names: Sequence[str]) -> dict:
    """The values of ``names`` in the address the session was opened with (Panel's `Location`, as the page
    sent it when connecting), each read as its parameter reads it; none outside a served session."""
    location = pn.state.location
    query = location.query_params if location is not None else {}
    values = {}
    for name in names:
        if name in query:
            try:
                values[name] = parameterized.param[name].deserialize(query[name])
            except Exception:
                values[name] = query[name]
    return values


def _text(parameterized: param.Parameterized, name: str) -> str:
    """The address's text for one parameter's value: its own serialization, as JSON unless already text."""
    value = parameterized.param[name].serialize(getattr(parameterized, name))
    return value if isinstance(value, str) else json.dumps(value)
