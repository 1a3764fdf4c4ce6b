"""BoxAggregator output (CSV or Parquet) -> ``consensus``, and ``links`` from its annotation table.

BoxAggregator (ou-astrophysics/BoxAggregator, the Galaxy Zoo: Clump Scout
aggregator) keeps its results in pandas DataFrames and writes no file itself;
zoolens reads those frames as saved with ``to_csv`` or ``to_parquet``:

- the consensus ("ground truth") boxes: an image id (``image_id`` or
  ``subject_id``), ``x1``, ``x2``, ``y1``, ``y2`` and whatever the producer
  kept, typically ``association`` (the ground truth's index within its image),
  ``false_pos_prob``, ``inaccurate_prob`` and ``risk``, or, in the Clump
  Scout consensus table, ``local_id``, ``label`` and ``label_text``;
- the annotation table (``annoStore.annotations``): every volunteer box with
  ``image_id``, ``worker_id``, ``x1``..``y2``, ``association`` (-1: matched no
  ground truth), ``matches_ground_truth`` and ``ground_truth_distance``.

Pass the consensus table as the file and the annotation table as
``annotations=``: each annotation becomes a ``links`` row (``mark_id`` is its
row label in the annotation table), the consensus gets ``n_votes`` (annotations
matched to it) and ``n_seen`` (workers with a box on the image; BoxAggregator
does not list those who drew nothing). Without annotations both are missing (NA)
(unknown). ``iou`` is ``1 - ground_truth_distance``; note that BoxAggregator
divides the intersection by the area of the box enclosing both boxes, not by
their union.

``offset=(dx, dy)`` is added to every coordinate. The Clump Scout table
measures boxes in the central 200 x 200 crop of the 400 x 400 subject image
(pixels 100-300), so ``offset=(100, 100)`` puts them in subject-image pixels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import param

from ._csv import RowFilter, TextTable, parse_floats, parse_integers, read_text_table, table_columns, typed_values
from .base import FormatError, LoadReport, LoadResult, Loader, ReadLimits, read_head
from .cache import cached_load, file_digest
from .schema import conform

EXPECTED = "a BoxAggregator consensus or annotation table"
CORNERS = ("x1", "x2", "y1", "y2")
ID_COLUMNS = ("subject_id", "image_id")
#: Columns read into canonical ones or used for the links; every other column is kept as is.
READ_COLUMNS = CORNERS + ID_COLUMNS


class BoxAggregatorOutput(ReadLimits, Loader):
    """BoxAggregator consensus boxes (x1, x2, y1, y2 per image) as CSV or Parquet."""

    short_name = "boxaggregator"
    extensions = (".csv", ".csv.gz", ".parquet")

    annotations = param.Parameter(default=None, doc=(
        "BoxAggregator's annotation table (annoStore.annotations), CSV or Parquet: links each volunteer box "
        "to its consensus box."))
    offset = param.NumericTuple(default=(0.0, 0.0), length=2, doc=(
        "(dx, dy) added to every x and y: (100, 100) for the Clump Scout consensus table, whose boxes are in "
        "the central 200 x 200 crop."))
    source = param.String(default="BoxAggregator", doc="What produced the boxes, for the consensus source column.")
    use_cache = param.Boolean(default=True, doc="Reuse the Parquet cache of an earlier parse of the same files "
                                                "and options.")

    @classmethod
    def identify(cls, path: Path, head: bytes) -> bool:
        header = set(table_columns(path, head))
        return set(CORNERS) <= header and bool(header & set(ID_COLUMNS))

    def read(self, path: Path) -> LoadResult:
        path = Path(path)
        annotations = None if self.annotations is None else Path(self.annotations)
        dx, dy = (float(value) for value in self.offset)
        options = {"annotations": None if annotations is None else file_digest(annotations),
                   "offset": [dx, dy], "source": self.source}
        return cached_load(path, self.short_name, options,
                           lambda: _parse(path, annotations, dx, dy, self.source, self.limits),
                           use_cache=self.use_cache)


def read_boxaggregator(path, annotations=None, offset=(0.0, 0.0), source: str = "BoxAggregator",
                       use_cache: bool = True) -> LoadResult:
    """Read BoxAggregator consensus boxes, and link volunteer boxes to them.

    Parameters
    ----------
    path : str or path-like
        The consensus table, CSV (optionally gzipped) or Parquet.
    annotations : str or path-like, optional
        BoxAggregator's annotation table (``annoStore.annotations``), CSV or Parquet.
    offset : (float, float)
        ``(dx, dy)`` added to every x and y. ``(100, 100)`` for the Clump Scout
        consensus table, whose boxes are in the central 200 x 200 crop.
    source : str
        What produced the boxes, for the consensus ``source`` column.
    use_cache : bool
        Reuse the Parquet cache of an earlier parse of the same files and options.

    Returns
    -------
    LoadResult
        ``.consensus``, ``.links`` (empty without annotations) and ``.report``.
    """
    return BoxAggregatorOutput(annotations=annotations, offset=tuple(offset), source=source,
                               use_cache=use_cache).read(Path(path))


def _boxes(rows: TextTable, kept: RowFilter, dx: float, dy: float) -> tuple[np.ndarray, dict]:
    """Image ids and canonical x, y, width, height of a table's x1/x2/y1/y2 rows."""
    id_column = next(column for column in ID_COLUMNS if column in rows.columns)
    ids, ok = parse_integers(rows.column(id_column))
    kept.reject(~ok, f"{id_column} is not an integer")
    corners = {}
    for name in CORNERS:
        values, ok = parse_floats(rows.column(name))
        kept.reject(~ok | ~np.isfinite(values), f"{name} is not a number")
        corners[name] = values
    kept.reject((corners["x2"] < corners["x1"]) | (corners["y2"] < corners["y1"]),
                "x2 < x1 or y2 < y1")
    geometry = {"x": corners["x1"] + dx, "y": corners["y1"] + dy,
                "width": corners["x2"] - corners["x1"], "height": corners["y2"] - corners["y1"]}
    return ids, geometry


