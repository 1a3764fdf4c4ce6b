"""The Machine tab: a machine's detections against the volunteers' consensus.

Precision, recall and F1 at the session's score threshold (the slider moves a line along their
curves), the precision-recall curve with its average precision, and per subject the detections a
consensus mark matched (true positives), the machine-only and the human-only marks. Every number
comes from the project's one comparison (`project.machine`), the one ``zoolens compare`` prints.
The subjects where humans and machine disagree become a review queue: the filter and order of the
session (`project.selection.Selection.machine_disagrees`, ``sort_by``), stepped through with the
Subjects tab's Next and the ``r`` key (next unreviewed), split among reviewers by the review panel.
"""

from __future__ import annotations

import html

import holoviews as hv
import pandas as pd
import panel as pn
import param
from bokeh.models.widgets.tables import NumberFormatter

from .base import View

#: The per-subject table's columns, with their headers.
COLUMNS = {"subject_id": "Subject", "true_positives": "Matched", "machine_only": "Machine only",
           "human_only": "Human only", "review_status": "Review"}
#: Curve colours: precision, recall, F1 (Category10's first three).
CURVE_COLOURS = {"precision": "#1f77b4", "recall": "#ff7f0e", "f1": "#2ca02c"}
PLOT_SIZE = {"width": 480, "height": 320}


def _number(value: float) -> str:
    return "undefined" if value != value else f"{value:.3f}"


