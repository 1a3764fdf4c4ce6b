"""The review panel: a team's decisions on the current subject's consensus boxes.

Reviewers accept or reject each consensus box, redraw one (new x, y, width, height), add a
box the aggregation missed, flag the subject with a reason, and revert the last decision.
Every decision goes to the process's shared `project.reviews.ReviewStore` under the
reviewer's name and role (`project.roles`: the store refuses what the role does not allow;
the panel only leaves out the buttons the role cannot use), so every session sees it (the deciding one at once, the others on their
next periodic refresh); the aggregation output itself is never changed. The cutout viewer
draws the boxes as reviewed.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import panel as pn
import param

from project.reviews import GEOMETRY, ReviewError

from ..assignments import assignee_of, forget_assignments
from ..subject_marks import consensus_kinds
from .base import ReadOnlyTable, View
from .box_table import BoxTable
from .cutout import STATUS_LOOKS
from .geometry_inputs import FIELDS, GeometryInputs

#: Columns of the box table, with their headers: short, so that the table fits the 360 px it has beside the cutout in
#: a 1,366 px window with ids of 12 digits (`BOX_TOOLTIPS` says each in full). Who decided is in the status's hover.
BOX_COLUMNS = {"consensus_id": "Box", "status": "Status", "x": "x", "y": "y", "width": "W",
               "height": "H", "n_votes": "Votes"}
#: What each header of the box table means, shown on hover.
BOX_TOOLTIPS = {"consensus_id": "Consensus mark id", "status": "Review status: – unreviewed, ✓ accepted, ✗ rejected, "
                "✎ redrawn, + added (the word and who decided on hover)", "x": "Left edge (a point: x), image pixels",
                "y": "Top edge (a point: y), image pixels, y down", "width": "Width in image pixels",
                "height": "Height in image pixels", "n_votes": "Volunteers' marks supporting it"}
#: The review status of a box as one sign, the one drawn beside it on the cutout ("–" before a decision).
BOX_SIGNS = {status: glyph or "–" for status, (_, glyph) in STATUS_LOOKS.items()}
#: The box table's height in pixels: five rows and the header, more scroll. Fixed, so that the review buttons under
#: it stay in place from a subject with one box to one with six.
BOX_TABLE_HEIGHT = 150
#: Columns of the subject's decision history, with their headers.
HISTORY_COLUMNS = {"created_at": "When (UTC)", "reviewer": "Reviewer", "role": "Role", "action": "Action",
                   "consensus_id": "Box", "reason": "Reason", "active": "In effect"}


class ReviewPanel(View):
    """Accept, reject, redraw or add consensus boxes of the current subject, flag it, revert; with its history."""

    short_name = "review"
    tab = "Subjects"

    x = param.Number(default=0.0, doc="Left edge of the redrawn or added box, in image pixels.")
    y = param.Number(default=0.0, doc="Top edge of the redrawn or added box, in image pixels (y down).")
    width = param.Number(default=10.0, bounds=(0, None), doc="Width of the redrawn or added box, in pixels.")
    height = param.Number(default=10.0, bounds=(0, None), doc="Height of the redrawn or added box, in pixels.")
    reason = param.String(default="", doc="Why, in the reviewer's words: stored with the next decision.")
    assignee = param.String(default="", doc="The reviewer a lead assigns the current subject to (empty: "
                                            "nobody, taking the assignment back).")
    split_among = param.String(default="", doc="Reviewers' names, separated by commas, among whom a lead splits "
                                               "the subjects passing the filters.")

    def __init__(self, **params):
        super().__init__(**params)
        kinds = consensus_kinds(self.data_store.project)
        # A point project's consensus points have no width or height to show.
        self._boxes = BoxTable(
            value=self.boxes(), titles=kinds.columns(BOX_COLUMNS, sized=("width", "height"),
                                                     point_titles={"consensus_id": "Point"},
                                                     mixed_titles={"consensus_id": "Mark"}),
            # Whole pixels: a review reads where a box is, not its tenths (the typed geometry keeps them).
            whole_columns=["consensus_id", "x", "y", "width", "height", "n_votes"], tooltips=BOX_TOOLTIPS,
            signs={"status": BOX_SIGNS}, hover_by={"status": "reviewer"},
            height=BOX_TABLE_HEIGHT, sizing_mode="stretch_width",
        )
        #: The history's headers, naming its marks as the box table does.
        self._history_titles = kinds.columns(HISTORY_COLUMNS, sized=(), point_titles={"consensus_id": "Point"},
                                             mixed_titles={"consensus_id": "Mark"})
        # Made when first shown (`history_table`): it sits in a folded card most reviewers never open,
        # and kept current it costs a query of the store and a table per subject switch; while the card is
        # folded again it is not kept current, and is brought up to date when unfolded.
        self._history = None
        #: The folded card holding the history (made with the panel).
        self._history_card = None
        self._progress_memo = None
        #: The heading (subject, status, progress, who reviews): its text changes in place, the pane is never
        #: replaced (a new pane made Bokeh walk the page, and Panel's re-run of a method per switch cost more
        #: than the text). Static text, not an HTML pane: an HTML pane sends all its properties again with a new
        #: text (and its first update adds a style sheet, so Bokeh walks the page), in every session that shows
        #: a subject someone decided on.
        self._heading_pane = pn.widgets.StaticText(value="", sizing_mode="stretch_width", margin=(0, 10))
        #: The typed geometry's inputs, following x, y, width and height both ways.
        self._geometry_inputs = GeometryInputs(margin=(5, 10),
                                               descriptions={name: self.param[name].doc for name in FIELDS})
        self._geometry_inputs.show(self._geometry())
        self.param.watch(self._geometry_set, list(FIELDS))
        self._geometry_inputs.param.watch(self._geometry_typed, "values")
        self._boxes.param.watch(self._pick_box, "selection")
        self.data_store.param.watch(self._refresh, ["subject", "subject_decisions", "min_votes"])
        self.data_store.param.watch(self._box_changed, "review_box")
        self.data_store.param.watch(self._box_drawn, "drawn_box")
        self.data_store.param.watch(self._heading, ["subject", "subject_decisions", "reviewer", "subjects",
                                                    "review_changes"])
        self.param.watch(self._heading, "assignee")
        self._refresh()
        self._heading()

    # -- what is shown -----------------------------------------------------------------------

    @property
    def history_table(self) -> pn.widgets.Tabulator:
        """The current subject's decisions in a table, newest first (made the first time it is asked for)."""
        if self._history is None:
            self._history = ReadOnlyTable(
                _history_rows(self.history()), show_index=False, titles=self._history_titles,
                layout="fit_columns", pagination="local", page_size=8, sizing_mode="stretch_width",
                selectable=False, widths={"created_at": 150, "action": 84, "consensus_id": 64, "active": 92},
            )
        return self._history

    def boxes(self) -> pd.DataFrame:
        """The current subject's boxes as reviewed (`DataStore.reviewed_consensus_of`)."""
        return self.data_store.reviewed_consensus_of()

    def history(self) -> pd.DataFrame:
        """Every decision on the current subject's consensus run, oldest first (`ReviewStore.history`)."""
        store, subject = self.data_store.reviews, self.data_store.subject
        if store is None or subject is None:
            return pd.DataFrame({name: [] for name in HISTORY_COLUMNS})
        return store.history(subject_id=subject, consensus_source=self.data_store.project.consensus_source)

    # -- decisions -----------------------------------------------------------------------------

    def accept(self, consensus_id: int | None = None):
        """Accept a box (default: the selected one)."""
        return self._decide_box("accept", consensus_id)

    def reject(self, consensus_id: int | None = None):
        """Reject a box (default: the selected one)."""
        return self._decide_box("reject", consensus_id)

    def redraw(self, consensus_id: int | None = None):
        """Give a box (default: the selected one) the geometry in ``x``, ``y``, ``width``, ``height``."""
        return self._decide_box("redraw", consensus_id, geometry=self._geometry())

    def redraw_to(self, consensus_id: int, x: float, y: float, width: float, height: float):
        """Redraw a box to the given place (a drag of its handles on the cutout): the same decision as
        typing the numbers and pressing Redraw."""
        self.param.update(x=x, y=y, width=width, height=height)
        return self.redraw(int(consensus_id))

    def add_at(self, x: float, y: float, width: float, height: float):
        """Add a box at the given place (drawn on the cutout with the box-draw tool): the same decision as typing
        the numbers and pressing Add box."""
        self.param.update(x=x, y=y, width=width, height=height)
        return self.add()

    def add(self):
        """Add a box the aggregation missed, at ``x``, ``y``, ``width``, ``height``; it becomes the selected box."""
        decision = self._decide("add", geometry=self._geometry())
        self.data_store.review_box = decision.consensus_id
        return decision

    def flag(self):
        """Flag the current subject (say why in ``reason``)."""
        return self._decide("flag")

    def unflag(self):
        """Take the current subject's flag down."""
        return self._decide("unflag")

    def assign(self):
        """Assign the current subject to ``assignee`` (a lead's action; empty takes it back)."""
        self._check_ready()
        store = self.data_store
        count = store.reviews.assign(store.project.consensus_source, store.subject, self.assignee, store.identity())
        forget_assignments(store.reviews, store.project.consensus_source)
        self.param.trigger("assignee")  # the heading shows the new assignment
        return count

    def split_selection(self) -> dict[str, int]:
        """Split the subjects passing the filters among ``split_among``'s reviewers, in runs of the
        current order (a lead's action); subjects per reviewer."""
        self._check_ready()
        store = self.data_store
        names = [name.strip() for name in self.split_among.split(",") if name.strip()]
        if not names:
            raise ReviewError("name the reviewers to split the selection among, separated by commas")
        ids = store.subject_ids()
        done = {name: store.reviews.assign(store.project.consensus_source, chunk.tolist(), name, store.identity())
                for name, chunk in zip(names, np.array_split(ids, len(names))) if len(chunk)}
        forget_assignments(store.reviews, store.project.consensus_source)
        self.param.trigger("assignee")  # the heading shows the current subject's new assignment
        if store.mine:
            store._update_subjects()
        return done

    def assigned_to(self) -> str | None:
        """Who the current subject is assigned to (None: nobody), from the process's shared reading of the
        assignments (`dashboard.assignments`: a switch asks, and a query per switch cost more than the rest of the
        heading)."""
        store = self.data_store
        if store.reviews is None or store.subject is None:
            return None
        assignee = assignee_of(store.reviews, store.project.consensus_source, store.subject)
        return None if assignee is None else str(assignee)

    def revert_last(self):
        """Revert the newest decision still in effect on the current subject: for a lead anyone's,
        for a reviewer their own (the store refuses anything else)."""
        self._check_ready()
        identity = self.data_store.identity()
        history = self.history()
        live = history[history["active"] & (history["action"] != "revert")] if len(history) else history
        whose = ""
        if not identity.may_revert_anyones():
            live, whose = live[(live["reviewer"] == identity.name)
                               & (live["authentication"] == identity.authentication)], " of yours"
        if not len(live):
            raise ReviewError(f"subject {self.data_store.subject} has no decision{whose} in effect to revert")
        decision = self.data_store.reviews.revert(int(live["id"].iloc[-1]), identity, self.reason)
        self._after_decision()
        return decision

    def step_box(self, step: int) -> int | None:
        """Pick the box ``step`` places along the current subject's boxes (wrapping); returns its id."""
        ids = self.boxes().consensus_id.tolist()
        if not ids:
            return None
        picked = self.data_store.picked_box_id()
        here = ids.index(picked) if picked in ids else 0
        self.data_store.review_box = ids[(here + step) % len(ids)]
        return self.data_store.review_box

    def _geometry(self) -> dict:
        return {"x": self.x, "y": self.y, "width": self.width, "height": self.height}

    def _check_ready(self) -> None:
        store = self.data_store
        if store.reviews is None:
            raise ReviewError("this session has no review store: start the app with --reviews")
        if not store.reviewer.strip():
            raise ReviewError("enter your name as reviewer in the sidebar before deciding")
        if store.subject is None:
            raise ReviewError("no subject is shown")

    def _decide_box(self, action: str, consensus_id: int | None, geometry: dict | None = None):
        consensus_id = self.data_store.picked_box_id() if consensus_id is None else consensus_id
        if consensus_id is None:
            raise ReviewError(f"pick a box to {action}: click it in the image or in the box table")
        original = None
        if consensus_id >= 0:
            boxes = self.data_store.project.consensus_of(self.data_store.subject)
            row = boxes[boxes.consensus_id == consensus_id]
            if not len(row):
                raise ReviewError(f"subject {self.data_store.subject} has no consensus box {consensus_id}")
            original = row.iloc[0][list(GEOMETRY)].to_dict()
        return self._decide(action, consensus_id=consensus_id, original=original, geometry=geometry)

    def _decide(self, action: str, **box):
        self._check_ready()
        store = self.data_store
        decision = store.reviews.record(store.project.consensus_source, store.subject, action, store.identity(),
                                        reason=self.reason, **box)
        self._after_decision()
        return decision

    def _after_decision(self) -> None:
        self.reason = ""
        self.data_store.drawn_box = None  # used, or made moot by the decision
        self.data_store.refresh_reviews()

    # -- keeping the widgets current -------------------------------------------------------

    def _refresh(self, event=None):
        boxes = self.boxes()
        # The new rows and the picked one go to the page together (`BoxTable` sends both as one property); the rows
        # only when they are new (`reviewed_consensus_of` is the same table until the subject, the vote threshold
        # or the decisions read change).
        with param.parameterized.batch_call_watchers(self._boxes):
            if boxes is not self._boxes.value:
                self._boxes.value = boxes
            if self._history is not None and (self._history_card is None or not self._history_card.collapsed):
                self._history.value = _history_rows(self.history())
            # Keep the picked box highlighted (its row) and its geometry in the inputs.
            self._box_changed()

    def _pick_box(self, event):
        picked = self._boxes.selected_dataframe
        # Selecting the row of the box already under review (as `_refresh` does) changes nothing.
        if len(picked) and int(picked.consensus_id.iloc[0]) != self.data_store.picked_box_id():
            self.data_store.review_box = int(picked.consensus_id.iloc[0])

    def _geometry_set(self, *events):
        self._geometry_inputs.show(self._geometry())

    def _geometry_typed(self, *events):
        self.param.update(self._geometry_inputs.shown())

    def _box_drawn(self, event):
        if event.new is not None:
            self.param.update(dict(zip(("x", "y", "width", "height"), event.new)))

    def _box_changed(self, event=None):
        boxes = self.boxes()
        picked = boxes.consensus_id == self.data_store.picked_box_id(boxes)
        # The picked box's row stays selected, whoever picked it (a click, a key, a refresh).
        self._boxes.selection = boxes.index[picked].tolist()[:1]
        if picked.any():
            row = boxes[picked]
            self.param.update({name: float(row[name].iloc[0]) for name in ("x", "y", "width", "height")})

    def _progress(self) -> tuple[int, int]:
        """Of the subjects passing the filters, how many are reviewed and how many there are (`DataStore.
        review_progress`), worked out again only when the subjects or the review state changed, not per switch."""
        store = self.data_store
        key = (store.subjects, store.review_changes)  # statuses change in place, with a new review_changes
        if self._progress_memo is None or any(new is not old for new, old in zip(key, self._progress_memo[0])):
            self._progress_memo = (key, store.review_progress()[:2])
        return self._progress_memo[1]

    # -- layout ------------------------------------------------------------------------------

    def _heading(self, *events) -> pn.widgets.StaticText:
        """The heading's pane, its text brought up to date (`heading_html`)."""
        text = self.heading_html()
        if text != self._heading_pane.value:
            self._heading_pane.value = text
        return self._heading_pane

    def heading_html(self) -> str:
        """The heading: the subject and its review status, "N of M reviewed", who reviews and who it is assigned to."""
        store = self.data_store
        if store.reviews is None:
            return ("<h3 style='margin:2px 0'>Review</h3>No review store: start zoolens with <code>--reviews</code> "
                    "(in a notebook, <code>Explorer(..., reviews=...)</code>) to review.")
        subject = store.subject
        status = _review_status(store.review_statuses, subject) if subject is not None else "unreviewed"
        who = (f"reviewing as <b>{html.escape(store.reviewer)}</b> ({store.role}; "
               f"{html.escape(store.identity().label)})" if store.reviewer.strip()
               else "<b>enter your name in the sidebar (☰) to decide</b>")
        if store.reviewer.strip() and store.role == "viewer":
            who += ": you can look and export; deciding needs the reviewer role"
        assigned = self.assigned_to()
        if assigned is not None:
            who += f"<br>assigned to <b>{html.escape(assigned)}</b>"
        reviewed, count = self._progress()
        # The reviewer's name is typed by a user: escaped, into an HTML pane.
        return (f"<h3 style='margin:2px 0'>Review of subject {subject}: {html.escape(status)}</h3>"
                f"<small><b class='zoolens-progress'>{reviewed:,} of {count:,} reviewed</b> "
                f"(subjects passing the filters) · {who}</small>")

    def __panel__(self):
        if self.data_store.reviews is None:
            # Nowhere to record a decision: the boxes and the heading saying how to start, no buttons that could
            # only answer with an error.
            return pn.Column(self._heading_pane, self._boxes, sizing_mode="stretch_width")

        def button(label, action, kind="default", width=96):
            widget = pn.widgets.Button(label=label, color=kind, width=width, align="end")
            widget.on_click(lambda event: action())
            return widget

        reason = pn.widgets.TextInput.from_param(self.param.reason, name="Reason", placeholder="why (optional)",
                                                 width=210, align="end")
        identity = self.data_store.identity() if self.data_store.reviewer.strip() else None
        # Only the buttons the role can use (a typed name has every right); the store checks anyway.
        # Rows that wrap (flex boxes): the side column is narrower than the row of controls in a
        # window under about 1,600 px, and a Row then ran past the page's right edge.
        deciding = [] if identity is not None and not identity.may("accept") else [
            pn.FlexBox(button("Accept", self.accept, "success"), button("Reject", self.reject, "danger"),
                       button("Revert last", self.revert_last, "warning", width=110), reason,
                       align_items="flex-end"),
        ]
        # A point project's points have no handles to drag and no size the store would take: redrawing and adding
        # are for boxes.
        if deciding and not consensus_kinds(self.data_store.project).only_points:
            deciding += [
                pn.pane.HTML("<small>Drag the picked box's handles on the image to redraw it; shift-drag with the "
                             "box-draw tool to add a box at once; or draw a box with the box-select tool (or type "
                             "it), then Redraw or Add box:</small>", margin=(0, 10)),
                pn.FlexBox(self._geometry_inputs, button("Redraw", self.redraw, "primary", width=76),
                           button("Add box", self.add, "primary", width=76), align_items="flex-end"),
            ]
        flagging = [] if identity is not None and not identity.may("flag") else [
            button("Flag subject", self.flag, width=110), button("Unflag", self.unflag, width=84)]
        may_assign = identity is None or identity.may("assign")

        def assigning():
            return [] if not may_assign else [
                pn.Row(pn.widgets.TextInput.from_param(self.param.assignee, name="Assign to", width=200,
                                                       placeholder="a reviewer's name"),
                       button("Assign", self.assign), align="end"),
                pn.Row(pn.widgets.TextInput.from_param(self.param.split_among, name="Split the selection among",
                                                       width=200, placeholder="ann, bob, cy"),
                       button("Split", self.split_selection), align="end")]

        # Assigning and the history are looked at now and then: folded, under the everyday controls,
        # and made when first unfolded.
        more = pn.Card(title="Assigning and history" if may_assign else "History", collapsed=True,
                       sizing_mode="stretch_width", margin=(5, 10))

        def unfold(event):
            if not event.new and not more.objects:
                more[:] = [*assigning(), pn.pane.Markdown("#### History of this subject", margin=(0, 5)),
                           self.history_table]
            elif not event.new:  # unfolded again: the subject may have changed while folded
                self._history.value = _history_rows(self.history())

        more.param.watch(unfold, "collapsed")
        self._history_card = more
        return pn.Column(self._heading_pane, self._boxes, *deciding,
                         pn.FlexBox(*flagging, more, align_items="flex-start"), sizing_mode="stretch_width")


