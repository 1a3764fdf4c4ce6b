"""Benchmark: many review sessions at once on one served zoolens, driven over the Bokeh protocol.

A real server (``zoolens demo``, or a simulated project of ``--subjects`` subjects served by
`dashboard.app.serve`) runs in its own process on loopback. ``--sessions`` clients (50 by
default) speak the Bokeh server protocol over websockets from one asyncio loop, as a
browser's BokehJS does, without drawing anything (50 browsers would measure the browsers on a
2-core machine). Each opens a session (``PULL-DOC``) and then, for ``--minutes``, does what a
reviewer does with a pause of ``--think`` seconds between actions:

- **switch**: click "Next ▶" until the server sends the new subject's caption;
- **filter**: change the "Min volunteers" filter until the server sends the new count of subjects;
- **decide**: click "Accept" (the subject's first box) until the server sends the accepted state;
- **export**: open the Export tab (once) and click "Download the selection" until the server sends
  the file.

Each action's time is from sending the click or change until the server's answer arrives;
an action with no answer in ``TIMEOUT`` seconds, or a server error notification, is an error.
The server process's resident memory and CPU time are sampled every few seconds, during the
run and for ``--settle`` seconds after every session has closed. The result goes to
``bench/results/sessions.md`` (appended as a section), side by side for each ``--threads`` value (4 worker
threads, the default on this machine; 0: every callback on the server's event loop; ``4+malloc``: 4 threads
with ``PYTHONMALLOC=malloc``, CPython's objects in glibc's heap, which ``dashboard.memory`` trims after
sessions close; ``4+jemalloc``: the same in jemalloc's heap instead (``LD_PRELOAD``; Debian's libjemalloc2), whose
background thread gives freed pages back after a few seconds, `JEMALLOC_CONF`).

    python bench/bench_sessions.py                          # 50 sessions, 5 minutes, demo, 4, 0 and 4+malloc
    python bench/bench_sessions.py --sessions 10 --minutes 1 --threads 4
    python bench/bench_sessions.py --threads 4 --num-procs 2 --postgres   # two server processes, one PostgreSQL store

With ``--num-procs N`` the server forks N processes sharing the port (``zoolens demo --num-procs``), each
holding its own sessions; decisions go through one review store, which must then be a server database:
``--postgres`` starts a PostgreSQL on loopback for the run (as ``tests/postgres_server.py`` does for the
tests). Memory and CPU are then the sums over the server's processes (forked pages shared by them are counted
in each). ``--py-spy FILE`` records the server's processes with py-spy (``--nonblocking``) for the whole
run, as raw stacks. ``--against COMMIT`` runs the same load test on an older tree first (side by side).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import random
import signal
import socket
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "sessions.md"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from bench_loaders import machine  # noqa: E402  (the sibling benchmark's machine description)
from tests.bokeh_protocol import ACTIONS, Client  # noqa: E402  (the protocol client the server tests use too)
from tests.postgres_server import running_postgres  # noqa: E402  (the tests' PostgreSQL on loopback)

#: How often the server's memory and CPU are sampled, seconds.
SAMPLE_SECONDS = 5.0

#: How long (seconds) the server's memory is followed after the sessions close, by default.
SETTLE_SECONDS = 90.0

#: Serves a simulated project (run in a fresh interpreter): ``--subjects`` instead of the demo.
SERVE_SIMULATED = """
import sys
sys.path.insert(0, {root!r}); sys.path.insert(0, {here!r})
from bench_dashboard import simulated_tables
from dashboard.app import serve
from project import Project
from project.reviews import open_store
tables = simulated_tables({subjects})

def build(progress):
    project = Project(**tables, title="simulated")
    print(f"simulated: {{len(project.subject_stats):,}} subjects, {{len(project.marks):,}} marks", flush=True)
    return project

