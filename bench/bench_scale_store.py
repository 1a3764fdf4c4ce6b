"""Benchmark: the cost curve of a project written part by part into its store, at 1, 10 and 100 million marks.

For each size, each step in a fresh process (wall time, CPU seconds and peak resident memory of its whole
process tree, sampled every 0.2 s, and the 1-minute load average when it ended):

- **write, streamed**: a simulated box project (`consensus.simulate.simulate_project`, realistic
  volunteers, 20 classifications and about 45 marks per subject: 100 million marks are 2.2 million
  subjects) generated piece by piece (`PIECE_SUBJECTS` subjects, about 450,000 marks) straight into a
  project store by `project.stored.write_project_parts`: each piece's ``iou`` consensus (the
  aggregate step, timed apart), its links and statistics, the volunteer statistics reduced over
  the pieces, and the agreement plots' density grids. The whole project is never in memory; every
  piece's progress is logged (`progress.jsonl`), so a run stopped early still says how far it got.
- **write, in memory** (``--in-memory``, where it fits): the same pieces concatenated into one
  `project.Project` (the ``iou`` consensus made in memory) and written with `write_project_store`.
- **subject reads**: 200 random subjects' marks and vertices read from the store (`ProjectStore.of_subject`),
  the per-subject read every subject switch makes, timed alone: it must not grow with the project.
- **serve** (from the store; ``--in-memory`` also from memory): one Bokeh-protocol session on
  loopback (`bench_scale.drive_session`): load, first paint, subject switches, the Agreement tab's
  first render, re-renders after filter changes (minimum volunteers 12, then 15: filtered views,
  read from the marks), back to 0 (the unfiltered view, drawn from the store's density grids), 18 (a filter
  leaving out the subjects that hold the plots' extremes) and 0 again.
  ``--before REVISION`` serves the store with that revision's code too, in the same run (its files taken with
  ``git archive`` into bench/work), after this code's server.
- **columns** (a store kept from before they were written with it): the agreement plots' flat per-mark columns
  (`project.plotted.write_plotted_columns`), density grids and binnings of every subject (whole, and split by
  volunteers per subject: `PlottedMarks.save_bucket_binnings`), written into the store.
- **agreement**: in one process, the agreement plots' grids for filtered views (minimum volunteers 12, 15, 18) and
  every subject, in the whole project's frame (`PlottedMarks.whole_ranges`, as the app shows them), from the kept binnings (`PlottedMarks.view`: the store's binning of every subject, whole or as a
  sum of its buckets of volunteers per subject, or the view before, plus or minus the subjects the filter changes), by one compiled pass over every shown mark, and by
  datashader handed the same memory-mapped columns (the kept marks gathered first); the three grids compared.
- **export**: the consensus catalogue of every subject from the store, streamed one range of subjects at a time
  (`project.export.write_catalogue`) and, below 100 million marks, prepared whole in memory then written; the two
  CSV files compared.

    python bench/bench_scale_store.py --marks 1e6 1e7 --in-memory     # the curve's first points, both paths
    python bench/bench_scale_store.py --marks 1e8                     # 100 million marks (about an hour or more)

Results go to the "curve" section of ``bench/results/scale.md`` (each run replaces the rows of the sizes and
steps it measured; ``--steps`` picks steps, ``--reuse`` measures a kept store again).
"""

from __future__ import annotations

import argparse
import datetime as dt
import filecmp
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE)]

from bench_loaders import WORK, machine  # noqa: E402
from bench_scale import RESULTS, drive_session, run_step, TreeSampler  # noqa: E402,F401
from project.plotted import BUCKETS_FILE, WHOLE_FILE  # noqa: E402

#: Subjects simulated and written at a time (one part of the store): about 450,000 marks.
PIECE_SUBJECTS = 10_000
#: Simulated marks per subject, about: 20 classifications of 2.75 clumps.
MARKS_PER_SUBJECT = 45
SIMULATION = dict(classifications_per_subject=20.0, clumps_per_subject_mean=2.75)

#: The steps of a run, in order.
STEPS = ("write", "columns", "agreement", "reads", "serve", "export")

#: The results file's section this bench writes (replaced by each run, rows of other sizes kept).
CURVE = "## The curve: written part by part, served from the store (`bench/bench_scale_store.py`)"

