"""Fetch a project's exports from Zooniverse in the app, and load them into the session.

`FetchView` runs the same `zooniverse.exports.fetch_exports` as ``zoolens fetch`` in a
worker thread, so the server's event loop keeps serving every session while it signs in, waits
and downloads. The thread only puts progress events on a queue; the coroutine on the event loop
drains it and updates the widgets, because Bokeh models must not be changed from another thread.

The password lives only in its `PasswordInput` widget, never in a parameter (parameters can be
synced into the address, logged or serialised), and the widget is cleared as the fetch starts.
"""

from __future__ import annotations

import asyncio
import html
import logging
import queue
from pathlib import Path

import panel as pn
import param

from data_loaders.cache import cache_dir
from zooniverse.exports import (
    DEFAULT_GENERATE_TIMEOUT,
    DEFAULT_POLL_INTERVAL,
    EXPORT_TYPES,
    PRODUCTION_ENDPOINT,
    FetchProgress,
    FetchResult,
    fetch_exports,
)

from project import Project, load_project

from .base import View

#: Seconds between two looks at the worker thread's progress queue.
PROGRESS_INTERVAL = 0.1


def _size(count: float) -> str:
    """A byte count for people: 1.5 MB, 320 kB, 12 B."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count:.0f} B"


def describe_progress(event: FetchProgress) -> str:
    """One line of status for ``event``: the stage message, with size and rate while downloading."""
    if event.stage != "download":
        return event.message
    total = f" of {_size(event.bytes_total)}" if event.bytes_total else ""
    return (f"downloading {event.export_type}: {_size(event.bytes_done)}{total} "
            f"at {_size(event.bytes_per_second)}/s")


class FetchView(View):
    """A form that downloads a project's exports from Zooniverse and loads them as the session's project.

    ``data_store`` may be None (an app started without data); a successful fetch sets
    ``project``, which the app watches to show the fetched project.
    """

    short_name = "fetch"

    project_id = param.Integer(default=None, allow_None=True, bounds=(1, None), doc="The Zooniverse project id.")
    workflow_id = param.Integer(default=None, allow_None=True, bounds=(1, None),
                                doc="Keep only this workflow's classifications (exports can hold others).")
    exports = param.ListSelector(default=list(EXPORT_TYPES), objects=list(EXPORT_TYPES),
                                 doc="The exports to download.")
    generate = param.Boolean(default=False, doc="Ask Zooniverse for fresh exports and wait for them "
                                                "(one per kind per day; extra requests never finish).")
    timeout = param.Number(default=DEFAULT_GENERATE_TIMEOUT, bounds=(1, None),
                           doc="Seconds to wait for generated exports.")
    endpoint = param.String(default=PRODUCTION_ENDPOINT, doc="The Panoptes server (e.g. the staging server).")
    username = param.String(default="", doc="Zooniverse username; empty for an anonymous fetch.")
    out_dir = param.String(default=None, allow_None=True,
                           doc="Folder for the downloaded files; default 'zooniverse' in the zoolens cache folder.")
    poll_interval = param.Number(default=DEFAULT_POLL_INTERVAL, bounds=(0, None), precedence=-1,
                                 doc="Seconds between checks on a generated export.")
    running = param.Boolean(default=False, constant=True, doc="Output: a fetch is under way.")
    status = param.String(default="", constant=True, doc="Output: the latest progress or outcome, as text.")
    project = param.ClassSelector(class_=Project, default=None, allow_None=True, constant=True,
                                  doc="Output: the project loaded from the latest successful fetch.")

    def __init__(self, **params):
        super().__init__(**params)
        self.password = pn.widgets.PasswordInput(label="Password", placeholder="Zooniverse password", width=260)
        self.button = pn.widgets.Button(label="Fetch from Zooniverse", color="primary", width=260)
        self.button.on_click(self._on_click)
        self.progress = pn.indicators.Progress(value=0, max=100, active=False, visible=False, width=260)
        self.message = pn.pane.Alert("", alert_type="info", visible=False, width=260)

    async def _on_click(self, event) -> None:
        await self.fetch()

    async def fetch(self) -> FetchResult | None:
        """Fetch and load in a worker thread, showing progress; None when it failed.

        Failures (wrong credentials, an unknown project, a broken download) are shown in the
        view and as a notification, escaped, never raised.
        """
        password = self.password.value
        # Cleared at once: the thread keeps its own reference only until it returns.
        self.password.value = self.password.value_input = ""
        events: queue.SimpleQueue[FetchProgress] = queue.SimpleQueue()
        options = dict(
            project_id=self.project_id, workflow_id=self.workflow_id, exports=tuple(self.exports),
            generate=self.generate, timeout=self.timeout, endpoint=self.endpoint,
            username=self.username or None, password=password or None, poll_interval=self.poll_interval,
            out_dir=Path(self.out_dir) if self.out_dir else cache_dir() / "zooniverse",
            progress=events.put,
        )
        del password
        self.button.disabled = True
        self.progress.param.update(value=0, active=True, visible=True)
        self._show("", "info", visible=False)
        self._set(running=True, status="starting")
        try:
            if self.project_id is None:
                raise ValueError("enter the Zooniverse project id")
            worker = asyncio.ensure_future(asyncio.to_thread(_fetch_and_load, options))
            while not worker.done():
                await asyncio.wait({worker}, timeout=PROGRESS_INTERVAL)
                self._drain(events)
            self._drain(events)
            result, project = worker.result()
        except Exception as error:  # every failure is the user's to read, not a traceback
            logging.getLogger("zoolens").info("fetch from Zooniverse failed: %s", error)
            self._fail(f"{type(error).__name__}: {error}")
            return None
        finally:
            options.clear()
            self.button.disabled = False
            self.progress.active = False
            self._set(running=False)
        self._finish(result, project)
        return result

    def _drain(self, events: queue.SimpleQueue) -> None:
        """Show the events the worker thread queued since the last look.

        Every stage is shown, but of a run of download chunks only the last: a fast download
        still shows its size and rate, a slow one does not flood the browser.
        """
        pending = None
        while True:
            try:
                event = events.get_nowait()
            except queue.Empty:
                break
            if pending is not None and (pending.stage, pending.export_type) != (event.stage, event.export_type):
                self._show_progress(pending)
            pending = event
        if pending is not None:
            self._show_progress(pending)

    def _show_progress(self, event: FetchProgress) -> None:
        if event.stage == "download" and event.bytes_total:
            self.progress.value = min(100, round(100 * event.bytes_done / event.bytes_total))
        self._set(status=describe_progress(event))

    def _finish(self, result: FetchResult, project: Project | None) -> None:
        waiting = " ".join(pending.message for pending in result.pending.values())
        if project is None:
            self._fail(waiting or "no classification export was fetched, so there is nothing to load")
            return
        self.progress.value = 100
        summary = (f"Loaded {result.project_name or result.project_id}: {len(project.classifications)} "
                   f"classifications, {len(project.subjects)} subjects.")
        self._set(status=summary, project=project)
        self._show(f"{summary} {waiting}".strip(), "warning" if waiting else "success")

    def _fail(self, text: str) -> None:
        self._set(status=text)
        self._show(text, "danger")
        if pn.state.notifications is not None:
            pn.state.notifications.error(html.escape(text), duration=0)

    def _show(self, text: str, alert_type: str, visible: bool = True) -> None:
        # The text may quote the server (a project name, an error): escaped before Markdown renders it.
        self.message.param.update(object=html.escape(text), alert_type=alert_type, visible=visible)

    def _set(self, **outputs) -> None:
        with param.edit_constant(self):
            self.param.update(**outputs)

    def __panel__(self):
        return pn.Column(
            pn.pane.Markdown("### Fetch from Zooniverse\nDownloads the latest exports with your "
                             "Zooniverse account and opens them here. The password is sent to "
                             "Zooniverse only, never stored."),
            pn.Param(self, parameters=["project_id", "workflow_id", "exports", "generate", "timeout",
                                       "endpoint", "username"], show_name=False,
                     widgets={"exports": pn.widgets.CheckBoxGroup}),
            self.password, self.button, self.progress,
            pn.widgets.StaticText.from_param(self.param.status, name="Status"), self.message,
            width=290,
        )


def _fetch_and_load(options: dict) -> tuple[FetchResult, Project | None]:
    """In the worker thread: fetch, then read the files (parsing is slow too); no Panel here."""
    result = fetch_exports(**options)
    options.pop("password", None)
    paths = result.paths
    if "classifications" not in paths:
        return result, None
    title = f"{result.project_name or 'project'} (Zooniverse {result.project_id})"
    return result, load_project(list(paths.values()), workflow_id=options["workflow_id"], title=title)
