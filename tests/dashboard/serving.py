"""A real Panel server on loopback serving a project, for server and browser tests."""

from __future__ import annotations

import socket
import time
from contextlib import contextmanager

import requests

from dashboard.app import serve


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def served(project, key: str, timeout: float = 30.0):
    """Serve ``project`` in a thread; yields the base URL once the server answers."""
    port = free_port()
    server = serve(key, lambda: project, image_roots=project.image_roots, port=port, address="127.0.0.1",
                   threaded=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                requests.get(url, timeout=5)
                break
            except (requests.ConnectionError, requests.Timeout):  # a first session can take seconds to build
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield url
    finally:
        server.stop()
