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

import math
import mmap
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
    invalid_rows: list[str] = []

    def on_invalid_row(row):
        invalid_rows.append(row.text)
        return "skip"

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
    classification_parts, mark_parts = [], []
    next_line = 2  # line 1 is the header
    for batch in reader:
        lines = _line_numbers(batch, next_line)
        if batch.num_rows:
            next_line = int(lines[-1][1]) + 1
        classifications, marks = _parse_rows(batch, lines[:, 0], workflow_id, versions, tasks,
                                             point_box, report)
        classification_parts.append(classifications)
        mark_parts.append(marks)
        report.rows_read += batch.num_rows

    if invalid_rows:
        _skip_invalid_rows(path, invalid_rows, report)
    if not classification_parts:  # a header and no rows
        raise FormatError(f"{path}: classification export has a header but no rows")
    classifications = pd.concat(classification_parts, ignore_index=True)
    marks = pd.concat(mark_parts, ignore_index=True)
    classifications, marks = _finish(classifications, marks, report)
    return LoadResult({"classifications": classifications, "marks": marks}, report)


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


def _line_numbers(batch: pa.RecordBatch, first_line: int) -> np.ndarray:
    """First and last physical line of every row, assuming rows follow each other.

    Zooniverse exports escape newlines inside JSON, but a quoted newline in any
    cell is legal CSV: count them so line numbers stay true.
    """
    newlines = np.zeros(batch.num_rows, dtype=np.int64)
    for column in batch.columns:
        newlines += pc.count_substring(column, "\n").to_numpy(zero_copy_only=False)
    ends = first_line + np.arange(batch.num_rows) + np.cumsum(newlines)
    return np.column_stack([ends - newlines, ends])


def _skip_invalid_rows(path: Path, texts: list[str], report: LoadReport) -> None:
    """Count rows pyarrow rejected (wrong number of columns) with their line numbers.

    pyarrow does not say where a rejected row was, so its text is looked up in
    the file; the line numbers already reported for other rows, which assumed no
    rejected rows, are then shifted past the rejected ones.
    """
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        offsets = []
        position = 0
        for text in texts:
            offset = data.find(text.encode(), position)
            offsets.append(offset)
            position = max(position, offset + 1)
        rejected = np.array(_lines_at(data, [o for o in offsets if o >= 0]), dtype=np.int64)
    shift_points = rejected - np.arange(len(rejected))
    for reason, lines in report.skipped_lines.items():
        report.skipped_lines[reason] = [
            int(line + np.searchsorted(shift_points, line, side="right")) for line in lines
        ]
    unknown = len(texts) - len(rejected)
    report.skip("wrong number of columns", list(rejected) + [0] * unknown)
    report.rows_read += len(texts)


def _lines_at(data: mmap.mmap, offsets: list[int], chunk: int = 16 * 1024 * 1024) -> list[int]:
    """1-based line numbers of sorted byte offsets, counting newlines in chunks."""
    lines, counted, position = [], 0, 0
    for offset in sorted(offsets):
        while position < offset:
            end = min(offset, position + chunk)
            counted += data[position:end].count(b"\n")
            position = end
        lines.append(counted + 1)
    return lines


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


def _timestamps(column) -> pd.Series:
    """UTC timestamps: the export's ``2022-06-10 12:58:25 UTC`` form fast, anything ISO-like after."""
    text = pd.Series(column.to_pandas(), dtype=object)
    parsed = pd.to_datetime(text, format="%Y-%m-%d %H:%M:%S UTC", utc=True,
                            errors="coerce").dt.as_unit("ns")
    retry = parsed.isna() & text.str.strip().ne("")
    if retry.any():
        parsed[retry] = pd.to_datetime(text[retry], format="ISO8601", utc=True,
                                       errors="coerce").dt.as_unit("ns")
    return parsed


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
    subject_data = (batch.column("subject_data").take(pa.array(rows)).to_pylist()
                    if point_box is not None and point_box.key and "subject_data" in names else None)
    marks, parsed_ok = _extract_marks(annotations, fem[rows], classification_ids[rows],
                                      subject_ids[rows], tasks, point_box, subject_data, report)
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
        "created_at": created_at.to_numpy()[kept],
        "n_marks": np.bincount(mark_rows, minlength=len(kept)).astype(np.int64),
        "gold_standard": (_flags(batch.column("gold_standard"))[kept]
                          if "gold_standard" in names else np.zeros(len(kept), bool)),
        "expert": (_flags(batch.column("expert"))[kept]
                   if "expert" in names else np.zeros(len(kept), bool)),
        "classifier": np.where(fem[kept], "fem", "pfe"),
        "started_at": started.to_numpy(),
        "finished_at": finished.to_numpy(),
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


