"""Benchmark: server CPU for every open session to show a decision made in another one, per session.

In one process, no client: ``--sessions`` sessions of the built-in demo are built into Bokeh
documents and serialised as the server does (`dashboard.app.create_app`), plus one that decides.
The deciding session accepts a box on each of ``--decisions`` subjects the others do not show as
their current subject; after each decision every other session refreshes as its periodic callback
does (`DataStore.refresh_reviews`). Reported: the CPU of those refreshes per session (median and
95th percentile over the decisions) and of the deciding session's own decision. Run on this tree
and on each ``--against`` commit (by ``git archive``), one after another in one invocation.

    python bench/bench_review_refresh.py --sessions 20 --history 10000 --against d51ab52
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from bench_loaders import machine  # noqa: E402
from bench_sessions import DEMO_PROJECT, SESSION_SETUP, tree_at  # noqa: E402

#: Runs in a fresh interpreter on one source tree; prints the CPU seconds as JSON.
REFRESHES = """
import json, resource, sys
sys.path.insert(0, {tree!r})
import numpy as np
""" + SESSION_SETUP + """
# A review already under way: decisions made before the sessions open, which every reading of the store
# read again before it kept the state it had read.
boxes = project.consensus.sample({history}, replace=True, random_state=1)
for subject_id, consensus_id, box in zip(boxes.subject_id.tolist(), boxes.consensus_id.tolist(),
                                         boxes.to_dict("records")):
    reviews.record(project.consensus_source, subject_id, "accept", f"earlier-{{subject_id % 5}}",
                   consensus_id=consensus_id, original=box)
sessions = []
for number in range({sessions} + 1):
    document = Document()
    with set_curdoc(document):
        template = create_app(project, reviews=reviews)
        template.server_doc(document)
    document.to_json()
    sessions.append((document, template))
deciding_document, deciding = sessions.pop()
with set_curdoc(deciding_document):
    deciding.explorer.data_store.reviewer = "bench"
per_session, deciding_cpu = [], []
# Subjects with boxes, last in the order: not the watching sessions' current (first) subject.
for subject_id in project.consensus.subject_id.drop_duplicates().to_numpy()[-{decisions}:]:
    with set_curdoc(deciding_document):
        deciding.explorer.data_store.subject = int(subject_id)
        start = cpu()
        deciding.explorer.review.accept()
        deciding_cpu.append(cpu() - start)
    start = cpu()
    for document, template in sessions:
        with set_curdoc(document):
            template.explorer.data_store.refresh_reviews()
    per_session.append((cpu() - start) / len(sessions))
print(json.dumps({{"per_session": per_session, "deciding": deciding_cpu}}))
"""


def refreshes(tree: Path, sessions: int, decisions: int, history: int) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="zoolens-bench-refresh-"))
    code = REFRESHES.format(tree=str(tree), project=DEMO_PROJECT, reviews=str(folder / "r.sqlite"),
                            sessions=sessions, decisions=decisions, history=history)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tree,
                          env={**os.environ, "PYTHONPATH": str(tree)}, check=False)
    if done.returncode:
        raise RuntimeError(f"measuring the refreshes of {tree} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    import numpy as np

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=20, help="open sessions that follow the decisions")
    parser.add_argument("--decisions", type=int, default=10, help="decisions made in the other session")
    parser.add_argument("--history", type=int, default=0, help="decisions in the store before the sessions open")
    parser.add_argument("--against", nargs="*", default=[], metavar="COMMIT", help="older trees to compare")
    args = parser.parse_args()
    load = os.getloadavg()
    # The commit measured: taken before the runs, during which the worktree may move on.
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                            check=False).stdout.strip()
    runs = {"this tree": refreshes(ROOT, args.sessions, args.decisions, args.history)}
    runs.update({f"`{commit}`": refreshes(tree_at(commit), args.sessions, args.decisions, args.history)
                 for commit in args.against})
    ms = lambda values, q: f"{np.percentile(values, q) * 1000:,.1f}"  # noqa: E731
    lines = [
        f"### Server CPU for every open session to show another session's decision ({commit})",
        "",
        f"`python bench/bench_review_refresh.py --sessions {args.sessions} --decisions {args.decisions} "
        f"--history {args.history}"
        + (f" --against {' '.join(args.against)}" if args.against else "") + f"` on {machine()}; load average "
        f"{load[0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the end. The built-in demo, {args.sessions} "
        f"sessions in one process, {args.history} decisions in the store before they open, then {args.decisions} "
        "decisions made in another session on subjects they do not show "
        "as current; CPU time (getrusage) of the process.",
        "",
        "| CPU, ms | " + " | ".join(runs) + " |",
        "| --- | " + " | ".join("---:" for _ in runs) + " |",
        "| one session showing the decision (refresh), median / p95 | "
        + " | ".join(f"{ms(run['per_session'], 50)} / {ms(run['per_session'], 95)}" for run in runs.values()) + " |",
        "| the deciding session's decision, median | "
        + " | ".join(ms(run["deciding"], 50) for run in runs.values()) + " |",
        "",
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
