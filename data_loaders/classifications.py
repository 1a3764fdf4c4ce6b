"""Zooniverse classification exports (classic and new front end) -> classifications and marks.

The CSV is read in blocks with pyarrow's CSV reader; row-level fields are
validated and converted with vectorised pyarrow/pandas operations, and only the
``annotations`` JSON of rows that survive the workflow filter is parsed
(orjson), so a 1.7-million-row export stays within a minute and a few GB.

Shapes follow the canonical tables: natural image pixels, top-left x, y, width,
height, angle in degrees about the centre. Other shapes keep their kind and get
their bounding box (a circle's square, a polygon's extent); points stay points
(width and height NaN) unless ``point_box`` turns them into boxes.
"""

from __future__ import annotations

import csv
import gc
import gzip
import io
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from .base import FormatError, LoadReport, LoadResult, Loader, csv_header
from .cache import cached_load
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

#: mark_id = classification_id * MARK_ID_STRIDE + position of the mark in the classification,
#: so a mark keeps its id whatever filters the export is read with.
MARK_ID_STRIDE = 10_000

BLOCK_SIZE = 64 * 1024 * 1024

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
             point_box=None, use_cache: bool = True) -> LoadResult:
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
                                  options["tasks"], box),
            use_cache=use_cache,
        )


def read_classifications(path, workflow_id=None, workflow_version=None, tasks=None,
                         point_box=None, use_cache: bool = True) -> LoadResult:
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

    Returns
    -------
    LoadResult
        ``.classifications``, ``.marks`` and ``.report``.
    """
    return ClassificationExport().read(Path(path), workflow_id=workflow_id,
                                       workflow_version=workflow_version, tasks=tasks,
                                       point_box=point_box, use_cache=use_cache)


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


def _parse_export(path: Path, workflow_id, versions, tasks, point_box) -> LoadResult:
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
    for batch in _batches(path, reader):
        lines = np.arange(next_line, next_line + batch.num_rows)
        next_line += batch.num_rows
        classifications, marks = _parse_rows(batch, lines, workflow_id, versions, tasks,
                                             point_box, report)
        classification_parts.append(classifications)
        mark_parts.append(marks)
        report.rows_read += batch.num_rows

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
    """int64 values and a validity mask; ``"1784204.0"`` counts as the integer 1784204."""
    trimmed = pc.utf8_trim_whitespace(column)
    valid = pc.match_substring_regex(trimmed, r"^\d{1,18}(\.0*)?$")
    digits = pc.replace_substring_regex(pc.if_else(valid, trimmed, "0"), r"\.0*$", "")
    return pc.cast(digits, pa.int64()).to_numpy(), valid.to_numpy(zero_copy_only=False)


def _first_subject_ids(column: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first id of ``subject_ids`` (ids may be joined with ';'), validity, and multi-id rows."""
    trimmed = pc.utf8_trim_whitespace(column)
    valid = pc.match_substring_regex(trimmed, r"^\d{1,18}(\.0*)?(\s*;\s*\d{1,18}(\.0*)?)*$")
    first = pc.replace_substring_regex(pc.if_else(valid, trimmed, "0"), r"(\.0*)?(\s*;.*)?$", "")
    multi = pc.match_substring(trimmed, ";").to_numpy(zero_copy_only=False)
    return pc.cast(first, pa.int64()).to_numpy(), valid.to_numpy(zero_copy_only=False), multi


ISO_TIMESTAMP = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})$"


def _timestamps(column) -> pd.Series:
    """UTC timestamps, NaT where a cell is not a date.

    Exports write ``2022-06-10 12:58:25 UTC`` and metadata ISO 8601: both are
    rewritten to ISO with a zone and cast by Arrow in one vectorised pass.
    """
    iso = pc.replace_substring_regex(pc.utf8_trim_whitespace(column), r" UTC$", "Z")
    valid = pc.match_substring_regex(iso, ISO_TIMESTAMP)
    try:
        parsed = pc.if_else(valid, pc.cast(pc.if_else(valid, iso, "1970-01-01T00:00:00Z"),
                                           pa.timestamp("ns", tz="UTC")), None)
        return parsed.to_pandas().astype("datetime64[ns, UTC]")
    except pa.ArrowInvalid:  # a well-formed but impossible date (month 13): parse one by one
        text = pd.Series(column.to_pandas(), dtype=object)
        return pd.to_datetime(text, format="mixed", utc=True, errors="coerce").astype(
            "datetime64[ns, UTC]")


def _flags(column) -> np.ndarray:
    lowered = pc.utf8_lower(pc.utf8_trim_whitespace(column))
    return pc.is_in(lowered, pa.array(["true", "t", "1", "yes"])).to_numpy(zero_copy_only=False)


