"""Benchmark: parsing a Zooniverse classification export, zoolens against panoptes_aggregation.

Generates a realistic Clump-Scout-like export (classic and new front end rows,
question task plus point clicks turned into boxes from ``#fwhmImagePix``, full
metadata and subject_data JSON as real exports carry), then in one run on the
same file measures:

- zoolens ``read_classifications``: parsing without the cache (what is compared), then a
  first open with an empty cache (hash, parse, write Parquet) and a second open from it,
- ``panoptes_aggregation extract`` with the point extractor (installed in its own
  git-ignored virtualenv, ``bench/.venv-peers``, never a project dependency),
- the floor of any loader built on the stack: importing pandas and pyarrow and reading
  the loader's columns with pyarrow's CSV reader as strings, parsing nothing in them,
- a sketch of the same work on polars (in ``bench/.venv-polars``): its CSV reader, its
  JSON decoder on the annotations and regexes on the metadata, without the checks,
  geometry and report a loader needs, so a lower bound for a polars loader,

each in a fresh subprocess, reporting wall time, peak resident memory and the
number of marks each produced. With ``--full-rows`` zoolens alone also parses an
export of Clump Scout's full size (1.7 million classifications).

    python bench/bench_loaders.py                       # 200,000 rows, peer on the same file
    python bench/bench_loaders.py --full-rows 1700000   # plus the full-size zoolens run
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = HERE / "work"
PEERS = HERE / ".venv-peers"
POLARS = HERE / ".venv-polars"
RESULTS = HERE / "results" / "loaders.md"
WORKFLOW_ID = 10_000
HEADER = ["classification_id", "user_name", "user_id", "user_ip", "workflow_id", "workflow_name",
          "workflow_version", "created_at", "gold_standard", "expert", "metadata", "annotations",
          "subject_data", "subject_ids"]


def generate_export(path: Path, n_rows: int, seed: int = 0) -> None:
    """Write a Clump-Scout-like export of ``n_rows`` classifications (about 2 clicks each)."""
    rng = np.random.default_rng(seed)
    n_subjects = max(1, n_rows // 20)
    subject_ids = 30_000_000 + rng.integers(0, n_subjects, n_rows)
    fwhm = np.round(rng.uniform(1.5, 6.0, n_subjects), 3)
    users = rng.zipf(1.6, n_rows) % 21_000
    logged_out = rng.random(n_rows) < 0.25
    fem = rng.random(n_rows) < 0.3
    clicks = rng.poisson(2.05, n_rows)
    start = np.datetime64("2020-06-01T00:00:00") + np.sort(rng.integers(0, 3 * 365 * 86400, n_rows)).astype("timedelta64[s]")
    xs = np.round(rng.uniform(100, 300, clicks.sum()), 2)
    ys = np.round(rng.uniform(100, 300, clicks.sum()), 2)
    tools = rng.integers(0, 2, clicks.sum())
    offsets = np.concatenate([[0], np.cumsum(clicks)])
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for i in range(n_rows):
            created = str(start[i]).replace("T", " ") + " UTC"
            metadata = {
                "source": "api", "session": f"{rng.integers(1 << 62):x}" * 4,
                "viewport": {"width": 1680, "height": 1050},
                "started_at": str(start[i] - np.timedelta64(40, "s")) + ".000Z",
                "user_agent": "Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/118.0",
                "utc_offset": "0", "finished_at": str(start[i]) + ".000Z", "live_project": True,
                "user_language": "en", "user_group_ids": [],
                "subject_dimensions": [{"clientWidth": 500, "clientHeight": 500,
                                        "naturalWidth": 400, "naturalHeight": 400}],
                "subject_selection_state": {"retired": False, "selected_at": created,
                                            "already_seen": False, "selection_state": "normal",
                                            "finished_workflow": False,
                                            "user_has_finished_workflow": False},
                "workflow_translation_id": "54321",
            }
            lo, hi = offsets[i], offsets[i + 1]
            if fem[i]:
                metadata["classifier_version"] = "2.0"
                points = [{"x": xs[k], "y": ys[k], "toolIndex": int(tools[k]), "toolType": "point",
                           "frame": 0, "details": []} for k in range(lo, hi)]
            else:
                points = [{"x": xs[k], "y": ys[k], "tool": int(tools[k]), "frame": 0, "details": [],
                           "tool_label": ("Clump", "Odd clump")[tools[k]]} for k in range(lo, hi)]
            annotations = [
                {"task": "T0", "task_label": "Is this galaxy clumpy?", "value": "Yes"},
                {"task": "T1", "task_label": "Click on the centre of each clump", "value": points},
            ]
            subject = int(subject_ids[i])
            subject_data = {str(subject): {"retired": None, "#fwhmImagePix": float(fwhm[subject - 30_000_000]),
                                           "ra": 150.1, "dec": 2.2, "#iauname": "J100000.00+020000.0"}}
            user = f"not-logged-in-{users[i]:08x}" if logged_out[i] else f"volunteer{users[i]}"
            writer.writerow([
                100_000_000 + i, user, "" if logged_out[i] else str(users[i]), "0123abcd",
                WORKFLOW_ID, "Clump Scout", "12.34", created, "", "",
                json.dumps(metadata, separators=(",", ":")),
                json.dumps(annotations, separators=(",", ":")),
                json.dumps(subject_data, separators=(",", ":")), subject,
            ])


MEASURE = textwrap.dedent("""
    import json, resource, sys, time
    started = time.perf_counter()
    {body}
    elapsed = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak_kib = max(peak_kib, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    cpu = sum(usage.ru_utime + usage.ru_stime for usage in
              (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)))
    print(json.dumps({{"seconds": elapsed, "peak_mib": peak_kib / 1024, "marks": marks, "cpu": cpu}}))
