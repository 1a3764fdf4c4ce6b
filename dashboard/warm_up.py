"""Compiling a server process's plotting code once its project has loaded, before any session asks for it.

The Agreement tab's density plots are rasterized by datashader, whose kernels numba compiles the first time each
is used in a process: seconds that the first session to open the tab waited for, in every fresh server process
(the recycling supervisor's included; bench/results/agreement_first_visit.md). `dashboard.app.serve` starts
`warm_up_in_background` once the project has loaded: a thread of its own draws each density plot's layers once
off screen (`AgreementPlots.warm_up`), so their kernels are compiled for the project's own columns (glyph, count,
dtypes) before anyone opens the tab. The server serves meanwhile; a session that opens the tab before the
warm-up is over waits for the kernel being compiled rather than compiling it again (numba compiles under one
lock and reuses what is there), and the tab says in words why it takes longer (`warming_up`). A warm-up that
fails is logged and changes nothing else: the first visit compiles what it needs, as without one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

#: The warm-ups of this process still running.
_RUNNING: set[threading.Thread] = set()
_LOCK = threading.Lock()


def warm_up_in_background(warm_up: Callable[[], None], then: Callable[[], None] | None = None) -> threading.Thread:
    """Start ``warm_up`` in a daemon thread, and return it.

    Parameters
    ----------
    warm_up : callable
        Draws the plots once off screen (`AgreementPlots.warm_up` of the loaded project, given by
        `dashboard.app.serve`: this module imports no view, which asks `warming_up`).
    then : callable, optional
        Called in that thread as the warm-up's last step, whether the rest worked or not (the recycling's
        `~dashboard.recycling.IdleRecycle.warmed_up`).
    """
    thread = threading.Thread(target=_warm_up, args=(warm_up, then), name="zoolens-warm-up", daemon=True)
    with _LOCK:
        _RUNNING.add(thread)
    thread.start()
    return thread


def warming_up() -> bool:
    """Whether a warm-up of this process is still running."""
    with _LOCK:
        return bool(_RUNNING)


def _warm_up(warm_up: Callable[[], None], then: Callable[[], None] | None) -> None:
    log = logging.getLogger("zoolens")
    started = time.perf_counter()
    try:
        warm_up()
        log.info("the Agreement tab's plots warmed up in %.1f s", time.perf_counter() - started)
    except Exception:
        log.exception("warming up the Agreement tab's plots failed: the first visit to the tab compiles them")
    finally:
        try:
            if then is not None:
                then()
        finally:
            with _LOCK:
                _RUNNING.discard(threading.current_thread())
