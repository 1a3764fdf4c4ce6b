"""The first visit to the Agreement tab in a fresh server process: how long a user waits after clicking it.

Real parts: a ``zoolens serve`` (or ``zoolens demo``) process on loopback, started afresh for every run, and
headless Chromium (playwright). A run waits until the project has loaded, then either until the server is idle
(its CPU time stops growing: any warm-up is over) or not at all (a user arriving while it runs), opens a page,
clicks the Agreement tab as soon as it is there, and times the click to every plot of the tab drawn (as many
Bokeh figures as the tab holds, with a size, then two animation frames); then a second session in another
browser context does the same. With ``--baseline DIR`` another checkout (main) runs alongside, interleaved run
by run so both meet the same machine:

    git archive main | tar -x -C /tmp/base
    python bench/bench_agreement_first_visit.py --baseline /tmp/base

A profile of the first visit (one fresh interpreter per checkout and project, no browser): the import of
datashader and HoloViews' datashader operations, the import of `datashader.composite` (whose array operators
numba compiles for four dtypes as it is imported; datashader's spread imports it), the warm-up where the checkout
has one, and the first and second rendering of a session's Agreement tab into a Bokeh document, with numba's
compilations recorded by function (its event API).

Writes bench/results/agreement_first_visit.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "agreement_first_visit.md"
CAT = ROOT.parent / "shared" / "data" / "aggregation_for_caesar"

sys.path.insert(0, str(HERE))
from bench_loaders import machine  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]

#: Bokeh figures drawn with a size, counted through every shadow root.
FIGURES_JS = """() => {
  let count = 0;
  const walk = (root) => {
    for (const element of root.querySelectorAll('*')) {
      if (String(element.className).split(' ').includes('bk-Figure')) {
        const box = element.getBoundingClientRect();
        if (box.width > 0 && box.height > 0) count += 1;
      }
      if (element.shadowRoot) walk(element.shadowRoot);
    }
  };
  walk(document);
  return count;
}"""

#: Two animation frames: what was laid out has been painted.
PAINTED_JS = "() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(() => done(true))))"


def projects(demo_folder: Path) -> dict[str, list[str]]:
    """The ``zoolens`` arguments serving each project."""
    return {
        "demo": ["demo", "--folder", str(demo_folder)],
        "cat project": ["serve", str(CAT / "cat-project-classifications.csv"), str(CAT / "cat-project-subjects.csv")],
    }


def expected_figures(arguments: list[str], demo_folder: Path) -> int:
    """How many plots the Agreement tab of the project ``arguments`` serve holds (the others stand as notes)."""
    from dashboard.data_store import DataStore
    from dashboard.views.agreement import AgreementPlots
    from project import load_project
    from zoolens import demo

    if arguments[0] == "demo":
        project = demo.load_demo(demo.ensure_demo(demo_folder))
    else:
        project = load_project(arguments[1:])
    plots = AgreementPlots(data_store=DataStore(project=project))
    return (0 if plots.marks_are_points() else 1) + 3 + plots.has_sky()


class Server:
    """A ``zoolens`` server process of source ``tree`` (no recycling supervisor: the measured process is the one
    started), its output followed for the line that says the project has loaded."""

    def __init__(self, tree: Path, arguments: list[str], work: Path):
        # Imported here, not by the profile's interpreter: bench_sessions puts this checkout first on the path.
        from bench_sessions import free_port

        self.port = free_port()
        environment = {**os.environ, "PYTHONPATH": str(tree), "ZOOLENS_CACHE_DIR": str(work / "cache"),
                       "PYTHONUNBUFFERED": "1"}
        reviews = Path(tempfile.mkdtemp(dir=work)) / "reviews.db"
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "zoolens", *arguments, "--port", str(self.port), "--recycle-idle", "0",
             "--reviews", str(reviews)], cwd=tree, env=environment, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.loaded = threading.Event()
        self.lines: list[str] = []
        threading.Thread(target=self._follow, daemon=True).start()

    def _follow(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip())
            if line.startswith("zoolens: ") and " subjects, " in line:
                self.loaded_at = time.perf_counter()
                self.loaded_after = self.loaded_at - self.started
                self.loaded.set()

    def wait_loaded(self) -> None:
        if not self.loaded.wait(300):
            raise RuntimeError("the project never loaded:\n" + "\n".join(self.lines))

    def sample(self) -> tuple[float, float]:
        """The server's resident memory (MiB) and CPU seconds."""
        from bench_sessions import process_sample

        return process_sample(self.process.pid)

    def cpu(self) -> float:
        return self.sample()[1]

    def wait_idle(self, quiet: float = 0.05, every: float = 1.0) -> None:
        """Until the server's CPU time grows by less than ``quiet`` seconds in ``every`` seconds."""
        before = self.cpu()
        while True:
            time.sleep(every)
            now = self.cpu()
            if now - before < quiet:
                return
            before = now

    def stop(self) -> None:
        from bench_sessions import stop_server

        stop_server(self.process)


