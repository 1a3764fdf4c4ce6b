"""A gallery page of subjects whose pictures are on an image host: made one picture after another (what the
gallery did) against a few at a time on the thumbnail pool (`project.thumbnails.THUMBNAIL_MAKERS`, what it does).

A real HTTP image host on loopback (`tests.image_host.ImageHost`) waits ``--delay`` seconds before each answer,
as a distant host does, and serves a full-size JPEG, as the Zooniverse upload host serves subjects. A page is
``--page`` subjects (the gallery's default), each thumbnail made from its fetched picture with its marks drawn
(`project.thumbnails.Thumbnails`). The variants take turns, each on an empty cache and other subjects, so
nothing one fetched helps another; the median of ``--repeats`` runs is shown.

    python bench/bench_gallery_pictures.py [--repeats 3] [--delay 0.15]

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

from dashboard.views.gallery import Gallery  # noqa: E402
from project.thumbnails import THUMBNAIL_MAKERS, Thumbnails  # noqa: E402
from tests.image_host import ImageHost  # noqa: E402

VARIANTS = ("one after another", f"{THUMBNAIL_MAKERS._max_workers} at a time")


def one_page(variant: str, project, subject_ids: list[int], work: Path) -> dict:
    """A page's thumbnails made on an empty cache: wall and CPU seconds."""
    thumbnails = Thumbnails(project, folder=tempfile.mkdtemp(dir=work))
    os.environ["ZOOLENS_CACHE_DIR"] = tempfile.mkdtemp(dir=work)  # the fetched pictures' cache too
    started, cpu = time.perf_counter(), time.process_time()
    if variant == VARIANTS[0]:
        made = [thumbnails.png(subject_id) for subject_id in subject_ids]
    else:
        made = thumbnails.pngs(subject_ids)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert len(made) == len(subject_ids) and all(made)
    return {"variant": variant, "wall": wall, "cpu": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs of each variant (taking turns); the median is shown")
    parser.add_argument("--delay", type=float, default=0.15, help="seconds the image host waits before each answer")
    parser.add_argument("--size", type=int, nargs=2, default=(1280, 960), help="width and height of the pictures")
    parser.add_argument("--page", type=int, default=Gallery.param.per_page.default,
                        help="subjects on a gallery page (the gallery's default)")
    args = parser.parse_args()
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    jpeg = picture(tuple(args.size))
    host = ImageHost(picture=jpeg, delay=args.delay)
    project = project_of(host, args.page * len(VARIANTS) * args.repeats + 1)
    subject_ids = iter(project.subject_stats.subject_id.tolist())
    runs = []
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        one_page(VARIANTS[1], project, [next(subject_ids)], work)  # imports and the pool warm
        for repeat in range(args.repeats):
            for variant in VARIANTS if repeat % 2 == 0 else VARIANTS[::-1]:
                runs.append(one_page(variant, project, [next(subject_ids) for _ in range(args.page)], work))
    host.close()
    load_after = Path("/proc/loadavg").read_text().split()[:3]
    table = pd.DataFrame(runs).groupby("variant", sort=False).median().reindex(VARIANTS)
    lines = [
        "# A gallery page of remote pictures: one after another vs a few at a time",
        "",
        f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, {machine()}; load average before "
        f"{' '.join(load_before)}, after {' '.join(load_after)} (2 cores shared with other work). "
        f"Image host on loopback answering after {args.delay * 1000:.0f} ms, pictures {args.size[0]} x "
        f"{args.size[1]} JPEG of {len(jpeg) / 1024:.0f} KiB; a page of {args.page} subjects, each on an empty "
        f"cache; median of {args.repeats} runs, the variants taking turns. `python bench/bench_gallery_pictures.py`.",
        "",
        "| variant | page waits (s) | CPU (s) |",
        "|---|---|---|",
    ]
    for variant, row in table.iterrows():
        lines.append(f"| {variant} | {row.wall:.2f} | {row.cpu:.2f} |")
    lines += ["", f"{VARIANTS[1]}: the page waits {table.wall.iloc[0] / table.wall.iloc[1]:.1f}x less."]
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
