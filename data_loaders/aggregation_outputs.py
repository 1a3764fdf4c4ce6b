"""panoptes_aggregation extractor and reducer CSVs -> ``marks``, ``consensus`` and ``links``.

panoptes_aggregation (``panoptes_aggregation extract`` / ``reduce``) writes one
CSV row per classification (extractions) or per subject and task (reductions).
The ``data`` dict of each row is flattened into columns named
``data.frame<N>.<task>_tool<I>_<field>`` (``toolIndex<I>`` for the new front
end); every cell holds a Python list literal. The fields zoolens reads:

- extractions: the shape parameters of each mark (``x``, ``y``, ``width``,
  ``height``, ``angle``; ``x_center``/``y_center`` for the new front end;
  ``r``, ``rx``/``ry``, ``x1``..``y2``; ``pathX``/``pathY`` lists of vertices).
- reductions (shape_reducer_dbscan / hdbscan / optics, point and polygon
  reducers): ``clusters_<param>`` per cluster, ``clusters_count`` (marks in
  the cluster), ``clusters_sigma`` (IoU metric), ``n_classifications`` when the
  reducer records it, ``consensus`` (polygon reducer), ``cluster_labels``
  (cluster of each raw mark, -1 for noise, in the order the reducer saw the
  marks), ``cluster_probabilities`` (HDBSCAN) and the raw marks themselves
  (``<shape>_<param>``).

Cells are parsed with JSON, then `ast.literal_eval` (never ``eval``); numpy
reprs such as ``np.float64(1.0)`` and bare ``nan`` are understood.

Shapes become canonical boxes: top-left x, y, width, height and angle (new
front end centres are converted); circles, ellipses, lines and polygons keep
their ``kind`` and get their bounding box. Tables:

- ``marks`` (extractions): one row per mark; ``mark_index`` is the mark's
  position within its classification, frame, task and tool.
- ``consensus`` (reductions): one row per cluster; ``n_votes`` is the cluster's
  ``clusters_count``; ``n_seen`` is the reducer's ``n_classifications`` or missing (NA)
  when the file does not record how many volunteers saw the subject.
- ``links`` (reductions): one row per raw mark of ``cluster_labels``:
  ``mark_index`` within subject, frame, task and tool (the reducer's order),
  ``consensus_id`` (-1 for noise), the raw mark's box when the file lists it.
  ``mark_id`` numbers the links of this file; join to a classification
  export's marks by (subject_id, task, tool, frame, mark_index) in extraction
  order. ``iou`` is NaN: the reducer does not record it.
- ``reductions``: one row per reducer row (subject and task), with its cluster
  and mark counts, so subjects reduced to nothing are still listed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ._csv import (CsvExport, RowFilter, TextTable, parse_integers, parse_literals, parse_timestamps,
                   read_text_csv)
from .base import LoadReport, LoadResult, csv_header, read_head
from .schema import conform

EXPECTED = "a panoptes_aggregation extractor or reducer CSV"
EXTRACTION_COLUMNS = ("classification_id", "subject_id", "extractor")
REDUCTION_COLUMNS = ("subject_id", "reducer")

#: ``data.frame0.T0_tool1_clusters_x`` -> frame 0, task T0, tool 1, field clusters_x.
FIELD_PATTERN = re.compile(
    r"^(?P<frame>\d+)\.(?P<task>.+?)_tool(?:Index)?(?P<tool>\d+)_(?P<field>.+)$")

#: Shape names panoptes_aggregation prefixes raw-mark fields with (``rectangle_x``).
SHAPE_NAMES = ("rectangle", "rotateRectangle", "circle", "ellipse", "line", "point", "points",
               "triangle", "fan", "column", "fullWidthLine", "fullHeightLine",
               "temporalRotateRectangle", "temporalPoint")


@dataclass
class ToolFields:
    """The data columns of one frame, task and tool: field name -> column name."""

    frame: int
    task: str
    tool: int
    fields: dict[str, str] = field(default_factory=dict)


def group_fields(columns, prefix: str = "data.frame") -> tuple[list[ToolFields], list[str]]:
    """Group ``data.frame<N>.<task>_tool<I>_<field>`` columns by frame, task and tool.

    Returns the groups and the data columns that name no tool (kept out of the tables).
    """
    groups: dict[tuple[int, str, int], ToolFields] = {}
    other = []
    for column in columns:
        if not column.startswith(prefix):
            continue
        match = FIELD_PATTERN.match(column[len(prefix):])
        if match is None:
            other.append(column)
            continue
        key = (int(match["frame"]), match["task"], int(match["tool"]))
        group = groups.setdefault(key, ToolFields(*key))
        group.fields[match["field"]] = column
    return [groups[key] for key in sorted(groups)], other


class AggregationOutput(CsvExport):
    """panoptes_aggregation extractor or reducer CSV (shape, point and polygon tools)."""

    short_name = "panoptes_aggregation"
    column_sets = (EXTRACTION_COLUMNS, REDUCTION_COLUMNS)

    def parse(self, path: Path) -> LoadResult:
        return _parse(path, self.limits)


def read_aggregation_output(path, use_cache: bool = True) -> LoadResult:
    """Read a panoptes_aggregation extractor or reducer CSV.

    Parameters
    ----------
    path : str or path-like
        ``*_extractions.csv`` or ``*_reductions.csv`` (optionally gzipped).
    use_cache : bool
        Reuse the Parquet cache of an earlier parse of the same file.

    Returns
    -------
    LoadResult
        Extractions: ``.marks``. Reductions: ``.consensus``, ``.links`` and
        ``.reductions``. Always ``.report``.
    """
    return AggregationOutput(use_cache=use_cache).read(Path(path))


def _parse(path: Path, limits: dict) -> LoadResult:
    report = LoadReport(source=str(path), format=AggregationOutput.short_name)
    header = csv_header(read_head(path))
    extractions = set(EXTRACTION_COLUMNS) <= set(header)
    required = EXTRACTION_COLUMNS if extractions else REDUCTION_COLUMNS
    rows = read_text_csv(path, report, EXPECTED, required, **limits)
    groups, other = group_fields(rows.columns)
    report.counts["columns_not_used"] = other

    cells = TextListCells(rows)
    if extractions:
        return extractions_to_marks(rows, groups, cells, report)
    return reductions_to_tables(rows, groups, cells, _reduction_source(rows), report)


# --------------------------------------------------------------------------- numeric lists


def numeric_lists(values: list, depth: int = 1) -> tuple[pa.ListArray, np.ndarray]:
    """Cells (lists of numbers, or lists of lists when ``depth`` is 2) as a pyarrow ListArray.

    Returns the array (null where a cell is empty or bad) and a mask of the cells
    that are neither empty nor a list of numbers of that depth.
    """
    list_type = _list_type(depth)
    bad = np.zeros(len(values), dtype=bool)
    try:
        return pa.array(values, type=list_type), bad
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError, ValueError):
        pass
    checked = []
    for index, value in enumerate(values):
        try:
            pa.array([value], type=list_type)
            checked.append(value)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError, ValueError):
            checked.append(None)
            bad[index] = True
    return pa.array(checked, type=list_type), bad


def _nesting(values: list) -> int:
    """2 when the first non-empty cell is a list of lists (polygon paths), else 1."""
    for value in values:
        if isinstance(value, list) and value:
            return 2 if isinstance(value[0], list) else 1
    return 1


class ListCells:
    """Where the list fields of a table come from: `TextListCells` or `ValueListCells`."""

    def nesting(self, column: str) -> int:
        """2 when the column's first non-empty cell is a list of lists, else 1."""
        raise NotImplementedError

    def lists(self, column: str, depth: int) -> tuple[pa.ListArray, np.ndarray]:
        """The column as a ListArray of numbers and a mask of the cells that are not."""
        raise NotImplementedError


