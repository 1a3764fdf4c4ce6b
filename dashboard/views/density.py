"""The density plots' HoloViews operations: datashader's ``rasterize``, and a spread of the largest count done by numpy.

Imported when the first density plot is drawn or warmed up (`dashboard.warm_up`), not with the views: importing
datashader takes about a second, and the page should paint first.

Datashader's own ``spread`` builds a numba kernel for each operator and dtype, and the first one imports
`datashader.composite`, whose array operators numba compiles for four dtypes as the module is imported: seconds
on the first visit to the Agreement tab in every server process (bench/results/agreement_first_visit.md), for
what is a maximum over each pixel's neighbours, a few numpy passes over a plot-sized array.
"""

from __future__ import annotations

import functools

import numpy as np
import param
from holoviews.operation.datashader import rasterize, spread

__all__ = ["density", "spread_max"]


class spread_max(spread):
    """HoloViews' ``spread`` with ``how="max"``, done by numpy: each pixel takes the largest count within ``px``
    pixels (the circle datashader's spread uses; a pixel with no count, NaN or 0, stays empty unless a neighbour
    has one), as datashader's spread of counts does."""

    how = param.Selector(default="max", objects=["max"], doc="The largest count around: the only way here.")

    def _apply_spreading(self, array, how=None):
        return array.copy(data=largest_around(np.asarray(array.data), self.p.px))


def largest_around(counts: np.ndarray, px: int) -> np.ndarray:
    """Each pixel of ``counts`` (2-D) as the largest count within ``px`` pixels of it: a circle of diameter
    ``2 * px + 1`` (datashader's circle mask), NaN counts ignored, integer counts taken as non-negative (0: none)."""
    offsets = np.arange(-px, px + 1)
    inside = np.hypot(*np.meshgrid(offsets, offsets)) <= px + 0.5
    floats = counts.dtype.kind == "f"
    rows, columns = counts.shape
    padded = np.full((rows + 2 * px, columns + 2 * px), np.nan if floats else 0, dtype=counts.dtype)
    padded[px:px + rows, px:px + columns] = counts
    windows = (padded[row:row + rows, column:column + columns] for row, column in zip(*np.nonzero(inside)))
    return functools.reduce(np.fmax if floats else np.maximum, windows)


def density(points, px: int = 1, **rasterize_options):
    """``points`` (an element, or a DynamicMap of them) rasterized by datashader, counting points per pixel, then
    every pixel widened by ``px`` on each side taking the largest count around (`spread_max`)."""
    return spread_max(rasterize(points, **rasterize_options), px=px)
