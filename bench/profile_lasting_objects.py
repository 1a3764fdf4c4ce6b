"""Profile: which objects made during sessions outlive them, and how many of CPython's arenas they keep.

Serves the built-in demo in this process (as ``zoolens demo`` does: the project loaded, then frozen out of the
collector by `dashboard.memory.freeze_loaded`; a SQLite review store, 4 worker threads), with Bokeh's unused-session check
shortened. ``--untraced`` rounds run first; then, with `tracemalloc` started
(unless ``--no-trace``), ``--rounds`` more. A round is ``--sessions`` Bokeh protocol clients
(`tests.bokeh_protocol.Client`) that each open, switch subject, filter, decide and export, then close; the
round ends once the server has dropped its sessions and `dashboard.memory` has released them. Printed per
round: the RSS, pymalloc's arenas (1 MiB each) and bytes in live blocks (``sys._debugmallocstats``), and the
size classes whose 16 KiB pools grew most since idle; then the objects still alive that were allocated in the
traced rounds, grouped by where they were made (``--frames`` frames), most numerous first (those made by an
import apart), and the lasting blocks of the ``--size-class`` sizes by place. An arena goes back to the system
only when every block in it is free, so a few such objects scattered over the arenas the sessions took keep
them all.

    python bench/profile_lasting_objects.py --sessions 5 --rounds 2              # what lasts, by traceback
    python bench/profile_lasting_objects.py --sessions 10 --rounds 2 --no-trace  # arenas and RSS only
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import re
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


def malloc_stats() -> dict[str, int] | None:
    """pymalloc's arenas in use and bytes in live blocks, from ``sys._debugmallocstats`` (which writes to fd 2);
    None while tracemalloc runs (its hooks stand in front of pymalloc, and the function then prints nothing)."""
    with tempfile.TemporaryFile(mode="w+") as captured:
        saved = os.dup(2)
        sys.stderr.flush()
        os.dup2(captured.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        captured.seek(0)
        text = captured.read()
    found = {key: re.search(re.escape(label) + r"\s*=\s*([\d,]+)", text)
             for key, label in (("arenas", "# arenas allocated current"),
                                ("live_bytes", "# bytes in allocated blocks"))}
    if not all(found.values()):
        return None
    stats = {key: int(match.group(1).replace(",", "")) for key, match in found.items()}
    # Per size class: pools (16 KiB) in use and blocks in use.
    stats["classes"] = {int(size): (int(pools), int(blocks)) for size, pools, blocks in
                        re.findall(r"^\s+\d+\s+(\d+)\s+(\d+)\s+(\d+)\s+\d+\s*$", text, re.MULTILINE)}
    return stats


async def round_of_sessions(url: str, sessions: int) -> list[str]:
    from tests.bokeh_protocol import Client

    clients = [Client(url, number) for number in range(sessions)]
    for client in clients:
        await client.open()
    for client in clients:
        for action in (client.switch, client.switch, client.filter, client.decide, client.switch, client.export,
                       client.decide):
            await action()
    errors = [error for client in clients for error in client.errors]
    for client in clients:
        await client.close()
    await asyncio.sleep(0.5)
    return errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=5, help="sessions per round (default 5)")
    parser.add_argument("--untraced", type=int, default=0, help="untraced rounds before the traced ones (default 0)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds traced after the untraced ones (default 2)")
    parser.add_argument("--no-trace", action="store_true",
                        help="do not trace allocations: arenas and RSS only "
                             "(tracemalloc's own memory inflates the RSS)")
    parser.add_argument("--frames", type=int, default=12, help="frames kept per allocation (default 12)")
    parser.add_argument("--size-class", type=int, nargs="*", default=[64, 80],
                        help="pymalloc block sizes whose lasting blocks are listed by place (default 64 80)")
    parser.add_argument("--top", type=int, default=25, help="groups printed (default 25)")
    parser.add_argument("--shown-frames", type=int, default=12, help="frames printed per group (default 12)")
    args = parser.parse_args()

    import requests

    from dashboard.memory import RELEASE, freeze_loaded
    from project import load_project
    from project.reviews import open_store
    from tests.bokeh_protocol import run_apart
    from tests.dashboard.serving import serving
    from zoolens import demo

    folder = demo.default_demo_folder()
    files = demo.ensure_demo(folder)

    reviews = open_store(Path(tempfile.mkdtemp(prefix="zoolens-lasting-")) / "reviews.sqlite")

    def build(progress):
        project = load_project([files.classifications, files.subjects, files.workflows], title="demo",
                               image_roots=[folder.resolve()], **demo.PROJECT_OPTIONS)
        freeze_loaded(project)
        return project

    RELEASE.settle = 1.0
    measured = []  # pymalloc's figures, idle first
    with serving(build, "profile-lasting", "demo", reviews=reviews, num_threads=4,
                 unused_session_lifetime_milliseconds=1000, check_unused_sessions_milliseconds=500) as running:
        while b"Loading" in requests.get(running.url + "/", timeout=120).content:
            time.sleep(1)

        def closed_and_released(before: int) -> None:
            deadline = time.monotonic() + 120
            while ((running.bokeh_server.get_sessions("/") or RELEASE.releases == before)
                   and time.monotonic() < deadline):
                time.sleep(0.2)
            time.sleep(0.5)

        def measure(label: str) -> None:
            gc.collect()
            rss, stats = running.on_loop(lambda: (rss_mib(), malloc_stats()))
            pymalloc = ("(pymalloc's figures hidden by tracemalloc)" if stats is None else
                        f"arenas {stats['arenas']:4d}, live pymalloc bytes {stats['live_bytes'] / 1e6:6.1f} MB")
            print(f"{label:>20}: RSS {rss:4.0f} MiB, {pymalloc}", flush=True)
            if stats is not None and measured:
                # Where the arenas' pools went since idle: size classes whose pools grew more than their blocks.
                idle = measured[0]["classes"]
                grown = sorted(((pools - idle.get(size, (0, 0))[0], size, blocks - idle.get(size, (0, 0))[1])
                                for size, (pools, blocks) in stats["classes"].items()), reverse=True)
                print("    pools (blocks) more than idle, by block size: " + ", ".join(
                    f"{size} B: {pools:+d} ({blocks:+,d})" for pools, size, blocks in grown[:8]), flush=True)
            if stats is not None:
                measured.append(stats)

        def one_round(label: str) -> None:
            before = RELEASE.releases
            errors = run_apart(round_of_sessions(running.url, args.sessions))
            assert not errors, errors
            closed_and_released(before)
            measure(label)

        closed_and_released(RELEASE.releases)  # the page asked for above
        measure("idle")
        for number in range(args.untraced):
            one_round(f"untraced {number + 1} closed")
        modules_before = set(sys.modules)
        if not args.no_trace:
            tracemalloc.start(args.frames)
        for number in range(args.rounds):
            one_round(f"round {number + 1} closed")
        if args.no_trace:
            return
        gc.collect()
        snapshot = tracemalloc.take_snapshot()
        tracemalloc.stop()
        measure("tracing stopped")
    snapshot = snapshot.filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
    statistics = snapshot.statistics("traceback")
    total = sum(stat.count for stat in statistics)
    print(f"{total:,} blocks ({sum(stat.size for stat in statistics) / 1e6:.2f} MB) allocated in the traced rounds are "
          f"still alive, in {len(statistics):,} places; by file of the allocation:")
    for stat in snapshot.statistics("filename")[:20]:
        print(f"  {stat.count:7,} blocks {stat.size / 1e3:9,.1f} kB  {stat.traceback[0].filename}")
    imported = [stat for stat in statistics
                if any(frame.filename.startswith("<frozen importlib") for frame in stat.traceback)]
    print(f"made by an import (a module imported during the sessions): {sum(stat.count for stat in imported):,} "
          f"blocks, "
          f"{sum(stat.size for stat in imported) / 1e6:.2f} MB; the other places, most blocks first:")
    for stat in sorted(set(statistics) - set(imported), key=lambda stat: -stat.count)[:args.top]:
        print(f"\n{stat.count:,} blocks, {stat.size / 1e3:,.1f} kB:")
        for frame in list(stat.traceback)[-args.shown_frames:]:
            print(f"    {frame.filename}:{frame.lineno}")
    # pymalloc rounds a request up to a multiple of 16 bytes: which lasting blocks fall in the classes whose pools grew.
    by_class: dict[int, list] = {}
    for trace in snapshot.traces:
        if trace.size <= 512:
            by_class.setdefault(-(-trace.size // 16) * 16, []).append(trace)
    print("\nLasting small blocks by pymalloc size class:", ", ".join(
        f"{size} B: {len(traces):,}" for size, traces in sorted(by_class.items(), key=lambda item: -len(item[1]))[:10]))
    for size in args.size_class:
        places: dict = {}
        for trace in by_class.get(size, []):
            places[trace.traceback] = places.get(trace.traceback, 0) + 1
        print(f"\nThe {size} B blocks still alive, by place (most first):")
        for traceback, count in sorted(places.items(), key=lambda item: -item[1])[:args.top]:
            print(f"  {count:,} blocks:")
            for frame in list(traceback)[-args.shown_frames:]:
                print(f"    {frame.filename}:{frame.lineno}")
    print("\nThe modules imported during the traced rounds:", " ".join(sorted(set(sys.modules) - modules_before)))


if __name__ == "__main__":
    main()
