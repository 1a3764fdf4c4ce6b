"""A tiny project whose every statistic was worked out by hand (see the comments).

Subject 1 (100 x 100 image): consensus A (id 10) at (10, 10, 20, 20) and B (id 11) at
(60, 60, 10, 10). alice boxes A exactly (IoU 1) and draws one box on nothing with the
"Odd clump" tool; bob boxes B exactly (IoU 1); carol (logged out) draws nothing.
Subject 2: consensus C (id 20) at (30, 30, 10, 10), classified in the older workflow
version. alice boxes C exactly (IoU 1); bob draws (34, 30, 10, 10): overlap 6 x 10 = 60,
union 100 + 100 - 60 = 140, IoU 3/7.
Subject 3: in the subject export, never classified; its image is a URL on a host not allowed.

By hand: subject 1 has 3 classifications, 3 volunteers, 1 empty, 3 marks, 2 boxes, mean
IoU of matched marks 1, unmatched fraction 1/3. Its disagreement (consensus.agreement:
1 - mean over volunteers of 2 sum(IoU) / (marks + boxes)) is 1 - (2/4 + 2/3 + 0) / 3 = 11/18.
Subject 2: 2, 2, 0, 2 marks, 1 box, mean IoU 5/7, unmatched 0, disagreement
1 - (2/2 + (6/7)/2) / 2 = 2/7. Volunteers: alice links 2 of 3 marks to 2 of the 3 boxes
she saw (precision and recall 2/3); bob 2 of 2 (precision 1, recall 2/3, mean IoU 5/7).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from project import Project

UTC = "UTC"


def _classifications():
    return pd.DataFrame({
        "classification_id": [101, 102, 103, 104, 105],
        "subject_id": [1, 1, 1, 2, 2],
        "workflow_id": 9001,
        "workflow_version": ["13.10", "13.10", "13.10", "12.4", "12.4"],
        "user": ["alice", "bob", "not-logged-in-abc", "alice", "bob"],
        "user_id": pd.array([7, 8, None, 7, 8], dtype="Int64"),
        "created_at": pd.to_datetime(["2023-05-01 10:00", "2023-05-01 11:00", "2023-05-02 09:00",
                                      "2023-04-01 10:00", "2023-04-01 12:00"]).tz_localize(UTC),
        "n_marks": [2, 1, 0, 1, 1],
        "gold_standard": False,
        "expert": False,
        "classifier": "pfe",
    })


def _marks():
    return pd.DataFrame({
        "mark_id": [1, 2, 3, 4, 5],
        "classification_id": [101, 101, 102, 104, 105],
        "subject_id": [1, 1, 1, 2, 2],
        "user": ["alice", "alice", "bob", "alice", "bob"],
        "task": "T0",
        "tool": [0, 1, 0, 0, 0],
        "tool_label": ["Clump", "Odd clump", "Clump", "Clump", "Clump"],
        "frame": 0,
        "x": [10.0, 80.0, 60.0, 30.0, 34.0],
        "y": [10.0, 10.0, 60.0, 30.0, 30.0],
        "width": [20.0, 5.0, 10.0, 10.0, 10.0],
        "height": [20.0, 5.0, 10.0, 10.0, 10.0],
        "angle": 0.0,
        "kind": "rectangle",
    })


def _consensus():
    return pd.DataFrame({
        "subject_id": [1, 1, 2],
        "consensus_id": [10, 11, 20],
        "x": [10.0, 60.0, 30.0], "y": [10.0, 60.0, 30.0],
        "width": [20.0, 10.0, 10.0], "height": [20.0, 10.0, 10.0],
        "angle": 0.0,
        "n_votes": [2, 1, 2],
        "n_seen": [3, 3, 2],
        "source": "hand-made",
    })


def _links():
    return pd.DataFrame({"mark_id": [1, 2, 3, 4, 5], "consensus_id": [10, -1, 11, 20, 20],
                         "iou": [1.0, 0.0, 1.0, 1.0, 3 / 7]})


def _subjects():
    return pd.DataFrame({
        "subject_id": [1, 2, 3],
        "locations": [{"0": "images/1.png"}, {"0": "../outside.png"},
                      {"0": "https://example.org/subject_location/3.png"}],
        "width": np.nan, "height": np.nan, "retired": True,
        "ra": [150.0, 200.0, 250.0],
        "dec": [10.0, 20.0, 30.0],
        "fits_file": ["images/1.fits", None, None],
    })


def write_images(root):
    """Subject 1's PNG (red where box A is, top-left) and FITS (bright where A is)."""
    from astropy.io import fits
    from PIL import Image

    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    pixels = np.zeros((100, 100, 3), dtype=np.uint8)
    pixels[10:30, 10:30, 0] = 255  # rows are y (down), columns x
    Image.fromarray(pixels).save(images / "1.png")
    flux = np.zeros((100, 100), dtype=np.float32)
    flux[10:30, 10:30] = 100.0
    fits.PrimaryHDU(flux[::-1]).writeto(images / "1.fits")  # FITS stores the bottom row first
    # A file outside the image root, which subject 2's location tries to reach.
    Image.fromarray(pixels).save(root.parent / "outside.png")


def tiny_tables() -> dict:
    """The hand-made canonical tables (fresh copies on every call)."""
    return {"classifications": _classifications(), "marks": _marks(), "subjects": _subjects(),
            "consensus": _consensus(), "links": _links()}


def tiny_project(root, tables=None, title="tiny") -> Project:
    """The hand-made project with its images written under ``root``."""
    write_images(root)
    return Project(**(tables or tiny_tables()), image_roots=[root], title=title, fits_column="fits_file")
