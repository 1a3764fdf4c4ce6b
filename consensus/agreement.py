"""How well volunteers agree: statistics per consensus box, per subject and per volunteer.

All three are derived from the canonical ``marks``, ``consensus`` and ``links``
tables (and ``classifications`` for who saw what, including volunteers who drew
nothing), never stored by hand, so they hold for a consensus from any source
once its marks are linked (`consensus.match`).

The subject *disagreement* score
--------------------------------
For a volunteer v who saw subject s, with m_v marks, K_s consensus boxes on
the subject, and linked marks of IoU iou_1, iou_2, ... (each linked to a
different box), the volunteer's agreement is the soft F1 score of their marks
against the consensus,

    A_v = 2 * sum(iou_i) / (m_v + K_s),     and A_v = 1 when m_v = K_s = 0,

and the subject's disagreement is ``1 - mean over volunteers of A_v``.

Why this one number: it is 0 exactly when every volunteer drew every consensus
box and nothing else, perfectly placed, and it grows with each way volunteers
part from the consensus, in one currency: a missed box (adds to K_s but not the
numerator), a spurious or duplicate box (adds to m_v), and a sloppy box (an IoU
below 1). It is the F1 score detectors are judged by, with each match weighted
by its IoU, so a reviewer sorting by it sees first the subjects where a typical
volunteer would score worst against the consensus. Averaging over volunteers
(not over marks) gives one heavy marker no more say than anyone else, and
counting volunteers who drew nothing makes a box half the crowd missed, or a
box the consensus dropped that half the crowd drew, both score about 0.5.
It ranges over [0, 1] and does not depend on how many volunteers saw the subject.

Points
------
A click has no extent, so it has no IoU: a click linked to a consensus point
(within the link distance, by `consensus.match` or the ``point`` method)
counts 1 in the sum, and A_v is the plain F1 score of the volunteer's clicks
against the consensus points: missed animals and clicks on nothing raise the
disagreement, in the same currency as for boxes. How far the linked clicks lie
from their points is reported beside it, as ``mean_distance`` (pixels), per
consensus point, subject and volunteer. A subject with boxes and points mixes
both kinds of link in one score.

How it is computed
------------------
Each call links marks to boxes once (positionally when the links are in the
marks' order, as `consensus.match` and `consensus.aggregate` return them),
codes volunteers, subjects and (subject, volunteer) viewers as integers once,
and then every count and sum is a ``bincount`` over those codes: no string
``groupby``, no join of the marks with the viewers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .boxes import require_columns, volunteer_keys
from .segments import segment_count, segment_sum

#: SE of the median of n Gaussian values is sqrt(pi / 2) sigma / sqrt(n).
_MEDIAN_EFFICIENCY = np.sqrt(np.pi / 2)


def _as_float(values: pd.Series) -> np.ndarray:
    """A nullable count column as floats, missing as NaN."""
    return values.astype("Float64").to_numpy(float, na_value=np.nan)


@dataclass
class _MarkLinks:
    """Each mark's link, aligned with the rows of the marks table (no link: consensus_id -1, IoU NaN).

    ``distance`` / ``best_distance`` are the pixel distances of point links (NaN
    for boxes, and everywhere when the links table has no such columns).
    """

    consensus_id: np.ndarray
    iou: np.ndarray
    best_consensus_id: np.ndarray | None
    best_iou: np.ndarray | None
    distance: np.ndarray
    best_distance: np.ndarray

    @property
    def point_linked(self) -> np.ndarray:
        """Marks linked to a consensus point (by distance)."""
        return (self.consensus_id >= 0) & np.isfinite(self.distance)


def _mark_links(marks: pd.DataFrame, links: pd.DataFrame) -> _MarkLinks:
    """The link of every mark, looked up by ``mark_id`` (a positional fast path when the rows already line up)."""
    require_columns(marks, ("mark_id", "subject_id", "x", "y", "width", "height"), "marks")
    require_columns(links, ("mark_id", "consensus_id", "iou"), "links")
    mark_ids = marks["mark_id"].to_numpy(np.int64)
    link_ids = links["mark_id"].to_numpy(np.int64)
    with_best = "best_consensus_id" in links.columns and "best_iou" in links.columns
    if len(link_ids) == len(mark_ids) and np.array_equal(link_ids, mark_ids):
        # `match` and `aggregate` return links in the marks' order: no lookup needed.
        row = np.arange(len(mark_ids))
    else:
        for table, ids in (("marks", mark_ids), ("links", link_ids)):
            if not pd.Index(ids).is_unique:
                raise ValueError(f"{table} table has repeated mark_id values; each mark needs one link")
        row = pd.Index(link_ids).get_indexer(mark_ids)
    found = row >= 0

    def column(name, fill, dtype):
        values = np.full(len(mark_ids), fill, dtype=dtype)
        source = links[name]
        source = source.fillna(fill) if source.hasnans else source
        values[found] = source.to_numpy(dtype)[row[found]]
        return values

    def optional(name):
        return column(name, np.nan, float) if name in links.columns else np.full(len(mark_ids), np.nan)

    return _MarkLinks(
        consensus_id=column("consensus_id", -1, np.int64),
        iou=column("iou", np.nan, float),
        best_consensus_id=column("best_consensus_id", -1, np.int64) if with_best else None,
        best_iou=column("best_iou", np.nan, float) if with_best else None,
        distance=optional("distance"),
        best_distance=optional("best_distance"),
    )


@dataclass
class _Viewing:
    """Who saw which subject and how their marks were linked, as integer codes.

    Volunteers are coded in sorted name order and subjects in ``subject_id``
    order, so per-code results come out in the order ``groupby`` would give.
    A *viewer* is one (subject, volunteer) who saw it, sorted by subject then volunteer.
    """

    subject_ids: np.ndarray
    volunteer_names: pd.Index
    mark_volunteer: np.ndarray
    mark_viewer: np.ndarray
    classification_volunteer: np.ndarray | None
    classification_subject: np.ndarray | None
    viewer_subject: np.ndarray
    viewer_volunteer: np.ndarray
    links: _MarkLinks
    # Per viewer: marks, linked marks, summed IoU of the linked boxes, clicks linked to points and their summed
    # distance, consensus marks on the subject, soft F1 (module docstring).
    n_marks: np.ndarray
    n_linked: np.ndarray
    iou_sum: np.ndarray
    n_point_linked: np.ndarray
    distance_sum: np.ndarray
    n_consensus: np.ndarray
    agreement: np.ndarray

    @property
    def n_subjects(self) -> int:
        return len(self.subject_ids)

    @property
    def n_volunteers(self) -> int:
        return len(self.volunteer_names)

    def per_subject(self, values: np.ndarray) -> np.ndarray:
        return segment_sum(values, self.viewer_subject, self.n_subjects)

    def per_volunteer(self, values: np.ndarray) -> np.ndarray:
        return segment_sum(values, self.viewer_volunteer, self.n_volunteers)


def _volunteer_codes(*keys: pd.Series) -> tuple[pd.Index, list[np.ndarray]]:
    """Sorted distinct volunteer names of several key columns, and each column's codes into them."""
    # Factorise each column on its own, then only the (few) distinct names together.
    factorised = [pd.factorize(key) for key in keys]
    names = pd.Index(pd.concat([pd.Series(uniques) for _, uniques in factorised], ignore_index=True).unique()).sort_values()
    return names, [names.get_indexer(uniques)[codes] if len(codes) else codes.astype(np.int64)
                   for codes, uniques in factorised]


