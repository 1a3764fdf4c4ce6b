"""Profile: where a served subject switch's server CPU goes, with a real browser driving it.

`bench/profile_switch.py` sets the subject in one process; a served switch costs more (the browser
run of `bench/bench_latency.py` reads 2-3 times its CPU per switch): the click's or key's
messages, the table's selection event, Tornado and the websocket, the periodic review refresh.
Here the demo is served with its callbacks on the event loop (``--num-threads 0``, so that
cProfile, which follows one thread, sees them all), headless Chromium opens it and switches
``--switches`` times as `bench_latency.measure` does, and the server runs cProfile only while
those switches are served (started and stopped by signals). Printed: the server CPU per switch
and the functions with the most cumulative time.

    python bench/profile_served_switch.py --switches 30
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pstats
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from bench_latency import measure  # noqa: E402
from bench_sessions import free_port  # noqa: E402

#: The server: the demo under ``zoolens demo``, with cProfile switched on by SIGUSR1 and off (its
#: statistics written) by SIGUSR2; the handlers run on the main thread, the event loop's.
SERVE_PROFILED = """
import cProfile, runpy, signal, sys
sys.path.insert(0, {root!r})
profile = cProfile.Profile()
signal.signal(signal.SIGUSR1, lambda *_: profile.enable())

def stop(*_):
    profile.disable()
    profile.dump_stats({output!r})
    print("profile written", flush=True)

signal.signal(signal.SIGUSR2, stop)
sys.argv = ["zoolens", "demo", "--port", "{port}", "--num-threads", "0", "--reviews", {reviews!r}]
runpy.run_module("zoolens", run_name="__main__")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", type=Path, default=ROOT, help="the source tree served (default this one)")
    parser.add_argument("--switches", type=int, default=30, help="profiled switches (default 30)")
    parser.add_argument("--top", type=int, default=50, help="functions listed (default 50)")
    args = parser.parse_args()
    tree = args.tree.resolve()
    folder = Path(tempfile.mkdtemp(prefix="zoolens-profile-served-"))
    output, log, port = folder / "switches.prof", folder / "server.log", free_port()
    code = SERVE_PROFILED.format(root=str(tree), output=str(output), port=port, reviews=str(folder / "reviews.sqlite"))
    server = subprocess.Popen([sys.executable, "-c", code], cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)},
                              stdout=log.open("w"), stderr=subprocess.STDOUT)

    @contextlib.contextmanager
    def profiled():
        server.send_signal(signal.SIGUSR1)
        yield
        server.send_signal(signal.SIGUSR2)

    try:
        import requests

        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            with contextlib.suppress(requests.ConnectionError):
                if requests.get(f"http://127.0.0.1:{port}/", timeout=120).ok and "subjects," in log.read_text():
                    break
            time.sleep(1)
        result = measure(f"http://127.0.0.1:{port}/", server.pid, args.switches, while_switching=profiled)
        while time.monotonic() < deadline and "profile written" not in log.read_text():
            time.sleep(0.5)
    finally:
        server.terminate()
        server.wait(timeout=60)
    times = sorted(result["times"])
    print(f"## {tree}: {result['cpu_per_switch'] * 1000:.0f} ms server CPU per switch (under cProfile) over "
          f"{args.switches} switches; browser p50 {times[len(times) // 2] * 1000:.0f} ms\n")
    pstats.Stats(str(output)).sort_stats("cumulative").print_stats(args.top)


if __name__ == "__main__":
    main()
