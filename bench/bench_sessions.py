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
``bench/results/sessions.md``, side by side for each ``--threads`` value (the default 4 worker
threads, and 0: every callback on the server's event loop).

    python bench/bench_sessions.py                          # 50 sessions, 5 minutes, demo
    python bench/bench_sessions.py --sessions 10 --minutes 1 --threads 4
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "sessions.md"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from bench_loaders import machine  # noqa: E402  (the sibling benchmark's machine description)

#: Seconds an action may wait for the server's answer before it counts as an error.
TIMEOUT = 60.0
ACTIONS = ("open", "switch", "filter", "decide", "export")
#: How often the server's memory and CPU are sampled, seconds.
SAMPLE_SECONDS = 5.0

#: Serves a simulated project (run in a fresh interpreter): ``--subjects`` instead of the demo.
SERVE_SIMULATED = """
import sys
sys.path.insert(0, {root!r}); sys.path.insert(0, {here!r})
from bench_dashboard import simulated_tables
from dashboard.app import serve
from project import Project
from project.reviews import open_store
tables = simulated_tables({subjects})
serve("bench", lambda progress: Project(**tables, title="simulated"), title="simulated", port={port},
      address="127.0.0.1", num_threads={threads}, reviews=open_store({reviews!r}))
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def process_sample(pid: int) -> tuple[float, float]:
    """Resident memory (MiB) and CPU seconds (user + system) of process ``pid``."""
    with open(f"/proc/{pid}/status") as status:
        rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return rss, cpu


def start_server(port: int, threads: int, reviews: Path, subjects: int | None, log: Path) -> subprocess.Popen:
    """The server process, listening on ``port`` once the project has loaded (waited for here)."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    if subjects is None:
        command = [sys.executable, "-m", "zoolens", "demo", "--port", str(port), "--num-threads", str(threads),
                   "--reviews", str(reviews)]
    else:
        code = SERVE_SIMULATED.format(root=str(ROOT), here=str(HERE), subjects=subjects, port=port,
                                      threads=threads, reviews=str(reviews))
        command = [sys.executable, "-c", code]
    server = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=log.open("w"), stderr=subprocess.STDOUT)
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
    # Wait until the project has loaded: a session opened now shows the views, not the progress.
    while time.monotonic() < deadline:
        if "subjects," in log.read_text():
            return server
        time.sleep(1)
    server.kill()
    raise TimeoutError(f"the server never loaded its project; see {log}")


