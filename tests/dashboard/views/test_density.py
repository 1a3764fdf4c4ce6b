"""The density plots' spread of the largest count, worked out by hand."""

from __future__ import annotations

import holoviews as hv
import numpy as np

from dashboard.views.density import largest_around, spread_max

NAN = np.nan


def test_each_pixel_takes_the_largest_count_within_one_pixel():
    # One pixel spreads over its 3 x 3 neighbours (datashader's circle of 1 px holds the corners: 1.41 <= 1.5);
    # empty pixels (NaN) stay empty unless a neighbour has a count, and never win over one.
    counts = np.array([[NAN, NAN, NAN, NAN],
                       [NAN, 2.0, NAN, NAN],
                       [NAN, NAN, NAN, 5.0]])
    assert np.array_equal(largest_around(counts, 1), np.array([[2.0, 2.0, 2.0, NAN],
                                                               [2.0, 2.0, 5.0, 5.0],
                                                               [2.0, 2.0, 5.0, 5.0]]), equal_nan=True)


def test_integer_counts_take_zero_as_empty_and_a_wider_circle_leaves_its_corners_out():
    counts = np.zeros((5, 5), dtype=np.uint32)
    counts[2, 2] = 7
    spread = largest_around(counts, 2)
    assert spread.dtype == np.uint32
    # Radius 2.5: (2, 1) away is 2.24, inside; the corners (2.83) are not.
    expected = np.full((5, 5), 7, dtype=np.uint32)
    expected[[0, 0, 4, 4], [0, 4, 0, 4]] = 0
    assert np.array_equal(spread, expected)


def test_the_operation_spreads_an_image_and_keeps_its_frame():
    image = hv.Image((np.arange(3) + 0.5, np.arange(2) + 0.5, np.array([[1.0, NAN, NAN], [NAN, NAN, 3.0]])),
                     kdims=["x", "y"], vdims=["count"])
    spread = spread_max(image, px=1)
    assert spread.bounds.lbrt() == image.bounds.lbrt()
    assert np.array_equal(spread.dimension_values("count", flat=False), np.array([[1.0, 3.0, 3.0], [1.0, 3.0, 3.0]]))
