"""Each session's view of the shared project: the `DataStore`.

Panel's "structure a data store" pattern: the `project.Project` (canonical tables and
what is derived from them once) is built once per process and shared read-only;
`DataStore` is a `Viewer` made per session: its ``param`` parameters are that
session's filters, current subject, plot selection and volunteer; its ``subjects``
output holds the subjects passing the filters, and its panel is the sidebar.

No file is parsed and nothing is computed here beyond filtering: tables come from
`project`, which builds them with `data_loaders` and `consensus`.
"""

from __future__ import annotations

import html
import threading
from contextlib import contextmanager

import numpy as np
import pandas as pd
import panel as pn
import param
from panel.viewable import Viewer

from data_loaders.images import HOST_NOT_ALLOWED
from project.roles import ROLES, UNVERIFIED, Reviewer
from project.selection import AGAINST_CONSENSUS, ANY, Selection
from project.sorted_subjects import review_status_array
from project.stored import no_rows, rows_of_subjects

from .one_patch import held
from .review_refresh import ReviewReading, shared_reviews
from .reviewed_boxes import decided_rows, reviewed_boxes
from .subject_marks import subject_consensus


@contextmanager
def changes_held(document):
    """Hold ``document``'s events and model bookkeeping until the block ends, walking it only if needed.

    Panel's ``hold(freeze=True)`` sends the views' changes together, and Bokeh's freeze then
    walks every model of the document once at the end to find models added or removed. It
    walks even when no model was (a table's rows or a caption's text changed), and with the
    cutout's plot a walk costs about 0.1 CPU-s: here the walk happens only when Bokeh was told
    that a reference changed (``models.invalidate``) or a root was added or removed.
    """
    if document is None:
        yield
        return
    models = document.models
    if models._freeze_count:  # an outer freeze walks at its end
        with held(document):  # one message to the page, from a worker thread too
            yield
        return
    references_changed = []
    models.invalidate = lambda: references_changed.append(True)  # shadows the method while held
    roots = list(document.roots)
    models._push_freeze()
    try:
        with held(document):
            yield
    finally:
        del models.invalidate
        if references_changed or list(document.roots) != roots:
            models._pop_freeze()  # the walk
        else:
            models._freeze_count -= 1


