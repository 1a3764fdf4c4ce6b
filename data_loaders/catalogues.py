"""Astronomy catalogues (FITS table, VOTable, ECSV, CSV) -> a ``catalogue`` table with ``ra``/``dec``.

FITS, VOTable and ECSV files are read with astropy's ``Table.read``; CSV files
with zoolens' own CSV reader, so that a malformed row is skipped and counted
rather than failing the whole file as astropy's CSV reader does. Every column
of the file is kept (byte strings decoded, masked values missing, columns of
arrays as lists), and two columns are added: ``ra`` and ``dec`` in degrees.

Which columns give ``ra``/``dec``
---------------------------------
Every RA/Dec pair in the file is listed in the report (``positions``), keyed
by prefix: ``""`` for an unprefixed pair (``ra``/``dec``, ``RA``/``DEC``,
``RAJ2000``/``DEJ2000``, ``RA_ICRS``/``DE_ICRS``, ``right_ascension``/
``declination``, ...; see `data_loaders._sky`), and e.g. ``"clump"`` for
``clump_ra``/``clump_dec``. The choice, in order:

1. ``ra_column=`` and ``dec_column=`` when given;
2. ``position="clump"``: the pair with that prefix;
3. the unprefixed pair (in the GZH Stripe 82 clump catalogue that is the host
   galaxy's position; ``position="clump"`` gives each clump's own);
4. otherwise the prefixed pair whose prefix sorts first.

When the chosen pair is not the file's own ``ra``/``dec`` columns, those keep
their values under ``catalogue_ra``/``catalogue_dec``. Values are converted to
degrees from the column unit (hours and radians too) or from sexagesimal text.
Rows without a valid position (missing, unreadable, RA outside 0-360 or Dec
outside -90-90) are skipped and counted; a catalogue without any RA/Dec pair
loads with ``ra``/``dec`` NaN and says so in the report.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import param

from ._csv import RowFilter, read_text_csv, typed_values
from ._fits import fits_layout
from ._sky import find_positions, sky_degrees
from .base import FormatError, LoadReport, LoadResult, Loader, csv_header

EXPECTED = "an astronomy catalogue"


def _table_format(path: Path, head: bytes) -> str | None:
    """astropy's format name for a catalogue file, from its first bytes, or None."""
    layout = fits_layout(head)
    if layout is not None:
        primary, extension = layout
        return "fits" if primary == "empty" and extension in ("BINTABLE", "TABLE") else None
    if head.startswith(b"# %ECSV"):
        return "ascii.ecsv"
    text = head[:4096].lstrip()
    if text.startswith(b"<?xml") or text.startswith(b"<VOTABLE"):
        return "votable" if b"<VOTABLE" in head[:8192] else None
    if find_positions(csv_header(head)):
        return "csv"
    return None


class Catalogue(Loader):
    """Astronomy catalogue (FITS table, VOTable, ECSV, or CSV with RA/Dec columns)."""

    short_name = "catalogue"
    extensions = (".fits", ".fit", ".fits.gz", ".vot", ".xml", ".ecsv", ".csv")
    #: A CSV with RA/Dec columns is a catalogue only when no Zooniverse format claims it.
    priority = -1

    @classmethod
    def identify(cls, path: Path, head: bytes) -> bool:
        return _table_format(path, head) is not None

    position = param.String(default=None, allow_None=True, doc=(
        "Prefix of the RA/Dec pair to use when the table has several (\"clump\" for clump_ra/clump_dec)."))
    ra_column = param.String(default=None, allow_None=True, doc="Exact RA column to use; wins over position.")
    dec_column = param.String(default=None, allow_None=True, doc="Exact Dec column to use; wins over position.")

    def read(self, path: Path) -> LoadResult:
        return _read(Path(path), self.position, self.ra_column, self.dec_column)


def read_catalogue(path, position: str | None = None, ra_column: str | None = None,
                   dec_column: str | None = None) -> LoadResult:
    """Read an astronomy catalogue and add ``ra``/``dec`` in degrees.

    Parameters
    ----------
    path : str or path-like
        FITS (binary or ASCII table), VOTable, ECSV or CSV file.
    position : str, optional
        Prefix of the RA/Dec pair to use (``"clump"`` for ``clump_ra``/``clump_dec``).
    ra_column, dec_column : str, optional
        Exact columns to use; they win over ``position``.

    Returns
    -------
    LoadResult
        ``.catalogue`` (every column of the file plus ``ra``, ``dec``) and ``.report``
        (``positions`` found, ``position_columns`` chosen).
    """
    return Catalogue(position=position, ra_column=ra_column, dec_column=dec_column).read(Path(path))


