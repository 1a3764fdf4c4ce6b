"""The kinds of the classic front end's marks whose tool the export does not name, named from the workflow export.

The classic front end writes a polygon, a freehand line or shape, a freehand segment line or shape and
a Bézier curve all as ``points: [{x, y}, ...]`` without naming the tool, so the loader can only call
them polygons; it writes a triangle as it writes a circle (``x, y, r, angle``), so the loader calls it
a circle. The workflow export's ``tools`` table names each tool's type, and with it whether the mark
is an open path or a closed outline, a curve or a triangle:

- point lists only change kind: their box and vertices stay;
- a Bézier curve's points are its control points (start, control, end, control, end, ...; an even
  count closes the curve back to its start, as the front end does when a volunteer finishes one), so
  its vertices become the curve itself, sampled (`BEZIER_SAMPLES` per quadratic segment), and its box
  the curve's extent;
- a triangle gets its three corners as vertices and their extent as its box: the front end draws the
  triangle of radius ``r`` about the centre, one corner straight above it, turned by the circle's
  handle angle (`data_loaders.schema.CIRCLE_HANDLES`; 0 when the mark has none).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from data_loaders.schema import empty_table

#: Tool types the classic front end writes as a list of points (`data_loaders.marks` loads them as polygons).
POINT_LIST_TOOLS = ("polygon", "freehandLine", "freehandShape", "freehandSegmentLine", "freehandSegmentShape",
                    "bezier")
#: The kind the loader gives a point list whose tool it is not told.
UNNAMED_POINT_LIST = "polygon"
#: Tool types the classic front end writes as a circle (``x, y, r, angle``).
CIRCLE_LIKE_TOOLS = ("triangle",)
#: Kinds drawn as an open path through their vertices; any other mark with vertices is a closed outline
#: (polygon, freehandShape, freehandSegmentShape, bezier: the classic front end closes it when done;
#: triangle; column: the band of its corners).
OPEN_KINDS = ("line", "freehandLine", "freehandSegmentLine", "transcriptionLine", "fullWidthLine", "fullHeightLine")
#: Points sampled along each quadratic segment of a Bézier curve (its end point is the next segment's
#: first; the curve's last point is added once): smooth at the sizes volunteers draw curves.
BEZIER_SAMPLES = 16


def named_tool_kinds(marks: pd.DataFrame, classifications: pd.DataFrame, tools: pd.DataFrame | None,
                     vertices: pd.DataFrame | None = None,
                     circle_handles: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``marks`` with each classic unnamed mark's kind set to its tool's type in ``tools``, and the vertices.

    Parameters
    ----------
    marks, classifications : DataFrame
        Canonical tables; a mark's workflow and version are its classification's.
    tools : DataFrame or None
        The workflow export's ``tools`` table (`data_loaders.workflows`), None without one.
    vertices : DataFrame or None
        The marks' ``mark_vertices`` (None: none).
    circle_handles : DataFrame or None
        The classic circles' handle angles (`data_loaders.schema.CIRCLE_HANDLES`), None: none.

    Returns
    -------
    marks, vertices : DataFrame
        ``marks`` and ``vertices`` themselves when nothing changes; else copies, with Bézier curves'
        vertices sampled along the curve and triangles' corners added, each with the box of its new
        vertices. Marks of the new front end (which names its tools), of other kinds, or whose workflow
        version or tool the table lacks keep their kind.
    """
    vertices = empty_table("mark_vertices") if vertices is None else vertices
    if tools is None or not len(marks) or not len(tools):
        return marks, vertices
    of_mark = classifications.set_index("classification_id")[
        ["workflow_id", "workflow_version", "classifier"]].reindex(marks.classification_id.to_numpy())
    kind = marks.kind.fillna("").to_numpy(dtype=object)
    unnamed = (np.isin(kind, (UNNAMED_POINT_LIST, "circle"))
               & of_mark.classifier.eq("pfe").fillna(False).to_numpy(dtype=bool))
    if not unnamed.any():
        return marks, vertices
    keys = ["workflow_id", "version", "task", "tool"]
    wanted = pd.DataFrame({"workflow_id": of_mark.workflow_id.to_numpy()[unnamed],
                           "version": of_mark.workflow_version.astype("string").to_numpy()[unnamed],
                           "task": marks.task.astype("string").to_numpy()[unnamed],
                           "tool": marks.tool.to_numpy()[unnamed]})
    types = tools.drop_duplicates(keys).astype({"workflow_id": "int64", "version": "string", "task": "string",
                                                "tool": "int64"})
    # A left merge keeps the marks' order: row i is the i-th unnamed mark.
    named = wanted.astype({"workflow_id": "int64", "tool": "int64"}).merge(
        types[keys + ["tool_type"]], on=keys, how="left").tool_type.to_numpy(dtype=object)
    was = kind[unnamed]
    renamed = (((was == UNNAMED_POINT_LIST) & np.isin(named, POINT_LIST_TOOLS))
               | ((was == "circle") & np.isin(named, CIRCLE_LIKE_TOOLS)))
    if not renamed.any():
        return marks, vertices
    marks = marks.copy()
    rows = marks.index[unnamed][renamed]
    marks.loc[rows, "kind"] = named[renamed]
    changed, new_kind = marks.index.isin(rows), marks.kind.to_numpy(dtype=object)
    curves = marks.mark_id[changed & (new_kind == "bezier")]
    triangles = marks[changed & (new_kind == "triangle")]
    redrawn = pd.concat([bezier_vertices(vertices[vertices.mark_id.isin(curves)]),
                         triangle_vertices(triangles, circle_handles)], ignore_index=True)
    vertices = pd.concat([vertices[~vertices.mark_id.isin(redrawn.mark_id.unique())], redrawn], ignore_index=True)
    vertices = vertices.sort_values(["mark_id", "vertex"], kind="stable", ignore_index=True)
    return _boxed_by_vertices(marks, redrawn), vertices


