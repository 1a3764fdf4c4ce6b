"""Start-up of the ``zoolens`` command: how long a user waits for a small answer.

Times whole ``zoolens`` processes on a small real export (`tests/data`): ``inspect``,
whose time is nearly all start-up and imports, and ``--help``. With ``--baseline DIR``
the same commands of another checkout run in the same session, interleaved run by run
so that both meet the same machine:

    git archive COMMIT | tar -x -C /tmp/base
    python bench/bench_startup.py --baseline /tmp/base

Writes bench/results/startup.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "startup.md"
SMALL_EXPORT = ROOT / "tests" / "data" / "discnet" / "many-tools-classifications.csv"
COMMANDS = {
    "zoolens inspect (13-row export)": ["inspect", str(SMALL_EXPORT)],
    "zoolens --help": ["--help"],
}

sys.path.insert(0, str(HERE))
from bench_loaders import machine  # noqa: E402


def run_once(code_root: Path, arguments: list[str], cache: Path) -> float:
    env = dict(os.environ, PYTHONPATH=str(code_root), ZOOLENS_CACHE_DIR=str(cache))
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "zoolens", *arguments], check=True, capture_output=True,
                   cwd=code_root, env=env)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=9, help="runs of each command; the median is shown")
    parser.add_argument("--baseline", type=Path, metavar="DIR", help="another checkout to time alongside")
    args = parser.parse_args()
    trees = {"this checkout": ROOT} | ({f"baseline `{args.baseline}`": args.baseline.resolve()}
                                      if args.baseline else {})
    cache = HERE / "work" / "startup-cache"
    cache.mkdir(parents=True, exist_ok=True)
    times = {(tree, command): [] for tree in trees for command in COMMANDS}
    for _ in range(args.repeats):
        for command, arguments in COMMANDS.items():
            for tree, root in trees.items():
                times[tree, command].append(run_once(root, arguments, cache))

    lines = [
        "# Start-up of the zoolens command",
        "",
        f"Run {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC on {machine()} by "
        f"`python bench/bench_startup.py --repeats {args.repeats}"
        + (" --baseline DIR" if args.baseline else "") + "`.",
        "Whole processes (interpreter start, imports, work), run alternately; the median and range of the runs.",
        "The export is read from the cache after the first run, as a user's second look at a file would be.",
        "",
        "| command | code | median s | range s |",
        "| --- | --- | ---: | ---: |",
    ]
    for command in COMMANDS:
        for tree in trees:
            runs = times[tree, command]
            lines.append(f"| {command} | {tree} | {statistics.median(runs):.2f} | "
                         f"{min(runs):.2f}-{max(runs):.2f} |")
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
