"""Reading the text tables the loaders share: every cell as text, every row with its line number.

Zooniverse exports and aggregation outputs are CSV files whose cells hold
numbers, timestamps, JSON or Python list literals. These helpers read such a
file with pyarrow (multi-line quoted cells allowed), keep the physical line
number of each row for the load report, count rows with the wrong number of
columns instead of failing on them, and convert text columns to ids, numbers,
timestamps and parsed literals column by column rather than row by row.
"""

from __future__ import annotations

import ast
import codecs
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Sequence

import numpy as np
import orjson
import pandas as pd
import param
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from .base import (MAX_EXPANSION, MAX_ROW_BYTES, FormatError, LoadReport, LoadResult, Loader, ReadLimits,
                   csv_header, expansion_error, expansion_limit, is_gzipped, read_head)
from .cache import cached_load

#: How many cells one bulk JSON parse takes; a bad cell only sends its chunk to the slow path.
LITERAL_CHUNK = 8192

#: The first bytes of a Parquet file.
PARQUET_MAGIC = b"PAR1"

#: Column names pandas gives an unnamed index column written by ``to_csv`` and read back.
_INDEX_COLUMN_PATTERN = r"^(|Unnamed: \d+)$"


@dataclass
class TextTable:
    """A CSV file's rows as text columns (empty cells are ``""``) and each row's first line number."""

    table: pa.Table
    lines: np.ndarray

    def __len__(self) -> int:
        return self.table.num_rows

    @property
    def columns(self) -> list[str]:
        return self.table.column_names

    def column(self, name: str) -> pa.Array:
        return self.table.column(name).combine_chunks()

    def strings(self, name: str) -> np.ndarray:
        """A column as a numpy array of Python strings."""
        return np.asarray(self.column(name).to_pylist(), dtype=object)

    def take(self, rows: np.ndarray) -> TextTable:
        return TextTable(self.table.take(pa.array(rows, pa.int64())), self.lines[rows])


class CsvExport(ReadLimits, Loader):
    """A CSV format told by its header, whose parsed tables are cached as Parquet.

    A subclass sets ``column_sets`` (the file must name every column of one of
    them), may set ``excluded_columns`` (it must name none: a classification
    export's ``annotations`` by default) and implements `parse`.
    """

    extensions = (".csv", ".csv.gz")
    column_sets: ClassVar[tuple[tuple[str, ...], ...]] = ()
    excluded_columns: ClassVar[tuple[str, ...]] = ("annotations",)

    @classmethod
    def identify(cls, path: Path, head: bytes) -> bool:
        header = set(csv_header(head))
        return (any(set(columns) <= header for columns in cls.column_sets)
                and not header & set(cls.excluded_columns))

    use_cache = param.Boolean(default=True, doc="Reuse the Parquet cache of an earlier parse of the same file "
                                                "and options.")

    def read(self, path: Path) -> LoadResult:
        """Parse ``path`` with this loader's options, or reuse the cached tables of the same file and options.

        The read limits (`ReadLimits`) decide whether a file is read, not what is read
        from it, so they are not part of the cache key.
        """
        path = Path(path)
        options = {name: value for name, value in self.values().items()
                   if name != "use_cache" and name not in self.limits}
        return cached_load(path, self.short_name, options, lambda: self.parse(path, **options),
                           use_cache=self.use_cache)


    def parse(self, path: Path, **options) -> LoadResult:
        """Read the file into its tables and report (no cache involved)."""
        raise NotImplementedError


def header_of(path: Path) -> list[str]:
    """The column names on line 1 of a (possibly gzipped) CSV file."""
    return csv_header(read_head(path))


def require_columns(path: Path, header: Sequence[str], required: Sequence[str], expected: str) -> None:
    """Raise one `FormatError` naming the file, what it should be, and the columns it lacks."""
    missing = [column for column in required if column not in header]
    if missing:
        raise FormatError(
            f"{path}: not {expected}: line 1 lacks column(s) {', '.join(missing)} "
            f"(expected a header with {', '.join(required)})"
        )


