"""Every source a Zooniverse team has -> the canonical tables (`data_loaders.schema`).

``read(path, format=None)`` identifies the format from the file's content and
returns a `LoadResult` (tables as attributes, plus a `LoadReport`). No Panel here.
"""

from .base import REGISTRY, FormatError, LoadReport, LoadResult, Loader, get_loader, identify_format, known_formats, read


__all__ = [
    "REGISTRY",
    "FormatError",
    "LoadReport",
    "LoadResult",
    "Loader",
    "get_loader",
    "identify_format",
    "known_formats",
    "read",
]

# Importing a format module registers its loader.
from . import classifications  # noqa: E402,F401
from .classifications import read_classifications  # noqa: E402

__all__ += ["read_classifications"]
