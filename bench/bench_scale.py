"""Benchmark: a project of 1, 10 and 100 million marks, generated into the store and aggregated on Dask.

For each size, in fresh processes:

- **generate**: a Clump-Scout-like simulated project (`consensus.simulate.simulate_project`, realistic
  volunteers, about 40 marks per subject) made piece by piece (25,000 subjects at a time) straight
  into a partitioned store (`project.store.store_tables`), never whole in memory: at 100 million
  marks its CSV would be about 65 GB;
- **aggregate**: the consensus from the store's Dask tables on a `dask.distributed.LocalCluster` of
  worker processes (one thread each), written as partitioned Parquet; scored against the known
  truth (F1 at IoU >= 0.5, one-to-one per subject).
- **serve** (``--steps serve``): the project (its ``iou`` consensus made in memory) written into a
  project store (`project.stored.write_project_store`), then served twice on loopback, side by side:
  from the store (`project.stored.StoredProject`: marks on disk, read per subject, agreement plots
  rasterized from the Dask marks) and in memory (the same tables as a `project.Project`). A Bokeh
  protocol client (`tests/bokeh_protocol.py`) times the page's first paint (open to the first subject
  caption), subject switches ("Next"), the Agreement tab's first render and its re-render after a
  filter change; the server's peak memory and its time to load are measured too.

Reported per step: wall time, CPU seconds and peak resident memory of the whole process tree
(scheduler and workers included, sampled every 0.2 s), and marks per CPU second, whose staying flat
across sizes is what "cost growing linearly with marks" means.

    python bench/bench_scale.py --marks 1e6 1e7             # the default sizes
    python bench/bench_scale.py --marks 1e8 --method iou    # the 100-million-mark project
    python bench/bench_scale.py --marks 1e6 1e7 --steps serve   # serving from the store against memory
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import math
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE)]

from bench_consensus import score  # noqa: E402
from bench_loaders import WORK, machine  # noqa: E402

RESULTS = HERE / "results" / "scale.md"

#: The heading of the results file's hand-written notes, kept when a run rewrites the tables.
NOTES = "## Notes"
#: The heading of the serving table.
SERVING = "## Serving from the store and from memory"

#: Subjects simulated at a time: about a million marks, the most the generator holds at once.
PIECE_SUBJECTS = 25_000

#: Marks per subject of the simulated project (realistic volunteers, 2.2 clumps, 20 classifications).
MARKS_PER_SUBJECT = 40

GENERATE = """
import sys
import pandas as pd
from consensus.simulate import simulate_project
from project.store import store_tables

folder, n_subjects, piece = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
truths = []

def pieces():
    for number, first in enumerate(range(0, n_subjects, piece)):
        made = simulate_project(min(piece, n_subjects - first), seed=number, first_subject_id=10**8 + first,
                                first_classification_id=10**9 + first * 100)
        truths.append(made.truth[["subject_id", "truth_id", "x", "y", "width", "height"]]
                      .assign(truth_id=lambda t, n=number: t.truth_id + n * 10**7))
        # Mark ids unique across pieces, as one export's are.
        yield made.classifications, made.marks.drop(columns=["truth_id", "double"]).assign(
            mark_id=lambda m, n=number: m.mark_id + n * 10**9)

store = store_tables(pieces(), folder + "/store")
pd.concat(truths, ignore_index=True).to_parquet(folder + "/truth.parquet", index=False)
print(sum(len(pd.read_parquet(path, columns=["mark_id"])) for path in store.parts("marks")))
"""

AGGREGATE = """
import sys
from dask.distributed import Client, LocalCluster
from consensus import aggregate
from project.store import ProjectStore

folder, method, workers, memory_limit = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
if __name__ == "__main__":
    with LocalCluster(n_workers=workers, threads_per_worker=1, memory_limit=memory_limit,
                      dashboard_address=None, host="127.0.0.1") as cluster, Client(cluster):
        store = ProjectStore(folder + "/store")
        result = aggregate(store.dask("marks"), store.dask("classifications"), method=method)
        result.consensus.to_parquet(folder + "/consensus", write_index=False)
"""


BUILD = """
import sys
from consensus import aggregate
from project import Project
from project.store import ProjectStore
from project.stored import write_project_store

