"""Benchmark: how long a subject switch takes under the reviewer's hand, in a real browser.

Headless Chromium (``/usr/bin/chromium``, driven by playwright) opens a served zoolens, then
switches subject ``--switches`` times (50 by default), alternating the two ways a reviewer
does: pressing ``j`` (next subject) and clicking the next row of the subject table. Each
switch is timed from the key press or click until the cutout's caption names the new subject
(the caption, the image and the boxes arrive in one update of the page). The server runs in
its own process, so its CPU time per switch is read from ``/proc``. Measured on the built-in
demo and on a simulated project of ``--subjects`` subjects (100,000 by default); the result
goes to ``bench/results/latency.md``, with the profile notes written by hand below the table.

    python bench/bench_latency.py
    python bench/bench_latency.py --subjects 0      # the demo only
    python bench/bench_latency.py --before /tmp/main  # a checkout of main measured in the same run, in turns
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import itertools
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "latency.md"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from bench_loaders import machine  # noqa: E402
from bench_sessions import free_port, process_sample, start_server  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CAPTION = re.compile(r"^Subject (\d+)$")
#: The server counts as idle when it used less CPU than this in 2 s.
IDLE_CPU_SECONDS = 0.1


def measure(url: str, server_pid: int, switches: int, while_switching=contextlib.nullcontext) -> dict:
    """Switch ``switches`` times in Chromium; the browser times and the server's CPU per switch.

    ``while_switching()``: a context entered around the timed switches (after the page opened and a first
    untimed switch), e.g. to profile the server only while it serves them.
    """
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox",
                                                                              "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        # The page's websocket traffic while switching: (direction, bytes) of each frame, counted once timing began.
        frames, counting = [], [False]

        def follow(socket):
            for direction, event in (("received", "framereceived"), ("sent", "framesent")):
                socket.on(event, lambda payload, direction=direction: counting[0] and frames.append(
                    (direction, len(payload))))

        page.on("websocket", follow)
        start = time.perf_counter()
        page.goto(url, wait_until="networkidle", timeout=300_000)
        heading = page.get_by_text(CAPTION)
        heading.first.wait_for(timeout=300_000)
        first_paint = time.perf_counter() - start
        # Untimed: the first switch waits until the page's key listener is live (it arrives after the caption).
        first_subject = heading.first.inner_text()
        for _ in range(60):
            heading.first.click()
            page.keyboard.press("j")
            page.wait_for_timeout(1000)
            if heading.first.inner_text() != first_subject:
                break
        missed = 0
        times, by_way = [], {"key j": [], "row click": []}
        # The subject table: the one with a disagreement column (its title is short, "Disagr.").
        subjects = page.locator(".tabulator").filter(has=page.locator(".tabulator-col[tabulator-field=disagreement]"))
        # The readiness polls' sessions (plain GETs no browser connected to) retry starting their periodic review
        # refresh on every tick of the server's loop until the server drops them, 15-30 s after: wait until the
        # server idles, so that the CPU counted is the switches' (the page's own refresh every 3 s stays in).
        settle_until = time.monotonic() + 90
        while time.monotonic() < settle_until:
            _, idle_from = process_sample(server_pid)
            page.wait_for_timeout(2000)
            if process_sample(server_pid)[1] - idle_from < IDLE_CPU_SECONDS:
                break
        switching = while_switching()
        switching.__enter__()
        _, cpu_before = process_sample(server_pid)
        counting[0] = True
        for number in range(switches):
            shown = heading.first.inner_text()
            if number % 2 == 0:
                way = "key j"
                heading.first.click()  # focus the page on plain text: a key typed into a text box moves nothing
                began = time.perf_counter()
                page.keyboard.press("j")
            else:
                way = "row click"
                # The row after the highlighted one (the current subject), on the subject table's page (the
                # review panel's box table above it has a highlighted row too: the picked box).
                rows = subjects.locator(".tabulator-row")
                index = next((position for position in range(rows.count())
                              if "tabulator-selected" in (rows.nth(position).get_attribute("class") or "")), -1)
                target = rows.nth((index + 1) % rows.count())
                target.scroll_into_view_if_needed()
                began = time.perf_counter()
                target.click()
            try:
                expect(heading.first).not_to_have_text(shown, timeout=60_000)
            except AssertionError:
                missed += 1  # counted and reported, not timed
                continue
            elapsed = time.perf_counter() - began
            times.append(elapsed)
            by_way[way].append(elapsed)
            page.wait_for_timeout(300)  # a reviewer's glance; lets the image land before the next switch
        _, cpu_after = process_sample(server_pid)
        counting[0] = False
        switching.__exit__(None, None, None)
        browser.close()
    received = [size for direction, size in frames if direction == "received"]
    return {"times": times, "by_way": by_way, "cpu_per_switch": (cpu_after - cpu_before) / switches,
            "first_paint": first_paint, "missed": missed, "frames_per_switch": len(received) / switches,
            "kilobytes_per_switch": sum(received) / 1024 / switches,
            "frames_sent_per_switch": (len(frames) - len(received)) / switches}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--switches", type=int, default=50, help="subject switches per project (default 50)")
    parser.add_argument("--subjects", type=int, default=100_000,
                        help="subjects of the simulated project (0: the demo only)")
    parser.add_argument("--threads", type=int, default=4, help="the server's worker threads (default 4)")
    parser.add_argument("--before", type=Path, default=None,
                        help="another source tree (e.g. a checkout of main) measured in the same run, before this "
                             "one on each project")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    load_before = os.getloadavg()
    rows = []
    trees = [("before", args.before.resolve()), ("this tree", ROOT)] if args.before else [("", ROOT)]
    for subjects, (label, tree) in itertools.product([None] + ([args.subjects] if args.subjects else []), trees):
        folder = Path(tempfile.mkdtemp(prefix="zoolens-bench-latency-"))
        port = free_port()
        server = start_server(port, args.threads, folder / "reviews.sqlite", subjects, folder / "server.log",
                              tree=tree)
        try:
            result = measure(f"http://127.0.0.1:{port}/", server.pid, args.switches)
        finally:
            server.terminate()
            server.wait(timeout=60)
        name = "built-in demo (60 subjects)" if subjects is None else f"simulated, {subjects:,} subjects"
        name += f", {label}" if label else ""
        ms = lambda values, q: f"{np.percentile(values, q) * 1000:,.0f}"  # noqa: E731
        rows.append(f"| {name} | {ms(result['times'], 50)} / {ms(result['times'], 95)} | "
                    f"{ms(result['by_way']['key j'], 50)} / {ms(result['by_way']['row click'], 50)} | "
                    f"{result['cpu_per_switch'] * 1000:,.0f} | {result['frames_per_switch']:.1f} / "
                    f"{result['frames_sent_per_switch']:.1f} | {result['kilobytes_per_switch']:,.1f} | "
                    f"{result['first_paint']:.1f} s | {result['missed']} |")
        print(rows[-1], flush=True)
    load_after = os.getloadavg()
    text = "\n".join([
        "# Subject switch under the hand: browser latency and server CPU",
        "",
        f"Run {dt.date.today().isoformat()} on {machine()} by `python bench/bench_latency.py --switches "
        f"{args.switches} --subjects {args.subjects} --threads {args.threads}"
        f"{' --before ' + str(args.before) if args.before else ''}`; headless Chromium at 1600x1000 "
        "and the server in its own process on loopback.",
        f"Load average {load_before[0]:.1f} / {load_before[1]:.1f} / {load_before[2]:.1f} at the start, "
        f"{load_after[0]:.1f} / {load_after[1]:.1f} / {load_after[2]:.1f} at the end (1 / 5 / 15 min, 2 cores "
        "shared with other engineers' work): these times are upper bounds.",
        "",
        f"| project | switch p50 / p95 ms ({args.switches}, key j and row click alternating) | p50 ms: key j / row click "
        "| server CPU ms per switch | websocket frames per switch: to the page / from it | kB to the page per switch "
        "| page open to first caption | switches not shown in 60 s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        *rows,
        "",
    ])
    args.output.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
