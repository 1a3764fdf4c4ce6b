"""The agreement plots' per-mark columns, flat on disk: a filtered view is one compiled pass over them.

A project store's marks are Parquet parts; the agreement plots need only a few of their columns
(box size, IoU, centre offsets, whether the mark supports a consensus box, its tool). Reading those
through pandas or Dask for every filter change cost a minute at 10 million marks. `write_plotted_columns`
copies them once, when the store is written, into flat files in the store's ``plotted/`` folder:

- ``size.f8``, ``iou.f8``, ``dx.f8``, ``dy.f8``: every mark's value (float64, as stored: the counts equal
  datashader's on the stored marks), ``matched.u1`` (supports a consensus box) and ``tool.i2`` (its tool's
  code in ``meta.json``'s ``tools``, -1 for none), in the store's order: subject by subject;
- ``starts.i8``: where each subject's marks begin (the store index's subjects, in order, plus the end),
  so a filter is a mask over subjects and the pass skips the runs of the subjects it leaves out;
- ``low.f8`` and ``high.f8``: each subject's smallest and largest value of each column over its matched
  marks (NaN where it has none), so the plotted ranges of any set of subjects come without a pass over marks.
- ``whole.npz``: both plots' counts of every subject's marks over their whole ranges, with the marks counted, of
  any tool and of each tool (`PlottedMarks.save_whole_binning`, written with the store's density grids);
- ``buckets.npz``: the same binning split by the value of a per-subject statistic, a grid per bucket of its values
  (`PlottedMarks.save_bucket_binnings`: the volunteers per subject, written with the store's density grids).

`PlottedMarks` reads them as memory maps, a block of subjects at a time (each block's pages are unmapped
when it is done: the process holds one block, whatever the project's size), and bins the matched marks of
the chosen subjects into both plots' grids in one pass (`PlottedMarks.grids`), exactly as
``datashader.Canvas.points`` bins them over the same ranges. A view of the same tool, shape and ranges as a
binning kept before (every subject's, or one of the last views) is that binning plus the subjects it adds and minus
those it drops: a filter change bins the subjects it changes, not every mark it keeps. In the whole ranges' frame it
may also start from a sum of bucket binnings: a threshold on the bucketed statistic (minimum volunteers) is a sum of
whole buckets, no mark read. `PlottedMarks.subjects_in` finds the subjects behind a box-selected region the same way.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
from numba import njit

from .recent import RecentlyUsed
from .store import ProjectStore

#: The store's folder of flat columns.
PLOTTED_FOLDER = "plotted"

#: The plotted per-mark values, in the order the kernels take them.
VALUE_COLUMNS = ("size", "iou", "dx", "dy")

#: The agreement plots drawn from the matched marks: name -> their x and y columns (`_bin_kernel` bins both).
PLOTS = {"iou_size": ("size", "iou"), "offsets": ("dx", "dy")}

#: Each plot's x and y as positions in `VALUE_COLUMNS`.
PLOT_AXES = {plot: (VALUE_COLUMNS.index(x), VALUE_COLUMNS.index(y)) for plot, (x, y) in PLOTS.items()}

#: Marks mapped at a time, about: bounds the pages of the flat files a pass holds (about 40 MB of them).
BLOCK_MARKS = 1 << 20

#: The plotted folder's file of every subject's binning (`PlottedMarks.save_whole_binning`).
WHOLE_FILE = "whole.npz"

#: The plotted folder's file of every subject's binning split by buckets of a per-subject statistic
#: (`PlottedMarks.save_bucket_binnings`).
BUCKETS_FILE = "buckets.npz"

#: The per-subject statistic the store's bucket binnings split by: the one the agreement filters threshold most.
BUCKET_STATISTIC = "n_volunteers"

#: Buckets at most in a bucket binning (each holds both grids: about 1.2 MB at the density plots' shape); a statistic
#: of more distinct values gets buckets of several values (a threshold then bins the subjects of one bucket).
MAX_BUCKETS = 64

#: Binnings kept (`PlottedMarks._binned_from_kept`): a new view of the same frame bins only the subjects it changes.
#: Each holds a mask over subjects and both grids (about 4 MB at 2.2 million subjects).
KEPT_BINNINGS = 4

#: A subject mask is made through a table over the span of the store's subject ids when that span is at most this
#: many per subject (16 bytes a subject), else through a hash of the ids.
ID_SPAN_PER_SUBJECT = 16

#: Threads a pass runs on (each binning its share of the blocks into grids of its own, added up after).
THREADS = os.cpu_count() or 1

#: Files of the flat columns: name -> dtype.
FILES = {**dict.fromkeys(VALUE_COLUMNS, np.float64), "matched": np.uint8, "tool": np.int16}
SUFFIX = {np.dtype(np.float64): "f8", np.dtype(np.uint8): "u1", np.dtype(np.int16): "i2", np.dtype(np.int64): "i8"}


def _file(folder: Path, name: str, dtype) -> Path:
    return folder / f"{name}.{SUFFIX[np.dtype(dtype)]}"


def write_plotted_columns(folder: str | Path) -> PlottedMarks:
    """Copy the agreement plots' columns of a project store's marks into its ``plotted/`` folder (replaced).

    One pass over the stored marks, part by part, reading only the plotted columns: memory is one part's
    columns, whatever the project's size.
    """
    store = ProjectStore(folder)
    target = Path(folder) / PLOTTED_FOLDER
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir()
    subject_ids = store.index.index.to_numpy(dtype=np.int64)
    parts = store.index.part.to_numpy(dtype=np.int64)
    tools: list[str] = []
    counts = np.zeros(len(subject_ids), dtype=np.int64)
    sinks = {name: _file(target, name, dtype).open("wb") for name, dtype in FILES.items()}
    ranges = {end: _file(target, end, np.float64).open("wb") for end in ("low", "high")}
    try:
        for number, path in enumerate(store.parts("marks")):
            marks = pd.read_parquet(path, columns=["subject_id", "tool_label", "consensus_id", *VALUE_COLUMNS])
            own = np.flatnonzero(parts == number)
            positions = np.searchsorted(subject_ids[own], marks.subject_id.to_numpy(dtype=np.int64))
            counts[own] = np.bincount(positions, minlength=len(own))
            labels = marks.tool_label.astype(object).where(marks.tool_label.notna(), None)
            tools.extend(sorted({label for label in labels.unique() if label is not None} - set(tools)))
            codes = pd.Index(tools).get_indexer(labels.fillna("\0"))  # -1: a mark without a tool
            matched = (marks.consensus_id.fillna(-1) >= 0).to_numpy()
            columns = {**{name: marks[name].to_numpy(dtype=np.float64) for name in VALUE_COLUMNS},
                       "matched": matched.astype(np.uint8), "tool": codes.astype(np.int16)}
            for name, values in columns.items():
                sinks[name].write(np.ascontiguousarray(values, dtype=FILES[name]).tobytes())
            # Each subject's range of each column over its matched marks (NaN: none), in the index's order.
            by_subject = marks[matched].groupby("subject_id")[list(VALUE_COLUMNS)]
            for end, reduced in (("low", by_subject.min()), ("high", by_subject.max())):
                values = reduced.reindex(subject_ids[own]).to_numpy(dtype=np.float64)
                ranges[end].write(np.ascontiguousarray(values).tobytes())
    finally:
        for sink in (*sinks.values(), *ranges.values()):
            sink.close()
    np.concatenate([[0], np.cumsum(counts)]).astype(np.int64).tofile(_file(target, "starts", np.int64))
    (target / "meta.json").write_text(json.dumps({"marks": int(counts.sum()), "subjects": len(subject_ids),
                                                  "tools": tools}))
    return PlottedMarks(folder)


@dataclass(frozen=True)
class _Binned:
    """A binning kept for the next views: its frame (tool code, shape, ranges), subjects' mask, counts and tallies."""

    frame: tuple
    mask: np.ndarray
    counts: np.ndarray
    tallies: np.ndarray


