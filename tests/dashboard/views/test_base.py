"""The views' base: the registry and the read-only table."""

from __future__ import annotations

import pandas as pd
import panel as pn
import pytest

from dashboard.views.base import ReadOnlyTable, get_view


def test_an_unknown_view_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="known views: .*review"):
        get_view("no-such-view")


def test_a_read_only_table_keeps_its_rows_when_old_rows_come_back_from_the_page():
    """With worker threads, the server's own change of the rows can come back after the rows changed
    again (three subjects, then one after a filter): Panel would write the three into the one."""
    table = ReadOnlyTable(pd.DataFrame({"subject_id": [1, 2, 3]}), selectable=1)
    table.value = pd.DataFrame({"subject_id": [7]})
    table._process_events({"data": {"subject_id": [1, 2, 3]}, "indices": [0]})
    assert table.disabled and table.value.subject_id.tolist() == [7]
    assert table.selection == [0]  # the other events of the page still count


def test_a_patch_of_a_remote_page_reaches_the_rows_shown_on_it():
    """Panel patches the page's data source at the row's number in the whole table: on page 2, row 8 is
    the page's second row, and Panel 1.9's own patch fails there ("Out-of-bounds index (8)")."""
    from bokeh.document import Document

    table = ReadOnlyTable(pd.DataFrame({"subject_id": range(20), "status": "unreviewed"}), pagination="remote",
                          page_size=7)
    model = table.get_root(Document())
    table.page = 2
    table.patch({"status": [(8, "accepted"), (1, "rejected")]}, as_index=False)
    assert model.source.data["status"].tolist() == ["unreviewed", "accepted"] + ["unreviewed"] * 5
    assert table.value.status[[1, 8]].tolist() == ["rejected", "accepted"]
    table.page = 1  # the row patched while on another page is sent with its page
    assert model.source.data["status"][1] == "rejected"


def test_a_read_only_tables_row_labels_are_those_panel_maps_without_a_dict_of_every_row():
    """Panel maps each shown row's position to its index label (a click on a row of a page is resolved through it);
    the read-only table reads the labels from the index rather than build a dict of every row on each page."""
    rows = pd.DataFrame({"subject_id": [5, 3, 9, 1, 4]}, index=[40, 10, 30, 20, 0])
    table = ReadOnlyTable(rows, pagination="remote", page_size=2, selectable=1)
    panels = pn.widgets.Tabulator(rows, pagination="remote", page_size=2, selectable=1)
    for page in (2, 3):
        table.page = panels.page = page
        assert not isinstance(table._index_mapping, dict)
        assert dict(table._index_mapping) == panels._index_mapping
        assert [table._index_mapping.get(position, position) for position in (-1, 0, 4, 5, "x")] == \
               [panels._index_mapping.get(position, position) for position in (-1, 0, 4, 5, "x")]
    table.value = panels.value = rows.iloc[:0]
    assert table._index_mapping == panels._index_mapping == {}