def _viewing(marks: pd.DataFrame, consensus: pd.DataFrame, links: pd.DataFrame,
             classifications: pd.DataFrame | None) -> _Viewing:
    """Code volunteers, subjects and viewers once, and sum each viewer's marks and links."""
    mark_links = _mark_links(marks, links)
    mark_subject_ids = marks["subject_id"].to_numpy(np.int64)
    if classifications is not None:
        require_columns(classifications, ("subject_id",), "classifications")
        classification_subject_ids = classifications["subject_id"].to_numpy(np.int64)
        names, (mark_volunteer, classification_volunteer) = _volunteer_codes(
            volunteer_keys(marks), volunteer_keys(classifications))
    else:
        classification_subject_ids = np.zeros(0, dtype=np.int64)
        names, (mark_volunteer,) = _volunteer_codes(volunteer_keys(marks))
        classification_volunteer = np.zeros(0, dtype=np.int64)
    # Hash-based codes (pandas' factorize) sort only the distinct values, not every row.
    subject_code, subject_ids = pd.factorize(np.concatenate([mark_subject_ids, classification_subject_ids]), sort=True)
    mark_subject, classification_subject = np.split(subject_code.astype(np.int64), [len(mark_subject_ids)])

    # Everyone who classified a subject saw it, and so did anyone who drew on it.
    n_volunteers = max(len(names), 1)
    viewer_code, viewer_keys = pd.factorize(np.concatenate([mark_subject * n_volunteers + mark_volunteer,
                                                            classification_subject * n_volunteers + classification_volunteer]),
                                            sort=True)
    mark_viewer = viewer_code[: len(mark_subject)].astype(np.int64)
    viewer_subject, viewer_volunteer = viewer_keys // n_volunteers, viewer_keys % n_volunteers

    n_viewers = len(viewer_keys)
    linked = mark_links.consensus_id >= 0
    n_marks = segment_count(mark_viewer, n_viewers)
    n_linked = segment_count(mark_viewer[linked], n_viewers)
    # A linked mark without an IoU adds nothing to the sum (as pandas' sum skips NaN).
    iou_sum = segment_sum(np.nan_to_num(mark_links.iou[linked], nan=0.0), mark_viewer[linked], n_viewers)
    point_linked = mark_links.point_linked
    n_point_linked = segment_count(mark_viewer[point_linked], n_viewers)
    distance_sum = segment_sum(mark_links.distance[point_linked], mark_viewer[point_linked], n_viewers)

    consensus_subject = np.searchsorted(subject_ids, consensus["subject_id"].to_numpy(np.int64))
    known = consensus_subject < len(subject_ids)
    known[known] = subject_ids[consensus_subject[known]] == consensus["subject_id"].to_numpy(np.int64)[known]
    subject_boxes = segment_count(consensus_subject[known], len(subject_ids))
    n_consensus = subject_boxes[viewer_subject]
    denominator = n_marks + n_consensus
    with np.errstate(invalid="ignore", divide="ignore"):
        # A click linked to a point counts 1 (it has no IoU); see the module docstring.
        agreement = np.where(denominator > 0, 2 * (iou_sum + n_point_linked) / np.maximum(denominator, 1), 1.0)
    return _Viewing(
        subject_ids=subject_ids, volunteer_names=names, mark_volunteer=mark_volunteer, mark_viewer=mark_viewer,
        classification_volunteer=classification_volunteer if classifications is not None else None,
        classification_subject=classification_subject if classifications is not None else None,
        viewer_subject=viewer_subject, viewer_volunteer=viewer_volunteer, links=mark_links,
        n_marks=n_marks, n_linked=n_linked, iou_sum=iou_sum, n_point_linked=n_point_linked, distance_sum=distance_sum,
        n_consensus=n_consensus, agreement=agreement,
    )


