"""The zoolens dashboard: Panel views over the canonical tables, served or in a notebook.

`data_store` holds the shared project and each session's filters, `views` one
`Viewer` per view, `Explorer` puts them together for a notebook, and `app` lays
the same parts out as the served page.
"""

from .data_store import DataStore, Project, load_project
from .explorer import Explorer

__all__ = ["DataStore", "Explorer", "Project", "load_project"]
