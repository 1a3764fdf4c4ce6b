"""Subject images by subject id in the image roots, their cached thumbnails, and plain reasons for images
that cannot be shown."""

from __future__ import annotations

import concurrent.futures
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image as PillowImage

from data_loaders.images import DEFAULT_ALLOWED_HOSTS, ImageStore
from project import Project, load_project
from project.core import THUMBNAIL_ROUTE, thumbnail_dir
from project.sky import SubjectFiles
from tests.image_host import ImageHost, closed_host

ROOT = Path(__file__).resolve().parents[2]
PENGUIN_WATCH = ROOT / "tests" / "data" / "penguin_watch"
PENGUIN_IMAGES = ROOT.parent / "shared" / "data" / "penguin_watch" / "subjects"


def _png(path: Path, colour=(255, 0, 0), size=(60, 40)) -> Path:
    PillowImage.new("RGB", size, colour).save(path)
    return path


def test_subject_files_follow_one_rule_over_every_root(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir(), second.mkdir()
    own = _png(first / "5.png")
    _png(first / "5_0.png")  # the same frame again: <id>.png wins in one root
    frame_one = _png(first / "5_1.png")
    _png(second / "5.png")  # a later root loses
    jpeg = _png(second / "7.JPEG")
    (second / "8.fits.gz").write_bytes(b"not read here")
    _png(second / "9_100x75.png")  # a thumbnail's name, not a frame
    files = SubjectFiles([first, second, tmp_path / "missing"])
    assert files.find(5) == own and files.find(5, frame=1) == frame_one
    assert files.find(7) == jpeg and files.find(7, extensions=(".fits",)) is None
    assert files.find(8) == second / "8.fits.gz"
    assert files.find(9) is None and files.find(404) is None


def _tables(subject_ids, locations):
    classifications = pd.DataFrame({
        "classification_id": np.arange(len(subject_ids)) + 1, "subject_id": subject_ids, "user": "alice",
        "user_id": 1, "workflow_id": 1, "workflow_version": "1.1", "created_at": pd.Timestamp("2024-01-01", tz="UTC"),
        "n_marks": 1, "gold_standard": False, "expert": False, "classifier": "pfe"})
    marks = pd.DataFrame({
        "mark_id": np.arange(len(subject_ids)) + 1, "classification_id": np.arange(len(subject_ids)) + 1,
        "subject_id": subject_ids, "user": "alice", "task": "T0", "tool": 0, "tool_label": "penguin", "frame": 0,
        "x": 10.0, "y": 12.0, "width": np.nan, "height": np.nan, "angle": 0.0, "kind": "point"})
    subjects = pd.DataFrame({"subject_id": subject_ids, "locations": locations, "width": np.nan,
                             "height": np.nan, "retired": False})
    return classifications, marks, subjects


def test_a_local_image_named_after_the_subject_comes_before_the_export_url(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOOLENS_CACHE_DIR", str(tmp_path / "cache"))
    images = tmp_path / "images"
    images.mkdir()
    _png(images / "1.png", size=(300, 200))
    remote = "https://panoptes-uploads.zooniverse.org/production/subject_location/x.jpeg"
    classifications, marks, subjects = _tables([1, 2], [{"0": remote}, {"0": remote}])
    project = Project(classifications, marks, subjects=subjects, image_roots=[images])
    image, problem = project.image(1)
    assert problem is None and (image.width, image.height) == (300, 200)
    thumbnail = project.subject_stats.set_index("subject_id").thumbnail
    assert thumbnail[1].startswith(f"{THUMBNAIL_ROUTE}/")
    # The remote picture's thumbnail is the server's too, made when a page first asks for it, not while loading.
    assert thumbnail[2].startswith(f"{THUMBNAIL_ROUTE}/") and thumbnail[2] != thumbnail[1]
    assert not (thumbnail_dir() / thumbnail[2].rsplit("/", 1)[1]).exists()
    made = thumbnail_dir() / thumbnail[1].rsplit("/", 1)[1]
    with PillowImage.open(made) as small:
        assert max(small.size) == 80 and small.getpixel((10, 10))[:3] == (255, 0, 0)
    # Made once: a second project of the same images finds it and does not write it again.
    written = made.stat().st_mtime_ns
    again = Project(classifications, marks, subjects=subjects, image_roots=[images])
    assert again.subject_stats.thumbnail.iloc[0] == thumbnail[1] and made.stat().st_mtime_ns == written


def test_a_project_has_fits_when_a_subject_names_or_holds_a_fits_file_and_not_otherwise(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    _png(images / "1.png")
    remote = "https://panoptes-uploads.zooniverse.org/production/subject_location/x.fits"
    classifications, marks, subjects = _tables([1, 2], [{"0": remote}, {"0": "2.png"}])
    # Pictures only, and a remote FITS URL (never read as one): no FITS controls to show.
    assert not Project(classifications, marks, subjects=subjects, image_roots=[images]).sky.has_fits
    (images / "2_0.fits.gz").write_bytes(b"not read here")  # a FITS file named after a subject
    assert Project(classifications, marks, subjects=subjects, image_roots=[images]).sky.has_fits
    local = subjects.assign(locations=[{"0": remote}, {"0": "two.FITS"}])  # a local FITS frame location
    assert Project(classifications, marks, subjects=local, image_roots=[tmp_path]).sky.has_fits
    named = subjects.assign(fits_file=[None, "images/one.fits"])  # a path in the FITS column
    assert Project(classifications, marks, subjects=named, image_roots=[tmp_path], fits_column="fits_file").sky.has_fits
    assert not Project(classifications, marks, subjects=named.assign(fits_file=None), image_roots=[tmp_path],
                       fits_column="fits_file").sky.has_fits
    # Without image roots no local file may be read, FITS or not: nothing to show, and no subject is looked at.
    assert not Project(classifications, marks, subjects=named, fits_column="fits_file").sky.has_fits


def test_an_unreachable_image_host_gives_a_plain_reason_and_is_counted(tmp_path):
    closed = closed_host()
    url = f"http://{closed}/subject.png"
    classifications, marks, subjects = _tables([1, 2], [{"0": url}, {"0": url + "?2"}])
    project = Project(classifications, marks, subjects=subjects)
    project.images = ImageStore(allowed_hosts=(closed,), cache=tmp_path / "cache", timeout=5)
    for subject_id in (1, 2):
        image, problem = project.image(subject_id)
        assert image is None and problem == "image host not reachable"
    assert project.image_problem_counts() == {"image host not reachable": 2}


def test_a_remote_pictures_thumbnail_is_fetched_once_by_the_server_and_a_failure_is_counted(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOOLENS_CACHE_DIR", str(tmp_path / "cache"))
    closed = closed_host()
    host = ImageHost()
    try:
        located = [{"0": f"{host.url}/subject_location/1.png"}, {"0": f"http://{closed}/subject_location/2.png"},
                   {"0": "https://images.example.org/3.png"}]
        classifications, marks, subjects = _tables([1, 2, 3], located)
        project = Project(classifications, marks, subjects=subjects, image_hosts=(host.host, closed))
        thumbnail = project.subject_stats.set_index("subject_id").thumbnail
        assert thumbnail[3] == ""  # a host not allowed: the placeholder, and no request
        route = {subject_id: thumbnail[subject_id].removeprefix("zoolens-images/") for subject_id in (1, 2)}
        made = project.image_file(route[1])
        with PillowImage.open(made) as small:  # the 100 x 75 picture, shrunk
            assert small.size == (80, 60)
        assert project.image_file(route[1]) == made and host.hits == {"/subject_location/1.png": 1}
        assert project.image_file(route[2]) is None and project.image_file(route[2]) is None
        assert project.image_problem_counts() == {"image host not reachable": 1}
        # Another process's project (a new session's is the same one) finds it on disk: the host is not asked again.
        again = Project(classifications, marks, subjects=subjects, image_hosts=(host.host, closed))
        assert again.image_file(route[1]) == made and host.hits == {"/subject_location/1.png": 1}
        # Only the thumbnails of this project's subjects: no name from a request reaches the image host.
        assert project.image_file("thumbnails/" + "0" * 32 + ".png") is None
    finally:
        host.close()


def test_image_host_on_the_command_line_lets_a_teams_own_host_serve_the_pictures(tmp_path, monkeypatch, capsys):
    """``--image-host`` (serve, demo, aggregate, export) adds a host to the Zooniverse upload hosts; before it, a
    team whose pictures are on its own server could allow that host only from Python."""
    from zoolens.cli import build_parser
    from zoolens.project_arguments import project_options

    monkeypatch.setenv("ZOOLENS_CACHE_DIR", str(tmp_path / "cache"))
    host = ImageHost()
    try:
        classifications, marks, subjects = _tables([1], [{"0": f"{host.url}/subject_location/1.png"}])
        for command in ("serve", "demo", "aggregate", "export"):
            words = [command] + (["x.csv"] if command != "demo" else []) + (["-o", "o.csv"] if command in (
                "aggregate", "export") else [])
            without = project_options(build_parser(command).parse_args(words))
            with_host = project_options(build_parser(command).parse_args(
                [*words, "--image-host", host.host, "--image-host", "Images.Example.org"]))
            assert "image_hosts" not in without
            assert with_host["image_hosts"] == (*DEFAULT_ALLOWED_HOSTS, host.host, "images.example.org")
        refused = Project(classifications, marks, subjects=subjects)
        assert refused.subject_stats.thumbnail.tolist() == [""] and host.hits == {}  # not asked
        allowed = Project(classifications, marks, subjects=subjects, image_hosts=with_host["image_hosts"])
        thumbnail = allowed.subject_stats.thumbnail.iloc[0]
        assert allowed.image_file(thumbnail.removeprefix("zoolens-images/")) is not None
        image, problem = allowed.image(1)
        assert problem is None and image.width == 100
        # A URL where a host is asked for is refused with an example, before anything loads.
        with pytest.raises(SystemExit):
            build_parser("serve").parse_args(["serve", "x.csv", "--image-host", "https://images.example.org/subjects"])
        assert "expected a host name or name:port, e.g. images.example.org" in capsys.readouterr().err
    finally:
        host.close()


@pytest.mark.skipif(not PENGUIN_IMAGES.is_dir(), reason="../shared/data/penguin_watch/subjects is absent")
def test_penguin_watch_shows_its_ten_downloaded_pictures(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOOLENS_CACHE_DIR", str(tmp_path / "cache"))
    project = load_project([PENGUIN_WATCH / "penguin-watch-classifications-trim.csv",
                            PENGUIN_WATCH / "penguin-watch-subjects-trim.csv",
                            PENGUIN_WATCH / "penguin-watch-workflows.csv"], image_roots=[PENGUIN_IMAGES])
    downloaded = sorted(int(path.stem) for path in PENGUIN_IMAGES.glob("*.png"))
    assert len(downloaded) == 10
    stats = project.subject_stats.set_index("subject_id")
    assert stats.thumbnail[downloaded].str.startswith(f"{THUMBNAIL_ROUTE}/").all()
    image, problem = project.image(downloaded[0])
    assert problem is None and image.width > 100 and image.source.endswith(f"{downloaded[0]}.png")


def test_the_image_route_serves_the_thumbnails_this_project_made_and_no_other_file(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOOLENS_CACHE_DIR", str(tmp_path / "cache"))
    images = tmp_path / "images"
    images.mkdir()
    _png(images / "1.png")
    classifications, marks, subjects = _tables([1], [{}])
    project = Project(classifications, marks, subjects=subjects, image_roots=[images])
    route = project.subject_stats.thumbnail.iloc[0].removeprefix("zoolens-images/")
    assert project.image_file(route) == thumbnail_dir() / route.rsplit("/", 1)[1]
    (thumbnail_dir() / "other.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    assert project.image_file("thumbnails/other.png") is None
    assert project.image_file("thumbnails/../1.png") is None


def _wait_until(condition, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.02)


def test_pictures_read_ahead_are_read_once_and_one_asked_for_meanwhile_waits_for_that_read(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOOLENS_CACHE_DIR", str(tmp_path / "cache"))
    host = ImageHost()
    host.answering.clear()  # every answer held until the test lets it go
    try:
        ids = [1, 2, 3]
        classifications, marks, subjects = _tables(ids, [{"0": f"{host.url}/subject_location/{i}.png"} for i in ids])
        project = Project(classifications, marks, subjects=subjects, image_hosts=(host.host,))
        project.prefetch_pictures([2, 3, 2])
        project.prefetch_pictures([3])  # asked again while being read: not read again
        _wait_until(lambda: sum(host.hits.values()) == 2)
        # A session opens subject 2 meanwhile: it waits for the read under way rather than fetch it again.
        opened = concurrent.futures.ThreadPoolExecutor(1).submit(project.image, 2)
        time.sleep(0.3)
        assert not opened.done()
        host.answering.set()
        image, problem = opened.result(timeout=30)
        assert problem is None and image.width == 100
        assert project.image(3)[0] is not None and project.image(2)[0] is image
        project.prefetch_pictures([2, 3])  # read before: not read again
        time.sleep(0.3)
        assert host.hits == {"/subject_location/2.png": 1, "/subject_location/3.png": 1}
    finally:
        host.answering.set()
        host.close()


def test_a_read_that_raised_is_not_kept_and_the_next_ask_reads_again(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOOLENS_CACHE_DIR", str(tmp_path / "cache"))
    images = tmp_path / "images"
    images.mkdir()
    _png(images / "1.png")
    project = Project(*_tables([1], [{}]), image_roots=[images])
    read = project._read_image
    failures = [MemoryError("no room for it now")]

    def failing_once(location):
        if failures:
            raise failures.pop()
        return read(location)

    monkeypatch.setattr(project, "_read_image", failing_once)
    with pytest.raises(MemoryError):
        project.image(1)
    assert project.image(1)[0] is not None


def test_reads_ahead_asked_for_as_the_process_ends_are_dropped_quietly(monkeypatch):
    """A session redrawn while the server stops asked a stopped pool for reads ahead, and logged a traceback."""
    import project.core as core

    stopped = concurrent.futures.ThreadPoolExecutor(1)
    stopped.shutdown()
    monkeypatch.setattr(core, "PICTURE_READERS", stopped)
    project = Project(*_tables([1, 2], [{"0": "https://panoptes-uploads.zooniverse.org/production/1.png"}, {}]))
    project.prefetch_pictures([1, 2])  # no error; nothing read
