"""Thumbnails of remote subject pictures: made by the zoolens server on demand, a few at a time, against the
browser fetching the full-size pictures from the image host itself (what zoolens did before).

A real Panel server on loopback serves a project of subjects whose pictures are on a real HTTP image host on
loopback (`tests.image_host.ImageHost`) that waits ``--delay`` seconds before each answer, as a distant host
does, and serves a full-size JPEG (``--size``, as the Zooniverse upload host serves subjects). One table page
is ``--page`` thumbnails, asked for at once over six connections as a browser does. Side by side, in one run,
each with an empty cache:

- ``browser fetches``: the page's pictures straight from the image host (the old way): the bytes a browser
  gets, and how long it waits for them;
- ``server, N at a time``: the page's thumbnails from the server's thumbnail route, made by a pool of N threads
  (`project.thumbnails.THUMBNAIL_MAKERS`): how long the page waits, the CPU seconds of the process (server,
  image host and client are all in it), and how late the server's event loop answers meanwhile (a callback
  put on it every 10 ms, timed until it runs): the loop must never wait on a fetch;
- ``another session``: the same page again, as a second session opens it: from the thumbnails on disk.

The remaining alternative, fetching every subject's picture in the background after loading, is priced from
the same measurements: its bytes and fetches scale with the project (85,000 subjects for Clump Scout), the
on-demand ones with the pages looked at.

    python bench/bench_remote_thumbnails.py [--repeats 3] [--delay 0.15]

Writes bench/results/remote_thumbnails.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import requests

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "remote_thumbnails.md"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))
from bench_loaders import machine  # noqa: E402

from project import Project, thumbnails  # noqa: E402
from tests.dashboard.serving import serving  # noqa: E402
from tests.image_host import ImageHost  # noqa: E402

POOLS = (1, 2, 4, 8)
#: Connections a browser opens to one host at once (HTTP/1.1).
BROWSER_CONNECTIONS = 6
CLUMP_SCOUT_SUBJECTS = 85_000
#: A modest link from the user to the image host, to price the bytes in seconds.
LINK_MBIT = 20


def picture(size: tuple[int, int]) -> bytes:
    """A full-size JPEG of smooth random colour, about as large as a subject picture of that size."""
    from PIL import Image

    rng = np.random.default_rng(0)
    small = Image.fromarray(rng.integers(0, 255, (size[1] // 16, size[0] // 16, 3), dtype=np.uint8))
    out = io.BytesIO()
    small.resize(size, Image.BICUBIC).save(out, format="JPEG", quality=90)
    return out.getvalue()


def project_of(host: ImageHost, subjects: int) -> Project:
    """A project of ``subjects`` subjects, one volunteer's point on each, pictures on ``host``."""
    ids = np.arange(1, subjects + 1)
    classifications = pd.DataFrame({
        "classification_id": ids, "subject_id": ids, "user": "alice", "user_id": 1, "workflow_id": 1,
        "workflow_version": "1.1", "created_at": pd.Timestamp("2024-01-01", tz="UTC"), "n_marks": 1,
        "gold_standard": False, "expert": False, "classifier": "pfe"})
    marks = pd.DataFrame({
        "mark_id": ids, "classification_id": ids, "subject_id": ids, "user": "alice", "task": "T0", "tool": 0,
        "tool_label": "cat", "frame": 0, "x": 10.0, "y": 12.0, "width": np.nan, "height": np.nan, "angle": 0.0,
        "kind": "point"})
    subjects_table = pd.DataFrame({"subject_id": ids, "width": np.nan, "height": np.nan, "retired": False,
                                   "locations": [{"0": f"{host.url}/subject_location/{i}.jpeg"} for i in ids]})
    return Project(classifications, marks, subjects=subjects_table, image_hosts=(host.host,), title="bench")


def loop_lag(served, stop: threading.Event, lags: list) -> None:
    """Until ``stop``: how late a callback put on the server's event loop runs, every 10 ms."""
    while not stop.is_set():
        started = time.perf_counter()
        served.on_loop(lambda: None)
        lags.append(time.perf_counter() - started)
        time.sleep(0.01)


def one_page(urls: list[str]) -> tuple[float, int, list[int]]:
    """Wall seconds until every URL has answered (six at a time, as a browser), bytes received, statuses."""
    started = time.perf_counter()
    with ThreadPoolExecutor(BROWSER_CONNECTIONS) as browser:
        answers = list(browser.map(lambda url: requests.get(url, timeout=120), urls))
    return time.perf_counter() - started, sum(len(a.content) for a in answers), [a.status_code for a in answers]


