"""A project on disk, partitioned by subject: the Parquet store that Dask and per-subject views read.

`write_store` parses a classification export into a folder in bounded memory: the loader hands
over each part of the file as it is parsed (`ClassificationExport.read_into`), its rows go to
spill files by range of subject ids, and each range is then finished on its own (repeats,
canonical types, counts: `finish_tables`) and written sorted by subject. So no more than one part
of the file and one range of subjects is ever in memory, whatever the export's size.

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

#: Subject ids per spill range: a range's rows are finished together, so it bounds their memory.
RANGE_WIDTH = 1 << 14

#: Rows (classifications and marks together) a part of the store holds, at most, when ranges allow.
PART_ROWS = 2_000_000

TABLES = ("classifications", "marks")


class _Spill:
    """Where parsed parts wait, by range of subject ids, until every part of the export is read."""

    def __init__(self, folder: Path, range_width: int):
        self.folder = folder
        self.range_width = range_width
        self.parts = 0
        self.reset()

    def reset(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        self.parts = 0

    def add(self, classifications: pd.DataFrame, marks: pd.DataFrame) -> None:
        self.parts += 1
        for name, table in (("classifications", classifications), ("marks", marks)):
            ranges = table["subject_id"].to_numpy(dtype=np.int64) // self.range_width
            order = np.argsort(ranges, kind="stable")
            ordered = ranges[order]
            starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]) if len(ordered) else []
            # One file per range this part touches: the loop runs over ranges, not rows.
            for start, stop in zip(starts, np.r_[starts[1:], len(ordered)].astype(int)):
                folder = self.folder / name / f"{int(ordered[start]):012d}"
                folder.mkdir(parents=True, exist_ok=True)
                table.iloc[order[start:stop]].to_parquet(folder / f"part-{self.parts:06d}.parquet", index=False)

    def ranges(self) -> list[str]:
        return sorted({path.name for name in TABLES for path in (self.folder / name).glob("*")})

    def rows(self, name: str, range_name: str) -> int:
        return sum(pq.ParquetFile(path).metadata.num_rows for path in (self.folder / name / range_name).glob("*"))

    def read(self, name: str, range_names: list[str]) -> pd.DataFrame | None:
        files = [path for range_name in range_names for path in sorted((self.folder / name / range_name).glob("*"))]
        return pd.concat([pd.read_parquet(path) for path in files], ignore_index=True) if files else None


def write_store(export: str | Path, folder: str | Path, part_rows: int = PART_ROWS,
                range_width: int = RANGE_WIDTH, **options) -> ProjectStore:
    """Parse a classification export into a store at ``folder`` (replaced if it exists).

    ``options`` are the classification loader's (``workflow_id``, ``workflow_version``, ``tasks``,
    ``point_box``, ...). Memory stays bounded by one part of the file and one range of
    ``range_width`` subject ids; parts of the store hold up to ``part_rows`` rows when whole
    ranges allow.
    """
    folder = Path(folder)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    loader = ClassificationExport(use_cache=False, **options)
    spill = _Spill(folder / ".spill", range_width)
    report = loader.read_into(Path(export), spill)
    report.rows_loaded = 0
    volunteers: set = set()
    groups, group, rows = [], [], 0
    for range_name in spill.ranges():
        size = sum(spill.rows(name, range_name) for name in TABLES)
        if group and rows + size > part_rows:
            groups.append(group)
            group, rows = [], 0
        group.append(range_name)
        rows += size
    if group:
        groups.append(group)
    index = []
    for number, ranges in enumerate(groups):
        classifications = spill.read("classifications", ranges)
        marks = spill.read("marks", ranges)
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