class TextListCells(ListCells):
    """List literals in CSV text cells (panoptes_aggregation's own CSVs).

    Blocks of cells are read by pyarrow's JSON reader straight into Arrow lists,
    without Python objects; a block holding a cell that is not JSON (Python's
    ``nan``, quotes, a broken cell) is parsed cell by cell with `parse_literals`.
    """

    def __init__(self, rows: TextTable):
        self.rows = rows

    def nesting(self, column: str) -> int:
        text = pc.utf8_trim_whitespace(self.rows.column(column))
        present = pc.filter(text, pc.not_equal(text, ""))
        if not len(present):
            return 1
        return 2 if re.match(r"^\[\s*\[", present[0].as_py()) else 1

    def lists(self, column: str, depth: int) -> tuple[pa.ListArray, np.ndarray]:
        text = pc.utf8_trim_whitespace(self.rows.column(column))
        list_type = _list_type(depth)
        parts, bad = [], []
        for start in range(0, len(text), JSON_BLOCK):
            block = text.slice(start, JSON_BLOCK)
            array = _json_lists(block, list_type)
            if array is None:
                values, ok = parse_literals(block.to_pylist())
                array, not_numbers = numeric_lists(values, depth)
                bad.append(~ok | not_numbers)
            else:
                bad.append(np.zeros(len(block), dtype=bool))
            parts.append(array)
        if not parts:
            return pa.array([], list_type), np.zeros(0, dtype=bool)
        return pa.concat_arrays(parts), np.concatenate(bad)


