"""Box overlap: axis-aligned and rotated IoU against closed forms and an independent pixel count."""

import numpy as np
import pytest

from consensus import geometry


def one(cx, cy, width, height, angle=0.0):
    return tuple(np.array([value], float) for value in (cx, cy, width, height, angle))


def test_identical_boxes_overlap_fully_at_any_angle():
    for angle in (0.0, 17.0, 45.0, 90.0, 133.0):
        assert geometry.iou(one(5, 5, 4, 2, angle), one(5, 5, 4, 2, angle))[0] == pytest.approx(1.0)


def test_square_against_itself_turned_45_degrees():
    # The overlap is a regular octagon with apothem 1 (the square's half side):
    # area 8 tan(22.5 deg) = 8 (sqrt 2 - 1); union 2 * 4 - that; IoU = 1 / sqrt 2.
    iou = geometry.iou(one(0, 0, 2, 2, 0), one(0, 0, 2, 2, 45))[0]
    assert iou == pytest.approx(1 / np.sqrt(2), rel=1e-12)


def test_rectangle_turned_a_quarter_is_the_swapped_axis_aligned_rectangle():
    rotated = geometry.iou(one(10, 10, 8, 2, 90), one(11, 10, 2, 8, 0))[0]
    # A 2 x 8 box against the same box shifted 1 px along its short side: overlap 1 x 8.
    assert rotated == pytest.approx(8 / (16 + 16 - 8))


def test_contained_and_disjoint_and_touching():
    assert geometry.iou(one(0, 0, 10, 10), one(0, 0, 5, 5))[0] == pytest.approx(0.25)
    assert geometry.iou(one(0, 0, 10, 10, 30), one(0, 0, 5, 5, 30))[0] == pytest.approx(0.25)
    assert geometry.iou(one(0, 0, 2, 2), one(10, 0, 2, 2))[0] == 0.0
    assert geometry.iou(one(0, 0, 2, 2, 20), one(10, 0, 2, 2, 70))[0] == 0.0
    # Sharing an edge is no overlap.
    assert geometry.iou(one(0, 0, 2, 2), one(2, 0, 2, 2))[0] == 0.0


def test_zero_area_boxes_overlap_nothing():
    assert geometry.iou(one(0, 0, 0, 2), one(0, 0, 0, 2))[0] == 0.0
    assert geometry.iou(one(0, 0, 0, 0, 30), one(0, 0, 2, 2, 30))[0] == 0.0


def _pixel_iou(a, b, resolution=2000):
    """IoU by counting the centres of a fine grid inside each rotated box (an independent route)."""
    boxes = [tuple(float(v[0]) for v in box) for box in (a, b)]
    reach = max(max(abs(cx) + (w + h), abs(cy) + (w + h)) for cx, cy, w, h, _ in boxes)
    grid = (np.arange(resolution) + 0.5) / resolution * 2 * reach - reach
    x, y = np.meshgrid(grid, grid)

    def inside(cx, cy, w, h, angle):
        theta = np.deg2rad(angle)
        dx, dy = x - cx, y - cy
        along = dx * np.cos(theta) + dy * np.sin(theta)
        across = -dx * np.sin(theta) + dy * np.cos(theta)
        return (np.abs(along) <= w / 2) & (np.abs(across) <= h / 2)

    in_a, in_b = inside(*boxes[0]), inside(*boxes[1])
    return (in_a & in_b).sum() / (in_a | in_b).sum()


@pytest.mark.parametrize("seed", range(6))
def test_rotated_iou_matches_pixel_counting(seed):
    rng = np.random.default_rng(seed)
    a = one(rng.uniform(-2, 2), rng.uniform(-2, 2), rng.uniform(2, 6), rng.uniform(2, 6), rng.uniform(0, 360))
    b = one(rng.uniform(-2, 2), rng.uniform(-2, 2), rng.uniform(2, 6), rng.uniform(2, 6), rng.uniform(0, 360))
    assert geometry.iou(a, b)[0] == pytest.approx(_pixel_iou(a, b), abs=4e-3)


def test_many_pairs_at_once_agree_with_one_at_a_time():
    rng = np.random.default_rng(7)
    n = 300
    a = (rng.uniform(0, 20, n), rng.uniform(0, 20, n), rng.uniform(1, 8, n), rng.uniform(1, 8, n),
         np.where(rng.random(n) < 0.5, 0.0, rng.uniform(0, 180, n)))
    b = (a[0] + rng.normal(0, 2, n), a[1] + rng.normal(0, 2, n), rng.uniform(1, 8, n), rng.uniform(1, 8, n),
         np.where(rng.random(n) < 0.5, 0.0, rng.uniform(0, 180, n)))
    together = geometry.iou(a, b)
    apart = [geometry.iou(tuple(v[i : i + 1] for v in a), tuple(v[i : i + 1] for v in b))[0] for i in range(n)]
    np.testing.assert_allclose(together, apart, rtol=1e-12, atol=1e-15)
    assert ((together >= 0) & (together <= 1)).all()
    # IoU is symmetric.
    np.testing.assert_allclose(together, geometry.iou(b, a), rtol=1e-9, atol=1e-12)


def test_envelope_of_rotated_box_holds_its_corners():
    cx, cy, w, h, angle = (np.array([3.0]), np.array([4.0]), np.array([6.0]), np.array([2.0]), np.array([30.0]))
    xmin, xmax, ymin, ymax = geometry.envelopes(cx, cy, w, h, angle)
    quad = geometry.corners(cx, cy, w, h, angle)[0]
    assert quad[:, 0].min() == pytest.approx(xmin[0]) and quad[:, 0].max() == pytest.approx(xmax[0])
    assert quad[:, 1].min() == pytest.approx(ymin[0]) and quad[:, 1].max() == pytest.approx(ymax[0])
