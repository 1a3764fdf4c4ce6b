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