class ColumnListCells(ListCells):
    """Columns already parsed: Arrow arrays (from pyarrow's JSON reader) or lists of Python values.

    Used for the unpacked JSON objects of Caesar exports.
    """

    def __init__(self, columns: dict[str, pa.Array | list]):
        self.columns = columns

    def nesting(self, column: str) -> int:
        values = self.columns[column]
        if isinstance(values, pa.Array):
            list_type = values.type
            return 2 if pa.types.is_list(list_type) and pa.types.is_list(list_type.value_type) else 1
        return _nesting(values)

    def lists(self, column: str, depth: int) -> tuple[pa.ListArray, np.ndarray]:
        values = self.columns[column]
        if isinstance(values, pa.Array):
            try:
                return values.cast(_list_type(depth)), np.zeros(len(values), dtype=bool)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
                values = values.to_pylist()  # strings or objects somewhere: sort them out below
        return numeric_lists(values, depth)


#: Rows per block of JSON cells parsed at once; a bad cell sends only its block to the slow path.
JSON_BLOCK = 8192


def _list_type(depth: int) -> pa.DataType:
    return pa.list_(pa.float64()) if depth == 1 else pa.list_(pa.list_(pa.float64()))


def _json_lists(cells: pa.Array, list_type: pa.DataType) -> pa.ListArray | None:
    """Cells of JSON lists as a ListArray (empty cells null), or None if any cell is not one."""
    import pyarrow.json as pjson

    empty = pc.equal(cells, "")
    lines = pc.binary_join_element_wise('{"v":', pc.if_else(empty, "null", cells), "}", "")
    if pc.any(pc.match_substring(lines, "\n")).as_py():
        return None  # a line break inside a cell would split the JSON line
    document = pc.binary_join(pa.ListArray.from_arrays(pa.array([0, len(lines)], pa.int32()),
                                                       lines.cast(pa.string())), "\n")
    try:
        table = pjson.read_json(
            pa.BufferReader(document[0].as_buffer()),
            parse_options=pjson.ParseOptions(explicit_schema=pa.schema([("v", list_type)])))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    array = table.column("v").combine_chunks()
    return array if len(array) == len(cells) else None


@dataclass
class Exploded:
    """One list field exploded: the row of each element, its index within the row, its value."""

    row: np.ndarray
    index: np.ndarray
    value: np.ndarray
    lengths: np.ndarray


def explode(array: pa.ListArray) -> Exploded:
    """One element per list item, with its row and index; a list of lists gives (min, max) pairs."""
    lengths = pc.fill_null(pc.list_value_length(array), 0).to_numpy(zero_copy_only=False)
    lengths = lengths.astype(np.int64)
    starts = np.cumsum(lengths) - lengths
    row = np.repeat(np.arange(len(array), dtype=np.int64), lengths)
    index = np.arange(len(row), dtype=np.int64) - np.repeat(starts, lengths)
    flat = pc.list_flatten(array)
    if pa.types.is_list(flat.type):
        value = _extent(flat)
    else:
        value = flat.to_numpy(zero_copy_only=False).astype(np.float64)
    return Exploded(row, index, value, lengths)


