"""A project on disk, partitioned by subject: the Parquet store that Dask and per-subject views read.

`write_store` parses a classification export into a folder in bounded memory: the loader hands
over each part of the file as it is parsed (`ClassificationExport.read_into`), each part is
spilled sorted by subject, and then each range of subjects (cut from the counts of rows per
subject, so ranges are of about one size) is read back from every spilled part, finished on its
own (repeats, canonical types, counts: `finish_tables`) and written sorted by subject. So no more
than the parts being parsed and one range of subjects are ever in memory, whatever the export's size.

The folder holds, for ``classifications`` and ``marks``, ``part-NNNNN.parquet`` files whose
subject ranges do not overlap and follow each other (known divisions for
``dask.dataframe.read_parquet(..., index="subject_id", calculate_divisions=True)``), an
``index.parquet`` with each subject's part and rows, and ``report.json`` (the load report).
`ProjectStore` reads it back: whole tables, one subject's rows, or Dask DataFrames.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from data_loaders.base import LoadReport
from data_loaders.classifications import ClassificationExport, finish_tables

#: Rows (classifications and marks together) a part of the store holds, about: a part is finished
#: (repeats, canonical types, counts) in memory, so this bounds the memory a store needs.
PART_ROWS = 500_000

#: Rows per row group of a spill file: reading one range of subjects skips the others' groups.
SPILL_GROUP_ROWS = 4096

TABLES = ("classifications", "marks")


class _Spill:
    """Where parsed parts wait, each sorted by subject, until every part of the export is read.

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

    def add(self, classifications: pd.DataFrame, marks: pd.DataFrame) -> None:
        self.parts += 1
        for name, table in (("classifications", classifications), ("marks", marks)):
            table = table.sort_values("subject_id", kind="stable", ignore_index=True)
            table.to_parquet(self.folder / name / f"part-{self.parts:06d}.parquet", index=False,
                             row_group_size=SPILL_GROUP_ROWS)
            ids, counts = np.unique(table["subject_id"].to_numpy(dtype=np.int64), return_counts=True)
            self.rows_of = self.rows_of.add(pd.Series(counts, index=ids), fill_value=0).astype(np.int64)

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
        """Rows of subjects ``low`` to ``high`` from every spilled part (their other row groups unread)."""
        chosen = [("subject_id", ">=", low), ("subject_id", "<=", high)]
        tables = [pq.read_table(path, filters=chosen).to_pandas()
                  for path in sorted((self.folder / name).glob("part-*.parquet"))]
        tables = [table for table in tables if len(table)]
        return pd.concat(tables, ignore_index=True) if tables else None


def write_store(export: str | Path, folder: str | Path, part_rows: int = PART_ROWS, **options) -> ProjectStore:
    """Parse a classification export into a store at ``folder`` (replaced if it exists).

    ``options`` are the classification loader's (``workflow_id``, ``workflow_version``, ``tasks``,
    ``point_box``, ...). Memory stays bounded by the parts of the file being parsed and one part of
    the store (about ``part_rows`` rows), whatever the export's size.
    """
    folder = Path(folder)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    loader = ClassificationExport(use_cache=False, **options)
    spill = _Spill(folder / ".spill")
    report = loader.read_into(Path(export), spill)
    report.rows_loaded = 0
    volunteers: set = set()
    index = []
    for number, (low, high) in enumerate(spill.ranges(part_rows)):
        classifications = spill.read("classifications", low, high)
        marks = spill.read("marks", low, high)
        marks = marks if marks is not None else _no_marks()
        part_report = LoadReport(report.source, report.format)
        classifications, marks = finish_tables(classifications, marks, part_report)
        volunteers |= set(classifications["user"].unique())
        report.merge(part_report)
        # Sorted by subject (then time, or mark id), so each subject's rows are one run of the part.
        classifications = classifications.sort_values(["subject_id", "created_at", "classification_id"],
                                                      kind="stable", ignore_index=True)
        marks = marks.sort_values(["subject_id", "mark_id"], kind="stable", ignore_index=True)
        for name, table in (("classifications", classifications), ("marks", marks)):
            (folder / name).mkdir(exist_ok=True)
            table.to_parquet(folder / name / f"part-{number:05d}.parquet", index=False)
        index.append(_subject_rows(number, classifications, marks))
        del classifications, marks  # one part of the store in memory at a time
    shutil.rmtree(spill.folder)
    report.counts["volunteers"] = len(volunteers)
    pd.concat(index, ignore_index=True).to_parquet(folder / "index.parquet", index=False)
    (folder / "report.json").write_text(json.dumps(report.to_dict(), indent=1, default=str))
    return ProjectStore(folder)


def _no_marks() -> pd.DataFrame:
    from data_loaders.schema import empty_table

    return empty_table("marks")


def _subject_rows(part: int, classifications: pd.DataFrame, marks: pd.DataFrame) -> pd.DataFrame:
    """Per subject of one part: the part, and the first row and count of its rows in each table."""
    tables = {}
    for name, table in (("classifications", classifications), ("marks", marks)):
        ids, first, count = np.unique(table["subject_id"].to_numpy(dtype=np.int64), return_index=True,
                                      return_counts=True)
        tables[name] = pd.DataFrame({"subject_id": ids, f"{name}_first": first, f"{name}_rows": count})
    rows = tables["classifications"].merge(tables["marks"], on="subject_id", how="left")
    rows[["marks_first", "marks_rows"]] = rows[["marks_first", "marks_rows"]].fillna(0).astype(np.int64)
    return rows.assign(part=part)


class ProjectStore:
    """A store `write_store` made: the tables whole, one subject's rows, or as Dask DataFrames."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        if not (self.folder / "index.parquet").is_file():
            raise FileNotFoundError(f"{self.folder}: not a zoolens project store (no index.parquet)")
        self.index = pd.read_parquet(self.folder / "index.parquet").set_index("subject_id")
        self.report = LoadReport.from_dict(json.loads((self.folder / "report.json").read_text()))

    def parts(self, name: str) -> list[Path]:
        return sorted((self.folder / name).glob("part-*.parquet"))

    def table(self, name: str) -> pd.DataFrame:
        """A whole table, in subject order."""
        return pd.concat([pd.read_parquet(path) for path in self.parts(name)], ignore_index=True)

    def of_subject(self, name: str, subject_id: int) -> pd.DataFrame:
        """One subject's rows of a table, read from its part alone."""
        if subject_id not in self.index.index:
            return self.table_schema(name)
        row = self.index.loc[subject_id]
        part = pd.read_parquet(self.parts(name)[int(row["part"])])
        first, count = int(row[f"{name}_first"]), int(row[f"{name}_rows"])
        return part.iloc[first:first + count].reset_index(drop=True)

    def table_schema(self, name: str) -> pd.DataFrame:
        return pd.read_parquet(self.parts(name)[0]).iloc[:0]

    def dask(self, name: str):
        """A table as a Dask DataFrame indexed by ``subject_id`` with known divisions, one partition per part."""
        import dask.dataframe as dd

        return dd.read_parquet([str(path) for path in self.parts(name)], index="subject_id",
                               calculate_divisions=True)
