"""Zooniverse classification exports (classic and new front end) -> classifications and marks.

The CSV is read in blocks with pyarrow's CSV reader; row-level fields are
validated and converted with vectorised pyarrow compute kernels, and only the
``annotations`` JSON of rows that survive the workflow filter is parsed into
marks (`data_loaders.marks`), so a 1.7-million-row export stays well within a
minute and a few GB (bench/results/loaders.md).

Shapes follow the canonical tables: natural image pixels, top-left x, y, width,
height, angle in degrees about the centre. Other shapes keep their kind and get
their bounding box (a circle's square, a polygon's extent); points stay points
(width and height NaN) unless ``point_box`` turns them into boxes.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import re
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from .base import FormatError, LoadReport, LoadResult, Loader, csv_header
from ._csv import parse_integers, parse_timestamps
from .cache import cached_load
from .marks import MARK_ID_STRIDE, extract_marks
from .schema import conform

REQUIRED_COLUMNS = (
    "classification_id",
    "user_name",
    "user_id",
    "workflow_id",
    "workflow_version",
    "created_at",
    "annotations",
    "subject_ids",
)
OPTIONAL_COLUMNS = ("gold_standard", "expert", "metadata", "subject_data", "workflow_name")


BLOCK_SIZE = 64 * 1024 * 1024
#: Batches parsed at once; more than the cores only holds more blocks in memory.
PARSE_THREADS = max(1, min(4, os.cpu_count() or 1))

INTEGER_PATTERN = r"^\s*\d+(\.0*)?\s*$"  # "1784204.0" is how pandas round-trips ids: accept it


@dataclass(frozen=True)
class PointBox:
    """How a point click becomes a square box centred on the click.

    Either a fixed ``side`` in pixels, or ``side = factor * subject metadata[key]``
    (Galaxy Zoo: Clump Scout: 2.5 x ``#fwhmImagePix``).
    """

    side: float | None = None
    factor: float | None = None
    key: str | None = None

    @classmethod
    def parse(cls, spec) -> PointBox | None:
        """Accept a number (side), ``(factor, key)``, ``{"factor":, "key":}`` or ``"2.5*#fwhmImagePix"``."""
        if spec is None or isinstance(spec, PointBox):
            return spec
        if isinstance(spec, (int, float)):
            if not spec > 0:
                raise ValueError(f"point_box side must be positive, got {spec!r}")
            return cls(side=float(spec))
        if isinstance(spec, dict):
            return cls(factor=float(spec["factor"]), key=str(spec["key"]))
        if isinstance(spec, (tuple, list)) and len(spec) == 2:
            return cls(factor=float(spec[0]), key=str(spec[1]))
        if isinstance(spec, str):
            factor, sep, key = spec.partition("*")
            try:
                return cls(side=float(spec)) if not sep else cls(factor=float(factor), key=key.strip())
            except ValueError:
                pass
        raise ValueError(
            f"point_box {spec!r} not understood: give a side in pixels (10), "
            "or factor and metadata key (\"2.5*#fwhmImagePix\")"
        )

    def describe(self) -> str:
        return f"{self.side}" if self.side is not None else f"{self.factor}*{self.key}"


class ClassificationExport(Loader):
    """Zooniverse classification export CSV (classic and new front end)."""

    name = "classifications"
    priority = 10
    extensions = (".csv", ".csv.gz")

    @classmethod
    def identify(cls, path: Path, head: bytes) -> bool:
        header = set(csv_header(head))
        return {"classification_id", "annotations", "subject_ids"} <= header

    def read(self, path: Path, workflow_id=None, workflow_version=None, tasks=None,
             point_box=None, use_cache: bool = True, progress=None) -> LoadResult:
        box = PointBox.parse(point_box)
        tasks = [tasks] if isinstance(tasks, str) else tasks
        options = {
            "workflow_id": None if workflow_id is None else int(workflow_id),
            "workflow_version": _versions(workflow_version),
            "tasks": None if tasks is None else sorted(str(t) for t in tasks),
            "point_box": None if box is None else box.describe(),
        }
        return cached_load(
            path, self.name, options,
            lambda: _parse_export(path, options["workflow_id"], options["workflow_version"],
                                  options["tasks"], box, progress),
            use_cache=use_cache,
        )


def read_classifications(path, workflow_id=None, workflow_version=None, tasks=None,
                         point_box=None, use_cache: bool = True, progress=None) -> LoadResult:
    """Read a classification export into canonical ``classifications`` and ``marks``.

    Parameters
    ----------
    path : str or path-like
        The export CSV (optionally gzipped).
    workflow_id : int, optional
        Keep only this workflow; rows of others are counted in the report.
    workflow_version : str or list of str, optional
        Keep only these versions: exact (``"50.46"``) or a major version (``"50"``).
        Versions are strings: ``"13.10"`` is not ``"13.1"``.
    tasks : str or list of str, optional
        Drawing tasks to take marks from (default: every task that holds marks).
    point_box : number, str, tuple or dict, optional
        Turn point clicks into square boxes: a side in pixels, or a factor times a
        subject metadata key (``"2.5*#fwhmImagePix"``, the Clump Scout rule).
    use_cache : bool
        Reuse the Parquet cache of an earlier parse of the same file and options.
    progress : callable, optional
        Called with the number of rows read so far after each block of the file
        (`BLOCK_SIZE` bytes) while it is parsed; not called on a cache hit.

    Returns
    -------
    LoadResult
        ``.classifications``, ``.marks`` and ``.report``.
    """
    return ClassificationExport().read(Path(path), workflow_id=workflow_id,
                                       workflow_version=workflow_version, tasks=tasks,
                                       point_box=point_box, use_cache=use_cache, progress=progress)


def _versions(workflow_version) -> list[str] | None:
    if workflow_version is None:
        return None
    if isinstance(workflow_version, (list, tuple, set)):
        return sorted(str(v).strip() for v in workflow_version)
    if isinstance(workflow_version, float):
        raise ValueError(
            f"workflow_version {workflow_version!r} is a float; pass it as a string "
            "(\"13.10\" and \"13.1\" are different versions)"
        )
    return [str(workflow_version).strip()]


# --------------------------------------------------------------------------- reading


def _parse_export(path: Path, workflow_id, versions, tasks, point_box, progress=None) -> LoadResult:
    report = LoadReport(source=str(path), format=ClassificationExport.name)
    header = _check_header(path)
    invalid_rows = 0

    def on_invalid_row(row):
        nonlocal invalid_rows
        invalid_rows += 1
        return "skip"

    try:
        reader = pcsv.open_csv(
            path,
            read_options=pcsv.ReadOptions(block_size=BLOCK_SIZE),
            parse_options=pcsv.ParseOptions(newlines_in_values=True, invalid_row_handler=on_invalid_row),
            convert_options=pcsv.ConvertOptions(
                column_types={name: pa.string() for name in header},
                include_columns=[c for c in REQUIRED_COLUMNS + OPTIONAL_COLUMNS if c in header],
                strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as error:
        raise FormatError(f"{path}: not a readable CSV classification export: {error}") from error
    classification_parts, mark_parts = [], []
    # Rows are numbered as if each took one line (header = line 1); _true_line_numbers
    # corrects that at the end in the rare file where it is not so.
    next_line = 2

    def parse(batch, first_line):
        batch_report = LoadReport(report.source, report.format)
        lines = np.arange(first_line, first_line + batch.num_rows)
        return _parse_rows(batch, lines, workflow_id, versions, tasks, point_box, batch_report), \
            batch_report

    # Most of the work is in Arrow kernels that release the GIL, so batches parse on
    # threads while the reader tokenises the next block; results merge in file order.
    def collect(future):
        (classifications, marks), batch_report = future.result()
        classification_parts.append(classifications)
        mark_parts.append(marks)
        report.merge(batch_report)

    with ThreadPoolExecutor(max_workers=PARSE_THREADS) as pool:
        pending = deque()
        for batch in _batches(path, reader):
            pending.append(pool.submit(parse, batch, next_line))
            next_line += batch.num_rows
            report.rows_read += batch.num_rows
            if progress is not None:
                progress(report.rows_read)
            if len(pending) > PARSE_THREADS:  # bound the raw blocks held in memory
                collect(pending.popleft())
        while pending:
            collect(pending.popleft())

    if invalid_rows or _newline_count(path) != report.rows_read + 1:
        _true_line_numbers(path, report, invalid_rows)
    if not classification_parts:  # a header and no rows
        raise FormatError(f"{path}: classification export has a header but no rows")
    classifications = pd.concat(classification_parts, ignore_index=True)
    marks = pd.concat(mark_parts, ignore_index=True)
    classifications, marks = _finish(classifications, marks, report)
    return LoadResult({"classifications": classifications, "marks": marks}, report)


def _batches(path: Path, reader):
    """The reader's record batches; a file pyarrow cannot parse at all is one FormatError."""
    while True:
        try:
            yield reader.read_next_batch()
        except StopIteration:
            return
        except pa.ArrowInvalid as error:
            raise FormatError(f"{path}: not a readable CSV classification export: {error}") from error


def _check_header(path: Path) -> list[str]:
    from .base import read_head

    header = csv_header(read_head(path))
    missing = [column for column in REQUIRED_COLUMNS if column not in header]
    if missing:
        raise FormatError(
            f"{path}: not a Zooniverse classification export: line 1 lacks column(s) "
            f"{', '.join(missing)} (expected a header with {', '.join(REQUIRED_COLUMNS)})"
        )
    return header


def _open_bytes(path: Path):
    with open(path, "rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gzipped else open(path, "rb")


def _newline_count(path: Path) -> int:
    """Lines in the file (a last line without a newline counts), blank lines included."""
    count, last = 0, b"\n"
    with _open_bytes(path) as handle:
        for block in iter(lambda: handle.read(16 * 1024 * 1024), b""):
            count += block.count(b"\n")
            last = block[-1:]
    return count + (last != b"\n")


def _true_line_numbers(path: Path, report: LoadReport, invalid_rows: int) -> None:
    """Renumber reported lines when rows span lines, and count rows of the wrong width.

    Only reached when the file has quoted newlines, blank lines or rows pyarrow
    rejected, so the slow walk with the csv module is the exception, not the rule.
    """
    csv.field_size_limit(1 << 30)
    with _open_bytes(path) as raw:
        reader = csv.reader(io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline=""))
        width = len(next(reader))
        record_lines, rejected = [], []
        start = reader.line_num + 1
        for record in reader:
            if record:  # pyarrow skips blank lines too
                (record_lines if len(record) == width else rejected).append(start)
            start = reader.line_num + 1
    record_lines = np.asarray(record_lines)
    for reason, lines in report.skipped_lines.items():
        report.skipped_lines[reason] = [int(record_lines[line - 2]) for line in lines]
    # Each rejected row is one the csv module saw with the wrong width; fall back to
    # pyarrow's count if the two parsers disagree about which rows those were.
    if invalid_rows:
        report.skip("wrong number of columns", rejected[:invalid_rows] + [0] * (invalid_rows - len(rejected)))
        report.rows_read += invalid_rows


# --------------------------------------------------------------------------- rows


def _integers(column: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Non-negative int64 ids and a validity mask (``"1784204.0"`` counts as 1784204)."""
    values, valid = parse_integers(column)
    return values, valid & (values >= 0)


def _first_subject_ids(column: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first id of ``subject_ids`` (ids may be joined with ';'), validity, and multi-id rows."""
    trimmed = pc.utf8_trim_whitespace(column)
    valid = pc.match_substring_regex(trimmed, r"^\d{1,18}(\.0*)?(\s*;\s*\d{1,18}(\.0*)?)*$")
    first = pc.replace_substring_regex(pc.if_else(valid, trimmed, "0"), r"(\.0*)?(\s*;.*)?$", "")
    multi = pc.match_substring(trimmed, ";").to_numpy(zero_copy_only=False)
    return pc.cast(first, pa.int64()).to_numpy(), valid.to_numpy(zero_copy_only=False), multi


def _flags(column) -> np.ndarray:
    lowered = pc.utf8_lower(pc.utf8_trim_whitespace(column))
    return pc.is_in(lowered, pa.array(["true", "t", "1", "yes"])).to_numpy(zero_copy_only=False)


def _metadata_field(metadata, key: str) -> pa.Array:
    """A top-level string field of the metadata JSON, found by pattern rather than parsing it all."""
    found = pc.extract_regex(metadata, rf'"{key}"\s*:\s*"(?P<value>[^"]*)"')
    return pc.struct_field(found, "value")


def _metadata_numbers(subject_data: pa.Array, key: str) -> np.ndarray:
    """A numeric subject metadata value per row from ``subject_data`` JSON (NaN where absent).

    Found by pattern in one vectorised pass: ``subject_data`` holds one subject's
    metadata per row, and parsing all of it as JSON would cost more than the marks.
    """
    bare = re.escape(key.lstrip("#!"))
    pattern = rf'"[#!]?{bare}"\s*:\s*"?(?P<value>-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"?\s*[,}}]'
    found = pc.struct_field(pc.extract_regex(subject_data, pattern), "value")
    return pc.cast(found, pa.float64()).to_numpy(zero_copy_only=False)


def _parse_rows(batch, lines, workflow_id, versions, tasks, point_box, report):
    names = batch.schema.names
    n = batch.num_rows
    keep = np.ones(n, dtype=bool)

    def reject(mask, reason):
        nonlocal keep
        bad = keep & mask
        report.skip(reason, lines[bad])
        keep &= ~mask

    classification_ids, ok = _integers(batch.column("classification_id"))
    reject(~ok, "classification_id is not an integer")
    workflow_ids, ok = _integers(batch.column("workflow_id"))
    reject(~ok, "workflow_id is not an integer")
    subject_ids, ok, multi_subject = _first_subject_ids(batch.column("subject_ids"))
    reject(~ok, "subject_ids holds no subject id")
    created_at = parse_timestamps(batch.column("created_at"))
    reject(created_at.isna().to_numpy(), "created_at is not a date")
    version = pc.utf8_trim_whitespace(batch.column("workflow_version")).to_numpy(zero_copy_only=False)
    version = version.astype(object)

    seen = report.counts.setdefault("workflows", {})
    for (wid, ver), count in pd.Series(1, index=pd.MultiIndex.from_arrays(
            [workflow_ids[keep], version[keep]])).groupby(level=[0, 1]).size().items():
        seen.setdefault(str(wid), {})
        seen[str(wid)][ver] = seen[str(wid)].get(ver, 0) + int(count)

    if workflow_id is not None:
        reject(workflow_ids != workflow_id, f"other workflow (kept workflow {workflow_id})")
    if versions is not None:
        major = pc.replace_substring_regex(pa.array(version, pa.string()), r"\..*$", "")
        major = major.to_numpy(zero_copy_only=False)
        wanted = np.isin(version, versions) | np.isin(major, [v for v in versions if "." not in v])
        reject(~wanted, f"other workflow version (kept {', '.join(versions)})")

    metadata = batch.column("metadata") if "metadata" in names else pa.array([""] * n)
    fem = pc.match_substring_regex(metadata, r'"classifier_version"\s*:\s*"[2-9]').to_numpy(
        zero_copy_only=False)

    rows = np.flatnonzero(keep)
    annotations = batch.column("annotations").take(pa.array(rows))
    point_sides = None
    if point_box is not None:
        point_sides = np.full(len(rows), point_box.side if point_box.side else np.nan)
        if point_box.key and "subject_data" in names:
            scales = _metadata_numbers(batch.column("subject_data").take(pa.array(rows)), point_box.key)
            point_sides = point_box.factor * scales
    marks, parsed_ok = extract_marks(annotations, fem[rows], tasks, point_sides,
                                      point_box.key if point_box else None, report)
    report.skip("annotations is not valid JSON (a list of tasks)", lines[rows[~parsed_ok]])
    keep[rows[~parsed_ok]] = False
    # marks refer to positions in `rows`; re-index to kept rows only
    position_in_kept = np.cumsum(parsed_ok) - 1
    mark_rows = position_in_kept[marks.pop("row")]

    kept = np.flatnonzero(keep)
    user_ids, user_ok = _integers(batch.column("user_id"))
    user_names = batch.column("user_name").take(pa.array(kept))
    started = parse_timestamps(_metadata_field(metadata, "started_at").take(pa.array(kept)))
    finished = parse_timestamps(_metadata_field(metadata, "finished_at").take(pa.array(kept)))
    classifications = pd.DataFrame({
        "classification_id": classification_ids[kept],
        "subject_id": subject_ids[kept],
        "workflow_id": workflow_ids[kept],
        "workflow_version": pd.array(version[kept], dtype="string"),
        "user": pd.array(user_names.to_pylist(), dtype="string"),
        "user_id": pd.array(np.where(user_ok[kept], user_ids[kept], 0), dtype="Int64"),
        "created_at": created_at.iloc[kept].array,
        "n_marks": np.bincount(mark_rows, minlength=len(kept)).astype(np.int64),
        "gold_standard": (_flags(batch.column("gold_standard"))[kept]
                          if "gold_standard" in names else np.zeros(len(kept), bool)),
        "expert": (_flags(batch.column("expert"))[kept]
                   if "expert" in names else np.zeros(len(kept), bool)),
        "classifier": np.where(fem[kept], "fem", "pfe"),
        "started_at": started.array,
        "finished_at": finished.array,
        "multi_subject": multi_subject[kept],
    })
    classifications.loc[~user_ok[kept], "user_id"] = pd.NA
    marks_table = pd.DataFrame(marks)
    marks_table.insert(0, "classification_id", classification_ids[kept][mark_rows])
    marks_table.insert(1, "subject_id", subject_ids[kept][mark_rows])
    marks_table.insert(2, "user", pd.array(user_names.take(pa.array(mark_rows)).to_pylist()
                                           if len(mark_rows) else [], dtype="string"))
    marks_table.insert(0, "mark_id",
                       marks_table["classification_id"] * MARK_ID_STRIDE + marks_table["position"])
    return classifications, marks_table


# --------------------------------------------------------------------------- finishing


def _finish(classifications: pd.DataFrame, marks: pd.DataFrame, report: LoadReport):
    """Flag repeat classifications, conform the tables and fill the report's counts."""
    classifications = classifications.sort_values(["created_at", "classification_id"],
                                                  kind="stable", ignore_index=True)
    classifications["repeat"] = classifications.duplicated(["user", "subject_id"], keep="first")
    classifications["duration_s"] = (
        classifications["finished_at"] - classifications["started_at"]).dt.total_seconds()
    classifications = conform(classifications, "classifications")
    marks = conform(marks.drop(columns=["position"], errors="ignore"), "marks")
    marks = marks.sort_values("mark_id", kind="stable", ignore_index=True)

    report.rows_loaded = len(classifications)
    counts = report.counts
    counts["marks"] = len(marks)
    counts["marks_by_kind"] = {str(k): int(v) for k, v in marks["kind"].value_counts().items()}
    counts["marks_by_task"] = {str(k): int(v) for k, v in marks["task"].value_counts().items()}
    counts["empty_classifications"] = int((classifications["n_marks"] == 0).sum())
    counts["repeat_classifications"] = int(classifications["repeat"].sum())
    counts["logged_out_classifications"] = int(classifications["user_id"].isna().sum())
    counts["multi_subject_classifications"] = int(classifications["multi_subject"].sum())
    counts["classifiers"] = {str(k): int(v) for k, v in
                             classifications["classifier"].value_counts().items()}
    counts["subjects"] = int(classifications["subject_id"].nunique())
    counts["volunteers"] = int(classifications["user"].nunique())
    counts.setdefault("degenerate_marks", {})
    counts.setdefault("marks_not_loaded", {})
    return classifications, marks