def box_agreement(marks: pd.DataFrame, consensus: pd.DataFrame, links: pd.DataFrame) -> pd.DataFrame:
    """Agreement per consensus box.

    Parameters
    ----------
    marks, consensus, links : pandas.DataFrame
        Canonical tables; ``links`` as made by `consensus.match` or `consensus.aggregate`.

    Returns
    -------
    pandas.DataFrame
        One row per consensus box: ``consensus_id``, ``subject_id``, ``n_votes``
        (linked marks), ``n_seen`` (from the consensus table), ``vote_fraction``,
        ``mean_iou`` and ``median_iou`` of the votes, ``sigma_x``, ``sigma_y``,
        ``sigma_width``, ``sigma_height`` (sample standard deviation of the
        votes' top-left corner and size, pixels; NaN with one vote), and
        ``x_err``, ``y_err``, ``width_err``, ``height_err``: the standard error
        of a median box, sqrt(pi/2) sigma / sqrt(n_votes), a band of about 68 %
        around each edge for the dashboard to draw; for consensus points
        ``mean_distance`` and ``median_distance`` of the votes from the point
        (pixels; NaN for boxes), the IoU and size columns NaN.
    """
    require_columns(consensus, ("consensus_id", "subject_id", "n_seen"), "consensus")
    mark_links = _mark_links(marks, links)
    linked = np.flatnonzero(mark_links.consensus_id >= 0)
    votes = pd.DataFrame({"consensus_id": mark_links.consensus_id[linked], "iou": mark_links.iou[linked],
                          "distance": mark_links.distance[linked],
                          **{edge: marks[edge].to_numpy(float, na_value=np.nan)[linked]
                             for edge in ("x", "y", "width", "height")}})
    grouped = votes.groupby("consensus_id")
    stats = pd.DataFrame({
        "n_votes": grouped.size(),
        "mean_iou": grouped["iou"].mean(),
        "median_iou": grouped["iou"].median(),
        "mean_distance": grouped["distance"].mean(),
        "median_distance": grouped["distance"].median(),
        "sigma_x": grouped["x"].std(),
        "sigma_y": grouped["y"].std(),
        "sigma_width": grouped["width"].std(),
        "sigma_height": grouped["height"].std(),
    })
    table = consensus[["consensus_id", "subject_id", "n_seen"]].merge(stats, left_on="consensus_id", right_index=True, how="left")
    table["n_votes"] = table["n_votes"].fillna(0).astype(np.int64)
    # n_seen is nullable: other producers may not record who saw a subject.
    table["n_seen"] = table["n_seen"].astype("Int64")
    seen = _as_float(table["n_seen"])
    with np.errstate(invalid="ignore", divide="ignore"):
        table["vote_fraction"] = np.where(seen > 0, table["n_votes"] / seen, np.nan)
        root_n = np.sqrt(table["n_votes"].where(table["n_votes"] > 0))
    for edge in ("x", "y", "width", "height"):
        table[f"{edge}_err"] = _MEDIAN_EFFICIENCY * table[f"sigma_{edge}"] / root_n
    columns = ["consensus_id", "subject_id", "n_votes", "n_seen", "vote_fraction", "mean_iou", "median_iou",
               "mean_distance", "median_distance", "sigma_x", "sigma_y", "sigma_width", "sigma_height", "x_err", "y_err", "width_err", "height_err"]
    return table[columns].reset_index(drop=True)