def _extent(paths: pa.ListArray) -> np.ndarray:
    """(min, max) of every inner list (NaN for an empty one), as an (n, 2) array."""
    lengths = pc.fill_null(pc.list_value_length(paths), 0).to_numpy(zero_copy_only=False)
    values = pc.list_flatten(paths).to_numpy(zero_copy_only=False).astype(np.float64)
    extent = np.full((len(paths), 2), np.nan)
    present = lengths > 0
    if present.any():
        starts = (np.cumsum(lengths) - lengths)[present]
        extent[present, 0] = np.fmin.reduceat(values, starts)
        extent[present, 1] = np.fmax.reduceat(values, starts)
    return extent


# --------------------------------------------------------------------------- shapes


def shape_of(params, nested: bool, hint: str | None = None) -> tuple[str, tuple[str, ...]] | None:
    """(kind, parameter names) of a tool from the parameters its fields give, or None.

    ``hint`` is the shape a reducer named in its raw-mark fields (``rectangle``)
    or the extractor's name, used to tell a polygon from a freehand line.
    """
    params = set(params)
    if nested:
        for names in (("pathX", "pathY"), ("x", "y")):
            if set(names) <= params:
                kind = "freehandLine" if hint and "freehand" in hint.lower() else "polygon"
                return kind, names
        return None
    for centre in (("x_center", "y_center"), ("x", "y")):
        if set(centre + ("width", "height")) <= params:
            if "angle" in params:
                return "rotateRectangle", centre + ("width", "height", "angle")
            return "rectangle", centre + ("width", "height")
        if set(centre + ("rx", "ry")) <= params:
            return "ellipse", centre + ("rx", "ry") + (("angle",) if "angle" in params else ())
        if set(centre + ("r",)) <= params:
            return "circle", centre + ("r",)
    if {"x1", "y1", "x2", "y2"} <= params:
        return "line", ("x1", "y1", "x2", "y2")
    if {"x", "y"} <= params:
        return "point", ("x", "y")
    return None


