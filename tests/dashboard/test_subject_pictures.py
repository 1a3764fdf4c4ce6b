"""A subject's picture as the cutout sends it, made once per project and look and shared by the sessions
(`dashboard.subject_pictures`)."""

from __future__ import annotations

import numpy as np
import pytest

from dashboard.data_store import DataStore
from dashboard.subject_pictures import shared_picture
from dashboard.views import CutoutViewer


def test_a_picture_is_made_once_and_shared_read_only(tiny_project):
    made = []

    def make():
        made.append(1)
        return np.zeros((2, 2), dtype=np.uint32)

    first, again = shared_picture(tiny_project, (1, "rendering"), make), shared_picture(tiny_project, (1, "rendering"), make)
    assert first is again and len(made) == 1
    with pytest.raises(ValueError, match="read-only"):
        first[0, 0] = 1
    assert shared_picture(tiny_project, (2, "rendering"), make) is not first and len(made) == 2


def test_two_sessions_send_the_same_words_and_a_pick_does_not_send_the_picture_again(tiny_project):
    viewers = [CutoutViewer(data_store=DataStore(project=tiny_project, subject=1)) for _ in range(2)]
    words = [viewer.drawn("image").image[0] for viewer in viewers]
    assert words[0] is words[1] and words[0].dtype == np.uint32
    viewer = viewers[0]
    source = viewer._sources["image"]
    sent = source.data
    viewer.data_store.review_box = 11  # a box picked: the boxes and the view change, the picture does not
    assert viewer.drawn("picked").consensus_box.tolist() == [11]
    assert source.data is sent
    viewer.cmap, viewer.image_kind = "viridis", "fits"  # another look (no FITS here: the rendering, a new key)
    viewer.data_store.subject = 2
    assert viewer.drawn("image").image[0] is not words[0]
