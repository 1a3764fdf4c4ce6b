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
from collections.abc import Iterator, Mapping, Sequence
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
from .views.cutout import TOOLBAR_ROOM

#: The tabs, in order; each shows the registered views whose ``tab`` names it.
TABS = ("Subjects", "Gallery", "Agreement", "Machine", "Volunteers", "Re-aggregate", "Export")

#: The least width (CSS px) of the Subjects tab's column beside the cutout: the review panel and the subject table.
SIDE_COLUMN_WIDTH = 360
#: Across the page's main area, what the Subjects tab takes beside the cutout's frame: the main area's and the tab
#: card's paddings (62 px), the cutout's toolbar and margins, and the side column.
BESIDE_FRAME = 62 + TOOLBAR_ROOM + SIDE_COLUMN_WIDTH
#: Down the window, the page above the cutout's frame (the header, the tabs, the buttons and caption) and a margin
#: below it: the whole frame in view without scrolling.
ABOVE_FRAME = 200
#: The cutout's frame grows with the page's room (`fitted_frame_size`) from its default up to this many px, in steps
#: of `FRAME_STEP` (a window dragged a little wider draws nothing again).
LARGEST_FRAME = 1200
FRAME_STEP = 50


def fitted_frame_size(main_width: int, window_height: int, least: int) -> int:
    """The cutout's frame size (px) for a page whose main area is ``main_width`` wide in a window ``window_height``
    high: as large as both allow, in steps of `FRAME_STEP`, from ``least`` to `LARGEST_FRAME`."""
    room = min(main_width - BESIDE_FRAME, window_height - ABOVE_FRAME) // FRAME_STEP * FRAME_STEP
    return int(min(max(room, least), LARGEST_FRAME))


class SessionViews(Mapping):
    """A session's views by short name, each made the first time it is asked for.

    A served session shows one tab at a time: the views of the others are made when their
    tab is first opened (`Explorer.tabs`), so opening a session builds only the Subjects
    tab, and a subject switch updates no view that nobody has looked at.
    """

    def __init__(self, data_store: DataStore):
        self._data_store = data_store
        self._made: dict[str, View] = {}
        self._names = [name for name, view in VIEWS.items() if view.tab is not None]

    def __getitem__(self, name: str) -> View:
        if name not in self._made:
            if name not in self._names:
                raise KeyError(name)
            self._made[name] = VIEWS[name](data_store=self._data_store)
        return self._made[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def on_tab(self, title: str) -> list[str]:
        """Short names of the views shown on tab ``title`` (none of them is made by asking)."""
        return [name for name in self._names if VIEWS[name].tab == title]


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
        #: One instance of every registered view that has a tab, by short name (also attributes: ``.cutout``),
        #: each made on first use.
        self.views = SessionViews(self.data_store)
        self.keys = Shortcuts(data_store=self.data_store, review=self.views["review"])
        # A box redrawn by dragging its handles on the cutout is recorded as a typed redraw is.
        self.views["cutout"].param.watch(
            lambda event: event.new is not None and self.views["review"].redraw_to(*event.new), "edited_box")
        # A box drawn on the cutout with the box-draw tool is added as a typed one is.
        self.views["cutout"].param.watch(
            lambda event: event.new is not None and self.views["review"].add_at(*event.new), "added_box")

    def fit_cutout(self, main_width: int, window_height: int) -> None:
        """Size the cutout's frame to the room a served page has (`dashboard.window_room.WindowRoom`): larger than
        its default on a large screen, never smaller; nothing until both are known."""
        if main_width and window_height:
            cutout = self.views["cutout"]
            cutout.frame_size = fitted_frame_size(main_width, window_height, cutout.param.frame_size.default)

    def __getattr__(self, name: str):
        views = self.__dict__.get("views", {})
        if name in views:
            return views[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    @classmethod
    def from_paths(cls, paths: Sequence[str | Path], **options) -> Explorer:
        """Read project files with `project.load_project` and its options (the consensus made with ``iou``
        unless ``method`` or ``consensus`` say otherwise, as ``zoolens serve`` does; ``store=FOLDER`` and
        ``scheduler=ADDRESS`` for a project kept in a store and worked on by a Dask cluster, as
        ``--store`` and ``--scheduler``; ``reviews`` as for `Explorer`)."""
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
        """Statistics of the subjects passing the filters and the plot selection, in the session's order."""
        return self.data_store.subjects.copy()

    def tabs(self) -> pn.Tabs:
        """The views, grouped by their tab: on Subjects the cutout first, the review panel and the table beside it.

        Only the Subjects tab is built at once; another tab's views are made and laid out
        the first time it is shown.
        """
        # What a tab shows until its views are made: the Agreement tab's plots take seconds on a large project, and
        # a blank page says nothing. Built on a worker thread (served), the tab shows it while its views are made.
        def preparing(title: str) -> str:
            notes = " ".join(note for name in self.views.on_tab(title) if (note := VIEWS[name].preparing_note()))
            return f"<p class='zoolens-preparing'>Preparing the {title} tab…{' ' + html.escape(notes) if notes else ''}</p>"

        contents = {title: pn.Column(pn.pane.HTML(preparing(title), margin=(20, 20)), sizing_mode="stretch_width")
                    for title in TABS}
        layout = pn.Tabs(*contents.items(), dynamic=True, sizing_mode="stretch_width")
        built: set[str] = set()

        def build(title: str) -> None:
            if title in built:
                return
            built.add(title)
            # Said again as the tab opens: the page may have been open since before (or after) a warm-up.
            contents[title][0].object = preparing(title)
            views = [self.views[name] for name in self.views.on_tab(title)]
            if title == "Subjects":
                side = [view for view in views if view.short_name != "cutout"]
                content = pn.Row(self.views["cutout"],
                                 pn.Column(*sorted(side, key=lambda view: view.short_name != "review"),
                                           sizing_mode="stretch_width", min_width=SIDE_COLUMN_WIDTH))
            else:
                content = views[0] if len(views) == 1 else pn.Column(*views)
            contents[title][:] = [content]

        build(TABS[layout.active])
        layout.param.watch(lambda event: build(TABS[event.new]), "active")
        # A view asking for the cutout (the gallery opening a subject) brings its tab forward.
        self.data_store.param.watch(lambda event: setattr(layout, "active", TABS.index("Subjects")), "show_subject")
        return layout

    def sidebar(self) -> list:
        """The filters, the review status filter and reviewer name (and the invisible keyboard listener)."""
        return [pn.pane.Markdown("### Filters"), self.data_store, self.keys,
                pn.pane.HTML(f"<small>Keys: {html.escape(self.keys.describe())}</small>", margin=(0, 10))]

    def __panel__(self):
        return pn.Row(pn.Column(*self.sidebar(), width=290), self.tabs(), sizing_mode="stretch_width")