def find_models(document: object, name: str) -> list[dict]:
    """Every model of type ``name`` in a Bokeh JSON document or patch, as its JSON object."""
    found, stack = [], [document]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if item.get("type") == "object" and item.get("name") == name:
                found.append(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


class Client:
    """One simulated reviewer: a websocket speaking the Bokeh protocol to one session of the server."""

    def __init__(self, url: str, number: int):
        self.url, self.number = url, number
        self.socket = None
        self.patches: list[str] = []
        self.arrived = asyncio.Event()
        self.times: dict[str, list[float]] = {action: [] for action in (*ACTIONS, "tab")}
        self.errors: list[str] = []
        self.document: dict | None = None
        self.export_button: str | None = None

    async def _send(self, msgtype: str, content: dict) -> None:
        header = {"msgid": uuid.uuid4().hex, "msgtype": msgtype}
        await self.socket.write_message(json.dumps(header))
        await self.socket.write_message("{}")
        await self.socket.write_message(json.dumps(content))

    async def _read(self) -> None:
        """Collect the server's messages: the document on PULL-DOC-REPLY, every PATCH-DOC as text."""
        from bokeh.protocol import Protocol
        from bokeh.protocol.receiver import Receiver

        receiver = Receiver(Protocol())
        while True:
            fragment = await self.socket.read_message()
            if fragment is None:
                return
            message = await receiver.consume(fragment)
            if message is None:
                continue
            if message.msgtype == "PULL-DOC-REPLY":
                self.document = message.content["doc"]
            elif message.msgtype == "PATCH-DOC":
                self.patches.append(json.dumps(message.content))
            self.arrived.set()

    async def _until(self, action: str, sent_at: float, since: int, answered) -> bool:
        """Wait for a patch after index ``since`` that ``answered``; record the time or the error."""
        deadline = sent_at + TIMEOUT
        while True:
            new = self.patches[since:]
            failed = [patch for patch in new if '"notification_type"' in patch or '"type": "error"' in patch]
            if any('"error"' in patch and "notification" in patch for patch in failed):
                self.errors.append(f"{action}: the server notified an error")
                return False
            if any(answered(patch) for patch in new):
                self.times[action].append(time.perf_counter() - sent_at)
                return True
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                self.errors.append(f"{action}: no answer in {TIMEOUT:.0f} s")
                return False
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), timeout=remaining)
            except asyncio.TimeoutError:
                pass

    def _model(self, name: str, **attributes) -> str:
        for model in find_models(self.document, name):
            if all(model.get("attributes", {}).get(key) == value for key, value in attributes.items()):
                return model["id"]
        raise LookupError(f"no {name} with {attributes} in the page")

    async def _click(self, model_id: str) -> None:
        event = {"type": "event", "name": "button_click", "values": {"model": {"id": model_id}}}
        await self._send("PATCH-DOC", {"events": [{"kind": "MessageSent", "msg_type": "bokeh_event",
                                                   "msg_data": event}]})

    async def _change(self, model_id: str, attribute: str, value) -> None:
        await self._send("PATCH-DOC", {"events": [{"kind": "ModelChanged", "model": {"id": model_id},
                                                   "attr": attribute, "new": value}]})

    async def open(self) -> None:
        from bokeh.util.token import generate_jwt_token
        from tornado.websocket import websocket_connect

        start = time.perf_counter()
        session_id = uuid.uuid4().hex
        self.socket = await websocket_connect(f"{self.url.replace('http', 'ws')}/ws",
                                              subprotocols=["bokeh", generate_jwt_token(session_id)],
                                              max_message_size=200 * 2**20)
        self.reader = asyncio.ensure_future(self._read())
        await self._send("PULL-DOC-REQ", {})
        while self.document is None:
            self.arrived.clear()
            await asyncio.wait_for(self.arrived.wait(), timeout=TIMEOUT)
        # BokehJS says so once the page is drawn; the app's onload work waits for it.
        await self._send("PATCH-DOC", {"events": [{"kind": "MessageSent", "msg_type": "bokeh_event",
                                                   "msg_data": {"type": "event", "name": "document_ready",
                                                                "values": {}}}]})
        self.times["open"].append(time.perf_counter() - start)
        self.next_button = self._model("Button", label="Next ▶")
        self.accept_button = self._model("Button", label="Accept")
        self.name_box = self._model("TextInput", placeholder="needed to record decisions")
        self.min_volunteers = next(model["id"] for model in find_models(self.document, "IntInput")
                                   + find_models(self.document, "Spinner")
                                   if "volunteers" in str(model["attributes"].get("title", "")).lower())
        self.tabs = find_models(self.document, "Tabs")[0]["id"]
        await self._change(self.name_box, "value", f"load-test-{self.number}")

    async def switch(self) -> None:
        since, start = len(self.patches), time.perf_counter()
        await self._click(self.next_button)
        await self._until("switch", start, since, lambda patch: "Subject " in patch)

    async def filter(self) -> None:
        since, start = len(self.patches), time.perf_counter()
        await self._change(self.min_volunteers, "value", random.choice([0, 1, 2, 3]))
        await self._until("filter", start, since, lambda patch: " subjects" in patch or "Subject " in patch)

    async def decide(self) -> None:
        since, start = len(self.patches), time.perf_counter()
        await self._click(self.accept_button)
        await self._until("decide", start, since, lambda patch: "accepted" in patch)

    async def export(self) -> None:
        if self.export_button is None:
            since, start = len(self.patches), time.perf_counter()
            await self._change(self.tabs, "active", 5)
            if not await self._until("export", start, since, lambda patch: '"FileDownload"' in patch):
                return
            self.times["export"].pop()  # opening the tab is not the export
            opened = next(json.loads(patch) for patch in self.patches[since:] if '"FileDownload"' in patch)
            self.export_button = find_models(opened, "FileDownload")[0]["id"]
        else:
            await self._show_tab(5, "FileDownload")
        since, start = len(self.patches), time.perf_counter()
        self.downloads = getattr(self, "downloads", 0) + 1
        await self._change(self.export_button, "clicks", self.downloads)
        await self._until("export", start, since,
                          lambda patch: '"data"' in patch and self.export_button in patch)
        await self._show_tab(0, "Button")  # back to reviewing, as a reviewer would after downloading

    async def _show_tab(self, index: int, shows: str) -> None:
        """Bring tab ``index`` forward and wait until its models arrive (Panel renders only the shown tab)."""
        since, start = len(self.patches), time.perf_counter()
        await self._change(self.tabs, "active", index)
        if await self._until("tab", start, since, lambda patch: f'"{shows}"' in patch):
            self.times["tab"].pop()
            for patch in self.patches[since:]:
                document = json.loads(patch)
                for model in find_models(document, "Button"):
                    label = model.get("attributes", {}).get("label")
                    if label == "Next ▶":
                        self.next_button = model["id"]
                    elif label == "Accept":
                        self.accept_button = model["id"]

    async def run(self, stop_at: float, think: float, rng: random.Random) -> None:
        try:
            await self.open()
        except Exception as error:  # a session that cannot open is the first error to report
            self.errors.append(f"open: {type(error).__name__}: {error}")
            return
        # Weighted as a review goes: mostly switching and deciding, sometimes filtering or exporting.
        actions = [self.switch] * 5 + [self.decide] * 3 + [self.filter] + [self.export]
        while time.perf_counter() < stop_at:
            await asyncio.sleep(rng.uniform(0.5 * think, 1.5 * think))
            try:
                await rng.choice(actions)()
            except Exception as error:
                self.errors.append(f"{type(error).__name__}: {error}")

    async def close(self) -> None:
        if self.socket is not None:
            self.socket.close()
        if getattr(self, "reader", None) is not None:
            self.reader.cancel()


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
        await client.run(stop_at, think, random.Random(rng.random()))

    ramp = min(30.0, seconds / 10)
    await asyncio.gather(*(staggered(client, ramp * number / sessions) for number, client in enumerate(clients)))
    for client in clients:
        await client.close()
    sampler.cancel()
    return clients