def subject_agreement(marks: pd.DataFrame, consensus: pd.DataFrame, links: pd.DataFrame,
                      classifications: pd.DataFrame | None = None, quorum: float = 0.5) -> pd.DataFrame:
    """Agreement per subject, with the disagreement score of the module docstring.

    Parameters
    ----------
    marks, consensus, links : pandas.DataFrame
        Canonical tables.
    classifications : pandas.DataFrame, optional
        To count volunteers who saw a subject and drew nothing.
    quorum : float
        Vote fraction below which a consensus box counts as contested (``n_below_quorum``).

    Returns
    -------
    pandas.DataFrame
        One row per subject seen: ``subject_id``, ``n_volunteers``,
        ``n_classifications``, ``n_marks``, ``n_consensus``, ``mean_iou``
        (linked boxes), ``mean_distance`` (pixels, linked clicks from their
        points), ``votes_per_consensus`` (linked marks per consensus box or
        point), ``unmatched_fraction`` (marks linked to nothing),
        ``n_below_quorum``, ``disagreement``.
    """
    require_columns(consensus, ("subject_id", "n_votes", "n_seen"), "consensus")
    viewing = _viewing(marks, consensus, links, classifications)
    n_subjects = viewing.n_subjects
    n_volunteers = segment_count(viewing.viewer_subject, n_subjects)
    n_marks = viewing.per_subject(viewing.n_marks).astype(np.int64)
    n_linked = viewing.per_subject(viewing.n_linked)
    iou_sum = viewing.per_subject(viewing.iou_sum)
    n_point_linked = viewing.per_subject(viewing.n_point_linked)
    distance_sum = viewing.per_subject(viewing.distance_sum)
    n_consensus = np.zeros(n_subjects, dtype=np.int64)
    n_consensus[viewing.viewer_subject] = viewing.n_consensus
    if viewing.classification_subject is not None:
        n_classifications = segment_count(viewing.classification_subject, n_subjects)
    elif "classification_id" in marks.columns:
        n_classifications = _distinct_per_code(viewing.viewer_subject[viewing.mark_viewer],
                                               marks["classification_id"].to_numpy(np.int64), n_subjects)
    else:
        n_classifications = n_volunteers
    n_box_linked = n_linked - n_point_linked
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_iou = iou_sum / np.where(n_box_linked > 0, n_box_linked, np.nan)
        mean_distance = distance_sum / np.where(n_point_linked > 0, n_point_linked, np.nan)
        votes_per_consensus = n_linked / np.where(n_consensus > 0, n_consensus, np.nan)
        unmatched_fraction = 1.0 - n_linked / np.where(n_marks > 0, n_marks, np.nan)
        disagreement = 1.0 - viewing.per_subject(viewing.agreement) / n_volunteers

    votes, seen = _as_float(consensus["n_votes"]), _as_float(consensus["n_seen"])
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = np.where(seen > 0, votes / seen, np.nan)
    # A box whose vote fraction is unknown is not counted as below quorum.
    below = pd.Series(fraction < quorum).groupby(consensus["subject_id"].to_numpy(np.int64)).sum()
    n_below_quorum = below.reindex(viewing.subject_ids).fillna(0).to_numpy(np.int64)
    return pd.DataFrame({
        "subject_id": viewing.subject_ids,
        "n_volunteers": n_volunteers.astype(np.int64),
        "n_classifications": n_classifications.astype(np.int64),
        "n_marks": n_marks,
        "n_consensus": n_consensus,
        "mean_iou": mean_iou,
        "mean_distance": mean_distance,
        "votes_per_consensus": votes_per_consensus,
        "unmatched_fraction": unmatched_fraction,
        "n_below_quorum": n_below_quorum,
        "disagreement": disagreement,
    })