def _parse(path: Path, annotations: Path | None, dx: float, dy: float, source: str, limits: dict) -> LoadResult:
    report = LoadReport(source=str(path), format=BoxAggregatorOutput.short_name)
    header = table_columns(path, read_head(path))
    id_column = next((column for column in ID_COLUMNS if column in header), ID_COLUMNS[0])
    if "worker_id" in header:
        raise FormatError(
            f"{path}: this is BoxAggregator's annotation table (it has worker_id); read the "
            "consensus table and pass this file as annotations=")
    rows = read_text_table(path, report, EXPECTED, CORNERS + (id_column,), **limits)
    kept = RowFilter(report, rows.lines)
    subject_ids, geometry = _boxes(rows, kept, dx, dy)
    association = None
    if "association" in rows.columns:
        values, ok = parse_floats(rows.column("association"))
        kept.reject(~ok | (values != np.round(values)), "association is not an integer")
        association = np.where(ok, values, -1)
    rows_kept = kept.kept
    report.rows_loaded = len(rows_kept)

    consensus = pd.DataFrame({"subject_id": subject_ids[rows_kept],
                              "consensus_id": np.arange(len(rows_kept), dtype=np.int64),
                              **{name: values[rows_kept] for name, values in geometry.items()},
                              "angle": 0.0})
    if association is not None:
        consensus["association"] = association[rows_kept].astype(np.int64)
    for column in rows.columns:
        if column not in READ_COLUMNS + ("association",):
            consensus[column] = typed_values(pd.Series(rows.strings(column)[rows_kept], dtype=object)
                                             ).array
    consensus["kind"] = "rectangle"
    consensus["source"] = source

    if annotations is None:
        links = pd.DataFrame({"mark_id": pd.Series(dtype=np.int64),
                              "consensus_id": pd.Series(dtype=np.int64),
                              "iou": pd.Series(dtype=float)})
        consensus["n_votes"] = consensus["n_seen"] = pd.NA
    else:
        links = _links(annotations, consensus, dx, dy, report, limits)
        matched = links[links["consensus_id"] >= 0]
        consensus["n_votes"] = consensus["consensus_id"].map(
            matched.groupby("consensus_id").size()).fillna(0).astype(np.int64)
        seen = links.groupby("subject_id")["user"].nunique()
        consensus["n_seen"] = consensus["subject_id"].map(seen).fillna(0).astype(np.int64)
    consensus = conform(consensus, "consensus")
    links = conform(links, "links")

    counts = report.counts
    counts["consensus"] = len(consensus)
    counts["subjects"] = int(consensus["subject_id"].nunique())
    per_subject = consensus.groupby("subject_id").size()
    counts["boxes_per_subject"] = ({"min": int(per_subject.min()), "median": float(per_subject.median()),
                                    "max": int(per_subject.max())} if len(per_subject) else {})
    counts["degenerate_consensus"] = int((~((consensus["width"] > 0)
                                            & (consensus["height"] > 0))).sum())
    counts["offset"] = [dx, dy]
    label = "label_text" if "label_text" in consensus else "label" if "label" in consensus else None
    if label:
        counts["labels"] = {str(k): int(v) for k, v in consensus[label].value_counts().items()}
    return LoadResult({"consensus": consensus, "links": links}, report)