serve("bench", build, title="simulated", port={port}, address="127.0.0.1", num_threads={threads},
      reviews=open_store({reviews!r}), num_procs={num_procs})
"""


#: The trees compared with this one: before this round of light sessions (lazy tabs, held changes, but
#: every decision anywhere redrew every session's cutout), and before sessions were made light at all
#: (all tabs built at open, no document freeze).
BEFORE_COMMITS = ("02410bd", "6679a04")

#: The start of code run in a fresh interpreter on one source tree (after its ``sys.path``): the project
#: (``{project}``), the review store, and the process's CPU seconds so far (``cpu()``).
SESSION_SETUP = '''import panel as pn
from bokeh.document import Document
from panel.io.state import set_curdoc
from dashboard.app import create_app
from project.reviews import open_store
{project}
reviews = open_store({reviews!r})
pn.extension("tabulator")

def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
'''

#: Runs in a fresh interpreter on one source tree: the server CPU of opening a session (built into a
#: Bokeh document and serialised, as the server does) and of switching subject in it, as JSON.
SESSION_CPU = """
import json, resource, sys
sys.path.insert(0, {tree!r}); sys.path.insert(0, {here!r})
""" + SESSION_SETUP + """
opens = []
for number in range({opens}):
    document = Document()
    start = cpu()
    with set_curdoc(document):
        template = create_app(project, reviews=reviews)
        template.server_doc(document)
    document.to_json()
    opens.append(cpu() - start)
ids = project.subject_stats.subject_id.to_numpy()[1:{switches} + 1]
store = template.explorer.data_store
switches = []
with set_curdoc(document):
    for subject_id in ids:
        start = cpu()
        store.subject = int(subject_id)
        switches.append(cpu() - start)
# Another session decides on subjects this one does not show; this one reads the store again, as its
# periodic refresh does (every session does it after every decision made anywhere).
other = Document()
with set_curdoc(other):
    deciding = create_app(project, reviews=reviews)
    deciding.server_doc(other)
    deciding.explorer.data_store.reviewer = "bench"
refreshes = []
for subject_id in project.consensus.subject_id.drop_duplicates().to_numpy()[-10:]:  # subjects with boxes
    with set_curdoc(other):
        deciding.explorer.data_store.subject = int(subject_id)
        deciding.explorer.review.accept()
    with set_curdoc(document):
        start = cpu()
        store.refresh_reviews()
        refreshes.append(cpu() - start)
print(json.dumps({{"opens": opens, "switches": switches, "refreshes": refreshes}}))
"""
DEMO_PROJECT = """
from project import load_project
from zoolens import demo
folder = demo.default_demo_folder()
files = demo.ensure_demo(folder)
project = load_project([files.classifications, files.subjects, files.workflows], title="demo",
                       image_roots=[folder.resolve()], **demo.PROJECT_OPTIONS)
