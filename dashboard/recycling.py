"""Give a server's memory back once its sessions are gone, by starting its process afresh.

CPython keeps the memory of a busy hour: its small-object allocator returns a 1 MiB arena only
when every object in it is freed, and the few thousand objects a server keeps from its sessions
(caches filled on use, decisions read, compiled statements, interned names) are spread over most
of the arenas the sessions used. No collection or ``malloc_trim`` gives those back
(bench/results/session_memory.md); ending the process does.

So ``zoolens serve`` and ``zoolens demo`` run the server as a child of a small supervisor
(`supervise`, this module run as a program: a fresh interpreter that imports nothing heavy). The
server watches itself (`IdleRecycle`): once no session has been open for ``idle_seconds`` and it
holds more than ``growth_mib`` beyond its size when its project had loaded, it stops and exits with
`RECYCLE_EXIT`, and the supervisor starts a fresh server, which loads the project again while its
pages show the progress. Nothing a user saved is lost: decisions are in the review store, and a
session's filters are in its page's address. With no session open, nobody is cut off; someone
arriving in the second or two between the two servers finds the port closed and reloads.

This module imports neither Panel nor pandas at its top, so the supervisor stays small.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

#: The exit code of a server that ended to give its memory back: sysexits' EX_TEMPFAIL ("try again"),
#: which the supervisor does.
RECYCLE_EXIT = 75

#: Set in a supervised server's environment: how many servers the supervisor has started, this one included.
SERVER_GENERATION = "ZOOLENS_SERVER_GENERATION"

#: By default a server with no session for this long (seconds) may end to give its memory back.
DEFAULT_IDLE_SECONDS = 120.0

#: By default it does only when it holds more than this (MiB) beyond its size once its project loaded.
DEFAULT_GROWTH_MIB = 64.0

#: How often (seconds) a server looks at its sessions and its size.
CHECK_SECONDS = 5.0


def resident_mib() -> float:
    """This process's resident memory, MiB (Linux ``/proc``)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def recycling_supported() -> bool:
    """Whether this platform can measure a server's memory and end its process with its parent (Linux)."""
    return sys.platform.startswith("linux")


class IdleRecycle:
    """When a served process ends to give its memory back: no session for ``idle_seconds`` and more than
    ``growth_mib`` resident beyond its size once its project loaded.

    The server reports each session opened and closed (`session_opened`, `session_closed`), the load
    done (`loaded`) and the plots warmed up (`warmed_up`); the first session starts a check on the server's event loop every `CHECK_SECONDS`,
    which stops the loop when the time has come (`reason` then says why). The server's caller exits
    with `RECYCLE_EXIT`.

    Parameters
    ----------
    idle_seconds : float
        How long the server must have had no session.
    growth_mib : float
        How much more than its loaded size it must hold (after a collection and trim, which go first).
    """

    def __init__(self, idle_seconds: float = DEFAULT_IDLE_SECONDS, growth_mib: float = DEFAULT_GROWTH_MIB):
        if not idle_seconds > 0:
            raise ValueError(f"idle_seconds must be positive, got {idle_seconds!r}")
        self.idle_seconds = idle_seconds
        self.growth_mib = growth_mib
        #: Why the server stopped ("" while it serves).
        self.reason = ""
        self._lock = threading.Lock()
        self._live = 0
        #: Sessions made since the server started.
        self._opened = 0
        self._idle_since = time.monotonic()
        self._loaded_mib: float | None = None
        self._check = None

    def loaded(self) -> None:
        """The project has loaded: its size now is the one to come back to (call after `freeze_loaded`)."""
        from .memory import RELEASE

        RELEASE.release()
        self._loaded_mib = resident_mib()

    def warmed_up(self) -> None:
        """The server's plots have warmed up (`dashboard.warm_up`): their compiled code is part of a loaded server,
        and its size now the one to come back to, unless a session has been made meanwhile (its memory would hide
        in that size; the warm-up's then counts as growth, as a first visit to the plots did without one)."""
        with self._lock:
            served = self._opened > 0
        if not served:
            self.loaded()

    def session_opened(self) -> None:
        """A session was made (on the server's event loop, which the first one starts watching)."""
        with self._lock:
            self._live += 1
            self._opened += 1
        if self._check is None:
            from tornado.ioloop import PeriodicCallback

            self._check = PeriodicCallback(self._stop_when_due, CHECK_SECONDS * 1000)
            self._check.start()

    def session_closed(self, session_context) -> None:
        """A session was destroyed (Panel's ``on_session_destroyed`` hands its context)."""
        with self._lock:
            self._live -= 1
            if self._live == 0:
                self._idle_since = time.monotonic()

    def due(self) -> str:
        """Why the server should end now to give memory back, or "" while it should not."""
        with self._lock:
            idle = time.monotonic() - self._idle_since if self._live == 0 else 0.0
        if self._loaded_mib is None or idle < self.idle_seconds:
            return ""
        if resident_mib() - self._loaded_mib <= self.growth_mib:
            return ""
        from .memory import RELEASE

        RELEASE.release()  # what a collection and a trim give back is no reason to reload
        grown = resident_mib() - self._loaded_mib
        if grown <= self.growth_mib:
            return ""
        return (f"no session for {idle:.0f} s and {grown:,.0f} MiB more than when the project had loaded "
                f"({self._loaded_mib:,.0f} MiB)")

    def _stop_when_due(self) -> None:
        reason = self.due()
        if reason:
            from tornado.ioloop import IOLoop

            self.reason = reason
            self._check.stop()
            IOLoop.current().stop()


def _end_with_parent(parent: int) -> None:
    """Ask Linux to end this process when its parent (the supervisor, ``parent``) ends, however it ends."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it ended before the request took hold
        os.kill(os.getpid(), signal.SIGTERM)


def supervise(command: list[str]) -> int:
    """Run the server ``command`` again each time it exits with `RECYCLE_EXIT`; its exit code otherwise.

    Signals asking the supervisor to stop (Ctrl-C, ``kill``) go on to the server, and no fresh server
    starts after one; a server ended by a signal ends the supervisor by the same signal, so whoever
    started it sees how the server ended.
    """
    server: subprocess.Popen | None = None
    stop: list[int] = []  # the signal asking to stop, once one came

    def forward(signum, frame):
        stop.append(signum)
        if server is not None and server.poll() is None:
            server.send_signal(signum)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, forward)
    supervisor = os.getpid()
    generation = 0
    while True:
        generation += 1
        server = subprocess.Popen(command, env={**os.environ, SERVER_GENERATION: str(generation)},
                                  preexec_fn=lambda: _end_with_parent(supervisor))
        if stop:  # came while this server was starting, after the last one had ended
            server.send_signal(stop[0])
        code = server.wait()
        if code != RECYCLE_EXIT or stop:
            break
        print(f"zoolens: server process {server.pid} ended to give its memory back; starting a fresh one",
              flush=True)
    if code < 0:  # ended by a signal: end so too
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    return code


def become_supervisor(command: list[str]) -> None:
    """Replace this process by a small supervisor (a fresh interpreter running `supervise` on ``command``).

    The process keeps its id, so whoever started it still holds it; its memory (the imports that read
    the command's options) is gone. Never returns.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", "dashboard.recycling", *command])


if __name__ == "__main__":
    sys.exit(supervise(sys.argv[1:]))