PIECES = """
import time
import numpy as np
from consensus.simulate import simulate_project

SIMULATION = {simulation!r}
simulated = [0.0]

def pieces(n_subjects, piece):
    for number, first in enumerate(range(0, n_subjects, piece)):
        started = time.process_time()
        made = simulate_project(min(piece, n_subjects - first), seed=number, first_subject_id=10**8 + first,
                                first_classification_id=10**9 + first * 100, **SIMULATION)
        # Mark ids unique across pieces, as one export's are.
        marks = made.marks.drop(columns=["truth_id", "double"])
        marks["mark_id"] += number * 10**9
        simulated[0] += time.process_time() - started
        yield {{"classifications": made.classifications, "marks": marks}}
"""

WRITE = PIECES + """
import json, sys, resource
import consensus
from project.stored import write_project_parts

folder, n_subjects, piece, log = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
aggregating = [0.0]
aggregate = consensus.aggregate

def timed_aggregate(*args, **kwargs):
    started = time.process_time()
    result = aggregate(*args, **kwargs)
    aggregating[0] += time.process_time() - started
    return result

consensus.aggregate = timed_aggregate  # write_project_parts imports it per call: the per-part consensus, timed
started = time.perf_counter()
with open(log, "w") as progress_log:
    def progress(number, marks, so_far):
        progress_log.write(json.dumps({{"part": number, "marks": so_far, "wall": time.perf_counter() - started,
                                       "cpu": time.process_time(), "aggregate_cpu": aggregating[0],
                                       "simulate_cpu": simulated[0],
                                       "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}) + "\\n")
        progress_log.flush()

    write_project_parts(pieces(n_subjects, piece), folder, method="iou", title="simulated", progress=progress)
print(json.dumps({{"aggregate_cpu": aggregating[0], "simulate_cpu": simulated[0]}}))
"""

IN_MEMORY = PIECES + """
import json, sys
import pandas as pd
from consensus import aggregate
from project import Project
from project.stored import write_project_store

folder, n_subjects, piece = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
made = list(pieces(n_subjects, piece))
classifications = pd.concat([part["classifications"] for part in made], ignore_index=True)
marks = pd.concat([part["marks"] for part in made], ignore_index=True)
del made
started = time.process_time()
result = aggregate(marks, classifications, method="iou")
aggregate_cpu = time.process_time() - started
project = Project(classifications, marks, consensus=result.consensus, links=result.links, title="simulated")
write_project_store(project, folder)
print(json.dumps({{"aggregate_cpu": aggregate_cpu, "simulate_cpu": simulated[0]}}))
"""

READS = """
import json, sys, time
import numpy as np
from project.store import ProjectStore

store = ProjectStore(sys.argv[1])
ids = store.index.index.to_numpy()
chosen = np.random.default_rng(0).choice(ids, size=min(200, len(ids)), replace=False)
times = []
for subject_id in chosen:
    started = time.perf_counter()
    marks = store.of_subject("marks", int(subject_id))
    store.of_subject("mark_vertices", int(subject_id))
    times.append(time.perf_counter() - started)
print(json.dumps({"p50": float(np.percentile(times, 50)), "p95": float(np.percentile(times, 95))}))
"""

COLUMNS = """
import json, sys
from project.plotted import PlottedMarks, write_plotted_columns
from project.stored import write_density_grids

plotted = PlottedMarks.of_store(sys.argv[1])
written = plotted is None
plotted = plotted or write_plotted_columns(sys.argv[1])
write_density_grids(sys.argv[1])
print(json.dumps({"marks": plotted.n_marks, "columns": written}))
"""

