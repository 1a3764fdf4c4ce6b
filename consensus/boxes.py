"""Canonical tables -> flat, sorted box arrays, the working form of every consensus algorithm.

Marks are compared only with marks of the same *group*: the same subject, task,
tool and frame (a clump drawn with the "odd clump" tool is not a vote for a
"normal clump" box). `BoxArrays` holds the boxes of a table sorted by group and
left edge, in centre form, with the row each came from, so results map back to
the table without a join.

The volunteer of a mark is its ``user`` (user name or the not-logged-in hash);
a mark without one stands for its own classification, so two anonymous
classifications are never merged into one volunteer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import geometry
from .segments import dense_codes, sort_by_code_then_value

#: Columns that split a subject's marks into independent groups, when present.
GROUP_KEYS = ("subject_id", "task", "tool", "frame")

#: The geometry columns every box table needs.
BOX_COLUMNS = ("x", "y", "width", "height")


def present_group_keys(*tables: pd.DataFrame) -> list[str]:
    """The `GROUP_KEYS` present in every one of ``tables`` (``subject_id`` is required)."""
    for table in tables:
        if "subject_id" not in table.columns:
            raise ValueError(f"table lacks the column 'subject_id' (it has {list(table.columns)})")
    return [key for key in GROUP_KEYS if all(key in table.columns for table in tables)]


def require_columns(table: pd.DataFrame, columns, what: str) -> None:
    """Raise a clear error naming the columns ``table`` (called ``what``) lacks."""
    missing = [column for column in columns if column not in table.columns]
    if missing:
        raise ValueError(f"{what} table lacks column(s) {missing}; it has {list(table.columns)}")


def volunteer_keys(table: pd.DataFrame) -> pd.Series:
    """The volunteer of each row: ``user``, or ``classification:<id>`` when the user is missing."""
    if "user" in table.columns:
        user = table["user"].astype("string")
    else:
        user = pd.Series(pd.NA, index=table.index, dtype="string")
    missing = user.isna() | (user == "")
    if missing.any():
        if "classification_id" not in table.columns:
            raise ValueError("rows without a user need a classification_id to stand for their volunteer")
        fallback = "classification:" + table["classification_id"].astype("string")
        user = user.where(~missing, fallback)
    return user


def group_codes(tables: list[pd.DataFrame], keys: list[str]) -> list[np.ndarray]:
    """Shared int64 group codes for the rows of several tables, ordered like the sorted key tuples."""
    lengths = [len(table) for table in tables]
    columns = [pd.concat([table[key].reset_index(drop=True) for table in tables], ignore_index=True)
               for key in keys]
    codes = dense_codes(*columns)
    return list(np.split(codes, np.cumsum(lengths)[:-1]))


@dataclass
class Boxes:
    """Boxes in centre form as parallel arrays: group code, centre, size and angle of each."""

    group: np.ndarray
    cx: np.ndarray
    cy: np.ndarray
    width: np.ndarray
    height: np.ndarray
    angle: np.ndarray

    def __len__(self) -> int:
        return len(self.cx)

    @property
    def shape_tuple(self):
        """(cx, cy, width, height, angle), the argument form of `geometry.iou`."""
        return self.cx, self.cy, self.width, self.height, self.angle

    def take(self, index):
        """The boxes at ``index``, as the same type."""
        return type(self)(**{name: getattr(self, name)[index] for name in self.__dataclass_fields__})


@dataclass
class BoxArrays(Boxes):
    """Boxes of one table sorted by (group, left edge, centre, size, angle), with their envelopes.

    ``row`` is each box's position in the source table (or array it came
    from); boxes with a missing coordinate or no area are left out.
    """

    row: np.ndarray
    xmin: np.ndarray
    xmax: np.ndarray
    ymin: np.ndarray
    ymax: np.ndarray

    @classmethod
    def from_table(cls, table: pd.DataFrame, group: np.ndarray, tiebreak: tuple[np.ndarray, ...] = ()) -> tuple[BoxArrays, np.ndarray]:
        """Sorted, valid boxes of ``table`` and the mask of its rows that were invalid.

        ``tiebreak`` (most significant first) orders boxes with identical group
        and geometry (for marks: volunteer, then mark id), so the order, and
        every result, depends on the content of the rows, not on their order.
        """
        require_columns(table, BOX_COLUMNS, "box")
        x, y, width, height = (table[column].to_numpy(float, na_value=np.nan) for column in BOX_COLUMNS)
        if "angle" in table.columns:
            angle = np.nan_to_num(table["angle"].to_numpy(float, na_value=np.nan), nan=0.0)
        else:
            angle = np.zeros(len(table))
        invalid = ~(np.isfinite(x) & np.isfinite(y) & np.isfinite(width) & np.isfinite(height)) | (width <= 0) | (height <= 0)
        cx, cy = geometry.centre_boxes(x, y, width, height)
        return cls.from_centres(group, cx, cy, width, height, angle, tiebreak, keep=np.flatnonzero(~invalid)), invalid

    @classmethod
    def from_centres(cls, group, cx, cy, width, height, angle, tiebreak: tuple[np.ndarray, ...] = (), keep=None) -> BoxArrays:
        """Boxes given in centre form, sorted; ``row`` indexes the given arrays (only ``keep`` if given)."""
        group, cx, cy, width, height, angle = (np.asarray(v) for v in (group, cx, cy, width, height, angle))
        xmin, xmax, ymin, ymax = geometry.envelopes(cx, cy, width, height, angle)
        keep = np.arange(len(group)) if keep is None else keep
        exact_keys = tuple(np.asarray(values)[keep] for values in (cx, cy, width, height, angle, *tiebreak))
        order = keep[sort_by_code_then_value(group[keep].astype(np.int64), xmin[keep], exact_keys, strict=True)]
        return cls(
            row=order, group=group.astype(np.int64)[order], cx=cx[order], cy=cy[order],
            width=width[order], height=height[order], angle=angle[order],
            xmin=xmin[order], xmax=xmax[order], ymin=ymin[order], ymax=ymax[order],
        )
