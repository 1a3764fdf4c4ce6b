"""`Project`'s outlines of marks drawn through their vertices, as `load_project` carries them from the loader."""

from __future__ import annotations

import numpy as np
import pandas as pd

from data_loaders import read_classifications
from project import Project, load_project

HANDMADE = "handmade/vertex_tools_classifications.csv"


def test_load_project_carries_the_loaders_vertices(data_dir):
    project = load_project([data_dir / HANDMADE])
    loaded = read_classifications(data_dir / HANDMADE)
    pd.testing.assert_frame_equal(project.mark_vertices, loaded.mark_vertices)
    # The marks table is the loader's (plus the project's own columns), its boxes untouched.
    pd.testing.assert_frame_equal(project.marks[loaded.marks.columns], loaded.marks)


def test_vertices_of_gives_each_marks_run_in_order(data_dir):
    project = load_project([data_dir / HANDMADE], method=None)
    marks = project.marks_of(501)
    vertices = project.vertices_of(marks.mark_id)
    # Subject 501: 11 marks with vertices (a polygon, line, four point lists, a full-width line; a polygon, a
    # freehand line, two lines), 3 + 2 + 3 + 4 + 2 + 3 + 2 + 3 + 3 + 2 + 2 vertices; the circle has none.
    assert vertices.mark_id.nunique() == 11 and len(vertices) == 29
    assert vertices.mark_id.is_monotonic_increasing
    assert (vertices.groupby("mark_id").vertex.apply(list)
            == vertices.groupby("mark_id").size().map(lambda n: list(range(n)))).all()
    # Asked for in any order, with repeats and marks without vertices: each run once.
    shuffled = project.vertices_of(np.r_[marks.mark_id.to_numpy()[::-1], marks.mark_id.to_numpy()[:2]])
    pd.testing.assert_frame_equal(shuffled, vertices)
    assert project.vertices_of([90010006]).empty  # the circle
    assert project.vertices_of([]).empty


def test_a_project_without_vertices_draws_from_boxes(data_dir):
    loaded = read_classifications(data_dir / HANDMADE)
    project = Project(loaded.classifications, loaded.marks)
    assert project.mark_vertices.empty and list(project.mark_vertices.columns) == ["mark_id", "vertex", "x", "y"]
    # Vertices of marks the project does not hold are left out.
    kept = loaded.marks[loaded.marks.subject_id == 502]
    partial = Project(loaded.classifications, kept, mark_vertices=loaded.mark_vertices)
    assert set(partial.mark_vertices.mark_id) == {90030002, 90040003}