"""
SIMULATED_PROJECT = """
from bench_dashboard import simulated_tables
from project import Project
project = Project(**simulated_tables({subjects}))
"""


def session_cpu(tree: Path, subjects: int | None, opens: int = 4, switches: int = 30) -> dict:
    """Server CPU seconds to open ``opens`` sessions (the first pays for imports) and per subject switch."""
    project = DEMO_PROJECT if subjects is None else SIMULATED_PROJECT.format(subjects=subjects)
    folder = Path(tempfile.mkdtemp(prefix="zoolens-bench-session-cpu-"))
    code = SESSION_CPU.format(tree=str(tree), here=str(HERE), project=project, reviews=str(folder / "r.sqlite"),
                              opens=opens, switches=switches)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tree,
                          env={**os.environ, "PYTHONPATH": str(tree)})
    if done.returncode:
        raise RuntimeError(f"measuring the session CPU of {tree} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def tree_at(commit: str) -> Path:
    """The tree at ``commit``, unpacked by ``git archive`` into a temporary folder."""
    folder = Path(tempfile.mkdtemp(prefix=f"zoolens-sessions-{commit}-"))
    archive = subprocess.run(["git", "archive", commit], cwd=ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder


def cpu_section(subjects: int | None) -> str:
    """Open, switch and refresh CPU, this tree against `BEFORE_COMMITS`, one after another in one run."""
    runs = {"this tree": session_cpu(ROOT, subjects)}
    runs.update({f"`{commit}`": session_cpu(tree_at(commit), subjects) for commit in BEFORE_COMMITS})
    name = "the built-in demo" if subjects is None else f"a simulated project of {subjects:,} subjects"
    ms = lambda values: f"{np.median(values) * 1000:,.0f}"  # noqa: E731
    p95 = lambda values: f"{np.percentile(values, 95) * 1000:,.0f}"  # noqa: E731
    rows = {
        "open the first session of the process, ms": lambda run: f"{run['opens'][0] * 1000:,.0f}",
        "open a further session, median ms": lambda run: ms(run["opens"][1:]),
        "switch subject, median / p95 ms": lambda run: f"{ms(run['switches'])} / {p95(run['switches'])}",
        "read another session's decision (periodic refresh), median / p95 ms":
            lambda run: f"{ms(run['refreshes'])} / {p95(run['refreshes'])}",
    }
    return "\n".join([
        f"### Server CPU of one session on {name} (in one process, no client)",
        "",
        f"Measured by `session_cpu`: a session built into a Bokeh document and serialised as the server does, "
        f"then {len(runs['this tree']['switches'])} subject switches, then {len(runs['this tree']['refreshes'])} "
        "decisions made in a second session on other subjects, each read by the first as its periodic refresh "
        f"does; this tree against {' and '.join(f'`{commit}`' for commit in BEFORE_COMMITS)} "
        "(by `git archive`): before this round, and before sessions were made light.",
        "",
        "| CPU | " + " | ".join(runs) + " |",
        "| --- | " + " | ".join("---:" for _ in runs) + " |",
        *(f"| {label} | " + " | ".join(cell(run) for run in runs.values()) + " |" for label, cell in rows.items()),
        "",
    ])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (the server started by its supervisor, or its forked worker processes with
    ``--num-procs``)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            parents.setdefault(parent, []).append(int(entry.name))
    tree, waiting = [], [pid]
    while waiting:
        tree.append(waiting.pop())
        waiting += parents.get(tree[-1], [])
    return tree


def process_sample(pid: int) -> tuple[float, float]:
    """Resident memory (MiB) and CPU seconds (user + system) of process ``pid`` and its descendants, summed."""
    rss = cpu = 0.0
    for member in process_tree(pid):
        try:
            with open(f"/proc/{member}/status") as status:
                rss += next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, StopIteration):  # ended meanwhile
            continue
        cpu += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return rss, cpu


#: jemalloc's settings for ``+jemalloc`` (unless MALLOC_CONF is set): the README's advice for a server that must
#: give memory back.
JEMALLOC_CONF = "background_thread:true,dirty_decay_ms:5000,muzzy_decay_ms:0"


def start_server(port: int, threads: int, reviews: Path | str, subjects: int | None, log: Path,
                 tree: Path = ROOT, allocator: str = "", num_procs: int = 1) -> subprocess.Popen:
    """The server process of source ``tree`` (default this one), listening on ``port`` once the project has
    loaded (waited for here); with ``allocator`` "malloc", CPython allocates its objects with the C library's
    malloc, with "jemalloc" with jemalloc's (preloaded); with ``num_procs`` > 1 it forks that many processes, each
    loading the project."""
    environment = {**os.environ, "PYTHONPATH": str(tree)}
    if allocator:
        environment["PYTHONMALLOC"] = "malloc"
    if allocator == "jemalloc":
        import ctypes.util

        library = ctypes.util.find_library("jemalloc")
        if library is None:
            raise SystemExit("bench_sessions: +jemalloc needs jemalloc (Debian: apt install libjemalloc2)")
        environment["LD_PRELOAD"] = library
        # Its own thread gives freed pages back after 5 s: without it jemalloc purges only while it is called, and
        # an idle server after the sessions closed kept everything (652 of 655 MiB, 06:47 run in sessions.md).
        environment.setdefault("MALLOC_CONF", JEMALLOC_CONF)
    if subjects is None:
        command = [sys.executable, "-m", "zoolens", "demo", "--port", str(port), "--num-threads", str(threads),
                   "--reviews", str(reviews), "--num-procs", str(num_procs)]
    else:
        code = SERVE_SIMULATED.format(root=str(tree), here=str(HERE), subjects=subjects, port=port,
                                      threads=threads, reviews=str(reviews), num_procs=num_procs)
        command = [sys.executable, "-c", code]
    # Its own process group: forked workers end with it (`stop_server`).
    server = subprocess.Popen(command, cwd=tree, env=environment, stdout=log.open("w"), stderr=subprocess.STDOUT,
                              start_new_session=True)
    import requests

    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        try:
            page = requests.get(f"http://127.0.0.1:{port}/", timeout=120)
            if b"Loading" not in page.content or b"zoolens" not in page.content:
                break
        except requests.ConnectionError:
            pass
        time.sleep(1)
    # Wait until the project has loaded (in every process): a session opened now shows the views, not the progress.
    while time.monotonic() < deadline:
        if log.read_text().count("subjects,") >= num_procs:
            return server
        time.sleep(1)
    stop_server(server)
    raise TimeoutError(f"the server never loaded its project; see {log}")


def stop_server(server: subprocess.Popen) -> None:
    """End the server and its forked workers (its process group), as Ctrl-C does."""
    try:
        os.killpg(server.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    server.wait(timeout=60)


async def act_until(client: Client, stop_at: float, think: float, rng: random.Random) -> None:
    """One session: open, then act every ``think`` seconds or so until ``stop_at``, errors kept, not raised."""
    try:
        await client.open()
    except Exception as error:  # a session that cannot open is the first error to report
        client.errors.append(f"open: {type(error).__name__}: {error}")
        return
    # Weighted as a review goes: mostly switching and deciding, sometimes filtering or exporting.
    actions = [client.switch] * 5 + [client.decide] * 3 + [client.filter] + [client.export]
    while time.perf_counter() < stop_at:
        await asyncio.sleep(rng.uniform(0.5 * think, 1.5 * think))
        try:
            await rng.choice(actions)()
        except Exception as error:
            client.errors.append(f"{type(error).__name__}: {error}")

async def drive(url: str, sessions: int, seconds: float, think: float, pid: int, samples: list) -> list[Client]:
    """Open ``sessions`` clients over the first tenth of the run, drive them, close them all."""
    rng = random.Random(1)
    clients = [Client(url, number) for number in range(sessions)]
    stop_at = time.perf_counter() + seconds
    started = time.perf_counter()

    async def sample():
        while True:
            rss, cpu = process_sample(pid)
            samples.append((time.perf_counter() - started, rss, cpu, "running"))
            await asyncio.sleep(SAMPLE_SECONDS)

    sampler = asyncio.ensure_future(sample())

    async def staggered(client, delay):
        await asyncio.sleep(delay)
        await act_until(client, stop_at, think, random.Random(rng.random()))

    ramp = min(60.0, seconds / 5)
    await asyncio.gather(*(staggered(client, ramp * number / sessions) for number, client in enumerate(clients)))
    for client in clients:
        await client.close()
    sampler.cancel()
    return clients


def run_one(spec: str, args, postgres=None, tree: Path = ROOT, name: str = "") -> dict:
    """One server run of source ``tree`` (called ``name`` in the report): ``spec`` is the worker threads,
    ``+malloc`` after it for ``PYTHONMALLOC=malloc``, ``+jemalloc`` for that with jemalloc preloaded; the decisions
    go to a new database on ``postgres`` (`tests.postgres_server.PostgresServer`) when given."""
    threads, _, allocator = spec.partition("+")
    threads = int(threads)
    port = free_port()
    folder = Path(tempfile.mkdtemp(prefix="zoolens-bench-sessions-"))
    log = folder / "server.log"
    reviews = postgres.url(database(postgres)) if postgres is not None else folder / "reviews.sqlite"
    server = start_server(port, threads, reviews, args.subjects, log, tree=tree, allocator=allocator,
                          num_procs=args.num_procs)
    load_before = os.getloadavg()
    spy = None
    if args.py_spy:
        spy = subprocess.Popen([shutil.which("py-spy"), "record",
                                "--pid", str(server.pid), "--subprocesses", "--nonblocking", "--format", "raw",
                                "--output", str(args.py_spy.with_name(
                                    f"{args.py_spy.stem}{'-' + name.strip('`') if name else ''}{args.py_spy.suffix}")),
                                "--duration", f"{args.minutes * 60 + 60:.0f}"],
                               stdout=subprocess.DEVNULL, stderr=(folder / "py-spy.log").open("w"))
    try:
        samples: list = []
        idle_rss, idle_cpu = process_sample(server.pid)
        start = time.perf_counter()
        clients = asyncio.run(drive(f"http://127.0.0.1:{port}", args.sessions, args.minutes * 60, args.think,
                                    server.pid, samples))
        ran = time.perf_counter() - start
        _, cpu_end = process_sample(server.pid)
        # Panel drops a closed session's document at its next check for unused sessions.
        settle_start = time.perf_counter()
        while time.perf_counter() - settle_start < args.settle:
            time.sleep(SAMPLE_SECONDS)
            rss, cpu = process_sample(server.pid)
            samples.append((ran + time.perf_counter() - settle_start, rss, cpu, "closed"))
        decisions = count_decisions(reviews)
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)  # py-spy writes what it sampled so far
            spy.wait(timeout=120)
        stop_server(server)
    times = {action: [t for client in clients for t in client.times[action]] for action in ACTIONS}
    errors = [error for client in clients for error in client.errors]
    return {"threads": threads, "label": (f"{name}: " if name else "")
            + (f"{threads} worker threads" if threads else "no threads (event loop)")
            + ({"malloc": ", PYTHONMALLOC=malloc", "jemalloc": ", PYTHONMALLOC=malloc, jemalloc"}.get(allocator, ""))
            + (f", {args.num_procs} processes" if args.num_procs > 1 else "")
            + (", PostgreSQL store" if args.postgres else ""), "load": (load_before, os.getloadavg()), "times": times, "errors": errors, "samples": samples, "idle_rss": idle_rss,
            "idle_cpu": idle_cpu, "cpu": cpu_end - idle_cpu, "seconds": ran, "decisions": decisions,
            # Servers that ended to give their memory back (`dashboard.recycling`), after the sessions closed.
            "recycled": log.read_text().count("ends to give that memory back")}


def database(postgres) -> str:
    """A new, empty database on the benchmark's PostgreSQL server; its name."""
    name = f"zoolens_bench_{time.time_ns()}"
    postgres.execute(f"CREATE DATABASE {name}")
    return name


