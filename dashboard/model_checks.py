"""Building a session's page without Bokeh checking every property value it sets.

Bokeh validates each value set on a model's property against the property's type. A
session's page sets about 14,000 of them (300 models), all from zoolens' and Panel's own
code, and the checks took about a quarter of the CPU of opening a session. Bokeh's own
switch for this, `bokeh.core.property.validation.validate`, is one process-wide flag that
it saves on entry and puts back on exit, so two threads building pages at once (two servers
in one process, a notebook beside a server) could leave it off for good. The server builds
its pages on its event loop (`dashboard.app.serve`, `SessionTemplate`). `unchecked_models` counts who is inside instead: the
checks are off while any page is being built and back on when the last one is done.
Values set by other threads meanwhile go unchecked too. Unchecked, a value Bokeh would have
refused (a bug) is not refused where it is set but reaches the page, whose own rendering then
fails; the browser tests look at every view.

Bokeh's "error diagnostics" (its `perform_error_diagnostics` setting) are off too while a page
is built: they check the signature of every callback Panel registers on a model (about 450 per
page, each through `inspect.signature`) and, when code asks a model for an attribute it does not
have (Panel does, for its own properties), look for similar names to suggest. Off, a wrong
callback fails when it is called rather than when it is registered, and a wrong name
still raises, with a shorter message.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

from bokeh.core.property.validation import validate
from bokeh.settings import settings

_LOCK = threading.Lock()
_BUILDING = 0


@contextmanager
def unchecked_models():
    """Within the block, Bokeh sets model properties without validating their values (see the module)."""
    global _BUILDING
    with _LOCK:
        _BUILDING += 1
        validate(False)  # Bokeh's switch, used as a call: it stays as set
        settings.perform_error_diagnostics.set_value(False)
    try:
        yield
    finally:
        with _LOCK:
            _BUILDING -= 1
            if not _BUILDING:
                validate(True)
                settings.perform_error_diagnostics.unset_value()  # back to the environment's or Bokeh's default
