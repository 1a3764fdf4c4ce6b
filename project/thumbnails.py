"""Thumbnails of subjects with the volunteers' and the consensus marks drawn on, made once and kept.

The gallery shows dozens of subjects at a time; drawing each in the browser would send every mark
of every subject. Here each thumbnail is a small PNG rendered with Pillow from the subject's image
and its marks: volunteer boxes thin, in the colour of the consensus box they support (grey when
they support none), consensus boxes bold; point marks as small crosses and rings. A subject whose
image cannot be read gets a neutral grey canvas of its shape, with the marks still drawn.

Thumbnails are kept per process (shared by every session) and on disk under the zoolens cache,
keyed by the consensus run and the subject's image, so a restarted server does not draw them again.
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from data_loaders.cache import cache_dir

#: Colours of consensus boxes, cycled by the box's place in its subject (as the cutout does).
PALETTE = ((230, 159, 0), (86, 180, 233), (0, 158, 115), (240, 228, 66), (0, 114, 178), (213, 94, 0),
           (204, 121, 167))
UNMATCHED = (170, 170, 170)
CANVAS = (60, 60, 60)

#: Thumbnails kept in memory per project (each a few kilobytes).
MEMORY_ITEMS = 2048


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
        self._memory: OrderedDict[int, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def png(self, subject_id: int) -> bytes:
        """The subject's thumbnail as PNG bytes."""
        subject_id = int(subject_id)
        with self._lock:
            if subject_id in self._memory:
                self._memory.move_to_end(subject_id)
                return self._memory[subject_id]
        path = self.path(subject_id)
        if path.is_file():
            content = path.read_bytes()
        else:
            content = self._render(subject_id)
            path.parent.mkdir(parents=True, exist_ok=True)
            staging = path.with_suffix(f".{threading.get_ident()}.tmp")
            staging.write_bytes(content)
            staging.replace(path)  # whole or not at all, whichever session wrote it
        with self._lock:
            self._memory[subject_id] = content
            while len(self._memory) > MEMORY_ITEMS:
                self._memory.popitem(last=False)
        return content

    def path(self, subject_id: int) -> Path:
        """Where the subject's thumbnail is kept: by consensus run, image, marks and size."""
        subject = self.project.subject(subject_id)
        locations = subject.locations if subject is not None and isinstance(subject.locations, dict) else {}
        marks = self.project.marks_of(subject_id)
        key = hashlib.sha256(repr((locations.get("0"), self.size, len(marks),
                                   marks.mark_id.sum() if len(marks) else 0)).encode()).hexdigest()[:16]
        return self.folder / self.project.consensus_source / f"{subject_id}-{key}.png"

    def _render(self, subject_id: int) -> bytes:
        from PIL import Image as PillowImage
        from PIL import ImageDraw

        image, _ = self.project.image(subject_id)
        subject = self.project.subject(subject_id)
        if image is not None:
            picture = PillowImage.fromarray(_as_rgb(image.array))
        else:
            width, height = _subject_size(subject)
            picture = PillowImage.new("RGB", (width, height), CANVAS)
        scale = self.size / max(picture.width, picture.height)
        picture = picture.resize((max(1, round(picture.width * scale)), max(1, round(picture.height * scale))))
        draw = ImageDraw.Draw(picture)
        boxes = self.project.consensus_of(subject_id)
        colour_of = {int(box_id): PALETTE[number % len(PALETTE)]
                     for number, box_id in enumerate(boxes.consensus_id.to_numpy())}
        marks = self.project.marks_of(subject_id)
        for x, y, width, height, box_id in zip(*(marks[column].to_numpy(dtype=float) for column in
                                                 ("x", "y", "width", "height")), marks.consensus_id.to_numpy()):
            _draw(draw, x, y, width, height, scale, colour_of.get(int(box_id), UNMATCHED), 1)
        for x, y, width, height, box_id in zip(*(boxes[column].to_numpy(dtype=float) for column in
                                                 ("x", "y", "width", "height")), boxes.consensus_id.to_numpy()):
            _draw(draw, x, y, width, height, scale, colour_of[int(box_id)], 3)
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG", optimize=True)
        return buffer.getvalue()


def _draw(draw, x, y, width, height, scale, colour, line) -> None:
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
    draw.rectangle((x * scale, y * scale, (x + width) * scale, (y + height) * scale), outline=colour, width=line)


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


def _subject_size(subject) -> tuple[int, int]:
    """The picture size the subjects table gives, else a square."""
    width = subject.get("width") if subject is not None else None
    height = subject.get("height") if subject is not None else None
    if width is not None and height is not None and np.isfinite(width) and np.isfinite(height) and width > 0:
        return int(width), int(height)
    return 200, 200
