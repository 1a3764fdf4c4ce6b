"""Loading a project in the background while every page paints at once.

A served app listens before its data is read: `serve` starts a `ProjectLoad` once
per process (`shared_load`), which builds the `Project` in a thread of its own and
records what it is doing in a `LoadProgress`. Each session's page first shows a
`LoadingView` (a progress bar with the stage, the file being read and its rows so
far) and swaps in the views when the load is done; a load that fails shows its
error and the reports of the files read before it, escaped, and the server keeps
running. After a load, `load_report_panel` tells the user what rows were skipped
and why (`data_loaders.base.LoadReport`).

The loading thread only writes the progress (under a lock) and sessions only read
snapshots of it from their own event loop, so no Panel object is ever touched from
the loading thread.
"""

from __future__ import annotations

import html
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import panel as pn
import param
from panel.viewable import Viewer

from data_loaders.base import LoadReport

from .data_store import Project

#: How often (milliseconds) a waiting page looks at the load's progress.
POLL_MILLISECONDS = 200

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

    `dashboard.data_store.load_project` calls `plan`, `stage`, `rows` and `report`
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


class ProjectLoad:
    """A project being built in a background thread, once, for every session of a server.

    Parameters
    ----------
    build : callable
        ``build(progress)`` makes the `Project`, reporting to ``progress`` (a
        `LoadProgress`) as it goes; `dashboard.data_store.load_project` takes it as
        its ``progress`` argument.
    title : str
        Names the project on the page while it loads.
    """

    def __init__(self, build: Callable[[LoadProgress], Project], title: str):
        self.title = title
        self.progress = LoadProgress()
        self.project: Project | None = None
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

    def failure_text(self) -> str:
        """The error, then the reports of the files read before it (plain text, not escaped)."""
        reports = self.progress.snapshot().reports
        lines = [f"{type(self.error).__name__}: {self.error}"]
        if reports:
            lines += ["", "Files read before the error:", *(report.summary() for report in reports)]
        return "\n".join(lines)


def shared_load(key: str, build: Callable[[LoadProgress], Project], title: str) -> ProjectLoad:
    """The load of ``build``, started once per server process and shared by every session."""
    return pn.state.as_cached(f"zoolens-load-{key}", lambda: ProjectLoad(build, title).start())


class LoadingView(Viewer):
    """A session's view of a running load: a progress bar, the current stage, the stages done."""

    load = param.ClassSelector(class_=ProjectLoad, constant=True, doc="The load to show.")
    state = param.ClassSelector(class_=LoadState, doc="The last snapshot of the load's progress shown.")

    def __init__(self, **params):
        super().__init__(**params)
        self._bar = pn.indicators.Progress(value=0, max=100, width=520, bar_color="primary")
        self.refresh()

    def refresh(self) -> None:
        """Show the load's progress now (call on the session's own thread)."""
        state = self.load.progress.snapshot()
        self.state = state
        self._bar.value = state.percent

    @param.depends("state")
    def _stages(self) -> pn.pane.HTML:
        state = self.state
        step = min(state.completed + 1, max(state.steps, 1))
        if state.stage:
            rows = f": {state.rows:,} rows read" if state.rows is not None else ""
            now = (f"<p class='zoolens-stage'>Step {step} of {state.steps}: "
                   f"{html.escape(state.stage)}{rows}…</p>")
        else:
            now = "<p class='zoolens-stage'>Starting…</p>" if not state.finished else "<p>Done.</p>"
        done = "".join(f"<li>✓ {html.escape(line)}</li>" for line in state.finished)
        return pn.pane.HTML(f"{now}<ul style='list-style: none; padding-left: 0'>{done}</ul>", width=520)

    def __panel__(self):
        return pn.Column(
            pn.pane.HTML(f"<h2>Loading {html.escape(self.load.title)}</h2>"
                         "<p>The page fills in when the project is ready.</p>"),
            self._bar, self._stages, margin=(20, 40),
        )


def failure_panel(load: ProjectLoad) -> pn.Column:
    """What a page shows when the load failed: an alert and the error with its report, escaped."""
    return pn.Column(
        pn.pane.Alert("**The project could not be loaded.** The server is still running: fix the file "
                      "named below and start zoolens again.", alert_type="danger", width=760),
        pn.pane.HTML(f"<pre class='zoolens-load-error' style='white-space: pre-wrap'>{html.escape(load.failure_text())}</pre>", width=760),
        margin=(20, 40),
    )


def skipped_summary(reports: Sequence[LoadReport]) -> str:
    """One line counting the rows the loaders skipped, by reason ("" if none were)."""
    by_reason: dict[str, int] = {}
    for report in reports:
        for reason, count in report.skipped.items():
            by_reason[reason] = by_reason.get(reason, 0) + count
    if not by_reason:
        return ""
    total = sum(by_reason.values())
    reasons = "; ".join(f"{count:,} {reason}" for reason, count in by_reason.items())
    return f"{total:,} rows skipped while loading ({reasons})"


def load_report_panel(reports: Sequence[LoadReport]) -> pn.Card:
    """A sidebar card: per file, rows read, loaded and skipped, skips by reason with example lines."""
    items = []
    for report in reports:
        reasons = "".join(
            f"<li>{count:,} {html.escape(reason)} (lines "
            f"{html.escape(', '.join(str(line) for line in report.skipped_lines.get(reason, [])[:10]))}"
            f"{' …' if count > 10 else ''})</li>"
            for reason, count in report.skipped.items())
        items.append(
            f"<p><b>{html.escape(Path(report.source).name)}</b> ({html.escape(report.format)}): "
            f"{report.rows_read:,} rows read, {report.rows_loaded:,} loaded, {report.rows_skipped:,} skipped</p>"
            + (f"<ul>{reasons}</ul>" if reasons else ""))
    body = "".join(items) or "<p>No files were read: the tables came from memory.</p>"
    total = sum(report.rows_skipped for report in reports)
    return pn.Card(pn.pane.HTML(body, sizing_mode="stretch_width"),
                   title=f"Load report: {total:,} rows skipped", collapsed=True, sizing_mode="stretch_width")