def _metadata_field(metadata, key: str) -> pa.Array:
    """A top-level string field of the metadata JSON, found by pattern rather than parsing it all."""
    found = pc.extract_regex(metadata, rf'"{key}"\s*:\s*"(?P<value>[^"]*)"')
    return pc.struct_field(found, "value")


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
    created_at = _timestamps(batch.column("created_at"))
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
    annotations = batch.column("annotations").take(pa.array(rows)).to_pylist()
    point_sides = None
    if point_box is not None:
        point_sides = np.full(len(rows), point_box.side if point_box.side else np.nan)
        if point_box.key and "subject_data" in names:
            scales = _metadata_numbers(batch.column("subject_data").take(pa.array(rows)), point_box.key)
            point_sides = point_box.factor * scales
    marks, parsed_ok = _extract_marks(annotations, fem[rows], tasks, point_sides,
                                      point_box.key if point_box else None, report)
    report.skip("annotations is not valid JSON (a list of tasks)", lines[rows[~parsed_ok]])
    keep[rows[~parsed_ok]] = False
    # marks refer to positions in `rows`; re-index to kept rows only
    position_in_kept = np.cumsum(parsed_ok) - 1
    mark_rows = position_in_kept[marks.pop("row")]

    kept = np.flatnonzero(keep)
    user_ids, user_ok = _integers(batch.column("user_id"))
    user_names = batch.column("user_name").take(pa.array(kept))
    started = _timestamps(_metadata_field(metadata, "started_at").take(pa.array(kept)))
    finished = _timestamps(_metadata_field(metadata, "finished_at").take(pa.array(kept)))
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


# --------------------------------------------------------------------------- marks

BOX_KINDS = ("rectangle", "rotateRectangle", "point-as-box")
MARK_COLUMNS = ("row", "position", "task", "tool", "tool_label", "frame",
                "x", "y", "width", "height", "angle", "kind")


_REAL = (int, float)


def _number(value) -> float:
    """A coordinate as float; anything that is not a real number (bools included) raises."""
    if type(value) not in _REAL:
        raise ValueError(value)
    return float(value)


def _bounds(xs, ys) -> tuple[float, float, float, float, float]:
    xs = [_number(v) for v in xs]
    ys = [_number(v) for v in ys]
    if not xs or not ys:
        raise ValueError("empty path")
    return min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys), 0.0


def _shape(mark: dict, fem: bool) -> tuple[str, float, float, float, float, float]:
    """(kind, x, y, width, height, angle) of one drawn mark; `_NotAShape` if it is none.

    The classic front end does not name the tool type in the export, so it is
    told from the keys the mark carries, as panoptes_aggregation's extractors do;
    the new front end's rectangles give their centre instead of their corner.
    """
    if "width" in mark:
        width, height = _number(mark["width"]), _number(mark["height"])
        if "x_center" in mark:
            x = _number(mark["x_center"]) - width / 2
            y = _number(mark["y_center"]) - height / 2
        else:
            x, y = _number(mark["x"]), _number(mark["y"])
        if "angle" in mark:
            return "rotateRectangle", x, y, width, height, _number(mark["angle"] or 0.0)
        return "rectangle", x, y, width, height, 0.0
    if "r" in mark:
        x, y, r = _number(mark["x"]), _number(mark["y"]), _number(mark["r"])
        return "circle", x - r, y - r, 2 * r, 2 * r, 0.0
    if "rx" in mark:
        x, y = _number(mark["x"]), _number(mark["y"])
        rx, ry = _number(mark["rx"]), _number(mark["ry"])
        theta = math.radians(_number(mark.get("angle") or 0.0))
        half_w = math.hypot(rx * math.cos(theta), ry * math.sin(theta))
        half_h = math.hypot(rx * math.sin(theta), ry * math.cos(theta))
        return "ellipse", x - half_w, y - half_h, 2 * half_w, 2 * half_h, 0.0
    if "x1" in mark:
        return ("line", *_bounds([mark["x1"], mark["x2"]], [mark["y1"], mark["y2"]]))
    tool_type = mark.get("toolType") if fem else None
    if "pathX" in mark:
        return (tool_type or "freehandLine", *_bounds(mark["pathX"], mark["pathY"]))
    if "points" in mark:
        points = mark["points"]
        return (tool_type or "polygon", *_bounds([p["x"] for p in points], [p["y"] for p in points]))
    if "x" in mark and "y" in mark:
        return "point", _number(mark["x"]), _number(mark["y"]), math.nan, math.nan, 0.0
    raise _NotAShape


class _NotAShape(Exception):
    """A mark dict with no coordinates zoolens knows (a tool it does not draw)."""


