"""Loading a project in the background while every page paints at once.

A served app listens before its data is read: `serve` starts a
`project.progress.ProjectLoad` once per process (`shared_load`), which builds the
`project.Project` in a thread of its own and records what it is doing in a
`project.progress.LoadProgress`. Each session's page first shows a
`LoadingView` (a progress bar with the stage, the file being read and its rows so
far) and swaps in the views when the load is done; a load that fails shows its
error and the reports of the files read before it, escaped, and the server keeps
running. After a load, `load_report_panel` tells the user what rows were skipped
and why (`data_loaders.base.LoadReport`): a sidebar card whose header is a warning
badge when rows were skipped, never a pop-up over the image.

The loading thread only writes the progress (under a lock) and sessions only read
snapshots of it from their own event loop, so no Panel object is ever touched from
the loading thread.
"""

from __future__ import annotations

import html
import os
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path

import panel as pn
import param
from panel.viewable import Viewer

from data_loaders.base import LoadReport
from project import Project
from project.progress import LoadProgress, LoadState, ProjectLoad

#: How often (milliseconds) a waiting page looks at the load's progress.
POLL_MILLISECONDS = 200


def shared_load(key: str, build: Callable[[LoadProgress], Project], title: str,
                forked: bool = False) -> ProjectLoad:
    """The load of ``build``, started once per server process and shared by every session.

    ``forked``: the server forks its worker processes after this (``num_procs``), and a thread
    does not survive a fork, so the load starts in each forked process instead of here.
    """
    def make() -> ProjectLoad:
        load = ProjectLoad(build, title)
        if not forked:
            return load.start()
        # Weakly held: a load nobody serves any more is not started by a later fork.
        reference = weakref.ref(load)
        os.register_at_fork(after_in_child=lambda: reference() is not None and reference().start())
        return load

    return pn.state.as_cached(f"zoolens-load-{key}", make)


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
        pn.pane.Alert("**The project could not be loaded.** The server is still running: correct what is "
                      "said below (a file, or the files and options given) and start zoolens again.",
                      alert_type="danger", width=760),
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


#: The load report card's margin: the sidebar's widgets' own (Panel's default), so its left edge lines up with theirs
#: (with a card's default it stood out past them).
SIDEBAR_MARGIN = (5, 10)

#: The load report's header when rows were skipped: a warning badge's amber, dark text.
WARNING_BACKGROUND, WARNING_TEXT = "#ffc107", "#212529"


def load_report_panel(reports: Sequence[LoadReport]) -> pn.Card:
    """A sidebar card: per file, rows read, loaded and skipped, skips by reason with example lines.

    When rows were skipped its header is a badge ("⚠ 3 warnings: rows skipped") that
    expands into the details: the warnings stay in the sidebar, out of the image's way.
    """
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
    if not total:
        return pn.Card(pn.pane.HTML(body, sizing_mode="stretch_width"), title="Load report: no rows skipped",
                       collapsed=True, sizing_mode="stretch_width", margin=SIDEBAR_MARGIN)
    warnings = sum(len(report.skipped) for report in reports)
    summary = html.escape(skipped_summary(reports))
    return pn.Card(pn.pane.HTML(f"<p>{summary}.</p>{body}", sizing_mode="stretch_width"),
                   title=f"⚠ {warnings:,} warning{'s' if warnings != 1 else ''}: {total:,} rows skipped",
                   collapsed=True, header_background=WARNING_BACKGROUND, header_color=WARNING_TEXT,
                   css_classes=["zoolens-load-warnings"], sizing_mode="stretch_width", margin=SIDEBAR_MARGIN)


#: How each consensus method's marks are named in the sidebar.
METHOD_MARKS = {"point": "clicks", "iou": "boxes", "lean": "boxes"}


def consensus_line(project) -> pn.pane.HTML:
    """One sidebar line saying where the consensus came from: which methods made it, or which file."""
    run = project.aggregation_run
    if run.get("methods"):
        made = " and ".join(f"<b>{html.escape(method)}</b> ({METHOD_MARKS.get(method, 'marks')})"
                            for method in run["methods"])
        text = f"Consensus made by {made}"
    elif "consensus" in project.sources:
        text = "Consensus read from " + html.escape(", ".join(path.name for path in project.sources["consensus"]))
    elif len(project.consensus):
        text = "Consensus given with the tables"
    else:
        text = "No consensus: the marks are shown alone"
    where = f" on {html.escape(run['where'])}" if run.get("where") else ""
    return pn.pane.HTML(f"<small>{text}{where}.</small>", sizing_mode="stretch_width", margin=(0, 10))
