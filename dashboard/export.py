"""Exports of a selection: consensus boxes (and optionally raw marks) with their provenance.

Formats: CSV (ECSV: a comma-separated table under a ``#`` YAML header holding the
provenance, read by astropy's ``Table.read`` and by ``pandas.read_csv(comment="#")``),
FITS (binary table; provenance in the header) and VOTable (provenance in an INFO
element). Every export records the source files and their SHA-256, the consensus'
producer and settings, the filters, the zoolens version and the time.

Text cells come from the public: in every written table a cell starting with ``=``,
``+``, ``-``, ``@``, a tab or a carriage return gets a leading ``'`` so no spreadsheet
runs it as a formula. No Panel here: the export view calls these functions.
"""

from __future__ import annotations

import io
import json
from datetime import datetime, timezone

import numpy as np
import pandas as pd

from data_loaders.writers import neutralise_formulas

#: Export format -> (file extension, MIME type).
FORMATS = {
    "csv": (".csv", "text/csv"),
    "fits": (".fits", "application/fits"),
    "votable": (".xml", "application/x-votable+xml"),
}


def provenance(project, filters: dict, selection_size: int) -> dict:
    """What produced an export: sources with hashes, consensus producers, filters, version, time.

    Parameters
    ----------
    project : dashboard.data_store.Project
    filters : dict
        The session's filter values.
    selection_size : int
        Number of subjects exported.
    """
    from zoolens import __version__

    return {
        "zoolens_version": __version__,
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "sources": project.source_files(),
        "consensus_sources": sorted(project.consensus.source.dropna().unique().tolist()),
        "filters": {name: _plain(value) for name, value in filters.items()},
        "subjects": int(selection_size),
    }


def _plain(value):
    """A filter value as JSON-friendly data."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    return value


def consensus_catalogue(project, subject_ids, min_votes: int = 0) -> pd.DataFrame:
    """Consensus boxes of the given subjects with their box and subject statistics.

    Columns: subject_id, consensus_id, x, y, width, height (top-left, pixels),
    x_centre, y_centre, angle, n_votes, n_seen, vote_fraction, source, ra and dec of
    the box centre (degrees, when the subject has a FITS image with a celestial WCS),
    and the subject's numeric metadata as subject_<name> (its ra, dec, redshift, ...).
    """
    boxes = project.consensus
    # A box whose producer recorded no vote count passes only min_votes = 0.
    boxes = boxes[(boxes.subject_id.isin(np.asarray(subject_ids)) & (boxes.n_votes.fillna(0) >= min_votes))
                  .to_numpy(dtype=bool)]
    catalogue = boxes[["subject_id", "consensus_id", "x", "y", "width", "height", "angle", "n_votes", "n_seen",
                       "source"]].copy()
    catalogue.insert(6, "x_centre", catalogue.x + catalogue.width / 2)
    catalogue.insert(7, "y_centre", catalogue.y + catalogue.height / 2)
    catalogue.insert(10, "vote_fraction", catalogue.n_votes / catalogue.n_seen.where(catalogue.n_seen > 0))
    catalogue["ra"], catalogue["dec"] = box_sky_positions(project, catalogue)
    metadata = project.subject_stats.set_index("subject_id")[project.metadata_columns]
    metadata.columns = [f"subject_{column}" for column in metadata.columns]
    return catalogue.join(metadata, on="subject_id").reset_index(drop=True)


def box_sky_positions(project, boxes: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """RA and Dec (degrees) of each box centre, from its subject's FITS WCS; NaN without one.

    Each subject's FITS file (the ``fits_file`` metadata) is opened once, through the
    project's image store, and its `Image.sky` maps canonical pixels to the sky.
    """
    ra = np.full(len(boxes), np.nan)
    dec = np.full(len(boxes), np.nan)
    for subject_id, rows in boxes.groupby("subject_id").indices.items():
        image, _ = project.image(int(subject_id), "fits")
        if image is None or image.wcs is None:
            continue
        centre_x = boxes.x.to_numpy()[rows] + boxes.width.to_numpy()[rows] / 2
        centre_y = boxes.y.to_numpy()[rows] + boxes.height.to_numpy()[rows] / 2
        ra[rows], dec[rows] = image.sky(centre_x, centre_y)
    return ra, dec


def marks_table(project, subject_ids) -> pd.DataFrame:
    """The raw marks of the given subjects, each with the consensus box it supports and the IoU."""
    marks = project.marks
    marks = marks[marks.subject_id.isin(np.asarray(subject_ids))]
    columns = ["mark_id", "classification_id", "subject_id", "user", "task", "tool", "tool_label", "x", "y",
               "width", "height", "angle", "kind", "consensus_id", "iou", "created_at"]
    return marks[columns].sort_values(["subject_id", "mark_id"], ignore_index=True)


def write_table(table: pd.DataFrame, format: str, provenance: dict) -> bytes:
    """``table`` in ``format`` (see `FORMATS`), formula cells neutralised, provenance attached."""
    from astropy.table import Table

    if format not in FORMATS:
        raise ValueError(f"unknown export format {format!r}; known formats: {', '.join(FORMATS)}")
    safe = neutralise_formulas(table)
    for column in safe.columns:
        if isinstance(safe[column].dtype, pd.DatetimeTZDtype):
            safe[column] = safe[column].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        elif pd.api.types.is_string_dtype(safe[column]) or safe[column].dtype == object:
            safe[column] = safe[column].astype(object).where(safe[column].notna(), "")
    astropy_table = Table.from_pandas(safe)
    record = json.dumps(provenance, sort_keys=True)
    buffer = io.BytesIO()
    if format == "csv":
        astropy_table.meta["zoolens_provenance"] = provenance
        text = io.StringIO()
        astropy_table.write(text, format="ascii.ecsv", delimiter=",")
        return text.getvalue().encode("utf-8")
    if format == "fits":
        astropy_table.meta["ORIGIN"] = "zoolens"
        astropy_table.meta["ZLVERS"] = provenance["zoolens_version"]
        astropy_table.meta["DATE"] = provenance["created"]
        # Header cards hold 72 characters: the JSON record goes in as COMMENT cards.
        astropy_table.meta["comments"] = ["zoolens provenance (JSON, concatenate the lines):"] + [
            record[start:start + 70] for start in range(0, len(record), 70)]
        astropy_table.write(buffer, format="fits")
        return buffer.getvalue()
    from astropy.io.votable.tree import Info
    from astropy.io.votable import from_table

    votable = from_table(astropy_table)
    votable.resources[0].infos.append(Info(name="zoolens_provenance", value=record))
    votable.to_xml(buffer)
    return buffer.getvalue()