folder = sys.argv[1]
store = ProjectStore(folder + "/store")
classifications, marks = store.table("classifications"), store.table("marks")
result = aggregate(marks, classifications, method="iou")
project = Project(classifications, marks, consensus=result.consensus, links=result.links, title="simulated")
write_project_store(project, folder + "/project")
print(len(project.marks))
"""

#: Serves the project store ``argv[2]`` from the store (``argv[1]`` "store") or in memory ("memory").
SERVE = """
import sys
from dashboard.app import serve
from project import Project
from project.reviews import open_store
from project.stored import StoredProject, computed

kind, folder, port, reviews = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]

def build(progress):
    project = StoredProject(folder)
    if kind == "memory":
        own = [column for column in computed(project.marks.head(1)).columns
               if column not in ("consensus_id", "iou", "created_at", "size", "dx", "dy")]
        project = Project(project.classifications, computed(project.marks[own]),
                          subjects=project.subjects.drop(columns=["thumbnail"]),
                          consensus=project.consensus[project.consensus_columns], links=computed(project.links),
                          title=project.title)
    try:  # as `zoolens serve` does once its project is loaded (code from before it did not)
        from dashboard.memory import freeze_loaded
        try:
            freeze_loaded(project)
        except TypeError:  # code from before it pruned the project's tables
            freeze_loaded()
    except ImportError:
        pass
    print(f"loaded: {len(project.subject_stats):,} subjects,", flush=True)
    return project

