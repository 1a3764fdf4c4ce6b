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
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .boxes import require_columns, volunteer_keys

#: SE of the median of n Gaussian values is sqrt(pi / 2) sigma / sqrt(n).
_MEDIAN_EFFICIENCY = np.sqrt(np.pi / 2)


def _as_float(values: pd.Series) -> np.ndarray:
    """A nullable count column as floats, missing as NaN."""
    return values.astype("Float64").to_numpy(float, na_value=np.nan)


def _linked_marks(marks: pd.DataFrame, links: pd.DataFrame) -> pd.DataFrame:
    """Marks with their link (consensus_id, iou, best_*), the volunteer key as ``volunteer``."""
    require_columns(marks, ("mark_id", "subject_id", "x", "y", "width", "height"), "marks")
    require_columns(links, ("mark_id", "consensus_id", "iou"), "links")
    table = marks[["mark_id", "subject_id", "x", "y", "width", "height"]].copy()
    table["volunteer"] = volunteer_keys(marks).to_numpy()
    extra = [column for column in ("best_consensus_id", "best_iou") if column in links.columns]
    joined = table.merge(links[["mark_id", "consensus_id", "iou", *extra]], on="mark_id", how="left", validate="one_to_one")
    joined["consensus_id"] = joined["consensus_id"].fillna(-1).astype(np.int64)
    return joined