def volunteer_agreement(marks: pd.DataFrame, consensus: pd.DataFrame, links: pd.DataFrame,
                        classifications: pd.DataFrame | None = None, min_iou: float = 0.3) -> pd.DataFrame:
    """How each volunteer's marks compare with the consensus.

    Parameters
    ----------
    marks, consensus, links : pandas.DataFrame
        Canonical tables; ``links`` with ``best_consensus_id`` and ``best_iou``
        (as `consensus.match` makes them) to count double marks.
    classifications : pandas.DataFrame, optional
        For classification counts, subjects seen without drawing, and activity dates.
    min_iou : float
        IoU at which an unlinked mark on a box the volunteer already supports
        counts as a double mark (use the threshold the links were made with).

    Returns
    -------
    pandas.DataFrame
        One row per volunteer (``user``): ``n_classifications``, ``n_subjects``,
        ``n_marks``, ``n_linked``, ``precision`` (linked / marks),
        ``recall`` (consensus boxes they supported / consensus boxes on the
        subjects they saw), ``mean_iou`` (linked boxes), ``mean_distance``
        (pixels, linked clicks from their points), ``unmatched_rate``
        (1 - precision), ``n_double_marks`` (marks on a box they already
        supported, or clicks near a point they already clicked), and with
        classifications ``first_seen``, ``last_seen``, ``active_days``.
    """
    viewing = _viewing(marks, consensus, links, classifications)
    n_volunteers = viewing.n_volunteers
    # Names as plain Python strings, the dtype pandas infers for them (as a groupby on the names gave).
    table = pd.DataFrame(index=pd.Index(viewing.volunteer_names.to_numpy(dtype=object), name="user"))
    if viewing.classification_volunteer is not None:
        table["n_classifications"] = segment_count(viewing.classification_volunteer, n_volunteers).astype(np.int64)
    elif "classification_id" in marks.columns:
        table["n_classifications"] = _distinct_per_code(viewing.mark_volunteer, marks["classification_id"].to_numpy(np.int64),
                                                        n_volunteers)
    table["n_subjects"] = segment_count(viewing.viewer_volunteer, n_volunteers).astype(np.int64)
    sums = _agreement_sums(viewing, min_iou)
    table[["n_marks", "n_linked"]] = sums[["n_marks", "n_linked"]].to_numpy()
    table = table.join(volunteer_rates(sums))
    table["n_double_marks"] = sums["n_double_marks"].to_numpy()
    if classifications is not None and "created_at" in classifications.columns:
        table = table.join(_activity_span(classifications, viewing.classification_volunteer, viewing.volunteer_names))
    return table.reset_index()


