"""Benchmark: the dashboard's server-side speed and memory at Clump Scout scale and beyond.

Measured in one run, each next to the alternative it was chosen over:

1. Building the shared `Project` from a simulated project of ``--subjects`` subjects
   (100,000 by default: about 2 million classifications, 3.5 million marks), in a fresh
   subprocess: wall time (and of the per-volunteer statistics, made on first use), and
   the resident memory of the process holding it.
2. Switching subject on the server: a session's `Explorer` with its cutout viewer
   rendered to Bokeh models, then ``data_store.subject = id`` for random subjects
   (new image, boxes and caption computed and the models updated), 50th and 95th
   percentile. Next to it, the lookup of one subject's marks by the binary-search
   index against a boolean mask over all marks.
3. Start-up of ``zoolens demo`` (demo files already generated), from launching the
   command: until the server listens, until headless Chromium first paints the page
   (the load's progress, as the demo loads in the background), and until it shows the
   subject table and the cutout; next to it, the same for the tree at the last commit
   that loaded the project before listening (`LOAD_THEN_LISTEN_COMMIT`, by ``git archive``).
4. Re-rendering an agreement plot over ``--plot-marks`` marks (10 million by default):
   HoloViews ``rasterize`` (the view's choice: numbers to the browser, colour mapped
   there) against ``datashade`` (colours baked into an RGB image on the server).

The consensus is the simulation's truth and the links its known mark -> clump
assignment: the dashboard's speed does not depend on which aggregator made them.

    python bench/bench_dashboard.py                  # everything
    python bench/bench_dashboard.py --only startup   # the start-up section alone
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "dashboard.md"
sys.path.insert(0, str(ROOT))

from bench_loaders import machine  # noqa: E402  (the sibling benchmark's machine description)

#: Runs in a fresh interpreter: build the project, report time and memory as JSON.
BUILD = textwrap.dedent("""
    import json, resource, sys, time
    sys.path.insert(0, {root!r})
    sys.path.insert(0, {here!r})
    from bench_dashboard import simulated_tables
    from project import Project
    tables = simulated_tables({subjects})
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    project = Project(**tables)
    seconds = time.perf_counter() - start
    start = time.perf_counter()
    project.volunteer_stats
    volunteer_seconds = time.perf_counter() - start
    tables = None
    import gc; gc.collect()
    with open("/proc/self/status") as status:
        rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))
    print(json.dumps({{"seconds": seconds, "volunteer_seconds": volunteer_seconds, "rss_mib": rss / 1024,
                      "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "marks": len(project.marks), "classifications": len(project.classifications),
                      "subjects": len(project.subject_stats)}}))
