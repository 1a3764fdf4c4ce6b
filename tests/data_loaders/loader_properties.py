"""What every loader must do with junk, as hypothesis strategies and one shared check.

A loader fed random bytes, or a real header followed by a mix of real and
random rows, may raise `FormatError` (the documented error for a file that is
not what it claims) and nothing else; when it loads, every row read is either
loaded or skipped with a reason.
"""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from data_loaders import FormatError

#: Characters that stress CSV and JSON parsing: separators, quotes, brackets, escapes, unicode.
JUNK_ALPHABET = st.sampled_from(list(',;"\'{}[]:.-+=@\\\t\r\n 0123456789eEaxyzNnTF#!é漢') + ["\u2028"])

#: Modest example counts keep the whole suite fast (set ZOOLENS_PROPERTY_EXAMPLES for a longer
#: hunt); hypothesis' database replays failures.
PROPERTY_SETTINGS = settings(max_examples=int(os.environ.get("ZOOLENS_PROPERTY_EXAMPLES", "40")), deadline=None,
                             suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                    HealthCheck.too_slow])

junk_bytes = st.binary(max_size=4096)
junk_line = st.text(JUNK_ALPHABET, max_size=120)


def rows_from(real_lines: list[str]):
    """Lines that are real rows of a file, junk, or real rows with a random cut or insertion."""
    real = st.sampled_from(real_lines)
    cut = st.tuples(real, st.integers(0, 400)).map(lambda pair: pair[0][:pair[1]])
    spliced = st.tuples(real, st.integers(0, 400), junk_line).map(
        lambda triple: triple[0][:triple[1]] + triple[2] + triple[0][triple[1]:])
    return st.lists(st.one_of(real, cut, spliced, junk_line), max_size=12)


def write(path: Path, content: bytes | str) -> Path:
    if isinstance(content, str):
        content = content.encode("utf-8", errors="surrogatepass")
    path.write_bytes(content)
    return path


def check_loads_or_refuses(read, path: Path, **options):
    """Call ``read(path, **options)``: a `FormatError` is fine, a silent loss is not."""
    try:
        result = read(path, **options)
    except FormatError as error:
        assert str(path) in str(error), f"error does not name the file: {error}"
        return None
    report = result.report
    assert report.rows_read == report.rows_loaded + report.rows_skipped, report.to_dict()
    return result
