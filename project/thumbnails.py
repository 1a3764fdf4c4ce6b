"""Thumbnails of subjects with the volunteers' and the consensus marks drawn on, made once and kept.

The gallery shows dozens of subjects at a time; drawing each in the browser would send every mark
of every subject. Here each thumbnail is a small PNG rendered with Pillow from the subject's image
and its marks, each drawn as what it is: volunteer marks thin, in the colour of the consensus mark
they support (grey when they support none), consensus marks bold. Polygons, triangles, Bézier
curves, freehand shapes and columns are closed outlines through their vertices; lines, freehand
lines and full-width or full-height lines open paths through them (`project.tool_kinds.OPEN_KINDS`);
ellipses through their turned outline (the loader keeps it); circles (and ellipses loaded without
an outline) the ellipse filling their box; rotated rectangles turned by their angle; other
boxes their box; volunteers' points small crosses and consensus points rings. A subject whose
image cannot be read gets a neutral grey canvas of its shape, with the marks still drawn.

Thumbnails are kept per process (shared by every session) and on disk under the zoolens cache,
keyed by the consensus run, the subject's image, its marks and this drawing code, so a restarted
server does not draw them again and a changed one does.
"""

from __future__ import annotations

import hashlib
import io
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from consensus.geometry import corners
from data_loaders.cache import cache_dir

from .recent import RecentlyUsed
from .tool_kinds import OPEN_KINDS

#: Colours of consensus boxes, cycled by the box's place in its subject (as the cutout does).
PALETTE = ((230, 159, 0), (86, 180, 233), (0, 158, 115), (240, 228, 66), (0, 114, 178), (213, 94, 0),
           (204, 121, 167))
UNMATCHED = (170, 170, 170)
CANVAS = (60, 60, 60)

#: Where pictures for the page are fetched and thumbnails made, for every session and project together: the
#: gallery's page (`dashboard.views.gallery`) and the table's thumbnails (`dashboard.image_route`). Off the event loop
#: and the session's thread, as a fetch waits on the image host for up to its timeout; four at a time, which
#: makes a page about as fast as more would without crowding the host or the cores
#: (bench/bench_remote_thumbnails.py, bench/bench_gallery_pictures.py).
THUMBNAIL_MAKERS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="zoolens-thumbnails")
#: Thumbnails kept in memory per project (each a few kilobytes).
MEMORY_ITEMS = 2048
#: Kinds drawn as the ellipse filling their box.
ROUND_KINDS = ("circle", "ellipse")
#: This module's code, part of every thumbnail's key: drawn otherwise, drawn again.
_DRAWING = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:8]


class Thumbnails:
    """Rendered, cached thumbnails of one project's subjects.

    Parameters
    ----------
    project : project.Project
    size : int
        The longer side of a thumbnail, in pixels.
    folder : path, optional
        Where thumbnails are kept on disk; default ``<zoolens cache>/thumbnails``.
    """

    def __init__(self, project, size: int = 160, folder: str | Path | None = None):
        self.project = project
        self.size = int(size)
        self.folder = Path(folder) if folder is not None else cache_dir() / "thumbnails"
        self._memory: RecentlyUsed[bytes] = RecentlyUsed(MEMORY_ITEMS)

    def png(self, subject_id: int) -> bytes:
        """The subject's thumbnail as PNG bytes."""
        subject_id = int(subject_id)
        return self._memory.get(subject_id, lambda: self._read_or_render(subject_id))

    def _read_or_render(self, subject_id: int) -> bytes:
        path = self.path(subject_id)
        if path.is_file():
            return path.read_bytes()
        content = self._render(subject_id)
        if self.project.picture_location(subject_id) not in self.project.image_problems:
            # Kept on disk unless the picture could not be read (its host down, or not allowed yet): a later
            # process tries again; this one keeps the picture-less thumbnail in memory, as it keeps the failure.
            path.parent.mkdir(parents=True, exist_ok=True)
            staging = path.with_suffix(f".{threading.get_ident()}.tmp")
            staging.write_bytes(content)
            staging.replace(path)  # whole or not at all, whichever session wrote it
        return content

    def path(self, subject_id: int) -> Path:
        """Where the subject's thumbnail is kept: by consensus run, picture (a file put in an image root later is
        a new one), marks and size."""
        marks = self.project.marks_of(subject_id)
        # Kinds and boxes too: a workflow export renames marks (and redraws a triangle) without new ids.
        drawn = marks[["mark_id", "x", "y", "width", "height", "angle"]].to_numpy(dtype=float).tobytes()
        key = hashlib.sha256(repr((self.project.picture_location(subject_id), self.size, _DRAWING,
                                   tuple(marks.kind.fillna("")), hashlib.sha256(drawn).hexdigest())).encode())
        return self.folder / self.project.consensus_source / f"{subject_id}-{key.hexdigest()[:16]}.png"

    def _render(self, subject_id: int) -> bytes:
        from PIL import Image as PillowImage
        from PIL import ImageDraw

        image, _ = self.project.image(subject_id)
        subject = self.project.subject(subject_id)
        marks = self.project.marks_of(subject_id)
        if image is not None:
            picture = PillowImage.fromarray(_as_rgb(image.array))
        else:
            picture = PillowImage.new("RGB", _canvas_size(subject, marks), CANVAS)
        scale = self.size / max(picture.width, picture.height)
        picture = picture.resize((max(1, round(picture.width * scale)), max(1, round(picture.height * scale))))
        draw = ImageDraw.Draw(picture)
        boxes = self.project.consensus_of(subject_id)
        colour_of = {int(box_id): PALETTE[number % len(PALETTE)]
                     for number, box_id in enumerate(boxes.consensus_id.to_numpy())}
        outlines = _vertex_runs(marks.mark_id.to_numpy(), self.project.vertices_of(marks.mark_id))
        for mark, outline, box_id in zip(_shapes(marks), outlines, marks.consensus_id.to_numpy()):
            _draw(draw, *mark, outline, scale, colour_of.get(int(box_id), UNMATCHED), 1)
        for box, box_id in zip(_shapes(boxes.assign(kind="rectangle")), boxes.consensus_id.to_numpy()):
            _draw(draw, *box, None, scale, colour_of[int(box_id)], 3)
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG", optimize=True)
        return buffer.getvalue()


