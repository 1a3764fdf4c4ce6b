"""A project load's progress, and a load run once in a background thread.

`project.load_project` tells a `LoadProgress` each stage (the file being read, with
its rows as the loader reads them, the consensus, the statistics) and each file's
report; `ProjectLoad` runs a build in a thread of its own so a server can listen
before its data is read. The loading thread only writes the progress (under a lock);
readers take consistent `LoadState` snapshots from any thread. No Panel here: the
served app's pages show these (`dashboard.loading`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from data_loaders.base import LoadReport

LOADING, READY, FAILED = "loading", "ready", "failed"


@dataclass(frozen=True)
class LoadState:
    """A snapshot of a load's progress, safe to read on any thread.

    Attributes
    ----------
    completed, steps : int
        Stages finished, and stages planned (the plan can grow while loading).
    stage : str
        What the load is doing now ("" before it starts and once it is done).
    rows : int or None
        Rows the current stage has read so far, when its loader reports them.
    finished : tuple of str
        One line per finished stage, with its rows and seconds.
    reports : tuple of LoadReport
        Reports of the files read so far.
    """

    completed: int
    steps: int
    stage: str
    rows: int | None
    finished: tuple[str, ...]
    reports: tuple[LoadReport, ...]

    @property
    def percent(self) -> int:
        return int(100 * self.completed / self.steps) if self.steps else 0


class LoadProgress:
    """What a running load is doing; written by the loading thread, read by sessions.

    `project.load_project` calls `plan`, `stage`, `rows` and `report`
    as it goes; `snapshot` gives a consistent copy at any time.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._steps = 0
        self._completed = 0
        self._stage = ""
        self._rows: int | None = None
        self._started = 0.0
        self._finished: list[str] = []
        self._reports: list[LoadReport] = []

    def plan(self, more_steps: int) -> None:
        """Add ``more_steps`` stages to the plan."""
        with self._lock:
            self._steps += more_steps

    def stage(self, label: str) -> None:
        """Start a stage described by ``label``, finishing the current one."""
        with self._lock:
            self._close_stage()
            self._stage, self._rows, self._started = label, None, time.perf_counter()

    def rows(self, count: int) -> None:
        """The current stage has read ``count`` rows so far (a loader's progress callback)."""
        with self._lock:
            self._rows = int(count)

    def report(self, report: LoadReport) -> None:
        """Keep the report of a file just read."""
        with self._lock:
            self._reports.append(report)

    def finish(self) -> None:
        """Finish the last stage: the load is over."""
        with self._lock:
            self._close_stage()
            self._stage, self._rows = "", None

    def _close_stage(self) -> None:
        if not self._stage:
            return
        rows = f", {self._rows:,} rows" if self._rows is not None else ""
        self._finished.append(f"{self._stage}{rows} ({time.perf_counter() - self._started:.1f} s)")
        self._completed += 1
        self._steps = max(self._steps, self._completed)

    def snapshot(self) -> LoadState:
        with self._lock:
            return LoadState(self._completed, self._steps, self._stage, self._rows, tuple(self._finished),
                             tuple(self._reports))


#: Errors in what the user gave (a file's content, a missing file, an option): their messages say what and where,
#: and a Python type name before them says nothing more to the user.
INPUT_ERRORS = (ValueError, FileNotFoundError)


class ProjectLoad:
    """A project being built in a background thread, once, for every session of a server.

    Parameters
    ----------
    build : callable
        ``build(progress)`` makes the `project.Project`, reporting to ``progress`` (a
        `LoadProgress`) as it goes; `project.load_project` takes it as its
        ``progress`` argument.
    title : str
        Names the project on the page while it loads.
    """

    def __init__(self, build: Callable[[LoadProgress], object], title: str):
        self.title = title
        self.progress = LoadProgress()
        self.project = None
        self.error: BaseException | None = None
        self._build = build
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"zoolens-load-{title}", daemon=True)

    def start(self) -> ProjectLoad:
        """Start building (once); returns self."""
        if self._thread.ident is None:
            self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self.project = self._build(self.progress)
            plotted = getattr(self.project, "plotted", None)
            if plotted is not None:  # a store's agreement plots: their compiled code loaded before a session needs it
                plotted.load_kernels()
        except Exception as error:  # any failure is shown in the page; the server keeps running
            self.error = error
            logger = logging.getLogger("zoolens")
            if isinstance(error, (OSError, ValueError)):  # bad input (FormatError is a ValueError)
                logger.error("loading %s failed: %s", self.title, error)
            else:
                logger.error("loading %s failed", self.title, exc_info=error)
        finally:
            self.progress.finish()
            self._done.set()

    @property
    def status(self) -> str:
        """``"loading"``, ``"ready"`` or ``"failed"``."""
        if not self._done.is_set():
            return LOADING
        return READY if self.error is None else FAILED

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the load is over (or ``timeout`` seconds pass); whether it is over."""
        return self._done.wait(timeout)

    def error_text(self) -> str:
        """The error in a line (plain text, not escaped): only its message when it is about what the user gave
        (`INPUT_ERRORS`: the message names the file or option), else its type too."""
        if isinstance(self.error, INPUT_ERRORS):
            return str(self.error)
        return f"{type(self.error).__name__}: {self.error}"

    def failure_text(self) -> str:
        """The error, then the reports of the files read before it (plain text, not escaped)."""
        reports = self.progress.snapshot().reports
        lines = [self.error_text()]
        if reports:
            lines += ["", "Files read before the error:", *(report.summary() for report in reports)]
        return "\n".join(lines)