def count_decisions(reviews: Path | str) -> int:
    """Decisions in the review store (a SQLite file or a database URL)."""
    if isinstance(reviews, Path):
        with sqlite3.connect(reviews) as connection:
            return connection.execute("select count(*) from review_decisions").fetchone()[0]
    import sqlalchemy as sa

    engine = sa.create_engine(reviews)
    try:
        with engine.connect() as connection:
            return connection.execute(sa.text("select count(*) from review_decisions")).scalar()
    finally:
        engine.dispose()


def milliseconds(values: list[float], q: float) -> str:
    return f"{np.percentile(values, q) * 1000:,.0f}" if values else "–"


def report(runs: list[dict], args, load_before: tuple, load_after: tuple) -> str:
    project = "the built-in demo (60 subjects)" if args.subjects is None else f"a simulated project of {args.subjects:,} subjects"
    commit = args.commit
    lines = [
        f"## The load test at {commit} ({dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC)",
        "",
        f"Run {dt.date.today().isoformat()} on {machine()} by `python bench/bench_sessions.py --sessions "
        f"{args.sessions} --minutes {args.minutes:g} --think {args.think:g}"
        + (f" --subjects {args.subjects}" if args.subjects else "") + f" --threads {' '.join(map(str, args.threads))}"
        + (f" --num-procs {args.num_procs}" if args.num_procs > 1 else "") + (" --postgres" if args.postgres else "")
        + (f" --settle {args.settle:g}" if args.settle != SETTLE_SECONDS else "")
        + "".join(f" --against {commit}" for commit in args.against)
        + (f" --only {args.only}" if args.only else "") + "`.",
        f"Served: {project}; {args.sessions} sessions opened over the first "
        f"{min(60.0, args.minutes * 12):.0f} s, each then acting every {args.think:g} s on average "
        "(5 switches : 3 decisions : 1 filter : 1 export) for the whole run; clients and server share the machine.",
        f"Load average at the start {load_before[0]:.1f} / {load_before[1]:.1f} / {load_before[2]:.1f} (1 / 5 / 15 min), "
        f"at the end {load_after[0]:.1f} / {load_after[1]:.1f} / {load_after[2]:.1f}: the machine is shared with other "
        "engineers' work, so these times are upper bounds.",
        "",
        "Load average (1 / 5 / 15 min) at the start and end of each run: " + "; ".join(
            f"{run['label']}: " + " -> ".join(" / ".join(f"{value:.1f}" for value in load) for load in run["load"])
            for run in runs) + ".",
        "",
        "| | " + " | ".join(run["label"] for run in runs) + " |",
        "| --- | " + " | ".join("---:" for _ in runs) + " |",
    ]
    for action in ACTIONS:
        lines.append(f"| {action}: count, p50 / p95 ms | " + " | ".join(
            f"{len(run['times'][action]):,}: {milliseconds(run['times'][action], 50)} / "
            f"{milliseconds(run['times'][action], 95)}" for run in runs) + " |")
    lines.append("| errors | " + " | ".join(f"{len(run['errors'])}" for run in runs) + " |")
    lines.append("| decisions in the store (decide actions answered) | " + " | ".join(
        f"{run['decisions']:,} ({len(run['times']['decide']):,})" for run in runs) + " |")
    lines.append("| server CPU during the run, per action" + (" (all processes)" if args.num_procs > 1 else "") + " | " + " | ".join(
        f"{run['cpu']:.0f} s, {run['cpu'] / max(1, sum(len(t) for t in run['times'].values())) * 1000:.0f} ms"
        for run in runs) + " |")
    lines.append("| server processes replaced by a fresh one (`dashboard.recycling`) | " + " | ".join(
        f"{run.get('recycled', 0)}" for run in runs) + " |")
    for label, pick in (("server RSS idle, before", lambda run: run["idle_rss"]),
                        ("server RSS peak while running", lambda run: max(s[1] for s in run["samples"] if s[3] == "running")),
                        ("server RSS at the end of the run", lambda run: [s for s in run["samples"] if s[3] == "running"][-1][1]),
                        (f"server RSS {args.settle:.0f} s after every session closed",
                         lambda run: run["samples"][-1][1])):
        lines.append(f"| {label} | " + " | ".join(f"{pick(run):,.0f} MiB" for run in runs) + " |")
    for run in runs:
        if run["errors"]:
            kinds: dict[str, int] = {}
            for error in run["errors"]:
                kinds[error] = kinds.get(error, 0) + 1
            lines += ["", f"Errors with {run['label']}: "
                      + "; ".join(f"{count} × {kind}" for kind, count in sorted(kinds.items(), key=lambda kv: -kv[1]))]
    for run in runs:
        lines += ["", f"Server memory over time, {run['label']} (seconds: MiB, every {SAMPLE_SECONDS * 6:.0f} s; "
                  "after the run, the sessions are closed):", ""]
        shown = run["samples"][::6] + ([run["samples"][-1]] if len(run["samples"]) % 6 != 1 else [])
        lines.append(", ".join(f"{at:.0f} s: {rss:,.0f}" + (" (closed)" if phase == "closed" else "")
                               for at, rss, _, phase in shown))
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=50, help="concurrent sessions (default 50)")
    parser.add_argument("--minutes", type=float, default=5.0, help="how long they act (default 5)")
    parser.add_argument("--think", type=float, default=10.0,
                        help="mean seconds between one session's actions (default 10: a reviewer looks at each subject)")
    parser.add_argument("--subjects", type=int, default=None,
                        help="serve a simulated project of this many subjects instead of the demo")
    parser.add_argument("--threads", nargs="+", default=["4", "0", "4+malloc"],
                        help="worker thread counts to compare, one server run each; N+malloc runs the server with "
                             "PYTHONMALLOC=malloc, N+jemalloc with that and jemalloc preloaded (default 4 0 4+malloc)")
    parser.add_argument("--settle", type=float, default=SETTLE_SECONDS,
                        help="seconds to follow the server's memory after the sessions close")
    parser.add_argument("--num-procs", type=int, default=1,
                        help="server processes (zoolens demo --num-procs; default 1); more than one needs --postgres")
    parser.add_argument("--postgres", action="store_true",
                        help="keep the decisions in a PostgreSQL started on loopback for the run, not in SQLite")
    parser.add_argument("--against", nargs="+", default=[], metavar="COMMIT",
                        help="run the load test on the tree at each COMMIT too (git archive), before this tree's, "
                             "with the same settings, for a side-by-side result")
    parser.add_argument("--py-spy", type=Path, default=None,
                        help="record the server's processes with py-spy into this file (raw stacks)")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where the Markdown result goes")
    parser.add_argument("--only", choices=("load", "cpu"), default=None,
                        help="only the load test, or only the per-session CPU against the older tree "
                             "(appended to --output)")
    args = parser.parse_args()
    if args.only == "cpu":
        load = os.getloadavg()
        text = cpu_section(args.subjects) + (f"\nLoad average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} at the "
                                              f"start, {os.getloadavg()[0]:.1f} at the end; {machine()}.\n")
        with args.output.open("a") as results:
            results.write("\n" + text)
        print(text)
        return
    if args.py_spy and not shutil.which("py-spy"):
        parser.error("--py-spy needs py-spy on the PATH (e.g. python3 -m venv /tmp/pyspy && "
                     "/tmp/pyspy/bin/pip install py-spy; PATH=/tmp/pyspy/bin:$PATH)")
    if args.num_procs > 1 and not args.postgres:
        parser.error("--num-procs above 1 needs --postgres: the processes share one review store")
    # The commit measured: taken before the runs, during which the worktree may move on.
    args.commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                 text=True, check=False).stdout.strip()
    load_before = os.getloadavg()
    with (running_postgres() if args.postgres else contextlib.nullcontext()) as postgres:
        trees = [(tree_at(commit), f"`{commit}`") for commit in args.against]
        trees.append((ROOT, "this tree" if args.against else ""))
        runs = [run_one(threads, args, postgres, tree, name) for tree, name in trees for threads in args.threads]
    text = report(runs, args, load_before, os.getloadavg())
    with args.output.open("a") as results:
        results.write("\n" + text)
    print(text)


if __name__ == "__main__":
    main()