def read_text_csv(path: Path, report: LoadReport, expected: str,
                  required: Sequence[str] = (), index_column: str | None = None,
                  max_row_bytes: int = MAX_ROW_BYTES, max_expansion: float = MAX_EXPANSION) -> TextTable:
    """Read every column of a CSV file as text, counting malformed rows in ``report``.

    Parameters
    ----------
    path : Path
        The CSV file, optionally gzip-compressed (recognised from its content).
    report : LoadReport
        Receives ``rows_read`` and the rows skipped for having the wrong number of columns.
    expected : str
        What the file should be, for the error raised when it is not ("a subject export").
    required : sequence of str
        Columns line 1 must name.
    index_column : str, optional
        Keep an unnamed pandas index column under this name instead of dropping it.
    max_row_bytes : int
        Rows up to this long always load; a longer one (or a quote never closed) is a
        `FormatError` naming its line, unless it fits in a block the reader takes whole.
    max_expansion : float
        A gzipped file may decompress to at most this many times its size (and always to
        `~data_loaders.base.MIN_EXPANSION_BYTES`); past that, a `FormatError`.

    Returns
    -------
    TextTable
        The rows as text with the physical line on which each starts (the header is line 1).
        An unnamed pandas index column is dropped unless ``index_column`` names it.
    """
    header = header_of(path)
    require_columns(path, header, required, expected)
    invalid: list[tuple[int, str]] = []

    def on_invalid_row(row) -> str:
        invalid.append((row.number, row.text))
        return "skip"

    compression = "gzip" if is_gzipped(path) else None
    index_names = [name for name in dict.fromkeys(header) if _is_index_column(name)]
    names = [name for name in dict.fromkeys(header) if not _is_index_column(name)]
    if index_column and index_names and index_column not in header:
        names.insert(0, index_names[0])
    # Also reads the file through once, holding gzip to its limit before pyarrow reads it.
    not_text, size = _scan_text(path, compression, max_expansion)
    if not_text:
        # Checked first: pyarrow cannot report a malformed row whose text is not UTF-8.
        raise FormatError(f"{path}: cannot be read as {expected} (CSV): {not_text}")
    try:
        with pa.input_stream(str(path), compression=compression) as stream:
            table = pcsv.read_csv(
                stream,
                # Single-threaded so pyarrow numbers the rows it rejects.
                # A row must fit in one block; the block is never larger than the file needs.
                read_options=pcsv.ReadOptions(use_threads=False, block_size=max(
                    1, min(max_row_bytes, size + 1))),
                parse_options=pcsv.ParseOptions(newlines_in_values=True,
                                                invalid_row_handler=on_invalid_row),
                convert_options=pcsv.ConvertOptions(
                    column_types={name: pa.string() for name in header},
                    include_columns=names,
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                ),
            )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError, EOFError) as error:
        if "straddl" in str(error):
            raise FormatError(
                f"{path}: line {_first_long_row(path, compression, max_row_bytes)}: a row longer than "
                f"{max_row_bytes:,} bytes (the max_row_bytes limit), or a quote opened there and never "
                f"closed; not read. If the row is genuine, pass a larger max_row_bytes") from error
        raise FormatError(f"{path}: cannot be read as {expected} (CSV): "
                          f"{_scan_text(path, compression, max_expansion)[0] or error}") from error
    if index_column and index_names and index_names[0] in table.column_names:
        table = table.rename_columns([index_column if name == index_names[0] else name
                                      for name in table.column_names])
    lines = _line_numbers(table, invalid)
    report.rows_read += table.num_rows + len(invalid)
    if invalid:
        report.skip("wrong number of columns", lines[table.num_rows:])
        lines = lines[:table.num_rows]
    return TextTable(table, lines)


def table_columns(path: Path, head: bytes) -> list[str]:
    """The column names of a CSV or Parquet table, from its first bytes (and Parquet schema)."""
    if head[:4] == PARQUET_MAGIC:
        import pyarrow.parquet as pq

        try:
            return pq.read_schema(path).names
        except (pa.ArrowInvalid, OSError):
            return []
    return csv_header(head)


