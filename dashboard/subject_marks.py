"""Each subject's marks (and consensus boxes) as numpy arrays, made once per project and shared read-only by
every session.

The cutout draws the current subject's marks in up to eight layers (boxes, points, closed outlines
and open paths, each supporting a consensus mark or not). Cut from the project's mark table with
pandas on every switch, the layers' tables cost most of a switch's server CPU (every column of the
marks copied for each of the eight selections). Here the columns the cutout draws are taken out of
the table once per project, in subject order, with how each mark is drawn worked out for all of
them at once; a subject's marks are then a slice of each array (no copy), and a layer's rows a
boolean selection of a few arrays.

A project whose marks stay in a store (`project.stored.StoredProject`, read one subject at a time)
gets the same arrays per subject, made from `Project.marks_of` the first time any session shows the
subject and kept for the most recent subjects.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, fields
from typing import NamedTuple

import numpy as np
import pandas as pd

from project import Project
# Kinds drawn as an open path through their vertices; the thumbnails draw them so too.
from project.recent import RecentlyUsed
from project.tool_kinds import OPEN_KINDS

#: Mark kinds drawn as markers at their position (they have no extent).
POINT_KINDS = ("point",)
#: Mark kinds drawn as their own outline (circles and ellipses as the ellipse filling their bounding box,
#: rotated rectangles turned by their angle). Marks with vertices are drawn through them: closed ones as
#: outlines, open ones (lines, freehand lines) as paths; everything else as its bounding box.
OUTLINED_KINDS = ("circle", "ellipse", "rotateRectangle")
#: The mark table's columns the arrays are made from.
COLUMNS = ["mark_id", "x", "y", "width", "height", "angle", "iou", "consensus_id", "created_at", "user", "kind",
           "tool_label"]
#: Subjects of a stored project whose arrays are kept, most recent first (a reviewer steps back and forth).
RECENT_SUBJECTS = 256


@dataclass(frozen=True)
class SubjectMarks:
    """Marks as arrays, one element per mark (a subject's, or a selection of them). Never modify the arrays:
    they are views of the project's, shared by every session."""

    mark_id: np.ndarray
    x: np.ndarray
    y: np.ndarray
    width: np.ndarray
    height: np.ndarray
    angle: np.ndarray
    #: IoU with the consensus mark the mark supports (NaN when it supports none).
    iou: np.ndarray
    #: The consensus mark the mark supports (-1: none).
    consensus_id: np.ndarray
    #: When its classification was made (``datetime64[ns]``, UTC; NaT when unknown).
    created_at: np.ndarray
    #: The volunteer (objects: text, or pandas' NA when the export has no name).
    user: np.ndarray
    #: The mark's kind ("" when unknown) and its tool's label (None when unknown).
    kind: np.ndarray
    tool_label: np.ndarray
    #: How the cutout draws it: as a marker, a closed outline through its vertices or its shape's, an open
    #: path through its vertices; a mark in none of these is drawn as its box.
    point: np.ndarray
    outline: np.ndarray
    path: np.ndarray

    def __len__(self) -> int:
        return len(self.mark_id)

    @property
    def box(self) -> np.ndarray:
        """Marks drawn as their bounding box."""
        return ~(self.point | self.outline | self.path)

    def take(self, rows: np.ndarray) -> SubjectMarks:
        """The marks at ``rows`` (a boolean mask or positions)."""
        return SubjectMarks(**{field.name: getattr(self, field.name)[rows] for field in fields(self)})

    def times(self) -> np.ndarray:
        """Classification times as hover text (`hover_times`)."""
        return hover_times(self.created_at)


def utc_times(times: pd.Series) -> np.ndarray:
    """``times`` (naive ones taken as UTC) as UTC ``datetime64[ns]`` values."""
    if isinstance(times.dtype, pd.DatetimeTZDtype):
        times = times.dt.tz_convert("UTC").dt.tz_localize(None)
    return times.to_numpy(dtype="datetime64[ns]")


def classification_times(created_at: pd.Series) -> np.ndarray:
    """Classification times as hover text, "2023-05-01 10:00 UTC" ("" when unknown)."""
    return hover_times(utc_times(created_at))


def hover_times(values: np.ndarray) -> np.ndarray:
    """UTC times (``datetime64``) as hover text, "2023-05-01 10:00 UTC" ("" when unknown): numpy's formatting,
    several times faster than pandas' ``strftime``."""
    if not len(values):
        return np.zeros(0, dtype=object)
    text = np.char.add(np.char.replace(np.datetime_as_string(values, unit="m"), "T", " "), " UTC")
    return np.where(np.isnat(values), "", text).astype(object)


def mark_arrays(marks: pd.DataFrame, vertices: pd.DataFrame | None) -> SubjectMarks:
    """``marks`` (rows of a project's mark table, with its links) as `SubjectMarks`; ``vertices``: the
    `MARK_VERTICES` rows of those marks (or more), None when the project keeps none."""
    created_at = marks.created_at if "created_at" in marks else pd.Series(pd.NaT, index=marks.index)
    kinds = marks.kind.to_numpy(dtype=object, na_value="")
    point, outline = np.isin(kinds, POINT_KINDS), np.isin(kinds, OUTLINED_KINDS)
    # Marks of a vertex kind whose vertices were not kept are drawn as their box.
    traced = (np.isin(marks.mark_id.to_numpy(), vertices.mark_id.to_numpy()) if vertices is not None and len(vertices)
              else np.zeros(len(marks), dtype=bool))
    open_ = np.isin(kinds, OPEN_KINDS)
    floats = {name: marks[name].to_numpy(dtype=float, na_value=np.nan)
              for name in ("x", "y", "width", "height", "angle", "iou")}
    return SubjectMarks(
        mark_id=marks.mark_id.to_numpy(dtype=np.int64), **floats,
        consensus_id=marks.consensus_id.to_numpy(dtype=np.int64),
        created_at=utc_times(created_at), user=marks.user.to_numpy(dtype=object),
        kind=kinds, tool_label=marks.tool_label.to_numpy(dtype=object, na_value=None),
        point=point, outline=outline | (traced & ~open_), path=traced & open_)


#: No marks (no subject shown).
NO_MARKS = SubjectMarks(
    **{name: np.zeros(0, dtype=float) for name in ("x", "y", "width", "height", "angle", "iou")},
    mark_id=np.zeros(0, dtype=np.int64), consensus_id=np.zeros(0, dtype=np.int64),
    created_at=np.zeros(0, dtype="datetime64[ns]"),
    **{name: np.zeros(0, dtype=object) for name in ("user", "kind", "tool_label")},
    **{name: np.zeros(0, dtype=bool) for name in ("point", "outline", "path")})


class ProjectMarks:
    """Every subject's `SubjectMarks` of one project: the whole mark table as arrays in subject order
    (an in-memory project), or each subject's made when first asked (a stored one)."""

    def __init__(self, project: Project):
        self._project = weakref.ref(project)
        self._recent: RecentlyUsed[SubjectMarks] = RecentlyUsed(RECENT_SUBJECTS)
        self._all = None
        if isinstance(project.marks, pd.DataFrame):
            marks = project.marks
            subject_ids = marks.subject_id.to_numpy(dtype=np.int64)
            # A subject's marks in mark order, as `Project.marks_of` gives them.
            order = np.lexsort((marks.mark_id.to_numpy(), subject_ids))
            self._ids, self._starts = np.unique(subject_ids[order], return_index=True)
            self._stops = np.r_[self._starts[1:], len(order)].astype(np.int64)
            self._all = mark_arrays(marks[[name for name in COLUMNS if name in marks]].iloc[order],
                                    project.mark_vertices)

    def draws(self, drawn_as: str) -> bool:
        """Whether any mark of the project is drawn as ``drawn_as`` (point, outline, path or box); for a stored
        project, whose marks are read a subject at a time, always (it cannot tell without reading them all)."""
        return self._all is None or bool(getattr(self._all, drawn_as).any())

    def of(self, subject_id: int) -> SubjectMarks:
        """One subject's marks (none for an unknown subject)."""
        if self._all is not None:
            position = np.searchsorted(self._ids, subject_id)
            if position < len(self._ids) and self._ids[position] == subject_id:
                return self._all.take(slice(self._starts[position], self._stops[position]))
            return self._all.take(slice(0, 0))
        subject_id = int(subject_id)
        if subject_id < 0:  # no subject: no marks, nothing read
            return NO_MARKS
        return self._recent.get(subject_id, lambda: self._made(subject_id))

    def _made(self, subject_id: int) -> SubjectMarks:
        project = self._project()
        marks = project.marks_of(subject_id)
        return mark_arrays(marks, project.vertices_of(marks.mark_id))


_PROJECTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_PROJECTS_LOCK = threading.Lock()


def project_marks(project: Project) -> ProjectMarks:
    """The `ProjectMarks` of ``project``, made by the first session to ask and shared by every session."""
    # One session makes the project's arrays while the others wait for them rather than make them again.
    with _PROJECTS_LOCK:
        arrays = _PROJECTS.get(project)
        if arrays is None:
            arrays = _PROJECTS[project] = ProjectMarks(project)
    return arrays


def subject_marks(project: Project, subject_id: int | None) -> SubjectMarks:
    """The marks of ``subject_id`` in ``project`` as arrays (none for None or an unknown subject), from
    arrays made once per project for every session of the process."""
    return project_marks(project).of(-1 if subject_id is None else subject_id)


#: The consensus table's columns `subject_consensus` gives: the box, its votes, its geometry and the errors of
#: its edges (`consensus.agreement.box_agreement`; NaN where the project has none).
CONSENSUS_COLUMNS = ("consensus_id", "n_votes", "n_seen", "x", "y", "width", "height", "angle", "x_err", "y_err",
                     "width_err", "height_err")
_CONSENSUS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class ConsensusKinds(NamedTuple):
    """What a project's consensus marks are, for the words and columns its tables show."""

    #: Any consensus mark with a size (a box, or another shape's bounding box).
    boxes: bool
    #: Any consensus point.
    points: bool

    @property
    def only_points(self) -> bool:
        """Points and nothing else: a point project (Penguin Watch), whose marks have no size or IoU."""
        return self.points and not self.boxes

    @property
    def words(self) -> tuple[str, str]:
        """What to call the consensus marks, singular and plural: points, boxes, or marks where there are both."""
        return ("point", "points") if self.only_points else ("mark", "marks") if self.points else ("box", "boxes")

    def columns(self, columns: dict[str, str], sized: tuple[str, ...], point_columns: dict[str, str] | None = None,
                point_titles: dict[str, str] | None = None, mixed_titles: dict[str, str] | None = None
                ) -> dict[str, str]:
        """A table's ``columns`` (name -> header, in order) in the words of this consensus.

        ``sized`` are the columns only marks with a size fill (IoU, width, height): a project of points alone
        drops them, and renames headers as ``point_titles`` says ("Box" -> "Point"); one of boxes and points
        renames them as ``mixed_titles`` says ("Box" -> "Mark"). Where there are points, ``point_columns``
        (their distance to their consensus point) go in after the last of ``sized``.
        """
        renamed = (point_titles if self.only_points else mixed_titles if self.points else None) or {}
        shown = {}
        for name, title in columns.items():
            if not (self.only_points and name in sized):
                shown[name] = renamed.get(name, title)
            if self.points and sized and name == sized[-1]:
                shown.update(point_columns or {})
        return shown


_KINDS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def consensus_kinds(project: Project) -> ConsensusKinds:
    """Whether ``project``'s consensus holds boxes (any mark with a size) and points (no width or height);
    worked out once per project (every session's tables ask)."""
    known = _KINDS.get(project)
    if known is None:
        boxes = _consensus_columns(project)[1]
        points = (np.nan_to_num(boxes["width"]) == 0) & (np.nan_to_num(boxes["height"]) == 0)
        with _PROJECTS_LOCK:
            known = _KINDS.setdefault(project, ConsensusKinds(boxes=bool((~points).any()),
                                                              points=bool(points.any())))
    return known


def _consensus_columns(project: Project) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The subject ids of ``project``'s consensus boxes in subject then box order, and their
    `CONSENSUS_COLUMNS` in that order (made once per project)."""
    with _PROJECTS_LOCK:
        known = _CONSENSUS.get(project)
        if known is None:
            consensus = project.consensus
            subject_ids = consensus.subject_id.to_numpy(dtype=np.int64)
            order = np.lexsort((consensus.consensus_id.to_numpy(), subject_ids))
            columns = {name: (consensus[name].to_numpy(dtype=np.int64) if name == "consensus_id" else
                              consensus[name].to_numpy(dtype=float, na_value=np.nan) if name in consensus
                              else np.full(len(consensus), np.nan))[order] for name in CONSENSUS_COLUMNS}
            known = _CONSENSUS[project] = (subject_ids[order], columns)
    return known


def subject_consensus(project: Project, subject_id: int | None) -> dict[str, np.ndarray]:
    """The consensus boxes of ``subject_id`` as arrays of `CONSENSUS_COLUMNS` in box order (counts NaN where the
    producer recorded none), slices of arrays made once per project for every session (the consensus table is in memory
    for every kind of project)."""
    subject_ids, columns = _consensus_columns(project)
    subject_id = -1 if subject_id is None else subject_id
    start, stop = np.searchsorted(subject_ids, subject_id, "left"), np.searchsorted(subject_ids, subject_id, "right")
    return {name: values[start:stop] for name, values in columns.items()}
