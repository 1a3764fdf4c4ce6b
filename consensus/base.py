"""The aggregation layer's base class, its short-name registry, and the result it returns.

Each aggregation method is a small `Aggregator` subclass with a one-line
docstring, a class-level ``short_name`` and typed ``param`` parameters with
``doc=``; defining the class registers it. ``aggregate(marks, classifications,
method="iou", **params)`` looks the name up (an unknown name is an error that
lists the known ones), checks the parameters, and runs the method.

Every consensus row carries ``source``: a JSON object with the method name, every
parameter value and the zoolens version, so ``aggregate(marks, classifications,
**parse_source(row.source))`` reproduces it.

A method works on *partitions* (`consensus.distributed`): the whole table in
the pandas path, one group of subjects per partition in the Dask path. Steps
that need every subject (a volunteer's skill is learnt from all the subjects
they classified) reduce per-partition sums, so both paths give the same result.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import param

from data_loaders import __version__
from data_loaders.schema import CONSENSUS

from . import distributed
from .clustering import candidate_clusters
from .estimate import Estimates
from .matching import Assignment, assign, links_meta_frame, links_table
from .prepare import ID_STRIDE, Prepared

#: Short method name -> Aggregator subclass, filled as the method modules are imported.
REGISTRY: dict[str, type[Aggregator]] = {}


@dataclass
class AggregationResult:
    """What an aggregation produced.

    Attributes
    ----------
    consensus : DataFrame
        Canonical consensus table (``data_loaders.schema.CONSENSUS`` columns
        first), plus ``task``, ``tool``, ``frame``, ``vote_fraction`` and what
        the method adds (``false_pos_prob``, ``risk``, ...).
    links : DataFrame
        Canonical links: one row per input mark (see `consensus.match`).
    subjects : DataFrame
        One row per subject: ``subject_id``, ``n_seen``, ``n_consensus`` and
        what the method adds (``risk``).
    volunteers : DataFrame or None
        What the method learnt about each volunteer, if anything.
    report : dict
        Counts: marks read, marks without a usable box (skipped, never silently
        dropped), subjects, consensus boxes; for the point method marks that are
        not points (``marks_without_point``) and ``consensus_points``.
    source : str
        The JSON written in the ``source`` column.
    """

    consensus: Any
    links: Any
    subjects: Any
    volunteers: Any = None
    report: dict = field(default_factory=dict)
    source: str = ""


@dataclass
class PartitionOutput:
    """The tables one partition contributes to an `AggregationResult`."""

    consensus: pd.DataFrame
    links: pd.DataFrame
    subjects: pd.DataFrame
    counts: dict


class Aggregator(param.Parameterized):
    """Base class of the consensus methods: subclass with a ``short_name`` and implement `run`."""

    #: The short name users pass as ``method=`` (param reserves ``name``).
    short_name: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("short_name"):
            REGISTRY[cls.short_name] = cls

    def settings(self) -> dict:
        """The method's parameter values (without param's automatic ``name``)."""
        return {key: value for key, value in self.param.values().items() if key != "name"}

    def source(self) -> str:
        """JSON recording the method, every parameter and the zoolens version."""
        return json.dumps({"method": self.short_name, **self.settings(), "zoolens": __version__}, sort_keys=True)

    def aggregate(self, marks, classifications=None) -> AggregationResult:
        """Run the method on pandas or Dask tables (see `consensus.aggregate`)."""
        partitions = distributed.partitions(marks, classifications)
        return self.run(partitions)

    def run(self, partitions) -> AggregationResult:
        """Aggregate every partition; the one method a subclass implements."""
        raise NotImplementedError

    @classmethod
    def extra_columns(cls) -> dict[str, str]:
        """Columns (name -> dtype) the method adds to the consensus table."""
        return {}

    @classmethod
    def subject_columns(cls) -> dict[str, str]:
        """Columns (name -> dtype) the method adds to the subjects table."""
        return {}

    def collect(self, outputs, volunteers=None) -> AggregationResult:
        """Assemble per-partition `PartitionOutput` objects into the result."""
        # The report needs every partition's counts now; persisting first keeps the
        # tables computed once, on the workers, for the frames built below.
        outputs = outputs.persist()
        counts = outputs.map(_counts).gather()
        report = {key: int(sum(count[key] for count in counts)) for key in counts[0]} if counts else {}
        return AggregationResult(
            consensus=distributed.frame(outputs.map(_consensus), lambda: consensus_meta(self)),
            links=distributed.frame(outputs.map(_links), links_meta_frame),
            subjects=distributed.frame(outputs.map(_subjects), lambda: subjects_meta(self)),
            volunteers=volunteers,
            report=report,
            source=self.source(),
        )


class ClusteringAggregator(Aggregator):
    """Base of the box methods that start from `consensus.clustering`: its two thresholds as parameters."""

    min_iou = param.Number(
        default=0.3, bounds=(0.0, 1.0), inclusive_bounds=(False, True),
        doc="IoU a raw mark needs with a consensus box to count as a vote for it (in the links and n_votes). "
            "Lower than the 0.5 of detector benchmarks because one volunteer's box is noisier than the "
            "consensus: on simulated projects 0.3 keeps the votes of sloppy but honest volunteers.",
    )

    cluster_iou = param.Number(
        default=0.3, bounds=(0.0, 1.0), inclusive_bounds=(False, True),
        doc="IoU at which marks of different volunteers are neighbours when clustering.",
    )
    merge_iou = param.Number(
        default=0.3, bounds=(0.0, 1.0), inclusive_bounds=(False, True),
        doc="Clusters whose median boxes overlap at least this much are one object drawn as two (a clump's "
            "stray marks, or volunteers' second boxes) and are merged, one mark per volunteer; 1 never merges.",
    )

    def clusters(self, partitions):
        """Per partition ``(prepared, members)``: the clusters, kept on the workers."""
        return partitions.map(candidate_clusters, self.cluster_iou, self.merge_iou).persist()


def _counts(output: PartitionOutput) -> dict:
    return output.counts


def _consensus(output: PartitionOutput) -> pd.DataFrame:
    return output.consensus


def _links(output: PartitionOutput) -> pd.DataFrame:
    return output.links


def _subjects(output: PartitionOutput) -> pd.DataFrame:
    return output.subjects


def quorum(votes: np.ndarray, n_seen: np.ndarray, min_votes: int, min_vote_fraction: float) -> np.ndarray:
    """Which consensus marks have enough votes: at least ``min_votes`` and ``min_vote_fraction`` of ``n_seen``."""
    return votes >= quorum_votes(n_seen, min_votes, min_vote_fraction)


def quorum_votes(n_seen: np.ndarray, min_votes: int, min_vote_fraction: float) -> np.ndarray:
    """The votes `quorum` asks of a consensus mark on a subject ``n_seen`` volunteers saw (int64)."""
    # The tolerance keeps e.g. 0.3 * 10 votes from needing 3.0000000000000004.
    return np.maximum(min_votes, np.ceil(min_vote_fraction * np.asarray(n_seen) - 1e-9)).astype(np.int64)


def get_aggregator(method: str) -> type[Aggregator]:
    """The aggregator class registered as ``method``; an unknown name lists the known ones.

    The methods register themselves when `consensus` imports their modules.
    """
    try:
        return REGISTRY[method]
    except KeyError:
        raise ValueError(f"unknown consensus method {method!r}; known methods: {', '.join(sorted(REGISTRY))}") from None


def make_aggregator(method: str, **params) -> Aggregator:
    """An aggregator of ``method`` with ``params``; unknown parameter names are errors listing the known ones."""
    cls = get_aggregator(method)
    known = [name for name in cls.param if name != "name"]
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ValueError(f"method {method!r} has no parameter(s) {unknown}; its parameters are {sorted(known)}")
    return cls(**params)


def parse_source(source: str) -> dict:
    """``method`` and parameters from a ``source`` value, ready for ``aggregate(..., **parsed)``."""
    settings = json.loads(source)
    settings.pop("zoolens", None)
    # Values a method learned from the data are written in as parameters; the note of which is not one.
    settings.pop("learned", None)
    return settings


#: The method each kind of mark gets when ``aggregate`` is not told one: boxes (and every
#: shape's bounding box) by the skill-aware ``lean`` model, which also learns which volunteers
#: habitually box distractors (on clean projects it scores as ``iou`` does, on projects with
#: distractors far better: bench/results/consensus.md); clicks by distance clustering.
DEFAULT_METHODS = {"box": "lean", "point": "point"}

#: The ``method`` name that asks for `DEFAULT_METHODS` (as None does), for callers
#: where None already means something else (no consensus at all, in `project`).
AUTO_METHOD = "auto"


def mark_kinds(marks) -> list[str]:
    """Which kinds of mark, ``"box"`` and/or ``"point"``, a marks table holds (a pass over a Dask table)."""
    if distributed.is_dask(marks):
        counts = marks.map_partitions(_kind_counts, meta=pd.DataFrame({"box": [0], "point": [0]})).sum().compute()
    else:
        counts = _kind_counts(marks).iloc[0]
    return [kind for kind in ("box", "point") if counts[kind] > 0]


def _kind_counts(marks: pd.DataFrame) -> pd.DataFrame:
    from .distance import point_mask

    points = point_mask(marks) if len(marks) else np.zeros(0, dtype=bool)
    return pd.DataFrame({"box": [int(len(marks) - points.sum())], "point": [int(points.sum())]})


def aggregate(marks, classifications=None, method: str | None = None, **params) -> AggregationResult:
    """Make consensus boxes and points from raw marks.

    Parameters
    ----------
    marks : pandas.DataFrame or dask.dataframe.DataFrame
        Canonical marks. Marks of different ``task``, ``tool`` or ``frame`` are
        never merged. Marks the method cannot use (missing coordinates, zero
        size for a box method, boxes for the point method) are skipped and
        counted in ``result.report``.
    classifications : pandas.DataFrame or dask.dataframe.DataFrame, optional
        Canonical classifications, to count every volunteer who saw a subject
        (``n_seen``), including those who drew nothing. Without them only
        volunteers with marks count.
    method : str, optional
        Short name of the method: ``"iou"``, ``"lean"`` or ``"point"`` (see
        `methods()`). By default (None or ``"auto"``) each kind of mark gets its own method
        (`DEFAULT_METHODS`: ``"point"`` for clicks, ``"lean"`` for the rest);
        marks of both kinds give one result holding both (pandas tables only),
        and then ``params`` must be empty.
    **params
        The method's parameters; unknown names are an error listing the known ones.

    Returns
    -------
    AggregationResult
        ``.consensus``, ``.links``, ``.subjects``, ``.volunteers``, ``.report``.
        Dask inputs give Dask DataFrames for the per-subject tables.
    """
    if method is not None and method != AUTO_METHOD:
        return make_aggregator(method, **params).aggregate(marks, classifications)
    kinds = mark_kinds(marks) or ["box"]
    if len(kinds) == 1:
        return make_aggregator(DEFAULT_METHODS[kinds[0]], **params).aggregate(marks, classifications)
    if params:
        raise ValueError(f"the marks hold boxes and points, so each gets its default method "
                         f"({DEFAULT_METHODS}); name a method to pass parameters {sorted(params)}")
    if distributed.is_dask(marks) or distributed.is_dask(classifications):
        raise ValueError("Dask marks holding both boxes and points need a method: aggregate each kind with its own")
    boxes, points = (make_aggregator(DEFAULT_METHODS[kind]).aggregate(marks, classifications) for kind in ("box", "point"))
    return combine(marks, boxes, points)


def combine(marks: pd.DataFrame, boxes: AggregationResult, points: AggregationResult) -> AggregationResult:
    """One result from a box method's and the point method's results on the same marks.

    Point marks take their links from ``points``, the others from ``boxes``;
    consensus rows are stacked, each subject's points numbered after its boxes
    so every consensus_id stays unique; per subject the consensus counts add up;
    the report counts as unusable only marks neither method could use.
    """
    from .distance import point_mask

    # Both methods number their marks from subject_id * ID_STRIDE: the points follow the subject's boxes.
    box_count = boxes.consensus.groupby("subject_id").size()
    old_ids = points.consensus["consensus_id"].to_numpy(np.int64)
    within = old_ids % ID_STRIDE + box_count.reindex(points.consensus["subject_id"].to_numpy()).fillna(0).to_numpy(np.int64)
    if len(within) and within.max() >= ID_STRIDE:
        raise ValueError(f"a subject has more than {ID_STRIDE} consensus boxes and points; no method should make that many")
    new_ids = old_ids - old_ids % ID_STRIDE + within
    point_links = points.links.copy()
    for column in ("consensus_id", "best_consensus_id"):
        values = point_links[column].to_numpy(np.int64).copy()
        position = pd.Index(old_ids).get_indexer(values)
        values[position >= 0] = new_ids[position[position >= 0]]
        point_links[column] = values
    is_point = point_mask(marks)
    links = boxes.links.copy()
    links[is_point] = point_links[is_point]
    subjects = pd.concat([boxes.subjects, points.subjects], ignore_index=True)
    subjects = subjects.groupby("subject_id", sort=True).agg(n_seen=("n_seen", "max"), n_consensus=("n_consensus", "sum"))
    report = {key: value for key, value in boxes.report.items()}
    report.update({key: value for key, value in points.report.items() if key not in ("marks", "subjects")})
    report["linked_marks"] = boxes.report.get("linked_marks", 0) + points.report.get("linked_marks", 0)
    report["marks_without_box"] -= int(is_point.sum())
    report["marks_without_point"] -= int((~is_point).sum())
    return AggregationResult(
        consensus=pd.concat([boxes.consensus, points.consensus.assign(consensus_id=new_ids)], ignore_index=True),
        links=links,
        subjects=subjects.reset_index(), volunteers=boxes.volunteers, report=report,
        source=json.dumps([json.loads(boxes.source), json.loads(points.source)], sort_keys=True),
    )


def methods() -> dict[str, str]:
    """Known method names with their one-line descriptions."""
    get_aggregator("iou")
    return {name: (cls.__doc__ or "").strip().splitlines()[0] for name, cls in sorted(REGISTRY.items())}


@functools.lru_cache(maxsize=None)
def consensus_dtypes(aggregator_class: type[Aggregator]) -> dict[str, str]:
    """Column -> dtype of the consensus table a method makes (the canonical columns first).

    Cached per class: building even an empty DataFrame costs milliseconds, which
    would be most of the time of a call on a few subjects.
    """
    return {**CONSENSUS, "task": "string", "tool": "Int64", "frame": "Int64", "vote_fraction": "float64",
            **aggregator_class.extra_columns()}


@functools.lru_cache(maxsize=None)
def subjects_dtypes(aggregator_class: type[Aggregator]) -> dict[str, str]:
    """Column -> dtype of the subjects table a method makes."""
    return {"subject_id": "int64", "n_seen": "int64", "n_consensus": "int64", **aggregator_class.subject_columns()}


def consensus_meta(aggregator: Aggregator) -> pd.DataFrame:
    """Empty consensus table with the columns and dtypes ``aggregator`` produces."""
    return _empty_frame(consensus_dtypes(type(aggregator)))


def subjects_meta(aggregator: Aggregator) -> pd.DataFrame:
    """Empty subjects table with the columns and dtypes ``aggregator`` produces."""
    return _empty_frame(subjects_dtypes(type(aggregator)))


def _empty_frame(dtypes: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({column: pd.Series(dtype=dtype) for column, dtype in dtypes.items()})


def typed_frame(n_rows: int, columns: dict, dtypes: dict[str, str]) -> pd.DataFrame:
    """A table of ``columns`` (arrays of ``n_rows`` values, or one value for every row), each cast to its ``dtypes`` entry.

    Column by column, because a whole-frame ``astype`` costs milliseconds even on
    a few rows: most of the time of a call on a small project.
    """
    typed = {}
    for name, values in columns.items():
        dtype = pd.api.types.pandas_dtype(dtypes[name]) if name in dtypes else None
        if np.ndim(values) == 0:
            if dtype is None or isinstance(dtype, np.dtype):
                values = [values] * n_rows
            else:
                # Converted once and repeated: converting a string per row costs milliseconds on a large result.
                values = pd.array([values], dtype=dtype).take(np.zeros(n_rows, dtype=np.intp))
        if dtype is None:
            typed[name] = values
        elif isinstance(dtype, np.dtype):
            typed[name] = np.asarray(values, dtype=dtype)
        else:
            typed[name] = pd.array(values, dtype=dtype)
    return pd.DataFrame(typed)


def box_order(prep: Prepared, boxes: Estimates) -> np.ndarray:
    """Order of boxes by subject, group, then top-left position: the order of their ids."""
    x, y = boxes.cx - boxes.width / 2, boxes.cy - boxes.height / 2
    return np.lexsort((boxes.height, boxes.width, x, y, boxes.group))


def consensus_ids(prep: Prepared, boxes: Estimates) -> np.ndarray:
    """``subject_id * ID_STRIDE + k`` for boxes already in `box_order`."""
    subject = prep.groups["subject"].to_numpy()[boxes.group]
    position = np.arange(len(boxes))
    first = np.searchsorted(subject, subject, side="left")
    within = position - first
    if len(within) and within.max() >= ID_STRIDE:
        worst = prep.subject_ids[subject[np.argmax(within)]]
        raise ValueError(f"subject {worst} has more than {ID_STRIDE} consensus boxes; no method should make that many")
    return prep.subject_ids[subject] * ID_STRIDE + within


def partition_output(aggregator: Aggregator, prep: Prepared, boxes: Estimates, assignment: Assignment | None = None,
                     box_columns: dict | None = None, subject_columns: dict | None = None,
                     shape: str = "box", links=None, votes: np.ndarray | None = None) -> PartitionOutput:
    """Consensus, links and subject tables of one partition from final boxes and the marks' assignment to them.

    ``boxes`` must be in `box_order`; ``assignment.box`` indexes them.
    ``box_columns`` / ``subject_columns`` hold extra per-box / per-subject-code arrays.
    ``shape`` ("box" or "point") names the counts of the report.
    ``links``, a function of the boxes' consensus ids, makes the links table
    (`consensus.matching.links_table` of the assignment when not given).
    ``votes``, each box's votes when the caller counted them (from the assignment when not given); with
    both ``links`` and ``votes`` no assignment is needed.
    """
    ids = consensus_ids(prep, boxes)
    links = links_table(prep.mark_ids, prep.marks.row, assignment, ids) if links is None else links(ids)
    if votes is None:
        votes = np.bincount(assignment.box[assignment.box >= 0], minlength=len(boxes))
    n_seen_group = prep.n_seen_group
    group_subject = prep.groups["subject"].to_numpy()[boxes.group]
    n_seen = n_seen_group[boxes.group]
    with np.errstate(invalid="ignore", divide="ignore"):
        vote_fraction = np.where(n_seen > 0, votes / np.maximum(n_seen, 1), np.nan)
    consensus = typed_frame(len(boxes), {
        "subject_id": prep.subject_ids[group_subject],
        "consensus_id": ids,
        "x": boxes.cx - boxes.width / 2,
        "y": boxes.cy - boxes.height / 2,
        "width": boxes.width,
        "height": boxes.height,
        "angle": boxes.angle,
        "n_votes": votes,
        "n_seen": n_seen,
        "source": aggregator.source(),
        **{key: prep.groups[key].array.take(boxes.group) if key in prep.groups else pd.NA
           for key in ("task", "tool", "frame")},
        "vote_fraction": vote_fraction,
        **(box_columns or {}),
    }, consensus_dtypes(type(aggregator)))
    subject_boxes = np.bincount(group_subject, minlength=len(prep.subject_ids))
    subjects = typed_frame(len(prep.subject_ids), {
        "subject_id": prep.subject_ids,
        "n_seen": prep.n_seen_subject,
        "n_consensus": subject_boxes,
        **(subject_columns or {}),
    }, subjects_dtypes(type(aggregator)))
    counts = {
        "marks": len(prep.mark_ids),
        f"marks_without_{shape}": prep.n_invalid,
        "subjects": len(prep.subject_ids),
        {"box": "consensus_boxes", "point": "consensus_points"}[shape]: len(boxes),
        "linked_marks": int(votes.sum()),
    }
    return PartitionOutput(consensus=consensus, links=links, subjects=subjects, counts=counts)


def reassign(prep: Prepared, boxes: Estimates, min_iou: float) -> tuple[Estimates, Assignment, np.ndarray]:
    """Put ``boxes`` in `box_order` and assign every mark to them, one mark per volunteer per box.

    Returns the ordered boxes, the assignment (indexing them) and the order
    (indices into the given ``boxes``), to carry per-box values along.
    """
    order = box_order(prep, boxes)
    boxes = boxes.take(order)
    arrays = boxes.arrays()
    assignment = assign(prep.marks, prep.volunteer, arrays, min_iou)
    # `assign` indexes the sorted arrays; translate to the estimates' order.
    linked = assignment.box >= 0
    assignment.box[linked] = arrays.row[assignment.box[linked]]
    overlapping = assignment.best_box >= 0
    assignment.best_box[overlapping] = arrays.row[assignment.best_box[overlapping]]
    return boxes, assignment, order