""")


def simulated_tables(n_subjects: int, seed: int = 0) -> dict:
    """Canonical tables of a simulated project, with its truth as the consensus."""
    import pandas as pd

    from consensus.simulate import simulate_project

    project = simulate_project(n_subjects, seed=seed)
    truth = project.truth
    votes = project.marks[project.marks.truth_id >= 0].groupby("truth_id").user.nunique()
    seen = project.classifications.groupby("subject_id").size()
    consensus = pd.DataFrame({
        "subject_id": truth.subject_id, "consensus_id": truth.truth_id, "x": truth.x, "y": truth.y,
        "width": truth.width, "height": truth.height, "angle": 0.0,
        "n_votes": votes.reindex(truth.truth_id, fill_value=0).to_numpy(),
        "n_seen": seen.reindex(truth.subject_id, fill_value=0).to_numpy(), "source": "simulation truth",
    })
    marks = project.marks
    links = pd.DataFrame({"mark_id": marks.mark_id, "consensus_id": marks.truth_id,
                          "iou": np.where(marks.truth_id >= 0, 0.7, 0.0)})
    return {"classifications": project.classifications, "marks": marks, "subjects": project.subjects,
            "consensus": consensus, "links": links}


def measure_build(n_subjects: int) -> dict:
    code = BUILD.format(root=str(ROOT), here=str(HERE), subjects=n_subjects)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure_switch(n_subjects: int, samples: int = 200) -> dict:
    """Subject switch in a rendered session, and the lookup alone by index and by mask."""
    from bokeh.document import Document

    from dashboard import Explorer
    from project import Project

    project = Project(**simulated_tables(n_subjects))
    explorer = Explorer(project)
    import panel as pn

    pn.panel(explorer.cutout).get_root(Document())
    rng = np.random.default_rng(1)
    subject_ids = rng.choice(project.subject_stats.subject_id.to_numpy(), samples, replace=False)
    switch = []
    for subject_id in subject_ids:
        start = time.perf_counter()
        explorer.data_store.subject = int(subject_id)
        switch.append(time.perf_counter() - start)
    by_index, by_mask = [], []
    marks = project.marks
    for subject_id in subject_ids[:50]:
        start = time.perf_counter()
        project.marks_of(int(subject_id))
        by_index.append(time.perf_counter() - start)
        start = time.perf_counter()
        marks[marks.subject_id == subject_id]
        by_mask.append(time.perf_counter() - start)
    milliseconds = lambda values, q: float(np.percentile(values, q) * 1000)  # noqa: E731
    return {"switch_p50": milliseconds(switch, 50), "switch_p95": milliseconds(switch, 95),
            "index_p50": milliseconds(by_index, 50), "mask_p50": milliseconds(by_mask, 50),
            "marks": len(marks)}


#: The last commit whose ``zoolens demo`` loaded the project before listening: the alternative.
LOAD_THEN_LISTEN_COMMIT = "9e5fe6c"


def load_then_listen_tree() -> Path:
    """A copy of the source tree at `LOAD_THEN_LISTEN_COMMIT` (``git archive``), in the temporary folder.

    Not under the checkout: pytest would collect the copy's tests.
    """
    import tempfile

    tree = Path(tempfile.gettempdir()) / f"zoolens-bench-{LOAD_THEN_LISTEN_COMMIT}"
    if not (tree / "zoolens").is_dir():
        tree.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", LOAD_THEN_LISTEN_COMMIT], cwd=ROOT, check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


def measure_first_paint(source: Path = ROOT) -> dict:
    """Seconds from starting ``zoolens demo`` (of the tree ``source``) to first paint and to the views.

    This tree's server listens at once and loads the demo in the background, so a
    page paints first with the load's progress (or, if the load won the race, with
    the views), and the views follow when the project is ready.
    """
    import socket

    from playwright.sync_api import sync_playwright

    from zoolens import demo

    folder = HERE / "work" / f"demo-{demo.DEMO_VERSION}"
    demo.ensure_demo(folder)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=arguments)
        page = browser.new_page(viewport={"width": 1500, "height": 950})
        start = time.perf_counter()
        server = subprocess.Popen([sys.executable, "-m", "zoolens", "demo", "--folder", str(folder),
                                   "--port", str(port)], cwd=source, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            while True:  # until the server listens
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.perf_counter() - start > 120:
                        raise
                    time.sleep(0.05)
            listening = time.perf_counter() - start
            page.goto(f"http://127.0.0.1:{port}/", wait_until="commit", timeout=120_000)
            views = page.get_by_text("60 of 60 subjects")
            page.locator("progress").or_(views).first.wait_for(timeout=120_000)
            first_paint = time.perf_counter() - start
            painted_progress = page.locator("progress").count() > 0 and views.count() == 0
            views.wait_for(timeout=120_000)
            page.locator("canvas").first.wait_for(timeout=120_000)
            return {"listening": listening, "first_paint": first_paint, "views": time.perf_counter() - start,
                    "first_paint_shows": "the load's progress" if painted_progress else "the views"}
        finally:
            server.terminate()
            server.wait(timeout=30)
            browser.close()


def measure_plots(n_marks: int, repeats: int = 5) -> dict:
    """One re-render of a density plot over ``n_marks`` points: rasterize against datashade."""
    import holoviews as hv
    import pandas as pd
    from holoviews.operation.datashader import datashade, rasterize

    rng = np.random.default_rng(2)
    points = hv.Points(pd.DataFrame({"size": rng.lognormal(2.8, 0.4, n_marks),
                                     "iou": rng.beta(5, 2, n_marks)}), kdims=["size", "iou"])
    timings = {}
    for name, operation in (("rasterize", rasterize), ("datashade", datashade)):
        operation(points, dynamic=False, width=360, height=270)  # compile once
        runs = []
        for repeat in range(repeats):
            # A zoom: a new range means a new aggregation, never a cached one.
            ranges = dict(x_range=(5.0 + repeat, 40.0), y_range=(0.0, 1.0 - repeat / 100))
            start = time.perf_counter()
            operation(points, dynamic=False, width=360, height=270, **ranges)
            runs.append(time.perf_counter() - start)
        timings[name] = float(np.median(runs))
    return timings


#: Starts the start-up section of the results, which ``--only startup`` rewrites alone.
STARTUP_HEADING = "## Start-up of `zoolens demo`"


def startup_section(repeats: int) -> list[str]:
    """The start-up measurements, this tree and the load-then-listen tree alternating; medians."""
    load_before = os.getloadavg()[0]
    before_tree = load_then_listen_tree()
    runs = [(measure_first_paint(), measure_first_paint(before_tree)) for _ in range(repeats)]
    load_after = os.getloadavg()[0]

    def median(which: int, key: str) -> float:
        return float(np.median([run[which][key] for run in runs]))

    shown = sorted({run[0]["first_paint_shows"] for run in runs})
    return [
        STARTUP_HEADING,
        "",
        f"Run {dt.date.today().isoformat()} on {machine()}, medians of {repeats} launches of each tree, "
        f"alternating; load average {load_before:.1f} at the start, {load_after:.1f} at the end (2 cores). "
        "Demo files already generated. The alternative is the tree at "
        f"{LOAD_THEN_LISTEN_COMMIT}, which loaded the project before listening.",
        "",
        "| from launching the command to | background load (this tree) | load, then listen |",
        "| --- | ---: | ---: |",
        f"| the server listening | {median(0, 'listening'):.1f} s | {median(1, 'listening'):.1f} s |",
        f"| first paint in Chromium (it showed {' / '.join(shown)}) | {median(0, 'first_paint'):.1f} s "
        f"| {median(1, 'first_paint'):.1f} s |",
        f"| subject table and cutout painted in Chromium | {median(0, 'views'):.1f} s "
        f"| {median(1, 'views'):.1f} s |",
        *([] if shown == ["the load's progress"] else [
            "",
            "Where the first paint showed the views, the demo's load was over before the browser had "
            "loaded the page's scripts and opened its session, so there was no progress to show; the "
            "progress page paints first on loads that outlast that.",
        ]),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subjects", type=int, default=100_000, help="subjects in the simulated project")
    parser.add_argument("--plot-marks", type=int, default=10_000_000, help="points in the plot benchmark")
    parser.add_argument("--startup-repeats", type=int, default=3, help="launches of each tree for the start-up")
    parser.add_argument("--only", choices=["all", "startup"], default="all",
                        help="'startup' measures only the start-up and rewrites only its section of the results")
    args = parser.parse_args()

    if args.only == "startup":
        kept = RESULTS.read_text().split(STARTUP_HEADING)[0].rstrip("\n").splitlines() if RESULTS.exists() else []
        lines = kept + [""] + startup_section(args.startup_repeats)
        RESULTS.write_text("\n".join(lines) + "\n")
        print("\n".join(lines))
        return

    load_before = os.getloadavg()[0]
    build = measure_build(args.subjects)
    switch = measure_switch(args.subjects)
    plots = measure_plots(args.plot_marks)
    load_after = os.getloadavg()[0]
    startup = startup_section(args.startup_repeats)
    lines = [
        "# Dashboard: server-side speed and memory",
        "",
        f"Run {dt.date.today().isoformat()} on {machine()} by `python bench/bench_dashboard.py"
        f" --subjects {args.subjects} --plot-marks {args.plot_marks}`.",
        f"Simulated project: {build['subjects']:,} subjects, {build['classifications']:,} classifications, "
        f"{build['marks']:,} marks (`consensus.simulate`, its truth as the consensus).",
        f"The machine is shared: load average {load_before:.1f} at the start, {load_after:.1f} at the end "
        "(2 cores), so these times are upper bounds.",
        "",
        "| measurement | zoolens | alternative |",
        "| --- | ---: | ---: |",
        f"| build the shared Project (fresh process) | {build['seconds']:.1f} s | |",
        f"| per-volunteer statistics, on first use (Volunteers tab) | {build['volunteer_seconds']:.1f} s | |",
        f"| resident memory holding it | {build['rss_mib']:,.0f} MiB (peak {build['peak_mib']:,.0f} MiB, "
        "simulation included) | |",
        f"| switch subject in a rendered session, p50 | {switch['switch_p50']:.0f} ms | |",
        f"| switch subject in a rendered session, p95 | {switch['switch_p95']:.0f} ms | |",
        f"| one subject's marks: binary-search index vs boolean mask, p50 | {switch['index_p50']:.2f} ms "
        f"| {switch['mask_p50']:.1f} ms |",
        f"| re-render a density plot of {args.plot_marks:,} marks: rasterize vs datashade | "
        f"{plots['rasterize']:.2f} s | {plots['datashade']:.2f} s |",
        "",
        *startup,
    ]
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