def _number(value) -> float:
    """A coordinate as float; anything that is not a real number raises ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(value)
    return float(value)


def _bounds(xs, ys) -> tuple[float, float, float, float, float]:
    xs = [_number(v) for v in xs]
    ys = [_number(v) for v in ys]
    if not xs or not ys:
        raise ValueError("empty path")
    return min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys), 0.0


def _shape(mark: dict, fem: bool) -> tuple[str, tuple[float, float, float, float, float]] | None:
    """(kind, (x, y, width, height, angle)) of one drawn mark, or None if it is no shape.

    The classic front end does not name the tool type in the export, so it is
    told from the keys the mark carries, as panoptes_aggregation's extractors do.
    """
    tool_type = mark.get("toolType") if fem else None
    if tool_type in ("rectangle", "rotateRectangle") or (fem and "x_center" in mark):
        width, height = _number(mark["width"]), _number(mark["height"])
        x = _number(mark["x_center"]) - width / 2
        y = _number(mark["y_center"]) - height / 2
        angle = _number(mark.get("angle", 0.0) or 0.0)
        return ("rotateRectangle" if "angle" in mark else "rectangle"), (x, y, width, height, angle)
    if "width" in mark and "height" in mark and "x" in mark:
        box = (_number(mark["x"]), _number(mark["y"]), _number(mark["width"]),
               _number(mark["height"]), _number(mark.get("angle", 0.0) or 0.0))
        return ("rotateRectangle" if "angle" in mark else "rectangle"), box
    if "r" in mark and "x" in mark:
        x, y, r = _number(mark["x"]), _number(mark["y"]), _number(mark["r"])
        return "circle", (x - r, y - r, 2 * r, 2 * r, 0.0)
    if "rx" in mark and "ry" in mark:
        x, y = _number(mark["x"]), _number(mark["y"])
        rx, ry = _number(mark["rx"]), _number(mark["ry"])
        theta = math.radians(_number(mark.get("angle", 0.0) or 0.0))
        half_w = math.hypot(rx * math.cos(theta), ry * math.sin(theta))
        half_h = math.hypot(rx * math.sin(theta), ry * math.cos(theta))
        return "ellipse", (x - half_w, y - half_h, 2 * half_w, 2 * half_h, 0.0)
    if "x1" in mark and "y2" in mark:
        return "line", _bounds([mark["x1"], mark["x2"]], [mark["y1"], mark["y2"]])
    if "pathX" in mark and "pathY" in mark:
        return (tool_type or "freehandLine"), _bounds(mark["pathX"], mark["pathY"])
    if isinstance(mark.get("points"), list):
        points = mark["points"]
        return (tool_type or "polygon"), _bounds([p["x"] for p in points], [p["y"] for p in points])
    if "x" in mark and "y" in mark:
        return "point", (_number(mark["x"]), _number(mark["y"]), math.nan, math.nan, 0.0)
    return None


def _metadata_value(subject_data, subject_id: int, key: str) -> float | None:
    """A numeric subject metadata value from the row's ``subject_data`` JSON, if present."""
    try:
        entry = orjson.loads(subject_data).get(str(subject_id)) or {}
    except (orjson.JSONDecodeError, AttributeError, TypeError):
        return None
    bare = key.lstrip("#!")
    for candidate in (key, bare, "#" + bare, "!" + bare):
        if candidate in entry:
            try:
                return float(entry[candidate])
            except (TypeError, ValueError):
                return None
    return None


