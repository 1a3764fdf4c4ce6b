"""The re-aggregation sandbox: other aggregation settings, tried beside the loaded consensus.

The current subject is re-aggregated live whenever a setting changes (a subject has a
few dozen marks: milliseconds); the selection (every subject passing the filters) is
re-aggregated on request. Nothing replaces the loaded consensus: the sandbox's boxes
are drawn next to it and compared with it.

Methods that learn from many subjects (the volunteers' skill in ``lean``, their
positional variance in ``iou`` with ``estimator="weighted"``) learn, in the live view,
from the current subject's marks alone; run them on the selection for their full effect.
The ``iou`` method's quorum is the exception: the sandbox learns it once from the
whole project (the valley of its clusters' vote fractions, `consensus.quorum`), shows
that histogram with the learned and the tried quorum, and starts the quorum control
there, so the live view of one subject uses the project's threshold and the user moves
it from there.
"""

from __future__ import annotations

import weakref

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import param
from bokeh.models import Scatter
from bokeh.models.widgets.tables import NumberFormatter

from consensus import aggregate, methods
from consensus.base import Aggregator, make_aggregator
from consensus.geometry import iou
from consensus.iou import IoUClustering
from consensus.quorum import LearnedQuorum
from ..subject_marks import consensus_kinds
from .base import COMPACT_HEADER, View
from .cutout import CutoutViewer
from .cutout_layers import CutoutLayer, LegendEntry, add_layer_glyph

SANDBOX_COLOUR = "#ff00ff"
LEARNED_COLOUR = "#555555"
#: Width in screen pixels of the column of settings (and the quorum plot in it): with the cutout beside it, the tab
#: fits the main area of a 1,366 px window with the sidebar open (at 440 the cutout's right edge and toolbar ran
#: past the window).
CONTROLS_WIDTH = 340
#: Width of the per-box comparison table under the cutout, the cutout's own width (at 760 its last columns ran past
#: a 1,366 px window).
COMPARISON_WIDTH = 640
#: Diameter in screen pixels of a sandbox point's ring: wider than the consensus point's, to ring it.
SANDBOX_POINT_SIZE = 26

#: Per loaded project (dropped with it), per (cluster_iou, merge_iou): its vote-fraction histogram and learned quorum.
_VOTE_FRACTIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

#: Columns of the per-box comparison of the sandbox consensus with the loaded one.
COMPARISON_COLUMNS = ["consensus_id", "x", "y", "width", "height", "n_votes", "n_seen", "loaded_box", "iou_with_loaded"]
COMPARISON_TITLES = {"consensus_id": "Sandbox box", "x": "x", "y": "y", "width": "Width", "height": "Height",
                     "n_votes": "Votes", "n_seen": "Seen by", "loaded_box": "Loaded box",
                     "iou_with_loaded": "IoU with loaded"}


