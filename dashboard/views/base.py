"""The base class of every dashboard view, and the registry of views by short name.

A view is a `panel.viewable.Viewer` over a session's `DataStore`: it reads the
shared project and the session's filters from it and writes back what the user
picks (current subject, selection, volunteer). Defining a subclass with a
``short_name`` registers it, so an app or notebook can ask for a view by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

# The views set Bokeh plot options, which need HoloViews' Bokeh backend registered,
# in a served app and a notebook alike.
import holoviews.plotting.bokeh  # noqa: F401
import numpy as np
import pandas as pd
import panel as pn
import param
from panel.viewable import Viewer

from ..data_store import DataStore


#: Options of a button group whose chosen button is filled and the others outlined, so the
#: choice shows (with the default style the chosen button is barely lighter than the rest).
CHOSEN_STANDS_OUT = {"button_type": "primary", "button_style": "outline"}

#: Narrower header padding for a table of many columns, so every title and its sort arrow fit their widths:
#: Tabulator keeps 25 px right of each sortable title for its arrow and pads the header 4 px all round, by rules
#: of the same weight as these that its style sheet, linked after them, would win. Titles are in 13 px type.
COMPACT_HEADER = (".tabulator .tabulator-header .tabulator-col .tabulator-col-content "
                  "{ padding: 4px 2px !important; } "
                  ".tabulator .tabulator-header .tabulator-col .tabulator-col-title { font-size: 13px !important; } "
                  ".tabulator .tabulator-header .tabulator-col.tabulator-sortable .tabulator-col-title "
                  "{ padding-right: 13px !important; } "
                  ".tabulator .tabulator-header .tabulator-col .tabulator-col-content .tabulator-col-sorter "
                  "{ right: 1px !important; }")


class ReadOnlyTable(pn.widgets.Tabulator):
    """A Tabulator whose rows only the server changes (``disabled``: the browser cannot edit a cell).

    A ``data`` event from the page can then only be the server's own change of the rows coming
    back; with worker threads it can arrive after the rows changed again, and Panel would write
    the old rows into the new table (and fail on their length). It is dropped.
    """

    def __init__(self, value=None, **params):
        super().__init__(value, **{"disabled": True, **params})

    def _process_events(self, events):
        events.pop("data", None)
        return super()._process_events(events)

    def _patch(self, patch):
        # Panel 1.9 keeps only the shown page's rows in the page's data source under remote pagination,
        # but patches that source at the rows' numbers in the whole table: a patch on any page but the
        # first fails there ("Out-of-bounds index"). The rows on the page are patched at their place on it.
        if self.pagination != "remote" or self.filters or self._filters or self.sorters:
            super()._patch(patch)
            return
        size = self.page_size or self.initial_page_size
        start = (self.page - 1) * size
        on_page = {column: [(row - start, value) for row, value in values if start <= row < start + size]
                   for column, values in patch.items()}
        on_page = {column: values for column, values in on_page.items() if values}
        if not on_page:
            return
        updating, self._updating = self._updating, True
        try:
            super(pn.widgets.Tabulator, self)._patch(on_page)  # the data source's patch, past Tabulator's
            self._update_style()
            self._update_selectable()
        finally:
            self._updating = updating

    def _update_index_mapping(self):
        # Panel builds a dict of every row's position -> index label whenever the rows or the page change: 0.25 s
        # for 222,000 subjects, seconds for 2.2 million, on every seventh subject switch (a new page of the subjects
        # table) and every filter change. Panel only looks labels up in it (``.get``): read from the index instead.
        processed = self._processed
        self._index_mapping = (_RowLabels(processed.index) if isinstance(processed, pd.DataFrame) and len(processed)
                               else {})


class _RowLabels(Mapping):
    """Row position -> index label of a table's rows, read from its index when asked."""

    def __init__(self, index: pd.Index):
        self._index = index

    def __getitem__(self, position):
        if not isinstance(position, (int, np.integer)) or not 0 <= position < len(self._index):
            raise KeyError(position)
        return self._index[position]

    def __len__(self) -> int:
        return len(self._index)

    def __iter__(self):
        return iter(range(len(self._index)))


class View(Viewer):
    """Base class of the dashboard's views; subclasses set ``short_name`` and implement ``__panel__``."""

    short_name: ClassVar[str] = ""
    #: The tab of `dashboard.Explorer` the view shows in (None: placed elsewhere, e.g. a dialog).
    tab: ClassVar[str | None] = None

    data_store = param.ClassSelector(class_=DataStore, doc="The session's data store the view shows.")

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.short_name:
            VIEWS[cls.short_name] = cls

    @classmethod
    def preparing_note(cls) -> str:
        """Words the tab adds to "Preparing the … tab" while the view is being made, when it takes longer than
        usual and the reader should know why ("": nothing to add)."""
        return ""


#: Short name -> View subclass; filled as the view modules are imported.
VIEWS: dict[str, type[View]] = {}


def get_view(short_name: str) -> type[View]:
    """The view class registered as ``short_name``; an unknown name lists the known ones."""
    try:
        return VIEWS[short_name]
    except KeyError:
        raise ValueError(f"unknown view {short_name!r}; known views: {', '.join(sorted(VIEWS))}") from None

