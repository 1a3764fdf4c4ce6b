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

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from data_loaders.writers import (NEUTRALISE_RULE, WRITERS, CSVWriter, Export, _columns, _file_provenance,
                                  export_bytes, prepare_export, to_safe_csv, write, writer_format)

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
    consensus, extra = _catalogue_source(project, reviews, rejected)
    tables = selection_tables(project, selection.subject_ids(), selection.min_votes, include_marks, consensus=consensus)
    return _prepared(project, selection, tables, include_marks, extra)


def _catalogue_source(project, reviews, rejected: str) -> tuple[pd.DataFrame | None, dict]:
    """The consensus a catalogue is cut from (reviewed, or None: the project's own) and its provenance so far."""
    extra = {"load_reports": [report.to_dict() for report in project.reports],
             "aggregation_run": project.aggregation_run}
    consensus = None
    if reviews is not None:
        consensus, extra["review"] = reviewed_consensus(reviews, project.consensus, project.consensus_source,
                                                        rejected=rejected)
    return consensus, extra


def _prepared(project, selection, tables: dict, include_marks: bool, extra: dict) -> Export:
    """The export of ``tables`` (`selection_tables`): RA/Dec of their subjects, provenance with ``extra``."""
    wcs, fits_files, outcomes = project.sky.wcs(tables["subjects"].subject_id)
    extra = {**extra, "images": {"folders": [str(root) for root in project.image_roots], "subjects": outcomes}}
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
    """Write the selection's catalogue to ``path`` (`prepare_catalogue`'s ``options``); the files and the export.

    A store-backed project's consensus catalogue in CSV (no marks) is streamed (`write_catalogue_streamed`: the
    same files, in bounded memory; its export holds the catalogue's columns without rows).
    """
    if (getattr(project, "store", None) is not None and not options.get("include_marks")
            and writer_format(Path(path), format) == "csv"):
        return write_catalogue_streamed(project, selection, path, overwrite=overwrite, **options)
    export = prepare_catalogue(project, selection, **options)
    return write(export, path, format, overwrite=overwrite), export


#: Consensus boxes a streamed catalogue prepares and writes at a time, about (whole subjects): bounds its memory.
STREAM_BOXES = 250_000


