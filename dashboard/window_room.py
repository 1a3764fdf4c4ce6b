"""`WindowRoom`: how much room the browser gives the served page, for views sized to it (the cutout)."""

from __future__ import annotations

import param

from .invisible import Invisible


class WindowRoom(Invisible):
    """Reports the width of the page's main area and the height of the window, in CSS pixels; renders nothing.

    Reported when the page is drawn and again when either changes (the window resized, the sidebar folded or
    brought back), once the change has settled for `SETTLE_MS`. Panel's templates put their main area in the
    element ``#main``; without one (a notebook) nothing is reported and the values stay 0.
    """

    main_width = param.Integer(default=0, bounds=(0, None),
                               doc="Width of the page's main area (beside the sidebar) in CSS pixels; 0 until reported.")
    window_height = param.Integer(default=0, bounds=(0, None),
                                  doc="Height of the browser window's page area in CSS pixels; 0 until reported.")

    #: Milliseconds a resize must have settled before it is reported: a window dragged wider sends one report,
    #: not one per frame.
    SETTLE_MS = 250

    _esm = f"""
    export function render({{ model }}) {{
      const main = document.getElementById("main");
      if (!main) return document.createElement("span");
      let timer = null;
      function report() {{
        const width = Math.round(main.clientWidth), height = Math.round(window.innerHeight);
        if (width !== model.main_width) model.main_width = width;
        if (height !== model.window_height) model.window_height = height;
      }}
      function settle() {{
        clearTimeout(timer);
        timer = setTimeout(report, {SETTLE_MS});
      }}
      const observer = new ResizeObserver(settle);
      observer.observe(main);
      window.addEventListener("resize", settle);
      model.on("remove", () => {{
        observer.disconnect();
        window.removeEventListener("resize", settle);
        clearTimeout(timer);
      }});
      report();
      return document.createElement("span");
    }}
    """
