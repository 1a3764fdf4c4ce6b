"""Benchmark: what sessions no browser connects to cost a server whose project is still loading.

A plain GET of the page (a health check, a link preview, a load balancer's probe) makes a session
whose websocket never opens. While the project loads, each page shows the load's progress. For
each source tree, a server (`dashboard.app.serve`, in its own process on loopback) serves the
demo behind a load that first waits ``--wait`` seconds (a stand-in for a slow load that costs the
process no CPU of its own); once it answers, ``--gets`` more plain GETs are made, and the server
process's CPU seconds over the next ``--seconds`` seconds are measured. The trees run one after
the other in one invocation; the result is printed as a Markdown table.

    python bench/bench_unconnected_sessions.py --tree /tmp/before .   # an older checkout beside this one
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_loaders import machine  # noqa: E402
from bench_sessions import free_port, process_sample  # noqa: E402

#: Serves the demo after a load that waits first (run in a fresh interpreter with the tree on the path).
SERVE = """
import sys, time
sys.path.insert(0, {tree!r})
from dashboard.app import serve
from project import load_project
from zoolens import demo

def build(progress):
    time.sleep({wait})  # the load is slow, but costs this process nothing meanwhile
    folder = demo.default_demo_folder()
    files = demo.ensure_demo(folder)
    return load_project([files.classifications, files.subjects, files.workflows], title="demo",
                        image_roots=[folder.resolve()], **demo.PROJECT_OPTIONS)

serve("bench-unconnected", build, title="slow demo", port={port}, address="127.0.0.1")
"""


def measure(tree: Path, gets: int, seconds: float, wait: float) -> float:
    """The server CPU seconds in the ``seconds`` after ``gets`` plain GETs of a page still loading."""
    port = free_port()
    log = Path(tempfile.mkdtemp(prefix="zoolens-unconnected-")) / "server.log"
    server = subprocess.Popen([sys.executable, "-c", SERVE.format(tree=str(tree), port=port, wait=wait)],
                              cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)},
                              stdout=log.open("w"), stderr=subprocess.STDOUT)
    started = time.monotonic()
    try:
        while True:  # the first page answered is a plain GET too
            try:
                requests.get(f"http://127.0.0.1:{port}/", timeout=30).raise_for_status()
                break
            except requests.ConnectionError:
                pass
            if time.monotonic() - started > wait:
                raise TimeoutError(f"the server did not answer while its project loaded; see {log}")
            time.sleep(0.5)
        for _ in range(gets):
            requests.get(f"http://127.0.0.1:{port}/", timeout=30).raise_for_status()
        start = process_sample(server.pid)[1]
        time.sleep(seconds)
        used = process_sample(server.pid)[1] - start
        if time.monotonic() - started >= wait:  # the load's wait began as the process started
            raise RuntimeError(f"the load may have ended during the measurement: give a longer --wait than {wait} s")
        return used
    finally:
        server.kill()
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trees", nargs="*", type=Path, default=[HERE.parent], help="source trees (default: this one)")
    parser.add_argument("--tree", dest="more", action="append", type=Path, default=[],
                        help="another source tree, measured first (e.g. a checkout of main)")
    parser.add_argument("--gets", type=int, default=3, help="plain GETs after the first (default 3)")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds of CPU measured (default 10)")
    parser.add_argument("--wait", type=float, default=40.0, help="seconds the load waits (default 40)")
    args = parser.parse_args()
    print(f"Run {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC on {machine()}; load average before "
          f"{' / '.join(f'{value:.1f}' for value in os.getloadavg())}.\n")
    print(f"| tree | server CPU in the {args.seconds:.0f} s after {args.gets + 1} plain GETs, project loading |")
    print("| --- | ---: |")
    for tree in args.more + args.trees:
        print(f"| `{tree.resolve()}` | {measure(tree.resolve(), args.gets, args.seconds, args.wait):.2f} s |", flush=True)


if __name__ == "__main__":
    main()