def _count(counter: dict, key: str) -> None:
    counter[key] = counter.get(key, 0) + 1


def _extract_marks(annotations, fem, classification_ids, subject_ids, tasks, point_box,
                   subject_data, report):
    """Flatten the annotations JSON of each row into mark columns.

    This is the one Python loop of the loader: JSON cells vary too much in shape
    for a columnar JSON reader. It touches only drawing values and appends to
    plain lists, which keeps it at a few microseconds per mark.
    """
    columns = {name: [] for name in MARK_COLUMNS}
    append = [columns[name].append for name in MARK_COLUMNS]
    parsed_ok = np.ones(len(annotations), dtype=bool)
    counts = report.counts
    dropped = counts.setdefault("marks_not_loaded", {})
    wanted_tasks = None if tasks is None else set(tasks)
    for row, text in enumerate(annotations):
        try:
            tasks_in_row = orjson.loads(text)
        except orjson.JSONDecodeError:
            parsed_ok[row] = False
            continue
        if isinstance(tasks_in_row, dict):
            tasks_in_row = [tasks_in_row]
        if not isinstance(tasks_in_row, list):
            parsed_ok[row] = False
            continue
        position = 0
        row_fem = bool(fem[row])
        for annotation in tasks_in_row:
            if not isinstance(annotation, dict):
                continue
            if "markIndex" in annotation:  # a new-front-end subtask answer, not a mark
                counts["subtask_answers"] = counts.get("subtask_answers", 0) + 1
                continue
            task = annotation.get("task")
            value = annotation.get("value")
            if not isinstance(value, list):
                continue
            if wanted_tasks is not None and task not in wanted_tasks:
                # Still numbered, so a mark's id does not depend on the task filter.
                position += sum(isinstance(mark, dict) for mark in value)
                continue
            for mark in value:
                if not isinstance(mark, dict):
                    continue
                position += 1
                try:
                    shape = _shape(mark, row_fem)
                except (ValueError, TypeError, KeyError):
                    _count(dropped, "non-numeric coordinates")
                    continue
                if shape is None:
                    _count(dropped, "not a shape")
                    continue
                kind, (x, y, width, height, angle) = shape
                if kind == "point" and point_box is not None:
                    side = point_box.side
                    if side is None:
                        scale = (_metadata_value(subject_data[row], subject_ids[row], point_box.key)
                                 if subject_data is not None else None)
                        if scale is None:
                            _count(dropped, f"point without subject metadata {point_box.key}")
                            continue
                        side = point_box.factor * scale
                    kind, x, y, width, height = "point-as-box", x - side / 2, y - side / 2, side, side
                if kind in BOX_KINDS and not (width > 0 and height > 0):
                    _count(counts.setdefault("degenerate_marks", {}), kind)
                    continue
                if position > MARK_ID_STRIDE:
                    _count(dropped, "more marks in one classification than mark ids allow")
                    continue
                tool = mark.get("tool", mark.get("toolIndex", -1))
                label = mark.get("tool_label")
                frame = mark.get("frame", 0)
                for add, item in zip(append, (
                        row, position - 1, task, tool if isinstance(tool, int) else -1,
                        label if isinstance(label, str) else None,
                        frame if isinstance(frame, int) else 0,
                        x, y, width, height, angle, kind)):
                    add(item)
    marks = {
        "row": np.asarray(columns["row"], dtype=np.int64),
        "position": np.asarray(columns["position"], dtype=np.int64),
        "task": pd.array(columns["task"], dtype="string"),
        "tool": np.asarray(columns["tool"], dtype=np.int64),
        "tool_label": pd.array(columns["tool_label"], dtype="string"),
        "frame": np.asarray(columns["frame"], dtype=np.int64),
        "x": np.asarray(columns["x"], dtype=np.float64),
        "y": np.asarray(columns["y"], dtype=np.float64),
        "width": np.asarray(columns["width"], dtype=np.float64),
        "height": np.asarray(columns["height"], dtype=np.float64),
        "angle": np.asarray(columns["angle"], dtype=np.float64),
        "kind": pd.array(columns["kind"], dtype="string"),
    }
    return marks, parsed_ok


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
