"""The review refresh shared by a process's sessions: the store read once per new decision, not once per session.

Every open session shows decisions made anywhere within seconds: its periodic callback looks
for new decisions. With 30 reviewers, each session reading the statuses, filtering its
subjects again and rebuilding its subjects table and counts after every decision made
anywhere was most of the server's CPU (py-spy, bench/results/sessions.md). Here the work
common to all sessions is done once per process and per new decision:

- the store's newest decision id is asked at most once per ``poll_age`` seconds for all sessions
  (`SharedReviews.newest_decision`);
- the review state (`ReviewReading`: box and subject statuses, the reviewers of each subject) is
  read and worked out once per new decision (`SharedReviews.reading`), from the reading before
  and the decisions made since (`ReviewStore.review_state`); the subjects sorted with
  the subject statuses for filtering are made once per reading too (`project.sorted_subjects`);
- the subjects whose review state changed from one reading to the next are found once
  (`SharedReviews.changed_since`), so a session finds in its own subjects only those rows to
  update, and updates nothing when it shows none of them.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass

import numpy as np
import pandas as pd

from project import Project
from project.reviews import ReviewState, ReviewStore

#: How many readings back a session can catch up row by row; a session further behind (it slept
#: through many decisions) takes the whole new state, as at its first reading.
KEPT_CHANGES = 64


@dataclass(frozen=True)
class ReviewReading:
    """The review state of a project's consensus as of one decision: read once, shared read-only by the sessions."""

    #: The newest decision id the reading includes.
    decision: int
    #: The store's state the tables below come from; the next reading starts from it.
    state: ReviewState
    #: `ReviewStore.box_status` indexed by subject_id and consensus_id (`ReviewStore.review_state`).
    box_status: pd.DataFrame
    #: `ReviewStore.subject_status` with the project's consensus.
    subject_status: pd.DataFrame
    #: Each decided subject's status, indexed by subject_id.
    status_by_subject: pd.Series
    #: Subject ids and reviewer numbers of the (subject, reviewer) pairs with a box decision in effect, and
    #: the reviewers' names by number: who reviewed how many of any set of subjects, without a groupby.
    reviewed_subjects: np.ndarray
    reviewer_numbers: np.ndarray
    reviewer_names: np.ndarray

    @classmethod
    def read(cls, reviews: ReviewStore, project: Project, decision: int,
             since: ReviewReading | None = None) -> ReviewReading:
        """Read the store's review state of ``project``'s consensus, which includes decision ``decision``:
        only the decisions made after ``since``, an earlier reading, when given."""
        state = reviews.review_state(project.consensus_source, project.consensus,
                                     since=None if since is None else since.state)
        boxes, subjects = state.box_status, state.subject_status
        status_by_subject = subjects.set_index("subject_id")["status"]
        pairs = boxes[["subject_id", "reviewer"]].drop_duplicates()
        numbers, names = pd.factorize(pairs["reviewer"].astype(str))
        return cls(decision=decision, state=state, box_status=boxes.set_index(["subject_id", "consensus_id"]),
                   subject_status=subjects,
                   status_by_subject=status_by_subject,
                   reviewed_subjects=pairs["subject_id"].to_numpy(np.int64), reviewer_numbers=numbers,
                   reviewer_names=np.asarray(names, dtype=object))

    def status_of(self, subject_ids) -> pd.Series:
        """The review status of each subject id (unreviewed when the store knows nothing of it)."""
        return statuses_of(self.status_by_subject, subject_ids)

    def reviewers_of(self, subject_ids=None) -> dict[str, int]:
        """Per reviewer, how many of ``subject_ids`` (default: all) have a box decision in effect that is theirs,
        most first."""
        numbers = self.reviewer_numbers
        if subject_ids is not None:
            numbers = numbers[np.isin(self.reviewed_subjects, np.asarray(subject_ids, dtype=np.int64))]
        counts = np.bincount(numbers, minlength=len(self.reviewer_names))
        order = np.lexsort((self.reviewer_names.astype(str), -counts))
        return {str(self.reviewer_names[at]): int(counts[at]) for at in order if counts[at]}


def statuses_of(status_by_subject: pd.Series, subject_ids) -> pd.Series:
    """``status_by_subject`` (indexed by subject id) looked up for each of ``subject_ids``, unreviewed when absent."""
    return (pd.Series(np.asarray(subject_ids, dtype=np.int64)).map(status_by_subject)
            .astype("string").fillna("unreviewed"))


