"""Builders of small canonical tables for hand-made consensus cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


def build_marks(rows) -> pd.DataFrame:
    """Canonical marks from ``(subject_id, user, x, y, width, height[, angle])`` tuples.

    Each (subject, user) is one classification; mark ids count from 1 in row order.
    """
    table = pd.DataFrame(
        [tuple(row) + (0.0,) * (7 - len(row)) for row in rows],
        columns=["subject_id", "user", "x", "y", "width", "height", "angle"],
    )
    classification = pd.factorize(pd.MultiIndex.from_frame(table[["subject_id", "user"]]))[0]
    table.insert(0, "mark_id", np.arange(1, len(table) + 1, dtype=np.int64))
    table.insert(1, "classification_id", 1000 + classification.astype(np.int64))
    table["task"] = "T0"
    table["tool"] = np.int64(0)
    table["frame"] = np.int64(0)
    table["kind"] = np.where(table["angle"] != 0, "rotateRectangle", "rectangle")
    return table.astype({"subject_id": "int64", "user": "string"})


def build_classifications(marks: pd.DataFrame, empty=()) -> pd.DataFrame:
    """One classification per (subject, user) of ``marks``, plus ``empty`` (subject_id, user) who drew nothing."""
    drawn = marks.groupby(["classification_id", "subject_id", "user"]).size().rename("n_marks").reset_index()
    nothing = pd.DataFrame(list(empty), columns=["subject_id", "user"])
    nothing["classification_id"] = 5000 + np.arange(len(nothing))
    nothing["n_marks"] = 0
    table = pd.concat([drawn, nothing], ignore_index=True)
    table["created_at"] = pd.Timestamp("2020-01-01", tz="UTC") + pd.to_timedelta(np.arange(len(table)), unit="h")
    return table.astype({"subject_id": "int64", "user": "string", "classification_id": "int64", "n_marks": "int64"})


@pytest.fixture
def marks_from():
    return build_marks


@pytest.fixture
def classifications_for():
    return build_classifications
