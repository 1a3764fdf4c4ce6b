"""Annotations JSON -> mark columns, for the classification export loader.

Two routes give the same result. The fast one renames drawing values so every
row fits one Arrow schema and lets Arrow's multithreaded JSON reader parse a
whole chunk of rows into columns, then works out kinds, boxes and counts with
numpy. Any chunk Arrow cannot take as a whole (a malformed cell, a string where
a number belongs) goes through the reference route, a Python loop over orjson-
parsed rows that handles every oddity one mark at a time.
"""

from __future__ import annotations

import gc
import math
from functools import partial

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

#: mark_id = classification_id * MARK_ID_STRIDE + position of the mark in the classification,
#: so a mark keeps its id whatever filters the export is read with.
MARK_ID_STRIDE = 10_000

BOX_KINDS = ("rectangle", "rotateRectangle", "point-as-box")
#: Kinds whose marks are not loaded (counted as degenerate) when their width or height is not positive.
AREA_KINDS = BOX_KINDS + ("column",)
MARK_COLUMNS = ("row", "position", "task", "tool", "tool_label", "frame",
                "x", "y", "width", "height", "angle", "kind")
#: The outlines of marks drawn through their vertices (freehand paths, polygons and other point lists,
#: lines, full-image lines and columns, ellipses): one entry per vertex in drawing order, its mark
#: (position in the mark columns), x and y.
#: Kept apart from the mark columns, whose bounding boxes stay the geometry matching works on.
VERTEX_COLUMNS = ("vertex_mark", "vertex_x", "vertex_y")
#: Why a vertex mark's outline was not kept (the mark itself is, and is drawn as its bounding box).
UNEQUAL_PATH = "pathX and pathY differ in length"
#: The direction of a classic circle's radius handle (its ``angle``, degrees counter-clockwise): one entry per
#: classic circle that has one, its mark (position in the mark columns) and the angle. The classic
#: front end writes a triangle (centre x, y, radius r, angle) exactly as a circle, so only a workflow
#: export tells them apart (`project.tool_kinds`), and a triangle's corners need the angle; a circle's
#: box must not turn with it, so it is kept apart from the ``angle`` column.
HANDLE_COLUMNS = ("handle_mark", "handle_angle")
#: Classic tools that span the whole image: a horizontal line (``y``), a vertical line (``x``) and a
#: column (``x``, ``width``) over the full height. Their box reaches across the image the volunteer
#: saw, whose natural size the row's ``metadata.subject_dimensions`` gives for the mark's frame (`image_sizes`).
FULL_IMAGE_KINDS = ("fullWidthLine", "fullHeightLine", "column")
#: Vertices of an ellipse's outline, kept so it is drawn with its turn (its box is the turned ellipse's
#: envelope, and its ``angle`` 0: the box is what matching uses).
ELLIPSE_OUTLINE_VERTICES = 48
_ELLIPSE_STEPS = np.linspace(0, 2 * np.pi, ELLIPSE_OUTLINE_VERTICES, endpoint=False)
#: Why a full-image mark was not loaded: its row does not say how large the image was.
NO_IMAGE_SIZE = "full-width line, full-height line or column on a row without subject_dimensions"


_REAL = (int, float)


def _number(value) -> float:
    """A coordinate as float; anything that is not a real number (bools included) raises."""
    if type(value) not in _REAL:
        raise ValueError(value)
    return float(value)


def _path(kind: str, xs, ys) -> tuple:
    """A vertex mark: its kind, bounding box and (x list, y list) of vertices."""
    xs = [_number(v) for v in xs]
    ys = [_number(v) for v in ys]
    if not xs or not ys:
        raise ValueError("empty path")
    return kind, min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys), 0.0, (xs, ys)


def _centre(mark: dict) -> tuple[float, float]:
    """A circle's or ellipse's centre: the new front end's ``x_center``, ``y_center`` or the classic ``x``, ``y``."""
    if mark.get("x_center") is not None:
        return _number(mark["x_center"]), _number(mark.get("y_center"))
    return _number(mark.get("x")), _number(mark.get("y"))


def ellipse_outline(cx, cy, rx, ry, turn) -> tuple[np.ndarray, np.ndarray]:
    """The outline vertices (n, `ELLIPSE_OUTLINE_VERTICES`) of ellipses turned by ``turn`` degrees on screen.

    On screen (y down) a positive turn is clockwise, as SVG's ``rotate``: the new front end draws an
    ellipse turned by its ``angle``, the classic one by minus its ``angle``.
    """
    cx, cy, rx, ry, turn = (np.asarray(value, float)[:, None] for value in (cx, cy, rx, ry, turn))
    local_x, local_y = rx * np.cos(_ELLIPSE_STEPS), ry * np.sin(_ELLIPSE_STEPS)
    theta = np.radians(turn)
    return (cx + local_x * np.cos(theta) - local_y * np.sin(theta),
            cy + local_x * np.sin(theta) + local_y * np.cos(theta))


