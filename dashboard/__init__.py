"""The zoolens dashboard: Panel views over the canonical tables, served or in a notebook.

`data_store` holds the shared project and each session's filters, `views` one
`Viewer` per view, and `app` assembles them into the served page.
"""

from .data_store import DataStore, Project

__all__ = ["DataStore", "Project"]