def bezier_vertices(control: pd.DataFrame) -> pd.DataFrame:
    """The ``mark_vertices`` of Bézier curves sampled along the curve, from their control points' rows.

    The points of a curve are start, control, end, control, end, ...: each (end, control, end) triple
    is one quadratic segment. An even count means the curve was closed: its last control point bends
    the segment back to the start (two points make one segment there and back). A lone point has no
    segment and is kept as it is.
    """
    control = control.sort_values(["mark_id", "vertex"], kind="stable")
    ids, xs, ys = (control[name].to_numpy() for name in ("mark_id", "x", "y"))
    if not len(ids):
        return empty_table("mark_vertices")
    starts = np.r_[0, np.flatnonzero(np.diff(ids)) + 1]
    counts = np.diff(np.r_[starts, len(ids)])
    closed = counts % 2 == 0
    # Each curve's points, the start again after a closed one's last control point.
    length = counts + closed
    first_of = np.repeat(np.cumsum(np.r_[0, length[:-1]]), length)
    curve_of = np.repeat(np.arange(len(counts)), length)
    within = np.arange(len(curve_of)) - first_of
    source = starts[curve_of] + np.where(within < counts[curve_of], within, 0)
    px, py = xs[source], ys[source]
    segments = (length - 1) // 2
    curved = segments > 0
    # Segment j of curve c: points 2j, 2j + 1, 2j + 2 of the curve.
    seg_curve = np.repeat(np.arange(len(counts)), np.where(curved, segments, 0))
    seg_first = np.repeat(np.cumsum(np.r_[0, length[:-1]]), np.where(curved, segments, 0))
    seg_index = np.arange(len(seg_curve)) - np.repeat(np.cumsum(np.r_[0, np.where(curved, segments, 0)[:-1]]),
                                                      np.where(curved, segments, 0))
    p0 = seg_first + 2 * seg_index
    t = np.arange(BEZIER_SAMPLES) / BEZIER_SAMPLES
    a, b, c = ((1 - t) ** 2)[None, :], (2 * (1 - t) * t)[None, :], (t ** 2)[None, :]
    sample_x = a * px[p0, None] + b * px[p0 + 1, None] + c * px[p0 + 2, None]
    sample_y = a * py[p0, None] + b * py[p0 + 1, None] + c * py[p0 + 2, None]
    last = np.cumsum(length) - 1
    curves = np.flatnonzero(curved)
    # Samples of every segment in order, then each curve's last point; short curves keep their points.
    short = ~curved[curve_of]
    out_curve = np.concatenate([np.repeat(seg_curve, BEZIER_SAMPLES), curves, curve_of[short]])
    out_x = np.concatenate([sample_x.ravel(), px[last[curves]], px[short]])
    out_y = np.concatenate([sample_y.ravel(), py[last[curves]], py[short]])
    order = np.argsort(out_curve, kind="stable")
    out_curve = out_curve[order]
    run_start = np.r_[0, np.flatnonzero(np.diff(out_curve)) + 1]
    vertex = np.arange(len(out_curve)) - np.repeat(run_start, np.diff(np.r_[run_start, len(out_curve)]))
    return pd.DataFrame({"mark_id": ids[starts][out_curve], "vertex": vertex,
                         "x": out_x[order], "y": out_y[order]})