def _viewers(marks: pd.DataFrame, classifications: pd.DataFrame | None) -> pd.DataFrame:
    """Distinct (subject_id, volunteer) who saw a subject: every classification, and everyone who drew."""
    seen = [pd.DataFrame({"subject_id": marks["subject_id"].to_numpy(np.int64), "volunteer": volunteer_keys(marks).to_numpy()})]
    if classifications is not None:
        require_columns(classifications, ("subject_id",), "classifications")
        seen.append(pd.DataFrame({
            "subject_id": classifications["subject_id"].to_numpy(np.int64),
            "volunteer": volunteer_keys(classifications).to_numpy(),
        }))
    return pd.concat(seen, ignore_index=True).drop_duplicates()


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
        around each edge for the dashboard to draw.
    """
    require_columns(consensus, ("consensus_id", "subject_id", "n_seen"), "consensus")
    votes = _linked_marks(marks, links)
    votes = votes[votes["consensus_id"] >= 0]
    grouped = votes.groupby("consensus_id")
    stats = pd.DataFrame({
        "n_votes": grouped.size(),
        "mean_iou": grouped["iou"].mean(),
        "median_iou": grouped["iou"].median(),
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
               "sigma_x", "sigma_y", "sigma_width", "sigma_height", "x_err", "y_err", "width_err", "height_err"]
    return table[columns].reset_index(drop=True)


def _per_viewer(marks, consensus, links, classifications) -> pd.DataFrame:
    """One row per (subject, volunteer) who saw it: marks, linked marks, their summed IoU, boxes on the subject."""
    linked = _linked_marks(marks, links)
    linked["is_linked"] = linked["consensus_id"] >= 0
    linked["linked_iou"] = linked["iou"].where(linked["is_linked"], 0.0)
    per_pair = linked.groupby(["subject_id", "volunteer"]).agg(
        n_marks=("mark_id", "size"), n_linked=("is_linked", "sum"), iou_sum=("linked_iou", "sum")
    )
    viewers = _viewers(marks, classifications).set_index(["subject_id", "volunteer"])
    table = viewers.join(per_pair, how="left").fillna({"n_marks": 0, "n_linked": 0, "iou_sum": 0.0}).reset_index()
    boxes = consensus.groupby("subject_id").size().rename("n_consensus")
    table = table.merge(boxes, left_on="subject_id", right_index=True, how="left")
    table["n_consensus"] = table["n_consensus"].fillna(0).astype(np.int64)
    table["n_marks"] = table["n_marks"].astype(np.int64)
    table["n_linked"] = table["n_linked"].astype(np.int64)
    denominator = table["n_marks"] + table["n_consensus"]
    with np.errstate(invalid="ignore", divide="ignore"):
        table["agreement"] = np.where(denominator > 0, 2 * table["iou_sum"] / denominator.where(denominator > 0), 1.0)
    return table


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
        (linked marks), ``unmatched_fraction`` (marks linked to no box),
        ``n_below_quorum``, ``disagreement``.
    """
    viewers = _per_viewer(marks, consensus, links, classifications)
    grouped = viewers.groupby("subject_id")
    table = pd.DataFrame({
        "n_volunteers": grouped.size(),
        "n_marks": grouped["n_marks"].sum(),
        "n_linked": grouped["n_linked"].sum(),
        "iou_sum": grouped["iou_sum"].sum(),
        "n_consensus": grouped["n_consensus"].first(),
        "disagreement": 1.0 - grouped["agreement"].mean(),
    })
    if classifications is not None:
        counts = classifications.groupby("subject_id").size()
        table["n_classifications"] = counts.reindex(table.index).fillna(0).astype(np.int64)
    else:
        table["n_classifications"] = marks.groupby("subject_id")["classification_id"].nunique().reindex(table.index).fillna(0).astype(np.int64) \
            if "classification_id" in marks.columns else table["n_volunteers"]
    with np.errstate(invalid="ignore", divide="ignore"):
        table["mean_iou"] = table["iou_sum"] / table["n_linked"].where(table["n_linked"] > 0)
        table["unmatched_fraction"] = 1.0 - table["n_linked"] / table["n_marks"].where(table["n_marks"] > 0)
    require_columns(consensus, ("subject_id", "n_votes", "n_seen"), "consensus")
    votes, seen = _as_float(consensus["n_votes"]), _as_float(consensus["n_seen"])
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = np.where(seen > 0, votes / seen, np.nan)
    # A box whose vote fraction is unknown is not counted as below quorum.
    below = pd.Series(fraction < quorum, index=consensus.index).groupby(consensus["subject_id"]).sum()
    table["n_below_quorum"] = below.reindex(table.index).fillna(0).astype(np.int64)
    table = table.reset_index()
    columns = ["subject_id", "n_volunteers", "n_classifications", "n_marks", "n_consensus", "mean_iou",
               "unmatched_fraction", "n_below_quorum", "disagreement"]
    return table[columns]


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
        subjects they saw), ``mean_iou`` (linked marks), ``unmatched_rate``
        (1 - precision), ``n_double_marks`` (marks on a box they already
        supported), and with classifications ``first_seen``, ``last_seen``,
        ``active_days``.
    """
    viewers = _per_viewer(marks, consensus, links, classifications)
    grouped = viewers.groupby("volunteer")
    table = pd.DataFrame({
        "n_subjects": grouped.size(),
        "n_marks": grouped["n_marks"].sum(),
        "n_linked": grouped["n_linked"].sum(),
        "iou_sum": grouped["iou_sum"].sum(),
        "boxes_seen": grouped["n_consensus"].sum(),
    })
    with np.errstate(invalid="ignore", divide="ignore"):
        table["precision"] = table["n_linked"] / table["n_marks"].where(table["n_marks"] > 0)
        table["recall"] = table["n_linked"] / table["boxes_seen"].where(table["boxes_seen"] > 0)
        table["mean_iou"] = table["iou_sum"] / table["n_linked"].where(table["n_linked"] > 0)
    table["unmatched_rate"] = 1.0 - table["precision"]

    linked = _linked_marks(marks, links)
    if "best_consensus_id" in linked.columns:
        supported = set(zip(linked.loc[linked["consensus_id"] >= 0, "volunteer"], linked.loc[linked["consensus_id"] >= 0, "consensus_id"]))
        loose = linked[(linked["consensus_id"] < 0) & (linked["best_consensus_id"] >= 0) & (linked["best_iou"] >= min_iou)]
        supported_index = pd.MultiIndex.from_tuples(supported, names=["volunteer", "consensus_id"]) if supported else None
        if supported_index is not None and len(loose):
            is_double = pd.MultiIndex.from_arrays([loose["volunteer"], loose["best_consensus_id"]]).isin(supported_index)
            doubles = loose[is_double].groupby("volunteer").size()
        else:
            doubles = pd.Series(dtype=np.int64)
        table["n_double_marks"] = doubles.reindex(table.index).fillna(0).astype(np.int64)
    else:
        table["n_double_marks"] = pd.NA

    if classifications is not None:
        activity = pd.DataFrame({"volunteer": volunteer_keys(classifications).to_numpy()})
        table["n_classifications"] = activity.groupby("volunteer").size().reindex(table.index).fillna(0).astype(np.int64)
        if "created_at" in classifications.columns:
            activity["created_at"] = pd.to_datetime(classifications["created_at"].to_numpy(), utc=True)
            activity["day"] = activity["created_at"].dt.floor("D")
            when = activity.groupby("volunteer").agg(
                first_seen=("created_at", "min"), last_seen=("created_at", "max"), active_days=("day", "nunique")
            )
            table = table.join(when)
    elif "classification_id" in marks.columns:
        counts = pd.DataFrame({"volunteer": volunteer_keys(marks).to_numpy(), "classification_id": marks["classification_id"].to_numpy()})
        table["n_classifications"] = counts.groupby("volunteer")["classification_id"].nunique().reindex(table.index).fillna(0).astype(np.int64)
    table.index.name = "user"
    table = table.reset_index()
    columns = ["user", "n_classifications", "n_subjects", "n_marks", "n_linked", "precision", "recall", "mean_iou",
               "unmatched_rate", "n_double_marks", "first_seen", "last_seen", "active_days"]
    return table[[column for column in columns if column in table.columns]]


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
