"""Review sessions at scale: what a decision costs the deciding session and every other session.

On a simulated project (`bench_dashboard.simulated_tables`, 100,000 subjects by default) with a
SQLite review store already holding some hundred decisions, several sessions (`DataStore`) watch
the store. After each new decision every session refreshes, as the served app's periodic
callback does. Compared side by side in one run: the process-wide shared review state
(`dashboard.review_refresh.SharedReviews`: one store read per new decision) against every
session reading the box and subject status from the store itself.

    python bench/bench_reviews.py [--subjects 100000] [--sessions 5] [--decisions 10]

Writes bench/results/reviews.md.

With ``--writers N``, it measures instead how long decisions wait when N sessions decide at
once: N threads (the sessions of one served process) each record decisions back to back on
their own boxes for ``--seconds``, against a fresh SQLite store, first through the store as it
was at ``--baseline`` (a git revision; each writer took SQLite's lock with BEGIN IMMEDIATE and
its busy timeout), then through the current store, in the same run. Every decision's latency
(the call to `ReviewStore.record` until it returns, committed) is kept.

    python bench/bench_reviews.py --writers 20 [--seconds 20] [--baseline e6dee48]

Writes bench/results/review_writes.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "reviews.md"
WRITES_RESULTS = HERE / "results" / "review_writes.md"
sys.path.insert(0, str(ROOT))

from bench_dashboard import simulated_tables  # noqa: E402  (the dashboard benchmark's project)
from bench_loaders import machine  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subjects", type=int, default=100_000, help="subjects in the simulated project")
    parser.add_argument("--sessions", type=int, default=5, help="sessions watching the store")
    parser.add_argument("--decisions", type=int, default=10, help="decisions timed")
    parser.add_argument("--history", type=int, default=300, help="decisions in the store before timing")
    parser.add_argument("--writers", type=int, default=0,
                        help="measure instead how long decisions wait with this many sessions deciding at once")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long the writers write, per store")
    parser.add_argument("--baseline", default="e6dee48",
                        help="git revision whose dashboard/reviews.py (now project/reviews.py) is the store "
                             "compared against")
    args = parser.parse_args()
    if args.writers:
        writer_fairness(args.writers, args.seconds, args.baseline)
        return

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


def baseline_store_class(revision: str):
    """The ``ReviewStore`` class of ``dashboard/reviews.py`` as it was at git ``revision``."""
    source = subprocess.run(["git", "show", f"{revision}:dashboard/reviews.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp(prefix="zoolens-baseline-")) / "baseline_reviews.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("baseline_reviews", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module.ReviewStore


def time_writers(store_class, writers: int, seconds: float) -> tuple[np.ndarray, int]:
    """Latencies (s) of every decision ``writers`` threads recorded back to back for ``seconds``, and errors."""
    latencies: list[list[float]] = [[] for _ in range(writers)]
    errors = [0] * writers
    start_together = threading.Barrier(writers + 1)
    with tempfile.TemporaryDirectory() as folder:
        store = store_class(path=Path(folder) / "reviews.sqlite")
        deadline = [0.0]

        def write(number: int) -> None:
            start_together.wait()
            box = 0
            while time.perf_counter() < deadline[0]:
                box += 1
                began = time.perf_counter()
                try:
                    # Each session its own subjects, as reviewers split the work.
                    store.record("bench-run", number * 1_000_000 + box, "accept", f"reviewer-{number}",
                                 consensus_id=0, original={"x": 1.0, "y": 2.0, "width": 3.0, "height": 4.0})
                except Exception:  # noqa: BLE001  (counted: the table reports them)
                    errors[number] += 1
                latencies[number].append(time.perf_counter() - began)

        threads = [threading.Thread(target=write, args=(number,)) for number in range(writers)]
        for thread in threads:
            thread.start()
        deadline[0] = time.perf_counter() + seconds
        start_together.wait()
        for thread in threads:
            thread.join()
        store.close()
    return np.concatenate([np.asarray(values) for values in latencies]), sum(errors)


def writer_fairness(writers: int, seconds: float, baseline: str) -> None:
    from project.reviews import ReviewStore

    load_before = os.getloadavg()[0]
    rows = []
    for label, store_class in ((f"baseline `{baseline}`: BEGIN IMMEDIATE, busy timeout, one transaction "
                                "per decision", baseline_store_class(baseline)),
                               ("zoolens: one writer thread, decisions queued in arrival order, "
                                "committed together", ReviewStore)):
        latencies, errors = time_writers(store_class, writers, seconds)
        load = os.getloadavg()[0]
        rows.append((label, latencies, errors, load))
        print(label, len(latencies), float(np.max(latencies)))

    def ms(values, q):
        return f"{np.percentile(values, q) * 1000:,.0f}"

    lines = [
        "# Review store: decisions from many sessions at once",
        "",
        f"Run {dt.date.today().isoformat()} on {machine()} by `python bench/bench_reviews.py --writers {writers} "
        f"--seconds {seconds:g} --baseline {baseline}`.",
        f"{writers} threads (the sessions of one served process) each record `accept` decisions back to back, "
        f"each on a box of its own, for {seconds:g} s per store, against a fresh SQLite file (WAL, synchronous "
        "FULL). Latency is one `ReviewStore.record` call, from the call until it returns with the decision "
        "committed. Both stores ran in this one run, one after the other.",
        f"The machine is shared: load average {load_before:.1f} at the start (2 cores); *load* is at the end "
        "of each row.",
        "",
        "| store | decisions | per s | p50 ms | p95 ms | p99 ms | max ms | over 1 s | errors | load |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, latencies, errors, load in rows:
        lines.append(f"| {label} | {len(latencies):,} | {len(latencies) / seconds:,.0f} | {ms(latencies, 50)} | "
                     f"{ms(latencies, 95)} | {ms(latencies, 99)} | {ms(latencies, 100)} | "
                     f"{int((latencies > 1.0).sum()):,} | {errors:,} | {load:.1f} |")
    WRITES_RESULTS.parent.mkdir(exist_ok=True)
    WRITES_RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