def boxes(kind: str, names: tuple[str, ...], values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Canonical x, y, width, height, angle of shapes given their parameters (flat arrays)."""
    n = len(next(iter(values.values())))
    angle = np.zeros(n)
    if kind in ("polygon", "freehandLine"):
        xs, ys = values[names[0]], values[names[1]]
        return {"x": xs[:, 0], "y": ys[:, 0], "width": xs[:, 1] - xs[:, 0],
                "height": ys[:, 1] - ys[:, 0], "angle": angle}
    centred = names[0] == "x_center"
    x, y = values[names[0]], values[names[1]]
    if kind in ("rectangle", "rotateRectangle"):
        width, height = values["width"], values["height"]
        if centred:
            x, y = x - width / 2, y - height / 2
        if kind == "rotateRectangle":
            angle = values["angle"]
        return {"x": x, "y": y, "width": width, "height": height, "angle": angle}
    if kind == "circle":
        r = values["r"]
        return {"x": x - r, "y": y - r, "width": 2 * r, "height": 2 * r, "angle": angle}
    if kind == "ellipse":
        theta = np.radians(values["angle"]) if "angle" in values else np.zeros(n)
        half_w = np.hypot(values["rx"] * np.cos(theta), values["ry"] * np.sin(theta))
        half_h = np.hypot(values["rx"] * np.sin(theta), values["ry"] * np.cos(theta))
        return {"x": x - half_w, "y": y - half_h, "width": 2 * half_w, "height": 2 * half_h,
                "angle": angle}
    if kind == "line":
        x1, y1, x2, y2 = (values[name] for name in names)
        return {"x": np.fmin(x1, x2), "y": np.fmin(y1, y2), "width": np.abs(x2 - x1),
                "height": np.abs(y2 - y1), "angle": angle}
    # A point keeps its position; it has no size until a point_box rule gives it one.
    return {"x": x, "y": y, "width": np.full(n, np.nan), "height": np.full(n, np.nan),
            "angle": angle}


def read_fields(fields: dict[str, str], cells: ListCells, rows: RowFilter,
                depths: dict[str, int] | None = None) -> dict[str, Exploded]:
    """Parse and explode the list fields (name -> column) of one tool.

    ``depths`` fixes the list depth of some fields (a path's x and y must both be
    lists of lists); the others take the depth of their column's first cell. Rows
    holding a cell that is not a list of numbers of that depth, or lists of
    different lengths for the same shapes, are rejected in ``rows``.
    """
    depths = depths or {}
    arrays = {}
    bad = np.zeros(len(rows.keep), dtype=bool)
    for name, column in fields.items():
        array, not_numbers = cells.lists(column, depths.get(name) or cells.nesting(column))
        rows.reject(not_numbers, f"{column} is not a list of numbers")
        bad |= not_numbers
        arrays[name] = array
    lengths = [pc.fill_null(pc.list_value_length(array), 0).to_numpy(zero_copy_only=False)
               for array in arrays.values()]
    for other in lengths[1:]:
        rows.reject(other != lengths[0], "lists of one tool differ in length")
        bad |= other != lengths[0]
    # A bad row's cells are emptied in every field, so the exploded fields stay aligned.
    positions = pa.array(np.arange(len(bad)), mask=bad)
    return {name: explode(array.take(positions)) for name, array in arrays.items()}


# --------------------------------------------------------------------------- extractions


def extractions_to_marks(rows: TextTable, groups: list[ToolFields], cells: ListCells,
                         report: LoadReport, kept_rows: RowFilter | None = None,
                         extractor_column: str = "extractor",
                         time_column: str = "created_at") -> LoadResult:
    """The ``marks`` table of an extractions table (one row per classification).

    Shared by panoptes_aggregation extractor CSVs and Caesar extract exports;
    ``cells`` gives its list fields, and ``kept_rows`` the rows a caller has
    already rejected. The ``user`` is the
    ``user_name`` column when there is one, else the user id.
    """
    n = len(rows)
    kept_rows = RowFilter(report, rows.lines) if kept_rows is None else kept_rows
    classification_ids, ok = parse_integers(rows.column("classification_id"))
    kept_rows.reject(~ok, "classification_id is not an integer")
    subject_ids, ok = parse_integers(rows.column("subject_id"))
    kept_rows.reject(~ok, "subject_id is not an integer")
    extractor = rows.strings(extractor_column)
    hint = extractor[0] if n else None
    parts = []
    unsupported: dict[str, int] = {}
    for group in groups:
        path_column = group.fields.get("pathX") or group.fields.get("x")
        nested = path_column is not None and cells.nesting(path_column) == 2
        shape = shape_of(group.fields, nested=nested, hint=hint)
        if shape is None:
            unsupported[f"frame{group.frame}.{group.task}_tool{group.tool}"] = len(group.fields)
            continue
        kind, names = shape
        parsed = read_fields({name: group.fields[name] for name in names}, cells, kept_rows,
                             depths=dict.fromkeys(names, 2 if nested else 1))
        first = parsed[names[0]]
        geometry = boxes(kind, names, {name: item.value for name, item in parsed.items()})
        parts.append(pd.DataFrame({
            "row": first.row, "frame": group.frame, "task": group.task, "tool": group.tool,
            "mark_index": first.index, "kind": kind, **geometry}))
    report.counts["tools_not_read"] = unsupported

    keep = kept_rows.keep
    kept = kept_rows.kept
    report.rows_loaded = len(kept)
    marks = pd.concat(parts, ignore_index=True) if parts else _empty_shapes("mark_index")
    marks = marks[keep[marks["row"].to_numpy(dtype=np.int64)]]
    marks = _drop_degenerate(marks, report)
    marks = marks.sort_values(["row", "frame", "task", "tool", "mark_index"], kind="stable",
                              ignore_index=True)
    row = marks["row"].to_numpy(dtype=np.int64)
    user_column = next((c for c in ("user_name", "user_id") if c in rows.columns), None)
    user_names = rows.strings(user_column) if user_column else np.full(n, None, dtype=object)
    user_names[user_names == ""] = None
    marks_table = pd.DataFrame({
        "mark_id": np.arange(len(marks), dtype=np.int64),
        "classification_id": classification_ids[row],
        "subject_id": subject_ids[row],
        "user": pd.array(user_names[row], dtype="string"),
        "task": marks.get("task", pd.Series(dtype="string")),
        "tool": marks.get("tool", pd.Series(dtype=np.int64)),
        "tool_label": pd.array([None] * len(marks), dtype="string"),
        "frame": marks.get("frame", pd.Series(dtype=np.int64)),
        **{name: marks.get(name, pd.Series(dtype=float)) for name in
           ("x", "y", "width", "height", "angle")},
        "kind": marks.get("kind", pd.Series(dtype="string")),
        "mark_index": marks.get("mark_index", pd.Series(dtype=np.int64)),
        "extractor": pd.array(extractor[row], dtype="string"),
    })
    if "user_id" in rows.columns:
        user_ids, ok = parse_integers(rows.column("user_id"))
        marks_table["user_id"] = pd.array(np.where(ok, user_ids, 0)[row], dtype="Int64")
        marks_table.loc[~ok[row], "user_id"] = pd.NA
    if time_column in rows.columns:
        marks_table["created_at"] = parse_timestamps(rows.column(time_column)).to_numpy()[row]
    marks_table = conform(marks_table, "marks")

    counts = report.counts
    counts["classifications"] = int(len(np.unique(classification_ids[kept])))
    counts["subjects"] = int(len(np.unique(subject_ids[kept])))
    counts["marks"] = len(marks_table)
    counts["marks_by_kind"] = {str(k): int(v) for k, v in
                               marks_table["kind"].value_counts().sort_index().items()}
    counts["extractors"] = sorted(set(extractor[kept]))
    return LoadResult({"marks": marks_table}, report)


def _drop_degenerate(marks: pd.DataFrame, report: LoadReport) -> pd.DataFrame:
    """Boxes of zero or negative size are counted and not passed on as marks."""
    if not len(marks):
        report.counts["degenerate_marks"] = {}
        return marks
    boxed = marks["kind"].isin(["rectangle", "rotateRectangle"]).to_numpy()
    degenerate = boxed & ~((marks["width"] > 0) & (marks["height"] > 0)).to_numpy()
    report.counts["degenerate_marks"] = {str(k): int(v) for k, v in
                                         marks.loc[degenerate, "kind"].value_counts().items()}
    return marks[~degenerate]


# --------------------------------------------------------------------------- reductions


def _reduction_source(rows: TextTable) -> np.ndarray:
    """``shape_reducer_dbscan (panoptes_aggregation 4.1.0; eps=5, min_samples=2)`` per row."""
    parameters = [c for c in rows.columns if c.startswith("data.parameters.")]
    columns = [c for c in ("reducer", "data.aggregation_version") if c in rows.columns] + parameters
    settings = pd.DataFrame({column: rows.strings(column) for column in columns},
                            index=range(len(rows)))
    # Settings rarely vary between rows: describe each distinct combination once.
    distinct = settings.drop_duplicates()
    described = []
    for values in distinct.itertuples(index=False):
        given = dict(zip(columns, values))
        detail = " ".join(filter(None, ["panoptes_aggregation",
                                        given.get("data.aggregation_version", "")]))
        chosen = ", ".join(f"{column[len('data.parameters.'):]}={given[column]}"
                           for column in parameters if given[column])
        described.append(f"{given.get('reducer') or 'reducer'} ({detail}"
                         f"{'; ' + chosen if chosen else ''})")
    distinct = distinct.assign(source=described)
    return settings.merge(distinct, on=columns, how="left")["source"].to_numpy(dtype=object)


def reductions_to_tables(rows: TextTable, groups: list[ToolFields], cells: ListCells,
                         source: np.ndarray, report: LoadReport,
                         kept_rows: RowFilter | None = None) -> LoadResult:
    """Consensus, links and per-row summary from the tool groups of a reductions table.

    Shared by panoptes_aggregation reducer CSVs and Caesar reduction exports;
    ``cells`` gives the list fields, and ``kept_rows`` the rows a caller has
    already rejected.
    """
    n = len(rows)
    kept_rows = RowFilter(report, rows.lines) if kept_rows is None else kept_rows
    subject_ids, ok = parse_integers(rows.column("subject_id"))
    kept_rows.reject(~ok, "subject_id is not an integer")
    clusters, links = [], []
    unsupported: dict[str, int] = {}
    for group in groups:
        label = f"frame{group.frame}.{group.task}_tool{group.tool}"
        cluster_params = {name[len("clusters_"):] for name in group.fields
                          if name.startswith("clusters_")}
        raw_params, hint = _raw_params(group.fields)
        x_column = group.fields.get("clusters_x") or group.fields.get("clusters_pathX")
        nested = x_column is not None and cells.nesting(x_column) == 2
        shape = shape_of(cluster_params, nested=nested, hint=hint) if cluster_params else None
        if cluster_params and shape is None:
            unsupported[label] = len(group.fields)
        if shape is not None:
            kind, names = shape
            fields = {f"clusters_{name}": group.fields[f"clusters_{name}"] for name in names}
            for extra in ("clusters_count", "clusters_sigma", "n_classifications", "consensus"):
                if extra in group.fields:
                    fields[extra] = group.fields[extra]
            # The counts beside the shapes are flat lists, whatever their first cell looks like.
            parsed = read_fields(fields, cells, kept_rows,
                                 depths={**dict.fromkeys(fields, 1),
                                         **{f"clusters_{name}": 2 if nested else 1 for name in names}})
            values = {name: parsed[f"clusters_{name}"].value for name in names}
            first = parsed[f"clusters_{names[0]}"]
            table = pd.DataFrame({"row": first.row, "frame": group.frame, "task": group.task,
                                  "tool": group.tool, "cluster": first.index, "kind": kind,
                                  **boxes(kind, names, values)})
            for extra, column in (("clusters_count", "n_votes"), ("n_classifications", "n_seen"),
                                  ("clusters_sigma", "sigma"), ("consensus", "consensus_score")):
                if extra in parsed:
                    table[column] = parsed[extra].value
            clusters.append(table)
        if "cluster_labels" in group.fields:
            links.append(_group_links(group, raw_params, hint, cells, kept_rows))
    report.counts["tools_not_read"] = unsupported

    keep = kept_rows.keep
    kept = kept_rows.kept
    report.rows_loaded = len(kept)
    consensus = _consensus_table(clusters, keep, subject_ids, source)
    links_table = _links_table(links, keep, subject_ids, consensus, report)
    summary = pd.DataFrame({"row": kept, "subject_id": subject_ids[kept]})
    for column in ("workflow_id",):
        if column in rows.columns:
            values, ok = parse_integers(rows.column(column))
            summary[column] = pd.array(np.where(ok, values, 0)[kept], dtype="Int64")
            summary.loc[~ok[kept], column] = pd.NA
    summary["task"] = pd.array(rows.strings("task")[kept] if "task" in rows.columns
                               else [None] * len(kept), dtype="string")
    summary["source"] = pd.array(source[kept], dtype="string")
    summary["n_consensus"] = np.bincount(consensus["row"], minlength=n)[kept] if len(consensus) \
        else np.zeros(len(kept), dtype=np.int64)
    summary["n_marks"] = np.bincount(links_table["row"], minlength=n)[kept] if len(links_table) \
        else np.zeros(len(kept), dtype=np.int64)
    summary = summary.drop(columns="row")
    consensus = conform(consensus.drop(columns="row"), "consensus")
    links_table = conform(links_table.drop(columns="row"), "links")

    counts = report.counts
    counts["subjects"] = int(len(np.unique(subject_ids[kept])))
    counts["consensus"] = len(consensus)
    counts["consensus_by_kind"] = {str(k): int(v) for k, v in
                                   consensus["kind"].value_counts().sort_index().items()}
    counts["degenerate_consensus"] = int((~((consensus["width"] > 0)
                                            & (consensus["height"] > 0))
                                          & ~consensus["kind"].eq("point")).sum())
    counts["links"] = len(links_table)
    counts["noise_marks"] = int((links_table["consensus_id"] == -1).sum())
    counts["sources"] = sorted(set(summary["source"].dropna()))
    return LoadResult({"consensus": consensus, "links": links_table, "reductions": summary}, report)


def _raw_params(fields: dict[str, str]) -> tuple[dict[str, str], str | None]:
    """The raw-mark fields of a reducer group (``rectangle_x`` -> ``x``) and the shape they name."""
    for shape in sorted(SHAPE_NAMES, key=len, reverse=True):
        prefix = shape + "_"
        raw = {name[len(prefix):]: column for name, column in fields.items()
               if name.startswith(prefix)}
        if raw:
            return raw, shape
    return {}, None


def _group_links(group: ToolFields, raw_params: dict[str, str], hint: str | None, cells: ListCells,
                 kept_rows: RowFilter) -> pd.DataFrame:
    """One row per raw mark of a tool: its cluster label, probability and box when listed."""
    fields = {"labels": group.fields["cluster_labels"]}
    if "cluster_probabilities" in group.fields:
        fields["probability"] = group.fields["cluster_probabilities"]
    raw_shape = shape_of(raw_params, nested=False) if raw_params else None
    if raw_shape is not None:
        fields.update({f"raw_{name}": raw_params[name] for name in raw_shape[1]})
    # Every field here is a flat list (one value per raw mark): a first cell that looks nested
    # (a broken "[[1, 2]") must not make its column a list of lists.
    parsed = read_fields(fields, cells, kept_rows, depths=dict.fromkeys(fields, 1))
    labels = parsed["labels"]
    not_whole = ~np.isfinite(labels.value) | (labels.value != np.round(labels.value))
    bad_rows = np.zeros(len(kept_rows.keep), dtype=bool)
    bad_rows[labels.row[not_whole]] = True
    kept_rows.reject(bad_rows, f"{fields['labels']} holds a label that is not an integer")
    cluster = np.where(not_whole, -1, labels.value).astype(np.int64)
    table = pd.DataFrame({"row": labels.row, "frame": group.frame, "task": group.task,
                          "tool": group.tool, "mark_index": labels.index, "cluster": cluster})
    if "probability" in parsed:
        table["probability"] = parsed["probability"].value
    if raw_shape is not None:
        kind, names = raw_shape
        table["kind"] = hint if hint not in (None, "points") else kind
        table = table.assign(**boxes(kind, names, {name: parsed[f"raw_{name}"].value
                                                   for name in names}))
    return table


def _empty_shapes(index_column: str) -> pd.DataFrame:
    """The exploded-shapes frame of a file with no shapes at all."""
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in (
        ("row", np.int64), ("frame", np.int64), ("task", object), ("tool", np.int64),
        (index_column, np.int64), ("kind", object), ("x", float), ("y", float),
        ("width", float), ("height", float), ("angle", float))})


def _consensus_table(clusters: list[pd.DataFrame], keep: np.ndarray, subject_ids: np.ndarray,
                     source: np.ndarray) -> pd.DataFrame:
    consensus = pd.concat(clusters, ignore_index=True) if clusters else _empty_shapes("cluster")
    consensus = consensus[keep[consensus["row"].to_numpy(dtype=np.int64)]]
    consensus = consensus.sort_values(["row", "frame", "task", "tool", "cluster"], kind="stable",
                                      ignore_index=True)
    row = consensus["row"].to_numpy(dtype=np.int64)
    consensus.insert(0, "subject_id", subject_ids[row])
    consensus.insert(1, "consensus_id", np.arange(len(consensus), dtype=np.int64))
    for column in ("n_votes", "n_seen"):
        known = consensus[column] if column in consensus else pd.Series(pd.NA, index=consensus.index)
        consensus[column] = pd.array(known, dtype="Int64")
    consensus["source"] = source[row] if len(row) else pd.Series(dtype=object)
    return consensus


def _links_table(links: list[pd.DataFrame], keep: np.ndarray, subject_ids: np.ndarray,
                 consensus: pd.DataFrame, report: LoadReport) -> pd.DataFrame:
    if links:
        table = pd.concat(links, ignore_index=True)
    else:
        table = pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in (
            ("row", np.int64), ("frame", np.int64), ("task", object), ("tool", np.int64),
            ("mark_index", np.int64), ("cluster", np.int64))})
    table = table[keep[table["row"].to_numpy(dtype=np.int64)]]
    table = table.sort_values(["row", "frame", "task", "tool", "mark_index"], kind="stable",
                              ignore_index=True)
    keys = ["row", "frame", "task", "tool", "cluster"]
    table = table.merge(consensus[keys + ["consensus_id"]], on=keys, how="left")
    # -1 is noise; a label with no cluster in the file is linked to nothing as well, and counted.
    orphans = table["consensus_id"].isna() & (table["cluster"] >= 0)
    report.counts["labels_without_cluster"] = int(orphans.sum())
    table["consensus_id"] = table["consensus_id"].fillna(-1).astype(np.int64)
    table.insert(0, "mark_id", np.arange(len(table), dtype=np.int64))
    table.insert(1, "subject_id", subject_ids[table["row"].to_numpy(dtype=np.int64)])
    table["iou"] = np.nan
    return table
