"""The review panel's table of the current subject's boxes: a plain HTML table drawn by the page.

The table changes on every subject switch. As a Tabulator it cost the server a new table model's
columns, styles and selection, or a cell-by-cell patch through pandas, and the page a rebuild of
Tabulator's rows with their measurements (bench/profile_page_switch.py --trace), for a handful of rows
that need no sorting, paging or editing. Here the server sends the rows' text once per change (one
property, a short list of short strings) and the page replaces the rows of a fixed-size table; a click
on a row picks its box.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd
import param
from panel.custom import JSComponent

#: The picked box's row: pale yellow with a bar in the pick ring's colour (`cutout.PICKED_COLOUR`), not the blue
#: of a selected row, so that it is not read as a second current subject beside the subject table's row.
PICKED_BACKGROUND, PICKED_BAR = "#fff3bf", "#ffd92f"

STYLE = f"""
:host {{ contain: strict; overflow: auto; border: 1px solid #ddd; }}
table {{ border-collapse: collapse; width: 100%; font-size: 13px; }}
th {{ white-space: nowrap; position: sticky; top: 0; background: #f4f4f4; text-align: left; font-weight: 600; padding: 4px 4px;
      border-bottom: 1px solid #ccc; }}
td {{ padding: 3px 4px; border-bottom: 1px solid #eee; white-space: nowrap; overflow: hidden;
      text-overflow: ellipsis; max-width: 160px; font-variant-numeric: tabular-nums; }}
td.sign {{ text-align: center; }}
tbody tr {{ cursor: pointer; }}
tbody tr:hover {{ background: #f0f6ff; }}
tbody tr.picked, tbody tr.picked:hover {{ background: {PICKED_BACKGROUND}; box-shadow: inset 5px 0 0 {PICKED_BAR}; }}
th.number, td.number {{ text-align: right; font-variant-numeric: tabular-nums; }}
"""


class BoxTable(JSComponent):
    """The current subject's boxes, one row each; the picked one highlighted, a click picks another.

    A column of ``signs`` (the review status) shows a sign per cell, the word (and who decided) on hover: the table
    fits the 360 px it has beside the cutout in a 1,366 px window.

    ``value`` and ``selection`` stay on the server; the page gets the rows' text and the picked row as one
    property (`shown`: Panel looks each changed property of a component up on its Bokeh model, and one
    that is not there costs a fuzzy search of the model's property names, about half a millisecond). The
    text is made here, so a reviewer's typed name reaches the page only as text (the page sets
    ``textContent``). A click on a row comes back as a message naming its position.
    """

    value = param.DataFrame(default=None, allow_None=True,
                            doc="The rows, one per box, with (at least) the columns of ``titles`` (kept on the server).")
    titles = param.Dict(default={}, constant=True, doc="Column name -> its header, in the order shown.")
    number_columns = param.List(default=[], constant=True,
                                doc="Columns shown as numbers with one decimal (blank when missing).")
    whole_columns = param.List(default=[], constant=True, doc="Columns shown as whole numbers.")
    tooltips = param.Dict(default={}, constant=True, doc="Column -> what its header means, shown on hover.")
    signs = param.Dict(default={}, constant=True,
                       doc="Column -> {text: sign}: its cells show the sign of their text (narrower than the words), "
                           "the text itself on hover, to screen readers (the sign's ``aria-label``) and in their "
                           "``data-value``.")
    hover_by = param.Dict(default={}, constant=True,
                          doc="Column of ``signs`` -> a column of ``value`` not shown whose text its cells' hover adds "
                              "after 'by' (who decided).")
    selection = param.List(default=[], item_type=int,
                           doc="Position of the picked row in ``value`` (at most one); a click on a row sets it.")
    shown = param.Dict(default={"cells": [], "picked": []},
                       doc="What the page shows: each row's cells as text (``cells``: the columns of ``titles``, then "
                           "those ``hover_by`` reads) and the picked positions (``picked``), made from ``value`` and "
                           "``selection``.")

    _rename: ClassVar[dict[str, str | None]] = {"value": None, "selection": None}

    _esm = """
    export function render({ model }) {
      const table = document.createElement("table");
      const head = table.createTHead().insertRow();
      const fields = Object.keys(model.titles);
      // The columns a row's cells hold: those shown, then those only their hover text reads.
      const held = [...fields, ...Object.values(model.hover_by).filter((field) => !fields.includes(field))];
      const numeric = new Set([...model.number_columns, ...model.whole_columns]);
      for (const field of fields) {
        const th = document.createElement("th");
        th.textContent = model.titles[field];
        th.dataset.field = field;
        if (model.tooltips[field]) th.title = model.tooltips[field];
        if (numeric.has(field)) th.className = "number";
        head.append(th);
      }
      const body = table.createTBody();
      function draw() {
        const picked = new Set(model.shown.picked);
        body.replaceChildren(...model.shown.cells.map((row, position) => {
          const tr = document.createElement("tr");
          tr.dataset.row = position;
          if (picked.has(position)) tr.className = "picked";
          fields.forEach((field, column) => {
            const td = tr.insertCell();
            const text = row[column];
            td.dataset.field = field;
            const signs = model.signs[field];
            if (signs) {
              const by = model.hover_by[field] ? row[held.indexOf(model.hover_by[field])] : "";
              // A sign is read out by screen readers as its word, as sighted users get it on hover.
              const sign = document.createElement("span");
              sign.textContent = signs[text] ?? text;
              sign.setAttribute("role", "img");
              sign.setAttribute("aria-label", by ? `${text} by ${by}` : text);
              td.append(sign);
              td.dataset.value = text;
              td.title = by ? `${text} by ${by}` : text;
              td.className = "sign";
            } else {
              td.textContent = text;
              if (numeric.has(field)) td.className = "number";
            }
          });
          return tr;
        }));
      }
      body.addEventListener("click", (event) => {
        const tr = event.target.closest("tr");
        if (tr) model.send_msg({ pick: Number(tr.dataset.row) });
      });
      model.on("shown", draw);
      draw();
      return table;
    }
    """

    def __init__(self, **params):
        params.setdefault("stylesheets", [STYLE])
        super().__init__(**params)
        self.param.watch(self._fill, ["value", "selection"])
        self._fill()

    def _fill(self, *events) -> None:
        held = [*self.titles, *(column for column in self.hover_by.values() if column not in self.titles)]
        self.shown = {"cells": cell_texts(self.value, held, self.number_columns, self.whole_columns),
                      "picked": [position for position in self.selection
                                 if self.value is not None and 0 <= position < len(self.value)]}

    def _handle_msg(self, message) -> None:
        position = message.get("pick") if isinstance(message, dict) else None
        # From the page: a row's position, checked against the rows shown now (they may have changed since).
        if isinstance(position, int) and self.value is not None and 0 <= position < len(self.value):
            self.selection = [position]

    @property
    def selected_dataframe(self) -> pd.DataFrame:
        """The picked row of ``value`` (no rows when none is picked)."""
        if self.value is None:
            return pd.DataFrame()
        return self.value.iloc[self.shown["picked"]]


def cell_texts(rows: pd.DataFrame | None, columns: list[str], number_columns: list[str],
               whole_columns: list[str]) -> list[list[str]]:
    """Each row's cells as text: numbers with one decimal (or none), blank for a missing value and for the width and
    height of a point (a mark without either).

    A subject's boxes are a handful of rows: Python's own formatting of their values is quicker here than
    numpy's or pandas' per-column machinery (a third of the switch's table work when it was).
    """
    if rows is None or not len(rows):
        return []
    # A point among boxes (a project with both) has no width or height: blank, not "0.0".
    sizeless = ((rows["width"].to_numpy(dtype=float, na_value=np.nan) == 0)
                & (rows["height"].to_numpy(dtype=float, na_value=np.nan) == 0)
                if {"width", "height"} <= set(rows.columns) else np.zeros(len(rows), dtype=bool))
    texts = []
    for column in columns:
        series = rows[column]
        missing = pd.isna(series.to_numpy())
        missing = (missing | sizeless if column in ("width", "height") else missing).tolist()
        if column in number_columns or column in whole_columns:
            pattern = "%.1f" if column in number_columns else "%.0f"
            values = series.to_numpy(dtype=float, na_value=np.nan).tolist()
            texts.append(["" if gone else pattern % value for value, gone in zip(values, missing)])
        else:
            texts.append(["" if gone else str(value) for value, gone in zip(series.tolist(), missing)])
    return [list(row) for row in zip(*texts)]