""")

ZOOLENS = """
from data_loaders import read_classifications
export = read_classifications(sys.argv[1], workflow_id={workflow}, point_box="2.5*#fwhmImagePix",
                              use_cache={use_cache})
marks = len(export.marks)
"""

PEER = """
import subprocess, glob, csv, os
out = sys.argv[2]
subprocess.run([sys.argv[3], "extract", sys.argv[1], sys.argv[4], "-o", "bench", "-d", out,
                "--cpu_count", sys.argv[5], "--hide_bar"], check=True, stdout=subprocess.DEVNULL)
csv.field_size_limit(1 << 30)
marks = 0
for name in glob.glob(os.path.join(out, "*.csv")):
    with open(name) as handle:
        for row in csv.DictReader(handle):
            for key, cell in row.items():
                if key.endswith("_x") and cell:
                    marks += len(json.loads(cell))
"""


#: The columns `read_classifications` reads (every column of the generated export but user_ip).
LOADER_COLUMNS = [name for name in HEADER if name != "user_ip"]

FLOOR = """
import pandas, pyarrow as pa, pyarrow.csv as pcsv
columns = {columns!r}
table = pcsv.read_csv(sys.argv[1],
                      parse_options=pcsv.ParseOptions(newlines_in_values=True),
                      convert_options=pcsv.ConvertOptions(column_types=dict.fromkeys(columns, pa.string()),
                                                          include_columns=columns))
marks = 0
"""

POLARS_SKETCH = """
import pandas, polars as pl
columns = {columns!r}
table = pl.read_csv(sys.argv[1], columns=columns, schema_overrides=dict.fromkeys(columns, pl.Utf8))
mark = pl.Struct(dict(x=pl.Float64, y=pl.Float64, tool=pl.Int64, toolIndex=pl.Int64, frame=pl.Int64,
                      tool_label=pl.Utf8, toolType=pl.Utf8))
task = pl.Struct(dict(task=pl.Utf8, markIndex=pl.Int64, marks=pl.List(mark)))
rows = table.select(
    pl.col("classification_id").cast(pl.Int64),
    pl.col("annotations").str.replace_all('"value":[{{', '"marks":[{{', literal=True)
      .str.json_decode(pl.List(task)).alias("tasks"),
    pl.col("metadata").str.extract(r'"started_at"\\s*:\\s*"([^"]*)"').alias("started_at"),
    pl.col("metadata").str.extract(r'"finished_at"\\s*:\\s*"([^"]*)"').alias("finished_at"),
    pl.col("metadata").str.contains(r'"classifier_version"\\s*:\\s*"[2-9]').alias("fem"),
    pl.col("subject_data").str.extract(r'"#fwhmImagePix"\\s*:\\s*([-0-9.eE]+)').cast(pl.Float64)
      .alias("fwhm"),
)
drawn = rows.select("classification_id", "tasks").explode("tasks").unnest("tasks").explode("marks")
marks_table = drawn.drop_nulls("marks").unnest("marks").to_pandas()
classifications = rows.drop("tasks").to_pandas()
marks = len(marks_table)
"""


def warm_page_cache(path: Path) -> None:
    """Read a file once, so whichever tool runs first does not also pay for reading it from disk."""
    with open(path, "rb") as handle:
        while handle.read(64 * 2**20):
            pass


def run_measured(python: str, body: str, *args: str, code_root: Path = ROOT) -> dict:
    code = MEASURE.format(body=textwrap.indent(textwrap.dedent(body), "").strip())
    env = dict(os.environ, PYTHONPATH=str(code_root))
    started = time.perf_counter()
    # Run from the code's own directory: `python -c` puts the working directory first on sys.path.
    done = subprocess.run([python, "-c", code, *args], capture_output=True, text=True, env=env,
                          cwd=code_root)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall"] = wall  # the whole process: interpreter start, imports, work
    result["load"] = os.getloadavg()[0]
    return result


def run_repeated(repeats: int, python: str, body: str, *args: str, code_root: Path = ROOT,
                 before=None) -> dict:
    """`run_measured` ``repeats`` times: the run of median work time, with the range of all runs.

    One run is at the mercy of whatever else the machine does at that moment; the
    median of a few is the number a user can expect.
    """
    runs = []
    for _ in range(repeats):
        if before is not None:
            before()
        runs.append(run_measured(python, body, *args, code_root=code_root))
    runs.sort(key=lambda run: run["seconds"])
    median = dict(runs[len(runs) // 2])
    median["range"] = (runs[0]["seconds"], runs[-1]["seconds"])
    return median


def ensure_peer_env() -> Path:
    """panoptes_aggregation in its own virtualenv, so it never touches the project's dependencies."""
    binary = PEERS / "bin" / "panoptes_aggregation"
    if not binary.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEERS)], check=True)
        subprocess.run([str(PEERS / "bin" / "pip"), "install", "-q", "panoptes_aggregation"], check=True)
    return binary


