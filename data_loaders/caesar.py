"""Caesar data exports (extracts and subject reductions) -> ``marks``, ``consensus`` and ``links``.

Caesar (zooniverse/caesar) runs panoptes_aggregation's extractors and reducers
as a service and exports what it stored as CSV: the model's own columns
(``id``, ``subject_id``, ``extractor_key`` or ``reducer_key``, timestamps, ...)
followed by one ``data.<key>`` column per *top-level* key of the stored
``data``. Unlike panoptes_aggregation's own CSVs, nested dicts are not
flattened further: ``data.frame0`` holds a JSON object such as
``{"T0_tool0_clusters_x": [101.0, 251.0], "T0_tool0_cluster_labels": [0, 1, -1], ...}``.

Each ``data.frame<N>`` object is unpacked into the keys panoptes_aggregation
would have written as ``data.frame<N>.<key>`` columns, and the rows then go
through the same shape handling (`data_loaders.aggregation_outputs`), so the
tables and their columns are the same: extracts give ``marks``; reductions give
``consensus``, ``links`` and ``reductions``. The ``source`` of a consensus row
names Caesar's reducer key and the panoptes_aggregation version.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ._csv import CsvExport, RowFilter, TextTable, parse_literals, read_text_csv
from .aggregation_outputs import (JSON_BLOCK, ColumnListCells, extractions_to_marks, group_fields,
                                  reductions_to_tables)
from .base import LoadReport, LoadResult, csv_header, read_head

EXPECTED = "a Caesar extracts or reductions export"
EXTRACT_COLUMNS = ("classification_id", "extractor_key", "subject_id")
REDUCTION_COLUMNS = ("reducer_key", "subject_id")

_FRAME_COLUMN = re.compile(r"^data\.frame\d+$")


class CaesarExport(CsvExport):
    """Caesar data export CSV: extracts or subject reductions of panoptes_aggregation shapes."""

    short_name = "caesar"
    column_sets = (EXTRACT_COLUMNS, REDUCTION_COLUMNS)
    excluded_columns = ()

    def parse(self, path: Path) -> LoadResult:
        return _parse(path, self.limits)


def read_caesar_export(path, use_cache: bool = True) -> LoadResult:
    """Read a Caesar extracts or subject reductions export.

    Parameters
    ----------
    path : str or path-like
        The export CSV (optionally gzipped).
    use_cache : bool
        Reuse the Parquet cache of an earlier parse of the same file.

    Returns
    -------
    LoadResult
        Extracts: ``.marks``. Reductions: ``.consensus``, ``.links`` and
        ``.reductions``. Always ``.report``.
    """
    return CaesarExport(use_cache=use_cache).read(Path(path))


def _parse(path: Path, limits: dict) -> LoadResult:
    report = LoadReport(source=str(path), format=CaesarExport.short_name)
    extracts = set(EXTRACT_COLUMNS) <= set(csv_header(read_head(path)))
    rows = read_text_csv(path, report, EXPECTED, EXTRACT_COLUMNS if extracts else REDUCTION_COLUMNS,
                         **limits)
    frames = RowFilter(report, rows.lines)
    unpacked = _unpack_frames(rows, frames)
    groups, other = group_fields(unpacked)
    report.counts["columns_not_used"] = other + [
        column for column in rows.columns if column.startswith("data.")
        and not _FRAME_COLUMN.match(column) and column != "data.aggregation_version"]

    cells = ColumnListCells(unpacked)
    if extracts:
        return extractions_to_marks(rows, groups, cells, report, kept_rows=frames,
                                    extractor_column="extractor_key",
                                    time_column="classification_at")
    return reductions_to_tables(rows, groups, cells, _source(rows), report, kept_rows=frames)


def _unpack_frames(rows: TextTable, frames: RowFilter) -> dict[str, pa.Array | list]:
    """``data.frame<N>`` JSON objects -> ``data.frame<N>.<key>`` columns.

    A column whose cells are all JSON objects (or empty) is read by pyarrow's JSON
    reader into one Arrow array per key; a column with any other cell is parsed
    cell by cell, its bad rows rejected, into lists of Python values per key.
    """
    unpacked: dict[str, pa.Array | list] = {}
    n = len(rows)
    for column in rows.columns:
        if not _FRAME_COLUMN.match(column):
            continue
        objects = _json_objects(rows.column(column))
        if objects is not None:
            for key in objects.column_names:
                unpacked[f"{column}.{key}"] = objects.column(key).combine_chunks()
            continue
        values, ok = parse_literals(list(rows.strings(column)))
        is_object = np.fromiter((value is None or isinstance(value, dict) for value in values),
                                dtype=bool, count=n)
        frames.reject(~(ok & is_object), f"{column} is not a JSON object")
        values = [value if isinstance(value, dict) else {} for value in values]
        for key in dict.fromkeys(key for value in values for key in value):
            unpacked[f"{column}.{key}"] = [value.get(key) for value in values]
    return unpacked


def _json_objects(cells: pa.Array) -> pa.Table | None:
    """Cells of JSON objects (empty cells: no keys) as a table, or None if any cell is not one."""
    import pyarrow.json as pjson

    text = pc.utf8_trim_whitespace(cells)
    text = pc.if_else(pc.equal(text, ""), "{}", text)
    if len(text) == 0 or pc.any(pc.match_substring(text, "\n")).as_py():
        return None
    parts = []
    for start in range(0, len(text), JSON_BLOCK):
        block = text.slice(start, JSON_BLOCK)
        document = pc.binary_join(pa.ListArray.from_arrays(
            pa.array([0, len(block)], pa.int32()), block.cast(pa.string())), "\n")
        try:
            table = pjson.read_json(pa.BufferReader(document[0].as_buffer()))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None
        if table.num_rows != len(block):
            return None
        parts.append(table)
    try:
        return pa.concat_tables(parts, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None


def _source(rows: TextTable) -> np.ndarray:
    """``caesar <reducer_key> (panoptes_aggregation <version>)`` per row."""
    keys = rows.strings("reducer_key")
    version = (rows.strings("data.aggregation_version") if "data.aggregation_version" in rows.columns
               else np.full(len(rows), ""))
    detail = np.where(version != "", " (panoptes_aggregation " + version.astype(str) + ")", "")
    return np.char.add(np.char.add("caesar ", keys.astype(str)), detail).astype(object)