def _extent(mark: dict, image_sizes: list, axis: int) -> float:
    """The width (``axis`` 0) or height (1) of the image of the frame ``mark`` is on, from its row's ``image_sizes``
    (one (width, height) per frame); `_NoImageSize` when the row does not give it."""
    frame = mark.get("frame", 0)
    frame = frame if type(frame) is int else 0
    value = image_sizes[frame][axis] if 0 <= frame < len(image_sizes) else math.nan
    if not value > 0:
        raise _NoImageSize
    return value


def _shape(mark: dict, fem: bool, image_sizes: list) -> tuple:
    """(kind, x, y, width, height, angle, vertices, handle) of one drawn mark; `_NotAShape` if it is none.

    ``vertices`` is (x list, y list) for marks drawn through their vertices (paths, point lists,
    lines, full-image lines and columns) and None for the others, whose geometry the box and angle
    hold. ``handle`` is a classic circle's handle angle (`HANDLE_COLUMNS`), else None.
    ``image_sizes`` is the row's natural image (width, height) per frame, NaN where unknown.

    The classic front end does not name the tool type in the export, so it is
    told from the keys the mark carries, as panoptes_aggregation's extractors do;
    the new front end's rectangles, circles and ellipses give their centre instead of
    their corner. A key whose value is null counts as absent (as in the columnar reader).
    """
    get = mark.get
    if get("width") is not None:
        width = _number(mark["width"])
        if not fem and get("height") is None and get("y") is None and get("x_center") is None:
            x, height = _number(get("x")), _extent(mark, image_sizes, 1)
            return ("column", x, 0.0, width, height, 0.0,
                    ([x, x + width, x + width, x], [0.0, 0.0, height, height]), None)
        height = _number(get("height"))
        if get("x_center") is not None:
            x = _number(mark["x_center"]) - width / 2
            y = _number(get("y_center")) - height / 2
        else:
            x, y = _number(get("x")), _number(get("y"))
        if get("angle") is not None:
            return "rotateRectangle", x, y, width, height, _number(mark["angle"]), None, None
        return "rectangle", x, y, width, height, 0.0, None, None
    radius = get("r") if get("r") is not None else get("radius")
    if radius is not None:
        (x, y), r = _centre(mark), _number(radius)
        # A handle angle that is not a number only loses a triangle its turn, not a circle its mark.
        handle = get("angle") if not fem and get("r") is not None and type(get("angle")) in _REAL else None
        return "circle", x - r, y - r, 2 * r, 2 * r, 0.0, None, handle
    if get("rx") is not None:
        x, y = _centre(mark)
        rx, ry = _number(mark["rx"]), _number(get("ry"))
        angle = _number(get("angle") or 0.0)
        theta = math.radians(angle)
        half_w = math.hypot(rx * math.cos(theta), ry * math.sin(theta))
        half_h = math.hypot(rx * math.sin(theta), ry * math.cos(theta))
        xs, ys = ellipse_outline([x], [y], [rx], [ry], [angle if fem else -angle])
        return ("ellipse", x - half_w, y - half_h, 2 * half_w, 2 * half_h, 0.0, (xs[0].tolist(), ys[0].tolist()),
                None)
    if get("x1") is not None:
        return (*_path("line", [mark["x1"], get("x2")], [get("y1"), get("y2")]), None)
    tool_type = get("toolType") if fem else None
    tool_type = tool_type if type(tool_type) is str else None
    if get("pathX") is not None:
        return (*_path(tool_type or "freehandLine", mark["pathX"], get("pathY")), None)
    if get("points") is not None:
        points = mark["points"]
        return (*_path(tool_type or "polygon", [p["x"] for p in points], [p["y"] for p in points]), None)
    has_x, has_y = get("x") is not None, get("y") is not None
    if has_x and has_y:
        return "point", _number(mark["x"]), _number(mark["y"]), math.nan, math.nan, 0.0, None, None
    if not fem and has_y:
        y, width = _number(mark["y"]), _extent(mark, image_sizes, 0)
        return "fullWidthLine", 0.0, y, width, 0.0, 0.0, ([0.0, width], [y, y]), None
    if not fem and has_x:
        x, height = _number(mark["x"]), _extent(mark, image_sizes, 1)
        return "fullHeightLine", x, 0.0, 0.0, height, 0.0, ([x, x], [0.0, height]), None
    raise _NotAShape


class _NotAShape(Exception):
    """A mark dict with no coordinates zoolens knows (a tool it does not draw)."""


class _NoImageSize(Exception):
    """A full-image mark on a row that does not give the image's size."""


def _count(counter: dict, key: str) -> None:
    counter[key] = counter.get(key, 0) + 1


