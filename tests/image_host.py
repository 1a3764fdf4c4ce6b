"""A real HTTP image host on loopback, for the tests of fetched pictures (the store, thumbnails, the served page)."""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

#: A real Penguin Watch frame, downscaled (tests/data/SOURCES.md), served as every subject's picture.
PENGUIN = Path(__file__).resolve().parent / "data" / "penguin_watch" / "subjects" / "20860279_100x75.png"


class ImageHost:
    """A real HTTP server on loopback standing in for an image host: a PNG, oversized bodies, a redirect, a 404,
    and any ``/subject_location/<name>`` as the Zooniverse upload host serves subjects' pictures (the PNG).

    Parameters
    ----------
    picture : bytes, optional
        What ``/subject_location/<name>`` answers; default the small Penguin Watch PNG.
    delay : float
        Seconds every answer waits first, as a distant host's round trips do (the benchmark's); default none.

    ``hits`` counts the requests per path; ``most_at_once`` is the most requests it was answering at one time.
    Clearing ``answering`` (a `threading.Event`, set at first) holds every answer until it is set again, as a
    host that has stopped answering holds a request until its timeout.
    """

    def __init__(self, picture: bytes | None = None, delay: float = 0.0):
        png = PENGUIN.read_bytes()
        subject_picture = png if picture is None else picture
        big = b"\x89PNG\r\n\x1a\n" + bytes(2 * 1024 * 1024)
        self.hits = Counter()
        self.most_at_once = 0
        self.answering = threading.Event()
        self.answering.set()
        answering, lock = [0], threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (the http.server API)
                with lock:
                    server.hits[self.path] += 1
                    answering[0] += 1
                    server.most_at_once = max(server.most_at_once, answering[0])
                try:
                    self._answer()
                finally:
                    with lock:
                        answering[0] -= 1

            def _answer(self):
                server.answering.wait(timeout=60)
                time.sleep(delay)
                if self.path.startswith("/subject_location/"):
                    self._send(200, subject_picture, length=True)
                elif self.path == "/penguin.png":
                    self._send(200, png, length=True)
                elif self.path == "/big.png":
                    self._send(200, big, length=True)
                elif self.path == "/big-unannounced.png":
                    self._send(200, big, length=False)
                elif self.path == "/to-penguin":
                    self._redirect("/penguin.png")
                elif self.path == "/elsewhere":
                    self._redirect("http://images.example.org/penguin.png")
                else:
                    self._send(404, b"not here", length=True)

            def _send(self, status, body, length):
                self.send_response(status)
                self.send_header("Content-Type", "image/png")
                if length:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _redirect(self, location):
                self.send_response(302)
                self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.httpd.server_address[1]}"
        self.url = f"http://{self.host}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def closed_host() -> str:
    """``127.0.0.1:<port>`` of a loopback port nothing listens on: a host that cannot be reached."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"