@dataclass(frozen=True)
class _Buckets:
    """Every subject's binning split by buckets: its frame, each subject's bucket, and each bucket's counts, tallies
    and marks."""

    frame: tuple
    bucket: np.ndarray
    counts: np.ndarray
    tallies: np.ndarray
    marks: np.ndarray

    def base_for(self, mask: np.ndarray, marks_of: np.ndarray) -> _Binned:
        """The sum of the buckets holding mostly masked subjects' marks: the closest sum of buckets to ``mask``."""
        masked = np.bincount(self.bucket, weights=np.where(mask, marks_of, 0), minlength=len(self.marks))
        chosen = masked * 2 > self.marks
        return _Binned(self.frame, chosen[self.bucket], self.counts[chosen].sum(axis=0, dtype=np.int64),
                       self.tallies[chosen].sum(axis=0, dtype=np.int64))


@dataclass
class Grid:
    """One plot's counts of marks per pixel (rows: y from its low end) over its ranges."""

    counts: np.ndarray
    x_range: tuple[float, float]
    y_range: tuple[float, float]
    marks: int


@dataclass
class View:
    """What the agreement plots show of some subjects: the marks counted, each plot's grid (None: nothing to plot)."""

    n_marks: int
    n_matched: int
    n_sized: int
    grids: dict[str, Grid | None]


