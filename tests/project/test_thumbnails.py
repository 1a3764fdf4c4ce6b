"""Thumbnails with the marks drawn on: colours by what each mark supports, the image or a canvas, kept on disk."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from project.thumbnails import CANVAS, PALETTE, UNMATCHED, Thumbnails
from tests.dashboard import tiny


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def test_marks_are_drawn_in_the_colour_of_what_they_support(tmp_path):
    project = tiny.tiny_project(tmp_path / "root")
    thumbnails = Thumbnails(project, size=160, folder=tmp_path / "thumbnails")
    picture = pixels(thumbnails.png(1))
    assert picture.shape == (160, 160, 3)  # the 100 x 100 image, scaled by 1.6
    # Consensus A (10, 10, 20, 20) bold in the first colour, B (60, 60, 10, 10) in the second: their left edges.
    assert tuple(picture[32, 16]) == PALETTE[0] and tuple(picture[32, 17]) == PALETTE[0]
    assert tuple(picture[104, 96]) == PALETTE[1]
    # alice's "Odd clump" box (80, 10, 5, 5) supports nothing: thin grey.
    assert tuple(picture[20, 128]) == UNMATCHED
    # Inside box A the image's own red shows through; outside every mark, its black.
    assert tuple(picture[40, 40]) == (255, 0, 0) and tuple(picture[150, 5]) == (0, 0, 0)


def test_a_subject_without_a_readable_image_gets_a_canvas_with_its_marks(tmp_path):
    project = tiny.tiny_project(tmp_path / "root")
    picture = pixels(Thumbnails(project, size=160, folder=tmp_path / "thumbnails").png(2))
    # Subject 2's image lies outside the image root: a 200 x 200 canvas (scale 0.8) with consensus C at (30, 30).
    assert picture.shape == (160, 160, 3) and tuple(picture[5, 5]) == CANVAS
    assert tuple(picture[28, 24]) == PALETTE[0]


def test_thumbnails_are_made_once_and_found_again_on_disk(tmp_path):
    project = tiny.tiny_project(tmp_path / "root")
    first = Thumbnails(project, size=160, folder=tmp_path / "thumbnails")
    content = first.png(1)
    stored = first.path(1)
    assert stored.is_file() and stored.read_bytes() == content
    made = stored.stat().st_mtime_ns
    # A new process (a restarted server) reads the stored file instead of drawing again.
    again = Thumbnails(project, size=160, folder=tmp_path / "thumbnails")
    assert again.png(1) == content and stored.stat().st_mtime_ns == made
    assert again.path(1) != Thumbnails(project, size=80, folder=tmp_path / "thumbnails").path(1)
