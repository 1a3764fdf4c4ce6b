"""Every source a Zooniverse team has -> the canonical tables (`data_loaders.schema`).

``read(path, format=None)`` identifies the format from the file's content and
returns a `LoadResult` (tables as attributes, plus a `LoadReport`);
``write(tables, path, format=None)`` writes consensus boxes (and marks) as a
catalogue with its provenance (`data_loaders.writers`). No Panel here.

``__version__`` is zoolens' version: the bottom layer holds it, so every layer above
(consensus sources, catalogue provenance, the command line) can name it.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("zoolens")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.1.0+source"

from .base import REGISTRY, FormatError, LoadReport, LoadResult, Loader, get_loader, identify_format, known_formats, read


__all__ = [
    "__version__",
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
from . import aggregation_outputs  # noqa: E402,F401
from . import boxaggregator  # noqa: E402,F401
from . import caesar  # noqa: E402,F401
from . import catalogues  # noqa: E402,F401
from . import classifications  # noqa: E402,F401
from . import detections  # noqa: E402,F401
from . import images  # noqa: E402,F401
from . import subjects  # noqa: E402,F401
from . import workflows  # noqa: E402,F401
from .aggregation_outputs import read_aggregation_output  # noqa: E402
from .boxaggregator import read_boxaggregator  # noqa: E402
from .caesar import read_caesar_export  # noqa: E402
from .catalogues import read_catalogue  # noqa: E402
from .classifications import read_classifications  # noqa: E402
from .detections import read_detections  # noqa: E402
from .images import ImageStore, read_image  # noqa: E402
from .subjects import read_subjects  # noqa: E402
from .workflows import read_workflows  # noqa: E402
from .writers import export_bytes, prepare_export, write  # noqa: E402

__all__ += [
    "read_aggregation_output",
    "read_boxaggregator",
    "read_caesar_export",
    "read_catalogue",
    "read_classifications",
    "read_detections",
    "ImageStore",
    "read_image",
    "read_subjects",
    "read_workflows",
    "export_bytes",
    "prepare_export",
    "write",
]