def _read(path: Path, position, ra_column, dec_column) -> LoadResult:
    from .base import read_head

    report = LoadReport(source=str(path), format=Catalogue.short_name)
    table_format = _table_format(path, read_head(path))
    units: dict[str, str | None] = {}
    if table_format == "csv" or (table_format is None and path.suffix.lower() == ".csv"):
        rows = read_text_csv(path, report, EXPECTED)
        table = pd.DataFrame({name: typed_values(pd.Series(rows.strings(name), dtype=object)).array
                              for name in rows.columns})
        lines = rows.lines
    elif table_format is None:
        raise FormatError(f"{path}: not {EXPECTED}: expected a FITS table, VOTable, ECSV file "
                          "or CSV file with RA/Dec columns")
    else:
        table, units = read_astropy_table(path, table_format, EXPECTED)
        report.rows_read = len(table)
        report.counts["line_numbers"] = "table row numbers, from 1"
        lines = np.arange(1, len(table) + 1, dtype=np.int64)

    positions = find_positions(table.columns)
    report.counts["positions"] = {prefix: list(pair) for prefix, pair in positions.items()}
    chosen = _choose(path, table.columns, positions, position, ra_column, dec_column)
    report.counts["position_columns"] = list(chosen) if chosen else None
    kept = RowFilter(report, lines)
    if chosen:
        ra, dec = sky_degrees(table[chosen[0]], table[chosen[1]],
                              ra_factor=_degrees_per(units.get(chosen[0])),
                              dec_factor=_degrees_per(units.get(chosen[1])))
        kept.reject(~(np.isfinite(ra) & np.isfinite(dec)), "ra/dec missing or out of range")
        displaced = {name: f"catalogue_{name}" for name in ("ra", "dec")
                     if name in table.columns and name not in chosen}
        table = table.rename(columns=displaced)
        table["ra"], table["dec"] = ra, dec
    else:
        table["ra"] = table["dec"] = np.nan
    table = table.iloc[kept.kept].reset_index(drop=True)
    report.rows_loaded = len(table)
    report.counts["table_format"] = table_format or "csv"
    report.counts["columns"] = len(table.columns)
    return LoadResult({"catalogue": table}, report)


def _degrees_per(unit: str | None) -> float:
    """Degrees per unit of a column's unit (15 for hours); 1 when it has none or is not an angle."""
    if not unit:
        return 1.0
    from astropy import units as u

    try:
        return float(u.Unit(unit).to(u.deg))
    except (ValueError, u.UnitsError, TypeError):
        return 1.0


def _choose(path, columns, positions, position, ra_column, dec_column) -> tuple[str, str] | None:
    if ra_column or dec_column:
        missing = [name for name in (ra_column, dec_column) if name not in columns]
        if missing or not (ra_column and dec_column):
            raise ValueError(f"{path}: ra_column and dec_column must both name columns; "
                             f"missing: {missing or 'one of the two'}")
        return ra_column, dec_column
    if position is not None:
        if position not in positions:
            known = ", ".join(repr(p) for p in positions) or "none"
            raise ValueError(f"{path}: no RA/Dec pair with prefix {position!r}; found: {known}")
        return positions[position]
    if "" in positions:
        return positions[""]
    return positions[sorted(positions)[0]] if positions else None


def read_astropy_table(path: Path, table_format: str,
                       expected: str) -> tuple[pd.DataFrame, dict[str, str | None]]:
    """A table file read with astropy as a DataFrame and each column's unit.

    Columns of arrays become lists, byte strings text; a file astropy cannot read
    raises a `FormatError` saying it is not ``expected``.
    """
    import warnings

    from astropy.table import Table
    from astropy.utils.exceptions import AstropyWarning

    try:
        with warnings.catch_warnings():
            # Non-standard units and VOTable quirks are reported by astropy as warnings: noise here.
            warnings.simplefilter("ignore", AstropyWarning)
            table = Table.read(path, format=table_format)
    except Exception as error:  # astropy raises many types for a malformed file
        raise FormatError(f"{path}: cannot be read as {expected} ({table_format}): "
                          f"{type(error).__name__}: {error}") from error
    table.convert_bytestring_to_unicode()
    units = {name: (str(table[name].unit) if table[name].unit is not None else None)
             for name in table.colnames}
    columns = {}
    for name in table.colnames:
        column = table[name]
        if column.ndim > 1:
            columns[name] = pd.Series(list(np.asarray(column).tolist()), dtype=object)
        else:
            columns[name] = Table([column]).to_pandas()[name].reset_index(drop=True)
    return pd.DataFrame(columns), units
