"""A gallery page of subjects whose pictures are on an image host: when the page shows, and when its last picture
is in, for the three ways the gallery has made it.

- one after another: every thumbnail made in the session's thread before the page shows (before 2026-12-07);
- a few at a time: made on the thumbnail pool (`project.thumbnails.THUMBNAIL_MAKERS`), the page still waiting
  for all of them (2026-12-07);
- the gallery now (`dashboard.views.gallery.Gallery`): made on the pool, the page shown after at most
  `PAGE_WAIT_SECONDS` with the thumbnails made by then, the others filling their frames as they come.

A real HTTP image host on loopback (`tests.image_host.ImageHost`) waits each ``--delays`` seconds before each
answer, as a distant or a struggling host does, and serves a full-size JPEG, as the Zooniverse upload host serves
subjects. A page is ``--page`` subjects (the gallery's default), each thumbnail made from its fetched picture with
its marks drawn (`project.thumbnails.Thumbnails`). The variants take turns, each on an empty cache and other
subjects, so nothing one fetched helps another; the median of ``--repeats`` runs is shown.

    python bench/bench_gallery_pictures.py [--repeats 3] [--delays 0.15 3]

Writes bench/results/gallery_pictures.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "gallery_pictures.md"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))
from bench_loaders import machine  # noqa: E402
from bench_remote_thumbnails import picture, project_of  # noqa: E402

from dashboard.data_store import DataStore  # noqa: E402
from dashboard.views.gallery import PAGE_WAIT_SECONDS, Gallery  # noqa: E402
from project.thumbnails import THUMBNAIL_MAKERS, Thumbnails  # noqa: E402
from tests.image_host import ImageHost  # noqa: E402

VARIANTS = ("one after another", f"{THUMBNAIL_MAKERS._max_workers} at a time, page waits for all",
            f"the gallery now: page shown after at most {PAGE_WAIT_SECONDS:g} s")


def one_page(variant: str, project, subject_ids: list[int], work: Path) -> dict:
    """A page made on an empty cache: wall seconds until it shows and until its last picture is in, CPU seconds."""
    project.thumbnails = Thumbnails(project, folder=tempfile.mkdtemp(dir=work))
    os.environ["ZOOLENS_CACHE_DIR"] = tempfile.mkdtemp(dir=work)  # the fetched pictures' cache too
    started, cpu = time.perf_counter(), time.process_time()
    if variant == VARIANTS[0]:
        made = [project.thumbnails.png(subject_id) for subject_id in subject_ids]
        shown = filled = time.perf_counter()
    elif variant == VARIANTS[1]:
        made = list(THUMBNAIL_MAKERS.map(project.thumbnails.png, subject_ids))
        shown = filled = time.perf_counter()
    else:
        store = DataStore(project=project)
        store.subjects = store.subjects[store.subjects.subject_id.isin(subject_ids)]
        gallery = Gallery(data_store=store, per_page=len(subject_ids))
        frames = [card[0] for card in gallery._grid().objects]
        shown = time.perf_counter()
        while not all(frame.object is not None for frame in frames):
            time.sleep(0.005)
        filled = time.perf_counter()
        made = [frame.object for frame in frames]
    cpu = time.process_time() - cpu
    assert len(made) == len(subject_ids) and all(made)
    return {"variant": variant, "shown": shown - started, "filled": filled - started, "cpu": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs of each variant (taking turns); the median is shown")
    parser.add_argument("--delays", type=float, nargs="+", default=(0.15, 3.0),
                        help="seconds the image host waits before each answer, one host per value")
    parser.add_argument("--size", type=int, nargs=2, default=(1280, 960), help="width and height of the pictures")
    parser.add_argument("--page", type=int, default=Gallery.param.per_page.default,
                        help="subjects on a gallery page (the gallery's default)")
    args = parser.parse_args()
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    jpeg = picture(tuple(args.size))
    runs = []
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        for delay in args.delays:
            host = ImageHost(picture=jpeg, delay=delay)
            project = project_of(host, args.page * len(VARIANTS) * args.repeats + 1)
            subject_ids = iter(project.subject_stats.subject_id.tolist())
            one_page(VARIANTS[1], project, [next(subject_ids)], work)  # imports and the pool warm
            for repeat in range(args.repeats):
                for variant in VARIANTS if repeat % 2 == 0 else VARIANTS[::-1]:
                    page = [next(subject_ids) for _ in range(args.page)]
                    runs.append({"delay": delay, **one_page(variant, project, page, work)})
            host.close()
    load_after = Path("/proc/loadavg").read_text().split()[:3]
    table = pd.DataFrame(runs).groupby(["delay", "variant"], sort=False).median()
    lines = [
        "# A gallery page of remote pictures: when it shows and when its last picture is in",
        "",
        f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, {machine()}; load average before "
        f"{' '.join(load_before)}, after {' '.join(load_after)} (2 cores shared with other work). "
        f"Image host on loopback answering after the delay shown, pictures {args.size[0]} x "
        f"{args.size[1]} JPEG of {len(jpeg) / 1024:.0f} KiB; a page of {args.page} subjects, each on an empty "
        f"cache; median of {args.repeats} runs, the variants taking turns. `python bench/bench_gallery_pictures.py`. "
        "Until the page shows, its session can do nothing else (its events wait in line).",
        "",
        "| host answers after (s) | variant | page shows after (s) | last picture in after (s) | CPU (s) |",
        "|---|---|---|---|---|",
    ]
    for (delay, variant), row in table.iterrows():
        lines.append(f"| {delay:g} | {variant} | {row.shown:.2f} | {row.filled:.2f} | {row.cpu:.2f} |")
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
