"""A subject's consensus boxes as reviewed, made with numpy: what `DataStore.reviewed_consensus_of` returns.

The cutout and the review panel ask for the current subject's boxes with their decisions on every
switch. Made by joining pandas tables (an index set, a ``.loc`` assignment, a concat and a cast per
switch), they cost about a fifth of a switch; most subjects have no decision at all. Here the
table is made once from arrays: the subject's decided boxes are found by binary search in an index
of the review state made once per reading of the store (shared by every session, as the state is),
and written over the aggregated boxes by position.
"""

from __future__ import annotations

import threading
import weakref

import numpy as np
import pandas as pd

from project.reviews import GEOMETRY

#: What a decision sets on a box.
STATE = ["status", *GEOMETRY, "reviewer", "decided_at"]

#: id of a review state (`ReviewStore.box_status` indexed by subject and box) -> (a weak reference to it,
#: its subject ids sorted, the rows in that order).
_INDEXES: dict[int, tuple] = {}
_INDEXES_LOCK = threading.Lock()


def decided_rows(box_status: pd.DataFrame, subject_id: int) -> pd.DataFrame | None:
    """The rows of ``box_status`` (indexed by subject_id and consensus_id) on one subject, by binary search; None
    when it has none (most subjects: cutting no rows out of the table costs more than the rest of a switch's boxes)."""
    key = id(box_status)
    with _INDEXES_LOCK:
        known = _INDEXES.get(key)
        if known is None or known[0]() is not box_status:
            subjects = box_status.index.get_level_values("subject_id").to_numpy(dtype=np.int64)
            order = np.argsort(subjects, kind="stable")
            forget = weakref.ref(box_status, lambda _, key=key: _INDEXES.pop(key, None))
            known = _INDEXES[key] = (forget, subjects[order], order)
    _, subjects, order = known
    start, stop = np.searchsorted(subjects, subject_id, "left"), np.searchsorted(subjects, subject_id, "right")
    return box_status.iloc[order[start:stop]].reset_index() if stop > start else None


def reviewed_boxes(subject_id: int, boxes: dict[str, np.ndarray], decided: pd.DataFrame | None) -> pd.DataFrame:
    """``boxes`` (one subject's consensus boxes as arrays: `dashboard.subject_marks.subject_consensus`) with the
    review state in ``decided`` (`decided_rows`; None or no rows: none decided): the table
    `DataStore.reviewed_consensus_of` documents."""
    count = len(boxes["consensus_id"])
    columns = {"subject_id": np.full(count, subject_id, dtype=np.int64), "consensus_id": boxes["consensus_id"],
               **{name: boxes[name] for name in (*GEOMETRY, "n_votes", "n_seen")},
               "status": np.full(count, "unreviewed", dtype=object), "reviewer": np.full(count, None, dtype=object),
               "decided_at": np.full(count, np.datetime64("NaT", "ns"))}
    columns.update({f"original_{name}": columns[name] for name in GEOMETRY})
    if decided is not None and len(decided):
        ids, decided_ids = columns["consensus_id"], decided.consensus_id.to_numpy(dtype=np.int64)
        state = {name: _state_values(decided, name) for name in STATE}
        if count:
            order = np.argsort(ids, kind="stable")
            at = order[np.minimum(np.searchsorted(ids, decided_ids, sorter=order), count - 1)]
            on_aggregated = ids[at] == decided_ids
            for name, values in state.items():
                column = columns[name] = columns[name].copy()  # the geometry is shared with original_*
                column[at[on_aggregated]] = values[on_aggregated]
        added = decided_ids < 0
        if added.any():
            new = decided[added]
            extra = {"subject_id": new.subject_id.to_numpy(dtype=np.int64), "consensus_id": decided_ids[added],
                     "n_votes": np.full(len(new), np.nan), "n_seen": np.full(len(new), np.nan),
                     **{name: values[added] for name, values in state.items()},
                     **{f"original_{name}": new[f"original_{name}"].to_numpy(dtype=float, na_value=np.nan)
                        for name in GEOMETRY}}
            columns = {name: np.concatenate([values, extra[name]]) for name, values in columns.items()}
    # Each column made in its final type (a cast of the table afterwards costs more than the rest): the names
    # stay objects, None where nobody decided (left to infer, pandas would make them text with NaN).
    typed = {"n_votes": pd.array(columns["n_votes"], dtype="Int64"), "n_seen": pd.array(columns["n_seen"], dtype="Int64"),
             "status": pd.array(columns["status"], dtype="string"),
             "reviewer": pd.Series(columns["reviewer"], dtype=object),
             "decided_at": pd.DatetimeIndex(columns["decided_at"]).tz_localize("UTC")}
    return pd.DataFrame(columns | typed)


def _state_values(decided: pd.DataFrame, name: str) -> np.ndarray:
    """A decided box's ``name`` as the reviewed table holds it: UTC times naive, text as objects."""
    if name == "decided_at":
        times = pd.to_datetime(decided[name], utc=True)
        return times.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")
    if name in GEOMETRY:
        return decided[name].to_numpy(dtype=float)
    return decided[name].to_numpy(dtype=object)
