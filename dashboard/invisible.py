"""`Invisible`: a browser-side component that takes no room on the page (a listener, a reporter)."""

from __future__ import annotations

from panel.custom import JSComponent


class Invisible(JSComponent):
    """A `JSComponent` of no size and no margin: its ``render`` returns an empty element; it exists for its script."""

    def __init__(self, **params):
        params.setdefault("margin", 0)
        params.setdefault("width", 0)
        params.setdefault("height", 0)
        super().__init__(**params)
