"""The zoolens dashboard: Panel views over the canonical tables, served or in a notebook.

`data_store` holds the shared project and each session's filters, `views` one
`Viewer` per view, `Explorer` puts them together for a notebook, and `app` lays
the same parts out as the served page. `reviews` (the durable review store) does
not need Panel, so the Panel-backed names are imported only when first used.
"""

from importlib import import_module

_LAZY = {"DataStore": "data_store", "Project": "data_store", "load_project": "data_store",
         "Explorer": "explorer"}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
