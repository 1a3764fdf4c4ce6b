"""What the dashboard exports: the consensus boxes (and optionally raw marks) of a selection.

The files themselves are written by `data_loaders.writers` (CSV with a provenance
sidecar, ECSV, FITS, VOTable; formula cells neutralised, text made safe for each
format, provenance with the source files' SHA-256 and the aggregation settings).
This module only gathers the selection's tables, the subjects' FITS WCS for RA/Dec,
and the session's filters. No Panel here: the export view calls these functions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from data_loaders.writers import WRITERS, export_bytes


def selection_tables(project, subject_ids, min_votes: int = 0, include_marks: bool = False,
                     consensus: pd.DataFrame | None = None) -> dict:
    """Tables of the given subjects, by name, as `data_loaders.writers.prepare_export` takes them.

    A consensus box whose producer recorded no vote count passes only ``min_votes`` 0; a box
    a reviewer added (negative id, in a reviewed ``consensus``) always passes.
    """
    subject_ids = np.asarray(subject_ids, dtype=np.int64)
    boxes = project.consensus if consensus is None else consensus
    enough_votes = (boxes.n_votes.fillna(0) >= min_votes) | (boxes.consensus_id < 0)
    chosen = boxes.subject_id.isin(subject_ids) & enough_votes
    tables = {"consensus": boxes[chosen.to_numpy(dtype=bool)],
              "subjects": project.subjects[project.subjects.subject_id.isin(subject_ids)]}
    if include_marks:
        marks = project.marks[project.marks.subject_id.isin(subject_ids)]
        tables["marks"] = marks.drop(columns=["consensus_id", "iou", "created_at", "size", "dx", "dy"])
        tables["links"] = project.links[project.links.mark_id.isin(marks.mark_id)]
    return tables


def subject_wcs(project, subject_ids) -> dict:
    """``subject_id`` -> celestial WCS of the subject's FITS image, for those that have one."""
    found = {}
    for subject_id in pd.unique(np.asarray(subject_ids, dtype=np.int64)):
        image, _ = project.image(int(subject_id), "fits")
        if image is not None and image.wcs is not None:
            found[int(subject_id)] = image.wcs
    return found


def reviewed_consensus(reviews, consensus: pd.DataFrame, consensus_source: str,
                       rejected: str = "drop") -> tuple[pd.DataFrame, dict]:
    """The reviewed catalogue (`ReviewStore.apply`) and the review's provenance record.

    Parameters
    ----------
    reviews : dashboard.reviews.ReviewStore
    consensus : DataFrame
        The consensus table the decisions were made on.
    consensus_source : str
        The name the decisions were recorded under.
    rejected : {"drop", "keep"}
        Leave rejected boxes out, or keep them with ``review_status`` "rejected".

    Returns
    -------
    (DataFrame, dict)
        The catalogue, its review time in ISO 8601 text (every format can hold it), and
        `ReviewStore.summary` plus what was done with rejected boxes.
    """
    catalogue = reviews.apply(consensus, consensus_source, rejected=rejected)
    reviewed_at = catalogue["reviewed_at"]
    catalogue["reviewed_at"] = reviewed_at.map(lambda moment: moment.isoformat()).where(reviewed_at.notna(), "")
    catalogue["reviewed_by"] = catalogue["reviewed_by"].fillna("").astype(str)
    return catalogue, {**reviews.summary(consensus_source), "rejected_boxes": rejected}


def export_selection(project, subject_ids, format: str, filters: dict, min_votes: int = 0,
                     include_marks: bool = False, name: str = "zoolens-selection",
                     reviews=None) -> tuple[str, bytes]:
    """One browser download of the selection: its file name and bytes (a zip when several files).

    Parameters
    ----------
    project : dashboard.data_store.Project
    subject_ids : array of int
        The subjects to export.
    format : str
        A `data_loaders.writers` format: ``csv``, ``ecsv``, ``fits`` or ``votable``.
    filters : dict
        The session's filters, recorded in the provenance.
    min_votes : int
        Leave out consensus boxes with fewer votes.
    include_marks : bool
        Also export the raw marks, each with the consensus box it supports.
    name : str
        File name without extension.
    reviews : dashboard.reviews.ReviewStore, optional
        Export the reviewed catalogue: the decisions in this store on the project's
        consensus applied (rejected boxes left out), recorded in the provenance.
    """
    if format not in WRITERS:
        raise ValueError(f"unknown export format {format!r}; known formats: {', '.join(WRITERS)}")
    extra = {}
    consensus = None
    if reviews is not None:
        consensus, extra["review"] = reviewed_consensus(reviews, project.consensus, project.consensus_source)
    tables = selection_tables(project, subject_ids, min_votes, include_marks, consensus=consensus)
    reports = [report.to_dict() for report in project.reports]
    return export_bytes(
        tables, f"{name}{WRITERS[format].extensions[0]}", format, include_marks=include_marks,
        subjects=tables["subjects"], wcs=subject_wcs(project, tables["consensus"].subject_id),
        sources=[report["source"] for report in reports], filters=filters, extra={"load_reports": reports, **extra},
    )