def run_one(threads: int, args) -> dict:
    port = free_port()
    folder = Path(tempfile.mkdtemp(prefix="zoolens-bench-sessions-"))
    reviews, log = folder / "reviews.sqlite", folder / "server.log"
    server = start_server(port, threads, reviews, args.subjects, log)
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
        with sqlite3.connect(reviews) as database:
            decisions = database.execute("select count(*) from review_decisions").fetchone()[0]
    finally:
        server.terminate()
        server.wait(timeout=60)
    times = {action: [t for client in clients for t in client.times[action]] for action in ACTIONS}
    errors = [error for client in clients for error in client.errors]
    return {"threads": threads, "times": times, "errors": errors, "samples": samples, "idle_rss": idle_rss,
            "idle_cpu": idle_cpu, "cpu": cpu_end - idle_cpu, "seconds": ran, "decisions": decisions}


def milliseconds(values: list[float], q: float) -> str:
    return f"{np.percentile(values, q) * 1000:,.0f}" if values else "–"


def report(runs: list[dict], args, load_before: tuple, load_after: tuple) -> str:
    project = "the built-in demo (60 subjects)" if args.subjects is None else f"a simulated project of {args.subjects:,} subjects"
    lines = [
        "# Many sessions at once: Bokeh protocol clients against one server",
        "",
        f"Run {dt.date.today().isoformat()} on {machine()} by `python bench/bench_sessions.py --sessions "
        f"{args.sessions} --minutes {args.minutes:g} --think {args.think:g}"
        + (f" --subjects {args.subjects}" if args.subjects else "") + f" --threads {' '.join(map(str, args.threads))}`.",
        f"Served: {project}; {args.sessions} sessions opened over the first "
        f"{min(30.0, args.minutes * 6):.0f} s, each then acting every {args.think:g} s on average "
        "(5 switches : 3 decisions : 1 filter : 1 export) for the whole run; clients and server share the machine.",
        f"Load average at the start {load_before[0]:.1f} / {load_before[1]:.1f} / {load_before[2]:.1f} (1 / 5 / 15 min), "
        f"at the end {load_after[0]:.1f} / {load_after[1]:.1f} / {load_after[2]:.1f}: the machine is shared with other "
        "engineers' work, so these times are upper bounds.",
        "",
        "| | " + " | ".join(f"{run['threads']} worker threads" if run["threads"] else "no threads (event loop)"
                            for run in runs) + " |",
        "| --- | " + " | ".join("---:" for _ in runs) + " |",
    ]
    for action in ACTIONS:
        lines.append(f"| {action}: count, p50 / p95 ms | " + " | ".join(
            f"{len(run['times'][action]):,}: {milliseconds(run['times'][action], 50)} / "
            f"{milliseconds(run['times'][action], 95)}" for run in runs) + " |")
    lines.append("| errors | " + " | ".join(f"{len(run['errors'])}" for run in runs) + " |")
    lines.append("| decisions in the store (decide actions answered) | " + " | ".join(
        f"{run['decisions']:,} ({len(run['times']['decide']):,})" for run in runs) + " |")
    lines.append("| server CPU during the run, per action | " + " | ".join(
        f"{run['cpu']:.0f} s, {run['cpu'] / max(1, sum(len(t) for t in run['times'].values())) * 1000:.0f} ms"
        for run in runs) + " |")
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
            lines += ["", f"Errors with {run['threads']} threads: "
                      + "; ".join(f"{count} × {kind}" for kind, count in sorted(kinds.items(), key=lambda kv: -kv[1]))]
    for run in runs:
        lines += ["", f"Server memory over time, {run['threads']} threads (seconds: MiB, every {SAMPLE_SECONDS * 6:.0f} s; "
                  "after the run, the sessions are closed):", ""]
        shown = run["samples"][::6] + ([run["samples"][-1]] if len(run["samples"]) % 6 != 1 else [])
        lines.append(", ".join(f"{at:.0f} s: {rss:,.0f}" + (" (closed)" if phase == "closed" else "")
                               for at, rss, _, phase in shown))
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=50, help="concurrent sessions (default 50)")
    parser.add_argument("--minutes", type=float, default=5.0, help="how long they act (default 5)")
    parser.add_argument("--think", type=float, default=5.0, help="mean seconds between one session's actions")
    parser.add_argument("--subjects", type=int, default=None,
                        help="serve a simulated project of this many subjects instead of the demo")
    parser.add_argument("--threads", type=int, nargs="+", default=[4, 0],
                        help="worker thread counts to compare, one server run each (default 4 0)")
    parser.add_argument("--settle", type=float, default=60.0,
                        help="seconds to follow the server's memory after the sessions close")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where the Markdown result goes")
    args = parser.parse_args()
    load_before = os.getloadavg()
    runs = [run_one(threads, args) for threads in args.threads]
    text = report(runs, args, load_before, os.getloadavg())
    args.output.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