def triangle_vertices(triangles: pd.DataFrame, circle_handles: pd.DataFrame | None) -> pd.DataFrame:
    """The three corners of each triangle mark (loaded as a circle: its box is the circle's square).

    The front end draws corners (0, -r), (-r√3/2, r/2), (r√3/2, r/2) about the centre, turned by
    minus the handle angle (SVG ``rotate``, clockwise on screen for positive values, y down).
    """
    ids = triangles.mark_id.to_numpy()
    if not len(ids):
        return empty_table("mark_vertices")
    r = triangles.width.to_numpy(float) / 2
    cx, cy = triangles.x.to_numpy(float) + r, triangles.y.to_numpy(float) + r
    angle = np.zeros(len(ids))
    if circle_handles is not None and len(circle_handles):
        handles = circle_handles.drop_duplicates("mark_id").set_index("mark_id").angle
        angle = handles.reindex(ids).fillna(0.0).to_numpy(float)
    local_x = np.array([0.0, -np.sqrt(3) / 2, np.sqrt(3) / 2])[None, :] * r[:, None]
    local_y = np.array([-1.0, 0.5, 0.5])[None, :] * r[:, None]
    theta = np.radians(-angle)[:, None]
    x = cx[:, None] + local_x * np.cos(theta) - local_y * np.sin(theta)
    y = cy[:, None] + local_x * np.sin(theta) + local_y * np.cos(theta)
    return pd.DataFrame({"mark_id": np.repeat(ids, 3), "vertex": np.tile(np.arange(3), len(ids)),
                         "x": x.ravel(), "y": y.ravel()})


def _boxed_by_vertices(marks: pd.DataFrame, vertices: pd.DataFrame) -> pd.DataFrame:
    """``marks`` with the box of each mark in ``vertices`` set to its vertices' extent."""
    if not len(vertices):
        return marks
    extent = vertices.groupby("mark_id").agg(x0=("x", "min"), x1=("x", "max"), y0=("y", "min"), y1=("y", "max"))
    rows = marks.mark_id.isin(extent.index).to_numpy()
    own = extent.reindex(marks.mark_id.to_numpy()[rows])
    marks.loc[rows, "x"] = own.x0.to_numpy()
    marks.loc[rows, "y"] = own.y0.to_numpy()
    marks.loc[rows, "width"] = (own.x1 - own.x0).to_numpy()
    marks.loc[rows, "height"] = (own.y1 - own.y0).to_numpy()
    return marks
