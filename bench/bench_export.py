"""Benchmark: writing a catalogue at Galaxy Zoo: Clump Scout scale, zoolens against the bare writers.

Builds canonical tables of Clump Scout's size (85,000 subjects, 128,000 consensus
boxes, 3.5 million marks from 21,000 volunteers, some of them with hostile names),
then in one run measures, for each format:

- ``data_loaders.writers.write`` (formula neutralisation or text escaping, units,
  provenance, staged write and rename), consensus alone and with the marks;
- the bare writer on the same tables, as the alternative without those guarantees:
  ``DataFrame.to_csv`` for CSV, ``astropy.table.Table.from_pandas(...).write`` for
  ECSV, FITS and VOTable.

It also times the sky positions of every box by both routes: the vectorised
tangent plane (all subjects) and one ``WCS.pixel_to_world`` per subject.

    python bench/bench_export.py                      # full size
    python bench/bench_export.py --marks 200000       # a quick run
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = HERE / "work" / "export"
RESULTS = HERE / "results" / "export.md"
sys.path.insert(0, str(ROOT))

HOSTILE_NAMES = ['=HYPERLINK("http://evil.example","x")', "+SUM(A1:A9)", "-2+3", "@cmd", "Zoë 🌟",
                 "<script>alert(1)</script>"]


def tables(n_subjects: int, n_boxes: int, n_marks: int, seed: int = 0) -> dict[str, pd.DataFrame]:
    """Canonical consensus, marks, links and subjects tables of the given sizes."""
    from data_loaders.schema import conform

    rng = np.random.default_rng(seed)
    subject_ids = 30_000_000 + np.arange(n_subjects, dtype=np.int64)
    box_subjects = np.sort(rng.choice(subject_ids, n_boxes))
    side = rng.uniform(4, 48, n_boxes)
    consensus = pd.DataFrame({
        "subject_id": box_subjects,
        "consensus_id": box_subjects * 10_000 + rng.integers(0, 9, n_boxes),
        "x": rng.uniform(100, 300, n_boxes), "y": rng.uniform(100, 300, n_boxes),
        "width": side, "height": side, "angle": np.zeros(n_boxes),
        "n_votes": rng.integers(2, 20, n_boxes), "n_seen": rng.integers(20, 40, n_boxes),
        "source": '{"method": "iou", "min_iou": 0.3, "zoolens": "0.1.0"}',
        "task": "T0", "tool": pd.array(rng.integers(0, 2, n_boxes), dtype="Int64"),
        "frame": pd.array(np.zeros(n_boxes, dtype=np.int64), dtype="Int64"),
        "vote_fraction": rng.uniform(0, 1, n_boxes),
        "false_pos_prob": rng.uniform(0, 1, n_boxes),
    })
    volunteers = np.array([f"volunteer_{i}" for i in range(21_000)], dtype=object)
    volunteers[: len(HOSTILE_NAMES)] = HOSTILE_NAMES
    mark_side = rng.uniform(4, 48, n_marks)
    marks = pd.DataFrame({
        "mark_id": np.arange(n_marks, dtype=np.int64),
        "classification_id": np.arange(n_marks, dtype=np.int64) // 2,
        "subject_id": rng.choice(subject_ids, n_marks),
        "user": pd.array(volunteers[rng.zipf(1.6, n_marks) % len(volunteers)], dtype="string"),
        "task": "T0", "tool": rng.integers(0, 2, n_marks), "tool_label": "Clump", "frame": 0,
        "x": rng.uniform(100, 300, n_marks), "y": rng.uniform(100, 300, n_marks),
        "width": mark_side, "height": mark_side, "angle": 0.0, "kind": "point-as-box",
    })
    links = pd.DataFrame({
        "mark_id": marks["mark_id"],
        "consensus_id": np.where(rng.random(n_marks) < 0.7, rng.choice(consensus["consensus_id"], n_marks), -1),
        "iou": rng.uniform(0.3, 1, n_marks),
    })
    subjects = pd.DataFrame({"subject_id": subject_ids, "locations": None, "width": 400.0, "height": 400.0,
                             "retired": True, "ra": rng.uniform(0, 360, n_subjects),
                             "dec": rng.uniform(-10, 60, n_subjects)})
    return {"consensus": conform(consensus, "consensus"), "marks": conform(marks, "marks"),
            "links": conform(links, "links"), "subjects": conform(subjects, "subjects")}


def timed(function, *args, **kwargs):
    """``function(*args, **kwargs)`` and the seconds it took."""
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def size_mib(paths) -> float:
    return sum(Path(path).stat().st_size for path in paths) / 2**20


def bare_write(table: pd.DataFrame, path: Path, format: str) -> list[Path]:
    """The writer without zoolens' guarantees: pandas for CSV, astropy for the rest."""
    from astropy.table import Table

    if format == "csv":
        table.to_csv(path, index=False)
    else:
        astropy_format = {"ecsv": "ascii.ecsv", "fits": "fits", "votable": "votable"}[format]
        # Table.from_pandas cannot hold pandas' nullable text: plain object text, as users would pass.
        plain = table.astype({name: object for name in table.columns if table[name].dtype == "string"})
        Table.from_pandas(plain).write(path, format=astropy_format, overwrite=True)
    return [path]