def read_text_table(path: Path, report: LoadReport, expected: str, required,
                    index_column: str | None = None, **limits) -> TextTable:
    """A CSV or Parquet table as text columns (`read_text_csv`, with its ``limits``); Parquet rows are
    numbered from 1."""
    with open(path, "rb") as handle:
        magic = handle.read(4)
    if magic != PARQUET_MAGIC:
        return read_text_csv(path, report, expected, required, index_column=index_column, **limits)
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise FormatError(f"{path}: cannot be read as {expected} (Parquet): {error}") from error
    missing = [column for column in required if column not in table.column_names]
    if missing:
        raise FormatError(f"{path}: not {expected}: it lacks column(s) {', '.join(missing)}")
    if index_column and "__index_level_0__" in table.column_names:
        table = table.rename_columns([index_column if name == "__index_level_0__" else name
                                      for name in table.column_names])
    # Every column as text, as from a CSV file, so one code path checks and converts them.
    text = pa.table({name: pc.fill_null(pc.cast(column, pa.string()), "")
                     for name, column in zip(table.column_names, table.columns)})
    report.rows_read += text.num_rows
    report.counts["line_numbers"] = "Parquet row numbers, from 1"
    return TextTable(text, np.arange(1, text.num_rows + 1, dtype=np.int64))