def _links(path: Path, consensus: pd.DataFrame, dx: float, dy: float,
           report: LoadReport, limits: dict) -> pd.DataFrame:
    """One link per annotation: its consensus box (by image and association), iou and box."""
    annotation_report = LoadReport(source=str(path), format="boxaggregator annotations")
    header = table_columns(path, read_head(path))
    id_column = next((column for column in ID_COLUMNS if column in header), ID_COLUMNS[0])
    rows = read_text_table(path, annotation_report, EXPECTED, CORNERS + (id_column, "worker_id", "association"),
                           index_column="annotation_id", **limits)
    kept = RowFilter(annotation_report, rows.lines)
    subject_ids, geometry = _boxes(rows, kept, dx, dy)
    association, ok = parse_floats(rows.column("association"))
    association = np.where(ok & np.isfinite(association), association, -1)
    kept.reject(association != np.round(association), "association is not an integer")
    if "annotation_id" in rows.columns:
        mark_ids, ok = parse_integers(rows.column("annotation_id"))
        kept.reject(~ok, "annotation_id is not an integer")
    else:
        mark_ids = np.arange(len(rows), dtype=np.int64)
    distance = (parse_floats(rows.column("ground_truth_distance"))[0]
                if "ground_truth_distance" in rows.columns else np.full(len(rows), np.nan))
    matches = (pd.Series(rows.strings("matches_ground_truth")).str.lower().eq("true").to_numpy()
               if "matches_ground_truth" in rows.columns else association >= 0)
    rows_kept = kept.kept
    annotation_report.rows_loaded = len(rows_kept)

    links = pd.DataFrame({
        "mark_id": mark_ids[rows_kept],
        "subject_id": subject_ids[rows_kept],
        "association": association[rows_kept].astype(np.int64),
        "matches_ground_truth": matches[rows_kept],
        "user": pd.array(rows.strings("worker_id")[rows_kept], dtype="string"),
        **{name: values[rows_kept] for name, values in geometry.items()},
        "iou": 1.0 - distance[rows_kept],
    })
    if "association" not in consensus:
        raise FormatError(f"{report.source}: the consensus table has no association column, so "
                          f"the annotations in {path} cannot be linked to its boxes")
    keys = consensus[["subject_id", "association", "consensus_id"]]
    links = links.merge(keys, on=["subject_id", "association"], how="left")
    wanted = links["matches_ground_truth"] & (links["association"] >= 0)
    report.counts["associations_without_consensus"] = int((wanted & links["consensus_id"].isna()).sum())
    links["consensus_id"] = links["consensus_id"].where(wanted).fillna(-1).astype(np.int64)
    report.counts["annotations"] = annotation_report.to_dict()
    report.counts["links"] = len(links)
    report.counts["unmatched_annotations"] = int((links["consensus_id"] == -1).sum())
    return links[["mark_id", "consensus_id", "iou"]
                 + [c for c in links.columns if c not in ("mark_id", "consensus_id", "iou")]]
