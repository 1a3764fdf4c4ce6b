"""A project's catalogue: the consensus boxes (and optionally raw marks) of a selection, with provenance.

The one export the command line (``zoolens export``), the Export tab and a notebook's
`Explorer` all use, so the same project and selection give the same catalogue. The files
themselves are written by `data_loaders.writers` (CSV with a provenance sidecar, ECSV,
FITS, VOTable; formula cells neutralised, text made safe for each format, provenance
with the source files' SHA-256 and the aggregation settings); this module gathers the
selection's tables, each subject's sky position (`project.sky`), the filters and how the
project was built.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from data_loaders.writers import WRITERS, Export, export_bytes, prepare_export, write

from .sky import picture_sizes
from .stored import computed, rows_of_subjects


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
        # Computed (a store-backed project's are Dask tables, in subject order): the selection's marks
        # only, in mark order whichever kind of project.
        marks = computed(rows_of_subjects(project.marks, subject_ids)).sort_values("mark_id", kind="stable")
        tables["marks"] = marks.drop(columns=["consensus_id", "iou", "created_at", "size", "dx", "dy"])
        tables["links"] = computed(project.links[project.links.mark_id.isin(marks.mark_id.to_numpy())])
    return tables


def reviewed_consensus(reviews, consensus: pd.DataFrame, consensus_source: str,
                       rejected: str = "drop") -> tuple[pd.DataFrame, dict]:
    """The reviewed catalogue (`ReviewStore.apply`) and the review's provenance record.

    Parameters
    ----------
    reviews : project.reviews.ReviewStore
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


def prepare_catalogue(project, selection, include_marks: bool = False, reviews=None,
                      rejected: str = "drop") -> Export:
    """Everything a catalogue of the selection holds: its tables, RA/Dec and provenance.

    Parameters
    ----------
    project : project.Project
    selection : project.selection.Selection
        Which subjects (those it passes) and consensus boxes (``min_votes``); its
        filters are recorded in the provenance beside the project's loading filters.
    include_marks : bool
        Also export the raw marks, each with the consensus box it supports.
    reviews : project.reviews.ReviewStore, optional
        Export the reviewed catalogue: the decisions in this store on the project's
        consensus applied, recorded in the provenance.
    rejected : {"drop", "keep"}
        With ``reviews``: leave rejected boxes out, or keep them.
    """
    extra = {"load_reports": [report.to_dict() for report in project.reports],
             "aggregation_run": project.aggregation_run}
    consensus = None
    if reviews is not None:
        consensus, extra["review"] = reviewed_consensus(reviews, project.consensus, project.consensus_source,
                                                        rejected=rejected)
    subject_ids = selection.subject_ids()
    tables = selection_tables(project, subject_ids, selection.min_votes, include_marks, consensus=consensus)
    wcs, fits_files, outcomes = project.sky.wcs(tables["subjects"].subject_id)
    extra["images"] = {"folders": [str(root) for root in project.image_roots], "subjects": outcomes}
    sources = {role: [str(path) for path in paths] for role, paths in project.sources.items()}
    if fits_files:
        sources["image"] = [str(path) for path in fits_files]
    return prepare_export(
        tables, include_marks=include_marks, subjects=picture_sizes(tables["subjects"], project.images), wcs=wcs,
        pixel_scale=project.sky.pixel_scale, sources=sources, filters={**project.filters, **selection.recorded()},
        extra=extra,
    )


def write_catalogue(project, selection, path: str | Path, format: str | None = None, *, overwrite: bool = False,
                    **options) -> tuple[list[Path], Export]:
    """Write the selection's catalogue to ``path`` (`prepare_catalogue`'s ``options``); the files and the export."""
    export = prepare_catalogue(project, selection, **options)
    return write(export, path, format, overwrite=overwrite), export


def export_selection(project, selection, format: str, name: str = "zoolens-selection",
                     **options) -> tuple[str, bytes]:
    """One browser download of the selection: its file name and bytes (a zip when several files).

    ``format`` is a `data_loaders.writers` format (``csv``, ``ecsv``, ``fits``,
    ``votable``); ``name`` the file name without extension; ``options`` as for
    `prepare_catalogue`.
    """
    if format not in WRITERS:
        raise ValueError(f"unknown export format {format!r}; known formats: {', '.join(WRITERS)}")
    return export_bytes(prepare_catalogue(project, selection, **options),
                        f"{name}{WRITERS[format].extensions[0]}", format)
