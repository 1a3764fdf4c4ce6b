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
    # Subject 2's image lies outside the image root and the subjects give no size: a canvas as large as its
    # marks reach (44 x 40, scale 160 / 44) with consensus C (30, 30, 10, 10) on it.
    assert picture.shape == (145, 160, 3) and tuple(picture[5, 5]) == CANVAS
    scale = 160 / 44
    assert tuple(picture[round(35 * scale), round(30 * scale) + 1]) == PALETTE[0]


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


def near(picture: np.ndarray, x: float, y: float, colour, reach: int = 1) -> bool:
    """Whether ``colour`` is within ``reach`` pixels of (x, y) in the picture (lines land on whole pixels)."""
    x, y = round(x), round(y)
    patch = picture[max(0, y - reach):y + reach + 1, max(0, x - reach):x + reach + 1]
    return bool((patch == np.array(colour, dtype=np.uint8)).all(axis=-1).any())


def test_shapes_are_drawn_as_what_they_are_not_as_boxes(tmp_path, data_dir):
    from project import load_project

    project = load_project([data_dir / "handmade" / "shape_tools_classifications.csv",
                            data_dir / "handmade" / "shape_tools_workflows.csv"], method=None)
    # No image and no size in a subjects table: a canvas as large as the marks reach, which the full-image
    # lines and column make the image's own 200 x 100; drawn at scale 1.
    picture = pixels(Thumbnails(project, size=200, folder=tmp_path / "thumbnails").png(601))
    assert picture.shape == (100, 200, 3)
    # The triangle (corners (80, 50), (110, 67.3), (110, 32.7)): its right edge is drawn, its box's top edge is not.
    assert near(picture, 110, 50, UNMATCHED) and near(picture, 95, 50 + 0.5 * 17.3, UNMATCHED)
    assert not near(picture, 95, 33, UNMATCHED) and not near(picture, 82, 34, UNMATCHED)
    # The closed Bézier curve passes (30, 5) and (30, 25), not its control point (30, 0) nor its control
    # polygon's edge from (30, 40) to (10, 10), which the curve passes 3.75 pixels inside of at (20, 21.25).
    assert near(picture, 30, 5, UNMATCHED) and near(picture, 30, 25, UNMATCHED) and near(picture, 20, 21, UNMATCHED)
    assert not near(picture, 30, 0, UNMATCHED, reach=0) and not near(picture, 20, 25, UNMATCHED)
    # The full-width line crosses the image at y 70; the full-height line stands at x 150; the column is a band.
    assert all(near(picture, x, 70, UNMATCHED) for x in (2, 60, 198))
    assert all(near(picture, 150, y, UNMATCHED) for y in (2, 50, 98))
    assert near(picture, 160, 50, UNMATCHED) and near(picture, 185, 50, UNMATCHED)
    assert tuple(picture[50, 172]) == CANVAS  # the band is outlined, not filled
    # The circles are round: their box corners stay empty.
    assert near(picture, 40, 30, UNMATCHED) and tuple(picture[31, 31]) == CANVAS
    assert near(picture, 120, 15, UNMATCHED) and tuple(picture[16, 106]) == CANVAS


def test_points_are_markers_and_freehand_shapes_outlines_on_real_projects(tmp_path, shared_data):
    from project import load_project

    penguins = load_project([shared_data / "penguin_watch" / "penguin-watch-classifications-trim.csv"],
                            image_roots=[shared_data / "penguin_watch" / "subjects"])
    subject_id = 20860279  # a daylight frame with its PNG
    picture = pixels(Thumbnails(penguins, size=160, folder=tmp_path / "thumbnails").png(subject_id))
    assert picture.shape == (120, 160, 3)  # the 1000 x 750 frame
    scale = 160 / 1000
    consensus = penguins.consensus_of(subject_id)
    assert len(consensus) > 3
    # Each consensus point is a ring around its position in its colour (the palette cycled by its place).
    for number, point in enumerate(consensus.itertuples()):
        colour = PALETTE[number % len(PALETTE)]
        assert near(picture, point.x * scale + 5, point.y * scale, colour, reach=2) or \
            near(picture, point.x * scale - 5, point.y * scale, colour, reach=2), point
    cats = load_project([shared_data / "aggregation_for_caesar" / "cat-project-classifications.csv"], method=None)
    busiest = int(cats.subject_stats.sort_values("n_marks").subject_id.iloc[-1])
    marks = cats.marks_of(busiest)
    # The cat pictures are on a host that cannot be reached: a canvas as large as the marks reach.
    width = int(np.ceil((marks.x + marks.width).max()))
    height = int(np.ceil((marks.y + marks.height).max()))
    cat = pixels(Thumbnails(cats, size=160, folder=tmp_path / "thumbnails").png(busiest))
    factor = 160 / max(width, height)
    assert cat.shape[:2] == (round(height * factor), round(width * factor))
    # Every freehand outline runs through its own vertices, not along its box.
    vertices = cats.vertices_of(marks.mark_id)
    sample = vertices.iloc[:: max(1, len(vertices) // 40)]
    hits = [near(cat, x * factor, y * factor, UNMATCHED) for x, y in zip(sample.x, sample.y)]
    assert np.mean(hits) > 0.9
