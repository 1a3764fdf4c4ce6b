"""Matching, aggregation and agreement statistics on the canonical tables. Pure numpy/pandas, no Panel.

- `match(marks, consensus)`: the links table, each raw mark -> the consensus box (by IoU)
  or point (by distance) it supports.
- `aggregate(marks, classifications, method=None, **params)`: make consensus boxes
  and points (methods: ``"iou"``, ``"lean"`` for boxes, ``"point"`` for clicks; by
  default each kind of mark gets its own, see `methods()`).
- `agreement`: statistics per consensus box, per subject and per volunteer.
- `detections.match_detections(detections, consensus)`: machine detections against the
  consensus: true positives, machine-only, human-only, precision, recall, F1, COCO AP.

Pandas and Dask DataFrames (partitioned by subject) are both accepted.
"""

from . import iou, lean, points  # noqa: F401  (importing the method modules registers them, so no call pays for it)
from .base import AggregationResult, Aggregator, aggregate, get_aggregator, methods, parse_source
from .matching import match

__all__ = [
    "AggregationResult",
    "Aggregator",
    "aggregate",
    "get_aggregator",
    "match",
    "methods",
    "parse_source",
]
