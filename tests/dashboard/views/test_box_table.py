"""The review panel's box table (`dashboard.views.box_table`): the rows' text made on the server, the pick."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dashboard.views.box_table import BoxTable, cell_texts


def _rows():
    return pd.DataFrame({"consensus_id": [10, 11], "status": ["accepted", None], "x": [12.34, np.nan],
                         "n_votes": [3.0, np.nan], "reviewer": ["<b>ann</b>", pd.NA]})


def test_cells_are_text_numbers_rounded_and_missing_values_blank():
    assert cell_texts(_rows(), ["consensus_id", "status", "x", "n_votes", "reviewer"], ["x", "n_votes"],
                      ["consensus_id"]) == [["10", "accepted", "12.3", "3.0", "<b>ann</b>"], ["11", "", "", "", ""]]
    assert cell_texts(_rows().iloc[0:0], ["x"], ["x"], []) == [] and cell_texts(None, ["x"], ["x"], []) == []


def test_a_point_among_boxes_shows_no_width_or_height():
    # DISCnet: boxes, circles and points in one project; a point's size is none, not "0.0 x 0.0".
    rows = pd.DataFrame({"consensus_id": [1, 2, 3], "width": [44.6, 0.0, 0.0], "height": [44.6, 0.0, 5.0]})
    assert cell_texts(rows, ["consensus_id", "width", "height"], ["width", "height"], ["consensus_id"]) == [
        ["1", "44.6", "44.6"], ["2", "", ""], ["3", "0.0", "5.0"]]


def test_the_page_gets_the_rows_text_and_the_picked_row_and_a_click_picks():
    table = BoxTable(value=_rows(), titles={"consensus_id": "Box", "x": "x"}, number_columns=["x"],
                     whole_columns=["consensus_id"])
    assert table.shown == {"cells": [["10", "12.3"], ["11", ""]], "picked": []}
    assert len(table.selected_dataframe) == 0
    table._handle_msg({"pick": 1})  # a click on the second row, as the page sends it
    assert table.selection == [1] and table.shown["picked"] == [1]
    assert table.selected_dataframe.consensus_id.tolist() == [11]
    for stale in ({"pick": 5}, {"pick": "1"}, {"pick": -1}, "pick", None):  # rows gone since, or not a position
        table._handle_msg(stale)
    assert table.selection == [1]
    table.value = _rows().iloc[:1]
    assert table.shown == {"cells": [["10", "12.3"]], "picked": []} and len(table.selected_dataframe) == 0


def test_a_column_of_signs_sends_its_words_and_the_column_its_hover_reads():
    # The page shows a sign per status and "accepted by <b>ann</b>" on hover (as text): it gets the words, and
    # after the shown columns the one only the hover reads.
    table = BoxTable(value=_rows(), titles={"consensus_id": "Box", "status": "Status"}, whole_columns=["consensus_id"],
                     signs={"status": {"accepted": "✓"}}, hover_by={"status": "reviewer"})
    assert table.shown["cells"] == [["10", "accepted", "<b>ann</b>"], ["11", "", ""]]