def _scan_text(path: Path, compression: str | None,
               max_expansion: float = MAX_EXPANSION) -> tuple[str | None, int]:
    """Where a file stops being UTF-8 text ("line 3 is not UTF-8 text", or None), and its size.

    The size is the decompressed one; a gzipped file that decompresses past
    ``max_expansion`` times its size raises a `FormatError`.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    limit = expansion_limit(path, max_expansion) if compression else None
    size = 0
    with pa.input_stream(str(path), compression=compression) as stream:
        while block := stream.read(4 * 1024 * 1024):
            size += len(block)
            if limit is not None and size > limit:
                raise expansion_error(path, max_expansion)
            try:
                decoder.decode(block)
            except UnicodeDecodeError as error:
                bad_line = line + block[:error.start].count(b"\n")
                return f"line {bad_line} is not UTF-8 text", size
            line += block.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return f"line {line} ends in the middle of a UTF-8 character", size
    return None, size


def _first_long_row(path: Path, compression: str | None, max_row_bytes: int) -> int:
    """The line on which the first row longer than ``max_row_bytes`` starts, quotes followed."""
    newlines_before, row_line, row_bytes, quoted = 0, 1, 0, False
    with pa.input_stream(str(path), compression=compression) as stream:
        while block := stream.read(4 * 1024 * 1024):
            data = np.frombuffer(block, dtype=np.uint8)
            is_newline = data == ord("\n")
            # A newline ends a row when the quotes before it in the row pair up.
            parity = (np.cumsum(data == ord('"')) + quoted) % 2
            ends = np.flatnonzero(is_newline & (parity == 0))
            lengths = np.diff(ends, prepend=-1)
            if len(ends):
                lengths[0] += row_bytes
            too_long = np.flatnonzero(lengths > max_row_bytes)
            if len(too_long):
                first = too_long[0]
                if first == 0:
                    return row_line
                return 1 + newlines_before + int(np.count_nonzero(is_newline[:ends[first - 1] + 1]))
            if len(ends):
                row_line = 1 + newlines_before + int(np.count_nonzero(is_newline[:ends[-1] + 1]))
                row_bytes = len(data) - ends[-1] - 1
            else:
                row_bytes += len(data)
            if row_bytes > max_row_bytes:
                return row_line
            newlines_before += int(np.count_nonzero(is_newline))
            quoted = bool(parity[-1])
    return row_line


def _is_index_column(name: str) -> bool:
    return re.match(_INDEX_COLUMN_PATTERN, name) is not None


def _line_numbers(table: pa.Table, invalid: list[tuple[int, str]]) -> np.ndarray:
    """Physical first line of every valid row, followed by those of the rejected rows.

    pyarrow numbers records (the header is record 1), not lines: a quoted cell
    may span lines. Valid and rejected records are merged back into file order
    and the newlines inside each record are counted to turn record numbers into
    line numbers.
    """
    n_valid = table.num_rows
    newlines = np.zeros(n_valid, dtype=np.int64)
    for column in table.columns:
        newlines += pc.count_substring(column, "\n").to_numpy(zero_copy_only=False)
    if not invalid:
        return 2 + np.arange(n_valid, dtype=np.int64) + np.cumsum(newlines) - newlines
    n_records = n_valid + len(invalid)
    record_newlines = np.zeros(n_records, dtype=np.int64)
    is_invalid = np.zeros(n_records, dtype=bool)
    invalid_index = np.array([number - 2 if number is not None else -1 for number, _ in invalid])
    # A record pyarrow could not number goes last; its line is then approximate.
    unknown = invalid_index < 0
    invalid_index[unknown] = n_records - 1 - np.arange(unknown.sum())[::-1]
    is_invalid[invalid_index] = True
    record_newlines[invalid_index] = [text.count("\n") for _, text in invalid]
    record_newlines[~is_invalid] = newlines
    starts = 2 + np.arange(n_records, dtype=np.int64) + np.cumsum(record_newlines) - record_newlines
    return np.concatenate([starts[~is_invalid], starts[invalid_index]])


class RowFilter:
    """The rows still kept; rejecting rows counts each once, under the first reason found for it."""

    def __init__(self, report: LoadReport, lines: np.ndarray):
        self.report = report
        self.lines = lines
        self.keep = np.ones(len(lines), dtype=bool)

    def reject(self, mask: np.ndarray, reason: str) -> None:
        """Drop the rows where ``mask`` is true, counting those not dropped before under ``reason``."""
        self.report.skip(reason, self.lines[self.keep & mask])
        self.keep &= ~mask

    @property
    def kept(self) -> np.ndarray:
        return np.flatnonzero(self.keep)


# --------------------------------------------------------------------------- typed columns


def parse_integers(column: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """int64 values and a validity mask of a text column of ids.

    ``"6465.0"`` counts as 6465: that is how pandas writes an integer column
    that had a missing value, and several real exports went through pandas.
    """
    # Most columns hold nothing but plain digits (and blanks): those cells need no
    # trimming or rewriting, and matching is much cheaper than replacing.
    plain = pc.match_substring_regex(column, r"^-?\d{1,18}$")
    if pc.all(pc.or_(plain, pc.equal(column, ""))).as_py() is not False:
        digits = pc.if_else(plain, column, "0")
        return (pc.cast(digits, pa.int64()).to_numpy(zero_copy_only=False),
                plain.to_numpy(zero_copy_only=False))
    trimmed = pc.utf8_trim_whitespace(column)
    valid = pc.match_substring_regex(trimmed, r"^-?\d{1,18}(\.0*)?$")
    digits = pc.replace_substring_regex(pc.if_else(valid, trimmed, "0"), r"\.0*$", "")
    return (pc.cast(digits, pa.int64()).to_numpy(zero_copy_only=False),
            valid.to_numpy(zero_copy_only=False))


_FLOAT_PATTERN = r"^[-+]?((\d+\.?\d*|\.\d+)([eE][-+]?\d+)?|nan|NaN|inf|Infinity)$"


def parse_floats(column: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """float64 values (NaN where not a number) and a mask of the cells that are numbers."""
    trimmed = pc.utf8_trim_whitespace(column)
    valid = pc.match_substring_regex(trimmed, _FLOAT_PATTERN)
    text = pc.replace_substring_regex(pc.if_else(valid, trimmed, "nan"), r"^([-+]?)Infinity$", r"\1inf")
    return (pc.cast(text, pa.float64()).to_numpy(zero_copy_only=False),
            valid.to_numpy(zero_copy_only=False))


ISO_TIMESTAMP = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})$"


def parse_timestamps(column: pa.Array) -> pd.Series:
    """UTC timestamps, NaT where a cell is not a date.

    Exports write ``2022-06-10 12:58:25 UTC`` and metadata ISO 8601: both are
    rewritten to ISO with a zone and cast by Arrow in one vectorised pass.
    """
    fast = _parse_well_formed_timestamps(column)
    if fast is not None:
        return fast
    iso = pc.replace_substring_regex(pc.utf8_trim_whitespace(column), r" UTC$", "Z")
    valid = pc.match_substring_regex(iso, ISO_TIMESTAMP)
    try:
        parsed = pc.if_else(valid, pc.cast(pc.if_else(valid, iso, "1970-01-01T00:00:00Z"),
                                           pa.timestamp("us", tz="UTC")), None)
        return _nanosecond_series(parsed)
    except pa.ArrowInvalid:  # a well-formed but impossible date (month 13): parse one by one
        text = pd.Series(column.to_pandas(), dtype=object)
        parsed = pd.to_datetime(text, format="mixed", utc=True, errors="coerce")
        return _nanosecond_series(pa.array(parsed, pa.timestamp("us", tz="UTC")))


#: How every Zooniverse export writes created_at.
EXPORT_TIMESTAMP = r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC$"


def _parse_well_formed_timestamps(column: pa.Array) -> pd.Series | None:
    """`parse_timestamps` for a column whose every cell is missing or one clean timestamp format.

    Export timestamps (``2022-06-10 12:58:25 UTC``) are cast without their zone (it
    is always UTC) and ISO ones as they stand, skipping the trimming and rewriting
    of every cell. None when any cell needs those steps or is not a possible date
    (Arrow's cast checks the calendar): the general route then decides, so both
    routes give the same result.
    """
    for pattern in (EXPORT_TIMESTAMP, ISO_TIMESTAMP):
        matched = pc.match_substring_regex(column, pattern)
        if pc.all(matched).as_py() is False:
            continue
        try:
            if pattern == EXPORT_TIMESTAMP:
                naive = pc.cast(pc.utf8_slice_codeunits(column, 0, 19), pa.timestamp("s"))
                parsed = pc.cast(naive, pa.timestamp("us", tz="UTC"))
            else:
                parsed = pc.cast(column, pa.timestamp("us", tz="UTC"))
        except pa.ArrowInvalid:
            return None
        return _nanosecond_series(parsed)
    return None


#: The instants pandas' nanosecond timestamps can hold (years 1677 to 2262), in microseconds.
NANOSECOND_RANGE_US = (pd.Timestamp.min.value // 1000 + 1, pd.Timestamp.max.value // 1000)


def _nanosecond_series(parsed: pa.Array) -> pd.Series:
    """Microsecond UTC timestamps as pandas nanoseconds; an instant pandas cannot hold is NaT.

    Arrow parses at microseconds, which reach year 9999; casting such a date to
    nanoseconds would overflow, so it becomes missing like any other non-date.
    """
    micros = pc.cast(parsed, pa.int64())
    inside = pc.and_(pc.greater_equal(micros, NANOSECOND_RANGE_US[0]),
                     pc.less_equal(micros, NANOSECOND_RANGE_US[1]))
    return pc.if_else(inside, parsed, None).to_pandas().astype("datetime64[ns, UTC]")


def parse_literals(cells: Sequence[str]) -> tuple[list, np.ndarray]:
    """Parse cells holding JSON or Python literals (``[1.0, 2.5]``, ``['a']``, ``{"k": 1}``).

    Chunks of cells are parsed in one orjson call; a chunk that fails (Python
    syntax such as single quotes, or a broken cell) is parsed cell by cell with
    orjson and then `ast.literal_eval`, which evaluates literals only. Python's
    ``nan`` becomes None (a missing number), ``inf`` infinity, and numpy 2's
    ``np.float64(1.5)`` its number. Nothing is ever passed to ``eval``.

    Returns
    -------
    values : list
        The parsed value of each cell; ``None`` for an empty cell or one that failed.
    ok : numpy.ndarray of bool
        False for cells that are neither empty nor a valid literal.
    """
    values: list = []
    ok = np.ones(len(cells), dtype=bool)
    for start in range(0, len(cells), LITERAL_CHUNK):
        chunk = cells[start:start + LITERAL_CHUNK]
        joined = ",".join(cell if cell.strip() else "null" for cell in chunk)
        try:
            parsed = orjson.loads(f"[{joined}]")
            if len(parsed) == len(chunk):
                values.extend(parsed)
                continue
        except orjson.JSONDecodeError:
            pass
        for offset, cell in enumerate(chunk):
            value, good = _parse_literal(cell)
            values.append(value)
            ok[start + offset] = good
    return values, ok


#: ``np.float64(1.5)``: how numpy 2 prints its scalars inside a Python list written to CSV.
_NUMPY_SCALAR = re.compile(r"\b(?:np|numpy)\.(?:float|int|uint)(?:16|32|64)?\(([^()]*)\)")
#: Bare ``nan`` / ``inf`` (not inside a word or a quoted string): Python prints float specials so.
_FLOAT_SPECIAL = re.compile(r"(?<![\w'\"])(-?)(nan|inf)(?![\w'\"])")


def _parse_literal(cell: str):
    if not cell.strip():
        return None, True
    try:
        return orjson.loads(cell), True
    except orjson.JSONDecodeError:
        pass
    text = _NUMPY_SCALAR.sub(r"\1", cell.strip())
    text = _FLOAT_SPECIAL.sub(lambda m: "None" if m[2] == "nan" else f"{m[1]}1e999", text)
    try:
        with warnings.catch_warnings():
            # Junk such as "\\." makes the literal parser warn about escapes; it is junk, not news.
            warnings.simplefilter("ignore", (SyntaxWarning, DeprecationWarning))
            return ast.literal_eval(text), True
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None, False


def join_ids(values: pd.Series, groups: pd.Series) -> pd.Series:
    """The distinct values of each group, sorted and joined with ``;`` (``"20334;20335"``)."""
    frame = pd.DataFrame({"group": groups.to_numpy(), "value": values.to_numpy()}).dropna()
    frame = frame.drop_duplicates().sort_values(["group", "value"], kind="stable")
    group_ids, starts = np.unique(frame["group"].to_numpy(), return_index=True)
    offsets = np.append(starts, len(frame)).astype(np.int32)
    text = pa.array(frame["value"].astype(str).to_numpy(dtype=object), pa.string())
    lists = pa.ListArray.from_arrays(pa.array(offsets), text)
    return pd.Series(pc.binary_join(lists, ";").to_numpy(zero_copy_only=False), index=group_ids)


def typed_values(values: pd.Series) -> pd.Series:
    """Numbers as numbers (exact integers as Int64), booleans as boolean, everything else as text.

    ``values`` holds Python objects (parsed JSON, or text cells); None, NaN and ``""``
    are missing. Integers with leading zeros or too large for int64 are identifiers
    and stay text; lists and dicts become JSON text.
    """
    present = (values.notna() & values.ne("")).to_numpy(dtype=bool)
    sample = values[present]
    types = sample.map(type)
    if len(sample) and types.eq(bool).all():
        return values.where(present).astype("boolean")
    if types.isin([str, int, float]).all():
        text = sample.astype(str)
    else:
        text = sample.map(_as_text)
    integers, is_integer = parse_integers(pa.array(text.to_numpy(dtype=object), pa.string()))
    leading_zero = text.str.match(r"^\s*-?0\d").to_numpy(dtype=bool)
    has_point = text.str.contains(".", regex=False).to_numpy(dtype=bool)
    if len(sample) and is_integer.all() and not (leading_zero.any() or has_point.any()):
        result = pd.Series(pd.NA, index=values.index, dtype="Int64")
        result[present] = integers
        return result
    numbers = pd.to_numeric(text, errors="coerce")
    if len(sample) and numbers.notna().all() and not leading_zero.any():
        result = pd.Series(np.nan, index=values.index)
        result[present] = numbers.to_numpy(dtype=float)
        return result
    result = pd.Series(pd.NA, index=values.index, dtype="string")
    result[present] = text.to_numpy(dtype=object)
    return result


def _as_text(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode()
    return str(value)
