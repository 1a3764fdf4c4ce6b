"""Images: real PNG/JPEG cutouts, FITS with a WCS, a real loopback HTTP server, the store's rules."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given

from data_loaders import FormatError, identify_format, read
from data_loaders.images import (DEFAULT_ALLOWED_HOSTS, ImageFetchError, ImageRefused, ImageStore,
                                 read_image, read_image_bytes)
from data_loaders.subjects import read_subjects
from tests.data_loaders.loader_properties import PROPERTY_SETTINGS, junk_bytes, write
from tests.image_host import PENGUIN, ImageHost

DATA = Path(__file__).resolve().parents[1] / "data"
PENGUIN_NIGHT = DATA / "penguin_watch/subjects/20860267_100x75.png"


@pytest.fixture
def server():
    running = ImageHost()
    yield running
    running.close()


def test_real_penguin_png(data_dir):
    assert identify_format(PENGUIN) == "image"
    result = read(PENGUIN)
    image = result.image
    # Downscaled from the 1000 x 750 RGBA Penguin Watch frame (SOURCES.md).
    assert (image.width, image.height) == (100, 75)
    assert image.array.shape == (75, 100, 4) and image.array.dtype == np.uint8
    assert image.wcs is None and image.format == "png"
    assert result.report.counts["channels"] == 4


def test_shared_cutouts(shared_data):
    zoobot = read_image(shared_data / "cutouts/zoobot_decals/J000411.19+020924.0.png").image
    gzh = read_image(shared_data / "cutouts/gzh_s82/objID08647474690313946727.jpg").image
    # SOURCES.md: DECaLS PNGs and SDSS JPEGs are 424 x 424 RGB; the JPEGs carry no WCS.
    assert zoobot.array.shape == (424, 424, 3) and gzh.array.shape == (424, 424, 3)
    assert gzh.format == "jpeg" and gzh.wcs is None
    assert identify_format(shared_data / "cutouts/gzh_s82/objID08647474690313946727.jpg") == "image"


def test_fetch_from_an_allowed_loopback_host_and_cache(server):
    store = ImageStore(allowed_hosts=(server.host,))
    fetched = store.open(f"{server.url}/penguin.png")
    local = read_image(PENGUIN).image
    assert np.array_equal(fetched.array, local.array)
    again = store.open(f"{server.url}/penguin.png")
    assert np.array_equal(again.array, local.array)
    assert server.hits["/penguin.png"] == 1  # the second open read the on-disk cache
    redirected = store.open(f"{server.url}/to-penguin")
    assert np.array_equal(redirected.array, local.array)


def test_subject_export_locations_lead_to_the_image(server, tmp_path):
    header = "subject_id,project_id,workflow_id,subject_set_id,metadata,locations"
    row = f'20860279,6263,6465,20334,"{{}}","{{""0"":""{server.url}/penguin.png""}}"'
    subjects = read_subjects(write(tmp_path / "s.csv", f"{header}\n{row}\n")).subjects
    store = ImageStore(allowed_hosts=(server.host,))
    image = store.subject_image(subjects.loc[0, "locations"], frame=0)
    assert image.array.shape == (75, 100, 4)
    with pytest.raises(KeyError, match="no frame 1"):
        store.subject_image(subjects.loc[0, "locations"], frame=1)


def test_disallowed_hosts_are_refused_before_any_request(server):
    default = ImageStore()
    assert default.allowed_hosts == DEFAULT_ALLOWED_HOSTS
    with pytest.raises(ImageRefused, match="is not allowed"):
        default.open(f"{server.url}/penguin.png")
    assert server.hits["/penguin.png"] == 0
    with pytest.raises(ImageRefused, match="only http and https"):
        default.open("file:///etc/passwd")
    with pytest.raises(ImageRefused, match="credentials"):
        ImageStore(allowed_hosts=(server.host,)).open(f"http://user:secret@{server.host}/penguin.png")
    # A redirect to a host that is not allowed is not followed.
    with pytest.raises(ImageRefused, match="images.example.org is not allowed"):
        ImageStore(allowed_hosts=(server.host,)).open(f"{server.url}/elsewhere")


def test_oversized_downloads_are_refused(server):
    store = ImageStore(allowed_hosts=(server.host,), max_bytes=1024 * 1024)
    with pytest.raises(ImageRefused, match="more than 1048576"):
        store.open(f"{server.url}/big.png")  # refused from its Content-Length
    with pytest.raises(ImageRefused, match="more than 1048576 bytes"):
        store.open(f"{server.url}/big-unannounced.png")  # abandoned while streaming
    with pytest.raises(ImageFetchError, match="HTTP 404"):
        store.open(f"{server.url}/missing.png")


def test_paths_are_confined_to_the_roots(tmp_path):
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "penguin.png").write_bytes(PENGUIN.read_bytes())
    outside = tmp_path / "outside.png"
    outside.write_bytes(PENGUIN.read_bytes())
    (root / "link.png").symlink_to(outside)
    store = ImageStore(roots=(root,))
    assert store.open("sub/penguin.png").array.shape == (75, 100, 4)
    for location in ("../outside.png", "sub/../../outside.png", str(outside), "link.png"):
        with pytest.raises(ImageRefused, match="outside the image roots"):
            store.open(location)
    with pytest.raises(ImageRefused, match="no image roots"):
        ImageStore().open(str(outside))
    with pytest.raises(ImageRefused, match="larger than 100 bytes"):
        ImageStore(roots=(root,), max_bytes=100).open("sub/penguin.png")


def test_too_many_pixels_are_not_decoded():
    with pytest.raises(ImageRefused, match="100 x 75 pixels"):
        read_image(PENGUIN, max_pixels=5000)


def test_fits_image_with_wcs(tmp_path):
    from astropy.io import fits
    from astropy.wcs import WCS

    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.crpix = [5.0, 3.0]  # 1-based: FITS pixel (4, 2) 0-based is the reference point
    wcs.wcs.cdelt = [-0.001, 0.001]
    data = np.arange(40, dtype=np.float32).reshape(5, 8)  # 5 rows, 8 columns; row 0 is the bottom
    fits.PrimaryHDU(data, header=wcs.to_header()).writeto(tmp_path / "field.fits")
    assert identify_format(tmp_path / "field.fits") == "image"
    image = read(tmp_path / "field.fits").image
    assert image.array.shape == (5, 8)
    assert image.array[0].tolist() == data[4].tolist()  # top row first
    # The reference pixel's centre: FITS 0-based (4, 2) is canonical x = 4.5, y = 5 - 2 - 0.5.
    ra, dec = image.sky(4.5, 2.5)
    assert (float(ra), float(dec)) == pytest.approx((150.0, 2.0))
    cut = image.cutout(2, 1, 4, 3)
    assert cut.array.tolist() == image.array[1:4, 2:6].tolist()
    assert np.allclose(cut.sky(0.5, 0.5), image.sky(2.5, 1.5))
    assert read_image(tmp_path / "field.fits").report.counts["has_wcs"] is True


def test_not_an_image():
    with pytest.raises(FormatError, match="not an image"):
        read_image_bytes(b"hello", "hello.txt")
    with pytest.raises(FormatError, match="not a readable PNG"):
        read_image_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 50, "broken.png")


@PROPERTY_SETTINGS
@given(content=junk_bytes)
def test_junk_after_an_image_signature(content):
    for signature in (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", PENGUIN_NIGHT.read_bytes()[:200]):
        try:
            image = read_image_bytes(signature + content, "junk")
        except (FormatError, ImageRefused):
            continue
        assert image.array.ndim in (2, 3)


def test_a_host_that_did_not_answer_is_not_asked_again_for_a_while(tmp_path, monkeypatch):
    """Each of its pictures waited the whole timeout: a reviewer stepping through subjects waited it on each."""
    import data_loaders.images as images

    host = ImageHost()
    host.answering.clear()  # holds every answer, as a host behind a firewall that drops packets does
    try:
        store = ImageStore(allowed_hosts=(host.host,), cache=tmp_path / "cache", timeout=0.5)
        with pytest.raises(ImageFetchError) as first:
            store.open(f"{host.url}/subject_location/1.png")
        assert first.value.reason == "image host did not answer in time"
        started = time.monotonic()
        with pytest.raises(ImageFetchError, match="not asked") as second:
            store.open(f"{host.url}/subject_location/2.png")
        assert time.monotonic() - started < 0.4 and second.value.reason == first.value.reason
        assert host.hits["/subject_location/2.png"] == 0
        # So a page need not wait for it elsewhere: it is answered at once (as are a refused and a cached one).
        assert not store.asks_host(f"{host.url}/subject_location/3.png")
        # Asked again once the while is over, and fetched when the host answers again.
        monkeypatch.setattr(images, "HOST_RETRY_SECONDS", 0.0)
        assert store.asks_host(f"{host.url}/subject_location/2.png")
        host.answering.set()
        assert store.open(f"{host.url}/subject_location/2.png").width == 100
        assert not store.asks_host(f"{host.url}/subject_location/2.png")  # cached
        assert not store.asks_host("https://elsewhere.example.org/2.png")  # refused
    finally:
        host.answering.set()
        host.close()