def axis_range(low: float, high: float) -> tuple[float, float]:
    """The range a plot's axis is binned over, from its values' smallest and largest: an axis with one value (a tiny
    project, a constant statistic) gets a span of one around it."""
    low, high = float(low), float(high)
    return (low - 0.5, high + 0.5) if low == high else (low, high)


class PlottedMarks:
    """A project store's flat plotted columns (`write_plotted_columns`), binned for any set of subjects."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder) / PLOTTED_FOLDER
        meta = json.loads((self.folder / "meta.json").read_text())
        self.tools: list[str] = meta["tools"]
        self.n_marks: int = meta["marks"]
        self.subject_ids = ProjectStore(folder).index.index.to_numpy(dtype=np.int64)
        self.starts = np.fromfile(_file(self.folder, "starts", np.int64), dtype=np.int64)
        if len(self.starts) != len(self.subject_ids) + 1 or self.starts[-1] != self.n_marks:
            raise ValueError(f"{self.folder}: the plotted columns do not match the store's index; "
                             "write them again with project.plotted.write_plotted_columns")
        #: The last binnings (`_binned_from_kept`), shared by every session of the process.
        self._kept: RecentlyUsed[_Binned] = RecentlyUsed(KEPT_BINNINGS)
        #: The store's binnings of every subject, any tool and each tool (`save_whole_binning`): held for good.
        self._whole: list[_Binned] = self._load_whole_binnings()
        self._buckets = self._load_bucket_binnings()

    def load_kernels(self) -> None:
        """Load the compiled binning code now (a view of the first subject with marks): the first view of a process
        otherwise loads it, about a second, in the first filter change a reviewer makes."""
        with_marks = np.flatnonzero(np.diff(self.starts))
        if len(with_marks):
            mask = np.zeros(len(self.subject_ids), dtype=bool)
            mask[with_marks[0]] = True
            self.view(mask)

    @classmethod
    def of_store(cls, folder: str | Path) -> PlottedMarks | None:
        """The store's plotted columns, or None for a store written without them."""
        return cls(folder) if (Path(folder) / PLOTTED_FOLDER / "meta.json").is_file() else None

    def subject_mask(self, subject_ids=None) -> np.ndarray:
        """A mask over the store's subjects: those of ``subject_ids`` (every subject: None)."""
        if subject_ids is None:
            return np.ones(len(self.subject_ids), dtype=bool)
        subject_ids = np.asarray(subject_ids, dtype=np.int64)
        if self._id_span is not None:
            # A table over the span of the store's ids: 0.06 s for 2.2 million ids, where hashing took 0.4-0.7 s.
            low, span = self._id_span
            offsets = subject_ids - low
            chosen = np.zeros(span, dtype=bool)
            chosen[offsets[(offsets >= 0) & (offsets < span)]] = True
            return chosen[self.subject_ids - low]
        positions = self._positions.get_indexer(subject_ids)
        mask = np.zeros(len(self.subject_ids), dtype=bool)
        mask[positions[positions >= 0]] = True
        return mask

    def rows_of(self, subject_ids) -> np.ndarray:
        """Each of ``subject_ids``' row among the store's subjects (-1: not one of them), through the table over the
        span of the store's ids where `subject_mask` uses it, else their hash."""
        subject_ids = np.asarray(subject_ids, dtype=np.int64)
        if self._id_span is None:
            return self._positions.get_indexer(subject_ids)
        low, span = self._id_span
        table = np.full(span + 1, -1, dtype=np.int64)  # its last entry: every id outside the span
        table[self.subject_ids - low] = np.arange(len(self.subject_ids))
        offsets = subject_ids - low
        return table[np.where((offsets >= 0) & (offsets < span), offsets, span)]

    @cached_property
    def _id_span(self) -> tuple[int, int] | None:
        """The store's smallest subject id and the span of its ids, when that span is at most `ID_SPAN_PER_SUBJECT`
        per subject (ids given out together, as an upload's are); None otherwise."""
        if not len(self.subject_ids):
            return None
        low, high = int(self.subject_ids.min()), int(self.subject_ids.max())
        return (low, high - low + 1) if high - low + 1 <= ID_SPAN_PER_SUBJECT * len(self.subject_ids) else None

    @cached_property
    def _positions(self) -> pd.Index:
        # A hash of the store's subject ids (ids too far apart for a table), built once: looking up millions of ids in
        # no order by binary search cost a cache miss per step.
        return pd.Index(self.subject_ids)

    def tool_code(self, tool: str | None) -> int:
        """The code of ``tool`` (-1: any tool; -2: a tool no mark has, so nothing passes)."""
        if tool is None:
            return -1
        return self.tools.index(tool) if tool in self.tools else -2

    def ranges(self, mask: np.ndarray, tool: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Smallest and largest value of each of `VALUE_COLUMNS` over the matched marks of the masked subjects
        (NaN: none). Without a tool filter from each subject's stored range; with one, from a pass over its marks."""
        if tool is None:
            low = np.full(len(VALUE_COLUMNS), np.inf)
            high = np.full(len(VALUE_COLUMNS), -np.inf)
            _subject_ranges_kernel(mask, self._subject_table("low"), self._subject_table("high"), low, high)
            return np.where(np.isfinite(low), low, np.nan), np.where(np.isfinite(high), high, np.nan)
        low = np.full(len(VALUE_COLUMNS), np.inf)
        high = np.full(len(VALUE_COLUMNS), -np.inf)
        for block in self._blocks(mask):
            matched, tools, values = block.columns()
            _ranges_kernel(block.starts, block.mask, matched, tools, self.tool_code(tool), *values, low, high)
        return np.where(np.isfinite(low), low, np.nan), np.where(np.isfinite(high), high, np.nan)

    def plot_ranges(self, mask: np.ndarray, tool: str | None = None) -> dict[str, tuple[tuple[float, float],
                                                                                      tuple[float, float]]]:
        """Each plot's x and y range over the matched marks of the masked subjects (and ``tool``); a plot without
        such marks is left out."""
        low, high = self.ranges(mask, tool)
        return {plot: tuple(axis_range(low[axis], high[axis]) for axis in (x, y))
                for plot, (x, y) in PLOT_AXES.items() if np.isfinite([low[x], high[x], low[y], high[y]]).all()}

    @cached_property
    def whole_ranges(self) -> dict[str, tuple[tuple[float, float], tuple[float, float]]]:
        """`plot_ranges` of every subject's marks, any tool: the frame of the store's density grids and of its
        whole and bucket binnings, in which the agreement plots show every filtered view."""
        return self.plot_ranges(self.subject_mask())

    def _whole_frame(self, shape: tuple[int, int]) -> tuple:
        """The frame (any tool, ``shape``, `whole_ranges`) of every view binned over the whole ranges."""
        return (-1, tuple(shape), tuple(sorted(self.whole_ranges.items())))

    def view(self, mask: np.ndarray, tool: str | None = None, shape: tuple[int, int] = (320, 240),
             ranges: dict[str, tuple[tuple[float, float], tuple[float, float]]] | None = None) -> View:
        """Both plots' grids (``shape``: columns, rows) of the matched marks of the masked subjects (and ``tool``),
        over the ranges of their values (`plot_ranges`; or ``ranges``: plot -> x and y range), and the marks counted:
        one pass (or less: `_binned_from_kept`)."""
        if ranges is None:
            ranges = self.plot_ranges(mask, tool)
        frame = (self.tool_code(tool), tuple(shape), tuple(sorted(ranges.items())))
        binned = self._binned_from_kept(mask, frame)
        counts = binned.counts.copy()  # the kept arrays stay as they are
        tallies = [int(tally) for tally in binned.tallies]
        grids = {plot: Grid(counts[number], *ranges[plot], tallies[3 + number]) if plot in ranges else None
                 for number, plot in enumerate(PLOTS)}
        return View(tallies[0], tallies[1], tallies[2], grids)

    def _binned_from_kept(self, mask: np.ndarray, frame: tuple) -> _Binned:
        """The counts and tallies of the masked subjects' marks in ``frame`` (tool code, shape, plot -> ranges): a kept
        binning of the same frame (the last `KEPT_BINNINGS`, and every subject's from the store, of any tool and of
        each: `WHOLE_FILE`) plus the subjects the mask adds to it minus those it drops, when these have fewer marks
        than the mask; else one pass over the masked subjects' marks. In the frame of the store's bucket binnings (`save_bucket_binnings`) the
        closest sum of buckets is a candidate too. Counts and tallies are sums of integers: the same either way.
        Why: a filter change keeps most subjects of a view shown before (minimum volunteers 12 drops 2% of the
        subjects), and a pass over 97 million marks costs seconds; binning the subjects it changes still costs a
        page fault or more each (they lie scattered through the columns), where a threshold on the bucketed statistic
        is a sum of whole buckets."""
        marks_of = self._marks_per_subject
        candidates = [*self._kept.values(), *self._whole]
        if self._buckets is not None and self._buckets.frame == frame:
            candidates.append(self._buckets.base_for(mask, marks_of))
        base, least = None, int(marks_of[mask].sum())
        for kept in candidates:
            if kept.frame == frame and (changed := int(marks_of[mask != kept.mask].sum())) < least:
                base, least = kept, changed
        if base is None:
            counts, tallies = self._binned(mask, frame)
        else:
            added, added_tallies = self._binned(mask & ~base.mask, frame)
            dropped, dropped_tallies = self._binned(base.mask & ~mask, frame)
            counts, tallies = base.counts + added - dropped, base.tallies + added_tallies - dropped_tallies
        return self._keep(_Binned(frame, mask.copy(), counts, tallies))

    def _keep(self, binned: _Binned) -> _Binned:
        """Keep ``binned`` for the next views, by its frame and subjects: the same subjects again cost no pass."""
        binned.mask.flags.writeable = False
        key = (binned.frame, hashlib.blake2b(np.packbits(binned.mask).tobytes(), digest_size=16).digest())
        return self._kept.get(key, lambda: binned)

    def save_whole_binning(self, shape: tuple[int, int]) -> View:
        """Bin every subject's marks over their whole ranges at ``shape``, of any tool and of each tool (a pass each),
        and store the binnings in `WHOLE_FILE`: a process opening the store then bins a filtered view (a tool filter
        too) as one of them minus the subjects the filter drops, without a pass over the marks it keeps. Returns the
        view of any tool."""
        frame, every = self._whole_frame(shape), self.subject_mask()
        counts, tallies = self._binned(every, frame)
        by_tool = [self._binned(every, (code, *frame[1:])) for code in range(len(self.tools))]
        np.savez(self.folder / WHOLE_FILE, shape=np.array(shape), bounds=self._bounds(frame), counts=counts,
                 tallies=tallies, tool_counts=np.array([binned[0] for binned in by_tool]).reshape(-1, *counts.shape),
                 tool_tallies=np.array([binned[1] for binned in by_tool]).reshape(-1, *tallies.shape))
        self._whole = self._load_whole_binnings()
        return self.view(every, shape=shape, ranges=self.whole_ranges)

    def _load_whole_binnings(self) -> list[_Binned]:
        """The store's binnings of every subject (`save_whole_binning`): any tool's, then each tool's (a store
        written before they were: any tool's alone); none when it has none."""
        path = self.folder / WHOLE_FILE
        if not path.is_file():
            return []
        every = self.subject_mask()
        every.flags.writeable = False
        with np.load(path) as saved:
            frame = self._frame_of(saved["shape"], saved["bounds"])
            whole = [_Binned(frame, every, saved["counts"], saved["tallies"])]
            if "tool_counts" in saved:
                whole += [_Binned((code, *frame[1:]), every, counts, tallies)
                          for code, (counts, tallies) in enumerate(zip(saved["tool_counts"], saved["tool_tallies"]))]
        return whole

    def save_bucket_binnings(self, subject_ids, values, shape: tuple[int, int]) -> None:
        """Bin every subject's marks (any tool) over their whole ranges at ``shape`` split by buckets of ``values`` (a
        per-subject statistic of the subjects ``subject_ids``; a subject not listed goes in a bucket of its own), in
        one pass, and store them in `BUCKETS_FILE`: a process opening the store then bins a view of those ranges as a
        sum of buckets plus or minus the subjects it changes (a threshold on the statistic: none)."""
        positions = pd.Index(np.asarray(subject_ids, dtype=np.int64)).get_indexer(self.subject_ids)
        mine = np.full(len(self.subject_ids), np.nan)
        mine[positions >= 0] = np.asarray(values, dtype=np.float64)[positions[positions >= 0]]
        distinct = np.unique(mine[~np.isnan(mine)])
        # Each bucket's lowest value; the last bucket: subjects without a value.
        lows = distinct if len(distinct) < MAX_BUCKETS else np.unique(
            distinct[np.linspace(0, len(distinct) - 1, MAX_BUCKETS - 1).astype(np.int64)])
        bucket = np.where(np.isnan(mine), len(lows), np.searchsorted(lows, mine, "right") - 1).astype(np.int32)
        frame = self._whole_frame(shape)
        counts, tallies = self._binned(self.subject_mask(), frame, bucket, len(lows) + 1)
        # Stored (and kept) in 32 bits where they fit: half the memory; sums of them are made in 64.
        counts = counts.astype(np.int32) if counts.max(initial=0) < 2**31 else counts
        np.savez_compressed(self.folder / BUCKETS_FILE, shape=np.array(shape), bounds=self._bounds(frame),
                            lows=lows, bucket=bucket, counts=counts, tallies=tallies)
        self._buckets = self._load_bucket_binnings()

    def _load_bucket_binnings(self) -> _Buckets | None:
        """The store's bucket binnings (`save_bucket_binnings`), when it has them."""
        path = self.folder / BUCKETS_FILE
        if not path.is_file():
            return None
        with np.load(path) as saved:
            frame = self._frame_of(saved["shape"], saved["bounds"])
            bucket = saved["bucket"]
            if len(bucket) != len(self.subject_ids):
                raise ValueError(f"{path}: its buckets do not match the store's index; write the density grids again "
                                 "with project.stored.write_density_grids")
            counts = saved["counts"]
            tallies = saved["tallies"]
        marks = np.bincount(bucket, weights=self._marks_per_subject, minlength=len(tallies))
        return _Buckets(frame, bucket, counts, tallies, marks)

    @staticmethod
    def _frame_of(shape: np.ndarray, bounds: np.ndarray) -> tuple:
        """The frame (any tool, shape, plot -> ranges) of a stored binning, from its shape and `_bounds`."""
        ranges = {plot: ((float(bounds[number, 0]), float(bounds[number, 1])),
                         (float(bounds[number, 2]), float(bounds[number, 3])))
                  for number, plot in enumerate(PLOTS) if np.isfinite(bounds[number]).all()}
        return (-1, tuple(int(size) for size in shape), tuple(sorted(ranges.items())))

    @staticmethod
    def _bounds(frame: tuple) -> np.ndarray:
        """Each plot's x and y range in ``frame`` as one row (NaN: a plot without ranges)."""
        ranges = dict(frame[2])
        return np.array([[*ranges[plot][0], *ranges[plot][1]] if plot in ranges else [np.nan] * 4 for plot in PLOTS],
                        dtype=np.float64)

    def _binned(self, mask: np.ndarray, frame: tuple, bucket: np.ndarray | None = None,
                buckets: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """One pass over the masked subjects' marks: both plots' counts and the tallies (`_bin_kernel`); with
        ``bucket`` (each subject's, of ``buckets``), counts and tallies per bucket."""
        split = bucket is not None
        bucket = bucket if split else self._one_bucket
        code, shape = frame[0], frame[1]
        bounds = self._bounds(frame)
        # Datashader's scale and translation of each axis (`compute_scale_and_translate`), the same arithmetic.
        scales = np.zeros((len(PLOTS), 4))
        with np.errstate(invalid="ignore"):
            for number, size in ((0, shape[0]), (2, shape[1])):
                scales[:, number] = size / (bounds[:, number + 1] - bounds[:, number])
                scales[:, number + 1] = -bounds[:, number] * scales[:, number]

        def binned(blocks):
            counts = np.zeros((buckets, len(PLOTS), shape[1], shape[0]), dtype=np.int64)
            tallies = np.zeros((buckets, 3 + len(PLOTS)), dtype=np.int64)
            for block in blocks:
                matched, tools, values = block.columns()
                _bin_kernel(block.starts, block.mask, bucket[block.first:block.stop], matched, tools, code, *values,
                            scales, bounds, counts, tallies)
            return counts, tallies

        parts = self._on_threads(binned, mask) or [binned([])]
        counts, tallies = sum(part[0] for part in parts), sum(part[1] for part in parts)
        return (counts, tallies) if split else (counts[0], tallies[0])

    @cached_property
    def _one_bucket(self) -> np.ndarray:
        """Every subject in bucket 0: the bucket of a pass not split by buckets (made once, read-only)."""
        bucket = np.zeros(len(self.subject_ids), dtype=np.int32)
        bucket.flags.writeable = False
        return bucket

    @cached_property
    def _marks_per_subject(self) -> np.ndarray:
        return np.diff(self.starts)

    def subjects_in(self, plot: str, bounds: tuple[float, float, float, float], mask: np.ndarray,
                    tool: str | None = None) -> np.ndarray:
        """Ids of the masked subjects with a matched mark (of ``tool``) inside ``bounds`` (x0, y0, x1, y1) of ``plot``."""
        x0, y0, x1, y1 = bounds
        x, y = PLOT_AXES[plot]
        box = np.array([min(x0, x1), max(x0, x1), min(y0, y1), max(y0, y1)], dtype=np.float64)
        inside = np.zeros(len(self.subject_ids), dtype=bool)
        for block in self._blocks(mask):
            matched, tools, values = block.columns()
            _inside_kernel(block.starts, block.mask, matched, tools, self.tool_code(tool), values[x], values[y], box,
                           inside[block.first:block.stop])
        return self.subject_ids[inside]

    def _on_threads(self, work, mask: np.ndarray) -> list:
        """``work(blocks)`` on each of `THREADS` threads, each given every so many of the masked subjects' blocks
        (the kernels release the GIL): their results."""
        blocks = list(self._blocks(mask))
        if not blocks:
            return []
        threads = max(1, min(THREADS, len(blocks)))
        if threads == 1:
            return [work(blocks)]
        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(work, [blocks[number::threads] for number in range(threads)]))

    def _subject_table(self, end: str) -> np.ndarray:
        return np.memmap(_file(self.folder, end, np.float64), dtype=np.float64, mode="r",
                         shape=(len(self.subject_ids), len(VALUE_COLUMNS)))

    def _blocks(self, mask: np.ndarray):
        """The masked subjects' marks, as blocks of whole subjects of about `BLOCK_MARKS` marks, each memory-mapped
        only while it is used (`_Block.columns`: a pass holds a block per thread, not the project)."""
        chosen = np.flatnonzero(mask)
        if not len(chosen):
            return
        # Blocks from the first to the last chosen subject: runs of subjects left out are skipped by the kernels,
        # and blocks of none of the chosen subjects' marks are not mapped at all.
        cuts = np.searchsorted(self.starts, np.arange(self.starts[chosen[0]], self.starts[chosen[-1] + 1],
                                                      BLOCK_MARKS), "right") - 1
        edges = np.unique(np.r_[chosen[0], np.maximum(cuts, chosen[0]), chosen[-1] + 1])
        for first, stop in zip(edges[:-1], edges[1:]):
            if not mask[first:stop].any():
                continue
            begin, end = int(self.starts[first]), int(self.starts[stop])
            if end == begin:
                continue
            yield _Block(self, first, stop, begin, end, mask)


class _Block:
    """Subjects ``first`` to ``stop`` (excluded) of a pass: their runs of marks, mask and columns (mapped on use)."""

    def __init__(self, plotted: PlottedMarks, first: int, stop: int, begin: int, end: int, mask: np.ndarray):
        self.folder, self.begin, self.end = plotted.folder, begin, end
        self.first, self.stop = first, stop
        self.starts = plotted.starts[first:stop + 1] - begin
        self.mask = mask[first:stop]

    def columns(self) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
        """The block's ``matched``, ``tool`` and `VALUE_COLUMNS`, memory-mapped: unmapped (their pages released
        from the process) once the caller drops them."""
        def mapped(name):
            dtype = np.dtype(FILES[name])
            return np.memmap(_file(self.folder, name, dtype), dtype=dtype, mode="r",
                             offset=self.begin * dtype.itemsize, shape=(self.end - self.begin,))

        return mapped("matched"), mapped("tool"), [mapped(name) for name in VALUE_COLUMNS]


@njit(cache=True, nogil=True)
def _subject_ranges_kernel(mask, subject_low, subject_high, low, high):
    """Each column's smallest and largest value over the masked subjects' stored ranges (NaN: a subject without)."""
    for subject in range(len(mask)):
        if mask[subject]:
            for column in range(subject_low.shape[1]):
                if subject_low[subject, column] < low[column]:  # False for NaN
                    low[column] = subject_low[subject, column]
                if subject_high[subject, column] > high[column]:
                    high[column] = subject_high[subject, column]


@njit(cache=True, nogil=True)
def _ranges_kernel(starts, mask, matched, tool, wanted_tool, size, iou, dx, dy, low, high):
    """Each column's smallest and largest value over the matched marks of the masked subjects (and tool)."""
    for subject in range(len(mask)):
        if not mask[subject]:
            continue
        for mark in range(starts[subject], starts[subject + 1]):
            if not matched[mark] or (wanted_tool != -1 and tool[mark] != wanted_tool):
                continue
            for column, value in enumerate((size[mark], iou[mark], dx[mark], dy[mark])):
                if value == value:  # not NaN
                    low[column] = min(low[column], value)
                    high[column] = max(high[column], value)


@njit(cache=True, nogil=True)
def _bin_kernel(starts, mask, bucket, matched, tool, wanted_tool, size, iou, dx, dy, scales, bounds, counts, tallies):
    """Count the masked subjects' marks (all, matched, matched with a size and IoU) and bin the matched ones into the
    two plots' grids (size-IoU, offsets), as ``datashader.Canvas.points`` does: pixel int(x * s + t) with its scale
    and translation, a value on the range's top edge in the last pixel, one outside the range or NaN in none; into
    the counts and tallies of each subject's ``bucket``."""
    rows, columns = counts.shape[2], counts.shape[3]
    for subject in range(len(mask)):
        if not mask[subject]:
            continue
        into = bucket[subject]
        for mark in range(starts[subject], starts[subject + 1]):
            if wanted_tool != -1 and tool[mark] != wanted_tool:
                continue
            tallies[into, 0] += 1
            if not matched[mark]:
                continue
            tallies[into, 1] += 1
            if size[mark] == size[mark] and iou[mark] == iou[mark]:  # neither is NaN
                tallies[into, 2] += 1
            for plot in range(2):
                x, y = (size[mark], iou[mark]) if plot == 0 else (dx[mark], dy[mark])
                if bounds[plot, 0] <= x <= bounds[plot, 1] and bounds[plot, 2] <= y <= bounds[plot, 3]:
                    column = min(int(x * scales[plot, 0] + scales[plot, 1]), columns - 1)
                    row = min(int(y * scales[plot, 2] + scales[plot, 3]), rows - 1)
                    counts[into, plot, row, column] += 1
                    tallies[into, 3 + plot] += 1


@njit(cache=True, nogil=True)
def _inside_kernel(starts, mask, matched, tool, wanted_tool, xs, ys, box, inside):
    """Mark each masked subject having a matched mark (of the tool) with x and y inside ``box`` (x0, x1, y0, y1)."""
    for subject in range(len(mask)):
        if not mask[subject]:
            continue
        for mark in range(starts[subject], starts[subject + 1]):
            if matched[mark] and (wanted_tool == -1 or tool[mark] == wanted_tool) \
                    and box[0] <= xs[mark] <= box[1] and box[2] <= ys[mark] <= box[3]:
                inside[subject] = True
                break
