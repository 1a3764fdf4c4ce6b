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

from .data_store import DataStore, Project, load_project
from .keyboard import Shortcuts
from .reviews import ReviewStore, open_store
from .views import (
    AgreementPlots, CutoutViewer, ExportView, ReaggregationSandbox, ReviewPanel, SubjectBrowser, VolunteerTable,
)


class Explorer(Viewer):
    """A session over one project: its data store (filters) and one instance of every view.

    Parameters
    ----------
    project : Project, optional
        The project (or give ``data_store``).
    reviews : ReviewStore, str or Path, optional
        Where review decisions go: a store shared with other sessions, a database URL or a
        SQLite file path. Without one the review panel only says how to start reviewing.
    """

    data_store = param.ClassSelector(class_=DataStore, doc="The session's filters over the shared project.")

    def __init__(self, project: Project | None = None, reviews: ReviewStore | str | Path | None = None, **params):
        if project is not None:
            if reviews is not None and not isinstance(reviews, ReviewStore):
                reviews = open_store(reviews)
            # Behind a server with authentication the reviewer is the signed-in user.
            user = pn.state.user
            params["data_store"] = DataStore(project=project, reviews=reviews, reviewer=user or "",
                                             reviewer_signed_in=bool(user))
        super().__init__(**params)
        self.review = ReviewPanel(data_store=self.data_store)
        self.subjects = SubjectBrowser(data_store=self.data_store)
        self.cutout = CutoutViewer(data_store=self.data_store)
        self.agreement = AgreementPlots(data_store=self.data_store)
        self.volunteers = VolunteerTable(data_store=self.data_store)
        self.sandbox = ReaggregationSandbox(data_store=self.data_store)
        self.export = ExportView(data_store=self.data_store)
        self.keys = Shortcuts(data_store=self.data_store, review=self.review, height=0, width=0)

    @classmethod
    def from_paths(cls, paths: Sequence[str | Path], **options) -> Explorer:
        """Read project files (see `dashboard.data_store.load_project` for the options; ``reviews`` as for
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
        """The views, one tab each."""
        return pn.Tabs(
            ("Subjects", pn.Row(pn.Column(self.subjects, self.review), self.cutout)),
            ("Agreement", self.agreement),
            ("Volunteers", self.volunteers),
            ("Re-aggregate", self.sandbox),
            ("Export", self.export),
            dynamic=True, sizing_mode="stretch_width",
        )

    def sidebar(self) -> list:
        """The filters, the review status filter and reviewer name (and the invisible keyboard listener)."""
        return [pn.pane.Markdown("### Filters"), self.data_store, self.keys,
                pn.pane.HTML(f"<small>Keys: {html.escape(self.keys.describe())}</small>", margin=(0, 10))]

    def __panel__(self):
        return pn.Row(pn.Column(*self.sidebar(), width=290), self.tabs(), sizing_mode="stretch_width")
