"""A real Panel server on loopback serving a project, for server and browser tests."""

from __future__ import annotations

import socket
import time
from contextlib import contextmanager

from dashboard.app import serve


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def served(project, key: str, timeout: float = 30.0, **serve_options):
    """Serve ``project`` in a thread (``serve_options`` go to `dashboard.app.serve`); yields the base
    URL once the server accepts connections."""
    port = free_port()
    server = serve(key, lambda: project, image_roots=project.image_roots, port=port, address="127.0.0.1",
                   threaded=True, **serve_options)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            # The port accepting connections is enough: asking for the page would build a session
            # (seconds on a loaded machine) that no test uses.
            try:
                socket.create_connection(("127.0.0.1", port), timeout=5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield url
    finally:
        server.stop()