#: Per-volunteer sums `volunteer_agreement` takes its rates from (`volunteer_rates`): summed over disjoint
#: sets of subjects, they give the rates of the union (how a project store reduces its parts).
AGREEMENT_SUMS = ("n_marks", "n_linked", "iou_sum", "n_point_linked", "distance_sum", "n_consensus_seen",
                  "n_double_marks")


def volunteer_agreement_sums(marks: pd.DataFrame, consensus: pd.DataFrame, links: pd.DataFrame,
                             classifications: pd.DataFrame | None = None, min_iou: float = 0.3) -> pd.DataFrame:
    """`AGREEMENT_SUMS` per volunteer (index ``user``), for `volunteer_agreement`'s arguments."""
    return _agreement_sums(_viewing(marks, consensus, links, classifications), min_iou)


def _agreement_sums(viewing: _Viewing, min_iou: float) -> pd.DataFrame:
    sums = pd.DataFrame({
        "n_marks": viewing.per_volunteer(viewing.n_marks).astype(np.int64),
        "n_linked": viewing.per_volunteer(viewing.n_linked).astype(np.int64),
        "iou_sum": viewing.per_volunteer(viewing.iou_sum),
        "n_point_linked": viewing.per_volunteer(viewing.n_point_linked).astype(np.int64),
        "distance_sum": viewing.per_volunteer(viewing.distance_sum),
        "n_consensus_seen": viewing.per_volunteer(viewing.n_consensus).astype(np.int64),
    }, index=pd.Index(viewing.volunteer_names.to_numpy(dtype=object), name="user"))
    sums["n_double_marks"] = (_double_marks(viewing, min_iou) if viewing.links.best_consensus_id is not None
                              else pd.NA)
    return sums


def volunteer_rates(sums: pd.DataFrame) -> pd.DataFrame:
    """``precision``, ``recall``, ``mean_iou``, ``mean_distance`` and ``unmatched_rate`` from `AGREEMENT_SUMS`."""
    n_marks, n_linked = sums["n_marks"].to_numpy(np.float64), sums["n_linked"].to_numpy(np.float64)
    n_point_linked, boxes_seen = sums["n_point_linked"].to_numpy(np.float64), sums["n_consensus_seen"].to_numpy(np.float64)
    rates = pd.DataFrame(index=sums.index)
    with np.errstate(invalid="ignore", divide="ignore"):
        rates["precision"] = n_linked / np.where(n_marks > 0, n_marks, np.nan)
        rates["recall"] = n_linked / np.where(boxes_seen > 0, boxes_seen, np.nan)
        rates["mean_iou"] = sums["iou_sum"].to_numpy(np.float64) / np.where(
            n_linked - n_point_linked > 0, n_linked - n_point_linked, np.nan)
        rates["mean_distance"] = sums["distance_sum"].to_numpy(np.float64) / np.where(
            n_point_linked > 0, n_point_linked, np.nan)
    rates["unmatched_rate"] = 1.0 - rates["precision"]
    return rates