AGREEMENT = """
import json, sys, time
import numpy as np
import pandas as pd
import datashader
from project.plotted import PLOTS, PlottedMarks
from project.recent import RecentlyUsed
from project.stored import DENSITY_SHAPE, StoredProject

project = StoredProject(sys.argv[1])
plotted = project.plotted
stats = project.subject_stats
timings = {}
direct = PlottedMarks(sys.argv[1])  # the plotted columns alone (a second project would double the step's memory)
direct._kept, direct._whole, direct._buckets = RecentlyUsed(0), [], None  # no binning kept: one pass per view
direct.view(direct.subject_mask(stats.subject_id[:1]), shape=DENSITY_SHAPE)  # loads the compiled code: not timed
ranges, tool = plotted.whole_ranges, plotted.tools[0]
for name, volunteers, of_tool in (("min volunteers 12", 12, None), ("min volunteers 15", 15, None),
                                  ("min volunteers 18", 18, None), ("every subject", 0, None),
                                  (f"tool {tool}", 0, tool), (f"tool {tool}, min volunteers 15", 15, tool)):
    ids = stats.subject_id[stats.n_volunteers >= volunteers].to_numpy()
    started = time.perf_counter()
    mask = plotted.subject_mask(ids)
    view = plotted.view(mask, of_tool, shape=DENSITY_SHAPE, ranges=ranges)
    from_kept = time.perf_counter() - started
    # The same view by one pass over every mark it shows (the code before the kept binnings).
    started = time.perf_counter()
    passed = direct.view(direct.subject_mask(ids), of_tool, shape=DENSITY_SHAPE, ranges=ranges)
    compiled = time.perf_counter() - started
    # The alternative: datashader handed the same memory-mapped columns, the kept marks gathered by a mask over marks.
    started = time.perf_counter()
    matched = np.fromfile(plotted.folder / "matched.u1", dtype=np.uint8).astype(bool)
    kept = np.repeat(mask, np.diff(plotted.starts)) & matched
    if of_tool is not None:
        kept &= np.fromfile(plotted.folder / "tool.i2", dtype=np.int16) == plotted.tool_code(of_tool)
    counts = {}
    for plot, (x, y) in PLOTS.items():
        columns = {axis: np.memmap(plotted.folder / f"{axis}.f8", dtype=np.float64, mode="r")[kept] for axis in (x, y)}
        canvas = datashader.Canvas(plot_width=DENSITY_SHAPE[0], plot_height=DENSITY_SHAPE[1],
                                   x_range=ranges[plot][0], y_range=ranges[plot][1])
        counts[plot] = canvas.points(pd.DataFrame(columns), x, y).to_numpy()
        del columns
    handed = time.perf_counter() - started
    same = all(np.array_equal(counts[plot], view.grids[plot].counts)
               and np.array_equal(counts[plot], passed.grids[plot].counts) for plot in PLOTS)
    timings[name] = {"subjects": int(mask.sum()), "marks": view.n_marks, "kept": from_kept, "compiled": compiled,
                     "datashader": handed, "same": same}
print(json.dumps(timings))
"""

EXPORT = """
import json, sys, time
from project.export import write_catalogue
from project.selection import Selection
from project.stored import StoredProject

project = StoredProject(sys.argv[1])
if sys.argv[3] == "whole":
    # The catalogue prepared whole in memory, then written: what write_catalogue did before it streamed.
    from data_loaders.writers import write
    from project.export import prepare_catalogue

    files = write(prepare_catalogue(project, Selection(project=project)), sys.argv[2], overwrite=True)
else:
    files, export = write_catalogue(project, Selection(project=project), sys.argv[2], overwrite=True)
print(json.dumps({"rows": sum(1 for _ in open(files[0])) - 1}))
"""


def result_row(n_marks: int, n_subjects: int, step: str, measured: dict, extra: str = "") -> dict:
    return {"marks": n_marks, "subjects": n_subjects, "step": step, "wall": measured.get("wall"),
            "cpu": measured.get("cpu"), "peak_mib": measured.get("peak_mib"), "load": measured.get("load"),
            "extra": extra}


def serve(kind: str, folder: Path, switches: int, code: Path | None = None) -> dict:
    """Serve the store in ``folder`` (from the store, or its tables in memory) with the code in ``code`` (default:
    this checkout) and drive one session."""
    from bench_scale import serve_and_drive

    # serve_and_drive serves folder / "project".
    return serve_and_drive(kind, folder, switches, 5, *([code] if code else []))