def ensure_polars_env() -> Path:
    """polars (with pandas and pyarrow for its conversion) in its own git-ignored virtualenv."""
    python = POLARS / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(POLARS)], check=True)
        subprocess.run([str(POLARS / "bin" / "pip"), "install", "-q", "polars", "pandas", "pyarrow"],
                       check=True)
    return python


def peer_config(path: Path) -> Path:
    """The extractor config ``panoptes_aggregation config`` would write for the point task."""
    config = {
        "workflow_id": WORKFLOW_ID, "workflow_version": "12.34",
        "extractor_config": {"point_extractor_by_frame": [{"task": "T1", "tools": [0, 1]}]},
    }
    import yaml  # pyyaml comes with panel's dependencies

    path.write_text(yaml.safe_dump(config))
    return path


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB RAM, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000, help="classifications in the compared export")
    parser.add_argument("--full-rows", type=int, default=0,
                        help="also time zoolens alone on an export this large (e.g. 1700000)")
    parser.add_argument("--skip-peer", action="store_true", help="do not run panoptes_aggregation")
    parser.add_argument("--repeats", type=int, default=3,
                        help="runs of each measurement; the table shows the median run and the range")
    parser.add_argument("--baseline", type=Path, metavar="DIR",
                        help="also time the data_loaders package found in DIR, e.g. an older commit "
                             "unpacked with `git archive COMMIT data_loaders | tar -x -C DIR`")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)

    rows = []
    export = WORK / f"export-{args.rows}.csv"
    if not export.exists():
        generate_export(export, args.rows)
    size_mib = export.stat().st_size / 2**20
    def warm():
        warm_page_cache(export)

    cold = run_repeated(args.repeats, sys.executable, ZOOLENS.format(workflow=WORKFLOW_ID, use_cache=False),
                        str(export), before=warm)
    # A fresh cache directory, so the first open really parses (an entry left by an
    # earlier run would be read instead: the cache key is the file, not the code).
    os.environ["ZOOLENS_CACHE_DIR"] = tempfile.mkdtemp(dir=WORK, prefix="cache-")
    try:
        first = run_measured(sys.executable, ZOOLENS.format(workflow=WORKFLOW_ID, use_cache=True), str(export))
        second = run_repeated(args.repeats, sys.executable,
                              ZOOLENS.format(workflow=WORKFLOW_ID, use_cache=True), str(export))
    finally:
        shutil.rmtree(os.environ.pop("ZOOLENS_CACHE_DIR"), ignore_errors=True)
    rows.append(("zoolens read_classifications (parse, no cache)", args.rows, size_mib, cold))
    rows.append(("zoolens read_classifications (first open: hash, parse, write cache)", args.rows, size_mib,
                 first))
    rows.append(("zoolens read_classifications (second open: Parquet cache)", args.rows, size_mib, second))
    floor = run_repeated(args.repeats, sys.executable, FLOOR.format(columns=LOADER_COLUMNS), str(export),
                         before=warm)
    rows.append(("floor: import pandas and pyarrow, pyarrow read_csv of the same columns, nothing parsed",
                 args.rows, size_mib, floor))
    if not args.skip_peer:
        peer = ensure_peer_env()
        config = peer_config(WORK / "extractor_config.yaml")
        out = WORK / "peer-out"
        out.mkdir(exist_ok=True)
        # Its default is one core; zoolens uses every core, so the peer's --cpu_count 2 is timed too.
        for cores in (1, 2):
            result = run_repeated(args.repeats, str(PEERS / "bin" / "python"), PEER, str(export), str(out),
                                  str(peer), str(config), str(cores), before=warm)
            rows.append((f"panoptes_aggregation extract (point_extractor_by_frame, --cpu_count {cores})",
                         args.rows, size_mib, result))
        sketch = run_repeated(args.repeats, str(ensure_polars_env()), POLARS_SKETCH.format(columns=LOADER_COLUMNS),
                              str(export), before=warm)
        rows.append(("polars sketch: read_csv, json_decode of annotations, metadata regexes, to pandas "
                     "(no checks, geometry or report)", args.rows, size_mib, sketch))
    if args.full_rows:
        full = WORK / f"export-{args.full_rows}.csv"
        if not full.exists():
            generate_export(full, args.full_rows, seed=1)
        full_result = run_repeated(args.repeats, sys.executable,
                                   ZOOLENS.format(workflow=WORKFLOW_ID, use_cache=False), str(full),
                                   before=lambda: warm_page_cache(full))
        rows.append(("zoolens read_classifications (parse, no cache)", args.full_rows,
                     full.stat().st_size / 2**20, full_result))
    if args.baseline:
        for path, n in [(export, args.rows)] + ([(full, args.full_rows)] if args.full_rows else []):
            result = run_repeated(args.repeats, sys.executable,
                                  ZOOLENS.format(workflow=WORKFLOW_ID, use_cache=False), str(path),
                                  code_root=args.baseline.resolve(), before=lambda: warm_page_cache(path))
            rows.append((f"baseline `{args.baseline}` read_classifications (parse, no cache)", n,
                         path.stat().st_size / 2**20, result))

    lines = [
        "# Classification export parsing",
        "",
        f"Run {dt.date.today().isoformat()} on {machine()} by `python bench/bench_loaders.py"
        f" --rows {args.rows}" + (f" --full-rows {args.full_rows}" if args.full_rows else "")
        + f" --repeats {args.repeats}`.",
        "Each tool ran in a fresh subprocess on the same generated file, read once beforehand so",
        "that it came from the page cache; each row is the median of the runs, whose work times",
        "span *range*. *work s* times importing `data_loaders` and parsing (for the peer, its",
        "whole `extract` command, which also starts Python and imports); *process s* is the whole",
        "subprocess including interpreter start and imports; *CPU s* is the CPU time of the whole",
        "subprocess (all threads and children), which depends less on other jobs than wall time;",
        "peak memory is its maximum RSS.",
        "*load* is the machine's 1-minute load average when the run ended (2 cores: above 2,",
        "other jobs were competing for them).",
        "",
        "| tool | classifications | file MiB | work s | range | process s | CPU s | peak MiB | marks out | load |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, n, size, result in rows:
        low, high = result.get("range", (result["seconds"],) * 2)
        lines.append(f"| {name} | {n:,} | {size:,.0f} | {result['seconds']:.2f} | {low:.2f}-{high:.2f} | "
                     f"{result['wall']:.2f} | "
                     f"{result['cpu']:.2f} | {result['peak_mib']:,.0f} | {result['marks']:,} | "
                     f"{result['load']:.1f} |")
    if not args.skip_peer:
        peer_seconds = rows[4][3]["seconds"]
        both_cores = rows[5][3]["seconds"]
        lines += ["", f"On the same file zoolens parses {peer_seconds / rows[0][3]['seconds']:.0f}x faster than "
                      f"`panoptes_aggregation extract` as it runs by default "
                      f"({both_cores / rows[0][3]['seconds']:.0f}x faster than it on both cores; "
                      f"{peer_seconds / rows[0][3]['wall']:.0f}x counting "
                      f"zoolens' whole process); a first open that also hashes the file and writes the cache is "
                      f"{peer_seconds / rows[1][3]['seconds']:.0f}x faster, a second open from the cache "
                      f"{peer_seconds / rows[2][3]['seconds']:.0f}x.",
                  "", f"50x would be {peer_seconds / 50:.2f} s of work; importing pandas and pyarrow and "
                      f"reading the columns with pyarrow, parsing nothing in them, takes {floor['seconds']:.2f} s "
                      f"({floor['range'][0]:.2f}-{floor['range'][1]:.2f}); the polars sketch "
                      f"{sketch['seconds']:.2f} s ({peer_seconds / sketch['seconds']:.0f}x)."]
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
