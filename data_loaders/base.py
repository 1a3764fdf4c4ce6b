"""The loader layer's base class, its format registry, and the load report.

Modelled on astropy's unified I/O registry: every format module defines one
`Loader` subclass with a ``short_name``; defining the class registers it.
`read(path, format=None)` uses an explicit ``format`` when given and otherwise
asks every registered loader whether it recognises the file (from its first
bytes where possible, its extension otherwise). The highest priority wins, a tie
is an "ambiguous format" error, and no match is a "format could not be
identified" error that lists the known formats.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
import param

#: How many bytes of a file the identifiers get to look at.
HEAD_BYTES = 64 * 1024

#: How many example line numbers a report keeps per skip reason; the count is always exact.
MAX_EXAMPLE_LINES = 50

#: How many times its own size a gzipped file may decompress to, by default. Real exports
#: compress 5 to 20 times; a file built to fill memory (a "gzip bomb") hundreds of times.
MAX_EXPANSION = 100
#: Decompressed bytes always allowed, whatever the ratio: small files of repetitive text
#: compress far better than exports do, and this much is harmless to hold.
MIN_EXPANSION_BYTES = 2**20

#: The longest row (in bytes) a CSV reader must accept by default; a longer one may be an error
#: naming its line. Real export rows are kilobytes; pyarrow must hold a whole row in one block.
MAX_ROW_BYTES = 64 * 2**20


class FormatError(ValueError):
    """A file is not what it claims to be, or its format cannot be identified."""


@dataclass
class LoadReport:
    """What a loader read, kept and skipped, so nothing is dropped silently.

    Line numbers count the header as line 1, so the first data row is line 2.
    """

    source: str
    format: str
    rows_read: int = 0
    rows_loaded: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    skipped_lines: dict[str, list[int]] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)

    def skip(self, reason: str, lines) -> None:
        """Count rows skipped for ``reason``; ``lines`` are their line numbers."""
        if not len(lines):
            return
        self.skipped[reason] = self.skipped.get(reason, 0) + len(lines)
        kept = self.skipped_lines.setdefault(reason, [])
        # Only the example lines become Python ints: a filter can skip millions of rows.
        kept.extend(int(line) for line in lines[: max(0, MAX_EXAMPLE_LINES - len(kept))])

    def merge(self, other: LoadReport) -> None:
        """Add another report's skips and counts (of a later part of the same file) to this one."""
        self.rows_loaded += other.rows_loaded
        for reason, count in other.skipped.items():
            self.skipped[reason] = self.skipped.get(reason, 0) + count
            kept = self.skipped_lines.setdefault(reason, [])
            kept.extend(other.skipped_lines.get(reason, [])[: max(0, MAX_EXAMPLE_LINES - len(kept))])
        _add_counts(self.counts, other.counts)

    @property
    def rows_skipped(self) -> int:
        return sum(self.skipped.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "format": self.format,
            "rows_read": self.rows_read,
            "rows_loaded": self.rows_loaded,
            "rows_skipped": self.rows_skipped,
            "skipped": {
                reason: {"rows": count, "lines": self.skipped_lines.get(reason, [])}
                for reason, count in self.skipped.items()
            },
            **self.counts,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoadReport:
        data = dict(data)
        skipped = data.pop("skipped", {})
        data.pop("rows_skipped", None)
        report = cls(
            source=data.pop("source"),
            format=data.pop("format"),
            rows_read=data.pop("rows_read", 0),
            rows_loaded=data.pop("rows_loaded", 0),
        )
        report.skipped = {reason: entry["rows"] for reason, entry in skipped.items()}
        report.skipped_lines = {reason: list(entry["lines"]) for reason, entry in skipped.items()}
        report.counts = data
        return report

    def summary(self) -> str:
        """A short human-readable account, for the CLI and notifications."""
        lines = [
            f"{self.source} ({self.format}): {self.rows_read:,} rows read, "
            f"{self.rows_loaded:,} loaded, {self.rows_skipped:,} skipped"
        ]
        for reason, count in self.skipped.items():
            examples = ", ".join(str(n) for n in self.skipped_lines.get(reason, [])[:10])
            more = " ..." if count > 10 else ""
            lines.append(f"  skipped {count:,}: {reason} (lines {examples}{more})")
        for key, value in self.counts.items():
            number = isinstance(value, int) and not isinstance(value, bool)
            lines.append(f"  {key}: {value:,}" if number else f"  {key}: {value}")
        return "\n".join(lines)


def _add_counts(into: dict, more: dict) -> None:
    """Sum nested count dictionaries; values other than numbers and dicts are replaced."""
    for key, value in more.items():
        if isinstance(value, dict):
            _add_counts(into.setdefault(key, {}), value)
        elif isinstance(value, (int, float)) and isinstance(into.get(key), (int, float)):
            into[key] += value
        else:
            into[key] = value


@dataclass
class LoadResult:
    """Canonical tables read from one file, with the report of how they were read.

    Tables are reachable as attributes: ``result.marks``, ``result.subjects``...
    """

    tables: dict[str, pd.DataFrame]
    report: LoadReport

    def __getattr__(self, name: str) -> pd.DataFrame:
        tables = self.__dict__.get("tables", {})
        if name in tables:
            return tables[name]
        raise AttributeError(
            f"{type(self).__name__} has no table {name!r}; it holds {sorted(tables)}"
        )


class Loader(param.Parameterized):
    """Base class of every file format zoolens reads.

    A subclass sets ``short_name`` (what users pass as ``format=``), a one-line
    docstring, ``extensions`` it usually has, declares its reading options as
    documented ``param`` parameters, and implements `identify` and `read`. Defining
    the subclass registers it. An option the loader does not declare is an error
    that lists the ones it does (`Loader.options`).
    """

    short_name: ClassVar[str] = ""
    #: Higher wins when several loaders recognise a file.
    priority: ClassVar[int] = 0
    extensions: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("short_name"):
            REGISTRY[cls.short_name] = cls

    def __init__(self, **options):
        unknown = sorted(set(options) - set(self.options()))
        if unknown:
            known = ", ".join(self.options()) or "none"
            raise ValueError(f"the {self.short_name} loader has no option {', '.join(map(repr, unknown))}; "
                             f"its options: {known}")
        super().__init__(**options)

    @classmethod
    def options(cls) -> dict[str, str]:
        """Option name -> what it does, for every reading option this format takes."""
        return {name: parameter.doc for name, parameter in cls.param.objects("existing").items() if name != "name"}

    def values(self) -> dict[str, Any]:
        """This loader's option values, by name."""
        return {name: getattr(self, name) for name in self.options()}

    @classmethod
    def identify(cls, path: Path, head: bytes) -> bool:
        """Whether the file whose first bytes are ``head`` is in this format."""
        return path.name.lower().endswith(cls.extensions) if cls.extensions else False

    def read(self, path: Path):
        """Read ``path`` with this loader's options into a `LoadResult`."""
        raise NotImplementedError


class ReadLimits(param.Parameterized):
    """What a text file may ask of its reader; a loader of text formats takes these options too."""

    max_row_bytes = param.Integer(default=MAX_ROW_BYTES, bounds=(1, None), doc=(
        "Rows up to this many bytes always load; a longer one (or a quote never closed) is an error "
        "naming its line, unless it fits in a block the reader takes whole."))
    max_expansion = param.Number(default=MAX_EXPANSION, bounds=(0, None), inclusive_bounds=(False, True), doc=(
        "A gzipped file may decompress to at most this many times its size (and always to "
        f"{MIN_EXPANSION_BYTES // 2**20} MiB); past that, an error naming the file and the limit."))

    @property
    def limits(self) -> dict[str, Any]:
        """The limits, as keyword arguments (of `data_loaders._csv.read_text_csv`)."""
        return {name: getattr(self, name) for name in ReadLimits.param if name != "name"}


#: Short format name -> Loader subclass. Filled by the format modules on import.
REGISTRY: dict[str, type[Loader]] = {}


def is_gzipped(path: Path) -> bool:
    """Whether the file starts with the gzip signature (its name does not matter)."""
    with open(path, "rb") as handle:
        return handle.read(2) == b"\x1f\x8b"


def expansion_limit(path: Path, max_expansion: float = MAX_EXPANSION) -> int:
    """How many decompressed bytes a gzipped ``path`` may give: ``max_expansion`` times its size."""
    if not max_expansion > 0:
        raise ValueError(f"max_expansion must be a positive ratio, got {max_expansion!r}")
    return max(int(max_expansion * path.stat().st_size), MIN_EXPANSION_BYTES)


def expansion_error(path: Path, max_expansion: float) -> FormatError:
    """The error for a gzipped file that decompresses to more than its limit allows."""
    limit = expansion_limit(path, max_expansion)
    return FormatError(
        f"{path}: decompresses to more than {limit:,} bytes, over {max_expansion:g} times its "
        f"{path.stat().st_size:,} compressed bytes (the max_expansion limit); not read further. "
        f"If the file is genuine, pass a larger max_expansion"
    )


def read_head(path: Path, size: int = HEAD_BYTES) -> bytes:
    """The first ``size`` bytes of a file, decompressed when it is gzipped."""
    with open(path, "rb") as handle:
        head = handle.read(size)
    if head[:2] == b"\x1f\x8b":
        try:
            with gzip.open(path, "rb") as handle:
                head = handle.read(size)
        except (OSError, EOFError) as error:
            raise FormatError(f"{path}: looks gzipped but cannot be decompressed ({error})") from error
    return head


def csv_header(head: bytes) -> list[str]:
    """The column names on the first line of a CSV file's first bytes ([] if none)."""
    import csv
    import io

    text = head.decode("utf-8-sig", errors="replace")
    first_line = text.split("\n", 1)[0].split("\r", 1)[0]
    if not first_line:
        return []
    try:
        return next(csv.reader(io.StringIO(first_line)), [])
    except csv.Error:  # a NUL byte, say: not a CSV header
        return []


def known_formats() -> str:
    return ", ".join(sorted(REGISTRY))


def get_loader(format: str) -> type[Loader]:
    """The loader class registered under ``format``; an error lists the known ones."""
    try:
        return REGISTRY[format]
    except KeyError:
        raise FormatError(f"unknown format {format!r}; known formats: {known_formats()}") from None


def identify_format(path: str | os.PathLike) -> str:
    """The short name of the format of ``path``, decided from its content."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    head = read_head(path)
    matches = [cls for cls in REGISTRY.values() if cls.identify(path, head)]
    if not matches:
        raise FormatError(
            f"{path}: format could not be identified; pass format= one of: {known_formats()}"
        )
    best = max(cls.priority for cls in matches)
    winners = sorted(cls.short_name for cls in matches if cls.priority == best)
    if len(winners) > 1:
        raise FormatError(
            f"{path}: ambiguous format, it could be any of {', '.join(winners)}; pass format="
        )
    return winners[0]


def read(path: str | os.PathLike, format: str | None = None, **options):
    """Read any supported file into canonical tables.

    Parameters
    ----------
    path : str or path-like
        The file to read.
    format : str, optional
        Short format name (see `known_formats`); identified from the content if omitted.
    **options
        The format's reading options (`Loader.options`); one it does not take is an error.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    format = format or identify_format(path)
    return get_loader(format)(**options).read(path)

