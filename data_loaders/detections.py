"""Machine detections (CSV, Parquet, FITS table, COCO results JSON) -> a ``detections`` table.

A detector run on a project's subjects gives, per subject, boxes or points with
a score and a label. zoolens reads them in three layouts:

- a table (CSV, optionally gzipped, Parquet, or a FITS binary/ASCII table) with
  the columns ``subject_id``, ``x``, ``y``, ``score`` and optionally ``width``,
  ``height`` (a row with both empty, or both 0, is a point), ``angle`` (degrees, rotation
  about the centre), ``label`` and ``detection_id``. Names are matched without
  regard to case (FITS tables often say ``SUBJECT_ID``); every other column is kept;
- COCO results JSON, the list every COCO-style detector writes:
  ``[{"image_id", "category_id", "bbox": [x, y, width, height], "score"}, ...]``.
  ``image_subjects`` maps COCO image ids to Zooniverse subject ids: a dict, or a
  CSV/Parquet file with ``image_id`` and ``subject_id`` columns, or a JSON object
  ``{"image_id": subject_id}``. Without it the image ids are taken as subject ids.
  ``category_id`` becomes the ``label``; an ``id`` field becomes ``detection_id``.

Coordinates are natural image pixels, top-left origin, y down, as in every
canonical table (COCO's ``bbox`` is already so). A row that cannot be read (an id
that is not an integer, a coordinate or score that is not a finite number, a
negative size, an image id the mapping lacks, a repeated ``detection_id``) is
skipped and counted in the report with its line number (for Parquet, FITS and
COCO files: its row or list position, from 1).
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import param
import pyarrow as pa
import pyarrow.compute as pc

from ._csv import RowFilter, TextTable, parse_floats, parse_integers, read_text_table, table_columns, typed_values
from ._fits import first_extension_columns, fits_layout
from .base import FormatError, LoadReport, LoadResult, Loader, read_head
from .catalogues import read_astropy_table
from .schema import conform

EXPECTED = "a table of machine detections"
#: Columns a detection table must have; the other canonical ones are optional.
REQUIRED = ("subject_id", "x", "y", "score")
OPTIONAL = ("width", "height", "angle", "label", "detection_id")
#: Fields of one COCO detection result that the loader reads.
COCO_FIELDS = ("image_id", "category_id", "bbox", "score")
#: Suffixes removed from a file's name to make the default ``source``.
SUFFIXES = (".gz", ".csv", ".parquet", ".json", ".fits", ".fit")


class Detections(Loader):
    """Machine detections: a CSV, Parquet or FITS table (subject_id, x, y, score, ...) or COCO results JSON."""

    short_name = "detections"
    extensions = (".csv", ".csv.gz", ".parquet", ".json", ".json.gz", ".fits", ".fit")

    image_subjects = param.Parameter(default=None, doc=(
        "For COCO results: COCO image id -> Zooniverse subject id, as a dict or a CSV/Parquet file "
        "(image_id, subject_id) or a JSON object file. Without it, image ids are taken as subject ids."))
    source = param.String(default=None, allow_None=True, doc=(
        "The detections' source name (which detector and run); default the file name without its extensions."))

    @classmethod
    def identify(cls, path: Path, head: bytes) -> bool:
        return _layout(path, head) is not None

    def read(self, path: Path) -> LoadResult:
        return _parse(Path(path), self.image_subjects, self.source)


def read_detections(path, image_subjects=None, source: str | None = None) -> LoadResult:
    """Read machine detections into the canonical ``detections`` table.

    Parameters
    ----------
    path : str or path-like
        A CSV (optionally gzipped), Parquet or FITS table, or a COCO results JSON file.
    image_subjects : dict or str or path-like, optional
        For COCO results: COCO image id -> Zooniverse subject id, as a dict or a
        CSV/Parquet file (``image_id``, ``subject_id``) or JSON object file.
        Without it, image ids are taken to be subject ids.
    source : str, optional
        The detections' ``source`` name (which detector and run); default the file name
        without its extensions.

    Returns
    -------
    LoadResult
        ``.detections`` (subject_id, detection_id, x, y, width, height, angle,
        score, label, source, kind and the file's other columns) and ``.report``.
    """
    return Detections(image_subjects=image_subjects, source=source).read(Path(path))


def _lower_names(columns) -> dict[str, str]:
    """Lower-cased column name -> the file's spelling (the first, when two differ only in case)."""
    names: dict[str, str] = {}
    for column in columns:
        names.setdefault(str(column).lower(), str(column))
    return names


def _layout(path: Path, head: bytes) -> str | None:
    """``"coco"``, ``"fits"`` or ``"table"`` when the file holds detections, else None."""
    if fits_layout(head) is not None:
        return "fits" if set(REQUIRED) <= set(_lower_names(first_extension_columns(head))) else None
    text = head.lstrip()
    if text[:1] == b"[":
        # The first results name their fields (4 KiB holds even an indented one with a mask).
        first = text[:4096]
        return "coco" if all(f'"{name}"'.encode() in first for name in ("image_id", "bbox", "score")) else None
    return "table" if set(REQUIRED) <= set(_lower_names(table_columns(path, head))) else None


@dataclass
class Field:
    """One column read as numbers: the values, which cells were numbers, which were empty."""

    values: np.ndarray
    ok: np.ndarray
    blank: np.ndarray


@dataclass
class Columns:
    """What a reader found: numeric fields, labels, other columns, line numbers, and checks to apply first."""

    fields: dict[str, Field]
    labels: pd.Series | None
    extra: dict[str, pd.Series]
    lines: np.ndarray
    #: (mask, reason) pairs of rows a reader already knows are bad, applied before the field checks.
    checks: list = field(default_factory=list)


def _text_field(rows: TextTable, column: str, integer: bool = False) -> Field:
    cells = rows.column(column)
    values, ok = parse_integers(cells) if integer else parse_floats(cells)
    blank = pc.equal(pc.utf8_trim_whitespace(cells), "").to_numpy(zero_copy_only=False)
    return Field(values, ok, blank)


def _frame_field(values: pd.Series, integer: bool = False) -> Field:
    """A column of a FITS table or of parsed JSON as numbers (booleans, text and lists are not)."""
    blank = values.isna().to_numpy(dtype=bool)
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        numbers = values.to_numpy(dtype=float, na_value=np.nan)
    else:
        is_number = values.map(lambda value: isinstance(value, (int, float)) and not isinstance(value, bool),
                               na_action="ignore").fillna(False).to_numpy(dtype=bool)
        numbers = np.full(len(values), np.nan)
        numbers[is_number] = values[is_number].to_numpy(dtype=float)
    ok = np.isfinite(numbers)
    if not integer:
        return Field(numbers, ok, blank)
    if pd.api.types.is_integer_dtype(values.dtype):
        # Exact, also above 2**53, where a float would round an id.
        return Field(values.to_numpy(dtype=np.int64, na_value=0), ~blank, blank)
    ok &= (numbers == np.round(numbers)) & (np.abs(numbers) < 2**53)
    return Field(np.where(ok, numbers, 0).astype(np.int64), ok, blank)


def _parse(path: Path, image_subjects, source: str | None) -> LoadResult:
    report = LoadReport(source=str(path), format=Detections.short_name)
    head = read_head(path)
    layout = _layout(path, head)
    if layout is None:
        raise FormatError(
            f"{path}: not {EXPECTED}: expected a CSV, Parquet or FITS table with columns "
            f"{', '.join(REQUIRED)} (optional: {', '.join(OPTIONAL)}), or COCO results JSON, a list "
            "of {\"image_id\", \"category_id\", \"bbox\", \"score\"}")
    if image_subjects is not None and layout != "coco":
        raise ValueError(f"{path}: image_subjects maps COCO image ids, but this is a {layout} file "
                         "with subject ids of its own")
    if layout == "coco":
        columns = _coco(path, image_subjects, report)
    elif layout == "fits":
        columns = _fits(path, report)
    else:
        columns = _table(path, report)
    if source is None:
        source = path.name
        while source.lower().endswith(SUFFIXES):
            source = source[: source.lower().rfind(".")]
    detections = _detections(columns, report, source)
    counts = report.counts
    counts["detections"] = len(detections)
    counts["subjects"] = int(detections["subject_id"].nunique())
    counts["points"] = int((detections["kind"] == "point").sum())
    counts["labels"] = {str(label): int(count) for label, count
                        in detections["label"].value_counts(dropna=False).items()}
    counts["layout"] = layout
    return LoadResult({"detections": detections}, report)


def _table(path: Path, report: LoadReport):
    header = _lower_names(table_columns(path, read_head(path)))
    rows = read_text_table(path, report, EXPECTED, [header[name] for name in REQUIRED])
    names = _lower_names(rows.columns)
    fields = {name: _text_field(rows, names[name], integer=name in ("subject_id", "detection_id"))
              for name in REQUIRED + OPTIONAL if name in names and name != "label"}
    labels = pd.Series(rows.strings(names["label"]), dtype="string") if "label" in names else None
    used = {names[name] for name in REQUIRED + OPTIONAL if name in names}
    extra = {column: typed_values(pd.Series(rows.strings(column), dtype=object))
             for column in rows.columns if column not in used}
    return Columns(fields, labels, extra, rows.lines)


def _fits(path: Path, report: LoadReport):
    frame, _ = read_astropy_table(path, "fits", EXPECTED)
    report.rows_read = len(frame)
    report.counts["line_numbers"] = "table row numbers, from 1"
    names = _lower_names(frame.columns)
    fields = {name: _frame_field(frame[names[name]], integer=name in ("subject_id", "detection_id"))
              for name in REQUIRED + OPTIONAL if name in names and name != "label"}
    labels = frame[names["label"]].astype("string") if "label" in names else None
    used = {names[name] for name in REQUIRED + OPTIONAL if name in names}
    extra = {column: frame[column] for column in frame.columns if column not in used}
    return Columns(fields, labels, extra, np.arange(1, len(frame) + 1, dtype=np.int64))


def _read_bytes(path: Path) -> bytes:
    with open(path, "rb") as handle:
        gzipped = handle.read(2) == b"\x1f\x8b"
    opener = gzip.open if gzipped else open
    try:
        with opener(path, "rb") as handle:
            return handle.read()
    except (OSError, EOFError) as error:
        raise FormatError(f"{path}: cannot be read ({error})") from error


def _coco(path: Path, image_subjects, report: LoadReport):
    try:
        results = orjson.loads(_read_bytes(path))
    except orjson.JSONDecodeError as error:
        raise FormatError(f"{path}: not COCO results JSON: {error}") from error
    if not isinstance(results, list):
        raise FormatError(f"{path}: not COCO results JSON: expected a list of detection results, "
                          f"found a JSON {type(results).__name__}")
    report.rows_read = len(results)
    report.counts["line_numbers"] = "positions in the list of results, from 1"
    lines = np.arange(1, len(results) + 1, dtype=np.int64)
    try:
        frame = pd.DataFrame.from_records(results) if results else pd.DataFrame(index=range(0))
        is_object = np.ones(len(results), dtype=bool)
    except (TypeError, ValueError, AttributeError):
        # Something in the list is not an object: only then look at each entry.
        is_object = np.fromiter((isinstance(result, dict) for result in results), bool, len(results))
        frame = pd.DataFrame.from_records([result if good else {} for result, good in zip(results, is_object)])
    frame = frame.reindex(range(len(results)))
    for name in COCO_FIELDS:
        if name not in frame.columns:
            frame[name] = None

    bbox, bbox_ok = _bboxes(frame["bbox"])
    image_ids = _frame_field(frame["image_id"], integer=True)
    subject_ids, unmapped, mapping_counts = _subject_ids(image_ids, image_subjects)
    report.counts.update(mapping_counts)
    fields = {
        "subject_id": subject_ids,
        "x": Field(bbox[:, 0], bbox_ok, ~bbox_ok), "y": Field(bbox[:, 1], bbox_ok, ~bbox_ok),
        "width": Field(bbox[:, 2], bbox_ok, ~bbox_ok), "height": Field(bbox[:, 3], bbox_ok, ~bbox_ok),
        "score": _frame_field(frame["score"]),
    }
    if "id" in frame.columns:
        fields["detection_id"] = _frame_field(frame["id"], integer=True)
    category = _frame_field(frame["category_id"], integer=True)
    labels = pd.Series(pd.array(np.where(category.ok, category.values.astype(str), None), dtype="string"))
    extra = {"image_id": pd.Series(image_ids.values)}
    for column in frame.columns:
        if column not in COCO_FIELDS + ("id",):
            extra[column] = typed_values(frame[column].astype(object).where(frame[column].notna(), None))
    # An entry that is not an object fails every field: it is reported as what it is.
    checks = [(~is_object, "not a JSON object"), (~image_ids.ok, "image_id is not an integer"),
              (unmapped, "image_id is not in the image_subjects mapping"),
              (~bbox_ok, "bbox is not [x, y, width, height] in numbers")]
    return Columns(fields, labels, extra, lines, checks)


def _bboxes(cells: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """An (n, 4) array of ``[x, y, width, height]`` boxes and which cells were such a box."""
    values = cells.astype(object).where(cells.notna(), None).tolist()
    try:
        boxes = pa.array(values, type=pa.list_(pa.float64()))
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # A cell holding text or a nested value: only then look at each cell.
        values = [value if isinstance(value, list) and all(
            isinstance(number, (int, float)) and not isinstance(number, bool) for number in value) else None
            for value in values]
        boxes = pa.array(values, type=pa.list_(pa.float64()))
    ok = pc.fill_null(pc.equal(pc.list_value_length(boxes), 4), False).to_numpy(zero_copy_only=False)
    result = np.full((len(values), 4), np.nan)
    if ok.any():
        result[ok] = pc.list_flatten(boxes.filter(pa.array(ok))).to_numpy(zero_copy_only=False).reshape(-1, 4)
    return result, ok & np.isfinite(result).all(axis=1)


def _subject_ids(image_ids: Field, image_subjects) -> tuple[Field, np.ndarray, dict]:
    """Subject ids of COCO image ids through ``image_subjects`` (the ids themselves without it).

    Returns the subject ids, which readable image ids the mapping lacks, and report counts.
    """
    if image_subjects is None:
        return (image_ids, np.zeros(len(image_ids.ok), dtype=bool),
                {"subject_ids": "the COCO image ids (no image_subjects mapping given)"})
    mapping, counts = _mapping(image_subjects)
    subject_ids = pd.Series(image_ids.values).map(mapping)
    found = subject_ids.notna().to_numpy(dtype=bool)
    values = subject_ids.fillna(0).to_numpy(dtype=np.int64)
    return Field(values, found, ~found), image_ids.ok & ~found, {"image_subjects": counts}


def _mapping(image_subjects) -> tuple[pd.Series, dict]:
    """The image id -> subject id mapping as an int64 Series indexed by image id, and its counts."""
    if isinstance(image_subjects, dict):
        try:
            keys = np.array([int(key) for key in image_subjects], dtype=np.int64)
            values = np.array([int(value) for value in image_subjects.values()], dtype=np.int64)
        except (TypeError, ValueError) as error:
            raise ValueError(f"image_subjects: every image id and subject id must be an integer ({error})") from None
        return pd.Series(values, index=keys), {"images": len(keys)}
    path = Path(image_subjects)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file (the image_subjects mapping)")
    head = read_head(path).lstrip()
    if head[:1] == b"{":
        try:
            mapping = orjson.loads(_read_bytes(path))
            return _mapping(mapping)[0], {"file": str(path), "images": len(mapping)}
        except (orjson.JSONDecodeError, ValueError) as error:
            raise FormatError(f"{path}: not an image_subjects mapping: expected a JSON object "
                              f"{{\"image_id\": subject_id}} ({error})") from None
    report = LoadReport(source=str(path), format="image_subjects")
    rows = read_text_table(path, report, "an image_subjects mapping (image_id, subject_id)",
                           ("image_id", "subject_id"))
    kept = RowFilter(report, rows.lines)
    image_ids, ok = parse_integers(rows.column("image_id"))
    kept.reject(~ok, "image_id is not an integer")
    subject_ids, ok = parse_integers(rows.column("subject_id"))
    kept.reject(~ok, "subject_id is not an integer")
    mapping = pd.Series(subject_ids[kept.kept], index=image_ids[kept.kept])
    conflicting = mapping.groupby(level=0).nunique()
    if (conflicting > 1).any():
        raise FormatError(f"{path}: image id {int(conflicting[conflicting > 1].index[0])} is mapped to "
                          "more than one subject id")
    mapping = mapping[~mapping.index.duplicated()]
    report.rows_loaded = len(mapping)
    return mapping, report.to_dict()


def _detections(columns: Columns, report: LoadReport, source: str) -> pd.DataFrame:
    """The canonical table from the columns read, each bad row skipped under its first problem."""
    fields, labels, extra, lines = columns.fields, columns.labels, columns.extra, columns.lines
    kept = RowFilter(report, lines)
    for mask, reason in columns.checks:
        kept.reject(mask, reason)
    kept.reject(~fields["subject_id"].ok, "subject_id is not an integer")
    n_rows = len(lines)
    # A table without width and height columns holds points.
    empty = Field(np.zeros(n_rows), np.zeros(n_rows, bool), np.ones(n_rows, bool))
    width, height = fields.get("width", empty), fields.get("height", empty)
    for name in ("x", "y"):
        kept.reject(~fields[name].ok, f"{name} is not a number")
    point = (width.blank & height.blank) | (width.ok & height.ok & (width.values == 0) & (height.values == 0))
    for name, size in (("width", width), ("height", height)):
        kept.reject(~point & ~(size.ok & (size.values >= 0)), f"{name} is not a number >= 0")
    angle = fields.get("angle")
    if angle is not None:
        kept.reject(~angle.blank & ~angle.ok, "angle is not a number")
    kept.reject(~fields["score"].ok, "score is not a number")
    detection_id = fields.get("detection_id")
    if detection_id is not None:
        kept.reject(~detection_id.ok, "detection_id is not an integer")
        repeated = np.zeros(n_rows, dtype=bool)
        rows = kept.kept
        repeated[rows] = pd.Series(detection_id.values[rows]).duplicated().to_numpy()
        kept.reject(repeated, "detection_id repeats an earlier row's")
    rows = kept.kept
    report.rows_loaded = len(rows)

    table = pd.DataFrame({
        "subject_id": fields["subject_id"].values[rows],
        "detection_id": (detection_id.values[rows] if detection_id is not None
                         else np.arange(len(rows), dtype=np.int64)),
        "x": fields["x"].values[rows],
        "y": fields["y"].values[rows],
        "width": np.where(point, 0.0, width.values)[rows],
        "height": np.where(point, 0.0, height.values)[rows],
        "angle": (np.where(angle.blank, 0.0, angle.values)[rows] if angle is not None else 0.0),
        "score": fields["score"].values[rows],
        "label": (labels.iloc[rows].reset_index(drop=True).replace("", pd.NA) if labels is not None
                  else pd.Series(pd.NA, index=range(len(rows)), dtype="string")),
        "source": source,
    })
    for column, values in extra.items():
        if column not in table.columns:
            table[column] = pd.Series(values).iloc[rows].reset_index(drop=True).array
    table["kind"] = pd.array(np.where(point[rows], "point", "rectangle"), dtype="string")
    return conform(table, "detections")
