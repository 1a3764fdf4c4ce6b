"""zoolens: see what citizen-science volunteers drew and what the consensus made of it.

The command line (`zoolens.cli`) over the layers below it. ``zoolens.__version__`` is
the bottom layer's (`data_loaders.__version__`), read on first use so that starting the
command line does not import the loaders.
"""


def __getattr__(name):
    if name == "__version__":
        from data_loaders import __version__

        return __version__
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