def image_sizes(metadata: pa.Array) -> np.ndarray:
    """Each row's natural image size per frame from its ``metadata.subject_dimensions``: an array of
    (rows, frames, 2) holding (width, height), NaN where the row gives none for that frame.

    ``subject_dimensions`` lists one entry per frame of the subject (null for a frame the front end did
    not load), and the frames of one subject need not share a size. Found by pattern in one vectorised
    pass (the entries are flat objects), and only for chunks holding a full-image mark.
    """
    metadata = metadata.combine_chunks() if isinstance(metadata, pa.ChunkedArray) else metadata
    listed = pc.struct_field(pc.extract_regex(metadata, r'"subject_dimensions"\s*:\s*\[(?P<value>[^\]]*)\]'), "value")
    # Each entry ends with a closing brace once a null entry is written as an empty object.
    entries = pc.split_pattern(pc.replace_substring_regex(listed, r"\bnull\b", "{}"), "}")
    n_entries = np.maximum(pc.list_value_length(entries).fill_null(0).to_numpy(zero_copy_only=False) - 1, 0)
    pieces = pc.list_flatten(entries)
    piece_row = pc.list_parent_indices(entries).to_numpy()
    piece_frame = np.arange(len(pieces)) - np.searchsorted(piece_row, piece_row, side="left")

    def number(key):
        found = pc.extract_regex(pieces, rf'"{key}"\s*:\s*(?P<value>\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)')
        return pc.cast(pc.struct_field(found, "value"), pa.float64()).to_numpy(zero_copy_only=False)

    sizes = np.full((len(metadata), int(n_entries.max()) if len(n_entries) else 0, 2), np.nan)
    entry = piece_frame < n_entries[piece_row]  # the piece after the last closing brace is no entry
    sizes[piece_row[entry], piece_frame[entry]] = np.column_stack([number("naturalWidth"), number("naturalHeight")])[entry]
    return sizes


def _row_sizes(image_size, n: int) -> np.ndarray:
    """``image_size`` as an (n, frames, 2) array: it is None (unknown), an array (of (n, 2): the first frame's
    size), or a callable making one."""
    if image_size is None:
        return np.full((n, 0, 2), np.nan)
    sizes = np.asarray(image_size() if callable(image_size) else image_size, dtype=np.float64)
    return sizes[:, None, :] if sizes.ndim == 2 else sizes


