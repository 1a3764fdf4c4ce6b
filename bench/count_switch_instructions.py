"""Profile: the instructions a served subject switch costs the server, counted by callgrind (load-independent).

CPU seconds per switch (`bench/bench_latency.py`) move by 10-20 % with whatever else the two cores run, which
hides a change of a few milliseconds. Here each source tree's demo is served under valgrind's callgrind with
its instrumentation off while the project loads; headless Chromium opens the page and switches ``--switches``
times as `bench_latency.measure` does (key j and row click alternating), and the instrumentation is on only
while it switches. Printed per tree: the server's instructions per switch, which repeat within about 1 % from
run to run whatever the machine's load (the page's periodic review refresh falls in the window too, as served).
The server runs some 50 times slower under callgrind: about four minutes per tree.

    python bench/count_switch_instructions.py --tree /tmp/before .
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
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


def count(tree: Path, switches: int) -> tuple[float, int]:
    """Instructions per served switch of the demo from ``tree``, and the switches the page missed."""
    folder = Path(tempfile.mkdtemp(prefix="zoolens-instructions-"))
    port, log = free_port(), folder / "server.log"
    server = subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={folder}/callgrind.out",
         sys.executable, "-m", "zoolens", "demo", "--port", str(port), "--reviews", str(folder / "reviews.sqlite")],
        cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)}, stdout=log.open("w"), stderr=subprocess.STDOUT)

    @contextlib.contextmanager
    def instrumented():
        subprocess.run(["callgrind_control", "-i", "on", str(server.pid)], capture_output=True, check=True)
        yield
        subprocess.run(["callgrind_control", "-i", "off", str(server.pid)], capture_output=True, check=True)

    try:
        deadline = time.monotonic() + 900
        while "subjects," not in log.read_text():
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit(f"the demo under callgrind did not load:\n{log.read_text()[-3000:]}")
            time.sleep(2)
        result = measure(f"http://127.0.0.1:{port}/", server.pid, switches, while_switching=instrumented)
    finally:
        server.terminate()
        server.wait(timeout=120)
    # Valgrind's summary at exit: what was collected while the instrumentation was on.
    collected = re.search(r"Collected : (\d+)", log.read_text())
    if collected is None:
        raise SystemExit(f"callgrind reported nothing:\n{log.read_text()[-3000:]}")
    return int(collected.group(1)) / switches, result["missed"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trees", nargs="*", type=Path, default=[ROOT], help="source trees (default: this one)")
    parser.add_argument("--tree", dest="more", action="append", type=Path, default=[],
                        help="another source tree, counted before the positional ones")
    parser.add_argument("--switches", type=int, default=20, help="switches per tree (default 20)")
    args = parser.parse_args()
    for tree in [*args.more, *args.trees]:
        per_switch, missed = count(tree.resolve(), args.switches)
        print(f"{tree}: {per_switch / 1e6:.1f} M instructions per served switch ({args.switches} switches, "
              f"{missed} not shown in time)", flush=True)


if __name__ == "__main__":
    main()
