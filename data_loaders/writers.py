"""Writers: consensus boxes (and optionally the raw marks) -> catalogue files, each with its provenance.

The write side of the I/O registry, in astropy's style: every format is a small
`Writer` subclass with a short ``name`` and the file ``extensions`` it owns;
defining the class registers it. ``write(tables, path, format=None)`` uses an
explicit ``format`` when given and otherwise the path's extension; an unknown
format or extension is an error that lists the known formats.

What is written (`prepare_export` builds it once, so one selection can be
written in several formats):

- **consensus**: the canonical consensus table with every extra column it
  carries, plus the box centre ``x_center``, ``y_center`` and, where a WCS or the
  subject's RA/Dec and a pixel scale allow (`data_loaders.celestial`), ``ra``,
  ``dec`` (degrees, ICRS) and ``sky_method``. Units: ``pix`` for pixel
  coordinates, ``deg`` for ``angle``, ``ra``, ``dec``.
- **marks** (optional): the raw marks with their links (``consensus_id``,
  ``iou``); links alone when no marks are given.
- **provenance**: source files with their SHA-256, the aggregation method and
  parameters (parsed from the consensus ``source`` column), the filters applied,
  zoolens version, UTC time, row counts, how RA/Dec were obtained, and what was
  done to text cells to make them safe for the format.

Formats:

========  =================================  ==========================================================
name      files                              provenance
========  =================================  ==========================================================
csv       NAME.csv [+ NAME.marks.csv]        sidecar ``NAME.provenance.json`` (with column units); the
                                             CSVs stay plain so pandas and astropy read them by default
ecsv      NAME.ecsv [+ NAME.marks.ecsv]      in the ECSV header's ``meta``; units on the columns
fits      NAME.fits                          primary header keywords and HISTORY cards, the full JSON
                                             in the ``PROVENANCE`` extension; tables in ``CONSENSUS``
                                             and ``MARKS`` extensions with ``TUNIT``
votable   NAME.xml / NAME.vot                ``INFO`` elements (one per source file, and the full
                                             JSON), ``PARAM`` row counts; ``consensus`` and ``marks``
                                             tables with units and UCDs
========  =================================  ==========================================================

Untrusted text (user names, labels, metadata are written by the public):

- CSV and ECSV: a text cell (or column name) starting with ``=``, ``+``, ``-``,
  ``@``, tab or carriage return gets a leading single quote, as the OWASP
  CSV-injection guidance says, so a spreadsheet shows it as text instead of
  running it. Numeric columns are never touched: ``-3.5`` stays a number.
  CSV lines end in CRLF, so a bare CR in a name is quoted and cannot split a
  row. `to_safe_csv` does the same for any other table a command writes.
- FITS: text must be printable ASCII, so text cells are written with Python's
  ``unicode_escape`` encoding (``Zoë`` -> ``Zo\\xeb``, a backslash doubled);
  ``codecs.decode(value, "unicode_escape")`` gives the original back.
- VOTable: characters XML 1.0 forbids (most control characters) become U+FFFD;
  everything else is kept and XML-escaped by astropy. Tables are TABLEDATA (readable
  XML), whose readers strip whitespace around a cell: a name's leading tab is lost.

Every writer writes to temporary files beside the target and renames them into
place at the end, so a failed export leaves no half-written catalogue.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from .base import FormatError
from .celestial import box_sky_positions
from .schema import conform

#: Characters that make a spreadsheet treat a cell as a formula (OWASP CSV injection).
FORMULA_PATTERN = r"^[=+\-@\t\r]"

NEUTRALISE_RULE = "text cells and column names starting with = + - @ tab or CR got a leading ' (OWASP)"

#: Provenance keys each writer adds for its own file (see `_file_provenance`).
FILE_PROVENANCE_KEYS = ("format", "files", "text_cells", "columns")

#: Source roles listed only in the full provenance JSON: a FITS header or VOTable would
#: otherwise carry one card or INFO per image, and a project has tens of thousands.
SUMMARISED_ROLES = ("image",)

#: Characters XML 1.0 does not allow in a document, even escaped.
XML_ILLEGAL_PATTERN = "[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]"

UNITS = {
    "x": "pix", "y": "pix", "width": "pix", "height": "pix", "x_center": "pix", "y_center": "pix",
    "angle": "deg", "ra": "deg", "dec": "deg",
}

DESCRIPTIONS = {
    "subject_id": "Zooniverse subject id",
    "consensus_id": "consensus box id",
    "x": "left edge of the box (natural picture pixels, origin top-left, y down)",
    "y": "top edge of the box (natural picture pixels, origin top-left, y down)",
    "width": "box width",
    "height": "box height",
    "angle": "rotation of the box about its centre",
    "x_center": "box centre x (natural picture pixels, origin top-left)",
    "y_center": "box centre y (natural picture pixels, origin top-left, y down)",
    "ra": "right ascension of the box centre (ICRS)",
    "dec": "declination of the box centre (ICRS)",
    "sky_method": "how ra/dec were obtained: wcs, tangent_plane, or empty when unknown",
    "n_votes": "volunteers whose box supports this consensus box",
    "n_seen": "volunteers who saw the subject, including those who drew nothing",
    "source": "aggregator and settings that produced the box (JSON)",
    "mark_id": "raw mark id",
    "classification_id": "Zooniverse classification id",
    "user": "volunteer user name, or the not-logged-in hash",
    "iou": "intersection over union of the mark with its consensus box",
}

UCDS = {
    "subject_id": "meta.id",
    "consensus_id": "meta.id;meta.main",
    "ra": "pos.eq.ra;meta.main",
    "dec": "pos.eq.dec;meta.main",
    "mark_id": "meta.id",
}


# --------------------------------------------------------------------------- what is written


@dataclass
class Export:
    """The tables and provenance of one export, ready for any writer.

    Attributes
    ----------
    consensus : DataFrame
        Consensus boxes with ``x_center``, ``y_center`` and, when known, ``ra``, ``dec``, ``sky_method``.
    marks : DataFrame or None
        Raw marks with their links, links alone, or None when not exported.
    provenance : dict
        JSON-serialisable record of where the tables came from (see the module docstring).
    units : dict
        Column name -> unit (``"pix"``, ``"deg"``).
    """

    consensus: pd.DataFrame
    marks: pd.DataFrame | None = None
    provenance: dict = field(default_factory=dict)
    units: dict = field(default_factory=lambda: dict(UNITS))

    def tables(self) -> dict[str, pd.DataFrame]:
        """The tables to write, by name: ``consensus`` and, if present, ``marks``."""
        tables = {"consensus": self.consensus}
        if self.marks is not None:
            tables["marks"] = self.marks
        return tables


def prepare_export(tables, *, include_marks: bool = False, subjects: pd.DataFrame | None = None,
                   wcs: Mapping | None = None, pixel_scale: float | str | None = None,
                   sources=None, filters: Mapping | None = None, extra: Mapping | None = None) -> Export:
    """Gather what an export writes: the tables, sky positions and provenance.

    Parameters
    ----------
    tables : DataFrame, mapping, LoadResult or AggregationResult
        A consensus DataFrame, or tables by name (``consensus`` required;
        ``marks``, ``links`` and ``subjects`` used when present), or a result
        holding them (``.tables`` of a loader, ``.consensus``/``.links`` of
        `consensus.aggregate`). Dask DataFrames are computed.
    include_marks : bool
        Also export the raw marks with their links (or the links alone).
    subjects : DataFrame, optional
        Canonical subjects (picture ``width``/``height``, ``ra``/``dec``), for RA/Dec.
    wcs : mapping, optional
        ``subject_id`` -> `astropy.wcs.WCS` (or FITS header) of the subject's image.
    pixel_scale : float or str, optional
        Arcseconds per picture pixel (or a subjects column holding it), for
        RA/Dec from the subjects' own RA/Dec when there is no WCS.
    sources : path, list of paths, or mapping, optional
        Files the tables came from, hashed into the provenance. A mapping gives
        each path (or list of paths) a role: ``{"classifications": ..., "subjects": ...}``.
    filters : mapping, optional
        The filters that selected these rows, recorded as given (JSON-serialisable values).
    extra : mapping, optional
        More provenance under keys of its own (load reports, how links were
        made); a key the record already has is an error.

    Returns
    -------
    Export
    """
    named = _named_tables(tables)
    if "consensus" not in named:
        raise ValueError(f"nothing to export: no consensus table among {sorted(named)}")
    consensus = conform(named["consensus"], "consensus")
    subjects = subjects if subjects is not None else named.get("subjects")

    centre = pd.DataFrame({
        "x_center": consensus["x"] + consensus["width"] / 2,
        "y_center": consensus["y"] + consensus["height"] / 2,
    }, index=consensus.index)
    if {"ra", "dec"} <= set(consensus.columns):
        sky = None
        sky_record = {"method": "input", "note": "ra/dec were given in the consensus table and kept as they are"}
    else:
        sky, summary = box_sky_positions(consensus, wcs=wcs, subjects=subjects, pixel_scale=pixel_scale)
        sky_record = summary.to_dict()
        if summary.method == "none":
            sky = None
            sky_record["note"] = ("no RA/Dec columns: no subject has a celestial WCS, nor RA/Dec metadata with a "
                                  "pixel scale")
    consensus = _insert_after(consensus, "angle", centre if sky is None else pd.concat([centre, sky], axis=1))

    marks = _marks_with_links(named) if include_marks else None
    provenance = {
        "software": _software(),
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "sources": describe_sources(sources),
        "aggregation": describe_aggregation(consensus["source"]),
        "filters": _json_safe(dict(filters or {})),
        "rows": {
            "consensus": len(consensus),
            "subjects": consensus["subject_id"].nunique(),
            **({"marks": len(marks)} if marks is not None else {}),
        },
        "sky": sky_record,
    }
    clashes = sorted(set(extra or {}) & (set(provenance) | set(FILE_PROVENANCE_KEYS)))
    if clashes:
        raise ValueError(f"extra provenance keys {clashes} would replace the export's own")
    provenance.update(_json_safe(dict(extra or {})))
    return Export(consensus=consensus, marks=marks, provenance=provenance)


def _named_tables(tables) -> dict[str, pd.DataFrame]:
    if isinstance(tables, pd.DataFrame):
        named = {"consensus": tables}
    elif isinstance(tables, Mapping):
        named = dict(tables)
    elif isinstance(getattr(tables, "tables", None), Mapping):
        named = dict(tables.tables)
    elif hasattr(tables, "consensus"):
        # An AggregationResult: its `subjects` holds per-subject statistics, not the canonical subjects table.
        named = {"consensus": tables.consensus, "links": getattr(tables, "links", None)}
    else:
        raise TypeError(f"cannot export a {type(tables).__name__}: give a consensus DataFrame, a mapping of "
                        "tables by name, or a loader / aggregation result")
    return {name: _computed(table) for name, table in named.items() if table is not None}


def _computed(table):
    """A pandas DataFrame from a pandas or Dask one."""
    return table.compute() if hasattr(table, "compute") and not isinstance(table, pd.DataFrame) else table


def _insert_after(table: pd.DataFrame, column: str, columns: pd.DataFrame) -> pd.DataFrame:
    at = list(table.columns).index(column) + 1
    kept = table.drop(columns=[name for name in columns.columns if name in table.columns])
    return pd.concat([kept.iloc[:, :at], columns, kept.iloc[:, at:]], axis=1)


def _marks_with_links(named: dict) -> pd.DataFrame | None:
    marks = named.get("marks")
    links = named.get("links")
    if links is not None:
        links = conform(links, "links")
    if marks is None:
        return links
    marks = conform(marks, "marks")
    if links is None:
        return marks
    # Left join: a mark the aggregation never saw keeps an empty consensus_id, unlike -1 (matched nothing).
    return marks.merge(links, on="mark_id", how="left", validate="one_to_one")


def _software() -> dict:
    import astropy

    from . import __version__

    return {"zoolens": __version__, "pandas": pd.__version__, "numpy": np.__version__,
            "astropy": astropy.__version__}


def describe_aggregation(source: pd.Series) -> list[dict]:
    """Each distinct aggregation behind the consensus rows: its settings and how many rows it made.

    A ``source`` that is a JSON object (zoolens' own aggregators) is parsed into
    ``settings``; any other text (a panoptes_aggregation reducer's description)
    is kept as ``description``.
    """
    counts = source.fillna("").astype(str).value_counts(sort=False)
    described = []
    for text, rows in counts.items():
        entry: dict[str, Any] = {"consensus_rows": int(rows)}
        try:
            settings = json.loads(text)
        except ValueError:
            settings = None
        if isinstance(settings, dict):
            entry["method"] = settings.get("method")
            entry["settings"] = settings
        else:
            entry["description"] = text
        described.append(entry)
    return described


def describe_sources(sources) -> list[dict]:
    """Path, role, size and SHA-256 of every source file (see `prepare_export`)."""
    if sources is None:
        return []
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    pairs = []
    if isinstance(sources, Mapping):
        for role, paths in sources.items():
            if paths is None:
                continue
            for path in [paths] if isinstance(paths, (str, os.PathLike)) else paths:
                pairs.append((str(role), Path(path)))
    else:
        pairs = [("input", Path(path)) for path in sources]
    described = []
    for role, path in pairs:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: source file for the export's provenance does not exist")
        stat = path.stat()
        described.append({"role": role, "path": str(path), "name": path.name, "bytes": stat.st_size,
                          "sha256": _sha256(str(path.resolve()), stat.st_size, stat.st_mtime_ns)})
    return described


@functools.lru_cache(maxsize=4096)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    """SHA-256 of a file, remembered per (path, size, modification time): a dashboard exports many times."""
    from .cache import file_digest

    return file_digest(Path(path))


def _json_safe(value):
    """``value`` as plain JSON types (numpy numbers, timestamps and paths become numbers or text)."""
    return json.loads(json.dumps(value, default=_json_default))


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (set, frozenset, tuple, np.ndarray)):
        return list(value)
    return str(value)


# --------------------------------------------------------------------------- untrusted text


def neutralise_formulas(table: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``table`` safe to open in a spreadsheet: formula-leading text gets a leading quote.

    Every text cell and column name starting with ``=``, ``+``, ``-``, ``@``,
    tab or carriage return is prefixed with ``'`` (OWASP CSV injection).
    Numeric columns are not touched, so negative numbers stay numbers.
    Non-text objects in text columns (dicts, lists) become JSON first.
    """
    return _neutralised(table)[0]


def _neutralised(table: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """`neutralise_formulas` and the number of cells (and column names) it changed."""
    table, changed = _neutralised_names(table)
    columns = {}
    for position, name in enumerate(table.columns):
        series = table.iloc[:, position]
        if _is_text(series):
            series, count = _neutralise_text(_text(series))
            changed += count
        columns[position] = series
    result = pd.DataFrame(columns, index=table.index)
    result.columns = table.columns
    return result, changed


def to_safe_csv(table: pd.DataFrame, path_or_buffer) -> int:
    """Write ``table`` as a CSV a spreadsheet can open safely; return how many cells were neutralised.

    Formula-leading text is quoted (`neutralise_formulas`); timestamps become
    ISO 8601 text; missing values are empty cells; floats keep every digit, so
    they read back exactly. Lines end in CRLF (RFC 4180): the csv module quotes
    a cell holding any character of the line terminator, so a name with a bare
    CR or LF cannot start a new row (with ``"\n"`` a bare CR goes out unquoted).

    Parameters
    ----------
    table : DataFrame
    path_or_buffer : str, path-like or text buffer
        As for `pandas.DataFrame.to_csv` (``.gz`` compresses).
    """
    safe, neutralised = _neutralised(_with_datetimes_as_text(table))
    safe.to_csv(path_or_buffer, index=False, lineterminator="\r\n")
    return neutralised


def _neutralise_text(values: pd.Series) -> tuple[pd.Series, int]:
    """Formula-leading strings of an object Series prefixed with a quote, and how many there were."""
    return _rewrite_matching(values, FORMULA_PATTERN, lambda formulas: "'" + formulas)


def _rewrite_matching(values: pd.Series, pattern: str, rewrite) -> tuple[pd.Series, int]:
    """Cells of an object text Series matching regex ``pattern`` passed through ``rewrite``, and how many.

    Text columns repeat (21,000 volunteer names over 3.5 million marks), so each
    distinct value is tested, and rewritten, once and the result spread back to its rows.
    """
    codes, uniques = pd.factorize(values)
    distinct = pd.Series(uniques, dtype=object)
    hits = distinct.str.contains(pattern, regex=True).fillna(False).to_numpy(dtype=bool)
    if not hits.any():
        return values, 0
    replacement = distinct.to_numpy(dtype=object, copy=True)
    replacement[hits] = rewrite(distinct[hits]).to_numpy(dtype=object)
    rows = codes >= 0
    rows[rows] = hits[codes[rows]]
    rewritten = values.to_numpy(dtype=object, copy=True)
    rewritten[rows] = replacement[codes[rows]]
    return pd.Series(rewritten, index=values.index, dtype=object), int(rows.sum())


def _neutralised_names(frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """``frame`` with formula-leading column names quoted, and how many there were."""
    names = pd.Series([str(name) for name in frame.columns], dtype=object)
    safe, count = _neutralise_text(names)
    if not count:
        return frame, 0
    renamed = frame.copy()
    renamed.columns = list(safe)
    return renamed, count


def _is_text(series: pd.Series) -> bool:
    dtype = series.dtype
    return not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)
                or pd.api.types.is_datetime64_any_dtype(dtype))


def _text(series: pd.Series) -> pd.Series:
    """A text column as object strings (missing stays missing; dicts and lists become JSON)."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        series = series.astype(object)
    values = series.astype(object)
    missing = series.isna().to_numpy()
    # Only an object column that is not all text needs looking at cell by cell.
    if series.dtype == object and pd.api.types.infer_dtype(values, skipna=True) not in ("string", "empty"):
        is_str = values.map(lambda value: isinstance(value, str)).to_numpy(dtype=bool)
        others = ~is_str & ~missing
        values = values.copy()
        values[others] = [json.dumps(value, default=_json_default, ensure_ascii=False)
                          for value in values[others]]
    return values.where(~missing, None)


def _with_datetimes_as_text(table: pd.DataFrame) -> pd.DataFrame:
    """Timestamps as ISO 8601 text (UTC when they carry a zone): every format reads those."""
    converted = {}
    for name in table.columns:
        if pd.api.types.is_datetime64_any_dtype(table[name].dtype):
            series = table[name]
            text = series.dt.strftime("%Y-%m-%dT%H:%M:%S.%f")
            if getattr(series.dt, "tz", None) is not None:
                text = series.dt.tz_convert("UTC").dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            converted[name] = text.astype(object).where(series.notna(), None)
    return table.assign(**converted) if converted else table


# --------------------------------------------------------------------------- the registry


class Writer:
    """Base class of every format zoolens writes.

    A subclass sets ``short_name`` (what users pass as ``format=``), a
    one-line docstring, the ``extensions`` it owns (the first is the usual one),
    and implements `outputs` (the files it makes) and `write_files`.
    Defining the subclass registers it.
    """

    short_name: ClassVar[str] = ""
    extensions: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.short_name:
            WRITERS[cls.short_name] = cls

    def outputs(self, path: Path, export: Export) -> dict[str, Path]:
        """The files this export makes, by role; the first is ``path`` itself."""
        return {"catalogue": path}

    def write_files(self, export: Export, outputs: dict[str, Path]) -> dict:
        """Write the files at ``outputs``; return what was done to text cells, for the provenance."""
        raise NotImplementedError


#: Short format name -> Writer subclass. Filled as the writer classes below are defined.
WRITERS: dict[str, type[Writer]] = {}


def known_writer_formats() -> str:
    """Every writable format with its extensions, for error messages."""
    return "; ".join(f"{name} ({', '.join(cls.extensions)})" for name, cls in sorted(WRITERS.items()))


def writer_format(path: str | os.PathLike, format: str | None = None) -> str:
    """The writer's short name: ``format`` when given (checked), else from the path's extension."""
    if format is not None:
        if format not in WRITERS:
            raise FormatError(f"unknown export format {format!r}; known formats: {known_writer_formats()}")
        return format
    name = Path(path).name.lower()
    matches = [(len(extension), writer) for writer, cls in WRITERS.items() for extension in cls.extensions
               if name.endswith(extension)]
    if not matches:
        raise FormatError(f"{path}: cannot tell the export format from the extension; use one of these "
                          f"extensions or pass format=: {known_writer_formats()}")
    return max(matches)[1]


def write(tables, path: str | os.PathLike, format: str | None = None, *, overwrite: bool = False,
          **options) -> list[Path]:
    """Write consensus boxes (and optionally raw marks) with their provenance.

    Parameters
    ----------
    tables : Export, DataFrame, mapping, LoadResult or AggregationResult
        An `Export` from `prepare_export`, or anything `prepare_export` accepts.
    path : str or path-like
        The catalogue file. Companion files (marks, provenance sidecar) are
        named after it: ``NAME.marks.csv``, ``NAME.provenance.json``.
    format : str, optional
        ``"csv"``, ``"ecsv"``, ``"fits"`` or ``"votable"``; from the extension if omitted.
    overwrite : bool
        Replace existing files; otherwise an existing target is an error.
    **options
        Passed to `prepare_export` (``include_marks``, ``subjects``, ``wcs``,
        ``pixel_scale``, ``sources``, ``filters``) when ``tables`` is not an `Export`.

    Returns
    -------
    list of Path
        The files written, the catalogue first.
    """
    path = Path(path)
    writer = WRITERS[writer_format(path, format)]()
    if isinstance(tables, Export):
        if options:
            raise TypeError(f"options {sorted(options)} apply when preparing an export; the Export given is ready")
        export = tables
    else:
        export = prepare_export(tables, **options)
    outputs = writer.outputs(path, export)
    existing = [str(target) for target in outputs.values() if target.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{', '.join(existing)} already exist(s); pass overwrite=True (--overwrite) "
                              "to replace, or choose another name")
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=path.parent, prefix=".zoolens-export-"))
    try:
        staged = {role: staging / target.name for role, target in outputs.items()}
        writer.write_files(export, staged)
        for role, target in outputs.items():
            os.replace(staged[role], target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return list(outputs.values())


def export_bytes(tables, filename: str, format: str | None = None, **options) -> tuple[str, bytes]:
    """One download for a browser: the catalogue's bytes, or a zip when the format makes several files.

    Parameters
    ----------
    tables : Export, DataFrame, mapping, LoadResult or AggregationResult
        As for `write`.
    filename : str
        The catalogue's file name (no folder), e.g. ``"selection.csv"``.
    format : str, optional
        As for `write`; from the extension if omitted.
    **options
        As for `write` (``include_marks``, ``subjects``, ``wcs``, ...).

    Returns
    -------
    name : str
        ``filename`` when one file was written (FITS, VOTable, ECSV without marks),
        otherwise ``NAME.zip`` holding every file (CSV with its provenance sidecar, marks).
    content : bytes
    """
    import io
    import zipfile

    if not filename or Path(filename).name != filename:
        raise ValueError(f"{filename!r}: give a file name without a folder")
    with tempfile.TemporaryDirectory(prefix="zoolens-download-") as folder:
        files = write(tables, Path(folder) / filename, format, **options)
        if len(files) == 1:
            return filename, files[0].read_bytes()
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for file in files:
                archive.write(file, file.name)
    stem, _ = _split_extension(Path(filename), WRITERS[writer_format(filename, format)].extensions)
    return f"{stem}.zip", buffer.getvalue()


def _split_extension(path: Path, extensions: tuple[str, ...]) -> tuple[str, str]:
    """``("catalogue", ".csv.gz")`` for ``catalogue.csv.gz``; the path's last suffix if none matches."""
    name = path.name
    for extension in sorted(extensions, key=len, reverse=True):
        if name.lower().endswith(extension):
            return name[: -len(extension)], name[-len(extension):]
    return path.stem, path.suffix


def _one_file_per_table(path: Path, export: Export, extensions: tuple[str, ...]) -> dict[str, Path]:
    """``NAME.csv`` for the consensus and ``NAME.marks.csv`` for the marks (same extension)."""
    stem, extension = _split_extension(path, extensions)
    outputs = {"consensus": path}
    if export.marks is not None:
        outputs["marks"] = path.with_name(f"{stem}.marks{extension}")
    return outputs


def _file_provenance(export: Export, format: str, outputs: dict[str, Path], text: dict) -> dict:
    """The export's provenance plus what this file holds and what was done to its text."""
    return {
        **export.provenance,
        "format": format,
        "files": {role: target.name for role, target in outputs.items()},
        "text_cells": text,
    }


def _listed_sources(sources: list[dict]) -> tuple[list[dict], int]:
    """Sources to list one by one in a header, and how many (images) are only counted there."""
    listed = [source for source in sources if source["role"] not in SUMMARISED_ROLES]
    return listed, len(sources) - len(listed)


def _columns(table: pd.DataFrame, units: dict) -> list[dict]:
    """ECSV-style column descriptions: name, datatype, unit, description."""
    return [{"name": str(name), "datatype": str(table[name].dtype), "unit": units.get(name),
             "description": DESCRIPTIONS.get(name)} for name in table.columns]


# --------------------------------------------------------------------------- CSV


class CSVWriter(Writer):
    """Plain CSV, one file per table, provenance in a sidecar JSON: pandas and astropy read it by default."""

    short_name = "csv"
    extensions = (".csv", ".csv.gz")

    def outputs(self, path: Path, export: Export) -> dict[str, Path]:
        outputs = _one_file_per_table(path, export, self.extensions)
        outputs["provenance"] = path.with_name(f"{_split_extension(path, self.extensions)[0]}.provenance.json")
        return outputs

    def write_files(self, export: Export, outputs: dict[str, Path]) -> dict:
        neutralised = {}
        columns = {}
        for role, table in export.tables().items():
            neutralised[role] = to_safe_csv(table, outputs[role])
            columns[role] = _columns(table, export.units)
        text = {"formula_cells_neutralised": neutralised, "rule": NEUTRALISE_RULE}
        provenance = {**_file_provenance(export, self.short_name, outputs, text), "columns": columns}
        outputs["provenance"].write_text(json.dumps(provenance, indent=2, ensure_ascii=False) + "\n",
                                         encoding="utf-8")
        return text


# --------------------------------------------------------------------------- astropy tables


def astropy_table(table: pd.DataFrame, units: dict, text=None):
    """An `astropy.table.Table` of ``table`` with units, descriptions and missing values masked.

    Parameters
    ----------
    table : DataFrame
    units : dict
        Column name -> unit string.
    text : callable, optional
        Applied to each text column (object Series of str or None) to make it
        safe for the format; returns the new Series and the number of cells changed.

    Returns
    -------
    astropy.table.Table, int
        The table and the number of text cells ``text`` changed.
    """
    from astropy.table import MaskedColumn, Table

    result = Table()
    changed = 0
    for name, series in _with_datetimes_as_text(table).items():
        missing = series.isna().to_numpy()
        if _is_text(series):
            values = _text(series)
            if text is not None:
                values, count = text(values)
                changed += count
            data = np.array(values.fillna("").tolist(), dtype=str) if len(values) else np.array([], dtype="U1")
        elif pd.api.types.is_bool_dtype(series.dtype):
            data = series.to_numpy(dtype=bool, na_value=False)
        elif pd.api.types.is_integer_dtype(series.dtype):
            data = series.to_numpy(dtype=np.int64, na_value=0)
        else:
            data = series.to_numpy(dtype=float, na_value=np.nan)
            missing = np.zeros(len(data), dtype=bool)  # NaN is the missing float in every format
        column = MaskedColumn(data, name=str(name), mask=missing) if missing.any() else data
        result[str(name)] = column
        result[str(name)].unit = units.get(name)
        result[str(name)].description = DESCRIPTIONS.get(name)
    return result, changed


def _ascii_escape(values: pd.Series) -> tuple[pd.Series, int]:
    """Text as printable ASCII through Python's ``unicode_escape`` (reversible), for FITS."""
    # Printable ASCII without a backslash is its own escape: only the other cells are encoded.
    return _rewrite_matching(values, r"[^\x20-\x7e]|\\", lambda unsafe: unsafe.map(_ascii))


def _xml_safe(values: pd.Series) -> tuple[pd.Series, int]:
    """Characters XML 1.0 forbids replaced by U+FFFD, for VOTable."""
    return _rewrite_matching(values, XML_ILLEGAL_PATTERN,
                             lambda illegal: illegal.str.replace(XML_ILLEGAL_PATTERN, "\ufffd", regex=True))


# --------------------------------------------------------------------------- ECSV


class ECSVWriter(Writer):
    """Astropy's Enhanced CSV: units, types and provenance in the header, formula cells neutralised."""

    short_name = "ecsv"
    extensions = (".ecsv",)

    def outputs(self, path: Path, export: Export) -> dict[str, Path]:
        return _one_file_per_table(path, export, self.extensions)

    def write_files(self, export: Export, outputs: dict[str, Path]) -> dict:
        tables = {}
        neutralised = {}
        for role, frame in export.tables().items():
            frame, names_changed = _neutralised_names(frame)
            tables[role], count = astropy_table(frame, export.units, _neutralise_text)
            neutralised[role] = count + names_changed
        text = {"formula_cells_neutralised": neutralised, "rule": NEUTRALISE_RULE}
        provenance = _file_provenance(export, self.short_name, outputs, text)
        for role, table in tables.items():
            table.meta["zoolens_provenance"] = provenance
            table.meta["table"] = role
            table.write(outputs[role], format="ascii.ecsv")
        return text


# --------------------------------------------------------------------------- FITS


class FITSWriter(Writer):
    """FITS binary tables (CONSENSUS, MARKS) with provenance keywords, HISTORY and a PROVENANCE extension."""

    short_name = "fits"
    extensions = (".fits", ".fit", ".fts", ".fits.gz")

    def write_files(self, export: Export, outputs: dict[str, Path]) -> dict:
        from astropy.io import fits

        escaped = {}
        hdus = []
        for role, frame in export.tables().items():
            frame = frame.rename(columns=_ascii)
            table, escaped[role] = astropy_table(_fits_booleans(frame), export.units, _ascii_escape)
            hdu = fits.table_to_hdu(table)
            hdu.name = role.upper()
            hdus.append(hdu)
        text = {"escaped_cells": escaped,
                "rule": "FITS text is ASCII: text cells are Python unicode_escape encoded; "
                        "codecs.decode(value, 'unicode_escape') restores them"}
        provenance = _file_provenance(export, self.short_name, outputs, text)
        primary = fits.PrimaryHDU()
        for hdu in (primary, hdus[0]):
            _provenance_cards(hdu.header, provenance)
        document = json.dumps(provenance, ensure_ascii=True, sort_keys=True)
        provenance_hdu = fits.BinTableHDU.from_columns(
            [fits.Column(name="JSON", format=f"{max(len(document), 1)}A", array=np.array([document]))],
            name="PROVENANCE",
        )
        provenance_hdu.header["COMMENT"] = "zoolens export provenance as one JSON document"
        fits.HDUList([primary, *hdus, provenance_hdu]).writeto(outputs["catalogue"])
        return text


def _fits_booleans(frame: pd.DataFrame) -> pd.DataFrame:
    """Booleans with missing values as small integers (1, 0, null): astropy writes a masked FITS logical as True."""
    nullable = [name for name in frame.columns
                if pd.api.types.is_bool_dtype(frame[name].dtype) and frame[name].isna().any()]
    return frame.astype({name: "Int16" for name in nullable}) if nullable else frame


def _ascii(text) -> str:
    """Printable ASCII for any text, reversibly (``codecs.decode(result, "unicode_escape")``)."""
    return str(text).encode("unicode_escape").decode("ascii")


def _provenance_cards(header, provenance: dict) -> None:
    """Provenance as FITS keywords (short facts) and HISTORY cards (one line per source and aggregation)."""
    header["ORIGIN"] = ("zoolens", "software that wrote this file")
    header["ZLVERS"] = (provenance["software"]["zoolens"], "zoolens version")
    header["DATE"] = (provenance["created_utc"].rstrip("Z"), "UTC time the export was made")
    header["NCONS"] = (provenance["rows"]["consensus"], "consensus boxes exported")
    header["NSUBJ"] = (provenance["rows"]["subjects"], "subjects with consensus boxes")
    if "marks" in provenance["rows"]:
        header["NMARKS"] = (provenance["rows"]["marks"], "raw marks exported")
    header["SKYMETH"] = (provenance["sky"]["method"], "how RA/Dec were obtained")
    methods = sorted({entry.get("method") or "external" for entry in provenance["aggregation"]})
    header["AGGMETH"] = (_ascii(",".join(methods)) or "none", "aggregation method(s)")
    header["NSOURCE"] = (len(provenance["sources"]), "source files (HISTORY, PROVENANCE ext)")
    listed, summarised = _listed_sources(provenance["sources"])
    if summarised:
        header.add_history(f"{summarised} image files: paths and SHA-256 in the PROVENANCE extension")
    for source in listed:
        header.add_history(_ascii(f"source {source['role']} ({source['bytes']} bytes): {source['path']}"))
        # On a card of its own: 71 characters fit one HISTORY card, so the hash is never split.
        header.add_history(f"sha256={source['sha256']}")
    for entry in provenance["aggregation"]:
        settings = entry.get("settings") or entry.get("description")
        header.add_history(_ascii(f"aggregation ({entry['consensus_rows']} boxes): "
                                  f"{json.dumps(settings, sort_keys=True, ensure_ascii=True)}"))
    if provenance["filters"]:
        header.add_history(_ascii(f"filters: {json.dumps(provenance['filters'], sort_keys=True)}"))
    sky_note = provenance["sky"].get("note")
    if sky_note:
        header.add_comment(sky_note)
    header.add_comment("Full provenance JSON: the PROVENANCE extension. Pixel coordinates: natural picture pixels, "
                       "origin top-left, y down. Text cells are unicode_escape encoded ASCII.")


# --------------------------------------------------------------------------- VOTable


class VOTableWriter(Writer):
    """IVOA VOTable: consensus and marks tables with units and UCDs, provenance in INFO and PARAM elements."""

    short_name = "votable"
    extensions = (".xml", ".vot", ".votable")

    def write_files(self, export: Export, outputs: dict[str, Path]) -> dict:
        from astropy.io.votable.tree import Info, Param, Resource, VOTableFile

        document = VOTableFile()
        resource = Resource()
        resource.description = "zoolens export: consensus boxes of a Zooniverse drawing project"
        document.resources.append(resource)
        replaced = {}
        for role, frame in export.tables().items():
            table, replaced[role] = astropy_table(frame, export.units, _xml_safe)
            votable = _votable_table(document, table, role)
            votable.params.append(Param(document, name="n_rows", ID=f"{role}_n_rows", datatype="long",
                                        value=len(frame)))
            resource.tables.append(votable)
        text = {"replaced_cells": replaced,
                "rule": "characters XML 1.0 forbids (control characters) were replaced by U+FFFD"}
        provenance = _file_provenance(export, self.short_name, outputs, text)
        infos = [
            ("zoolens_version", provenance["software"]["zoolens"], None),
            ("created_utc", provenance["created_utc"], None),
            ("sky_method", provenance["sky"]["method"], provenance["sky"].get("note")),
            ("aggregation", json.dumps(provenance["aggregation"], sort_keys=True), None),
            ("filters", json.dumps(provenance["filters"], sort_keys=True), None),
        ]
        listed, summarised = _listed_sources(provenance["sources"])
        infos += [("source_sha256", source["sha256"], source["path"]) for source in listed]
        if summarised:
            infos.append(("image_files", str(summarised), "paths and SHA-256 in the provenance INFO"))
        infos.append(("provenance", json.dumps(provenance, sort_keys=True), None))
        for number, (name, value, content) in enumerate(infos):
            info = Info(name=name, ID=f"info_{number}_{name}", value=_xml_text(value))
            if content:
                info.content = _xml_text(content)
            resource.infos.append(info)
        document.to_xml(str(outputs["catalogue"]))
        return text


def _xml_text(value) -> str:
    return re.sub(XML_ILLEGAL_PATTERN, "\ufffd", str(value))


def _votable_table(document, table, role: str):
    from astropy.io.votable.tree import TableElement

    votable = TableElement.from_table(document, table)
    votable.name = role
    votable.ID = role
    for votable_field in votable.fields:
        # No field IDs (they are optional): an ID must be unique in the whole document and an XML
        # name, and both tables have consensus_id; readers find columns by name.
        votable_field.ID = None
        ucd = UCDS.get(votable_field.name)
        if ucd:
            votable_field.ucd = ucd
    return votable