def frame_sizes(sizes: np.ndarray, row: np.ndarray, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Width and height of each mark's image, its ``row``'s size of its ``frame`` (NaN for a frame it does not give)."""
    known = (frame >= 0) & (frame < sizes.shape[1])
    width, height = np.full(len(row), np.nan), np.full(len(row), np.nan)
    width[known], height[known] = sizes[row[known], frame[known], 0], sizes[row[known], frame[known], 1]
    return width, height


def extract_marks(annotations: pa.Array, fem, tasks, point_sides, point_key, report, metadata=None):
    """Flatten the annotations JSON of each row into mark columns.

    Parameters
    ----------
    annotations : pyarrow string array
        One annotations JSON cell per row.
    fem : bool array
        Rows from the new front end.
    tasks : list of str or None
        Drawing tasks to keep marks of (None: all).
    point_sides : float array or None
        Side of the box a point becomes, per row (NaN: that row's points are dropped);
        None keeps points as points.
    point_key : str or None
        The metadata key the sides came from, for the report.
    report : LoadReport
        Receives counts of marks not loaded, degenerate marks and subtask answers.
    metadata : pyarrow string array, optional
        Each row's metadata JSON, where full-image marks find the image's size (`image_sizes`);
        without it they are not loaded (counted as `NO_IMAGE_SIZE`).

    Returns
    -------
    marks : dict of arrays
        The columns of `MARK_COLUMNS`; ``row`` is the row's position in ``annotations``. Also
        the `VERTEX_COLUMNS` (their own length): the vertices of the marks drawn through them,
        and the `HANDLE_COLUMNS`: the handle angles of classic circles.
    parsed_ok : bool array
        Rows whose annotations were valid JSON holding a list of tasks.
    """
    parts, oks = [], []
    for start in range(0, len(annotations), CHUNK_ROWS):
        chunk = slice(start, start + CHUNK_ROWS)
        sides = None if point_sides is None else point_sides[chunk]
        sizes = None if metadata is None else partial(image_sizes, metadata[chunk])
        result = _columnar_marks(annotations[chunk], fem[chunk], tasks, sides, point_key, report, sizes)
        if result is None:
            result = _reference_marks(annotations[chunk].to_pylist(), fem[chunk], tasks, sides,
                                      point_key, report, sizes)
        marks, parsed_ok = result
        marks["row"] = marks["row"] + start
        # A chunk numbers its vertices' and handles' marks from 0: after the marks of the chunks before it.
        marks_before = sum(len(part["row"]) for part in parts)
        marks["vertex_mark"] = marks["vertex_mark"] + marks_before
        marks["handle_mark"] = marks["handle_mark"] + marks_before
        parts.append(marks)
        oks.append(parsed_ok)
    if not parts:
        return _reference_marks([], np.zeros(0, bool), tasks, None, point_key, report)
    marks = {name: _concat([part[name] for part in parts]) for name in MARK_COLUMNS + VERTEX_COLUMNS + HANDLE_COLUMNS}
    return marks, np.concatenate(oks)


def _concat(arrays):
    if isinstance(arrays[0], np.ndarray):
        return np.concatenate(arrays)
    return pd.concat([pd.Series(a) for a in arrays], ignore_index=True).array


def _reference_marks(annotations: list, fem, tasks, point_sides, point_key, report, image_size=None):
    """The reference route: orjson per row and a Python loop over marks."""
    found, outlines, handles = [], [], []
    parsed_ok = np.ones(len(annotations), dtype=bool)
    counts = report.counts
    dropped = counts.setdefault("marks_not_loaded", {})
    degenerate = counts.setdefault("degenerate_marks", {})
    # Millions of short-lived dicts would trigger the cyclic collector over and over;
    # parsed JSON cannot form cycles, so the collector is paused for the loop.
    collecting = gc.isenabled()
    gc.disable()
    try:
        subtask_answers = _flatten(
            annotations, fem.tolist(), None if tasks is None else set(tasks),
            None if point_sides is None else point_sides.tolist(), point_key,
            parsed_ok, found.append, dropped, degenerate,
            lambda xs, ys: outlines.append((len(found), xs, ys)),
            lambda angle: handles.append((len(found), angle)), counts,
            _row_sizes(image_size, len(annotations)).tolist() if annotations else [])
    finally:
        if collecting:
            gc.enable()
    if subtask_answers:
        counts["subtask_answers"] = counts.get("subtask_answers", 0) + subtask_answers
    columns = dict(zip(MARK_COLUMNS, zip(*found))) if found else {name: () for name in MARK_COLUMNS}
    marks = {}
    for name in MARK_COLUMNS:
        dtype = MARK_DTYPES[name]
        marks[name] = (pd.array(columns[name], dtype=dtype) if dtype == "string"
                       else np.array(columns[name], dtype=dtype))
    lengths = [len(xs) for _, xs, _ in outlines]
    marks["vertex_mark"] = np.repeat(np.array([mark for mark, _, _ in outlines], dtype=np.int64), lengths)
    marks["vertex_x"] = np.array([v for _, xs, _ in outlines for v in xs], dtype=np.float64)
    marks["vertex_y"] = np.array([v for _, _, ys in outlines for v in ys], dtype=np.float64)
    marks["handle_mark"] = np.array([mark for mark, _ in handles], dtype=np.int64)
    marks["handle_angle"] = np.array([angle for _, angle in handles], dtype=np.float64)
    return marks, parsed_ok


MARK_DTYPES = {"row": np.int64, "position": np.int64, "task": "string", "tool": np.int64,
               "tool_label": "string", "frame": np.int64, "x": np.float64, "y": np.float64,
               "width": np.float64, "height": np.float64, "angle": np.float64, "kind": "string"}


def _flatten(annotations, fem, wanted_tasks, sides, point_key, parsed_ok, add, dropped, degenerate,
             add_outline, add_handle, counts, image_sizes):
    """The loader's one Python loop: JSON cells vary too much in shape for a columnar
    JSON reader. It touches only drawing values and appends one tuple per mark (and
    its vertex lists, before it, for marks drawn through their vertices)."""
    subtask_answers = 0
    for row, text in enumerate(annotations):
        try:
            tasks_in_row = orjson.loads(text)
        except orjson.JSONDecodeError:
            parsed_ok[row] = False
            continue
        if type(tasks_in_row) is dict:
            tasks_in_row = [tasks_in_row]
        elif type(tasks_in_row) is not list:
            parsed_ok[row] = False
            continue
        position = 0
        row_fem = fem[row]
        for annotation in tasks_in_row:
            if type(annotation) is not dict:
                continue
            value = annotation.get("value")
            # Marks are lists of objects; other list answers (choices, shortcuts) are not.
            if type(value) is not list or not value or type(value[0]) is not dict:
                continue
            if annotation.get("markIndex") is not None:  # a new-front-end subtask answer
                subtask_answers += 1
                continue
            task = annotation.get("task")
            if wanted_tasks is not None and task not in wanted_tasks:
                # Still numbered, so a mark's id does not depend on the task filter.
                position += sum(type(mark) is dict for mark in value)
                continue
            for mark in value:
                if type(mark) is not dict:
                    continue
                position += 1
                try:
                    kind, x, y, width, height, angle, outline, handle = _shape(mark, row_fem, image_sizes[row])
                except (ValueError, TypeError, KeyError):
                    _count(dropped, "non-numeric coordinates")
                    continue
                except _NotAShape:
                    _count(dropped, "not a shape")
                    continue
                except _NoImageSize:
                    _count(dropped, NO_IMAGE_SIZE)
                    continue
                if kind == "point" and sides is not None:
                    side = sides[row]
                    if not side > 0:
                        _count(dropped, f"point without subject metadata {point_key}")
                        continue
                    kind, x, y, width, height = "point-as-box", x - side / 2, y - side / 2, side, side
                elif kind in AREA_KINDS and not (width > 0 and height > 0):
                    _count(degenerate, kind)
                    continue
                if position > MARK_ID_STRIDE:
                    _count(dropped, "more marks in one classification than mark ids allow")
                    continue
                if outline is not None:
                    if len(outline[0]) == len(outline[1]):
                        add_outline(*outline)
                    else:
                        _count(counts.setdefault("vertices_not_kept", {}), UNEQUAL_PATH)
                if handle is not None:
                    add_handle(handle)
                tool = mark.get("tool")
                if type(tool) is not int:
                    tool = mark.get("toolIndex")
                label = mark.get("tool_label")
                frame = mark.get("frame", 0)
                add((row, position - 1, task if type(task) is str else None,
                     tool if type(tool) is int else -1,
                     label if type(label) is str else None, frame if type(frame) is int else 0,
                     x, y, width, height, angle, kind))
    return subtask_answers




# --------------------------------------------------------------------------- columnar route

#: Rows parsed by Arrow at once: a chunk it cannot take falls back as a whole, so a
#: bad cell costs the reference route only for its neighbours.
CHUNK_ROWS = 16_384
#: What drawing values ("value": [{...}]) are renamed to, so that every row fits one
#: schema whatever other tasks' values hold; no export uses this name.
MARKS_FIELD = "zoolens-drawn-marks"
#: A task value that is a list of objects: drawn marks.
DRAWING_VALUE = r'"value"\s*:\s*\[\s*\{'
_F64, _I64, _STR = pa.float64(), pa.int64(), pa.string()
MARK_STRUCT = pa.struct(
    [(name, _F64) for name in ("x", "y", "width", "height", "angle", "x_center", "y_center",
                               "r", "radius", "rx", "ry", "x1", "y1", "x2", "y2")]
    + [("tool", _I64), ("toolIndex", _I64), ("frame", _I64), ("tool_label", _STR),
       ("toolType", _STR), ("pathX", pa.list_(_F64)), ("pathY", pa.list_(_F64)),
       ("points", pa.list_(pa.struct([("x", _F64), ("y", _F64)])))]
)
#: Every field Arrow fills costs time even when no mark has it, so a chunk is read with
#: the fields of the simplest shapes it can hold: (keys that rule a subset out, subset).
#: The keys are searched in the raw text; a ``\u`` escape could spell a key, so it
#: rules the subsets out too.
_POINT_FIELDS = ("x", "y", "tool", "toolIndex", "frame", "tool_label", "toolType")
_RECTANGLE_FIELDS = _POINT_FIELDS + ("width", "height", "angle", "x_center", "y_center")
MARK_FIELD_SUBSETS = (
    (r'"(?:width|height|angle|x_center|y_center|r|radius|rx|ry|x1|y1|x2|y2|pathX|pathY|points)"|\\u',
     _POINT_FIELDS),
    (r'"(?:r|radius|rx|ry|x1|y1|x2|y2|pathX|pathY|points)"|\\u', _RECTANGLE_FIELDS),
)


def _annotations_schema(mark_fields) -> pa.Schema:
    """The schema of one row's ``{"a": [task, ...]}`` holding marks with ``mark_fields``."""
    marks = pa.struct([MARK_STRUCT.field(name) for name in mark_fields])
    return pa.schema([("a", pa.list_(pa.struct(
        [("task", _STR), ("markIndex", _I64), (MARKS_FIELD, pa.list_(marks))])))])


ANNOTATIONS_SCHEMA = _annotations_schema(MARK_STRUCT.names)


def _columnar_marks(annotations: pa.Array, fem, tasks, point_sides, point_key, report, image_size=None):
    """The fast route; None when Arrow cannot read the chunk as a whole."""
    import pyarrow.json as pjson

    if len(annotations) == 0:
        return None
    # Exports write compact JSON: a plain replacement renames its drawing values at a
    # fraction of a regex's cost; the regex is for the rare file with spaces.
    renamed = pc.replace_substring(annotations, '"value":[{', f'"{MARKS_FIELD}":[{{')
    if pc.any(pc.match_substring_regex(renamed, DRAWING_VALUE)).as_py():
        renamed = pc.replace_substring_regex(renamed, DRAWING_VALUE, f'"{MARKS_FIELD}":[{{')
    lines = pc.binary_join_element_wise('{"a":', renamed, "}\n", "")
    # The joined array's data buffer is the newline-delimited JSON document itself.
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32, count=len(lines) + 1, offset=4 * lines.offset)
    document = lines.buffers()[2][offsets[0]:offsets[-1]]
    schema = ANNOTATIONS_SCHEMA
    for ruled_out_by, mark_fields in MARK_FIELD_SUBSETS:
        if not pc.any(pc.match_substring_regex(renamed, ruled_out_by)).as_py():
            schema = _annotations_schema(mark_fields)
            break
    try:
        table = pjson.read_json(
            pa.BufferReader(document),
            # Single-threaded: the loader already parses one part of the file per core.
            read_options=pjson.ReadOptions(block_size=max(1 << 20, len(document) // 2 + 1),
                                           use_threads=False),
            parse_options=pjson.ParseOptions(explicit_schema=schema,
                                             unexpected_field_behavior="ignore"),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    column = table.column("a").combine_chunks()
    if len(column) != len(annotations) or column.null_count:
        return None  # a cell that is not a list of tasks: leave it to the reference route

    tasks_flat = pc.list_flatten(column)
    task_row = pc.list_parent_indices(column).to_numpy()
    drawn = tasks_flat.field(MARKS_FIELD)
    subtask = tasks_flat.field("markIndex").is_valid().to_numpy(zero_copy_only=False)
    has_marks = pc.list_value_length(drawn).fill_null(0).to_numpy() > 0
    counts = report.counts
    if (subtask & has_marks).any():
        counts["subtask_answers"] = counts.get("subtask_answers", 0) + int((subtask & has_marks).sum())

    marks = pc.list_flatten(drawn)
    read_fields = set(marks.type.names)

    def mark_field(name: str) -> pa.Array:
        """A mark field as read, or all null when the chunk was read without it."""
        if name in read_fields:
            return marks.field(name)
        return pa.nulls(len(marks), MARK_STRUCT.field(name).type)

    mark_task = pc.list_parent_indices(drawn).to_numpy()
    row = task_row[mark_task]
    present = marks.is_valid().to_numpy(zero_copy_only=False) & ~subtask[mark_task]
    # Position counts every mark of the row in order, whatever the task filter keeps.
    order = np.cumsum(present)
    row_start = np.searchsorted(row, row, side="left")
    before_row = np.where(row_start > 0, order[np.maximum(row_start - 1, 0)], 0)
    position = order - before_row - 1
    keep = present.copy()
    task = tasks_flat.field("task").take(pa.array(mark_task))
    if tasks is not None:
        keep &= pc.is_in(task, pa.array(list(tasks), _STR)).fill_null(False).to_numpy(zero_copy_only=False)

    field = {name: mark_field(name).to_numpy(zero_copy_only=False).astype(np.float64)
             for name in ("x", "y", "width", "height", "angle", "x_center", "y_center",
                          "r", "radius", "rx", "ry", "x1", "y1", "x2", "y2")}
    has = {name: ~np.isnan(values) for name, values in field.items()}
    path_x, path_y, points = mark_field("pathX"), mark_field("pathY"), mark_field("points")
    has_path = path_x.is_valid().to_numpy(zero_copy_only=False)
    has_points = points.is_valid().to_numpy(zero_copy_only=False)

    n = len(row)
    kind = np.full(n, "", dtype=object)
    x, y = np.full(n, np.nan), np.full(n, np.nan)
    width, height, angle = np.full(n, np.nan), np.full(n, np.nan), np.zeros(n)
    bad = np.zeros(n, dtype=bool)
    undecided = np.ones(n, dtype=bool)

    classic = ~fem[row]
    # A column is an x range over the full image height ({x, width}: no y, height or centre).
    column = classic & has["width"] & ~has["height"] & ~has["y"] & ~has["x_center"]
    undecided &= ~column
    rect = has["width"] & ~column
    centred = rect & has["x_center"]
    x[rect] = np.where(centred, field["x_center"] - field["width"] / 2, field["x"])[rect]
    y[rect] = np.where(centred, field["y_center"] - field["height"] / 2, field["y"])[rect]
    width[rect], height[rect] = field["width"][rect], field["height"][rect]
    bad |= rect & (np.isnan(x) | np.isnan(y) | ~has["height"])
    kind[rect] = np.where(has["angle"], "rotateRectangle", "rectangle")[rect]
    angle[rect & has["angle"]] = field["angle"][rect & has["angle"]]
    undecided &= ~rect

    # Circles and ellipses: the new front end gives their centre as x_center, y_center (a circle's
    # radius as radius), the classic one as x, y (and r).
    centre_x = np.where(has["x_center"], field["x_center"], field["x"])
    centre_y = np.where(has["x_center"], field["y_center"], field["y"])
    has_centre = np.where(has["x_center"], has["y_center"], has["x"] & has["y"])
    circle = undecided & (has["r"] | has["radius"])
    r = np.where(has["r"], field["r"], field["radius"])
    x[circle], y[circle] = (centre_x - r)[circle], (centre_y - r)[circle]
    width[circle] = height[circle] = (2 * r)[circle]
    bad |= circle & ~has_centre
    kind[circle] = "circle"
    undecided &= ~circle
    handle = circle & classic & has["r"] & has["angle"]

    ellipse = undecided & has["rx"]
    theta = np.radians(np.nan_to_num(field["angle"]))
    half_w = np.hypot(field["rx"] * np.cos(theta), field["ry"] * np.sin(theta))
    half_h = np.hypot(field["rx"] * np.sin(theta), field["ry"] * np.cos(theta))
    x[ellipse], y[ellipse] = (centre_x - half_w)[ellipse], (centre_y - half_h)[ellipse]
    width[ellipse], height[ellipse] = (2 * half_w)[ellipse], (2 * half_h)[ellipse]
    bad |= ellipse & ~(has_centre & has["ry"])
    kind[ellipse] = "ellipse"
    undecided &= ~ellipse

    line = undecided & has["x1"]
    x[line] = np.minimum(field["x1"], field["x2"])[line]
    y[line] = np.minimum(field["y1"], field["y2"])[line]
    width[line] = np.abs(field["x2"] - field["x1"])[line]
    height[line] = np.abs(field["y2"] - field["y1"])[line]
    bad |= line & ~(has["x2"] & has["y1"] & has["y2"])
    kind[line] = "line"
    undecided &= ~line

    tool_type = mark_field("toolType").to_numpy(zero_copy_only=False)
    vertices = pc.list_flatten(points)
    vertex_parent = pc.list_parent_indices(points).to_numpy()
    vertex_ok = vertices.is_valid().to_numpy(zero_copy_only=False)
    #: Vertex lists: (marks they outline, x values, their marks, y values, their marks).
    path = (undecided & has_path,
            _list_values(pc.list_flatten(path_x)), pc.list_parent_indices(path_x).to_numpy(),
            _list_values(pc.list_flatten(path_y)), pc.list_parent_indices(path_y).to_numpy())
    point_list = (undecided & ~has_path & has_points,
                  _list_values(pc.struct_field(vertices, "x"), vertex_ok), vertex_parent,
                  _list_values(pc.struct_field(vertices, "y"), vertex_ok), vertex_parent)
    for (shape_mask, xs, x_parent, ys, y_parent), default in ((path, "freehandLine"), (point_list, "polygon")):
        if not shape_mask.any():
            continue
        x_lo, x_hi, x_ok = _list_bounds(xs, x_parent, n)
        y_lo, y_hi, y_ok = _list_bounds(ys, y_parent, n)
        x[shape_mask], y[shape_mask] = x_lo[shape_mask], y_lo[shape_mask]
        width[shape_mask] = (x_hi - x_lo)[shape_mask]
        height[shape_mask] = (y_hi - y_lo)[shape_mask]
        bad |= shape_mask & ~(x_ok & y_ok)
        named = tool_type[shape_mask]
        use_type = fem[row][shape_mask] & pd.notna(named)
        kind[shape_mask] = np.where(use_type, named, default)
        undecided &= ~shape_mask

    point = undecided & has["x"] & has["y"]
    x[point], y[point] = field["x"][point], field["y"][point]
    kind[point] = "point"
    undecided &= ~point

    # The classic front end's lines across the whole image: {y} alone, {x} alone.
    full_width = undecided & classic & has["y"]
    full_height = undecided & classic & has["x"]
    undecided &= ~(full_width | full_height)
    full_image = column | full_width | full_height
    image_width, image_height = np.full(n, np.nan), np.full(n, np.nan)
    frame = pc.coalesce(mark_field("frame"), pa.scalar(0, _I64))
    if full_image.any():
        # The size of the frame the mark is on (the frames of one subject may differ in size).
        image_width, image_height = frame_sizes(_row_sizes(image_size, len(annotations)), row,
                                                frame.to_numpy(zero_copy_only=False).astype(np.int64))
    x[column], width[column] = field["x"][column], field["width"][column]
    y[column], height[column] = 0.0, image_height[column]
    bad |= column & ~has["x"]
    kind[column] = "column"
    x[full_width], y[full_width] = 0.0, field["y"][full_width]
    width[full_width], height[full_width] = image_width[full_width], 0.0
    kind[full_width] = "fullWidthLine"
    x[full_height], y[full_height] = field["x"][full_height], 0.0
    width[full_height], height[full_height] = 0.0, image_height[full_height]
    kind[full_height] = "fullHeightLine"
    unsized = ~bad & (((column | full_height) & ~(image_height > 0)) | (full_width & ~(image_width > 0)))

    dropped = counts.setdefault("marks_not_loaded", {})
    degenerate = counts.setdefault("degenerate_marks", {})
    _add(dropped, "non-numeric coordinates", keep & bad)
    _add(dropped, "not a shape", keep & undecided & ~bad)
    _add(dropped, NO_IMAGE_SIZE, keep & unsized)
    keep &= ~bad & ~undecided & ~unsized
    if point_sides is not None:
        is_point = keep & (kind == "point")
        side = point_sides[row]
        _add(dropped, f"point without subject metadata {point_key}", is_point & ~(side > 0))
        keep &= ~(is_point & ~(side > 0))
        boxed = is_point & (side > 0)
        x[boxed] -= side[boxed] / 2
        y[boxed] -= side[boxed] / 2
        width[boxed] = height[boxed] = side[boxed]
        kind[boxed] = "point-as-box"
    for box_kind in ("rectangle", "rotateRectangle", "column"):
        flat_box = keep & (kind == box_kind) & ~((width > 0) & (height > 0))
        _add(degenerate, box_kind, flat_box)
        keep &= ~flat_box
    too_many = keep & (position >= MARK_ID_STRIDE)
    _add(dropped, "more marks in one classification than mark ids allow", too_many)
    keep &= ~too_many

    # A full-image mark's vertices: a line's two ends, a column's four corners (clockwise from top left).
    columns_kept, lines_kept = np.flatnonzero(keep & column), np.flatnonzero(keep & (full_width | full_height))
    left, top, right, bottom = (x[columns_kept], np.zeros(len(columns_kept)), x[columns_kept] + width[columns_kept],
                                height[columns_kept])
    across = full_width[lines_kept]
    line_x, line_y = x[lines_kept], y[lines_kept]
    line_end_x, line_end_y = line_x + width[lines_kept], line_y + height[lines_kept]
    # An ellipse's outline, turned as its front end turns it.
    ellipses_kept = np.flatnonzero(keep & ellipse)
    turn = np.nan_to_num(field["angle"][ellipses_kept]) * np.where(fem[row][ellipses_kept], 1.0, -1.0)
    ellipse_x, ellipse_y = ellipse_outline(centre_x[ellipses_kept], centre_y[ellipses_kept],
                                           field["rx"][ellipses_kept], field["ry"][ellipses_kept], turn)
    drawn_vertices = (
        np.concatenate([np.repeat(columns_kept, 4), np.repeat(lines_kept, 2),
                        np.repeat(ellipses_kept, ELLIPSE_OUTLINE_VERTICES)]),
        np.concatenate([np.column_stack([left, right, right, left]).ravel(),
                        np.column_stack([line_x, np.where(across, line_end_x, line_x)]).ravel(), ellipse_x.ravel()]),
        np.concatenate([np.column_stack([top, top, bottom, bottom]).ravel(),
                        np.column_stack([line_y, np.where(across, line_y, line_end_y)]).ravel(), ellipse_y.ravel()]))
    outlines = _outlines(keep, path, point_list, line, field, counts, drawn_vertices)
    kept_position = np.cumsum(keep) - 1
    handles = np.flatnonzero(keep & handle)
    take = pa.array(np.flatnonzero(keep))
    tool = pc.coalesce(mark_field("tool"), mark_field("toolIndex"), pa.scalar(-1, _I64))
    columns = {
        "row": row[keep].astype(np.int64),
        "position": position[keep].astype(np.int64),
        "task": pd.array(task.take(take), dtype="string"),
        "tool": tool.take(take).to_numpy(zero_copy_only=False).astype(np.int64),
        "tool_label": pd.array(mark_field("tool_label").take(take), dtype="string"),
        "frame": frame.take(take).to_numpy(zero_copy_only=False).astype(np.int64),
        "x": x[keep], "y": y[keep], "width": width[keep], "height": height[keep],
        "angle": angle[keep],
        "kind": pd.array(kind[keep], dtype="string"),
        **outlines,
        "handle_mark": kept_position[handles].astype(np.int64),
        "handle_angle": field["angle"][handles],
    }
    return columns, np.ones(len(annotations), dtype=bool)


def _outlines(keep, path, point_list, line, field, counts, drawn) -> dict[str, np.ndarray]:
    """The `VERTEX_COLUMNS` of the kept marks drawn through their vertices, in mark then vertex order.

    ``path`` and ``point_list`` are (marks, x values, their marks, y values, their marks) of the
    pathX/pathY lists and of the points lists; ``line`` marks two-vertex lines (x1, y1, x2, y2);
    ``drawn`` is (their marks, x values, y values) of the vertices made here: the kept full-image
    marks' and ellipses' outlines.
    A path whose x and y lists differ in length keeps its mark but not its vertices (counted).
    """
    n = len(keep)
    path_marks, path_xs, path_x_parent, path_ys, path_y_parent = path
    same_length = (np.bincount(path_x_parent, minlength=n) == np.bincount(path_y_parent, minlength=n))
    _add_where_counted(counts, "vertices_not_kept", UNEQUAL_PATH, keep & path_marks & ~same_length)
    path_marks = keep & path_marks & same_length
    points_marks, point_xs, point_parent, point_ys, _ = point_list
    from_points = (keep & points_marks)[point_parent]
    lines = np.flatnonzero(keep & line)
    drawn_parents, drawn_xs, drawn_ys = drawn
    parents = np.concatenate([path_x_parent[path_marks[path_x_parent]], point_parent[from_points],
                              np.repeat(lines, 2), drawn_parents])
    xs = np.concatenate([path_xs[path_marks[path_x_parent]], point_xs[from_points],
                         np.column_stack([field["x1"][lines], field["x2"][lines]]).ravel(), drawn_xs])
    ys = np.concatenate([path_ys[path_marks[path_y_parent]], point_ys[from_points],
                         np.column_stack([field["y1"][lines], field["y2"][lines]]).ravel(), drawn_ys])
    # Each mark's vertices come from one list, in order: a stable sort by mark keeps that order.
    order = np.argsort(parents, kind="stable")
    kept_position = np.cumsum(keep) - 1
    return {"vertex_mark": kept_position[parents[order]].astype(np.int64),
            "vertex_x": xs[order], "vertex_y": ys[order]}


def _list_values(values: pa.Array, valid: np.ndarray | None = None) -> np.ndarray:
    """Coordinates as floats, NaN for nulls (and where ``valid`` is False)."""
    array = values.to_numpy(zero_copy_only=False).astype(np.float64)
    if valid is not None:
        array[~valid] = np.nan
    return array


def _list_bounds(values: np.ndarray, parents: np.ndarray, n: int):
    """Min and max of each mark's coordinate list, and whether it had values and no nulls."""
    lo, hi = np.full(n, np.inf), np.full(n, -np.inf)
    finite = ~np.isnan(values)
    np.minimum.at(lo, parents[finite], values[finite])
    np.maximum.at(hi, parents[finite], values[finite])
    nulls = np.bincount(parents[~finite], minlength=n) > 0
    ok = np.isfinite(lo) & ~nulls
    return lo, hi, ok


def _add_where_counted(counts: dict, counter: str, key: str, mask: np.ndarray) -> None:
    """`_add` to ``counts[counter]``, made only when there is something to count."""
    if mask.any():
        _add(counts.setdefault(counter, {}), key, mask)


def _add(counter: dict, key: str, mask: np.ndarray) -> None:
    count = int(mask.sum())
    if count:
        counter[key] = counter.get(key, 0) + count
