"""The views' base: the registry and the read-only table."""

from __future__ import annotations

import pandas as pd
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
