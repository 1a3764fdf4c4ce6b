"""The review panel's typed geometry: x, y, width and height of a box to redraw or add, in one component.

The inputs follow the picked box on every subject switch. As four Panel number inputs, each new value
went through Panel's whole update of a widget (its theme's modifiers, its properties, its model): about
a sixth of a switch's server CPU for four numbers (instructions counted by callgrind over in-process
switches). Here the four are one property of one model, set in one update; the page draws plain number
inputs and sends the numbers back when the reviewer commits a typed one (Enter or leaving the field).
"""

from __future__ import annotations

import json

import param
from panel.custom import JSComponent

#: The inputs, in order: the geometry's name (the review panel's parameter) and its label.
FIELDS = {"x": "X", "y": "Y", "width": "Width", "height": "Height"}

STYLE = """
.geometry { display: flex; gap: 10px; align-items: flex-end; }
label { display: flex; flex-direction: column; font-size: 13px; gap: 3px; cursor: help; }
input { box-sizing: border-box; width: 70px; padding: 4px 6px; font: inherit; border: 1px solid #bbb; border-radius: 4px; }
"""


class GeometryInputs(JSComponent):
    """Four number inputs, x, y, width and height in image pixels; the server and the reviewer both set them.

    The four numbers travel as one property (`values`): Panel looks each changed property of a component
    up on its Bokeh model, and one that is not there (a component's own) costs a fuzzy search of the
    model's property names for the error Panel then ignores, about half a millisecond each.
    """

    values = param.List(default=[0.0, 0.0, 10.0, 10.0], item_type=(int, float),
                        doc="x, y, width and height of the box, in image pixels (y down), in the order of `FIELDS`.")
    descriptions = param.Dict(default={}, constant=True,
                              doc="Geometry name (a key of `FIELDS`) -> the help shown when pointing at its label.")

    _esm = """
    const FIELDS = FIELDS_JSON;
    export function render({ model }) {
      const row = document.createElement("div");
      row.className = "geometry";
      const inputs = Object.entries(FIELDS).map(([field, label], position) => {
        const wrap = document.createElement("label");
        wrap.textContent = label;
        wrap.title = model.descriptions[field] || "";
        const input = document.createElement("input");
        input.type = "number";
        input.step = "0.1";
        input.name = field;
        if (field === "width" || field === "height") input.min = "0";
        // Committed (Enter, or leaving the field), not on every key: a half-typed number is not a box.
        input.addEventListener("change", () => {
          const value = parseFloat(input.value);
          if (Number.isFinite(value) && (input.min === "" || value >= 0)) {
            const values = [...model.values];
            values[position] = value;
            model.values = values;
          } else {
            show();
          }
        });
        wrap.append(input);
        row.append(wrap);
        return input;
      });
      function show() {
        inputs.forEach((input, position) => { input.value = Number(model.values[position]).toFixed(1); });
      }
      show();
      model.on("values", show);
      return row;
    }
    """.replace("FIELDS_JSON", json.dumps(FIELDS))

    def __init__(self, **params):
        params.setdefault("stylesheets", [STYLE])
        super().__init__(**params)

    def show(self, geometry: dict[str, float]) -> None:
        """Show ``geometry`` (x, y, width, height, by name) in the inputs."""
        self.values = [float(geometry[name]) for name in FIELDS]

    def shown(self) -> dict[str, float]:
        """The geometry the inputs hold, by name."""
        return dict(zip(FIELDS, map(float, self.values)))
