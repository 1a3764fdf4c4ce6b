"""A project's true objects (the built-in demo's simulated clumps), to see how good a consensus is.

A truth file is a CSV with one row per true object: ``subject_id`` and its box ``x``, ``y``,
``width``, ``height`` in image pixels (top-left corner, y down, as every canonical table);
other columns are kept. The demo writes one (``demo-truth.csv``); `read_truth` reads it and
`project.load_project` (``truth=``) puts it on the project as ``Project.truth``, which the
cutout draws as a layer of its own.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from data_loaders.base import LoadReport

#: The columns a truth file must have.
TRUTH_COLUMNS = ("subject_id", "x", "y", "width", "height")


def read_truth(path: str | Path) -> tuple[pd.DataFrame, LoadReport]:
    """The true objects in ``path`` and what was read and skipped.

    A row whose ``subject_id``, ``x``, ``y``, ``width`` or ``height`` is not a number (or whose
    size is negative) is skipped and counted in the report with its line number.

    Raises
    ------
    ValueError
        The file cannot be read as CSV or lacks a column of `TRUTH_COLUMNS` (the message names the file).
    """
    path = Path(path)
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise ValueError(f"{path}: cannot read the truth file as CSV: {error}") from error
    missing = [name for name in TRUTH_COLUMNS if name not in table.columns]
    if missing:
        raise ValueError(f"{path}: a truth file needs the columns {', '.join(TRUTH_COLUMNS)}; "
                         f"missing {', '.join(missing)}")
    report = LoadReport(source=str(path), format="truth", rows_read=len(table))
    numbers = table[list(TRUTH_COLUMNS)].apply(pd.to_numeric, errors="coerce")
    bad = (numbers.isna().any(axis=1) | (numbers.width < 0) | (numbers.height < 0)).to_numpy()
    # The header is line 1: the first row is line 2.
    report.skip("subject_id, x, y, width or height not a number (or a negative size)", np.flatnonzero(bad) + 2)
    truth = table[~bad].assign(**{name: numbers.loc[~bad, name].astype(float) for name in TRUTH_COLUMNS[1:]})
    truth["subject_id"] = numbers.loc[~bad, "subject_id"].astype(np.int64)
    report.rows_loaded = len(truth)
    return truth.reset_index(drop=True), report
