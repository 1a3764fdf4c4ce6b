"""Box geometry over arrays: corners, envelopes and the IoU of many box pairs at once.

Boxes follow the canonical convention: top-left ``x, y``, ``width``, ``height``
in image pixels (y down) and ``angle`` in degrees, a rotation about the box
centre. Every function takes whole arrays and loops over nothing but the four
corners of a quadrilateral, so millions of pairs cost a handful of numpy calls.

Rotated boxes overlap as the rotated shapes do: the intersection of two convex
quadrilaterals is the convex polygon whose vertices are the corners of each that
lie inside the other plus the points where their edges cross. Gathering those (at
most 4 + 4 + 16 candidates per pair), ordering them by angle around their mean and
applying the shoelace formula gives the exact area with fixed-shape arrays and no
per-pair branching, where Sutherland-Hodgman clipping would need a variable vertex
count per pair.
"""

from __future__ import annotations

import numpy as np

#: How many pairs of rotated boxes are intersected per numpy batch; each pair
#: needs about 0.5 kB of temporaries, so a batch stays near 100 MB.
ROTATED_BATCH = 200_000

#: Relative tolerance for "on the edge" tests, so boxes sharing an edge or a
#: corner (or identical boxes) keep the shared vertices.
_EDGE_TOLERANCE = 1e-9


def centre_boxes(x, y, width, height):
    """Centre coordinates of boxes given by their top-left corner and size."""
    return np.asarray(x, float) + np.asarray(width, float) / 2, np.asarray(y, float) + np.asarray(height, float) / 2


def corners(cx, cy, width, height, angle):
    """The four corners of each box, shape (n, 4, 2), counter-clockwise in y-up terms.

    The order is the same for every box (the box's own top-left, top-right,
    bottom-right, bottom-left before rotation), which is all the polygon code
    needs: each quadrilateral is convex and consistently wound.
    """
    cx, cy, width, height, angle = (np.asarray(value, float) for value in (cx, cy, width, height, angle))
    theta = np.deg2rad(angle)
    cos, sin = np.cos(theta), np.sin(theta)
    half_w, half_h = width / 2, height / 2
    local_x = np.stack([-half_w, half_w, half_w, -half_w], axis=-1)
    local_y = np.stack([-half_h, -half_h, half_h, half_h], axis=-1)
    rotated_x = cx[:, None] + local_x * cos[:, None] - local_y * sin[:, None]
    rotated_y = cy[:, None] + local_x * sin[:, None] + local_y * cos[:, None]
    return np.stack([rotated_x, rotated_y], axis=-1)


def envelopes(cx, cy, width, height, angle):
    """Axis-aligned bounding envelope (xmin, xmax, ymin, ymax) of each, possibly rotated, box."""
    theta = np.deg2rad(np.asarray(angle, float))
    cos, sin = np.abs(np.cos(theta)), np.abs(np.sin(theta))
    half_x = (np.asarray(width, float) * cos + np.asarray(height, float) * sin) / 2
    half_y = (np.asarray(width, float) * sin + np.asarray(height, float) * cos) / 2
    return cx - half_x, cx + half_x, cy - half_y, cy + half_y


def is_rotated(angle):
    """Whether a box's edges are not parallel to the image axes (angle not a multiple of 180)."""
    return np.remainder(np.asarray(angle, float), 180.0) != 0


def iou_axis_aligned(a, b):
    """IoU of pairs of unrotated boxes; ``a`` and ``b`` are (cx, cy, width, height) tuples of arrays."""
    (acx, acy, aw, ah), (bcx, bcy, bw, bh) = a, b
    overlap_w = np.minimum(acx + aw / 2, bcx + bw / 2) - np.maximum(acx - aw / 2, bcx - bw / 2)
    overlap_h = np.minimum(acy + ah / 2, bcy + bh / 2) - np.maximum(acy - ah / 2, bcy - bh / 2)
    intersection = np.clip(overlap_w, 0, None) * np.clip(overlap_h, 0, None)
    union = aw * ah + bw * bh - intersection
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = intersection / union
    return np.where(union > 0, iou, 0.0)


def _cross(ax, ay, bx, by):
    return ax * by - ay * bx


def polygon_area(points, count=None):
    """Shoelace area of polygons, ``points`` shaped (n, k, 2) with vertices in order.

    Slots past ``count`` must repeat the last vertex: a repeated vertex adds a
    zero-length edge, so padded polygons need no masking.
    """
    x, y = points[..., 0], points[..., 1]
    area = 0.5 * np.abs(np.sum(x * np.roll(y, -1, axis=1) - np.roll(x, -1, axis=1) * y, axis=1))
    if count is not None:
        area = np.where(count >= 3, area, 0.0)
    return area