def measure(variant: str, served, project: Project, host: ImageHost, page_ids: list[int], work: Path) -> dict:
    """One run of one variant, on a fresh, empty cache but for ``another session``."""
    if variant != "another session":
        os.environ["ZOOLENS_CACHE_DIR"] = tempfile.mkdtemp(dir=work)
    stats = project.subject_stats.set_index("subject_id")
    fetches = sum(host.hits.values())
    stop, lags = threading.Event(), []
    probe = threading.Thread(target=loop_lag, args=(served, stop, lags))
    probe.start()
    cpu = time.process_time()
    if variant == "browser fetches":
        wall, size, statuses = one_page([project.subject(i).locations["0"] for i in page_ids])
    else:
        if variant != "another session":
            thumbnails.THUMBNAIL_MAKERS = ThreadPoolExecutor(int(variant.split()[1]))
        wall, size, statuses = one_page([f"{served.url}/{stats.thumbnail[i]}" for i in page_ids])
    cpu = time.process_time() - cpu
    stop.set()
    probe.join()
    assert statuses == [200] * len(page_ids), statuses
    return {"variant": variant, "wall": wall, "cpu": cpu, "bytes": size, "fetches": sum(host.hits.values()) - fetches,
            "lag_max": max(lags), "lag_median": statistics.median(lags)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs of each variant (interleaved); the median is shown")
    parser.add_argument("--delay", type=float, default=0.15, help="seconds the image host waits before each answer")
    parser.add_argument("--size", type=int, nargs=2, default=(1280, 960), help="width and height of the pictures")
    parser.add_argument("--page", type=int, default=7, help="thumbnails on a table page (the Subjects tab's 7)")
    args = parser.parse_args()
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    jpeg = picture(tuple(args.size))
    host = ImageHost(picture=jpeg, delay=args.delay)
    project = project_of(host, args.page * (len(POOLS) + 1) * args.repeats + 1)
    # The last pool's page is opened again by another session.
    variants = ["browser fetches", *(f"server, {n} at a time" for n in POOLS), "another session"]
    runs = []
    with tempfile.TemporaryDirectory() as scratch, serving(lambda progress: project, "bench-thumbnails", "bench") as served:
        work = Path(scratch)
        os.environ["ZOOLENS_CACHE_DIR"] = str(work / "warm-up")
        # The project loaded, imports and the pool warm, on a subject the runs do not use.
        warm = f"{served.url}/{project.subject_stats.thumbnail.iloc[-1]}"
        deadline = time.monotonic() + 60
        while requests.get(warm, timeout=60).status_code != 200:
            assert time.monotonic() < deadline, "the server never served a thumbnail"
            time.sleep(0.5)
        subject_ids = iter(project.subject_stats.subject_id.tolist())
        for _ in range(args.repeats):
            for variant in variants:
                # Other subjects each run (but another session's): nothing is cached by an earlier run.
                if variant != "another session":
                    page_ids = [next(subject_ids) for _ in range(args.page)]
                runs.append(measure(variant, served, project, host, page_ids, work))
    host.close()
    load_after = Path("/proc/loadavg").read_text().split()[:3]
    table = pd.DataFrame(runs).groupby("variant", sort=False).median()
    lines = [
        "# Remote subject pictures' thumbnails: made by the server on demand vs fetched by the browser",
        "",
        f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, {machine()}; load average before "
        f"{' '.join(load_before)}, after {' '.join(load_after)} (2 cores shared with other work).",
        f"Image host on loopback answering after {args.delay * 1000:.0f} ms, pictures {args.size[0]} x {args.size[1]} "
        f"JPEG of {len(jpeg) / 1024:.0f} KiB; a page of {args.page} thumbnails asked for at once over "
        f"{BROWSER_CONNECTIONS} connections; median of {args.repeats} runs, each on an empty cache. "
        "`python bench/bench_remote_thumbnails.py`.",
        "",
        "| variant | page waits (s) | bytes to the browser | fetches from the image host | process CPU (s) "
        "| event loop late, median / max (ms) |",
        "|---|---|---|---|---|---|",
    ]
    for variant, row in table.iterrows():
        lines.append(f"| {variant} | {row.wall:.2f} | {row.bytes / 1024:,.0f} KiB | {row.fetches:.0f} | {row.cpu:.2f} "
                     f"| {row.lag_median * 1000:.1f} / {row.lag_max * 1000:.1f} |")
    per_picture_cpu = table.loc[[f"server, {n} at a time" for n in POOLS], "cpu"].median() / args.page
    browser, server = table.loc["browser fetches", "bytes"], table.loc[f"server, {POOLS[-2]} at a time", "bytes"]
    lines += [
        "",
        f"The loopback host has no bandwidth limit, so the browser's own fetches look quick here; over a "
        f"{LINK_MBIT} Mbit/s link their bytes alone take {browser * 8 / LINK_MBIT / 1e6:.2f} s a page, the "
        f"thumbnails' {server * 8 / LINK_MBIT / 1e6:.2f} s (arithmetic, not measured). The event loop's lateness "
        f"stays in milliseconds while fetches wait {args.delay * 1000:.0f} ms on the host: no fetch runs on it.",
        "",
        f"Fetching every subject's picture in the background instead: {CLUMP_SCOUT_SUBJECTS:,} fetches and "
        f"{CLUMP_SCOUT_SUBJECTS * len(jpeg) / 2**30:,.1f} GiB from the image host for a Clump Scout-sized project "
        f"(pictures this size), about {CLUMP_SCOUT_SUBJECTS * per_picture_cpu / 3600:,.1f} CPU hours at the "
        f"{per_picture_cpu * 1000:.0f} ms of CPU a thumbnail costs here, before most of those pages are ever "
        f"looked at; on demand, {args.page} fetches a page looked at, once per cache.",
    ]
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