def first_visit(browser, url: str, figures: int) -> tuple[float, float, float]:
    """A new session's page: seconds from asking for it to its tabs shown, from clicking the Agreement tab to its
    ``figures`` plots painted, and the moment (`time.perf_counter`) of the click."""
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    try:
        page = context.new_page()
        asked = time.perf_counter()
        page.goto(url)
        tab = page.locator(".bk-tab", has_text="Agreement")
        tab.wait_for(timeout=120_000)
        clicked = time.perf_counter()
        tab.click()
        page.wait_for_function(f"(n) => ({FIGURES_JS})() >= n", arg=figures, timeout=180_000, polling="raf")
        page.evaluate(PAINTED_JS)
        return clicked - asked, time.perf_counter() - clicked, clicked
    finally:
        context.close()


def run(browser, tree: Path, arguments: list[str], figures: int, during: bool, work: Path) -> dict:
    """One fresh server process: the first session's visit and a second session's."""
    server = Server(tree, arguments, work)
    try:
        server.wait_loaded()
        loaded_mib, loaded_cpu = server.sample()
        if not during:
            server.wait_idle()
        opened_mib, opened_cpu = server.sample()
        url = f"http://127.0.0.1:{server.port}/"
        page, first, clicked = first_visit(browser, url, figures)
        second = first_visit(browser, url, figures)[1]
        return {"loaded": server.loaded_after, "warm_cpu": opened_cpu - loaded_cpu,
                "warm_mib": opened_mib - loaded_mib, "page": page, "click": clicked - server.loaded_at,
                "first": first, "second": second}
    finally:
        server.stop()


def profile_child(arguments: list[str], demo_folder: str) -> None:
    """In a fresh interpreter of the checkout on PYTHONPATH: the first visit's parts, printed as JSON."""
    import numba.core.event as numba_event
    import panel as pn
    from bokeh.document import Document

    from dashboard.data_store import DataStore
    from dashboard.views.agreement import AgreementPlots
    from project import load_project
    from zoolens import demo

    project = (demo.load_demo(demo.ensure_demo(Path(demo_folder))) if arguments[0] == "demo"
               else load_project(arguments[1:]))
    timings = {}

    def timed(name, work):
        wall, cpu = time.perf_counter(), time.process_time()
        work()
        timings[name] = (time.perf_counter() - wall, time.process_time() - cpu)

    def render():
        pn.panel(AgreementPlots(data_store=DataStore(project=project))).get_root(Document())

    def compiling(name, work):
        """``work`` timed, and numba's top-level compilations in it by function: (seconds, count)."""
        recorder = numba_event.RecordingListener()
        numba_event.register("numba:compile", recorder)
        timed(name, work)
        numba_event.unregister("numba:compile", recorder)
        found, starts = {}, []
        for moment, event in recorder.buffer:
            if event.is_start:
                starts.append(moment)
                continue
            began = starts.pop()
            if not starts:  # top level: nested compilations are inside its time
                function = event.data["dispatcher"].py_func
                function_name = f"{function.__module__ or ''}.{function.__qualname__}".lstrip(".")
                total, count = found.get(function_name, (0.0, 0))
                found[function_name] = (total + moment - began, count + 1)
        compiled[name] = found

    compiled = {}
    timed("import datashader, holoviews.operation.datashader",
          lambda: __import__("holoviews.operation.datashader"))
    if importlib.util.find_spec("dashboard.views.density") is None:  # datashader's spread: its first use imports it
        timed("import datashader.composite (datashader's spread)", lambda: __import__("datashader.composite"))
    if hasattr(AgreementPlots, "warm_up"):  # what the server does once the project has loaded
        compiling("warm-up", lambda: AgreementPlots(data_store=DataStore(project=project)).warm_up())
    compiling("first render of a session's Agreement tab", render)
    timed("second render", render)
    print(json.dumps({"timings": timings, "compiled": compiled}))


