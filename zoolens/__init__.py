"""zoolens: see what citizen-science volunteers drew and what the consensus made of it."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("zoolens")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.1.0+source"
