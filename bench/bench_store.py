"""Benchmark: parsing a classification export into the partitioned store, against parsing it into memory.

On one generated Clump-Scout-like export (`bench_loaders.generate_export`), alternately in fresh
subprocesses:

- ``read_classifications`` (the in-memory path: every row parsed, then the whole tables built),
- ``project.store.write_store`` (the same parse, each part spilled by range of subject ids, each
  range finished and written on its own),

reporting wall and CPU time, peak resident memory and the marks each produced. The store's peak
should stay flat as the export grows while the in-memory path's grows with it.

    python bench/bench_store.py --rows 200000 1000000
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_loaders import WORK, WORKFLOW_ID, generate_export, machine, run_measured  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "store.md"

IN_MEMORY = f"""
from data_loaders import read_classifications
export = read_classifications(sys.argv[1], workflow_id={WORKFLOW_ID}, point_box="2.5*#fwhmImagePix", use_cache=False)
marks = len(export.marks)
"""

STORE = f"""
from project.store import write_store
store = write_store(sys.argv[1], sys.argv[2], workflow_id={WORKFLOW_ID}, point_box="2.5*#fwhmImagePix")
marks = store.report.counts["marks"]
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[200_000, 1_000_000],
                        help="classifications in each generated export")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each path per size")
    args = parser.parse_args()
    WORK.mkdir(exist_ok=True)
    lines = ["# Parsing into the partitioned store (`bench/bench_store.py`)", "",
             f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, {machine()}, "
             f"load at start {os.getloadavg()[0]:.1f}", "",
             "| rows | CSV MiB | path | wall s | CPU s | peak MiB | marks | load |",
             "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |"]
    for rows in args.rows:
        export = WORK / f"store-export-{rows}.csv"
        if not export.exists():
            generate_export(export, rows)
        size = export.stat().st_size / 2**20
        for _ in range(args.repeats):
            for name, body in (("in memory", IN_MEMORY), ("store", STORE)):
                folder = WORK / f"store-{rows}"
                shutil.rmtree(folder, ignore_errors=True)
                result = run_measured(sys.executable, body, str(export), str(folder))
                lines.append(f"| {rows:,} | {size:,.0f} | {name} | {result['wall']:.1f} | {result['cpu']:.1f} | "
                             f"{result['peak_mib']:,.0f} | {result['marks']:,} | {result['load']:.1f} |")
                print(lines[-1], flush=True)
        shutil.rmtree(WORK / f"store-{rows}", ignore_errors=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