def write_catalogue_streamed(project, selection, path: str | Path, *, overwrite: bool = False, reviews=None,
                             rejected: str = "drop", boxes_per_range: int = STREAM_BOXES,
                             include_marks: bool = False) -> tuple[list[Path], Export]:
    """Write the selection's consensus catalogue as CSV, one range of subjects (about ``boxes_per_range`` boxes) at a
    time: the files `write_catalogue` writes (the provenance's counts summed over the ranges), in memory bounded by
    one range whatever the catalogue's size.

    The ranges follow the chosen boxes in the consensus table's order, cut between subjects; a chosen subject
    without boxes goes with the first range whose subjects reach its id (with the boxes in subject order, as a
    store's are, the provenance lists the subjects' images in the whole catalogue's order).
    Each range is prepared as a catalogue of its own (`prepare_catalogue`'s RA/Dec, text made safe) and appended
    to the CSV. A range without sky positions gets the empty RA/Dec cells the whole catalogue gives its boxes;
    should a later range hold columns the file's header lacks (positions for some subjects only, none in the
    first range), the catalogue is prepared whole instead (`prepare_catalogue`). The returned export holds the
    catalogue's columns without rows, and the provenance.
    """
    if include_marks:
        raise ValueError("a streamed catalogue holds the consensus boxes only; write the marks with write_catalogue")
    path = Path(path)
    writer = CSVWriter()
    outputs = writer.outputs(path, Export(consensus=pd.DataFrame()))
    existing = [str(target) for target in outputs.values() if target.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{', '.join(existing)} already exist(s); pass overwrite=True (--overwrite) "
                              "to replace, or choose another name")
    consensus, extra = _catalogue_source(project, reviews, rejected)
    boxes = project.consensus if consensus is None else consensus
    subject_ids = selection.subject_ids()
    # The chosen boxes, as `selection_tables` chooses them, cut into ranges at changes of subject.
    enough_votes = (boxes.n_votes.fillna(0) >= selection.min_votes) | (boxes.consensus_id < 0)
    rows = np.flatnonzero((boxes.subject_id.isin(subject_ids) & enough_votes).to_numpy(dtype=bool))
    subject_of_row = boxes.subject_id.to_numpy(dtype=np.int64)[rows]
    changes = np.flatnonzero(subject_of_row[1:] != subject_of_row[:-1]) + 1
    wanted = np.arange(boxes_per_range, len(rows), max(1, boxes_per_range))
    cuts = np.unique(changes[np.minimum(np.searchsorted(changes, wanted), len(changes) - 1)]) if len(changes) else []
    ranges = np.split(rows, cuts) if len(rows) else [rows]
    # Every chosen subject goes with a range, those without boxes too (the catalogue looks up their images): by id,
    # to the first range whose subjects reach it.
    highs = [boxes.subject_id.iloc[chosen].max() if len(chosen) else np.iinfo(np.int64).max for chosen in ranges]
    subject_rows = np.flatnonzero(project.subjects.subject_id.isin(subject_ids).to_numpy(dtype=bool))
    range_of_subject = np.minimum(np.searchsorted(np.asarray(highs), project.subjects.subject_id.to_numpy(
        dtype=np.int64)[subject_rows], "left"), len(ranges) - 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=path.parent, prefix=".zoolens-export-"))
    try:
        staged = {role: staging / target.name for role, target in outputs.items()}
        merged, columns, described, neutralised = None, None, None, 0
        with open(staged["consensus"], "w", newline="", encoding="utf-8") as catalogue:
            for number, chosen in enumerate(ranges):
                tables = {"consensus": boxes.iloc[chosen],
                          "subjects": project.subjects.iloc[subject_rows[range_of_subject == number]]}
                part = _prepared(project, selection, tables, False, extra)
                if columns is None:
                    columns, described = list(part.consensus.columns), _columns(part.consensus, part.units)
                elif set(part.consensus.columns) - set(columns):
                    export = prepare_catalogue(project, selection, reviews=reviews, rejected=rejected)
                    return write(export, path, "csv", overwrite=overwrite), export
                # Straight into the file (the header once, on top): a range's text gathered in memory first took
                # more than the whole catalogue's tables.
                neutralised += to_safe_csv(part.consensus.reindex(columns=columns),
                                           catalogue if merged is None else _WithoutHeader(catalogue))
                merged = part.provenance if merged is None else _merged_provenance(merged, part.provenance)
                del part, tables  # one range in memory at a time
        merged["rows"]["subjects"] = int(len(np.unique(subject_of_row)))
        export = Export(consensus=pd.DataFrame({name: pd.Series(dtype=object) for name in columns}), provenance=merged)
        text_cells = {"formula_cells_neutralised": {"consensus": neutralised}, "rule": NEUTRALISE_RULE}
        provenance = {**_file_provenance(export, writer.short_name, outputs, text_cells),
                      "columns": {"consensus": described}}
        staged["provenance"].write_text(json.dumps(provenance, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        for role, target in outputs.items():
            os.replace(staged[role], target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return list(outputs.values()), export


class _WithoutHeader:
    """A text file to write a CSV into, without its first line (a later range's header, ending in CRLF)."""

    def __init__(self, file):
        self.file, self.in_header = file, True

    def write(self, text: str) -> int:
        if self.in_header:
            end = text.find("\r\n")
            if end < 0:
                return len(text)
            self.in_header, text = False, text[end + 2:]
        return self.file.write(text)


def _merged_provenance(first: dict, later: dict) -> dict:
    """The provenance of two ranges' catalogues as one: rows, sky routes, aggregations and image outcomes added up."""
    merged = {**first, "rows": {name: count + later["rows"].get(name, 0) for name, count in first["rows"].items()}}
    sky, other = dict(first["sky"]), later["sky"]
    sky["boxes"] = {route: count + other["boxes"].get(route, 0) for route, count in sky["boxes"].items()}
    sky["subjects_without_position"] = _summed(sky["subjects_without_position"], other["subjects_without_position"])
    sky["notes"] = list(dict.fromkeys([*sky["notes"], *other["notes"]]))
    # As `data_loaders.celestial.SkySummary.method` names the routes used.
    sky["method"] = "+".join(route for route in ("wcs", "tangent_plane") if sky["boxes"].get(route)) or "none"
    sky["frame"] = "ICRS" if sky["method"] != "none" else None
    if first["sky"]["method"] == "none" and sky["method"] != "none":
        sky["pixel_scale_arcsec"] = other["pixel_scale_arcsec"]
    merged["sky"] = sky
    aggregations = {json.dumps({key: value for key, value in entry.items() if key != "consensus_rows"},
                               sort_keys=True): dict(entry) for entry in first["aggregation"]}
    for entry in later["aggregation"]:
        key = json.dumps({name: value for name, value in entry.items() if name != "consensus_rows"}, sort_keys=True)
        if key in aggregations:
            aggregations[key]["consensus_rows"] += entry["consensus_rows"]
        else:
            aggregations[key] = dict(entry)
    merged["aggregation"] = list(aggregations.values())
    images = first["images"]
    merged["images"] = {**images, "subjects": _summed(images["subjects"], later["images"]["subjects"])}
    sources = {(source["role"], source.get("path")): source for source in first["sources"]}
    merged["sources"] = [*first["sources"], *(source for source in later["sources"]
                                              if (source["role"], source.get("path")) not in sources)]
    return merged


def _summed(first: dict, later: dict) -> dict:
    return {**first, **{key: first.get(key, 0) + count for key, count in later.items()}}


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