def sky_timings(data: dict, n_wcs_subjects: int) -> list[tuple[str, int, int, float]]:
    from astropy.wcs import WCS

    from data_loaders.celestial import box_sky_positions

    consensus, subjects = data["consensus"], data["subjects"]
    _, seconds = timed(box_sky_positions, consensus, subjects=subjects, pixel_scale=0.396)
    rows = [("tangent plane, every subject (vectorised)", subjects["subject_id"].nunique(), len(consensus), seconds)]
    chosen = consensus[consensus["subject_id"].isin(subjects["subject_id"].iloc[:n_wcs_subjects])]
    wcs = {}
    for subject in subjects.iloc[:n_wcs_subjects].itertuples():
        subject_wcs = WCS(naxis=2)
        subject_wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
        subject_wcs.wcs.crval = [subject.ra, subject.dec]
        subject_wcs.wcs.crpix = [200.5, 200.5]
        subject_wcs.wcs.cdelt = [-0.396 / 3600, 0.396 / 3600]
        subject_wcs.pixel_shape = (400, 400)
        wcs[subject.subject_id] = subject_wcs
    _, seconds = timed(box_sky_positions, chosen, wcs=wcs, subjects=subjects)
    rows.append(("WCS: zoolens (pixel_to_world_values, no SkyCoord in ICRS), per subject", n_wcs_subjects,
                 len(chosen), seconds))
    _, seconds = timed(pixel_to_world_per_subject, chosen, wcs)
    rows.append(("WCS: `pixel_to_world(...).icrs` per subject (the alternative)", n_wcs_subjects, len(chosen),
                 seconds))
    return rows


def pixel_to_world_per_subject(boxes: pd.DataFrame, wcs: dict) -> list:
    """The same positions through astropy's high-level API: a SkyCoord per subject."""
    from data_loaders.celestial import natural_to_fits_pixels

    positions = []
    for subject_id, subject_boxes in boxes.groupby("subject_id"):
        subject_wcs = wcs[subject_id]
        fits_x, fits_y = natural_to_fits_pixels(subject_boxes["x"] + subject_boxes["width"] / 2,
                                                subject_boxes["y"] + subject_boxes["height"] / 2,
                                                subject_wcs.pixel_shape)
        positions.append(subject_wcs.pixel_to_world(fits_x, fits_y).icrs)
    return positions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subjects", type=int, default=85_000)
    parser.add_argument("--boxes", type=int, default=128_000)
    parser.add_argument("--marks", type=int, default=3_500_000)
    parser.add_argument("--wcs-subjects", type=int, default=85_000)
    parser.add_argument("--no-record", action="store_true", help="print only; do not rewrite the results file")
    args = parser.parse_args()

    from data_loaders.writers import prepare_export, write

    load_before = os.getloadavg()[0]
    data = tables(args.subjects, args.boxes, args.marks)
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    extension = {"csv": "csv", "ecsv": "ecsv", "fits": "fits", "votable": "xml"}
    lines = []
    for marks_too in (False, True):
        export = prepare_export(data, include_marks=marks_too, subjects=data["subjects"], pixel_scale=0.396)
        what = "consensus + marks" if marks_too else "consensus"
        for format, suffix in extension.items():
            target = WORK / f"{'with-marks' if marks_too else 'consensus'}.{suffix}"
            written, seconds = timed(write, export, target)
            bare_paths = []
            bare_seconds = 0.0
            failure = None
            for name, table in export.tables().items():
                bare_target = WORK / f"bare-{name}.{suffix}"
                try:
                    paths, table_seconds = timed(bare_write, table, bare_target, format)
                    bare_paths += paths
                    bare_seconds += table_seconds
                except (UnicodeEncodeError, ValueError) as error:
                    failure = f"fails: {type(error).__name__} on the {name}"
                    bare_target.unlink(missing_ok=True)
            bare = (f"{failure} | | " if failure else
                    f"{bare_seconds:.2f} | {size_mib(bare_paths):,.1f} | {seconds / bare_seconds:.2f}")
            lines.append(f"| {format} | {what} | {len(export.consensus):,} + {len(export.marks) if marks_too else 0:,} "
                         f"| {seconds:.2f} | {size_mib(written):,.1f} | {bare} |")
            print(lines[-1], flush=True)
            for path in written + bare_paths:
                Path(path).unlink(missing_ok=True)
    sky = sky_timings(data, args.wcs_subjects)
    for line in sky:
        print(line, flush=True)

    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
        machine += f", {memory:.0f} GiB RAM"
    except (ValueError, OSError):
        pass
    command = "python bench/bench_export.py" + "".join(
        f" --{name.replace('_', '-')} {value}" for name, value in vars(args).items()
        if name != "no_record" and value != parser.get_default(name))
    report = [
        "# Catalogue export",
        "",
        f"Run {dt.date.today().isoformat()} on {machine} by `{command}`.",
        "Synthetic canonical tables of Clump Scout's size; every write in the same process, one after",
        "the other, on the same tables. *zoolens* is `data_loaders.writers.write` (formula neutralisation",
        "or text escaping, units, provenance, staged write); *bare* is `DataFrame.to_csv` (CSV) or",
        "`Table.from_pandas(...).write` (ECSV, FITS, VOTable) on the same tables, without those.",
        (f"One-minute load average {load_before:.1f} at the start and {os.getloadavg()[0]:.1f} at the end "
         "(other jobs share the machine, so single times are noisy)."),
        "",
        "| format | tables | rows | zoolens s | zoolens MiB | bare s | bare MiB | zoolens / bare |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        *lines,
        "",
        "Sky positions of the consensus boxes (`data_loaders.celestial.box_sky_positions`):",
        "",
        "| route | subjects | boxes | s |",
        "| --- | ---: | ---: | ---: |",
        *[f"| {route} | {subjects:,} | {boxes:,} | {seconds:.2f} |" for route, subjects, boxes, seconds in sky],
        "",
    ]
    if not args.no_record:
        RESULTS.write_text("\n".join(report))
        print(f"wrote {RESULTS}")
    shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()