class DataStore(Selection, Viewer):
    """One session's view of a shared project: filters (`project.selection.Selection`), current subject, selection.

    Its panel is the sidebar of filter widgets, generated from the parameters.
    """

    subject = param.Integer(default=None, allow_None=True, doc="The subject shown in the cutout viewer.")
    show_subject = param.Event(doc="Asks the layout to bring the Subjects tab (the cutout) forward.")
    pictures_fetched = param.Event(doc="A view fetched pictures of other subjects than the current one (a gallery "
                                       "page, or the table's thumbnails of remote pictures): the sidebar's count of "
                                       "pictures not shown follows.")
    mine = param.Boolean(default=False, doc="Keep only the subjects a lead assigned to this session's reviewer: "
                                            "their own queue.")
    volunteer = param.String(default=None, allow_None=True, doc="The volunteer whose marks are listed.")
    highlighted_volunteer = param.String(default=None, allow_None=True,
                                         doc="The volunteer whose marks the cutout draws bold, everyone else's "
                                             "faded (None: all alike).")
    subjects = param.DataFrame(default=None, doc="Output: statistics of the subjects passing the filters, in the "
                                                 "order ``sort_by`` names (most disagreement first by default).")
    # -- review sessions: decisions live in the shared store; these are this session's view of them.
    reviewer = param.String(default="", doc="Who this session's review decisions are attributed to.")
    review_statuses = param.DataFrame(default=None, doc="Output: `ReviewStore.subject_status` of the project's "
                                                        "consensus, as last read.")
    last_decision = param.Integer(default=0, doc="Output: the newest decision id read from the review store.")
    review_changes = param.DataFrame(default=None, doc="Output: the rows of ``subjects`` a read of the review store "
                                                       "found new decisions on: ``row`` (position in ``subjects``), "
                                                       "``subject_id``, ``review_status``. ``subjects`` itself is "
                                                       "updated in place for them (the same rows in the same order), "
                                                       "so views showing statuses or counts update these rows; views "
                                                       "of which subjects pass are left alone.")
    subject_decisions = param.Integer(default=0, doc="Output: a count that goes up when a read of the review store "
                                                     "finds new decisions on the current subject (its boxes, "
                                                     "status or history changed); the views of that subject "
                                                     "redraw on it, not on decisions elsewhere.")
    review_box = param.Integer(default=None, allow_None=True,
                               doc="The current subject's box picked for review (negative: added by a reviewer).")
    drawn_box = param.NumericTuple(default=None, allow_None=True, length=4,
                                   doc="A box the reviewer drew on the cutout, for a redraw or an added box: "
                                       "x, y, width, height in image pixels (y down).")
    role = param.Selector(default="lead", objects=list(ROLES), constant=True,
                          doc="What the reviewer may do (`project.roles`), set by the server's sign-in; "
                              "without one, anyone is a lead under the name they type.")
    authentication = param.String(default=UNVERIFIED, constant=True,
                                  doc="How the server established the reviewer's name (`project.roles."
                                      "AUTHENTICATIONS`); recorded with every decision.")

    def __init__(self, **params):
        self._session_lock = threading.RLock()
        super().__init__(**params)
        Reviewer(self.reviewer or "-", self.role, self.authentication)  # an unknown authentication is refused
        if self.reviewer_signed_in:
            self.param.reviewer.constant = True  # the sign-in's name, for this session only: nothing renames it
        self._box_status = None
        #: The shared reading of the review store this session shows (`dashboard.review_refresh`).
        self._reading: ReviewReading | None = None
        #: Subjects whose review state changed in the reading being applied (None: not known, take it whole).
        self._changed_subjects: np.ndarray | None = None
        self._reviewed_memo = None
        self._progress_memo = None
        with param.discard_events(self):
            self._read_reviews()
        self._update_subjects()
        if self.subject is None and len(self.subjects):
            self.subject = int(self.subjects.subject_id.iloc[0])

    def __setattr__(self, name, value):
        # Setting a parameter (a new subject, a filter) updates several views' Bokeh models; in a
        # session, Bokeh would walk the whole document after each of them. Held and frozen, the
        # views' changes go to the browser together and the document is walked once.
        # A served session's callbacks run one at a time (`dashboard.session_threads`), but other
        # threads can reach the store (a notebook's, a test's): the session lock lets one change and
        # its views' updates finish before the next begins. Other sessions do not wait for it.
        if name not in self.param or "_session_lock" not in self.__dict__:
            super().__setattr__(name, value)
            return
        with self._session_lock, changes_held(pn.state.curdoc):
            super().__setattr__(name, value)

    @param.depends("subject", watch=True)
    def _forget_drawn_box(self):
        """A drawn box belongs to the subject it was drawn on."""
        self.drawn_box = None

    @param.depends("workflow", "tool", "min_votes", "min_volunteers", "disagreement", "metadata_ranges",
                   "selection", "mine", "score_threshold", "machine_disagrees", "sort_by", "machine_against", watch=True)
    def _update_subjects(self):
        self.subjects = self.passing_filters()

    def passing_filters(self, plot_selection: bool = True) -> pd.DataFrame:
        """The subjects passing this session's filters (and its plot selection unless ``plot_selection`` is False).

        Without the plot selection: the subjects a box-select chose from, which the
        agreement plots draw faded behind the selected ones.
        """
        # The statuses table is the process's shared reading (`dashboard.review_refresh`): the subjects sorted with
        # it are made once for all sessions (`project.sorted_subjects`).
        subjects = self.passing(self.review_statuses, plot_selection)
        if self.mine:
            subjects = subjects[subjects.subject_id.isin(self.assigned_to_me())].reset_index(drop=True)
        return subjects

    def assigned_to_me(self) -> np.ndarray:
        """Ids of the subjects a lead assigned to this session's reviewer (read from the store now)."""
        if self.reviews is None or not self.reviewer:
            return np.array([], dtype=np.int64)
        assigned = self.reviews.assignments(self.project.consensus_source)
        return assigned.subject_id[assigned.assignee == self.reviewer].to_numpy(dtype=np.int64)

    @param.depends("reviewer", watch=True)
    def _my_queue_changed(self):
        if self.mine:
            self._update_subjects()

    def subject_ids(self) -> np.ndarray:
        """Ids of the subjects passing this session's filters, as last computed."""
        return self.subjects.subject_id.to_numpy(dtype=np.int64)

    @param.depends("review_status", watch=True)
    def _review_filter_changed(self):
        self._update_subjects()

    @param.depends("review_statuses", watch=True)
    def _review_statuses_changed(self):
        changed, self._changed_subjects = self._changed_subjects, None
        if changed is not None and not len(changed):
            return
        # Which subjects pass, and their machine numbers against the reviewed catalogue, follow the decisions.
        against_decisions = self.project.machine is not None and self.machine_against != AGAINST_CONSENSUS
        if self.review_status != ANY or self.mine or against_decisions:
            subjects = self.passing_filters()
            if not subjects.subject_id.equals(self.subjects.subject_id) or against_decisions:
                self.subjects = subjects
                return
            # The same subjects pass: their rows are updated as below.
        # Otherwise the same subjects pass in the same order, and only the rows of those a new decision was on
        # change, in their status column and the counts: most new decisions (read by every open session) are on
        # none of them. Each session filtering its subjects again and rebuilding its table after each decision
        # made anywhere was most of the server's CPU with 30 reviewers (py-spy, bench/results/sessions.md).
        if self._reading is None:
            self.subjects = self.subjects.assign(review_status=self.review_status_of(self.subjects.subject_id).array)
            return
        self._apply_review_changes(changed)

    def _apply_review_changes(self, changed: np.ndarray | None) -> None:
        """Update the rows of ``subjects`` with new decisions (all rows when ``changed`` is None) in place, and say
        which in ``review_changes``."""
        subjects = self.subjects
        ids = subjects.subject_id.to_numpy(dtype=np.int64)
        rows = np.arange(len(ids)) if changed is None else np.flatnonzero(np.isin(ids, changed))
        if not len(rows):
            return
        statuses = self._reading.status_of(ids[rows]).to_numpy()
        differ = statuses != subjects.review_status.to_numpy()[rows]
        if differ.any():
            # The session's own table (`passing_filters` makes a new one): views holding rows cut from it keep theirs.
            subjects.iloc[rows[differ], subjects.columns.get_loc("review_status")] = statuses[differ]
        self.review_changes = pd.DataFrame({"row": rows, "subject_id": ids[rows], "review_status": statuses})

    # -- review decisions ------------------------------------------------------------------

    @property
    def reviewer_signed_in(self) -> bool:
        """The reviewer is the server's signed-in user, not a name typed into the page."""
        return self.authentication != UNVERIFIED

    def identity(self) -> Reviewer:
        """Who this session decides as: its reviewer with their role and sign-in, as the store records them."""
        return Reviewer(self.reviewer, self.role, self.authentication)

    def _read_reviews(self, latest: int | None = None) -> None:
        """Take the subjects' and boxes' review state as of decision ``latest`` (default: the store's newest) from
        the process's shared reading (`dashboard.review_refresh`), and apply what changed since this session's last."""
        if self.reviews is None:
            self.review_statuses = pd.DataFrame({"subject_id": pd.Series(dtype=np.int64),
                                                 "status": pd.Series(dtype="string")})
            return
        shared = shared_reviews(self.reviews, self.project)
        reading = shared.reading(shared.newest_decision() if latest is None else latest)
        if reading is self._reading:
            return
        changed = None if self._reading is None else shared.changed_since(self._reading.decision, reading)
        before = self._current_review_row() if changed is None else None
        self._reading, self._box_status, self._changed_subjects = reading, reading.box_status, changed
        try:
            self.review_statuses = reading.subject_status
        finally:
            self._changed_subjects = None
        if (self._current_review_row() != before if changed is None
                else self.subject is not None and bool(np.isin(self.subject, changed))):
            self.subject_decisions += 1
        self.last_decision = reading.decision  # last: a refresh seeing it finds the outputs changed already

    def _current_review_row(self) -> tuple | None:
        """The current subject's row of ``review_statuses`` (counts by status, flag, last decision)."""
        statuses = self.review_statuses
        if statuses is None or self.subject is None:
            return None
        row = statuses[(statuses.subject_id == self.subject).to_numpy(dtype=bool)]
        return tuple(row.iloc[0]) if len(row) else None

    def refresh_reviews(self, poll_age: float = 0.0) -> bool:
        """Read the review state again if anyone decided since the last read.

        Cheap when nothing changed (one ``max(id)`` query, at most one per ``poll_age`` seconds for all the
        process's sessions), so a served session calls it periodically; the session that decides calls it at
        once. The new state is read once for all sessions (`dashboard.review_refresh`).

        Parameters
        ----------
        poll_age : float
            How old, in seconds, the process's last look at the store's newest decision may be (0: look now).

        Returns
        -------
        bool
            Whether there were new decisions.
        """
        if self.reviews is None:
            return False
        latest = shared_reviews(self.reviews, self.project).newest_decision(poll_age)
        if latest <= self.last_decision:  # most periodic calls: nothing to hold the page for
            return False
        # Compared again under the lock: a refresh running on another thread (the periodic one, while the
        # reviewer's own decision refreshes) has then finished changing the outputs, not just begun (the
        # outputs change before ``last_decision``).
        with self._session_lock, changes_held(pn.state.curdoc):  # the box states and outputs change together
            if latest <= self.last_decision:
                return False
            self._read_reviews(latest)
        return True

    def review_status_of(self, subject_ids) -> pd.Series:
        """The review status of each subject id (unreviewed when the store knows nothing of it)."""
        if self._reading is not None:
            return self._reading.status_of(subject_ids)
        return pd.Series(review_status_array(subject_ids, self.review_statuses))

    def picked_box_id(self, boxes: pd.DataFrame | None = None) -> int | None:
        """The box under review: ``review_box`` when it is one of the current subject's boxes, else the first.

        Derived rather than set on every subject change, so switching subject redraws
        the cutout once, not twice. ``boxes`` is `reviewed_consensus_of` when the caller
        has it already. None when the subject has no box.
        """
        ids = (self.reviewed_consensus_of() if boxes is None else boxes).consensus_id
        if self.review_box is not None and (ids == self.review_box).any():
            return self.review_box
        return int(ids.iloc[0]) if len(ids) else None

    def reviewed_consensus_of(self, subject_id: int | None = None) -> pd.DataFrame:
        """A subject's consensus boxes as reviewed: the boxes passing ``min_votes`` and those reviewers added.

        Returns
        -------
        DataFrame
            ``consensus_id`` (negative for added boxes), ``status`` (unreviewed, accepted,
            rejected, redrawn, added), the effective geometry ``x`` ... ``angle`` (redrawn
            boxes at their new place), the aggregated geometry ``original_x`` ...
            ``original_angle`` (NaN for added boxes), ``n_votes``, ``n_seen``, and the last
            decision's ``reviewer`` and ``decided_at``. Shared with other callers: do not modify it.
        """
        subject_id = self.subject if subject_id is None else subject_id
        # The cutout's layers and the review panel each ask for it on every subject switch;
        # it only changes with the subject, the vote threshold or a new reading of the store.
        # The memo holds the status table itself, compared by identity: a new reading is a new table.
        memo = self._reviewed_memo
        if memo is None or memo[:2] != (subject_id, self.min_votes) or memo[2] is not self._box_status:
            memo = self._reviewed_memo = (subject_id, self.min_votes, self._box_status,
                                          self._reviewed_consensus(subject_id))
        return memo[3]

    def _reviewed_consensus(self, subject_id: int | None) -> pd.DataFrame:
        # From the project's arrays (`dashboard.subject_marks`): a switch asks for it, and the table's rows
        # cost several times more to cut with pandas.
        boxes = subject_consensus(self.project, subject_id)
        passing = np.nan_to_num(boxes["n_votes"]) >= self.min_votes  # as `consensus_of`
        decided = (None if self._box_status is None or subject_id is None
                   else decided_rows(self._box_status, subject_id))
        return reviewed_boxes(-1 if subject_id is None else subject_id,
                              {name: values[passing] for name, values in boxes.items()}, decided)

    # -- what the views ask for ------------------------------------------------------------

    def marks_of(self, subject_id: int | None = None) -> pd.DataFrame:
        """Marks of a subject (default: the current one) passing the tool filter."""
        subject_id = self.subject if subject_id is None else subject_id
        if subject_id is None:
            return no_rows(self.project.marks)
        marks = self.project.marks_of(subject_id)
        return marks if self.tool == ANY else marks[marks.tool_label == self.tool]

    def consensus_of(self, subject_id: int | None = None) -> pd.DataFrame:
        """Consensus boxes of a subject (default: the current one) with at least ``min_votes``."""
        subject_id = self.subject if subject_id is None else subject_id
        if subject_id is None:
            return self.project.consensus.iloc[0:0]
        boxes = self.project.consensus_of(subject_id)
        # Boxes whose producer recorded no vote count pass only the "any" threshold.
        return boxes[(boxes.n_votes.fillna(0) >= self.min_votes).to_numpy(dtype=bool)]

    def filtered_marks(self, subjects: pd.DataFrame | None = None) -> pd.DataFrame:
        """Marks of every subject passing the filters (or of ``subjects``), for the agreement plots.

        A Dask DataFrame for a store-backed project (`project.stored`): datashader aggregates it
        partition by partition.
        """
        subjects = self.subjects if subjects is None else subjects
        marks = self.project.marks
        if len(subjects) < len(self.project.subject_stats):
            marks = rows_of_subjects(marks, subjects.subject_id)
        return marks if self.tool == ANY else marks[marks.tool_label == self.tool]

    def filtered_consensus(self, subjects: pd.DataFrame | None = None) -> pd.DataFrame:
        """Consensus boxes of every subject passing the filters (or of ``subjects``), with at least ``min_votes``."""
        subjects = self.subjects if subjects is None else subjects
        boxes = self.project.consensus
        boxes = boxes[(boxes.n_votes.fillna(0) >= self.min_votes).to_numpy(dtype=bool)]
        if len(subjects) < len(self.project.subject_stats):
            boxes = boxes[boxes.subject_id.isin(subjects.subject_id)]
        return boxes

    def step_subject(self, step: int) -> None:
        """Move the current subject ``step`` places along the filtered subjects (wrapping)."""
        stepped = self.subjects_along([step])
        if stepped:
            self.subject = stepped[0]

    def subjects_along(self, steps) -> list[int]:
        """The subjects each of ``steps`` places along the filtered subjects from the current one (wrapping), as
        `step_subject` moves; the first subject for every step when the current one is not among them."""
        ids = self.subjects.subject_id.to_numpy()
        if not len(ids):
            return []
        here = np.flatnonzero(ids == self.subject)
        return [int(ids[(int(here[0]) + step) % len(ids) if len(here) else 0]) for step in steps]

    def clear_selection(self) -> None:
        self.selection = None

    # -- the sidebar -----------------------------------------------------------------------

    def __panel__(self):
        filters = pn.Param(
            self, parameters=["workflow", "tool", "min_votes", "min_volunteers", "disagreement"],
            widgets={"workflow": {"width": 250}, "tool": {"width": 250}, "min_votes": {"width": 250},
                     "min_volunteers": {"width": 250},
                     "disagreement": {"type": pn.widgets.RangeSlider, "step": 0.01, "width": 250}},
            show_name=False, width=260,
        )
        metadata_sliders = [self._metadata_slider(column) for column in self.project.metadata_columns]
        clear = pn.widgets.Button(label="Clear plot selection", width=250)
        clear.on_click(lambda event: self.clear_selection())
        return pn.Column(
            filters, *metadata_sliders, *self._machine_widgets(),
            pn.widgets.Select.from_param(self.param.sort_by, name="Sort subjects by", width=250),
            *self._review_widgets(),
            self._counts_pane(), self._image_problems_pane(),
            clear, sizing_mode="stretch_width",
        )

    def _machine_widgets(self) -> list:
        """With machine detections: what to compare them with, and keep where humans and machine disagree."""
        if self.project.machine is None:
            return []
        against = ([pn.widgets.Select.from_param(self.param.machine_against, name="Compare the machine with",
                                                 width=250)] if self.reviews is not None else [])
        return [*against, pn.widgets.Checkbox.from_param(self.param.machine_disagrees, name="Humans and machine disagree",
                                               width=250)]

    def _review_widgets(self) -> list:
        """The review-status filter and who decides: a name box, unless the server signed the user in."""
        if self.reviews is None:
            return []
        status = pn.widgets.Select.from_param(self.param.review_status, name="Review status", width=250)
        if self.reviewer_signed_in:
            # The name comes from the authentication provider, still text: escaped into HTML.
            identity = self.identity()
            who = pn.pane.HTML(f"Reviewing as <b>{html.escape(self.reviewer)}</b> ({self.role})<br>"
                               f"<small>{html.escape(identity.label)}</small>", width=250)
        else:
            who = pn.widgets.TextInput.from_param(self.param.reviewer, name="Your name (reviewer)", width=250,
                                                  placeholder="needed to record decisions")
        mine = pn.widgets.Checkbox.from_param(self.param.mine, name="Only subjects assigned to me", width=250)
        return [status, who, mine]

    def _metadata_slider(self, column: str):
        values = self.project.subject_stats[column].dropna()
        low, high = float(values.min()), float(values.max())
        slider = pn.widgets.RangeSlider(label=column, start=low, end=high, value=(low, high),
                                        step=(high - low) / 200 or 1.0, width=250)

        def update(event):
            ranges = dict(self.metadata_ranges)
            if event.new == (low, high):
                ranges.pop(column, None)
            else:
                ranges[column] = event.new
            self.metadata_ranges = ranges

        slider.param.watch(update, "value")
        return slider

    def _image_problems_pane(self) -> pn.widgets.StaticText:
        """The sidebar's line on pictures not shown (`_image_problems`), its text changed in place when it changes:
        it was a method Panel re-ran as a Markdown pane on every subject switch, mostly to say nothing."""
        problems = pn.widgets.StaticText(value=self._image_problems(), sizing_mode="stretch_width")

        def follow(*events):
            text = self._image_problems()
            if text != problems.value:
                problems.value = text

        self.param.watch(follow, ["subject", "pictures_fetched"])
        return problems

    def _image_problems(self) -> str:
        """How many pictures could not be shown so far, and why, in plain words (empty when all could)."""
        if self.subject is not None:
            # The current one counted now, whichever pane asks first; one on an image host once it is read (the
            # session recounts every PICTURE_RECOUNT_MS where there are such pictures), not holding up the page.
            self.project.picture_read(self.subject)
        counts = self.project.image_problem_counts()
        if not counts:
            return ""
        reasons = "; ".join(f"{html.escape(reason)}: {count:,}" for reason, count in counts.items())
        # What to do about the one reason the team can undo from where it starts zoolens.
        allow = (". Allow a host with --image-host (image_hosts in Python)"
                 if HOST_NOT_ALLOWED in counts else "")
        return f"Pictures not shown so far: {sum(counts.values()):,} ({reasons}){allow}"

    def review_progress(self) -> tuple[int, int, dict[str, int]]:
        """Of the subjects passing the filters: how many are reviewed, how many there are, and per
        reviewer the subjects whose last decision in effect is theirs."""
        # Asked by the sidebar's counts and the review heading after the same change: worked out once. The
        # statuses change in place, each time with a new ``review_changes``.
        key = (self.subjects, self.review_changes, self._reading)
        memo = self._progress_memo
        if memo is None or any(new is not old for new, old in zip(key, memo[0])):
            reviewed = int((self.subjects.review_status != "unreviewed").sum())
            by_reviewer: dict[str, int] = {}
            if self._reading is not None:
                every = len(self.subjects) == len(self.project.subject_stats)
                by_reviewer = self._reading.reviewers_of(None if every else self.subjects.subject_id)
            memo = self._progress_memo = (key, (reviewed, len(self.subjects), by_reviewer))
        return memo[1]

    def next_unreviewed(self) -> bool:
        """Move to the next unreviewed subject after the current one (wrapping); whether there was one."""
        ids = self.subjects.subject_id.to_numpy()
        open_ = (self.subjects.review_status == "unreviewed").to_numpy()
        here = np.flatnonzero(ids == self.subject)
        start = int(here[0]) + 1 if len(here) else 0
        order = (np.arange(len(ids)) + start) % max(len(ids), 1)
        candidates = order[open_[order]] if len(ids) else order
        if not len(candidates):
            return False
        self.subject = int(ids[candidates[0]])
        return True

    def _counts_pane(self) -> pn.widgets.StaticText:
        """The sidebar's counts (`_counts`), their text changed in place when the subjects or their decisions
        change. A new pane per decision made anywhere had Bokeh walk every open page; a Markdown pane, or
        Panel's re-run of a method (``ParamMethod``), sends every property of the pane again with its text
        (a few ms in each open session per decision); this sends the text."""
        counts = pn.widgets.StaticText(value=self._counts(), sizing_mode="stretch_width")

        def follow(*events):
            text = self._counts()
            if text != counts.value:
                counts.value = text

        self.param.watch(follow, ["subjects", "review_changes"])
        return counts

    def _counts(self) -> str:
        """The counts' HTML: subjects passing the filters, how many reviewed and by whom (names escaped)."""
        total = len(self.project.subject_stats)
        selected = "" if self.selection is None else " (plot selection active)"
        text = f"<b>{len(self.subjects):,}</b> of {total:,} subjects{selected}"
        if self.reviews is not None:
            reviewed, count, by_reviewer = self.review_progress()
            people = " · ".join(f"{html.escape(name)} {number:,}" for name, number in by_reviewer.items())
            text += f"<br><b>{reviewed:,}</b> of {count:,} reviewed" + (f" ({people})" if people else "")
        return text