serve("bench", build, title="simulated", port=port, address="127.0.0.1", num_threads=0, reviews=open_store(reviews))
"""


async def drive_session(url: str, switches: int, filters: int) -> dict:
    """One session's timings (seconds): first paint, each switch, the Agreement tab's first render and re-renders."""
    from dashboard.explorer import TABS
    from tests.bokeh_protocol import Client

    start = time.perf_counter()
    while True:
        client = Client(url, 0)
        try:
            await client.open()
            break
        except LookupError:  # the loading page: the server is finishing its load (its last steps after "loaded:")
            await client.close()
            if time.perf_counter() - start > 300:
                raise
            await asyncio.sleep(0.5)
    if "Subject " not in json.dumps(client.document):
        await client.wait_for("open", start, 0, lambda patch: "Subject " in patch)
    first_paint = time.perf_counter() - start
    for _ in range(switches):
        await client.switch()
    since, start = len(client.patches), time.perf_counter()
    await client._change(client.tabs, "active", TABS.index("Agreement"))
    await client.wait_for("tab", start, since, lambda patch: '"Image"' in patch)
    agreement = time.perf_counter() - start
    rerenders = []
    for value in [12, 15, 0, 18, 0][:filters]:
        since, start = len(client.patches), time.perf_counter()
        await client._change(client.min_volunteers, "value", value)
        if await client.wait_for("filter", start, since, lambda patch: '"image"' in patch):
            rerenders.append(time.perf_counter() - start)
    await client.close()
    return {"first_paint": first_paint, "switches": client.times["switch"], "agreement": agreement,
            "rerenders": rerenders, "errors": client.errors}


def serve_and_drive(kind: str, folder: Path, switches: int, filters: int, root: Path = ROOT) -> dict:
    """Serve the project store in ``folder`` (from the store or in memory) with the code in ``root`` (default: this
    checkout) and drive one session against it."""
    from bench_sessions import free_port
    from tests.bokeh_protocol import run_apart

    port, log = free_port(), folder / f"serve-{kind}{'' if root == ROOT else '-' + root.name}.log"
    started = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-c", SERVE, kind, str(folder / "project"), str(port),
                               str(folder / f"reviews-{kind}.sqlite")], cwd=root,
                              env=dict(os.environ, PYTHONPATH=str(root)), stdout=log.open("w"),
                              stderr=subprocess.STDOUT)
    sampler = TreeSampler(server.pid)
    try:
        while "loaded:" not in log.read_text():
            if server.poll() is not None or time.perf_counter() - started > 1800:
                raise RuntimeError(f"the {kind} server did not load:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        loaded = time.perf_counter() - started
        measured = run_apart(drive_session(f"http://127.0.0.1:{port}", switches, filters))
    finally:
        server.terminate()
        server.wait(timeout=60)
        tree = sampler.stop()
    return {**measured, "load": loaded, "peak_mib": tree["peak_mib"], "loadavg": os.getloadavg()[0]}


class TreeSampler:
    """Peak resident memory and CPU seconds of a process and all its descendants, sampled on a thread."""

    def __init__(self, pid: int, every: float = 0.2):
        self.root, self.every = psutil.Process(pid), every
        self.peak_bytes, self.cpu_by_pid = 0, {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                processes = [self.root, *self.root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            total = 0
            for process in processes:
                try:
                    total += process.memory_info().rss
                    times = process.cpu_times()
                    self.cpu_by_pid[process.pid] = times.user + times.system
                except psutil.NoSuchProcess:
                    pass
            self.peak_bytes = max(self.peak_bytes, total)
            time.sleep(self.every)

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join()
        return {"peak_mib": self.peak_bytes / 2**20, "cpu": sum(self.cpu_by_pid.values())}


def run_step(code: str, *args: str) -> dict:
    """Run one step in a fresh Python; wall, CPU and peak memory of its whole process tree, and its last line."""
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    sampler = TreeSampler(process.pid)
    out, err = process.communicate()
    measured = sampler.stop()
    if process.returncode != 0:
        raise RuntimeError(err[-3000:])
    # The children's CPU after their last sample is lost; the parent's own total is exact.
    measured["wall"] = time.perf_counter() - started
    measured["out"] = out.strip().splitlines()[-1] if out.strip() else ""
    measured["load"] = os.getloadavg()[0]
    return measured


def merged_with_earlier_runs(command: str, rows: list[str], earlier: str) -> tuple[list[str], list[str]]:
    """The results file's run list and one table's rows with this run's added: its rows replace those of the
    same size (to the nearest power of ten) and step, the others stay, ordered by size. ``earlier`` is the
    part of the file holding that table. (The file's ``## Notes``, written by hand after a run, are kept by
    `main`.)"""
    def key(row: str) -> tuple[int, str]:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        return round(math.log10(int(cells[0].replace(",", "")))), cells[2]

    runs, kept = [], {}
    for line in earlier.splitlines():
        if line.startswith("- `python bench/bench_scale.py"):
            runs.append(line)
        elif line.startswith("| ") and line[2].isdigit():
            kept[key(line)] = line
    kept.update({key(row): row for row in rows})
    return [*runs, f"- {command}"], [kept[k] for k in sorted(kept)]


def serve_rows(n_marks: int, n_subjects: int, folder: Path, switches: int, filters: int,
               build: bool = True) -> list[str]:
    """Build the project store (timed; unless ``build`` is false), then serve it from the store and in memory."""
    rows = []
    if build:
        built = run_step(BUILD, str(folder))
        rows.append(f"| {n_marks:,} | {n_subjects:,} | build in memory, write the project store | "
                    f"{built['wall']:.1f} s | | | | | {built['peak_mib']:,.0f} | {built['load']:.1f} |")
    for kind in ("store", "memory"):
        served = serve_and_drive(kind, folder, switches, filters)
        switch_ms = np.percentile(served["switches"], [50, 95]) * 1000 if served["switches"] else [np.nan] * 2
        rerender = max(served["rerenders"]) if served["rerenders"] else float("nan")
        errors = f" ({len(served['errors'])} errors: {served['errors'][0]})" if served["errors"] else ""
        rows.append(f"| {n_marks:,} | {n_subjects:,} | serve from {'the store' if kind == 'store' else 'memory'}"
                    f"{errors} | {served['load']:.1f} s | {served['first_paint']:.2f} s | {switch_ms[0]:,.0f} / "
                    f"{switch_ms[1]:,.0f} ms | {served['agreement']:.1f} s | {rerender:.1f} s | "
                    f"{served['peak_mib']:,.0f} | {served['loadavg']:.1f} |")
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--marks", type=float, nargs="+", default=[1e6, 1e7], help="project sizes, in marks")
    parser.add_argument("--method", default="auto", help="consensus method (default auto: lean for boxes)")
    parser.add_argument("--workers", type=int, default=2, help="Dask worker processes")
    parser.add_argument("--memory-limit", default="3GiB", help="memory limit per worker (Dask spills beyond it)")
    parser.add_argument("--steps", nargs="+", choices=("aggregate", "serve"), default=["aggregate"],
                        help="after generating: aggregate on Dask (default), serve from the store and in memory")
    parser.add_argument("--switches", type=int, default=30, help="subject switches timed per served project")
    parser.add_argument("--filters", type=int, default=3, help="agreement re-renders timed per served project")
    parser.add_argument("--keep", action="store_true", help="keep the generated stores in bench/work")
    parser.add_argument("--reuse", action="store_true",
                        help="with --steps serve: serve a kept run's stores again (generated and built before)")
    args = parser.parse_args()
    WORK.mkdir(exist_ok=True)
    started = dt.datetime.now(dt.timezone.utc)
    rows, served = [], []
    for marks in args.marks:
        n_subjects = max(1, int(marks) // MARKS_PER_SUBJECT)
        folder = WORK / f"scale-{int(marks)}"
        reused = args.reuse and (folder / "project" / "project.json").is_file()
        if reused:  # a kept run's stores served again: generating and building are not measured again
            n_marks = sum(len(pd.read_parquet(path, columns=["mark_id"]))
                          for path in sorted((folder / "store" / "marks").glob("part-*.parquet")))
            steps = []
        else:
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            generated = run_step(GENERATE, str(folder), str(n_subjects), str(PIECE_SUBJECTS))
            n_marks = int(generated["out"])
            steps = [("generate into the store", generated)]
        scores = {}
        if "aggregate" in args.steps:
            aggregated = run_step(AGGREGATE, str(folder), args.method, str(args.workers), args.memory_limit)
            consensus = pd.read_parquet(folder / "consensus", columns=["subject_id", "x", "y", "width", "height"])
            scores = score(consensus, pd.read_parquet(folder / "truth.parquet"))
            steps.append((f"aggregate ({args.method})", aggregated))
        for step, measured in steps:
            rows.append(f"| {n_marks:,} | {n_subjects:,} | {step} | {measured['wall']:.1f} | {measured['cpu']:.1f} | "
                        f"{n_marks / max(measured['cpu'], 1e-9):,.0f} | {measured['peak_mib']:,.0f} | "
                        + (f"{scores['f1']:.3f} | " if step.startswith("aggregate") else "| ")
                        + f"{measured['load']:.1f} |")
            print(rows[-1], flush=True)
        if "serve" in args.steps:
            served += serve_rows(n_marks, n_subjects, folder, args.switches, args.filters, build=not reused)
        if not args.keep:
            shutil.rmtree(folder)
    command = (f"`python bench/bench_scale.py --marks {' '.join(f'{m:g}' for m in args.marks)} --method "
               f"{args.method} --workers {args.workers} --memory-limit {args.memory_limit} --steps "
               f"{' '.join(args.steps)}{' --keep' if args.keep else ''}{' --reuse' if args.reuse else ''}` on {started:%Y-%m-%d %H:%M} UTC; {machine()}")
    text = RESULTS.read_text() if RESULTS.exists() else ""
    runs, rows = merged_with_earlier_runs(command, rows, text.split(SERVING)[0])
    _, served = merged_with_earlier_runs(command, served, text.split(SERVING)[1].split(NOTES)[0]
                                         if SERVING in text else "")
    lines = ["# A project past one machine's memory: generated into the store, aggregated on Dask, served "
             "(`bench/bench_scale.py`)", "",
             "Each run replaces the rows of its sizes and steps and keeps the others. Runs:", "", *runs, "",
             "Load: the 1-minute load average when each step ended (2 cores; other engineers' jobs shared "
             "them, so wall times are upper bounds). Memory and CPU: the whole process tree (the step's "
             "Python, the Dask scheduler and workers), sampled every 0.2 s. Marks per CPU second flat "
             "across sizes = cost linear in marks.", "",
             "| marks | subjects | step | wall s | CPU s | marks per CPU s | peak MiB (all processes) | F1 | load |",
             "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |", *rows, "",
             SERVING, "",
             "One session per server, driven over the Bokeh protocol on loopback (no browser drawing): load is "
             "the server's start to its project being ready; first paint is opening the page to the first "
             "subject's caption; switches are \"Next\" clicks to the next caption; the agreement render is "
             "opening the Agreement tab to its density images; re-render is a filter change (minimum "
             "volunteers) to new images, the slowest of the run's. Peak MiB: the server process.", "",
             "| marks | subjects | step | load / wall | first paint | switch p50 / p95 | agreement render | "
             "agreement re-render (max) | peak MiB | load |",
             "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |", *served, ""]
    notes = text[text.index(NOTES):] if NOTES in text else ""
    RESULTS.write_text("\n".join(lines) + ("\n" + notes if notes else ""))
    print(f"wrote {RESULTS}")
    print(json.dumps({"rows": len(rows), "served": len(served)}))


if __name__ == "__main__":
    main()
