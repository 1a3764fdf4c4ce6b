"""Zooniverse classification exports (classic and new front end) -> classifications and marks.

The CSV is cut into parts between rows (by counting quotes) and each part is
tokenised by pyarrow's CSV reader on a thread of its own; row-level fields are
validated and converted with vectorised pyarrow compute kernels, and only the
``annotations`` JSON of rows that survive the workflow filter is parsed into
marks (`data_loaders.marks`), so a 1.7-million-row export stays well within a
minute and a few GB (bench/results/loaders.md).

Shapes follow the canonical tables: natural image pixels, top-left x, y, width,
height, angle in degrees about the centre. Other shapes keep their kind and get
their bounding box (a circle's square, a polygon's extent); points stay points
(width and height NaN) unless ``point_box`` turns them into boxes. Marks drawn
through their vertices (polygons, freehand and other paths, lines) also keep
them, in drawing order, in a ``mark_vertices`` table keyed by mark id; so does an
ellipse, its outline turned as its front end draws it (the box, its envelope,
cannot show the turn).

The classic front end's full-image tools span the image the volunteer saw, whose
natural size the row's ``metadata.subject_dimensions`` gives for the frame the mark
is on (the frames of one subject may differ in size): a full-width line (``y``) is
the box from x = 0 across the width at zero height, with vertices at its two ends;
a full-height line (``x``) the same upright; a column (``x``, ``width``) the box
over the full height, with its four corners as vertices. Zero, not one pixel: the
box is the line's exact extent, as a horizontal line tool's is, and a made-up pixel
would let box overlap methods cluster lines on an invented area (they count marks
without area as ``marks_without_box`` instead). A row whose metadata gives no size
for the mark's frame (``[null]`` happens) cannot place them: those marks are skipped
and counted (`data_loaders.marks.NO_IMAGE_SIZE`), never guessed from other rows
or frames.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import re
import zlib
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import param
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from .base import (MAX_EXPANSION, MAX_ROW_BYTES, FormatError, LoadReport, LoadResult, Loader, ReadLimits,
                   csv_header, expansion_error, expansion_limit, is_gzipped)
from ._csv import parse_integers, parse_timestamps
from .cache import cached_load
from .marks import HANDLE_COLUMNS, MARK_ID_STRIDE, VERTEX_COLUMNS, extract_marks
from .schema import conform

REQUIRED_COLUMNS = (
    "classification_id",
    "user_name",
    "user_id",
    "workflow_id",
    "workflow_version",
    "created_at",
    "annotations",
    "subject_ids",
)
OPTIONAL_COLUMNS = ("gold_standard", "expert", "metadata", "subject_data", "workflow_name")


#: Bytes of CSV the reader tokenises at a time: small blocks stay in the CPU caches
#: (64 MiB blocks cost twice the CPU time on a 1.7-million-row export).
BLOCK_SIZE = 4 * 1024 * 1024
#: Bytes of CSV handed to a parsing thread at once: large enough that the fixed cost
#: of each part (kernel calls, a DataFrame) stays small, small enough that the parts
#: in flight hold little memory and the last part leaves little time with one core busy.
PART_BYTES = 16 * 1024 * 1024
#: Parts parsed at once; more than the cores only holds more blocks in memory.
PARSE_THREADS = max(1, min(4, os.cpu_count() or 1))


@dataclass(frozen=True)
class PointBox:
    """How a point click becomes a square box centred on the click.

    Either a fixed ``side`` in pixels, or ``side = factor * subject metadata[key]``
    (Galaxy Zoo: Clump Scout: 2.5 x ``#fwhmImagePix``).
    """

    side: float | None = None
    factor: float | None = None
    key: str | None = None

    @classmethod
    def parse(cls, spec) -> PointBox | None:
        """Accept a number (side), ``(factor, key)``, ``{"factor":, "key":}`` or ``"2.5*#fwhmImagePix"``."""
        if spec is None or isinstance(spec, PointBox):
            return spec
        if isinstance(spec, (int, float)):
            if not spec > 0:
                raise ValueError(f"point_box side must be positive, got {spec!r}")
            return cls(side=float(spec))
        if isinstance(spec, dict):
            return cls(factor=float(spec["factor"]), key=str(spec["key"]))
        if isinstance(spec, (tuple, list)) and len(spec) == 2:
            return cls(factor=float(spec[0]), key=str(spec[1]))
        if isinstance(spec, str):
            factor, sep, key = spec.partition("*")
            try:
                return cls(side=float(spec)) if not sep else cls(factor=float(factor), key=key.strip())
            except ValueError:
                pass
        raise ValueError(
            f"point_box {spec!r} not understood: give a side in pixels (10), "
            "or factor and metadata key (\"2.5*#fwhmImagePix\")"
        )

    def describe(self) -> str:
        return f"{self.side}" if self.side is not None else f"{self.factor}*{self.key}"


class ClassificationExport(ReadLimits, Loader):
    """Zooniverse classification export CSV (classic and new front end)."""

    short_name = "classifications"
    priority = 10
    extensions = (".csv", ".csv.gz")

    workflow_id = param.Integer(default=None, allow_None=True,
                                doc="Keep only this workflow; rows of others are counted in the report.")
    workflow_version = param.Parameter(default=None, doc=(
        'Keep only these versions: exact ("50.46") or a major version ("50"), one string or a list. Versions '
        'are strings: "13.10" is not "13.1".'))
    tasks = param.Parameter(default=None, doc="Drawing tasks to take marks from, one name or a list (default: "
                                              "every task that holds marks).")
    point_box = param.Parameter(default=None, doc=(
        'Turn point clicks into square boxes: a side in pixels, or a factor times a subject metadata key '
        '("2.5*#fwhmImagePix", the Clump Scout rule). Default: points stay points.'))
    use_cache = param.Boolean(default=True, doc="Reuse the Parquet cache of an earlier parse of the same file "
                                                "and options.")
    progress = param.Callable(default=None, allow_None=True, doc=(
        "Called with the number of rows read so far after each part of the file while it is parsed; not "
        "called on a cache hit."))

    @classmethod
    def identify(cls, path: Path, head: bytes) -> bool:
        header = set(csv_header(head))
        return {"classification_id", "annotations", "subject_ids"} <= header

    def read(self, path: Path) -> LoadResult:
        path = Path(path)
        box = PointBox.parse(self.point_box)
        tasks = [self.tasks] if isinstance(self.tasks, str) else self.tasks
        # The limits decide whether a file is read, not what is read from it: not in the cache key.
        options = {
            "workflow_id": self.workflow_id,
            "workflow_version": _versions(self.workflow_version),
            "tasks": None if tasks is None else sorted(str(t) for t in tasks),
            "point_box": None if box is None else box.describe(),
        }
        return cached_load(
            path, self.short_name, options,
            lambda: _parse_export(path, options["workflow_id"], options["workflow_version"],
                                  options["tasks"], box, self.progress, _Limits(**self.limits)),
            use_cache=self.use_cache,
        )


    def read_into(self, path: Path, sink) -> LoadReport:
        """Parse ``path`` part by part into ``sink`` (``sink.add(classifications, marks, mark_vertices, circle_handles)`` per part,
        ``sink.reset()`` if reading must start again); the report, its tables left to the sink.

        The parts are not finished (`finish_tables`) and no cache is used: this is how an
        export larger than memory is read (`project.store`).
        """
        path = Path(path)
        box = PointBox.parse(self.point_box)
        tasks = [self.tasks] if isinstance(self.tasks, str) else self.tasks
        return _parse_export(path, self.workflow_id, _versions(self.workflow_version),
                             None if tasks is None else sorted(str(t) for t in tasks), box, self.progress,
                             _Limits(**self.limits), sink=sink)


def read_classifications(path, workflow_id=None, workflow_version=None, tasks=None,
                         point_box=None, use_cache: bool = True, progress=None,
                         max_row_bytes: int = MAX_ROW_BYTES, max_expansion: float = MAX_EXPANSION
                         ) -> LoadResult:
    """Read a classification export into canonical ``classifications`` and ``marks``.

    Parameters
    ----------
    path : str or path-like
        The export CSV (optionally gzipped).
    workflow_id : int, optional
        Keep only this workflow; rows of others are counted in the report.
    workflow_version : str or list of str, optional
        Keep only these versions: exact (``"50.46"``) or a major version (``"50"``).
        Versions are strings: ``"13.10"`` is not ``"13.1"``.
    tasks : str or list of str, optional
        Drawing tasks to take marks from (default: every task that holds marks).
    point_box : number, str, tuple or dict, optional
        Turn point clicks into square boxes: a side in pixels, or a factor times a
        subject metadata key (``"2.5*#fwhmImagePix"``, the Clump Scout rule).
    use_cache : bool
        Reuse the Parquet cache of an earlier parse of the same file and options.
    progress : callable, optional
        Called with the number of rows read so far after each
        part of the file (`PART_BYTES`) while it is parsed; not called on a cache hit.
    max_row_bytes : int
        Rows up to this long always load; a longer one (or a quote never closed) is a
        `FormatError` naming its line, unless it fits in a block the reader takes whole.
    max_expansion : float
        A gzipped export may decompress to at most this many times its size (and always
        to `~data_loaders.base.MIN_EXPANSION_BYTES`); past that, a `FormatError`.

    Returns
    -------
    LoadResult
        ``.classifications``, ``.marks``, ``.mark_vertices`` (the outlines of marks drawn
        through their vertices), ``.circle_handles`` (the handle angles of classic circles, which
        turn a triangle: `data_loaders.schema.CIRCLE_HANDLES`) and ``.report``.
    """
    return ClassificationExport(workflow_id=workflow_id, workflow_version=workflow_version, tasks=tasks,
                                point_box=point_box, use_cache=use_cache, progress=progress,
                                max_row_bytes=max_row_bytes, max_expansion=max_expansion).read(Path(path))


def _versions(workflow_version) -> list[str] | None:
    if workflow_version is None:
        return None
    if isinstance(workflow_version, (list, tuple, set)):
        return sorted(str(v).strip() for v in workflow_version)
    if isinstance(workflow_version, float):
        raise ValueError(
            f"workflow_version {workflow_version!r} is a float; pass it as a string "
            "(\"13.10\" and \"13.1\" are different versions)"
        )
    return [str(workflow_version).strip()]


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class _Limits:
    """What a file may ask of the reader: the longest row, and how far gzip may expand it."""

    max_row_bytes: int = MAX_ROW_BYTES
    max_expansion: float = MAX_EXPANSION


def _parse_export(path: Path, workflow_id, versions, tasks, point_box, progress=None,
                  limits: _Limits = _Limits(), sink=None) -> LoadResult | LoadReport:
    header = _check_header(path)

    def parse_rows(part, lines, report):
        return _parse_rows(part, lines, workflow_id, versions, tasks, point_box, report)

    try:
        with _LineCounter(path, limits.max_expansion) as source:
            return _parse_parts(path, source, _split_parts(source, header, limits.max_row_bytes),
                                parse_rows, progress, sink)
    except _QuotesUnpaired:
        # A stray quote (or a row longer than max_row_bytes) defeats the split;
        # pyarrow's own reader then finds the rows, one block after another.
        if sink is not None:
            sink.reset()  # the parts it was given are read again
        with _LineCounter(path, limits.max_expansion) as source:
            source.read_to_end()
            return _parse_parts(path, source, _streamed_parts(source, header, limits.max_row_bytes),
                                parse_rows, progress, sink)


class _QuotesUnpaired(Exception):
    """The file cannot be split into parts at newlines between rows by counting quotes."""


class _LineCounter:
    """A binary file (decompressed when gzipped) that counts the newlines read from it.

    The count tells whether rows and lines coincide, so line numbers in the report
    need correcting only in the rare file where they do not (`_true_line_numbers`).
    Decompressing past ``max_expansion`` times the file's size raises a `FormatError`.
    """

    def __init__(self, path: Path, max_expansion: float = MAX_EXPANSION):
        self.path = path
        self.gzipped = is_gzipped(path)
        self.handle = gzip.open(path, "rb") if self.gzipped else open(path, "rb")
        self.max_expansion = max_expansion
        self.limit = expansion_limit(path, max_expansion) if self.gzipped else None
        self.bytes_read = 0
        self.lines = 0
        self.last = b"\n"

    def readinto(self, buffer: memoryview) -> int:
        size = self._guarded(self.handle.readinto, buffer)
        self._count(buffer[:size])
        return size

    def _guarded(self, read, into):
        try:
            return read(into)
        except (OSError, EOFError, zlib.error) as error:  # a truncated or corrupt gzip
            raise FormatError(f"{self.path}: cannot be read ({error})") from error

    def read_to_end(self) -> None:
        """Read (and count) the rest of the file without keeping it."""
        block = bytearray(BLOCK_SIZE)
        while self.readinto(memoryview(block)):
            pass

    def _count(self, data) -> None:
        self.bytes_read += len(data)
        if self.limit is not None and self.bytes_read > self.limit:
            raise expansion_error(self.path, self.max_expansion)
        if len(data):
            # numpy counts several times faster than bytes.count
            self.lines += int(np.count_nonzero(np.frombuffer(data, dtype=np.uint8) == NEWLINE))
            self.last = bytes(data[-1:])

    @property
    def line_count(self) -> int:
        """Lines read (a last line without a newline counts), blank lines included."""
        return self.lines + (self.last != b"\n")

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.handle.close()


NEWLINE, QUOTE = ord("\n"), ord('"')


def _csv_options(header: list[str], invalid_row_handler):
    return (
        pcsv.ParseOptions(newlines_in_values=True, invalid_row_handler=invalid_row_handler),
        pcsv.ConvertOptions(
            column_types={name: pa.string() for name in header},
            include_columns=[c for c in REQUIRED_COLUMNS + OPTIONAL_COLUMNS if c in header],
            strings_can_be_null=False,
        ),
    )


def _split_parts(source: _LineCounter, header: list[str], max_row_bytes: int = MAX_ROW_BYTES):
    """The file cut into parts at newlines between rows, each parsed by its own thread.

    A newline ends a row when the quotes before it pair up (CSV doubles the quotes
    inside a quoted field), so counting quotes finds cut points in a vectorised pass,
    without tokenising the file twice. Each part's reading runs on a parsing thread:
    both cores tokenise, and no more of the file is held than the parts in flight
    (pyarrow's streaming reader reads far ahead of its consumer). A row longer than
    ``max_row_bytes`` (or quotes that do not pair up) ends the split: `_QuotesUnpaired`.
    """
    chunks, size, first = [], 0, True
    carry = b""
    while True:
        # Each block is read once into memory of its own, after the unfinished row the
        # last one ended with; its chunk is handed on without another copy.
        block = bytearray(len(carry) + BLOCK_SIZE)
        block[:len(carry)] = carry
        end = len(carry) + source.readinto(memoryview(block)[len(carry):])
        if end == len(carry):
            break
        cut = _last_row_end(block, end)
        if cut is None:
            if end > max_row_bytes:  # no row end: a stray quote or an over-long row
                raise _QuotesUnpaired
            carry = bytes(block[:end])
            continue
        chunks.append(memoryview(block)[:cut])
        carry = bytes(block[cut:end])
        if len(carry) > max_row_bytes:  # an unfinished row already too long
            raise _QuotesUnpaired
        size += cut
        if size >= PART_BYTES:
            yield partial(_read_chunks, chunks, header, first)
            chunks, size, first = [], 0, False
    if carry:
        chunks.append(carry)
    if chunks:
        yield partial(_read_chunks, chunks, header, first)


def _last_row_end(block: bytearray, end: int) -> int | None:
    """The offset just after the last newline of ``block[:end]`` outside quotes (None if none).

    ``block`` starts between rows, so a newline is outside quotes when the quotes
    before it are even in number.
    """
    quotes = np.frombuffer(block, dtype=np.uint8, count=end) == QUOTE
    total = int(np.count_nonzero(quotes))
    while (newline := block.rfind(b"\n", 0, end)) >= 0:
        if (total - int(np.count_nonzero(quotes[newline:]))) % 2 == 0:
            return newline + 1
        end = newline
    return None


def _read_chunks(chunks: list[memoryview], header: list[str], first: bool) -> tuple[pa.Table, int]:
    """One part's chunks parsed into a table of string columns (and no rows of the wrong width).

    A row of the wrong width is also what a cut inside a quoted field looks like (a
    stray quote in an unquoted cell miscounts the quotes), so it sends the whole file
    to pyarrow's streaming reader, whose reading of such a file is the reference.
    """
    parse_options, convert_options = _csv_options(header, invalid_row_handler=None)  # raise
    tables = []
    for index, chunk in enumerate(chunks):
        read_options = pcsv.ReadOptions(
            column_names=header, skip_rows=int(first and index == 0), use_threads=False,
            # The whole chunk in one block: its cut is already known to lie between rows.
            block_size=len(chunk) + 1)
        try:
            tables.append(pcsv.read_csv(pa.py_buffer(chunk), read_options=read_options,
                                        parse_options=parse_options, convert_options=convert_options))
        except pa.ArrowInvalid as error:
            raise _QuotesUnpaired from error
    chunks.clear()  # the raw bytes are parsed: free them while the part's rows are parsed
    return pa.concat_tables(tables), 0


def _streamed_parts(source: _LineCounter, header: list[str], max_row_bytes: int = MAX_ROW_BYTES):
    """The file read by pyarrow's streaming reader, in parts of about `PART_BYTES`.

    The reader gets a stream of pyarrow's own, not ``source``: its read-ahead thread
    calling back into Python aborts the whole process when the reader stops on an
    error (pyarrow 26: "Fatal Python error: PyGILState_Release"). ``source`` has
    already been read through once, which counted its lines and held gzip to its limit.
    """
    invalid_rows, invalid_newlines = 0, 0

    def on_invalid_row(row):
        nonlocal invalid_rows, invalid_newlines
        invalid_rows += 1
        invalid_newlines += (row.text or "").count("\n")
        return "skip"

    parse_options, convert_options = _csv_options(header, on_invalid_row)
    path = source.path
    try:
        reader = pcsv.open_csv(
            pa.input_stream(str(path), compression="gzip" if source.gzipped else None),
            read_options=pcsv.ReadOptions(block_size=max_row_bytes, use_threads=False),
            parse_options=parse_options, convert_options=convert_options)
    except pa.ArrowInvalid as error:
        raise FormatError(f"{path}: not a readable CSV classification export: {error}") from error
    # The reader parses ahead on a thread of its own, so rows it rejects are counted as
    # they come and handed on with whichever part is next; the total is what matters.
    group, size, counted = [], 0, 0
    records, newlines = 1, 0  # the header, then every row the reader has handed over
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            break
        except pa.ArrowInvalid as error:
            if "straddl" in str(error):
                # Every row before the one too long has been handed over (or rejected) by now.
                line = 1 + records + invalid_rows + newlines + invalid_newlines
                problem = FormatError(
                    f"{path}: line {line}: a row longer than {max_row_bytes:,} bytes (the max_row_bytes "
                    f"limit), or a quote opened there and never closed; not read. If the row is genuine, "
                    f"pass a larger max_row_bytes")
            else:
                problem = FormatError(f"{path}: not a readable CSV classification export: {error}")
            # Destroyed now, not when the error's traceback goes: a reader stopped by an error
            # and left to the interpreter's exit aborts it ("terminate called without an
            # active exception").
            reader.close()
            del reader
            raise problem from None
        records += batch.num_rows
        for column in batch.columns:
            newlines += pc.sum(pc.count_substring(column, "\n")).as_py() or 0
        group.append(batch)
        size += batch.nbytes
        if size >= PART_BYTES:
            rejected = invalid_rows
            yield _read_nothing(pa.Table.from_batches(group), rejected - counted)
            group, size, counted = [], 0, rejected
    if group or invalid_rows > counted:
        yield _read_nothing(pa.Table.from_batches(group, schema=reader.schema), invalid_rows - counted)


def _read_nothing(table: pa.Table, wrong_width: int):
    """A part already read by the streaming reader, in the shape `_read_chunks` gives."""
    return lambda: (table, wrong_width)


def _parse_parts(path: Path, source: _LineCounter, parts, parse_rows, progress, sink=None) -> LoadResult | LoadReport:
    """Read and parse the parts on threads and gather their rows and reports in file order.

    ``parts`` yields callables that each read one part of ``source`` into a table. With a
    ``sink``, each part's (classifications, marks, mark_vertices, circle_handles) go to ``sink.add`` as
    they are parsed, nothing is gathered, and the report alone is returned (its tables are finished by
    whoever holds them, part by part: `finish_tables`).
    """
    report = LoadReport(source=str(path), format=ClassificationExport.short_name)
    classification_parts, mark_parts, vertex_parts, handle_parts, kept = [], [], [], [], []
    wrong_width = 0

    # Most of the work is in Arrow kernels that release the GIL, so parts read and
    # parse on threads while this one cuts the next; results merge in file order.
    def parse(read_part):
        table, rejected = read_part()
        part_report = LoadReport(report.source, report.format)
        if table is None or table.num_rows == 0:
            return None, part_report, 0, rejected
        # Rows are numbered within the part here, and as if each took one line when
        # gathered (header = line 1); _true_line_numbers corrects that at the end in
        # the rare file where it is not so.
        lines = np.arange(table.num_rows)
        return parse_rows(table, lines, part_report), part_report, table.num_rows, rejected

    def collect(future):
        nonlocal wrong_width
        tables, part_report, rows, rejected = future.result()
        first_line = report.rows_read + 2
        part_report.skipped_lines = {reason: [line + first_line for line in lines]
                                     for reason, lines in part_report.skipped_lines.items()}
        report.merge(part_report)
        report.rows_read += rows
        wrong_width += rejected
        if tables is not None and sink is not None:
            sink.add(*tables)
            kept.append(len(tables[0]))
        elif tables is not None:
            classification_parts.append(tables[0])
            mark_parts.append(tables[1])
            vertex_parts.append(tables[2])
            handle_parts.append(tables[3])
        if progress is not None:
            progress(report.rows_read)

    with ThreadPoolExecutor(max_workers=PARSE_THREADS) as pool:
        pending = deque()
        for part in parts:
            pending.append(pool.submit(parse, part))
            if len(pending) > PARSE_THREADS:  # bound the parts held in memory
                collect(pending.popleft())
        while pending:
            collect(pending.popleft())

    if wrong_width or source.line_count != report.rows_read + 1:
        _true_line_numbers(path, report, wrong_width)
    if not classification_parts and not kept:
        raise FormatError(_no_rows_message(path, report))
    if sink is not None:
        return report
    classifications = pd.concat(classification_parts, ignore_index=True)
    marks = pd.concat(mark_parts, ignore_index=True)
    mark_vertices = _sorted_by(conform(pd.concat(vertex_parts, ignore_index=True), "mark_vertices"),
                               ["mark_id", "vertex"])
    circle_handles = _sorted_by(conform(pd.concat(handle_parts, ignore_index=True), "circle_handles"), ["mark_id"])
    del classification_parts[:], mark_parts[:], vertex_parts[:], handle_parts[:]  # copies now: freed before finishing
    classifications, marks = finish_tables(classifications, marks, report)
    return LoadResult({"classifications": classifications, "marks": marks, "mark_vertices": mark_vertices,
                       "circle_handles": circle_handles}, report)


def _no_rows_message(path: Path, report: LoadReport) -> str:
    """Why a file gave no rows at all: it has none, or every one was rejected (which, where)."""
    if not report.rows_skipped:
        return f"{path}: classification export has a header but no rows"
    reasons = "; ".join(
        f"{reason}: line{'s' if count > 1 else ''} "
        f"{', '.join(str(line) for line in report.skipped_lines.get(reason, [])[:10])}"
        f"{' ...' if count > 10 else ''}"
        for reason, count in report.skipped.items())
    return (f"{path}: classification export has no readable row: {report.rows_skipped:,} "
            f"row(s) rejected ({reasons})")


def _check_header(path: Path) -> list[str]:
    from .base import read_head

    header = csv_header(read_head(path))
    missing = [column for column in REQUIRED_COLUMNS if column not in header]
    if missing:
        raise FormatError(
            f"{path}: not a Zooniverse classification export: line 1 lacks column(s) "
            f"{', '.join(missing)} (expected a header with {', '.join(REQUIRED_COLUMNS)})"
        )
    return header


def _true_line_numbers(path: Path, report: LoadReport, invalid_rows: int) -> None:
    """Renumber reported lines when rows span lines, and count rows of the wrong width.

    Only reached when the file has quoted newlines, blank lines or rows pyarrow
    rejected, so the slow walk with the csv module is the exception, not the rule.
    """
    csv.field_size_limit(1 << 30)
    with _LineCounter(path) as source, io.TextIOWrapper(source.handle, encoding="utf-8", errors="replace", newline="") as text:
        reader = csv.reader(text)
        width = len(next(reader))
        record_lines, rejected = [], []
        start = reader.line_num + 1
        for record in reader:
            if record:  # pyarrow skips blank lines too
                (record_lines if len(record) == width else rejected).append(start)
            # Lines end at "\n", as the fast path, grep -n and sed count them: a lone "\r" in a quoted
            # cell is no line break (the csv module's own line count takes it for one).
            start += 1 + sum(field.count("\n") for field in record)
    record_lines = np.asarray(record_lines)
    for reason, lines in report.skipped_lines.items():
        report.skipped_lines[reason] = [int(record_lines[line - 2]) for line in lines]
    # Each rejected row is one the csv module saw with the wrong width; fall back to
    # pyarrow's count if the two parsers disagree about which rows those were.
    if invalid_rows:
        report.skip("wrong number of columns", rejected[:invalid_rows] + [0] * (invalid_rows - len(rejected)))
        report.rows_read += invalid_rows


# --------------------------------------------------------------------------- rows


def _integers(column: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Non-negative int64 ids and a validity mask (``"1784204.0"`` counts as 1784204)."""
    values, valid = parse_integers(column)
    return values, valid & (values >= 0)


def _first_subject_ids(column: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first id of ``subject_ids`` (ids may be joined with ';'), validity, and multi-id rows."""
    single = pc.match_substring_regex(column, r"^\d{1,18}$")
    if pc.all(single).as_py() is not False:  # one plain id per row: nothing to trim or split
        return (pc.cast(column, pa.int64()).to_numpy(zero_copy_only=False),
                single.to_numpy(zero_copy_only=False), np.zeros(len(column), dtype=bool))
    trimmed = pc.utf8_trim_whitespace(column)
    valid = pc.match_substring_regex(trimmed, r"^\d{1,18}(\.0*)?(\s*;\s*\d{1,18}(\.0*)?)*$")
    first = pc.replace_substring_regex(pc.if_else(valid, trimmed, "0"), r"(\.0*)?(\s*;.*)?$", "")
    multi = pc.match_substring(trimmed, ";").to_numpy(zero_copy_only=False)
    return pc.cast(first, pa.int64()).to_numpy(), valid.to_numpy(zero_copy_only=False), multi


def _flags(column) -> np.ndarray:
    lowered = pc.utf8_lower(pc.utf8_trim_whitespace(column))
    return pc.is_in(lowered, pa.array(["true", "t", "1", "yes"])).to_numpy(zero_copy_only=False)


def _not_json_object(column: pa.Array) -> np.ndarray:
    """Cells that hold something but not a JSON object (``{...}``): a cut, text, a list.

    Screened by the braces around the cell, not parsed: parsing every row's metadata
    would nearly double the time to read an export, and the fields zoolens takes from
    it are found by pattern. A cell cut short or replaced, the usual damage, is caught.
    """
    braced = pc.and_(pc.starts_with(column, "{"), pc.ends_with(column, "}"))
    suspect = np.flatnonzero(~braced.to_numpy(zero_copy_only=False))
    if not len(suspect):
        return np.zeros(len(column), dtype=bool)
    trimmed = pc.utf8_trim_whitespace(column.take(pa.array(suspect)))
    fine = pc.or_(pc.equal(trimmed, ""),
                  pc.and_(pc.starts_with(trimmed, "{"), pc.ends_with(trimmed, "}")))
    broken = np.zeros(len(column), dtype=bool)
    broken[suspect[~fine.to_numpy(zero_copy_only=False)]] = True
    return broken


def _metadata_field(metadata, key: str) -> pa.Array:
    """A top-level string field of the metadata JSON, found by pattern rather than parsing it all."""
    found = pc.extract_regex(metadata, rf'"{key}"\s*:\s*"(?P<value>[^"]*)"')
    return pc.struct_field(found, "value")


def _metadata_numbers(subject_data: pa.Array, key: str) -> np.ndarray:
    """A numeric subject metadata value per row from ``subject_data`` JSON (NaN where absent).

    Found by pattern in one vectorised pass: ``subject_data`` holds one subject's
    metadata per row, and parsing all of it as JSON would cost more than the marks.
    """
    bare = re.escape(key.lstrip("#!"))
    pattern = rf'"[#!]?{bare}"\s*:\s*"?(?P<value>-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"?\s*[,}}]'
    found = pc.struct_field(pc.extract_regex(subject_data, pattern), "value")
    return pc.cast(found, pa.float64()).to_numpy(zero_copy_only=False)


def _parse_rows(part, lines, workflow_id, versions, tasks, point_box, report):
    names = part.schema.names
    n = part.num_rows
    keep = np.ones(n, dtype=bool)

    def reject(mask, reason):
        nonlocal keep
        bad = keep & mask
        report.skip(reason, lines[bad])
        keep &= ~mask

    classification_ids, ok = _integers(part.column("classification_id"))
    reject(~ok, "classification_id is not an integer")
    workflow_ids, ok = _integers(part.column("workflow_id"))
    reject(~ok, "workflow_id is not an integer")
    subject_ids, ok, multi_subject = _first_subject_ids(part.column("subject_ids"))
    reject(~ok, "subject_ids holds no subject id")
    created_at = parse_timestamps(part.column("created_at"))
    reject(created_at.isna().to_numpy(), "created_at is not a date")
    version = pc.utf8_trim_whitespace(part.column("workflow_version"))

    seen = report.counts.setdefault("workflows", {})
    pairs = pa.table({"workflow": workflow_ids[keep], "version": version.filter(pa.array(keep))})
    for wid, ver, count in sorted(zip(*pairs.group_by(["workflow", "version"]).aggregate(
            [([], "count_all")]).to_pydict().values())):
        seen.setdefault(str(wid), {})
        seen[str(wid)][ver] = seen[str(wid)].get(ver, 0) + int(count)

    if workflow_id is not None:
        reject(workflow_ids != workflow_id, f"other workflow (kept workflow {workflow_id})")
    if versions is not None:
        major = pc.replace_substring_regex(version, r"\..*$", "")
        wanted = pc.or_(pc.is_in(version, pa.array(versions, pa.string())),
                        pc.is_in(major, pa.array([v for v in versions if "." not in v], pa.string())))
        reject(~wanted.to_numpy(zero_copy_only=False), f"other workflow version (kept {', '.join(versions)})")

    if "metadata" in names:
        # Without it the front end, and so the meaning of the marks, is unknown.
        reject(_not_json_object(part.column("metadata").combine_chunks()), "metadata is not a JSON object")
    if "subject_data" in names:
        # Only a point's box size is read from it, and a mark without one is counted there.
        broken = _not_json_object(part.column("subject_data").combine_chunks())
        if np.count_nonzero(broken & keep):
            report.counts["subject_data_not_json"] = int(np.count_nonzero(broken & keep))

    rows = np.flatnonzero(keep)
    # The metadata JSON is half of an export's bytes: search only the rows still kept.
    metadata = part.column("metadata") if "metadata" in names else pa.array([""] * n)
    metadata = metadata if len(rows) == n else metadata.take(pa.array(rows))
    fem = pc.match_substring_regex(metadata, r'"classifier_version"\s*:\s*"[2-9]').to_numpy(
        zero_copy_only=False)
    annotations = part.column("annotations")
    annotations = (annotations if len(rows) == n else annotations.take(pa.array(rows))).combine_chunks()
    point_sides = None
    if point_box is not None:
        point_sides = np.full(len(rows), point_box.side if point_box.side else np.nan)
        if point_box.key and "subject_data" in names:
            scales = _metadata_numbers(part.column("subject_data").take(pa.array(rows)), point_box.key)
            point_sides = point_box.factor * scales
    marks, parsed_ok = extract_marks(annotations, fem, tasks, point_sides,
                                      point_box.key if point_box else None, report, metadata)
    report.skip("annotations is not valid JSON (a list of tasks)", lines[rows[~parsed_ok]])
    keep[rows[~parsed_ok]] = False
    # marks refer to positions in `rows`; re-index to kept rows only
    position_in_kept = np.cumsum(parsed_ok) - 1
    mark_rows = position_in_kept[marks.pop("row")]
    vertices = {name: marks.pop(name) for name in VERTEX_COLUMNS}
    handles = {name: marks.pop(name) for name in HANDLE_COLUMNS}

    kept = np.flatnonzero(keep)
    user_ids, user_ok = _integers(part.column("user_id"))
    user_names = part.column("user_name").take(pa.array(kept))
    kept_metadata = metadata if parsed_ok.all() else metadata.filter(pa.array(parsed_ok))
    started = parse_timestamps(_metadata_field(kept_metadata, "started_at"))
    finished = parse_timestamps(_metadata_field(kept_metadata, "finished_at"))
    classifications = pd.DataFrame({
        "classification_id": classification_ids[kept],
        "subject_id": subject_ids[kept],
        "workflow_id": workflow_ids[kept],
        "workflow_version": pd.array(version.take(pa.array(kept)), dtype="string"),
        "user": pd.array(user_names, dtype="string"),
        "user_id": pd.array(np.where(user_ok[kept], user_ids[kept], 0), dtype="Int64"),
        "created_at": created_at.iloc[kept].array,
        "n_marks": np.bincount(mark_rows, minlength=len(kept)).astype(np.int64),
        "gold_standard": (_flags(part.column("gold_standard"))[kept]
                          if "gold_standard" in names else np.zeros(len(kept), bool)),
        "expert": (_flags(part.column("expert"))[kept]
                   if "expert" in names else np.zeros(len(kept), bool)),
        "classifier": pd.array(pc.if_else(pa.array(fem[parsed_ok]), "fem", "pfe"), dtype="string"),
        "started_at": started.array,
        "finished_at": finished.array,
        "multi_subject": multi_subject[kept],
    })
    classifications.loc[~user_ok[kept], "user_id"] = pd.NA
    marks_table = pd.DataFrame(marks)
    marks_table.insert(0, "classification_id", classification_ids[kept][mark_rows])
    marks_table.insert(1, "subject_id", subject_ids[kept][mark_rows])
    marks_table.insert(2, "user", pd.array(user_names.take(pa.array(mark_rows, pa.int64())),
                                           dtype="string"))
    marks_table.insert(0, "mark_id",
                       marks_table["classification_id"] * MARK_ID_STRIDE + marks_table["position"])
    mark_ids = marks_table["mark_id"].to_numpy()
    return (classifications, marks_table, _vertex_table(vertices, mark_ids),
            pd.DataFrame({"mark_id": mark_ids[handles["handle_mark"]], "angle": handles["handle_angle"]}))


def _vertex_table(vertices: dict, mark_ids: np.ndarray) -> pd.DataFrame:
    """The `VERTEX_COLUMNS` of a part as ``mark_vertices`` rows: mark id, vertex number, x, y."""
    of_mark = vertices["vertex_mark"]
    # Vertices come grouped by mark, in order: a vertex's number is its distance from its mark's first.
    first = np.r_[0, np.flatnonzero(np.diff(of_mark)) + 1] if len(of_mark) else np.zeros(0, np.int64)
    starts = np.repeat(first, np.diff(np.r_[first, len(of_mark)]))
    return pd.DataFrame({"mark_id": mark_ids[of_mark], "vertex": np.arange(len(of_mark)) - starts,
                         "x": vertices["vertex_x"], "y": vertices["vertex_y"]})


# --------------------------------------------------------------------------- finishing


def finish_tables(classifications: pd.DataFrame, marks: pd.DataFrame, report: LoadReport):
    """Flag repeat classifications, conform the tables and fill the report's counts.

    Works on every row of a set of subjects at once (repeats are per volunteer and subject), so
    a store can finish an export part by part (`project.store`).
    """
    classifications = _sorted_by(classifications, ["created_at", "classification_id"])
    classifications["repeat"] = classifications.duplicated(["user", "subject_id"], keep="first")
    classifications["duration_s"] = (
        classifications["finished_at"] - classifications["started_at"]).dt.total_seconds()
    classifications = conform(classifications, "classifications")
    marks = conform(marks.drop(columns=["position"], errors="ignore"), "marks")
    marks = _sorted_by(marks, ["mark_id"])

    report.rows_loaded = len(classifications)
    counts = report.counts
    counts["marks"] = len(marks)
    counts["marks_by_kind"] = {str(k): int(v) for k, v in marks["kind"].value_counts().items()}
    counts["marks_by_task"] = {str(k): int(v) for k, v in marks["task"].value_counts().items()}
    counts["empty_classifications"] = int((classifications["n_marks"] == 0).sum())
    counts["repeat_classifications"] = int(classifications["repeat"].sum())
    counts["logged_out_classifications"] = int(classifications["user_id"].isna().sum())
    counts["multi_subject_classifications"] = int(classifications["multi_subject"].sum())
    counts["classifiers"] = {str(k): int(v) for k, v in
                             classifications["classifier"].value_counts().items()}
    counts["subjects"] = int(classifications["subject_id"].nunique())
    counts["volunteers"] = int(classifications["user"].nunique())
    counts.setdefault("degenerate_marks", {})
    counts.setdefault("marks_not_loaded", {})
    return classifications, marks


def _sorted_by(table: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``table`` stably sorted by ``columns``, with a fresh index.

    Exports list classifications in id order, so the sort usually has nothing to
    do: checking that takes a few comparisons per row instead of a sort.
    """
    keys = [table[column].to_numpy(dtype="datetime64[ns]" if isinstance(
        table[column].dtype, pd.DatetimeTZDtype) else None) for column in columns]
    in_order = np.ones(max(len(table) - 1, 0), dtype=bool)
    tied = np.ones_like(in_order)
    for key in keys:
        later, earlier = key[1:], key[:-1]
        in_order &= ~tied | (later >= earlier)
        tied &= later == earlier
    if in_order.all():
        return table.reset_index(drop=True)
    return table.sort_values(columns, kind="stable", ignore_index=True)