def _review_status(statuses: pd.DataFrame, subject_id: int) -> str:
    """One subject's status in ``statuses`` (`DataStore.review_statuses`; unreviewed when absent), as
    `DataStore.review_status_of` gives it, without indexing the whole table on every switch."""
    # The subject's row found first, then its one status read: converting the whole status column (text, one
    # Python string per subject) cost 200 ms a switch at 2.2 million subjects, most of a served switch.
    rows = np.flatnonzero(statuses["subject_id"].to_numpy() == subject_id)
    status = statuses["status"].iat[rows[0]] if len(rows) else None
    return "unreviewed" if status is None or pd.isna(status) else str(status)


def _history_rows(history: pd.DataFrame) -> pd.DataFrame:
    """The history table's rows, newest first; the names and reasons stay text (the table escapes them)."""
    if not len(history):
        return pd.DataFrame({name: pd.Series(dtype=object) for name in HISTORY_COLUMNS})
    rows = history[list(HISTORY_COLUMNS)].iloc[::-1].reset_index(drop=True)
    rows["created_at"] = rows["created_at"].dt.strftime("%Y-%m-%d %H:%M:%S")
    rows["consensus_id"] = rows["consensus_id"].map(lambda box: "subject" if pd.isna(box) else str(box))
    rows["role"] = rows["role"].fillna("").astype(str)  # decisions stored before roles have none
    return rows.astype({"reviewer": str, "action": str, "reason": str, "active": bool})
