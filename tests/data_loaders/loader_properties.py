"""What every loader must do with junk, as hypothesis strategies and one shared check.

A loader fed random bytes, or a real header followed by a mix of real and
random rows, may raise `FormatError` (the documented error for a file that is
not what it claims) and nothing else; when it loads, every row read is either
loaded or skipped with a reason.
"""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from data_loaders import FormatError

#: Characters that stress CSV and JSON parsing: separators, quotes, brackets, escapes, unicode.
JUNK_ALPHABET = st.sampled_from(list(',;"\'{}[]:.-+=@\\\t\r\n 0123456789eEaxyzNnTF#!é漢') + ["\u2028"])

#: Modest example counts keep the whole suite fast (set ZOOLENS_PROPERTY_EXAMPLES for a longer
#: hunt); hypothesis' database replays failures.
PROPERTY_SETTINGS = settings(
    max_examples=int(os.environ.get("ZOOLENS_PROPERTY_EXAMPLES", "40")), deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

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


def junk_bytes_test(read, name: str, prefix: bytes = b"", suffix: bytes = b"", **options):
    """A property test: ``prefix + random bytes + suffix``, saved as ``name``, loads or is refused."""

    @PROPERTY_SETTINGS
    @given(content=junk_bytes)
    def test(tmp_path_factory, content):
        path = write(tmp_path_factory.mktemp("junk") / name, prefix + content + suffix)
        check_loads_or_refuses(read, path, **options)

    return test


def junk_rows_test(read, real_file: Path, first_lines: int | None = None, check=None, **options):
    """A property test: a real file's header over a mix of its rows and junk loads or is refused.

    ``first_lines`` limits the real rows sampled (large files); ``check(result)``
    adds assertions on what loaded.
    """
    lines = real_file.read_text().splitlines()[:first_lines]

    @PROPERTY_SETTINGS
    @given(rows=rows_from(lines[1:]))
    def test(tmp_path_factory, rows):
        path = write(tmp_path_factory.mktemp("junk") / real_file.name, "\n".join([lines[0], *rows]))
        result = check_loads_or_refuses(read, path, **options)
        if result is not None and check is not None:
            check(result)

    return test