def _inside(points, quads, tolerance):
    """Whether each point (n, k, 2) lies inside or on its convex quad (n, 4, 2)."""
    edge_start = quads
    edge_vector = np.roll(quads, -1, axis=1) - quads
    # Orientation of the quad (+1 if counter-clockwise in the array's axes), so
    # "inside" is the same side of every edge whichever way it was wound.
    orientation = np.sign(
        _cross(edge_vector[:, 0, 0], edge_vector[:, 0, 1], edge_vector[:, 1, 0], edge_vector[:, 1, 1])
    )
    relative = points[:, :, None, :] - edge_start[:, None, :, :]
    side = _cross(edge_vector[:, None, :, 0], edge_vector[:, None, :, 1], relative[..., 0], relative[..., 1])
    return np.all(side * orientation[:, None, None] >= -tolerance[:, None, None], axis=2)


def _quad_intersection_area(quads_a, quads_b):
    """Area of the intersection of pairs of convex quadrilaterals, each (n, 4, 2)."""
    n = len(quads_a)
    scale = np.maximum(np.ptp(quads_a.reshape(n, -1), axis=1), np.ptp(quads_b.reshape(n, -1), axis=1))
    tolerance = _EDGE_TOLERANCE * np.maximum(scale, 1e-12) ** 2

    a_in_b = _inside(quads_a, quads_b, tolerance)
    b_in_a = _inside(quads_b, quads_a, tolerance)

    # Every edge of a against every edge of b: p + t r meets q + u s.
    p = quads_a[:, :, None, :]
    r = (np.roll(quads_a, -1, axis=1) - quads_a)[:, :, None, :]
    q = quads_b[:, None, :, :]
    s = (np.roll(quads_b, -1, axis=1) - quads_b)[:, None, :, :]
    denominator = _cross(r[..., 0], r[..., 1], s[..., 0], s[..., 1])
    qp = q - p
    with np.errstate(invalid="ignore", divide="ignore"):
        t = _cross(qp[..., 0], qp[..., 1], s[..., 0], s[..., 1]) / denominator
        u = _cross(qp[..., 0], qp[..., 1], r[..., 0], r[..., 1]) / denominator
    parameter_tolerance = 1e-12
    crossing = (
        (np.abs(denominator) > tolerance[:, None, None])
        & (t >= -parameter_tolerance)
        & (t <= 1 + parameter_tolerance)
        & (u >= -parameter_tolerance)
        & (u <= 1 + parameter_tolerance)
    )
    crossing_points = (p + np.where(crossing, t, 0.0)[..., None] * r).reshape(n, 16, 2)

    candidates = np.concatenate([quads_a, quads_b, crossing_points], axis=1)
    valid = np.concatenate([a_in_b, b_in_a, crossing.reshape(n, 16)], axis=1)
    count = valid.sum(axis=1)

    safe = np.where(valid[..., None], candidates, 0.0)
    centre = safe.sum(axis=1) / np.maximum(count, 1)[:, None]
    offset = candidates - centre[:, None, :]
    angle = np.where(valid, np.arctan2(offset[..., 1], offset[..., 0]), np.inf)
    order = np.argsort(angle, axis=1, kind="stable")
    # Slots beyond the valid vertices repeat the last valid one (zero-length edges).
    slot = np.minimum(np.arange(candidates.shape[1])[None, :], np.maximum(count - 1, 0)[:, None])
    ordered = np.take_along_axis(candidates, np.take_along_axis(order, slot, axis=1)[..., None], axis=1)
    return polygon_area(ordered, count)


def iou_rotated(a, b):
    """IoU of pairs of boxes of any rotation; ``a`` and ``b`` are (cx, cy, width, height, angle) tuples."""
    n = len(a[0])
    iou = np.zeros(n)
    for start in range(0, n, ROTATED_BATCH):
        batch = slice(start, start + ROTATED_BATCH)
        quads_a = corners(*(np.asarray(value)[batch] for value in a))
        quads_b = corners(*(np.asarray(value)[batch] for value in b))
        intersection = _quad_intersection_area(quads_a, quads_b)
        area_a, area_b = a[2][batch] * a[3][batch], b[2][batch] * b[3][batch]
        union = area_a + area_b - intersection
        # A box without area has no inside; the polygon test would call a
        # collapsed quad's edges "on the line" for every point.
        proper = (area_a > 0) & (area_b > 0) & (union > 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            iou[batch] = np.where(proper, intersection / union, 0.0)
    return np.clip(iou, 0.0, 1.0)


def iou(a, b):
    """IoU of pairs of boxes, ``a[i]`` with ``b[i]``, using the rotated shapes where needed.

    Parameters
    ----------
    a, b : tuple of arrays
        ``(cx, cy, width, height, angle)``: centres in pixels, sizes in pixels,
        angles in degrees. Boxes of zero area have IoU 0 with everything.

    Returns
    -------
    numpy.ndarray
        IoU in [0, 1] for each pair.
    """
    a = tuple(np.asarray(value, float) for value in a)
    b = tuple(np.asarray(value, float) for value in b)
    result = iou_axis_aligned(a[:4], b[:4])
    rotated = is_rotated(a[4]) | is_rotated(b[4])
    if rotated.any():
        index = np.flatnonzero(rotated)
        result[index] = iou_rotated(tuple(v[index] for v in a), tuple(v[index] for v in b))
    return result
