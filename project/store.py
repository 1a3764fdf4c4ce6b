"""A project on disk, partitioned by subject: the Parquet store that Dask and per-subject views read.

`write_store` parses a classification export into a folder in bounded memory: the loader hands
over each part of the file as it is parsed (`ClassificationExport.read_into`), each part is
spilled sorted by subject, and then each range of subjects (cut from the counts of rows per
subject, so ranges are of about one size) is read back from every spilled part, finished on its
own (repeats, canonical types, counts: `finish_tables`) and written sorted by subject. So no more
than the parts being parsed and one range of subjects are ever in memory, whatever the export's size.

Every store is written by `StoreWriter`, one part (a range of whole subjects) at a time. The folder
holds, for each table (``classifications``, ``marks``, and as the store has them ``links``,
``mark_vertices``, ``circle_handles``), ``part-NNNNN.parquet`` files whose
subject ranges do not overlap and follow each other (known divisions for
``dask.dataframe.read_parquet(..., index="subject_id", calculate_divisions=True)``), an
``index.parquet`` with each subject's part and rows, and ``report.json`` (the load report).
`ProjectStore` reads it back: whole tables, one subject's rows, or Dask DataFrames.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from data_loaders.base import LoadReport
from data_loaders.classifications import ClassificationExport, finish_tables
from data_loaders.schema import conform, empty_table

#: Rows (classifications and marks together) a part of the store holds, about: a part is finished
#: (repeats, canonical types, counts) in memory, so this bounds the memory a store needs.
PART_ROWS = 500_000

#: Rows per record batch of a spill file: reading one range of subjects reads only its batches.
SPILL_BATCH_ROWS = 8192

#: The loader's tables a raw store (`write_store`, `store_tables`) keeps: the vertices and circle handles
#: of a mark with its subject's id.
TABLES = ("classifications", "marks", "mark_vertices", "circle_handles")

#: Rows per Parquet row group of a store's part: one subject's rows are read from the row groups
#: holding them (`ProjectStore.of_subject`), not from the whole part.
ROW_GROUP_ROWS = 8192


class _Spill:
    """Where parsed parts wait, each sorted by subject, until every part of the export is read.

    Each part is an Arrow IPC file of record batches of `SPILL_BATCH_ROWS` rows, whose first and
    last subject ids are kept here: taking one range of subjects from a part reads only the
    batches that hold it, and no encoding or decoding is spent (a Parquet spill with row-group
    filters cost more than the parse itself: bench/results/store.md).
    It also counts each subject's rows, so the store's parts can be cut into ranges of subjects
    of about the same size however the subject ids are spread.
    """

    def __init__(self, folder: Path):
        self.folder = folder
        self.reset()

    def reset(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        for name in TABLES:
            (self.folder / name).mkdir(parents=True)
        self.parts = 0
        self.rows_of = pd.Series(dtype=np.int64)
        #: Per table, per part: its file and each batch's first and last subject id.
        self.batches: dict[str, list[tuple[Path, np.ndarray, np.ndarray]]] = {name: [] for name in TABLES}

    def add(self, classifications: pd.DataFrame, marks: pd.DataFrame, mark_vertices: pd.DataFrame,
            circle_handles: pd.DataFrame) -> None:
        self.parts += 1
        subject_of_mark = pd.Series(marks["subject_id"].to_numpy(dtype=np.int64), index=marks["mark_id"].to_numpy())
        by_mark = {name: conform(table, name).assign(subject_id=subject_of_mark.reindex(
            table["mark_id"].to_numpy()).to_numpy(dtype=np.int64)) for name, table in
            (("mark_vertices", mark_vertices), ("circle_handles", circle_handles))}
        for name, table in (("classifications", classifications), ("marks", marks), *by_mark.items()):
            table = table.sort_values("subject_id", kind="stable", ignore_index=True)
            path = self.folder / name / f"part-{self.parts:06d}.arrow"
            arrow = pa.Table.from_pandas(table, preserve_index=False)
            with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, arrow.schema) as writer:
                writer.write_table(arrow, max_chunksize=SPILL_BATCH_ROWS)
            ids = table["subject_id"].to_numpy(dtype=np.int64)
            starts = np.arange(0, len(ids), SPILL_BATCH_ROWS)
            self.batches[name].append((path, ids[starts], ids[np.minimum(starts + SPILL_BATCH_ROWS, len(ids)) - 1]))
            counted, counts = np.unique(ids, return_counts=True)
            self.rows_of = self.rows_of.add(pd.Series(counts, index=counted), fill_value=0).astype(np.int64)

    def ranges(self, part_rows: int) -> list[tuple[int, int]]:
        """Inclusive ranges of subject ids holding about ``part_rows`` rows each (whole subjects)."""
        if not len(self.rows_of):
            return []
        ids = self.rows_of.index.to_numpy()
        group = np.cumsum(self.rows_of.to_numpy()) // max(1, part_rows)
        starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
        stops = np.r_[starts[1:], len(ids)] - 1
        return [(int(ids[start]), int(ids[stop])) for start, stop in zip(starts, stops)]

    def read(self, name: str, low: int, high: int) -> pd.DataFrame | None:
        """Rows of subjects ``low`` to ``high`` from every spilled part (only the batches holding them read)."""
        tables = []
        for path, firsts, lasts in self.batches[name]:
            wanted = np.flatnonzero((lasts >= low) & (firsts <= high))
            if not len(wanted):
                continue
            with pa.OSFile(str(path)) as source:
                reader = pa.ipc.open_file(source)
                table = pa.Table.from_batches([reader.get_batch(int(batch)) for batch in wanted])
            ids = table.column("subject_id").to_numpy()
            tables.append(table.filter((ids >= low) & (ids <= high)).to_pandas())
        return pd.concat(tables, ignore_index=True) if tables else None


def write_store(export: str | Path, folder: str | Path, part_rows: int = PART_ROWS, **options) -> ProjectStore:
    """Parse a classification export into a store of the loader's tables at ``folder`` (replaced if it exists).

    ``options`` are the classification loader's (``workflow_id``, ``workflow_version``, ``tasks``,
    ``point_box``, ...). Memory stays bounded by the parts of the file being parsed and one part of
    the store (about ``part_rows`` rows), whatever the export's size. A project store (consensus,
    statistics) is written from the same parts by `project.stored.write_project_parts`.
    """
    folder = Path(folder)
    _fresh(folder)
    with export_parts(export, folder / ".spill", part_rows, **options) as (report, parts):
        return _write_parts(parts, folder, report)


@contextmanager
def export_parts(export: str | Path, spill: str | Path, part_rows: int = PART_ROWS, **options):
    """Parse a classification export in bounded memory into ranges of whole subjects, in subject order.

    A context manager giving ``(report, parts)``: the load report (its counts completed as the parts
    are finished) and an iterator of one dict per range of subjects (about ``part_rows`` rows),
    holding the finished ``classifications`` and ``marks`` (`finish_tables`) and the marks'
    ``mark_vertices`` and ``circle_handles``, each row with its mark's ``subject_id``. The parsed
    parts wait in ``spill`` (a folder, removed on leaving).
    """
    loader = ClassificationExport(use_cache=False, **options)
    spilled = _Spill(Path(spill))
    try:
        report = loader.read_into(Path(export), spilled)
        report.rows_loaded = 0

        def finished_ranges():
            for low, high in spilled.ranges(part_rows):
                marks = spilled.read("marks", low, high)
                part_report = LoadReport(report.source, report.format)
                classifications, marks = finish_tables(spilled.read("classifications", low, high),
                                                       marks if marks is not None else empty_table("marks"),
                                                       part_report)
                report.merge(part_report)
                tables = {"classifications": classifications, "marks": marks}
                for name in ("mark_vertices", "circle_handles"):
                    rows = spilled.read(name, low, high)
                    tables[name] = rows if rows is not None else empty_table(name).assign(
                        subject_id=np.zeros(0, np.int64))
                yield tables

        yield report, finished_ranges()
    finally:
        shutil.rmtree(spilled.folder, ignore_errors=True)


def store_tables(parts: Iterable[tuple[pd.DataFrame, pd.DataFrame]], folder: str | Path,
                 report: LoadReport | None = None) -> ProjectStore:
    """Write canonical tables, given range of subjects by range, into a store at ``folder`` (replaced).

    Each item of ``parts`` is one range's finished ``(classifications, marks)``, every subject of
    it after every subject of the ranges before: what a simulation or a distributed job makes one
    piece at a time, stored without ever holding the whole project (one part in memory at a time).
    """
    folder = Path(folder)
    _fresh(folder)
    return _write_parts(parts, folder, report or LoadReport("tables", "canonical"))


def _fresh(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)


def _write_parts(parts: Iterable[tuple[pd.DataFrame, ...] | dict], folder: Path, report: LoadReport) -> ProjectStore:
    """Write each range's tables as a part (`StoreWriter`), then the index and the report."""
    writer = StoreWriter(folder)
    volunteers: set = set()
    for tables in parts:
        tables = tables if isinstance(tables, dict) else dict(zip(TABLES, tables))
        volunteers |= set(tables["classifications"]["user"].unique())
        writer.add(tables)
        del tables  # one part of the store in memory at a time
    report.counts["volunteers"] = len(volunteers)
    return writer.finish(report)


