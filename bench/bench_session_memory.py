"""Benchmark: does a served zoolens give back the memory of sessions that closed?

One server per allocator (CPython's default, and ``PYTHONMALLOC=malloc``), each in a fresh
interpreter serving the built-in demo on loopback with Bokeh's unused-session check shortened
(dropped 2 s after the last connection closed, checked every second). Each round opens
``--sessions`` Bokeh protocol clients (`tests.bokeh_protocol.Client`), switches subject three times
and filters once in each, closes them, and waits until the server has dropped every session and
`dashboard.memory` has collected and trimmed. Reported per round: the server's resident memory
with the sessions open and after they were dropped, and CPython's live allocated blocks (which
say whether the sessions' objects were freed, whatever the allocator keeps).

    python bench/bench_session_memory.py                    # 10 sessions, 4 rounds
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "session_memory.md"
sys.path.insert(0, str(HERE))

from bench_loaders import machine  # noqa: E402  (the sibling benchmark's machine description)

#: Runs in a fresh interpreter: serve the demo, run the rounds, print the measurements as JSON.
ROUNDS = """
import asyncio, json, sys, time
sys.path.insert(0, {root!r})
import requests
from dashboard.memory import RELEASE
from project import load_project
from tests.bokeh_protocol import Client
from tests.dashboard.serving import serving
from zoolens import demo

folder = demo.default_demo_folder()
files = demo.ensure_demo(folder)

def build(progress):
    return load_project([files.classifications, files.subjects, files.workflows], title="demo",
                        image_roots=[folder.resolve()], **demo.PROJECT_OPTIONS)

def rss():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024

async def round_of_sessions(url):
    clients = [Client(url, number) for number in range({sessions})]
    for client in clients:
        await client.open()
    for _ in range(3):
        for client in clients:
            await client.switch()
    for client in clients:
        await client.filter()
    errors = [error for client in clients for error in client.errors]
    for client in clients:
        await client.close()
    await asyncio.sleep(0.5)
    return errors

with serving(build, "bench-memory", "demo", unused_session_lifetime_milliseconds=2000,
             check_unused_sessions_milliseconds=1000) as running:
    while b"Loading" in requests.get(running.url + "/", timeout=120).content:
        time.sleep(1)
    sample = lambda: running.on_loop(lambda: (rss(), sys.getallocatedblocks(), len(running.bokeh_server.get_sessions("/"))))
    time.sleep(RELEASE.settle + 5)  # the page asked for above is dropped and collected too
    idle = sample()
    rounds = []
    for number in range({rounds}):
        errors = asyncio.run(round_of_sessions(running.url))
        opened = sample()
        released = RELEASE.releases
        deadline = time.monotonic() + 120
        while (running.bokeh_server.get_sessions("/") or RELEASE.releases == released) and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(1)
        rounds.append({{"open": opened, "closed": sample(), "errors": errors}})
print(json.dumps({{"idle": idle, "rounds": rounds}}))
"""


def run(sessions: int, rounds: int, malloc: bool) -> dict:
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    environment.pop("PYTHONMALLOC", None)
    if malloc:
        environment["PYTHONMALLOC"] = "malloc"
    done = subprocess.run([sys.executable, "-c", ROUNDS.format(root=str(ROOT), sessions=sessions, rounds=rounds)],
                          capture_output=True, text=True, cwd=ROOT, env=environment)
    if done.returncode:
        raise RuntimeError(f"the memory rounds failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def report(runs: dict, args, load_before, load_after) -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    lines = [
        f"## Memory of closed sessions at {commit} ({dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC)",
        "",
        f"Run on {machine()} by `python bench/bench_session_memory.py --sessions {args.sessions} --rounds {args.rounds}`; "
        f"load average {' / '.join(f'{value:.1f}' for value in load_before)} (1 / 5 / 15 min) at the start, "
        f"{' / '.join(f'{value:.1f}' for value in load_after)} at the end. The built-in demo; each round opens "
        f"{args.sessions} sessions, switches subject 3 times and filters once in each, closes them, and waits until "
        "the server has dropped them and `dashboard.memory` has collected and trimmed.",
        "",
        "| round | " + " | ".join(f"{name}: RSS open -> closed, MiB" for name in runs) + " | "
        + " | ".join(f"{name}: live blocks open -> closed (thousands)" for name in runs) + " |",
        "| --- | " + " | ".join("---:" for _ in range(2 * len(runs))) + " |",
        "| idle | " + " | ".join(f"{run['idle'][0]:,.0f}" for run in runs.values()) + " | "
        + " | ".join(f"{run['idle'][1] / 1000:,.0f}" if run["idle"][1] else "–" for run in runs.values()) + " |",
    ]
    for number in range(args.rounds):
        cells = [run["rounds"][number] for run in runs.values()]
        lines.append(f"| {number + 1} | " + " | ".join(f"{cell['open'][0]:,.0f} -> {cell['closed'][0]:,.0f}" for cell in cells)
                     + " | " + " | ".join(f"{cell['open'][1] / 1000:,.0f} -> {cell['closed'][1] / 1000:,.0f}"
                                          if cell["open"][1] else "–" for cell in cells) + " |")
    errors = {name: sum(len(cell["errors"]) for cell in run["rounds"]) for name, run in runs.items()}
    lines += ["", "Client errors: " + ", ".join(f"{name} {count}" for name, count in errors.items())
              + ". Live blocks: `sys.getallocatedblocks()`, which counts nothing under `PYTHONMALLOC=malloc`."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=10, help="sessions per round (default 10)")
    parser.add_argument("--rounds", type=int, default=4, help="rounds of sessions (default 4)")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where the Markdown result is appended")
    args = parser.parse_args()
    load_before = os.getloadavg()
    runs = {"pymalloc (default)": run(args.sessions, args.rounds, malloc=False),
            "PYTHONMALLOC=malloc": run(args.sessions, args.rounds, malloc=True)}
    text = report(runs, args, load_before, os.getloadavg())
    title = "" if args.output.exists() and args.output.stat().st_size else "# Memory of closed sessions\n"
    with args.output.open("a") as results:
        results.write(title + "\n" + text)
    print(text)


if __name__ == "__main__":
    main()