def best_overlaps(boxes: pd.DataFrame, reference: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """For each box, the reference box of the same subject it overlaps most, and that IoU.

    Returns ids (-1 when none of the subject's reference boxes overlaps) and IoUs.
    """
    best_id = np.full(len(boxes), -1, dtype=np.int64)
    best_iou = np.zeros(len(boxes))
    if not len(boxes) or not len(reference):
        return best_id, best_iou
    pairs = boxes.reset_index(drop=True).reset_index().merge(reference, on="subject_id", suffixes=("", "_ref"))
    if not len(pairs):
        return best_id, best_iou
    overlap = iou(
        (pairs.x + pairs.width / 2, pairs.y + pairs.height / 2, pairs.width, pairs.height, pairs.angle.fillna(0)),
        (pairs.x_ref + pairs.width_ref / 2, pairs.y_ref + pairs.height_ref / 2, pairs.width_ref, pairs.height_ref,
         pairs.angle_ref.fillna(0)),
    )
    pairs = pairs.assign(overlap=overlap).sort_values(["index", "overlap"], ascending=[True, False])
    best = pairs.drop_duplicates("index")
    best = best[best.overlap > 0]
    best_id[best["index"].to_numpy()] = best.consensus_id_ref.to_numpy()
    best_iou[best["index"].to_numpy()] = best.overlap.to_numpy()
    return best_id, best_iou


def loaded_method(project) -> str:
    """The method the sandbox starts with: the one that made ``project``'s consensus (its first view then shows the
    loaded consensus again), ``point`` for a consensus of points read from a file, else ``iou``."""
    made_by = [method for method in project.aggregation_run.get("methods", ()) if method in methods()]
    if len(made_by) == 1:
        return made_by[0]
    return "point" if consensus_kinds(project).only_points else "iou"


class ReaggregationSandbox(View):
    """Re-run the aggregation with other settings: live on the current subject, on request on the selection."""

    short_name = "sandbox"
    tab = "Re-aggregate"

    method = param.Selector(default=None, objects=list(methods()),
                            doc="Aggregation method to try (default: the one that made the loaded consensus, "
                                "`loaded_method`).")
    aggregator = param.ClassSelector(class_=Aggregator, doc="The method with the settings being tried "
                                                             "(its parameters are the sandbox's controls).")
    revision = param.Integer(default=0, precedence=-1,
                             doc="Counts changes of the method or its settings (what the live view follows).")
    selection_summary = param.DataFrame(default=None, doc="Output: per subject, boxes in the loaded and the "
                                                          "sandbox consensus after the last selection run.")

    def __init__(self, **params):
        super().__init__(**params)
        if self.method is None:
            with param.discard_events(self):
                self.method = loaded_method(self.data_store.project)
        if self.aggregator is None:
            self.aggregator = make_aggregator(self.method)
        self._start_at_learned_quorum()
        self._follow_settings()
        # The subject's cutout with the sandbox's boxes as one more layer, redrawn when the settings change; a point
        # project's as rings (a point's box has no size to draw).
        points = consensus_kinds(self.data_store.project).only_points
        legend = (LegendEntry("sandbox point (these settings)", SANDBOX_COLOUR, shape="ring") if points else
                  LegendEntry("sandbox box (these settings)", SANDBOX_COLOUR, dash="dashed", width=3))
        self._cutout = CutoutViewer(data_store=self.data_store, show_band=False, extra_layers=[CutoutLayer(
            "sandbox", lambda viewer: self.sandbox_boxes(), _draw_sandbox_points if points else _draw_sandbox_boxes,
            tooltips=((("sandbox point", "@{sandbox_box}"), ("votes", "@{votes}")) if points else SANDBOX_TOOLTIPS),
            legend=(legend,))])
        self.param.watch(lambda event: self._cutout.redraw(), "revision")

    @param.depends("method", watch=True)
    def _new_method(self):
        self.aggregator = make_aggregator(self.method)
        self._start_at_learned_quorum()
        self._follow_settings()

    def vote_fractions(self) -> tuple[np.ndarray, LearnedQuorum]:
        """The loaded project's clusters' vote-fraction histogram and the quorum learned from it.

        Clustered as the iou method being tried clusters (its defaults for other methods), once per
        project and clustering in the process: every session shares it, as it shares the project.
        """
        clustering = self.aggregator if isinstance(self.aggregator, IoUClustering) else make_aggregator("iou")
        project = self.data_store.project
        learned = _VOTE_FRACTIONS.setdefault(project, {})
        key = (clustering.cluster_iou, clustering.merge_iou)
        if key not in learned:
            learned[key] = clustering.learned_quorum(project.marks, project.classifications)
        return learned[key]

    def _start_at_learned_quorum(self):
        """An iou quorum left to be learned starts at the project's learned value, for the control to move."""
        if isinstance(self.aggregator, IoUClustering) and self.aggregator.min_vote_fraction is None:
            self.aggregator.min_vote_fraction = self.vote_fractions()[1].vote_fraction

    def reset_quorum(self):
        """Put the iou quorum back at the project's learned value."""
        if isinstance(self.aggregator, IoUClustering):
            self.aggregator.min_vote_fraction = self.vote_fractions()[1].vote_fraction

    def _follow_settings(self):
        """Bump `revision` now and whenever one of the aggregator's settings changes."""
        def bump(*events):
            self.revision += 1

        self.aggregator.param.watch(bump, [name for name in self.aggregator.param if name != "name"])
        bump()

    def settings(self) -> dict:
        """The method's parameter values being tried."""
        return self.aggregator.settings()

    def subject_consensus(self) -> pd.DataFrame:
        """The sandbox consensus of the current subject, compared box by box with the loaded one."""
        store = self.data_store
        subject_id = store.subject
        marks = store.marks_of()
        if subject_id is None or not len(marks):
            return pd.DataFrame(columns=COMPARISON_COLUMNS)
        classifications = store.project.classifications
        result = aggregate(marks, classifications[classifications.subject_id == subject_id], method=self.method,
                           **self.settings())
        boxes = result.consensus
        loaded, overlap = best_overlaps(boxes, store.consensus_of())
        return boxes.assign(loaded_box=loaded, iou_with_loaded=overlap)[COMPARISON_COLUMNS]

    def run_on_selection(self) -> pd.DataFrame:
        """Re-aggregate every subject passing the filters; per subject, loaded and sandbox box counts."""
        store = self.data_store
        subject_ids = store.subjects.subject_id
        classifications = store.project.classifications
        result = aggregate(store.filtered_marks(), classifications[classifications.subject_id.isin(subject_ids)],
                           method=self.method, **self.settings())
        loaded = store.filtered_consensus().groupby("subject_id").size()
        trial = result.consensus.groupby("subject_id").size()
        summary = pd.DataFrame({"subject_id": subject_ids.to_numpy()})
        summary["loaded_boxes"] = summary.subject_id.map(loaded).fillna(0).astype(np.int64)
        summary["sandbox_boxes"] = summary.subject_id.map(trial).fillna(0).astype(np.int64)
        self.selection_summary = summary
        return summary

    def sandbox_boxes(self) -> pd.DataFrame:
        """The sandbox layer's source: the current subject's boxes with the settings being tried."""
        boxes = self.subject_consensus()
        return pd.DataFrame({
            "x0": boxes.x.to_numpy(float), "y0": boxes.y.to_numpy(float),
            "x1": (boxes.x + boxes.width).to_numpy(float), "y1": (boxes.y + boxes.height).to_numpy(float),
            "sandbox_box": boxes.consensus_id.to_numpy(), "votes": boxes.n_votes.astype("float64").to_numpy(),
            "iou_with_loaded": boxes.iou_with_loaded.to_numpy(float)})

    @param.depends("revision")
    def vote_fraction_plot(self) -> hv.Overlay:
        """The histogram of the project's vote fractions, the learned quorum (grey) and, for iou, the tried one."""
        counts, learned = self.vote_fractions()
        edges = np.linspace(0.0, 1.0, len(counts) + 1)
        # Short enough for the plot's width (a longer one was cut off at its right edge); `quorum_note` tells how.
        histogram = hv.Histogram((edges, counts), kdims=["vote_fraction"], vdims=["clusters"]).opts(
            color="#9ecae1", line_color=None, width=CONTROLS_WIDTH - 10, height=200,
            xlabel="votes / volunteers who saw", ylabel="clusters (2+ votes)", tools=["hover"],
            title=f"Quorum {learned.vote_fraction:g} {'learned' if learned.found_by == 'valley' else 'by default'}")
        overlay = histogram * hv.VLine(learned.vote_fraction, group="Learned").opts(
            color=LEARNED_COLOUR, line_dash="dashed", line_width=2)
        if isinstance(self.aggregator, IoUClustering):
            tried = self.aggregator.min_vote_fraction
            overlay = overlay * hv.VLine(learned.vote_fraction if tried is None else tried, group="Tried").opts(
                color=SANDBOX_COLOUR, line_width=2)
        return overlay

    @param.depends("revision", "data_store.subject", "data_store.tool")
    def _comparison(self):
        boxes = self.subject_consensus()
        loaded = len(self.data_store.consensus_of())
        matched = int((boxes.iou_with_loaded >= 0.5).sum()) if len(boxes) else 0
        # Points have no size to overlap: a point project's line and table count them and leave out size and IoU.
        kinds = consensus_kinds(self.data_store.project)
        titles = kinds.columns(COMPARISON_TITLES, sized=("width", "height", "loaded_box", "iou_with_loaded"),
                               point_titles={"consensus_id": "Sandbox point"})
        if kinds.only_points:
            said = f"**{len(boxes)}** sandbox point{'' if len(boxes) == 1 else 's'} against **{loaded}** loaded."
        else:
            said = (f"**{len(boxes)}** sandbox box{'' if len(boxes) == 1 else 'es'} (dashed magenta) against "
                    f"**{loaded}** loaded; {matched} overlap{'s' if matched == 1 else ''} a loaded box with IoU ≥ 0.5.")
        return pn.Column(
            pn.pane.Markdown(said, width=COMPARISON_WIDTH),
            pn.widgets.Tabulator(boxes[list(titles)], disabled=True, show_index=False, width=COMPARISON_WIDTH,
                                 layout="fit_columns", widths={"consensus_id": 118, "loaded_box": 118},
                                 titles=titles,
                                 configuration={"columnDefaults": {"headerWordWrap": True}},
                                 stylesheets=[COMPACT_HEADER],
                                 # Pixels to a tenth and IoU to a hundredth, as the review panel shows them (three
                                 # decimals were cut off in the narrow columns).
                                 formatters={"consensus_id": NumberFormatter(format="0"),
                                             "loaded_box": NumberFormatter(format="0"),
                                             "iou_with_loaded": NumberFormatter(format="0.00")}
                                 | {name: NumberFormatter(format="0.0") for name in ("x", "y", "width", "height")}),
        )

    @param.depends("revision")
    def quorum_note(self) -> str:
        """How the quorum plot's learned quorum was found, in words."""
        learned = self.vote_fractions()[1]
        if learned.found_by == "valley":
            return (f"The valley of {learned.candidates:,} clusters' vote fractions: quorum {learned.vote_fraction:g} "
                    "(grey); the one tried in magenta.")
        return (f"No valley in {learned.candidates:,} clusters' vote fractions: quorum {learned.vote_fraction:g} by "
                "default (grey); the one tried in magenta.")

    @param.depends("aggregator")
    def _quorum(self):
        """The iou method's learned quorum and the button back to it; other methods have no quorum to learn."""
        if not isinstance(self.aggregator, IoUClustering):
            return pn.Column()
        reset = pn.widgets.Button(label="iou quorum back to the learned value", width=300)
        reset.on_click(lambda event: self.reset_quorum())
        return pn.Column(reset, pn.pane.HoloViews(hv.DynamicMap(self.vote_fraction_plot), linked_axes=False),
                         pn.pane.Markdown(self.quorum_note, width=CONTROLS_WIDTH - 20))

    @param.depends("aggregator")
    def _settings(self):
        return pn.Param(self.aggregator, show_name=False, width=300)

    @param.depends("selection_summary")
    def _selection(self):
        summary = self.selection_summary
        # Counted in the project's words: points on Penguin Watch, boxes, or marks where there are both.
        mark, marks = consensus_kinds(self.data_store.project).words
        if summary is None:
            return pn.pane.Markdown("Run the sandbox settings on every subject passing the filters to compare "
                                    f"{mark} counts subject by subject.", width=COMPARISON_WIDTH)
        changed = int((summary.loaded_boxes != summary.sandbox_boxes).sum())
        return pn.Column(
            pn.pane.Markdown(f"{len(summary):,} subjects: {summary.loaded_boxes.sum():,} loaded {marks}, "
                             f"{summary.sandbox_boxes.sum():,} with these settings; {changed:,} subjects "
                             f"changed their number of {marks}.", width=COMPARISON_WIDTH),
            pn.widgets.Tabulator(summary, pagination="remote", page_size=10, disabled=True, show_index=False,
                                 width=420, titles={"subject_id": "Subject", "loaded_boxes": f"Loaded {marks}",
                                                    "sandbox_boxes": f"Sandbox {marks}"},
                                 formatters={"subject_id": NumberFormatter(format="0")}),
        )

    def __panel__(self):
        run = pn.widgets.Button(label="Run on the selection", width=300)

        def run_selection(event):
            run.loading = True
            try:
                self.run_on_selection()
            finally:
                run.loading = False

        run.on_click(run_selection)
        controls = pn.Column(pn.Param(self, parameters=["method"], show_name=False, width=300), self._settings,
                             run, self._quorum, width=CONTROLS_WIDTH)
        plot = pn.pane.Bokeh(self._cutout.figure())
        return pn.Row(controls, pn.Column(plot, self._comparison, self._selection))


#: What hovering a sandbox box tells.
SANDBOX_TOOLTIPS = (("sandbox box", "@{sandbox_box}"), ("votes", "@{votes}"), ("IoU with loaded", "@{iou_with_loaded}"))


def _draw_sandbox_points(figure, source):
    return add_layer_glyph(figure, Scatter, source, x="x0", y="y0", marker="circle", size=SANDBOX_POINT_SIZE,
                           fill_alpha=0, line_color=SANDBOX_COLOUR, line_width=2, line_dash="dashed")


def _draw_sandbox_boxes(figure, source):
    return figure.quad(left="x0", right="x1", top="y0", bottom="y1", source=source, line_color=SANDBOX_COLOUR,
                       line_width=3, line_dash="dashed", fill_alpha=0)
