"""A change made on a worker thread reaches the page as one message, as one made on the event loop does.

On the server's event loop, Panel's ``hold`` sends everything a callback changes on the page as one
PATCH-DOC message. On a worker thread (zoolens' default: `dashboard.session_threads`) Bokeh models
may be set only on the event loop, so Panel schedules each widget's update as an event-loop callback
of its own (as `session_threads.in_document` does the cutout figure's), holds them until the worker
is done, and then Bokeh sends each callback's changes as a message of its own: a subject switch went
to the browser as 16 messages (74 websocket frames), each one handled, laid out and painted by the
page on its own. `held` keeps the document held until those callbacks have all run, then sends what
they changed as one message.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from functools import partial

from bokeh.document.callbacks import invoke_with_curdoc
from bokeh.document.events import DocumentPatchedEvent
from bokeh.server.session import ServerSession
from panel.io.document import _HOLD_LOCK, hold, unlocked
from panel.io.state import set_curdoc, state

#: How a held document combines its changes (a property set twice is sent once, with its last value).
POLICY = "combine"


@contextmanager
def held(document):
    """Hold ``document``'s changes for the block; they reach its page as one message.

    On the thread that serves ``document`` (or for a document not served or not yet connected):
    Panel's ``hold``. On a worker thread: the changes the block schedules on the event loop run there
    still held, and go out together once the last has run (`_release`, `_send`). Within an outer
    hold, the outer one sends.
    """
    if (document is None or document.session_context is None or not state._connected.get(document)
            or state._thread_id_.get(document) in (None, threading.get_ident())):
        with hold(document):
            yield
        return
    lock = _HOLD_LOCK.setdefault(document, threading.Lock())  # Panel's, which its own holds take
    with lock:
        outer = document.callbacks.hold_value is not None
        if not outer:
            document.hold(POLICY)
    try:
        yield
    finally:
        if not outer:
            with lock:
                # Not itself held: this one callback is registered at once (Panel's hold does the same).
                document.callbacks._hold = None
                document.add_next_tick_callback(partial(_release, document, lock))
                document.callbacks._hold = POLICY


def _release(document, lock: threading.Lock) -> None:
    """On the event loop: register the callbacks the worker scheduled (held until now), and `_send` after them.

    The document stays held while they run, so their changes wait for `_send`.
    """
    with lock:
        events, document.callbacks._held_events = document.callbacks._held_events, []
        document.callbacks._hold = None
    events = _without_the_pages_own(document, events)
    changes = [event for event in events if isinstance(event, DocumentPatchedEvent)]
    for event in events:
        if not isinstance(event, DocumentPatchedEvent):
            document.callbacks.trigger_on_change(event)  # a callback added: the server runs it next, in order
    document.add_next_tick_callback(partial(_send, document, lock))
    with lock:
        document.callbacks._held_events = changes + document.callbacks._held_events
        document.callbacks._hold = POLICY


def _send(document, lock: threading.Lock) -> None:
    """On the event loop, after the scheduled callbacks: the held changes go to the page in one message."""
    with lock:
        events, document.callbacks._held_events = document.callbacks._held_events, []
        document.callbacks._hold = None
    if document.session_context is None:  # the session closed meanwhile
        return
    events = _without_the_pages_own(document, events)
    # Panel's own path for a callback on the event loop: the changes as one PATCH-DOC, anything else as Bokeh does.
    with set_curdoc(document), unlocked():
        for event in events:
            document.callbacks.trigger_on_change(event)


def _without_the_pages_own(document, events: list) -> list:
    """``events`` less the changes the page itself made while the document was held (Bokeh applied its messages
    meanwhile): their Python callbacks (a drag's ``on_change``) run now, as they would have had the document not
    been held, and they are not sent back to the page, which has them."""
    kept = []
    for event in events:
        if isinstance(event, DocumentPatchedEvent) and isinstance(event.setter, ServerSession):
            if event.callback_invoker is not None:
                invoke_with_curdoc(document, event.callback_invoker)
        else:
            kept.append(event)
    return kept
