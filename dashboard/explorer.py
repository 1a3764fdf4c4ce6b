"""`Explorer`: every view of a project in one object, for a notebook cell or the served page.

In Jupyter::

    from dashboard import Explorer
    explorer = Explorer.from_paths(["classifications.csv", "subjects.csv"], workflow_id=21790)
    explorer            # displays the filters and the views inline
    explorer.selection  # the subjects passing the filters and plot selection, as a DataFrame

The served app (`dashboard.app`) lays out the same parts in a template.
"""

from __future__ import annotations

import html

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import panel as pn
import param
from panel.viewable import Viewer

from project import Project, load_project
from project.reviews import ReviewStore, open_store
from project.roles import Reviewer

from .data_store import DataStore
from .keyboard import Shortcuts
from .views import VIEWS, View

#: The tabs, in order; each shows the registered views whose ``tab`` names it.
TABS = ("Subjects", "Gallery", "Agreement", "Machine", "Volunteers", "Re-aggregate", "Export")


class Explorer(Viewer):
    """A session over one project: its data store (filters) and one instance of every view.

    Parameters
    ----------
    project : Project, optional
        The project (or give ``data_store``).
    reviews : ReviewStore, str or Path, optional
        Where review decisions go: a store shared with other sessions, a database URL or a
        SQLite file path. Without one the review panel only says how to start reviewing.
    reviewer : Reviewer, optional
        The signed-in person the session decides as (the served app's sign-in gives it); without
        one the reviewer types a name and has every right (`project.roles`).
    """

    data_store = param.ClassSelector(class_=DataStore, doc="The session's filters over the shared project.")

    def __init__(self, project: Project | None = None, reviews: ReviewStore | str | Path | None = None,
                 reviewer: Reviewer | None = None, **params):
        if project is not None:
            if reviews is not None and not isinstance(reviews, ReviewStore):
                reviews = open_store(reviews)
            who = {} if reviewer is None else {"reviewer": reviewer.name, "role": reviewer.role,
                                               "authentication": reviewer.authentication}
            params["data_store"] = DataStore(project=project, reviews=reviews, **who)
        super().__init__(**params)
        #: One instance of every registered view that has a tab, by short name (also attributes: ``.cutout``).
        self.views: dict[str, View] = {name: view(data_store=self.data_store) for name, view in VIEWS.items()
                                       if view.tab is not None}
        self.keys = Shortcuts(data_store=self.data_store, review=self.views["review"], height=0, width=0)
        # A box redrawn by dragging its handles on the cutout is recorded as a typed redraw is.
        self.views["cutout"].param.watch(
            lambda event: event.new is not None and self.views["review"].redraw_to(*event.new), "edited_box")

    def __getattr__(self, name: str):
        views = self.__dict__.get("views", {})
        if name in views:
            return views[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    @classmethod
    def from_paths(cls, paths: Sequence[str | Path], **options) -> Explorer:
        """Read project files with `project.load_project` and its options (the consensus made with ``iou``
        unless ``method`` or ``consensus`` say otherwise, as ``zoolens serve`` does; ``reviews`` as for
        `Explorer`)."""
        reviews = options.pop("reviews", None)
        return cls(load_project(paths, **options), reviews=reviews)

    @classmethod
    def from_tables(cls, classifications: pd.DataFrame, marks: pd.DataFrame, **tables) -> Explorer:
        """Use canonical tables already in memory (subjects, consensus, links, image_roots optional;
        ``reviews`` as for `Explorer`)."""
        reviews = tables.pop("reviews", None)
        return cls(Project(classifications, marks, **tables), reviews=reviews)

    @property
    def project(self) -> Project:
        return self.data_store.project

    @property
    def selection(self) -> pd.DataFrame:
        """Statistics of the subjects passing the filters and the plot selection, most disagreement first."""
        return self.data_store.subjects.copy()

    def tabs(self) -> pn.Tabs:
        """The views, grouped by their tab: on Subjects the cutout first, the review panel and the table beside it."""
        tabs = []
        for title in TABS:
            views = [view for view in self.views.values() if view.tab == title]
            if title == "Subjects":
                side = [view for view in views if view.short_name != "cutout"]
                content = pn.Row(self.views["cutout"],
                                 pn.Column(*sorted(side, key=lambda view: view.short_name != "review"),
                                           sizing_mode="stretch_width", min_width=560))
            else:
                content = views[0] if len(views) == 1 else pn.Column(*views)
            tabs.append((title, content))
        layout = pn.Tabs(*tabs, dynamic=True, sizing_mode="stretch_width")
        # A view asking for the cutout (the gallery opening a subject) brings its tab forward.
        self.data_store.param.watch(lambda event: setattr(layout, "active", TABS.index("Subjects")), "show_subject")
        return layout

    def sidebar(self) -> list:
        """The filters, the review status filter and reviewer name (and the invisible keyboard listener)."""
        return [pn.pane.Markdown("### Filters"), self.data_store, self.keys,
                pn.pane.HTML(f"<small>Keys: {html.escape(self.keys.describe())}</small>", margin=(0, 10))]

    def __panel__(self):
        return pn.Row(pn.Column(*self.sidebar(), width=290), self.tabs(), sizing_mode="stretch_width")
