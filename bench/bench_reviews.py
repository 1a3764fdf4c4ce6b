"""Review sessions at scale: what a decision costs the deciding session and every other session.

On a simulated project (`bench_dashboard.simulated_tables`, 100,000 subjects by default) with a
SQLite review store already holding some hundred decisions, several sessions (`DataStore`) watch
the store. After each new decision every session refreshes, as the served app's periodic
callback does. Compared side by side in one run: the process-wide shared review state
(`dashboard.data_store.shared_review_state`: one store read per new decision) against every
session reading the box and subject status from the store itself.

    python bench/bench_reviews.py [--subjects 100000] [--sessions 5] [--decisions 10]

Writes bench/results/reviews.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "reviews.md"
sys.path.insert(0, str(ROOT))

from bench_dashboard import simulated_tables  # noqa: E402  (the dashboard benchmark's project)
from bench_loaders import machine  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subjects", type=int, default=100_000, help="subjects in the simulated project")
    parser.add_argument("--sessions", type=int, default=5, help="sessions watching the store")
    parser.add_argument("--decisions", type=int, default=10, help="decisions timed")
    parser.add_argument("--history", type=int, default=300, help="decisions in the store before timing")
    args = parser.parse_args()

    from dashboard.data_store import DataStore
    from project import Project
    from project.reviews import ReviewStore

    load_before = os.getloadavg()[0]
    project = Project(**simulated_tables(args.subjects))
    source = project.consensus_source
    boxes = project.consensus.sample(args.history + args.decisions, random_state=0)
    with tempfile.TemporaryDirectory() as folder, ReviewStore(path=Path(folder) / "reviews.sqlite") as store:
        record_seconds = []
        for row in boxes.iloc[:args.history].itertuples(index=False):
            start = time.perf_counter()
            store.record(source, row.subject_id, "accept", "bench", consensus_id=row.consensus_id,
                         original=row._asdict())
            record_seconds.append(time.perf_counter() - start)
        sessions = [DataStore(project=project, reviews=store) for _ in range(args.sessions)]
        deciding, shared, per_session, no_change = [], [], [], []
        for row in boxes.iloc[args.history:].itertuples(index=False):
            start = time.perf_counter()
            store.record(source, row.subject_id, "reject", "bench", consensus_id=row.consensus_id,
                         original=row._asdict())
            sessions[0].refresh_reviews()
            deciding.append(time.perf_counter() - start)
            start = time.perf_counter()
            for session in sessions[1:]:
                session.refresh_reviews()
            shared.append(time.perf_counter() - start)
            # The alternative: each other session reads the store itself (what the cache saves).
            start = time.perf_counter()
            for _ in sessions[1:]:
                store.box_status(source)
                store.subject_status(source, project.consensus)
            per_session.append(time.perf_counter() - start)
            start = time.perf_counter()
            for session in sessions:
                session.refresh_reviews()
            no_change.append(time.perf_counter() - start)
    load_after = os.getloadavg()[0]

    def ms(values, q=50):
        return float(np.percentile(values, q) * 1000)

    others = args.sessions - 1
    lines = [
        "# Review sessions: the cost of a decision",
        "",
        f"Run {dt.date.today().isoformat()} on {machine()} by `python bench/bench_reviews.py --subjects "
        f"{args.subjects} --sessions {args.sessions} --decisions {args.decisions} --history {args.history}`.",
        f"Simulated project: {len(project.subject_stats):,} subjects, {len(project.consensus):,} consensus boxes; "
        f"SQLite review store (WAL, synchronous FULL) holding {args.history} decisions before timing.",
        f"The machine is shared: load average {load_before:.1f} at the start, {load_after:.1f} at the end "
        "(2 cores), so these times are upper bounds.",
        "",
        "| measurement (p50 over the timed decisions) | zoolens | alternative |",
        "| --- | ---: | ---: |",
        f"| record one decision (`ReviewStore.record`, before timing) | {ms(record_seconds):.0f} ms | |",
        f"| deciding session: record, then read the new state and refilter its subjects | {ms(deciding):.0f} ms | |",
        f"| the other {others} sessions' refresh after a decision: shared state (refiltering included) vs "
        "each session reading the store (the reads alone) "
        f"| {ms(shared):.0f} ms | {ms(per_session):.0f} ms |",
        f"| periodic refresh of all {args.sessions} sessions when nothing changed (one max(id) query each) "
        f"| {ms(no_change):.1f} ms | |",
    ]
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
