"""A reviewer stepping through subjects whose pictures are on an image host: how long each step waits for the
cutout's picture, with the pictures of the next subjects read ahead (`dashboard.views.cutout.PREFETCHED_STEPS`,
`project.Project.prefetch_pictures`) and without (before 2026-12-07: each step fetched its picture then).

A real HTTP image host on loopback (`tests.image_host.ImageHost`) waits ``--delays`` seconds before each answer,
as a distant or a struggling host does, and serves a full-size JPEG, as the Zooniverse upload host serves
subjects. The reviewer opens a subject, looks at it for ``--dwell`` seconds (0: steps on at once, as a reviewer
skimming with j does), and steps on with j (`DataStore.step_subject`), ``--steps`` times. A step's wait is from
the key to the cutout's picture being ready (`CutoutViewer.image`), in the session's thread. The variants take
turns, each on a new project and an empty cache, so nothing one fetched helps another; the median of
``--repeats`` runs of each step's wait is shown, and the longest.

    python bench/bench_cutout_steps.py [--repeats 3] [--delays 0.3 1.5] [--dwells 0 2]

Writes bench/results/cutout_steps.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "cutout_steps.md"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))
from bench_loaders import machine  # noqa: E402
from bench_remote_thumbnails import picture, project_of  # noqa: E402

from dashboard.data_store import DataStore  # noqa: E402
from dashboard.views import CutoutViewer, cutout  # noqa: E402
from tests.image_host import ImageHost  # noqa: E402

READ_AHEAD = cutout.PREFETCHED_STEPS
VARIANTS = {"each picture fetched when its subject is shown": (),
            f"read ahead: steps {', '.join(f'{step:+d}' for step in READ_AHEAD)} (now)": READ_AHEAD}


def one_walk(steps_ahead: tuple, host: ImageHost, steps: int, dwell: float, work: Path) -> dict:
    """Open the first subject of a new project, then step on ``steps`` times: each step's wait in seconds."""
    cutout.PREFETCHED_STEPS = steps_ahead
    os.environ["ZOOLENS_CACHE_DIR"] = tempfile.mkdtemp(dir=work)  # the fetched pictures' cache: empty
    store = DataStore(project=project_of(host, steps + 3))
    viewer = CutoutViewer(data_store=store)
    cpu = time.process_time()
    viewer.image()
    waits = []
    for _ in range(steps):
        time.sleep(dwell)
        stepped = time.perf_counter()
        store.step_subject(1)
        viewer.image()
        waits.append(time.perf_counter() - stepped)
    return {"waits": waits, "cpu": time.process_time() - cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="walks of each variant (taking turns)")
    parser.add_argument("--delays", type=float, nargs="+", default=(0.3, 1.5),
                        help="seconds the image host waits before each answer, one host per value")
    parser.add_argument("--dwells", type=float, nargs="+", default=(0.0, 2.0),
                        help="seconds the reviewer looks at each subject before stepping on")
    parser.add_argument("--steps", type=int, default=10, help="steps of each walk")
    parser.add_argument("--size", type=int, nargs=2, default=(1280, 960), help="width and height of the pictures")
    args = parser.parse_args()
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    jpeg = picture(tuple(args.size))
    runs = []
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        for delay in args.delays:
            host = ImageHost(picture=jpeg, delay=delay)
            one_walk(READ_AHEAD, host, 1, 0.0, work)  # imports and the reading threads warm
            for dwell in args.dwells:
                for repeat in range(args.repeats):
                    for name, steps_ahead in list(VARIANTS.items())[::1 if repeat % 2 == 0 else -1]:
                        walk = one_walk(steps_ahead, host, args.steps, dwell, work)
                        runs.append({"delay": delay, "dwell": dwell, "variant": name, **walk})
            host.close()
    cutout.PREFETCHED_STEPS = READ_AHEAD
    load_after = Path("/proc/loadavg").read_text().split()[:3]
    lines = [
        "# A reviewer stepping through subjects with remote pictures: each step's wait for the picture",
        "",
        f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, {machine()}; load average before "
        f"{' '.join(load_before)}, after {' '.join(load_after)} (2 cores shared with other work). "
        f"Image host on loopback answering after the delay shown, pictures {args.size[0]} x {args.size[1]} JPEG of "
        f"{len(jpeg) / 1024:.0f} KiB; {args.steps} steps with j after the first subject, the reviewer looking at "
        f"each for the dwell shown; {args.repeats} walks of each variant, taking turns, each on a new project and an "
        "empty cache. `python bench/bench_cutout_steps.py`. A step's wait is from the key to the cutout's picture "
        "ready in the session's thread (what is sent to the browser after it is the same for both).",
        "",
        "| host answers after (s) | reviewer looks (s) | variant | median wait per step (s) | longest wait (s) | "
        "CPU of the walk (s) |",
        "|---|---|---|---|---|---|",
    ]
    table = pd.DataFrame(runs)
    for (delay, dwell, variant), group in table.groupby(["delay", "dwell", "variant"], sort=False):
        waits = [wait for walk in group.waits for wait in walk]
        lines.append(f"| {delay:g} | {dwell:g} | {variant} | {statistics.median(waits):.3f} | {max(waits):.3f} | "
                     f"{statistics.median(group.cpu):.2f} |")
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