#: Each table a store may hold, and the order of its rows within a part (subject first: each subject's
#: rows are one run of the part, read from the row groups holding it).
TABLE_ORDER = {"classifications": ["subject_id", "created_at", "classification_id"],
               "marks": ["subject_id", "mark_id"], "links": ["subject_id", "mark_id"],
               "mark_vertices": ["subject_id", "mark_id", "vertex"], "circle_handles": ["subject_id", "mark_id"]}


class StoreWriter:
    """Writes a store part by part: the one way a store is written (from an export, generated tables or a project).

    Each `add` is one part: every table of a range of whole subjects, each range after the one
    before. Every table named in the first part gets a file for every part (empty if it has no
    rows there), so a subject's part number finds its rows in each table. `finish` writes the
    index (each subject's part, and first row and count of rows in each table's part) and the
    report; nothing else is kept between parts. ``folder`` should be new or empty.
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.names: list[str] | None = None
        self.index: list[pd.DataFrame] = []
        self.last_subject: int | None = None

    def add(self, tables: dict[str, pd.DataFrame], subject_ids=()) -> None:
        """Write one part: ``tables`` (name -> rows with ``subject_id``), plus ``subject_ids`` with no rows."""
        number = len(self.index)
        if self.names is None:
            self.names = [name for name in TABLE_ORDER if name in tables]
            for name in self.names:
                (self.folder / name).mkdir()
        missing = [name for name in self.names if name not in tables]
        if missing:
            raise ValueError(f"part {number} of the tables has no {', '.join(missing)} table; the first part had")
        tables = {name: tables[name].sort_values(TABLE_ORDER[name], kind="stable", ignore_index=True)
                  for name in self.names}
        ids = np.unique(np.concatenate([np.asarray(subject_ids, dtype=np.int64),
                                        *(table["subject_id"].to_numpy(dtype=np.int64) for table in tables.values())]))
        if len(ids):
            if self.last_subject is not None and ids[0] <= self.last_subject:
                raise ValueError(f"part {number} of the tables starts at subject {ids[0]}, not after the previous "
                                 f"part's last subject {self.last_subject}: give the ranges in subject order")
            self.last_subject = int(ids[-1])
        rows = pd.DataFrame({"subject_id": ids, "part": number})
        for name, table in tables.items():
            subjects = table["subject_id"].to_numpy(dtype=np.int64)
            first = np.searchsorted(subjects, ids, "left")
            rows[f"{name}_first"] = first
            rows[f"{name}_rows"] = np.searchsorted(subjects, ids, "right") - first
            table.to_parquet(self.folder / name / f"part-{number:05d}.parquet", index=False,
                             row_group_size=ROW_GROUP_ROWS)
        self.index.append(rows)

    def finish(self, report: LoadReport) -> ProjectStore:
        """Write the index and the report: the store is readable from here on."""
        index = pd.concat(self.index, ignore_index=True) if self.index else pd.DataFrame(
            {"subject_id": np.zeros(0, np.int64), "part": np.zeros(0, np.int64)})
        index.to_parquet(self.folder / "index.parquet", index=False)
        (self.folder / "report.json").write_text(json.dumps(report.to_dict(), indent=1, default=str))
        return ProjectStore(self.folder)


class ProjectStore:
    """A store `write_store` made: the tables whole, one subject's rows, or as Dask DataFrames."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        if not (self.folder / "index.parquet").is_file():
            raise FileNotFoundError(f"{self.folder}: not a zoolens project store (no index.parquet)")
        self.index = pd.read_parquet(self.folder / "index.parquet").set_index("subject_id")
        self.report = LoadReport.from_dict(json.loads((self.folder / "report.json").read_text()))
        self._parts: dict[str, list[Path]] = {}
        self._positions: dict[int, int] | None = None
        self._columns: dict[str, np.ndarray] = {}

    def parts(self, name: str) -> list[Path]:
        """A table's part files, in subject order (listed once: a store is not changed once written)."""
        if name not in self._parts:
            self._parts[name] = sorted((self.folder / name).glob("part-*.parquet"))
        return self._parts[name]

    def table(self, name: str) -> pd.DataFrame:
        """A whole table, in subject order."""
        return pd.concat([pd.read_parquet(path) for path in self.parts(name)], ignore_index=True)

    def of_subject(self, name: str, subject_id: int) -> pd.DataFrame:
        """One subject's rows of a table, read from the row groups of its part that hold them.

        The subject's part, first row and count come from the index by hash (`_subject_rows`): the
        same cost in a store of a thousand subjects or of millions.
        """
        found = self._subject_rows(name, subject_id)
        if found is None:
            return self.table_schema(name)
        part, first, count = found
        path = self.parts(name)[part]
        starts = _row_group_starts(path)
        groups = list(range(int(np.searchsorted(starts, first, "right")) - 1,
                            int(np.searchsorted(starts, first + count - 1, "right"))))
        table = pq.ParquetFile(path).read_row_groups(groups)
        return table.slice(first - int(starts[groups[0]]), count).to_pandas()

    def _subject_rows(self, name: str, subject_id: int) -> tuple[int, int, int] | None:
        """A subject's part, and first row and count of its rows in that part of table ``name`` (None: no rows)."""
        if self._positions is None:
            # Built once: a hash of subject ids to positions, and the index's columns as plain arrays (the
            # columns first: a session on another thread may read them as soon as the hash is there).
            self._columns = {column: self.index[column].to_numpy(dtype=np.int64) for column in self.index.columns}
            self._positions = {int(subject): position for position, subject in enumerate(self.index.index)}
        position = self._positions.get(int(subject_id))
        if position is None or not self._columns[f"{name}_rows"][position]:
            return None
        return (int(self._columns["part"][position]), int(self._columns[f"{name}_first"][position]),
                int(self._columns[f"{name}_rows"][position]))

    def table_schema(self, name: str) -> pd.DataFrame:
        """A table with no rows, its columns typed as stored."""
        return pq.read_schema(self.parts(name)[0]).empty_table().to_pandas()

    def dask(self, name: str, index: bool = True):
        """A table as a Dask DataFrame, one partition per part: indexed by ``subject_id`` with known divisions,
        or (``index=False``) with ``subject_id`` a column like the other tables' (no divisions)."""
        import dask.dataframe as dd

        paths = [str(path) for path in self.parts(name)]
        if not index:
            return dd.read_parquet(paths, split_row_groups=False, aggregate_files=False)
        return dd.read_parquet(paths, index="subject_id", calculate_divisions=True)


@lru_cache(maxsize=4096)
def _row_group_starts(path: Path) -> np.ndarray:
    """The first row of each row group of a Parquet file (its footer read once)."""
    metadata = pq.read_metadata(path)
    return np.cumsum([0] + [metadata.row_group(group).num_rows for group in range(metadata.num_row_groups)])[:-1]