def profile(tree: Path, arguments: list[str], demo_folder: Path, work: Path) -> dict:
    environment = {**os.environ, "PYTHONPATH": str(tree), "ZOOLENS_CACHE_DIR": str(work / "cache")}
    output = subprocess.run([sys.executable, __file__, "--profile-child", json.dumps(arguments), str(demo_folder)],
                            cwd=tree, env=environment, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="fresh server processes per project, code and case")
    parser.add_argument("--baseline", type=Path, metavar="DIR", help="another checkout (main) to time alongside")
    parser.add_argument("--profile-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.profile_child:
        return profile_child(json.loads(args.profile_child[0]), args.profile_child[1])
    from playwright.sync_api import sync_playwright

    trees = {"this checkout": ROOT} | ({"baseline": args.baseline.resolve()} if args.baseline else {})
    work = Path(tempfile.mkdtemp(prefix="zoolens-first-visit-"))
    demo_folder = work / "demo"
    served = projects(demo_folder)
    figures = {name: expected_figures(arguments, demo_folder) for name, arguments in served.items()}
    load_before = Path("/proc/loadavg").read_text().strip()
    started = dt.datetime.now(dt.timezone.utc)
    profiles = {(tree, name): profile(root, arguments, demo_folder, work)
                for name, arguments in served.items() for tree, root in trees.items()}
    cases = {"idle": False, "during warm-up": True}
    runs = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for repeat in range(args.repeats):
            for name, arguments in served.items():
                for case, during in cases.items():
                    for tree, root in trees.items():
                        result = run(browser, root, arguments, figures[name], during, work)
                        runs.setdefault((name, case, tree), []).append(result)
                        print(name, case, tree, {key: round(value, 2) for key, value in result.items()}, flush=True)
        browser.close()
    load_after = Path("/proc/loadavg").read_text().strip()

    def cell(values):
        return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"

    baseline = f" --baseline {args.baseline}" if args.baseline else ""
    lines = [
        "# First visit to the Agreement tab in a fresh server process",
        "",
        f"Run {started:%Y-%m-%d %H:%M} UTC on {machine()} by "
        f"`python bench/bench_agreement_first_visit.py --repeats {args.repeats}{baseline}`.",
        f"Load average (/proc/loadavg) before: `{load_before}`; after: `{load_after}`.",
        "",
        "## In the browser",
        "",
        "A fresh `zoolens` server process per run (`--recycle-idle 0`), headless Chromium. *idle*: the page opened "
        "once the server's CPU time had stopped growing after the load (any warm-up over); *during warm-up*: opened "
        "as soon as the load was reported. Seconds from clicking Agreement to every plot of the tab painted, in the "
        "first session and in a second one; median (range) of the runs, run alternately. *loaded* is seconds from "
        "the process start to the load's report line; *CPU after load* and *memory after load* the server's CPU "
        "seconds and resident memory (MiB) added from then until the page opened (the warm-up's, in the idle case); "
        "*page* seconds from asking for the first session's page to its tabs shown, *click* seconds from the load's "
        "report line to the first session's click on Agreement.",
        "",
        "| project | case | code | first session s | second session s | loaded s | CPU after load s "
        "| memory after load MiB | page s | click s |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in served:
        for case in cases:
            for tree in trees:
                results = runs[name, case, tree]
                lines.append(f"| {name} | {case} | {tree} | {cell([r['first'] for r in results])} | "
                             f"{cell([r['second'] for r in results])} | {cell([r['loaded'] for r in results])} | "
                             f"{cell([r['warm_cpu'] for r in results])} | "
                             f"{cell([r['warm_mib'] for r in results])} | {cell([r['page'] for r in results])} | "
                             f"{cell([r['click'] for r in results])} |")
    lines += ["", "## Profile of the first visit (no browser)", "",
              "A fresh interpreter per checkout and project renders a session's Agreement tab into a Bokeh document "
              "twice (what a session's tab switch does on the server). Wall (CPU) seconds; numba's compilations "
              "are the top-level ones, by function, wall seconds (their nested compilations inside).", ""]
    for (tree, name), result in profiles.items():
        lines += [f"### {name}, {tree}", "", "| part | wall s | CPU s |", "| --- | ---: | ---: |"]
        lines += [f"| {part} | {wall:.2f} | {cpu:.2f} |" for part, (wall, cpu) in result["timings"].items()]
        for part, found in result["compiled"].items():
            found = sorted(found.items(), key=lambda item: -item[1][0])
            lines += ["", f"numba compilations in the {part}: {sum(c for _, (t, c) in found)}, "
                          f"{sum(t for _, (t, c) in found):.2f} s", ""]
            if found:
                lines += ["| function | times | s |", "| --- | ---: | ---: |"]
                lines += [f"| `{function}` | {count} | {seconds:.2f} |" for function, (seconds, count) in found]
        lines.append("")
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
