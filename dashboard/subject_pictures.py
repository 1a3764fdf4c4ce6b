"""Each subject's picture as the cutout's image layer holds it, made once per project and shared read-only by every
session.

The cutout sends the picture as 8-bit RGBA packed into 32-bit words (Bokeh's ``image_rgba``). The decoded
image is kept per project (`project.Project.image`), but the words were made again by every session on
every switch (grey repeated to RGB, an alpha channel added, a FITS image stretched and colour-mapped).
Here they are made by the first session to show a subject in a given look and kept for the most recent
subjects, as the decoded images are; the same array object for the same picture also lets a
cutout tell that its picture did not change (a box picked, a zoom) and not send it again.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Hashable

import numpy as np

from project import Project
from project.recent import RecentlyUsed

#: Pictures kept per project, most recent first (as many as the project keeps decoded images).
RECENT_PICTURES = 256

#: Project -> its pictures by key.
_PICTURES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_PICTURES_LOCK = threading.Lock()


def shared_picture(project: Project, key: Hashable, make: Callable[[], np.ndarray]) -> np.ndarray:
    """The picture ``key`` of ``project`` (a subject and how it is shown), made by ``make()`` the first time any
    session asks; read-only, the same array for every session until it drops out of the `RECENT_PICTURES`."""
    with _PICTURES_LOCK:
        pictures = _PICTURES.setdefault(project, RecentlyUsed(RECENT_PICTURES))
    return pictures.get(key, lambda: _read_only(make()))


def _read_only(words: np.ndarray) -> np.ndarray:
    words.flags.writeable = False
    return words