class MachineView(View):
    """A machine's detections against the consensus: scores at the threshold, curves, per-subject counts."""

    short_name = "machine"
    tab = "Machine"

    def __init__(self, **params):
        super().__init__(**params)
        self._table = pn.widgets.Tabulator(
            self.subject_rows(), pagination="remote", page_size=12, selectable=1, disabled=True, show_index=False,
            titles=COLUMNS, layout="fit_data_table", formatters={"subject_id": NumberFormatter(format="0")})
        self._table.param.watch(self._pick, "selection")
        self.data_store.param.watch(self._refresh, ["subjects", "review_changes"])  # its Review column too

    @property
    def machine(self):
        """The session's comparison (`project.machine.MachineComparison`: with the consensus or the reviewed
        catalogue, `DataStore.machine`), None without detections."""
        return self.data_store.machine()

    # -- numbers (plain methods, for notebooks and tests) ------------------------------------

    def summary(self) -> dict:
        """The overall numbers at the session's score threshold: ``zoolens compare``'s."""
        return self.machine.summary(self.data_store.score_threshold)

    def subject_rows(self) -> pd.DataFrame:
        """The subjects passing the filters with their counts, where humans and machine disagree most first."""
        subjects = self.data_store.subjects
        if self.machine is None:
            return pd.DataFrame({name: [] for name in COLUMNS})
        return subjects.sort_values(["machine_disagreement", "subject_id"], ascending=[False, True],
                                    kind="stable")[list(COLUMNS)].reset_index(drop=True)

    def review_disagreements(self) -> None:
        """Make the subjects where humans and machine disagree the queue, and open its first unreviewed one."""
        store = self.data_store
        store.param.update(machine_disagrees=True, sort_by="humans vs machine")
        queue = store.subjects
        unreviewed = queue[(queue.review_status == "unreviewed").to_numpy()]
        first = unreviewed if len(unreviewed) else queue
        if len(first):
            store.subject = int(first.subject_id.iloc[0])
        store.param.trigger("show_subject")

    # -- plots ---------------------------------------------------------------------------------

    def threshold_plot(self) -> hv.Overlay:
        """Precision, recall and F1 against the score threshold, with the session's threshold as a line."""
        curve = self.machine.curve
        lines = [hv.Curve((curve["score_threshold"].to_numpy(), curve[name].to_numpy()), "score threshold",
                          "value", label=name.upper() if name == "f1" else name).opts(
                     color=colour, interpolation="steps-pre", line_width=2)
                 for name, colour in CURVE_COLOURS.items()]
        marker = hv.DynamicMap(lambda score_threshold: hv.VLine(score_threshold).opts(color="black",
                                                                                       line_dash="dashed"),
                               streams=[hv.streams.Params(self.data_store, ["score_threshold"])])
        return (hv.Overlay(lines) * marker).opts(
            title="Precision, recall, F1 by score threshold", legend_position="bottom_left",
            ylim=(0, 1.02), tools=["hover"], **PLOT_SIZE)

    def precision_recall_plot(self) -> hv.Overlay:
        """The precision-recall curve, with the point the session's threshold picks."""
        curve, machine = self.machine.curve, self.machine
        line = hv.Curve((curve["recall"].to_numpy(), curve["precision"].to_numpy()), "recall", "precision").opts(
            color="#1f5f8b", line_width=2, interpolation="steps-post")

        def point(score_threshold):
            numbers = machine.summary(score_threshold)
            return hv.Points([(numbers["recall"], numbers["precision"])], ["recall", "precision"]).opts(
                color="black", size=11, marker="circle")

        marker = hv.DynamicMap(point, streams=[hv.streams.Params(self.data_store, ["score_threshold"])])
        average = machine.match.average_precision()
        return (line * marker).opts(title=f"Precision-recall · AP {_number(average)} (IoU {machine.match.min_iou:g})",
                                    xlim=(0, 1.02), ylim=(0, 1.02), **PLOT_SIZE)

    @param.depends("data_store.score_threshold", "data_store.machine_against", "data_store.last_decision")
    def _numbers(self) -> pn.pane.HTML:
        numbers = self.summary()
        machine = self.machine
        cells = [("Precision", _number(numbers["precision"])), ("Recall", _number(numbers["recall"])),
                 ("F1", _number(numbers["f1"])), ("AP", _number(numbers["average_precision"])),
                 ("Matched", f"{numbers['true_positives']:,}"), ("Machine only", f"{numbers['machine_only']:,}"),
                 ("Human only", f"{numbers['human_only']:,}")]
        boxes = "".join(f"<div class='zoolens-number'><div>{name}</div><b>{value}</b></div>" for name, value in cells)
        # Source names come from a file name or the user: escaped.
        sources = html.escape(", ".join(machine.sources))
        return pn.pane.HTML(
            f"<style>.zoolens-number{{display:inline-block;min-width:92px;margin:0 10px 6px 0;padding:6px 10px;"
            f"border:1px solid #d0d7de;border-radius:6px}} .zoolens-number b{{font-size:20px}}</style>"
            f"<div>{boxes}</div><small>{numbers['detections']:,} detections of <b>{sources}</b> scoring "
            f"{numbers['score_threshold']:.3g} or more against {numbers['consensus']:,} marks of the "
            f"{machine.against} on the {numbers['subjects']:,} subjects the volunteers classified; a detection "
            f"matches at IoU {numbers['min_iou']:g} or more (points within {numbers['max_distance']:g} px). "
            f"The same as <code>zoolens compare --score-threshold {numbers['score_threshold']:.3g}</code>.</small>",
            sizing_mode="stretch_width")

    @param.depends("data_store.machine_against", "data_store.last_decision")
    def _heading(self) -> pn.pane.Markdown:
        return pn.pane.Markdown(f"### Machine detections against the {self.machine.against}", margin=(0, 10))

    @param.depends("data_store.machine_against", "data_store.last_decision")
    def _plots(self) -> pn.Row:
        """The curves of the comparison shown: made again when it changes (another catalogue, a decision)."""
        return pn.Row(pn.pane.HoloViews(self.threshold_plot(), linked_axes=False),
                      pn.pane.HoloViews(self.precision_recall_plot(), linked_axes=False))

    # -- the table -----------------------------------------------------------------------------

    def _refresh(self, event=None):
        self._table.value = self.subject_rows()

    def _pick(self, event):
        picked = self._table.selected_dataframe
        if len(picked):
            self.data_store.subject = int(picked.subject_id.iloc[0])
            self.data_store.param.trigger("show_subject")

    @property
    def table(self) -> pn.widgets.Tabulator:
        """The per-subject table (for tests and notebook users)."""
        return self._table

    @param.depends("data_store.subjects")
    def _queue(self) -> pn.pane.Markdown:
        subjects = self.data_store.subjects
        disagreeing = int((subjects.machine_disagreement > 0).sum())
        return pn.pane.Markdown(f"**{disagreeing:,}** of the {len(subjects):,} subjects passing the filters have "
                                "marks only the machine or only the volunteers made.", margin=(0, 10))

    def __panel__(self):
        if self.machine is None:
            return pn.pane.Markdown(
                "### No machine detections\nServe the project with `--detections FILE` (a CSV, Parquet or FITS "
                "table of subject_id, x, y, score, or COCO results JSON) to compare a detector with the "
                "volunteers here.")
        store = self.data_store
        low, high = store.param.score_threshold.bounds
        slider = pn.widgets.FloatSlider.from_param(store.param.score_threshold, name="Score threshold",
                                                   start=low, end=high, step=(high - low) / 100, width=420)
        review = pn.widgets.Button(label="Review where humans and machine disagree", color="primary",
                                   width=340)
        review.on_click(lambda event: self.review_disagreements())
        return pn.Column(
            self._heading, slider, self._numbers, self._plots,
            pn.pane.Markdown("#### Per subject, where humans and machine disagree most first", margin=(0, 10)),
            self._queue, pn.Row(review), self._table, sizing_mode="stretch_width")
