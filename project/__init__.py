"""The project layer: one project's tables and everything derived from them, without Panel.

Between `consensus` and `dashboard`: the command line, the served app and notebooks
all build projects here and export from here, so they agree.

- `load_project(paths, **options)`: the one way to build a `Project` from files.
- `Project`: the canonical tables plus derived statistics, shared read-only.
- `project.sky.SkyLookup`: each subject's FITS WCS, else its ra/dec and a pixel scale.
- `project.reviews.ReviewStore`: the durable, attributed review decisions.
- `project.export`: the catalogue of a selection, as a file or as bytes.
- `project.selection.Selection`: filters choosing subjects, shared by app and command line.
"""

from .build import DEFAULT_METHOD, default_image_roots, load_project, loader_options
from .core import Project

__all__ = ["DEFAULT_METHOD", "Project", "default_image_roots", "load_project", "loader_options"]
