"""Give the memory of closed sessions back: collect their objects, then ask the C allocator to return free pages.

A closed session's document, views and Bokeh models hold each other in reference cycles, so
Panel's clean-up leaves them to CPython's cyclic collector, which runs its full collection
rarely. Freed, their memory still stays in the process: glibc keeps freed heap pages for
later use until ``malloc_trim`` returns them (documented in malloc_trim(3); each worker thread
has its own arena, which ``malloc_trim`` also trims). CPython's own small-object allocator
(pymalloc) returns an arena only when every object in it is freed, so most of a session's
memory goes back only when the server runs with ``PYTHONMALLOC=malloc`` (bench/results/sessions.md
measures both), or when a fresh server process takes over from an idle one (`dashboard.recycling`).
A burst of sessions closing is collected once, a few seconds after the last.

Each full collection walks every tracked object in the process, the shared project's included: about
0.2 s on the demo, holding the GIL, and Panel runs one of its own after every closed session too. A
server process freezes what is alive once its project has loaded (`freeze_loaded`): the modules and the
project stay for the process's life, so the collector need never look at them again, and a collection
then walks only the sessions' objects.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import threading

import pandas as pd
from pandas._libs.internals import BlockValuesRefs

#: Seconds after the last session closed before its memory is collected.
SETTLE_SECONDS = 5.0


def _malloc_trim():
    """glibc's ``malloc_trim``, or None where the C library has none (musl, macOS, Windows)."""
    name = ctypes.util.find_library("c")
    try:
        library = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return getattr(library, "malloc_trim", None)


MALLOC_TRIM = _malloc_trim()


class MemoryRelease:
    """Collect and trim once the sessions closing in a burst are gone (`session_closed` for each).

    Parameters
    ----------
    settle : float
        Seconds after the last `session_closed` before collecting.
    """

    def __init__(self, settle: float = SETTLE_SECONDS):
        self.settle = settle
        #: How many times memory was released (tests and the benchmark read it).
        self.releases = 0
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def session_closed(self, session_context) -> None:
        """A session was destroyed (Panel's ``on_session_destroyed`` hands its context): release soon."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(self.settle, self.release)
            self._timer.daemon = True  # a server stopping does not wait for it
            self._timer.start()

    def release(self) -> None:
        """Collect unreachable objects now, then give the allocator's free pages back to the system."""
        gc.collect()
        forget_dead_views()
        if MALLOC_TRIM is not None:
            MALLOC_TRIM(0)  # ctypes lets go of the GIL meanwhile: the sessions go on
        with self._lock:
            self.releases += 1


#: The copy-on-write reference lists of the pandas blocks and indexes alive when the project loaded
#: (`freeze_loaded`), pruned of dead views by `forget_dead_views`.
_LOADED_REFERENCES: list[BlockValuesRefs] = []


def freeze_loaded(project=None) -> None:
    """Leave every object alive now out of all later collections (``gc.freeze``): call once a server
    process has loaded its ``project``, which it keeps until it ends. What is garbage now is collected first;
    objects made later (the sessions') are collected as before. The project's tables are the ones
    `forget_dead_views` prunes."""
    gc.collect()
    _LOADED_REFERENCES[:] = [] if project is None else _table_references(project)
    gc.freeze()


def _table_references(holder) -> list[BlockValuesRefs]:
    """The copy-on-write reference lists of the pandas tables ``holder`` keeps as attributes (blocks and index).

    Found from the tables, not among ``gc.get_objects()``: that list of every object, made while other threads
    run (the loading page's sessions, the served sessions), broke a tuple one of them was building ("SystemError:
    Objects/tupleobject.c:927: bad argument to internal function", in the 50-session load test).
    """
    references = []
    for value in getattr(holder, "__dict__", {}).values():
        if isinstance(value, (pd.DataFrame, pd.Series)):
            references += [block.refs for block in value._mgr.blocks]
            references.append(value.index._references)
    return [found for found in references if isinstance(found, BlockValuesRefs)]


def forget_dead_views() -> None:
    """Drop the weak references to sessions' views that are gone from the loaded project's pandas tables.

    Under copy-on-write, every view a session takes of a shared table (``iloc``, a column, ``reset_index``)
    appends a weak reference to the table's block, and pandas drops the dead ones only when a block has
    about 500 of them. Those weak references outlive the sessions that made them,
    scattered through the allocator's arenas among the sessions' objects, and each keeps its arena: after
    two rounds of 5 sessions on the demo, 1,424 of the 1,551 objects made in them and still alive were dead weak
    references in the project's tables (bench/results/sessions.md). ``has_reference`` prunes them (in
    compiled code, holding the GIL, as pandas itself does when it adds one from any thread).
    """
    for references in _LOADED_REFERENCES:
        references.has_reference()


#: The process's release: every served session reports to it when destroyed.
RELEASE = MemoryRelease()