def _double_marks(viewing: _Viewing, min_iou: float) -> np.ndarray:
    """Per volunteer: unlinked marks whose best-overlapping box (IoU >= ``min_iou``) or nearest point
    (within the link distance: any ``best_distance``) they already support."""
    links = viewing.links
    linked = links.consensus_id >= 0
    near = (links.best_iou >= min_iou) | np.isfinite(links.best_distance)
    loose = ~linked & (links.best_consensus_id >= 0) & near
    box_code, box_ids = pd.factorize(np.concatenate([links.consensus_id[linked], links.best_consensus_id[loose]]))
    n_boxes, n_linked = max(len(box_ids), 1), int(linked.sum())
    supported = viewing.mark_volunteer[linked] * n_boxes + box_code[:n_linked]
    candidate = viewing.mark_volunteer[loose] * n_boxes + box_code[n_linked:]
    is_double = pd.Series(candidate).isin(supported).to_numpy()
    return segment_count(viewing.mark_volunteer[loose][is_double], viewing.n_volunteers).astype(np.int64)


def _distinct_per_code(codes: np.ndarray, values: np.ndarray, n_codes: int) -> np.ndarray:
    """Number of distinct ``values`` per integer code in ``[0, n_codes)``."""
    pairs = pd.DataFrame({"code": codes, "value": values}).drop_duplicates()
    return segment_count(pairs["code"].to_numpy(), n_codes).astype(np.int64)


def _activity_span(classifications: pd.DataFrame, volunteer: np.ndarray, names: pd.Index) -> pd.DataFrame:
    """Per volunteer with classifications: first and last classification time and distinct UTC days with one."""
    created = pd.to_datetime(classifications["created_at"], utc=True).reset_index(drop=True)
    when = created.groupby(volunteer).agg(["min", "max"])
    valid = created.notna().to_numpy()
    # Naive UTC datetime64 cast to whole days floors each time to its UTC day.
    days = created[valid].dt.tz_localize(None).to_numpy().astype("datetime64[D]").astype(np.int64)
    active_days = _distinct_per_code(volunteer[valid], days, len(names))
    return pd.DataFrame({
        "first_seen": when["min"].to_numpy(),
        "last_seen": when["max"].to_numpy(),
        "active_days": active_days[when.index.to_numpy()],
    }, index=pd.Index(names[when.index.to_numpy()].to_numpy(dtype=object), name="user"))
def volunteer_activity(classifications: pd.DataFrame, freq: str = "D") -> pd.DataFrame:
    """Classifications per volunteer per period (``freq``: a pandas offset alias, e.g. "D", "W", "MS").

    Returns
    -------
    pandas.DataFrame
        ``user``, ``period`` (start of the period, UTC), ``n_classifications``,
        ``n_marks`` (when the classifications carry ``n_marks``); periods with
        no activity are absent.
    """
    require_columns(classifications, ("created_at",), "classifications")
    table = pd.DataFrame({
        "user": volunteer_keys(classifications).to_numpy(),
        "period": pd.to_datetime(classifications["created_at"].to_numpy(), utc=True),
        "n_marks": classifications["n_marks"].to_numpy() if "n_marks" in classifications.columns else 0,
    })
    # Periods are calendar periods in UTC; PeriodArray has no time zone, so drop it and put it back.
    table["period"] = table["period"].dt.tz_convert(None).dt.to_period(freq).dt.start_time.dt.tz_localize("UTC")
    grouped = table.groupby(["user", "period"])
    result = pd.DataFrame({"n_classifications": grouped.size(), "n_marks": grouped["n_marks"].sum()}).reset_index()
    if "n_marks" not in classifications.columns:
        result = result.drop(columns="n_marks")
    return result