def _shapes(marks):
    """(kind, x, y, width, height, angle) of each mark or box."""
    angle = marks.angle.to_numpy(dtype=float, na_value=0.0) if "angle" in marks else np.zeros(len(marks))
    return zip(marks.kind.fillna("").to_numpy(dtype=object),
               *(marks[column].to_numpy(dtype=float, na_value=np.nan) for column in ("x", "y", "width", "height")),
               np.nan_to_num(angle))


def _vertex_runs(mark_ids: np.ndarray, vertices) -> list:
    """Each mark's (n, 2) vertices in drawing order, None for a mark without any.

    ``vertices`` is sorted by mark and vertex (as `Project.vertices_of` gives it): each mark's are one run.
    """
    ids = vertices.mark_id.to_numpy()
    points = vertices[["x", "y"]].to_numpy(dtype=float)
    starts, stops = np.searchsorted(ids, mark_ids, "left"), np.searchsorted(ids, mark_ids, "right")
    return [points[start:stop] if stop > start else None for start, stop in zip(starts, stops)]


def _draw(draw, kind, x, y, width, height, angle, outline, scale, colour, line) -> None:
    """One mark (``line`` 1) or consensus mark (``line`` 3) drawn as what it is, in thumbnail pixels."""
    if outline is not None:
        points = [tuple(point) for point in (outline * scale).tolist()]
        if len(points) == 1:
            draw.point(points, fill=colour)
        elif kind in OPEN_KINDS or len(points) == 2:
            draw.line(points, fill=colour, width=line, joint="curve")
        else:
            draw.polygon(points, outline=colour, width=line)
        return
    if not (np.isfinite(x) and np.isfinite(y)):
        return
    if not (np.isfinite(width) and np.isfinite(height)) or width <= 0 or height <= 0:
        # A point: a cross for a click, a ring for a consensus point.
        cx, cy, r = x * scale, y * scale, 2 + line
        if line > 1:
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=colour, width=2)
        else:
            draw.line((cx - r, cy, cx + r, cy), fill=colour)
            draw.line((cx, cy - r, cx, cy + r), fill=colour)
        return
    if kind in ROUND_KINDS:
        draw.ellipse((x * scale, y * scale, (x + width) * scale, (y + height) * scale), outline=colour, width=line)
    elif angle % 180:
        turned = corners(np.array([x + width / 2]), np.array([y + height / 2]), np.array([width]),
                         np.array([height]), np.array([angle]))[0] * scale
        draw.polygon([tuple(point) for point in turned.tolist()], outline=colour, width=line)
    else:
        draw.rectangle((x * scale, y * scale, (x + width) * scale, (y + height) * scale), outline=colour,
                       width=line)


def _as_rgb(array: np.ndarray) -> np.ndarray:
    """8-bit RGB pixels of a picture (grey or colour, any number type), top row first."""
    if array.ndim == 3 and array.shape[2] >= 3 and array.dtype == np.uint8:
        return np.ascontiguousarray(array[:, :, :3])
    values = array.astype(float)
    finite = values[np.isfinite(values)]
    low, high = (np.percentile(finite, [1, 99.5]) if finite.size else (0.0, 1.0))
    scaled = np.clip((np.nan_to_num(values, nan=low) - low) / ((high - low) or 1.0), 0, 1)
    grey = (scaled * 255).astype(np.uint8)
    if grey.ndim == 3:
        return np.ascontiguousarray(grey[:, :, :3]) if grey.shape[2] >= 3 else np.repeat(grey[:, :, :1], 3, axis=2)
    return np.repeat(grey[:, :, None], 3, axis=2)


#: Room added around the farthest point mark on a canvas sized by the marks, as a fraction of its
#: sides: a point's marker is wider than the point, and would be cut in half at the canvas edge.
POINT_MARGIN = 0.03


def _canvas_size(subject, marks) -> tuple[int, int]:
    """The picture size the subjects table gives, else the extent of the marks (as the cutout does), else a square."""
    width = subject.get("width") if subject is not None else None
    height = subject.get("height") if subject is not None else None
    if width is not None and height is not None and np.isfinite(width) and np.isfinite(height) and width > 0:
        return int(width), int(height)
    # Points have no extent (NaN width and height): their position is their far edge.
    far = (marks.x + marks.width.fillna(0)).max() if len(marks) else np.nan
    low = (marks.y + marks.height.fillna(0)).max() if len(marks) else np.nan
    room = 1 + POINT_MARGIN if marks.width.isna().any() else 1
    return (int(np.ceil(far * room)) if far > 0 else 200), (int(np.ceil(low * room)) if low > 0 else 200)