def changed_subjects(before: ReviewReading, after: ReviewReading) -> np.ndarray:
    """Ids of the subjects whose status row or box decisions differ between two readings, sorted.

    A reading that read only the decisions since ``before`` knows them; otherwise (it read the
    store whole) the two readings' tables are compared. Any decision on a subject changes its row of
    `ReviewStore.subject_status` (its last reviewer and time); its box rows are compared too, so a change
    that kept both is still found.
    """
    if after.state.changed is not None:
        return after.state.changed
    return np.unique(np.concatenate([_differing_subjects(before.subject_status, after.subject_status),
                                     _differing_subjects(before.box_status.reset_index(),
                                                         after.box_status.reset_index())]))


def _differing_subjects(before: pd.DataFrame, after: pd.DataFrame) -> np.ndarray:
    """Subject ids of the rows in one table and not the other (rows compared whole)."""
    if before["subject_id"].equals(after["subject_id"]) and before.columns.equals(after.columns):
        # The same rows (a subject status table with every subject of the consensus: a new decision
        # adds no row): compared column by column, without hashing every row of both.
        differ = np.zeros(len(after), dtype=bool)
        for column in after.columns:
            old, new = before[column], after[column]
            same = (old == new).fillna(False).to_numpy(dtype=bool) | (old.isna() & new.isna()).to_numpy(dtype=bool)
            differ |= ~same
        return after["subject_id"].to_numpy(np.int64)[differ]
    both = pd.concat([before, after], ignore_index=True)
    return both.loc[~both.duplicated(keep=False), "subject_id"].to_numpy(np.int64)


class SharedReviews:
    """One review store's decisions on one project's consensus, as this process last read them.

    Thread-safe: sessions on worker threads ask at once; one reads while the others wait for its
    result rather than read the same again.
    """

    def __init__(self, reviews: ReviewStore, project: Project):
        # Weak: the registry's values must not keep its keys alive.
        self._reviews, self._project = weakref.ref(reviews), weakref.ref(project)
        self._lock = threading.Lock()
        self._newest: int | None = None
        self._asked_at = -np.inf
        self._reading: ReviewReading | None = None
        #: (decision of a reading, decision of the next, subjects changed between them), oldest first.
        self._changes: deque[tuple[int, int, np.ndarray]] = deque(maxlen=KEPT_CHANGES)
        #: How many times the store's review state was read (for tests and benchmarks).
        self.reads = 0

    def newest_decision(self, poll_age: float = 0.0) -> int:
        """The store's newest decision id, asked now unless the process asked less than ``poll_age`` seconds ago."""
        with self._lock:
            now = time.monotonic()
            if self._newest is None or now - self._asked_at >= poll_age:
                self._newest, self._asked_at = self._reviews().last_decision_id(), now
            return self._newest

    def reading(self, decision: int) -> ReviewReading:
        """The review state as of decision ``decision`` or newer: read from the store only if no session has."""
        with self._lock:
            known = self._reading
            if known is None or known.decision < decision:
                reading = ReviewReading.read(self._reviews(), self._project(), decision, since=known)
                self.reads += 1
                if known is not None:
                    self._changes.append((known.decision, reading.decision, changed_subjects(known, reading)))
                self._reading = known = reading
                if self._newest is None or self._newest < decision:
                    self._newest = decision
            return known

    def changed_since(self, decision: int, reading: ReviewReading) -> np.ndarray | None:
        """Ids of the subjects whose review state changed from the reading of ``decision`` to ``reading``.

        None when that is no longer known (more than `KEPT_CHANGES` readings back, or a reading
        this process never made): the caller takes the whole state.
        """
        if decision == reading.decision:
            return np.array([], dtype=np.int64)
        with self._lock:
            steps = list(self._changes)
        changed, at = [], reading.decision
        for start, end, subjects in reversed(steps):
            if end > at:
                continue  # newer than the reading asked about
            if end < at:
                return None  # a gap: not a reading of this chain
            changed.append(subjects)
            at = start
            if at == decision:  # most often one step: its ids are sorted and unique already
                return changed[0] if len(changed) == 1 else np.unique(np.concatenate(changed))
        return None


#: Review store -> project -> its `SharedReviews`: one per process.
_SHARED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_SHARED_LOCK = threading.Lock()


def shared_reviews(reviews: ReviewStore, project: Project) -> SharedReviews:
    """The process's `SharedReviews` of ``reviews`` on ``project`` (made on first use)."""
    with _SHARED_LOCK:
        by_project = _SHARED.setdefault(reviews, weakref.WeakKeyDictionary())
        shared = by_project.get(project)
        if shared is None:
            shared = by_project[project] = SharedReviews(reviews, project)
        return shared
