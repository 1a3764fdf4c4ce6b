"""Zooniverse subject export CSV -> the canonical ``subjects`` table.

The export has one row per subject *and* workflow / subject set it belongs to;
zoolens keeps one row per subject, with the workflow and subject set ids seen
joined in ``workflow_ids`` / ``subject_set_ids`` (``"20334;20335"``). Frame
locations become a dict ``{"0": url, "1": url, ...}`` in frame order.

Metadata is flattened into one column per key. Zooniverse hides keys starting
with ``#`` from volunteers and shows ``!`` keys only in Talk; the column drops
that prefix (``#fwhmImagePix`` -> ``fwhmImagePix``), and the report's
``metadata_columns`` maps every original key to its column. A key whose clean
name is taken (by a canonical column or another key) gets a ``metadata_``
prefix. Numeric values become numbers (integers stay exact; ids with leading
zeros stay text), RA/Dec keys are recognised into ``ra``/``dec`` in degrees,
``redshift``/``z`` into ``redshift``, and ``width``/``height`` come from the
metadata when it has them (NaN otherwise).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import param
import pyarrow.compute as pc

from ._csv import (CsvExport, RowFilter, join_ids, parse_integers, parse_literals, parse_timestamps,
                   read_text_csv, typed_values)
from ._sky import find_positions, sky_degrees
from .base import LoadReport, LoadResult
from .schema import conform

REQUIRED_COLUMNS = ("subject_id", "metadata", "locations")
EXPECTED = "a Zooniverse subject export"

#: Metadata keys (prefix removed, lower case) that give the image size in pixels.
WIDTH_KEYS = ("width", "image_width", "imagewidth", "naturalwidth")
HEIGHT_KEYS = ("height", "image_height", "imageheight", "naturalheight")
REDSHIFT_KEYS = ("redshift", "z")

#: Columns the loader itself makes; a metadata key with one of these names gets a prefix.
OWN_COLUMNS = ("subject_id", "locations", "width", "height", "retired", "ra", "dec", "redshift",
               "project_id", "workflow_ids", "subject_set_ids", "n_frames", "classifications_count",
               "retired_at", "retirement_reason", "created_at", "updated_at")


class SubjectExport(CsvExport):
    """Zooniverse subject export CSV: one row per subject, metadata flattened."""

    short_name = "subjects"
    column_sets = (REQUIRED_COLUMNS,)

    workflow_id = param.Integer(default=None, allow_None=True,
                                doc="Keep only rows linking subjects to this workflow (retirement is then that "
                                    "workflow's); rows of other workflows are counted in the report.")

    def read(self, path: Path) -> LoadResult:
        result = super().read(path)
        # Parquet cannot hold dicts of varying keys: locations are cached as JSON text.
        subjects = result.tables["subjects"].copy()
        subjects["locations"] = [orjson.loads(text) for text in subjects["locations"]]
        result.tables["subjects"] = conform(subjects, "subjects")
        return result

    def parse(self, path: Path, workflow_id: int | None) -> LoadResult:
        return _parse(path, workflow_id, self.limits)


def read_subjects(path, workflow_id: int | None = None, use_cache: bool = True) -> LoadResult:
    """Read a Zooniverse subject export into the canonical ``subjects`` table.

    Parameters
    ----------
    path : str or path-like
        The subject export CSV (optionally gzipped).
    workflow_id : int, optional
        Keep only rows linking subjects to this workflow (retirement is then that
        workflow's); rows of other workflows are counted in the report.
    use_cache : bool
        Reuse the Parquet cache of an earlier parse of the same file.

    Returns
    -------
    LoadResult
        ``.subjects`` (one row per subject) and ``.report``. ``rows_loaded``
        counts export rows kept; ``counts["subjects"]`` the distinct subjects.
    """
    return SubjectExport(workflow_id=workflow_id, use_cache=use_cache).read(Path(path))


def _parse(path: Path, workflow_id: int | None, limits: dict) -> LoadResult:
    report = LoadReport(source=str(path), format=SubjectExport.short_name)
    rows = read_text_csv(path, report, EXPECTED, REQUIRED_COLUMNS, **limits)
    rows_kept = RowFilter(report, rows.lines)
    reject = rows_kept.reject

    subject_ids, ok = parse_integers(rows.column("subject_id"))
    reject(~ok, "subject_id is not an integer")
    optional_ids = {}
    for column in ("project_id", "workflow_id", "subject_set_id"):
        if column in rows.columns:
            values, ok = parse_integers(rows.column(column))
            blank = pc.equal(pc.utf8_trim_whitespace(rows.column(column)), "").to_numpy(
                zero_copy_only=False)
            reject(~ok & ~blank, f"{column} is not an integer")
            optional_ids[column] = pd.array(np.where(ok, values, 0), dtype="Int64")
            optional_ids[column][~ok] = pd.NA
    if workflow_id is not None:
        workflows = optional_ids.get("workflow_id", pd.array([pd.NA] * len(rows), dtype="Int64"))
        # A row naming no workflow (a subject reached through its subject set) belongs to none other.
        reject(np.asarray((workflows != workflow_id).fillna(False), dtype=bool),
               f"other workflow (kept workflow {workflow_id})")

    metadata, ok = parse_literals(list(rows.strings("metadata")))
    is_object = np.fromiter((isinstance(value, dict) or value is None for value in metadata),
                            dtype=bool, count=len(metadata))
    reject(~(ok & is_object), "metadata is not a JSON object")
    locations, ok = parse_literals(list(rows.strings("locations")))
    frames = [_frame_urls(value) for value in locations]
    reject(~ok | np.fromiter((value is None for value in frames), dtype=bool, count=len(frames)),
           "locations is not a JSON object of frame URLs")

    kept = rows_kept.kept
    report.rows_loaded = len(kept)
    rows = rows.take(kept)
    subject_ids = subject_ids[kept]
    table = pd.DataFrame({"subject_id": subject_ids})
    for column, values in optional_ids.items():
        table[column] = values[kept]
    table["retired_at"] = (parse_timestamps(rows.column("retired_at"))
                           if "retired_at" in rows.columns else pd.NaT)
    reasons = (pd.Series(rows.strings("retirement_reason"), dtype="string")
               if "retirement_reason" in rows.columns else pd.Series(pd.NA, index=table.index,
                                                                      dtype="string"))
    table["retirement_reason"] = reasons.replace("", pd.NA).to_numpy()
    retired_text = rows.strings("retired_at") if "retired_at" in rows.columns else np.full(len(rows), "")
    table["retired"] = (pd.Series(retired_text).str.strip().ne("").to_numpy()
                        | table["retirement_reason"].notna().to_numpy())
    if "classifications_count" in rows.columns:
        counts, ok = parse_integers(rows.column("classifications_count"))
        table["classifications_count"] = pd.array(np.where(ok, counts, 0), dtype="Int64")
        table.loc[~ok, "classifications_count"] = pd.NA
    for column in ("created_at", "updated_at"):
        if column in rows.columns:
            table[column] = parse_timestamps(rows.column(column)).to_numpy()

    subjects = _one_row_per_subject(table, [metadata[i] or {} for i in kept],
                                    [frames[i] for i in kept], report)
    return LoadResult({"subjects": subjects}, report)


#: Frame keys in frame order, to recognise a locations object that needs no reordering.
_FRAME_KEYS = [str(frame) for frame in range(100)]


def _frame_urls(value) -> dict[str, str] | None:
    """``{"0": url, ...}`` in frame order from a locations cell, or None if it is not one.

    Current exports hold ``{"0": url}``; older ones a list of ``{mime type: url}``.
    """
    if type(value) is dict and list(value) == _FRAME_KEYS[:len(value)] and all(
            type(url) is str for url in value.values()):
        return value  # the usual case, already in frame order
    if isinstance(value, list):
        value = {str(i): entry for i, entry in enumerate(value)}
    if not isinstance(value, dict):
        return None
    urls = {}
    for frame, entry in value.items():
        if isinstance(entry, dict) and len(entry) == 1:
            entry = next(iter(entry.values()))
        if not isinstance(entry, str):
            return None
        urls[str(frame)] = entry
    return dict(sorted(urls.items(), key=lambda item: (not item[0].isdigit(),
                                                       int(item[0]) if item[0].isdigit() else 0,
                                                       item[0])))


def _one_row_per_subject(table: pd.DataFrame, metadata: list[dict], frames: list[dict],
                         report: LoadReport) -> pd.DataFrame:
    """Merge the rows of each subject; metadata and locations come from its first row."""
    first = ~table["subject_id"].duplicated().to_numpy()
    groups = table["subject_id"]
    subjects = table.loc[first, ["subject_id"]].reset_index(drop=True)
    if "project_id" in table:
        subjects["project_id"] = pd.array(table.loc[first, "project_id"].to_numpy(), dtype="Int64")
    for column, joined in (("workflow_id", "workflow_ids"), ("subject_set_id", "subject_set_ids")):
        if column in table:
            ids = join_ids(table[column].astype("Int64"), groups)
            subjects[joined] = pd.array(subjects["subject_id"].map(ids), dtype="string")
    by_subject = table.groupby("subject_id", sort=False)
    subjects["retired"] = by_subject["retired"].any().to_numpy()
    subjects["retired_at"] = pd.to_datetime(by_subject["retired_at"].min().to_numpy(),
                                            utc=True).as_unit("ns")
    subjects["retirement_reason"] = pd.array(by_subject["retirement_reason"].first().to_numpy(),
                                             dtype="string")
    if "classifications_count" in table:
        # Per-workflow counts: the largest is a lower bound on the subject's total.
        subjects["classifications_count"] = pd.array(
            by_subject["classifications_count"].max().to_numpy(), dtype="Int64")
    for column, reduce in (("created_at", "min"), ("updated_at", "max")):
        if column in table:
            subjects[column] = pd.to_datetime(getattr(by_subject[column], reduce)().to_numpy(),
                                              utc=True).as_unit("ns")
    first_rows = np.flatnonzero(first)
    subjects["locations"] = [orjson.dumps(frames[i]).decode() for i in first_rows]
    subjects["n_frames"] = np.array([len(frames[i]) for i in first_rows], dtype=np.int64)

    flat, by_clean_key = _flatten_metadata([metadata[i] for i in first_rows], report)
    lowered = {key.lower(): column for key, column in by_clean_key.items()}
    subjects["width"] = _numeric_metadata(flat, lowered, WIDTH_KEYS)
    subjects["height"] = _numeric_metadata(flat, lowered, HEIGHT_KEYS)
    positions = find_positions(by_clean_key)
    if "" in positions:
        ra_column, dec_column = (by_clean_key[key] for key in positions[""])
        subjects["ra"], subjects["dec"] = sky_degrees(flat[ra_column], flat[dec_column])
        originals = {column: key for key, column in report.counts["metadata_columns"].items()}
        report.counts["radec_columns"] = [originals[ra_column], originals[dec_column]]
    else:
        subjects["ra"] = subjects["dec"] = np.nan
        report.counts["radec_columns"] = None
    redshift = next((lowered[key] for key in REDSHIFT_KEYS if key in lowered), None)
    if redshift is not None:
        subjects["redshift"] = np.array(pd.to_numeric(flat[redshift], errors="coerce"), dtype=float)
    subjects = pd.concat([subjects, flat], axis=1)

    report.counts["subjects"] = len(subjects)
    report.counts["duplicate_rows_merged"] = int((~first).sum())
    report.counts["retired_subjects"] = int(subjects["retired"].sum())
    report.counts["frames"] = {str(k): int(v) for k, v in
                               subjects["n_frames"].value_counts().sort_index().items()}
    return subjects


def _numeric_metadata(flat: pd.DataFrame, lowered: dict[str, str], keys) -> np.ndarray:
    column = next((lowered[key] for key in keys if key in lowered), None)
    if column is None:
        return np.full(len(flat), np.nan)
    return np.array(pd.to_numeric(flat[column], errors="coerce"), dtype=float)


def _flatten_metadata(metadata: list[dict], report: LoadReport) -> tuple[pd.DataFrame, dict]:
    """One typed column per metadata key, named without its ``#``/``!`` prefix.

    Returns the table and a map clean key -> column (the first key with a clean
    name wins it); the report gets the map original key -> column.
    """
    raw = pd.DataFrame.from_records(metadata) if metadata else pd.DataFrame()
    taken = set(OWN_COLUMNS)
    column_of_key: dict[str, str] = {}
    by_clean_key: dict[str, str] = {}
    columns = {}
    for key in raw.columns:
        clean = str(key).lstrip("#!") or str(key)
        name = clean
        suffix = 1
        while name.lower() in taken:
            name = f"metadata_{clean}" if suffix == 1 else f"metadata_{clean}_{suffix}"
            suffix += 1
        taken.add(name.lower())
        column_of_key[str(key)] = name
        by_clean_key.setdefault(clean, name)
        columns[name] = typed_values(raw[key])
    report.counts["metadata_columns"] = column_of_key
    return pd.DataFrame(columns, index=range(len(metadata))), by_clean_key