def checkout(revision: str) -> Path:
    """The files of ``revision`` of this repository, in bench/work (made once): the code served side by side."""
    commit = subprocess.run(["git", "rev-parse", "--short", revision], cwd=ROOT, check=True, capture_output=True,
                            text=True).stdout.strip()
    target = WORK / f"code-{commit}"
    if not target.is_dir():
        target.mkdir(parents=True)
        archive = subprocess.run(["git", "archive", commit], cwd=ROOT, check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def run_size(marks: float, args, log) -> list[dict]:
    n_subjects = max(1, int(marks) // MARKS_PER_SUBJECT)
    folder = WORK / f"scale-store-{int(marks)}"
    store = folder / "project"
    rows = []
    if "write" in args.steps and not (args.reuse and (store / "project.json").is_file()):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        code = WRITE.format(simulation=SIMULATION)
        written = run_step(code, str(store), str(n_subjects), str(PIECE_SUBJECTS), str(folder / "progress.jsonl"))
        out = json.loads(written["out"])
        n_marks = json.loads((folder / "progress.jsonl").read_text().splitlines()[-1])["marks"]
        size = sum(path.stat().st_size for path in store.rglob("*") if path.is_file())
        rows.append(result_row(n_marks, n_subjects, "write, streamed (simulate + iou consensus + statistics + grids)",
                              written, f"aggregate {out['aggregate_cpu']:.0f} CPU s, simulate {out['simulate_cpu']:.0f} "
                                       f"CPU s; store {size / 2**30:.2f} GiB"))
        log(rows[-1])
    has_binnings = all((store / "plotted" / name).is_file() for name in (WHOLE_FILE, BUCKETS_FILE))
    if "columns" in args.steps and not (has_binnings and "tool_counts" in np.load(store / "plotted" / WHOLE_FILE)):
        # A store kept from before the plotted columns (or their binnings of every subject, per tool) were written.
        added = run_step(COLUMNS, str(store))
        out = json.loads(added["out"])
        what = "plotted columns and density grids" if out["columns"] else \
            "density grids and every subject's binning, whole (any tool, each tool) and by volunteers per subject"
        rows.append(result_row(out["marks"], n_subjects, f"{what}, written into a kept store", added,
                              "one pass over the stored marks" if out["columns"]
                              else "passes over the plotted columns: any tool, each tool, by buckets"))
        log(rows[-1])
    n_marks = sum(pd.read_parquet(path, columns=["subject_id"]).shape[0] for path in sorted((store / "marks").glob("*.parquet")))
    if args.in_memory and "write" in args.steps:
        built = run_step(IN_MEMORY.format(simulation=SIMULATION), str(folder / "memory"), str(n_subjects),
                         str(PIECE_SUBJECTS))
        out = json.loads(built["out"])
        rows.append(result_row(n_marks, n_subjects, "write, in memory (simulate + iou consensus + Project + store)",
                              built, f"aggregate {out['aggregate_cpu']:.0f} CPU s, simulate {out['simulate_cpu']:.0f} CPU s"))
        log(rows[-1])
        shutil.rmtree(folder / "memory", ignore_errors=True)
    if "agreement" in args.steps:
        # In one process, side by side: the compiled pass over the plotted columns, and datashader handed the same
        # memory-mapped columns (the kept marks gathered first); the first includes the compiled code's loading.
        measured = run_step(AGREEMENT, str(store))
        timings = json.loads(measured["out"])
        for number, (name, timing) in enumerate(timings.items()):
            rows.append(result_row(n_marks, n_subjects, f"agreement grids of {name} ({timing['subjects']:,} subjects)",
                                  {"load": measured["load"],
                                   "peak_mib": measured["peak_mib"] if number == len(timings) - 1 else None},
                                  f"from the kept and bucket binnings {timing['kept'] * 1000:,.0f} ms; one compiled pass "
                                  f"{timing['compiled'] * 1000:,.0f} ms; datashader on the same columns "
                                  f"{timing['datashader'] * 1000:,.0f} ms; the three equal: {timing['same']}"))
            log(rows[-1])
    if "reads" in args.steps:
        reads = run_step(READS, str(store))
        out = json.loads(reads["out"])
        rows.append(result_row(n_marks, n_subjects, "subject reads from the store (200 random subjects)", reads,
                              f"p50 {out['p50'] * 1000:.1f} ms, p95 {out['p95'] * 1000:.1f} ms per subject"))
        log(rows[-1])
    servers = [(kind, None) for kind in (("store", "memory") if args.in_memory else ("store",))]
    # With --before: the store served by that revision's code too, after this code's server (its reads then find
    # the store's pages cached: any advantage goes to the code before).
    servers += [("store", checkout(args.before))] if args.before else []
    for kind, code in servers if "serve" in args.steps else ():
        served = serve(kind, folder, args.switches, code)
        switch = np.percentile(served["switches"], [50, 95]) * 1000 if served["switches"] else [np.nan] * 2
        rerenders = [f"{value:.1f}" for value in served["rerenders"]]
        commit = code.name.removeprefix("code-") if code else ""
        where = ("the store" if kind == "store" else "memory") + (
            f", the code of {args.before}" + (f" ({commit})" if commit != args.before else "") if code else "")
        rows.append(result_row(n_marks, n_subjects, f"serve from {where}",
                              {"wall": served["load"], "peak_mib": served["peak_mib"], "load": served["loadavg"]},
                              f"first paint {served['first_paint']:.2f} s; switch p50 {switch[0]:,.0f} / p95 "
                              f"{switch[1]:,.0f} ms; agreement {served['agreement']:.1f} s; re-renders (min volunteers "
                              f"12, 15, 0 = unfiltered, 18, 0) {' / '.join(rerenders)} s"
                              + (f"; {len(served['errors'])} errors: {served['errors'][0]}" if served["errors"] else "")))
        log(rows[-1])
    # Side by side where the whole catalogue fits (at 100 million marks it peaked at 7.8 GB: streamed only).
    for how in (("streamed", "whole") if marks < 1e8 else ("streamed",)) if "export" in args.steps else ():
        exported = run_step(EXPORT, str(store), str(folder / f"catalogue-{how}.csv"), how)
        extra = f"{json.loads(exported['out'])['rows']:,} rows"
        if how == "whole":
            same = filecmp.cmp(folder / "catalogue-streamed.csv", folder / "catalogue-whole.csv", shallow=False)
            extra += f"; the same CSV as streamed: {same}"
        rows.append(result_row(n_marks, n_subjects, f"export the consensus catalogue from the store, {how}", exported,
                              extra))
        log(rows[-1])
    if not args.keep:
        shutil.rmtree(folder)
    return rows


def table_line(row: dict) -> str:
    def number(value, form):
        return "" if value is None else format(value, form)

    # Per mark only where the step's work is over every mark (writing, exporting), not per subject read.
    cpu_rate = f"{row['marks'] / row['cpu']:,.0f}" if row.get("cpu") and row["step"].startswith(("write", "export")) else ""
    return (f"| {row['marks']:,} | {row['subjects']:,} | {row['step']} | {number(row['wall'], '.1f')} | "
            f"{number(row['cpu'], '.1f')} | {cpu_rate} | {number(row['peak_mib'], ',.0f')} | "
            f"{number(row['load'], '.1f')} | {row['extra']} |")


def write_results(command: str, rows: list[dict]) -> None:
    """Put this run's rows in the curve section of the results file (rows of other sizes kept)."""
    text = RESULTS.read_text() if RESULTS.exists() else ""
    notes = text.index("## Notes") if "## Notes" in text else len(text)
    head, tail = text[:notes], text[notes:]
    kept_runs, kept_rows = [], []
    if CURVE in head:
        head, section = head.split(CURVE)
        measured = {(round(np.log10(row["marks"])), row["step"]) for row in rows}
        for line in section.splitlines():
            if line.startswith("- `python bench/bench_scale_store.py") and line != f"- {command}":
                kept_runs.append(line)
            elif line.startswith("| ") and line[2].isdigit():
                cells = [cell.strip() for cell in line.strip("|").split("|")]
                if (round(np.log10(int(cells[0].replace(",", "")))), cells[2]) not in measured:
                    kept_rows.append(line)
    lines = [CURVE, "", "Runs:", "", *kept_runs, f"- {command}", "",
             "Each step in a fresh process; wall time, CPU seconds (the step's whole process tree: a lower bound "
             "on a loaded machine, where wall time is not), peak resident memory of the whole tree (for serving: "
             "the server), and the 1-minute load average when the step ended (2 cores shared with other "
             "engineers' jobs). Marks per CPU second flat across sizes = cost linear in marks.", "",
             "| marks | subjects | step | wall s | CPU s | marks per CPU s | peak MiB | load | what else |",
             "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |",
             *sorted(kept_rows + [table_line(row) for row in rows],
                     key=lambda line: int(line.strip("|").split("|")[0].strip().replace(",", ""))), "", ""]
    RESULTS.write_text(head.rstrip("\n") + "\n\n" + "\n".join(lines) + tail)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--marks", type=float, nargs="+", default=[1e6, 1e7], help="project sizes, in marks")
    parser.add_argument("--in-memory", action="store_true", help="also build and serve the project in memory")
    parser.add_argument("--switches", type=int, default=30, help="subject switches timed per served project")
    parser.add_argument("--keep", action="store_true", help="keep the stores in bench/work")
    parser.add_argument("--steps", nargs="+", default=list(STEPS), choices=STEPS,
                        help="steps to run (a kept store is measured again with --reuse)")
    parser.add_argument("--reuse", action="store_true", help="measure a kept store again, without writing it")
    parser.add_argument("--before", metavar="REVISION",
                        help="also serve the store with the code of this git revision, side by side in one run")
    args = parser.parse_args()
    WORK.mkdir(exist_ok=True)
    started = dt.datetime.now(dt.timezone.utc)
    command = (f"`python bench/bench_scale_store.py --marks {' '.join(f'{m:g}' for m in args.marks)}"
               f"{' --in-memory' if args.in_memory else ''}{' --keep' if args.keep else ''}"
               f"{' --reuse' if args.reuse else ''}{' --before ' + args.before if args.before else ''}"
               f"{' --steps ' + ' '.join(args.steps) if args.steps != list(STEPS) else ''}` on {started:%Y-%m-%d %H:%M} UTC; {machine()}")
    rows: list[dict] = []

    def log(row: dict) -> None:
        print(table_line(row), flush=True)
        rows.append(row)
        write_results(command, rows)  # after every step: a run stopped early keeps what it measured

    for marks in args.marks:
        run_size(marks, args, log)
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
