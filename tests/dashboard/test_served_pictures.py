"""A served page whose subjects' pictures are on an image host that does not answer: the page shows without them,
the cutout says the picture is coming, and draws the subject on it when it comes (the page waited for the host,
up to its 30 s timeout for one that did not answer)."""

from __future__ import annotations

import time

import pytest
from bokeh.models import ColumnDataSource
from PIL import Image as PillowImage

from project import Project
from tests.dashboard.serving import serving
from tests.image_host import ImageHost
from tests.project.test_images import _tables

pytestmark = pytest.mark.server


def _pictures(server, document) -> list[tuple[int, int]]:
    """The shapes of the pictures the page's cutout holds."""
    def read():
        return [tuple(model.data["image"][0].shape) for model in document.models
                if isinstance(model, ColumnDataSource) and "image" in model.data and len(model.data["image"])]

    return server.on_loop(read)


@pytest.mark.parametrize("num_threads", [0, 2], ids=["on the event loop", "on session threads"])
def test_a_page_shows_before_its_picture_comes_and_draws_it_when_it_does(tmp_path, monkeypatch, num_threads):
    monkeypatch.setenv("ZOOLENS_CACHE_DIR", str(tmp_path / "cache"))
    host = ImageHost()
    host.answering.clear()  # holds every picture until the test lets it go
    try:
        ids = [1, 2, 3]
        project = Project(*_tables(ids, [{"0": f"{host.url}/subject_location/{i}.png"} for i in ids]),
                          image_hosts=(host.host,), title="held pictures")
        with serving(lambda progress: project, f"test-served-pictures-{num_threads}", project.title,
                     num_threads=num_threads) as server, \
                server.connected_page() as page:
            # The page is there while the host still holds the picture: the marks on a canvas, and why.
            _, text = server.wait_for(page, "No image shown: fetching the picture…")
            assert host.hits and not host.answering.is_set()
            assert _pictures(server, page) == [(2, 2)]  # the grey canvas
            host.answering.set()
            deadline = time.monotonic() + 60
            while "fetching the picture" in server.contents(page)[1]:
                assert time.monotonic() < deadline, "the picture never came to the page"
                time.sleep(0.05)
            # Drawn on the picture that came (the 100 x 75 Penguin Watch frame), and no problem to count.
            assert _pictures(server, page) == [(75, 100)]
            assert "No image shown" not in server.contents(page)[1]
            assert project.image_problem_counts() == {}
    finally:
        host.answering.set()
        host.close()


def test_a_picture_that_failed_while_the_page_waited_for_it_is_counted_in_the_sidebar(tmp_path, monkeypatch):
    """The sidebar asks for the first subject's picture without waiting for it (it read it, holding up the page):
    one that fails a moment later is counted all the same, by the session's recount."""
    monkeypatch.setenv("ZOOLENS_CACHE_DIR", str(tmp_path / "cache"))
    images = tmp_path / "images"
    images.mkdir()
    for subject_id in (2, 3):
        PillowImage.new("RGB", (60, 40), (255, 0, 0)).save(images / f"{subject_id}.png")
    host = ImageHost(delay=0.2)  # answers "not found" a moment later, within the cutout's wait
    try:
        project = Project(*_tables([1, 2, 3], [{"0": f"{host.url}/nothing-here.png"}, {}, {}]),
                          image_roots=[images], image_hosts=(host.host,), title="one picture missing")
        with serving(lambda progress: project, "test-served-pictures-failed", project.title) as server, \
                server.connected_page() as page:
            server.wait_for(page, "No image shown: image host answered HTTP 404")
            server.wait_for(page, "Pictures not shown so far: 1 (image host answered HTTP 404: 1)")
    finally:
        host.close()
