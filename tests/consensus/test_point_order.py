"""The point kernels' small orderings give what numpy's stable sorts give."""

from __future__ import annotations

import numpy as np
import pytest

from consensus.point_kernels import FEW_POINTS, _by_position


@pytest.mark.parametrize("n_points", [0, 1, 7, FEW_POINTS, FEW_POINTS + 1, 300])
def test_points_are_ordered_by_y_then_x_then_their_order_by_insertion_or_argsort(n_points):
    rng = np.random.default_rng(n_points)
    # Coarse positions: many ties in y, and in x too, which must keep the points' order.
    px, py = rng.integers(0, 8, n_points).astype(float), rng.integers(0, 5, n_points).astype(float)
    expected = np.lexsort((np.arange(n_points), px, py))
    assert _by_position(px, py).tolist() == expected.tolist()
