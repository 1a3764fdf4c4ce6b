"""A real Panel server on loopback serving a project, for server and browser tests."""

from __future__ import annotations

import concurrent.futures
import html
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

import panel as pn
import requests

from dashboard.app import serve
from project import load_project


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _listens(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


@dataclass
class Served:
    """A running server: its base URL and the Bokeh server behind it (for its sessions' documents)."""

    url: str
    bokeh_server: object

    def open_page(self, path: str = "/"):
        """GET a page, as a browser's first request does; the Bokeh document of the session it opened."""
        before = {session.id for session in self.bokeh_server.get_sessions("/")}
        page = requests.get(f"{self.url}{path}", timeout=60)
        page.raise_for_status()
        opened = [session for session in self.bokeh_server.get_sessions("/") if session.id not in before]
        assert len(opened) == 1, "the page should open exactly one session"
        return opened[0].document

    @contextmanager
    def connected_page(self):
        """A session held open by a Bokeh protocol client, which says the page is drawn as BokehJS does (a
        session only a plain GET opened has no browser: its onload work never runs); yields its document."""
        import asyncio

        from tests.bokeh_protocol import Client

        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        before = {session.id for session in self.bokeh_server.get_sessions("/")}
        client = Client(self.url, 0)
        try:
            asyncio.run_coroutine_threadsafe(client.connect(), loop).result(120)
            opened = [session for session in self.bokeh_server.get_sessions("/") if session.id not in before]
            assert len(opened) == 1, "the client should open exactly one session"
            yield opened[0].document
        finally:
            asyncio.run_coroutine_threadsafe(client.close(), loop).result(60)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)

    def on_loop(self, read):
        """``read()``'s result, called on the server's event loop, between the sessions' callbacks."""
        result = concurrent.futures.Future()

        def call():
            try:
                result.set_result(read())
            except BaseException as error:
                result.set_exception(error)

        self.bokeh_server.io_loop.add_callback(call)
        return result.result(timeout=30)

    def contents(self, document) -> tuple[set[str], str]:
        """What a session's page holds now: its model type names, and its text (HTML unescaped once).

        Read on the server's event loop, between the session's callbacks, so the
        document is never read half-changed.
        """
        def read():
            models = list(document.models)
            texts = [html.unescape(str(model.text)) for model in models if isinstance(getattr(model, "text", None), str)]
            return {type(model).__name__ for model in models}, "\n".join(texts)

        return self.on_loop(read)

    def wait_for(self, document, text: str, timeout: float = 60.0, model: str | None = None) -> tuple[set[str], str]:
        """The page's contents once its text holds ``text`` (and it has a ``model`` of that type name,
        when given): it changes on the server's own time, with worker threads one part after another."""
        deadline = time.monotonic() + timeout
        while True:
            types, page_text = self.contents(document)
            if text in page_text and (model is None or model in types):
                return types, page_text
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} never appeared; the page says:\n{page_text}")
            time.sleep(0.05)


#: Panel's process-wide settings that a server with a sign-in sets (`dashboard.app.serve`, and Panel's server from
#: its options). A test's server puts them back when it stops: a server still running in the process (the
#: session-wide demo) would otherwise ask its pages to sign in from then on.
SIGN_IN_SETTINGS = ("oauth_provider", "authorize_callback", "oauth_key", "oauth_secret", "oauth_extra_params",
                    "oauth_redirect_uri", "oauth_refresh_tokens", "oauth_optional", "oauth_guest_endpoints",
                    "oauth_jwt_user", "cookie_secret")


@contextmanager
def serving(build, key: str, title: str, timeout: float = 30.0, port: int | None = None, **serve_options):
    """Serve the project ``build(progress)`` makes, in a thread on ``port`` (default a free one;
    ``serve_options`` go to `dashboard.app.serve`); yields a `Served` once the server accepts connections."""
    settings = {name: getattr(pn.config, name) for name in SIGN_IN_SETTINGS}
    port = free_port() if port is None else port
    server = serve(key, build, title=title, port=port, address="127.0.0.1",
                   threaded=True, **serve_options)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        # Until it is registered and listens (asking for a page would build one, which takes seconds).
        while server.server_id not in pn.state._servers or not _listens(port):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the server on port {port} did not start in {timeout} s")
            time.sleep(0.1)
        yield Served(url, pn.state._servers[server.server_id][0])
    finally:
        server.stop()
        for name, value in settings.items():
            setattr(pn.config, name, value)


@contextmanager
def served(project, key: str, timeout: float = 30.0, port: int | None = None, **serve_options):
    """Serve ``project`` in a thread (``serve_options`` go to `dashboard.app.serve`); yields the base
    URL once the server accepts connections."""
    with serving(lambda progress: project, key, project.title, timeout, port,
                 **serve_options) as running:
        yield running.url


class PausedLoad:
    """A real `load_project` that holds after its first rows are read, until the test releases it.

    ``reached`` is set when the load holds; ``release`` lets it go on. The load
    pauses inside the classification loader's progress callback, so the pages
    show a real stage with a real row count while it holds.
    """

    def __init__(self, paths, **load_options):
        self.paths, self.load_options = paths, load_options
        self.reached, self.release = threading.Event(), threading.Event()

    def build(self, progress):
        return load_project(self.paths, progress=_Pausing(progress, self), **self.load_options)


class _Pausing:
    """Passes progress on; holds the loading thread at the first rows until released."""

    def __init__(self, progress, paused: PausedLoad):
        self._progress, self._paused = progress, paused

    def __getattr__(self, name):
        return getattr(self._progress, name)

    def rows(self, count: int) -> None:
        self._progress.rows(count)
        self._paused.reached.set()
        self._paused.release.wait(timeout=120)
