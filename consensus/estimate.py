"""A consensus box from its member marks: median, inverse-variance weighted mean, residuals.

Positions are compared in units of the box's own size, because that is how
overlap works: a 2-pixel offset ruins the IoU of a 4-pixel clump and does not
matter for a 40-pixel one. The *normalised residual* of a member is

    r^2 = ((cx - cx_box) / width_box)^2 + ((cy - cy_box) / height_box)^2
          + (log width - log width_box)^2 + (log height - log height_box)^2,

four coordinates in which one volunteer's scatter is one variance, sigma^2, the
same for small and large boxes. Sizes are averaged in log space (a geometric
mean) for the same reason.

Angles are defined modulo 180 degrees (a rectangle turned half a turn is the
same rectangle); before averaging, every member's angle is moved to the turn
closest to the angle of the cluster's first member, so 179 and 1 degree average
to 0, not 90.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .boxes import BoxArrays, Boxes
from .segments import segment_median, segment_sum


@dataclass
class Members:
    """Which sorted marks belong to which box: parallel arrays ``mark`` and ``box``."""

    mark: np.ndarray
    box: np.ndarray
    n_boxes: int

    @classmethod
    def from_labels(cls, labels: np.ndarray, n_boxes: int) -> Members:
        """Members from a box index per sorted mark (-1 = no box)."""
        mark = np.flatnonzero(labels >= 0)
        return cls(mark=mark, box=labels[mark], n_boxes=n_boxes)

    def count(self) -> np.ndarray:
        return np.bincount(self.box, minlength=self.n_boxes)


class Estimates(Boxes):
    """Estimated boxes in centre form, one entry per box (in the order of the clusters they came from)."""

    def arrays(self) -> BoxArrays:
        """Sorted `BoxArrays` whose ``row`` indexes these estimates."""
        return BoxArrays.from_centres(self.group, self.cx, self.cy, self.width, self.height, self.angle)


def aligned_angles(marks: BoxArrays, members: Members) -> np.ndarray:
    """Member angles moved by multiples of 180 degrees next to the angle of their box's first member."""
    angle = marks.angle[members.mark]
    first = np.full(members.n_boxes, np.nan)
    # Reverse assignment leaves each box's first member (in sorted order) in place.
    first[members.box[::-1]] = angle[::-1]
    reference = first[members.box]
    return reference + np.remainder(angle - reference + 90.0, 180.0) - 90.0


def median_boxes(marks: BoxArrays, members: Members) -> Estimates:
    """The member-wise median of centre, size and (aligned) angle of every box."""
    n, box = members.n_boxes, members.box
    index = members.mark
    group = np.zeros(n, dtype=np.int64)
    group[box] = marks.group[index]
    return Estimates(
        group=group,
        cx=segment_median(marks.cx[index], box, n),
        cy=segment_median(marks.cy[index], box, n),
        width=segment_median(marks.width[index], box, n),
        height=segment_median(marks.height[index], box, n),
        angle=_normal_angle(segment_median(aligned_angles(marks, members), box, n)),
    )


def weighted_boxes(marks: BoxArrays, members: Members, weight: np.ndarray) -> Estimates:
    """Inverse-variance weighted mean of every box: ``weight`` per member is 1 / sigma^2 of its volunteer."""
    n, box = members.n_boxes, members.box
    index = members.mark
    total = segment_sum(weight, box, n)

    def mean(values):
        with np.errstate(invalid="ignore", divide="ignore"):
            return segment_sum(weight * values, box, n) / total

    group = np.zeros(n, dtype=np.int64)
    group[box] = marks.group[index]
    return Estimates(
        group=group,
        cx=mean(marks.cx[index]),
        cy=mean(marks.cy[index]),
        width=np.exp(mean(np.log(marks.width[index]))),
        height=np.exp(mean(np.log(marks.height[index]))),
        angle=_normal_angle(mean(aligned_angles(marks, members))),
    )


def normalised_residuals(marks: BoxArrays, members: Members, boxes: Estimates) -> np.ndarray:
    """Squared normalised residual r^2 (see the module docstring) of every member from its box."""
    index, box = members.mark, members.box
    return (
        ((marks.cx[index] - boxes.cx[box]) / boxes.width[box]) ** 2
        + ((marks.cy[index] - boxes.cy[box]) / boxes.height[box]) ** 2
        + (np.log(marks.width[index] / boxes.width[box])) ** 2
        + (np.log(marks.height[index] / boxes.height[box])) ** 2
    )


def _normal_angle(angle: np.ndarray) -> np.ndarray:
    """Angles in [0, 180): the canonical form of a rectangle's orientation."""
    return np.remainder(angle, 180.0)
