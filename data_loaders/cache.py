"""On-disk Parquet cache of parsed files.

A parsed export is stored under a key made of the source file's content hash,
the reader's options and the loaders' own source code, so a second open of a big
export reads Parquet instead of parsing CSV and JSON again, and any change to
the file, the options or the code that parses it misses the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Callable

import pandas as pd

from .base import LoadReport, LoadResult

@lru_cache(maxsize=1)
def loader_code_digest() -> str:
    """SHA-256 of this package's Python sources: a new zoolens never reads an older parse.

    A version number bumped by hand was forgotten once already; hashing the code
    (about 200 KB, read once per process) cannot be.
    """
    digest = hashlib.sha256()
    for source in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(source.name.encode())
        digest.update(source.read_bytes())
    return digest.hexdigest()


def cache_dir() -> Path:
    """Where parsed files are cached: ``$ZOOLENS_CACHE_DIR`` or ``~/.cache/zoolens``."""
    configured = os.environ.get("ZOOLENS_CACHE_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "zoolens"


def file_digest(path: Path) -> str:
    """SHA-256 of a file's content, read in 4 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(4 * 1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_key(path: Path, format: str, options: dict) -> str:
    material = json.dumps(
        {"file": file_digest(path), "format": format, "options": options,
         "code": loader_code_digest()},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(material.encode()).hexdigest()[:32]


def cached_load(path: Path, format: str, options: dict, parse: Callable[[], LoadResult],
                use_cache: bool = True) -> LoadResult:
    """Return the cached tables for (file content, options), parsing and storing them on a miss."""
    if not use_cache:
        return parse()
    entry = cache_dir() / format / cache_key(path, format, options)
    report_file = entry / "report.json"
    if report_file.exists():
        try:
            report = LoadReport.from_dict(json.loads(report_file.read_text()))
            tables = {table.stem: pd.read_parquet(table) for table in entry.glob("*.parquet")}
            report.source = str(path)
            return LoadResult(tables, report)
        except (OSError, ValueError, KeyError):
            # A damaged entry is parsed again and overwritten, never trusted.
            shutil.rmtree(entry, ignore_errors=True)
    result = parse()
    _store(entry, result)
    return result


def _store(entry: Path, result: LoadResult) -> None:
    entry.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=entry.parent, prefix=".partial-"))
    try:
        for name, table in result.tables.items():
            table.to_parquet(staging / f"{name}.parquet", index=False)
        (staging / "report.json").write_text(json.dumps(result.report.to_dict(), default=str))
        # Rename is atomic, so a reader never sees half an entry.
        os.replace(staging, entry)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
