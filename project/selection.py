"""`Selection`: the filters that choose a project's subjects, the same in the app and on the command line.

A served session's `dashboard.data_store.DataStore` is a `Selection` with widgets; the
command line's export makes one with every filter at its default (all subjects). The
filters' values are what a catalogue's provenance records, so a catalogue made either
way from the same subjects says the same.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import param

from .core import Project
from .machine import AGAINST_CONSENSUS, AGAINST_REVIEWED, SUBJECT_COLUMNS, MachineComparison, reviewed_comparison
from .reviews import SUBJECT_STATUSES, ReviewStore
from .sorted_subjects import SortedSubjects, review_status_array

#: The value of a selector filter that keeps everything.
ANY = "any"

#: Filters recorded, with their values, in the provenance of every export.
RECORDED_FILTERS = ("workflow", "tool", "min_votes", "min_volunteers", "disagreement", "metadata_ranges")
#: How the subjects can be ordered, most first: by the volunteers' disagreement, how many volunteers saw them, how many
#: marks they drew, how many consensus marks those made, or (with machine detections) how much humans and machine
#: disagree. Name -> subject statistics column.
SORTS = {"disagreement": "disagreement", "volunteers": "n_volunteers", "marks": "n_marks",
         "consensus marks": "n_consensus", "humans vs machine": "machine_disagreement"}
#: The orders only machine detections give.
MACHINE_SORTS = ("humans vs machine",)
#: Each order in words, as a page says it ("most disagreement first").
SORT_WORDS = {"disagreement": "most disagreement first", "volunteers": "most volunteers first",
              "marks": "most marks first", "consensus marks": "most consensus marks first",
              "humans vs machine": "most disagreement between humans and machine first"}
#: The score threshold a project's detections start at, when their scores reach it.
DEFAULT_SCORE_THRESHOLD = 0.5


class Selection(param.Parameterized):
    """Filters over one project's subjects; `passing` gives the subjects they keep."""

    project = param.ClassSelector(class_=Project, constant=True, doc="The shared, read-only project.")
    workflow = param.Selector(default=ANY, objects=[ANY], doc="Keep subjects classified in this workflow version.")
    tool = param.Selector(default=ANY, objects=[ANY], doc="Show only marks of this tool.")
    min_votes = param.Integer(default=0, bounds=(0, None),
                              doc="Keep subjects with a consensus box of at least this many votes.")
    min_volunteers = param.Integer(default=0, bounds=(0, None),
                                   doc="Keep subjects seen by at least this many volunteers.")
    disagreement = param.Range(default=(0.0, 1.0), bounds=(0.0, 1.0),
                               doc="Keep subjects whose disagreement score lies in this range.")
    metadata_ranges = param.Dict(default={}, doc="Metadata column -> (low, high): keep subjects inside.")
    selection = param.Array(default=None, allow_None=True,
                            doc="Subject ids picked in a plot (None: no plot selection).")
    review_status = param.Selector(default=ANY, objects=[ANY, *SUBJECT_STATUSES],
                                   doc="Keep subjects with this review status.")
    reviews = param.ClassSelector(class_=ReviewStore, default=None, allow_None=True, constant=True,
                                  doc="The review store every session of the process shares (None: no reviewing).")
    machine_against = param.Selector(default=AGAINST_CONSENSUS, objects=[AGAINST_CONSENSUS, AGAINST_REVIEWED],
                                     doc="Compare the machine's detections with the consensus, or with the reviewed "
                                         "catalogue (the review decisions applied; needs a review store).")
    score_threshold = param.Number(default=DEFAULT_SCORE_THRESHOLD, bounds=(0.0, 1.0),
                                   doc="Machine detections scoring at least this count (and are drawn).")
    machine_disagrees = param.Boolean(default=False, doc="Keep subjects where humans and machine disagree: "
                                                         "a detection no consensus mark matches, or a consensus "
                                                         "mark no detection matches, at the score threshold.")
    sort_by = param.Selector(default="disagreement", objects=list(SORTS),
                             doc="Order subjects, most first, by the volunteers' disagreement, the volunteers who saw "
                                 "them, the marks drawn, the consensus marks, or (with machine detections) how many "
                                 "marks humans and machine disagree on (machine-only plus human-only).")

    def __init__(self, **params):
        super().__init__(**params)
        self.param.workflow.objects = [ANY, *self.project.workflows]
        self.param.tool.objects = [ANY, *self.project.tools]
        if self.project.machine is None:
            self.param.sort_by.objects = [name for name in SORTS if name not in MACHINE_SORTS]
        else:
            low, high = self.project.machine.score_range
            low, high = min(low, 0.0), max(high, low + 1e-9)
            self.param.score_threshold.bounds = (low, high)
            if not low <= self.score_threshold <= high:
                self.score_threshold = low

    def machine(self) -> MachineComparison | None:
        """The detections' comparison the filters use: with the consensus, or the reviewed catalogue as of the
        store's newest decision (`machine_against`); None without detections."""
        machine = self.project.machine
        if machine is None or self.machine_against == AGAINST_CONSENSUS or self.reviews is None:
            return machine
        return reviewed_comparison(self.project, self.reviews)

    def passing(self, review_statuses: pd.DataFrame | None = None, plot_selection: bool = True) -> pd.DataFrame:
        """Statistics of the subjects the filters keep, most disagreement first.

        Parameters
        ----------
        review_statuses : DataFrame, optional
            ``subject_id`` and ``status`` of the subjects with a review status (`ReviewStore.subject_status`);
            the others (every subject by default) are unreviewed. Added as the ``review_status`` column.
        plot_selection : bool
            Apply the plot selection too (default); without it, the subjects a plot's
            box-select chose from.
        """
        stats = self.project.subject_stats
        machine = self.machine()
        keep = np.ones(len(stats), dtype=bool)
        if self.workflow != ANY:
            keep &= stats.subject_id.isin(self.project.workflows[self.workflow]).to_numpy()
        if self.tool != ANY:
            keep &= stats.subject_id.isin(self.project.subjects_with_tool(self.tool)).to_numpy()
        keep &= (stats.n_volunteers >= self.min_volunteers).to_numpy()
        if self.min_votes > 0:
            keep &= (stats.max_votes >= self.min_votes).to_numpy()
        low, high = self.disagreement
        if (low, high) != self.param.disagreement.bounds:
            keep &= stats.disagreement.between(low, high).to_numpy()
        for column, (low, high) in self.metadata_ranges.items():
            keep &= stats[column].between(low, high).to_numpy()
        if plot_selection and self.selection is not None:
            keep &= stats.subject_id.isin(self.selection).to_numpy()
        status = None if self.review_status == ANY else self.review_status
        if machine is None:
            # Sorted once per project and decision state, shared by the sessions: a filter is a mask over it.
            return SortedSubjects.of(stats, SORTS[self.sort_by], review_statuses).passing(keep, status)
        stats = stats.assign(review_status=review_status_array(stats.subject_id, review_statuses))
        counts = machine.subject_counts(self.score_threshold)[list(SUBJECT_COLUMNS)]
        stats = stats.join(counts, on="subject_id")
        stats[list(SUBJECT_COLUMNS)] = stats[list(SUBJECT_COLUMNS)].fillna(0).astype(np.int64)
        if status is not None:
            keep &= (stats.review_status == status).to_numpy()
        if self.machine_disagrees:
            keep &= (stats.machine_disagreement > 0).to_numpy()
        return stats[keep].sort_values([SORTS[self.sort_by], "subject_id"], ascending=[False, True],
                                       na_position="last", ignore_index=True)

    def subject_ids(self) -> np.ndarray:
        """Ids of the subjects the filters keep (a session's `DataStore` knows their review status)."""
        return self.passing().subject_id.to_numpy(dtype=np.int64)

    def recorded(self) -> dict:
        """The filters as a catalogue's provenance records them."""
        recorded = {name: getattr(self, name) for name in RECORDED_FILTERS}
        recorded["plot_selection_subjects"] = None if self.selection is None else len(self.selection)
        recorded["review_status"] = self.review_status
        if self.project.machine is not None:
            recorded["machine"] = {"detections": self.project.machine.sources, "score_threshold": self.score_threshold,
                                   "against": self.machine().against,
                                   "humans_and_machine_disagree": self.machine_disagrees}
        return recorded
