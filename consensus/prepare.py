"""One partition of marks and classifications, turned into the arrays the methods work on.

`prepare` runs once per partition (the whole table in the pandas path, one
subject-partition in the Dask path). It validates the columns, sorts the marks
into `BoxArrays`, codes volunteers, subjects and groups, and records who saw
which subject: a volunteer who looked and drew nothing still saw it, so
``n_seen`` counts classifications, not marks.

Volunteers are coded by sorted name within the partition; anything exchanged
between partitions (per-volunteer statistics) is keyed by the name.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .boxes import BoxArrays, present_group_keys, require_columns, volunteer_keys
from .distance import point_mask, sorted_points
from .segments import dense_codes, densify, first_rows

#: consensus_id = subject_id * ID_STRIDE + index of the box within its subject:
#: unique across subjects, the same however the subjects are partitioned or
#: subset, and readable (subject 34567890, box 2 -> 345678900002).
ID_STRIDE = 10_000

MARK_COLUMNS = ("mark_id", "subject_id", "x", "y", "width", "height")
CLASSIFICATION_COLUMNS = ("classification_id", "subject_id")


@dataclass
class Prepared:
    """The arrays of one partition.

    Attributes
    ----------
    mark_ids : numpy.ndarray
        ``mark_id`` of every input mark, in table order (the order of the links).
    marks : BoxArrays
        The valid marks, sorted by group and position; ``marks.row`` indexes ``mark_ids``.
        Prepared for points, the point marks, each a box of size 0 centred on the click.
    volunteer : numpy.ndarray
        Volunteer code of each sorted mark (index into ``volunteer_names``).
    volunteer_names : numpy.ndarray
        Sorted volunteer names of the partition.
    groups : pandas.DataFrame
        One row per group code: the group key values, ``tool_label`` when the
        marks have one (a tool's label, the same for its group), and ``subject`` (subject code).
    subject_ids : numpy.ndarray
        ``subject_id`` per subject code.
    view_subject, view_volunteer, view_classifications : numpy.ndarray
        One entry per (subject, volunteer) who saw it, with how many classifications they made of it.
    n_invalid : int
        Marks without a usable box (missing coordinate, zero or negative size),
        or prepared for points, marks that are not points with a position.
    """

    mark_ids: np.ndarray
    marks: BoxArrays
    volunteer: np.ndarray
    volunteer_names: np.ndarray
    groups: pd.DataFrame
    subject_ids: np.ndarray
    view_subject: np.ndarray
    view_volunteer: np.ndarray
    view_classifications: np.ndarray
    n_invalid: int

    @property
    def n_volunteers(self) -> int:
        return len(self.volunteer_names)

    @property
    def n_seen_subject(self) -> np.ndarray:
        """Distinct volunteers who saw each subject (by subject code)."""
        return np.bincount(self.view_subject, minlength=len(self.subject_ids))

    @property
    def n_seen_group(self) -> np.ndarray:
        """Distinct volunteers who saw each group's subject (by group code)."""
        return self.n_seen_subject[self.groups["subject"].to_numpy()]

    @property
    def mark_subject(self) -> np.ndarray:
        """Subject code of each sorted mark."""
        return self.groups["subject"].to_numpy()[self.marks.group]


def prepare(marks: pd.DataFrame, classifications: pd.DataFrame | None = None, points: bool = False) -> Prepared:
    """Arrays of one partition of canonical marks (and classifications, for who saw what).

    Parameters
    ----------
    marks : pandas.DataFrame
        Canonical marks of the subjects of this partition.
    classifications : pandas.DataFrame, optional
        Canonical classifications of the same subjects. Without them, only the
        volunteers who drew something count as having seen a subject, which
        undercounts ``n_seen``.
    points : bool
        Take the point marks (`consensus.distance.point_mask`) instead of the boxes.
    """
    require_columns(marks, MARK_COLUMNS, "marks")
    keys = present_group_keys(marks)
    mark_volunteers = volunteer_keys(marks)
    if classifications is not None:
        require_columns(classifications, CLASSIFICATION_COLUMNS, "classifications")
        classification_volunteers = volunteer_keys(classifications)
        classification_subjects = classifications["subject_id"].to_numpy(np.int64)
    else:
        classification_volunteers = pd.Series([], dtype="string")
        classification_subjects = np.zeros(0, dtype=np.int64)

    # One hashing pass codes both tables by sorted name (an Index.get_indexer on strings costs ten times more).
    codes, names = pd.factorize(pd.concat([mark_volunteers, classification_volunteers], ignore_index=True), sort=True)
    codes = codes.astype(np.int64, copy=False)
    volunteer_of_mark, volunteer_of_classification = codes[:len(mark_volunteers)], codes[len(mark_volunteers):]

    mark_subjects = marks["subject_id"].to_numpy(np.int64)
    subject_codes, subject_ids = sorted_codes(np.concatenate([mark_subjects, classification_subjects]))
    check_subject_ids(subject_ids)
    subject_of_mark, subject_of_classification = subject_codes[:len(mark_subjects)], subject_codes[len(mark_subjects):]

    # keys[0] is subject_id, already coded in sorted order.
    group = dense_codes(*(marks[key] for key in keys[1:]), codes=subject_of_mark) if len(marks) else np.zeros(0, dtype=np.int64)
    first_row = first_rows(group)
    # Column by column: a DataFrame .loc costs milliseconds, most of a call on a few subjects.
    labels = ["tool_label"] if "tool_label" in marks.columns else []
    groups = pd.DataFrame({**{key: marks[key].array.take(first_row) for key in keys + labels},
                           "subject": subject_of_mark[first_row]})

    mark_ids = marks["mark_id"].to_numpy(np.int64)
    if points:
        # Imported here: the kernels' module imports `consensus.clustering`, which imports this one.
        from .point_kernels import read_only, sort_clicks

        invalid = ~point_mask(marks)
        x, y = (read_only(marks[column].to_numpy(float, na_value=np.nan)) for column in ("x", "y"))
        # The order `point_arrays` gives (group, x, y, volunteer, mark id), sorted group by group in compiled code,
        # which also hands back the sorted columns (gathering them here would read the table in random order again).
        order, sorted_group, sorted_x, sorted_y, sorted_volunteer = sort_clicks(
            group, len(first_row), np.flatnonzero(~invalid), x, y, volunteer_of_mark, read_only(mark_ids))
        boxes = sorted_points(order, sorted_group, sorted_x, sorted_y)
    else:
        boxes, invalid = BoxArrays.from_table(marks, group, tiebreak=(volunteer_of_mark, mark_ids))
        sorted_volunteer = volunteer_of_mark[boxes.row]

    # Who saw what: every classification, plus anyone who drew on a subject
    # (when classifications are missing or were filtered differently).
    n_volunteers = len(names)
    mark_views = subject_of_mark * n_volunteers
    mark_views += volunteer_of_mark  # in place: one array over the marks, not two
    # A classification's marks lie together in the table: only the first of each run of one (subject, volunteer)
    # adds to the set (the marks weigh nothing in the count), twenty times fewer codes to sort out.
    if len(mark_views) > 1:
        mark_views = mark_views[np.concatenate([[True], mark_views[1:] != mark_views[:-1]])]
    view_codes = np.concatenate([subject_of_classification * n_volunteers + volunteer_of_classification, mark_views])
    weights = np.concatenate([np.ones(len(subject_of_classification)), np.zeros(len(mark_views))])
    view = densify(view_codes)
    views = np.zeros(int(view.max()) + 1 if len(view) else 0, dtype=np.int64)
    views[view] = view_codes
    n_classifications = np.bincount(view, weights=weights, minlength=len(views))
    return Prepared(
        mark_ids=mark_ids,
        marks=boxes,
        volunteer=sorted_volunteer,
        volunteer_names=np.asarray(names, dtype=object),
        groups=groups,
        subject_ids=subject_ids,
        view_subject=(views // max(n_volunteers, 1)).astype(np.int64),
        view_volunteer=(views % max(n_volunteers, 1)).astype(np.int64),
        # A volunteer known only from marks made at least one classification.
        view_classifications=np.maximum(n_classifications, 1).astype(np.int64),
        n_invalid=int(invalid.sum()),
    )


def sorted_codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes ``0..k-1`` of int64 ``values`` in increasing value order, and the ``k`` distinct values.

    Ids that span a range not much wider than their count (subject ids usually do) are
    coded through a table over that range, in linear time; others by hashing.
    """
    if len(values) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    low = int(values.min())
    span = int(values.max()) - low + 1
    if span <= 4 * len(values) + 1024:
        present = np.zeros(span, dtype=bool)
        offset = values - low
        present[offset] = True
        return (np.cumsum(present) - 1)[offset], np.flatnonzero(present) + low
    codes, uniques = pd.factorize(values, sort=True)
    return codes.astype(np.int64), np.asarray(uniques, dtype=np.int64)


def check_subject_ids(subject_ids: np.ndarray) -> None:
    """Subject ids must leave room for `ID_STRIDE` boxes each in an int64 consensus_id."""
    if len(subject_ids) and (subject_ids.min() < 0 or subject_ids.max() >= np.iinfo(np.int64).max // ID_STRIDE):
        raise ValueError(
            f"subject_id must lie in [0, {np.iinfo(np.int64).max // ID_STRIDE}) to number consensus boxes; "
            f"found {subject_ids.min()} .. {subject_ids.max()}"
        )