def _metadata_numbers(subject_data: pa.Array, key: str) -> np.ndarray:
    """A numeric subject metadata value per row from ``subject_data`` JSON (NaN where absent).

    Found by pattern in one vectorised pass: ``subject_data`` holds one subject's
    metadata per row, and parsing all of it as JSON would cost more than the marks.
    """
    bare = re.escape(key.lstrip("#!"))
    pattern = rf'"[#!]?{bare}"\s*:\s*"?(?P<value>-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"?\s*[,}}]'
    found = pc.struct_field(pc.extract_regex(subject_data, pattern), "value")
    return pc.cast(found, pa.float64()).to_numpy(zero_copy_only=False)


def _count(counter: dict, key: str) -> None:
    counter[key] = counter.get(key, 0) + 1


def _extract_marks(annotations, fem, tasks, point_sides, point_key, report):
    """Flatten the annotations JSON of each row into mark columns.

    Returns the mark columns (``row`` is the position in ``annotations``) and a
    mask of the rows whose annotations parsed.
    """
    found = []
    parsed_ok = np.ones(len(annotations), dtype=bool)
    counts = report.counts
    dropped = counts.setdefault("marks_not_loaded", {})
    degenerate = counts.setdefault("degenerate_marks", {})
    # Millions of short-lived dicts would trigger the cyclic collector over and over;
    # parsed JSON cannot form cycles, so the collector is paused for the loop.
    collecting = gc.isenabled()
    gc.disable()
    try:
        subtask_answers = _flatten(
            annotations, fem.tolist(), None if tasks is None else set(tasks),
            None if point_sides is None else point_sides.tolist(), point_key,
            parsed_ok, found.append, dropped, degenerate)
    finally:
        if collecting:
            gc.enable()
    if subtask_answers:
        counts["subtask_answers"] = counts.get("subtask_answers", 0) + subtask_answers
    columns = dict(zip(MARK_COLUMNS, zip(*found))) if found else {name: () for name in MARK_COLUMNS}
    marks = {}
    for name in MARK_COLUMNS:
        dtype = MARK_DTYPES[name]
        marks[name] = (pd.array(columns[name], dtype=dtype) if dtype == "string"
                       else np.array(columns[name], dtype=dtype))
    return marks, parsed_ok


MARK_DTYPES = {"row": np.int64, "position": np.int64, "task": "string", "tool": np.int64,
               "tool_label": "string", "frame": np.int64, "x": np.float64, "y": np.float64,
               "width": np.float64, "height": np.float64, "angle": np.float64, "kind": "string"}


def _flatten(annotations, fem, wanted_tasks, sides, point_key, parsed_ok, add, dropped, degenerate):
    """The loader's one Python loop: JSON cells vary too much in shape for a columnar
    JSON reader. It touches only drawing values and appends one tuple per mark."""
    subtask_answers = 0
    for row, text in enumerate(annotations):
        try:
            tasks_in_row = orjson.loads(text)
        except orjson.JSONDecodeError:
            parsed_ok[row] = False
            continue
        if type(tasks_in_row) is dict:
            tasks_in_row = [tasks_in_row]
        elif type(tasks_in_row) is not list:
            parsed_ok[row] = False
            continue
        position = 0
        row_fem = fem[row]
        for annotation in tasks_in_row:
            if type(annotation) is not dict:
                continue
            value = annotation.get("value")
            if type(value) is not list:
                continue
            if "markIndex" in annotation:  # a new-front-end subtask answer, not a mark
                subtask_answers += 1
                continue
            task = annotation.get("task")
            if wanted_tasks is not None and task not in wanted_tasks:
                # Still numbered, so a mark's id does not depend on the task filter.
                position += sum(type(mark) is dict for mark in value)
                continue
            for mark in value:
                if type(mark) is not dict:
                    continue
                position += 1
                try:
                    kind, x, y, width, height, angle = _shape(mark, row_fem)
                except (ValueError, TypeError, KeyError):
                    _count(dropped, "non-numeric coordinates")
                    continue
                except _NotAShape:
                    _count(dropped, "not a shape")
                    continue
                if kind == "point" and sides is not None:
                    side = sides[row]
                    if not side > 0:
                        _count(dropped, f"point without subject metadata {point_key}")
                        continue
                    kind, x, y, width, height = "point-as-box", x - side / 2, y - side / 2, side, side
                elif kind in BOX_KINDS and not (width > 0 and height > 0):
                    _count(degenerate, kind)
                    continue
                if position > MARK_ID_STRIDE:
                    _count(dropped, "more marks in one classification than mark ids allow")
                    continue
                tool = mark.get("tool", mark.get("toolIndex", -1))
                label = mark.get("tool_label")
                frame = mark.get("frame", 0)
                add((row, position - 1, task, tool if type(tool) is int else -1,
                     label if type(label) is str else None, frame if type(frame) is int else 0,
                     x, y, width, height, angle, kind))
    return subtask_answers


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
