"""Subject images: PNG/JPEG (Pillow) and FITS (astropy, with its WCS) from local paths or URLs.

An `Image` holds the pixels as a numpy array with the top row first (the
canonical coordinates: natural image pixels, origin top-left, y down), the
celestial WCS of a FITS image when it has one, and where it came from.
``image.sky(x, y)`` turns canonical pixel coordinates into RA/Dec, and
``image.cutout(x, y, width, height)`` cuts a box out, WCS included.

Locations in data are untrusted, so an `ImageStore` decides what may be read:

- URLs only over http(s), only from ``allowed_hosts`` (by default the
  Zooniverse upload hosts that subject exports point at: ``panoptes-uploads.
  zooniverse.org`` and its staging twin; a host may be ``"host:port"``),
  redirects only to allowed hosts, and at most ``max_bytes``, counted while
  streaming so a larger body is abandoned;
- local paths only inside the configured ``roots``, after resolving ``..``
  and symbolic links (a link inside a root that points outside is refused);
- images of at most ``max_pixels`` pixels, checked before decoding.

Fetched images are cached on disk under ``cache_dir()/images``, keyed by URL.
A location that breaks these rules raises `ImageRefused`; a server that fails
or cannot be reached raises `ImageFetchError`; bytes that are not a readable
image raise `FormatError`.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import numpy as np
import param

from ._fits import fits_layout
from .base import FormatError, LoadReport, LoadResult, Loader
from .cache import cache_dir
from .celestial import wcs_sky

DEFAULT_ALLOWED_HOSTS = ("panoptes-uploads.zooniverse.org", "panoptes-uploads-staging.zooniverse.org")
#: `ImageRefused.reason` of a URL on a host not in ``allowed_hosts``: the one refusal a user undoes by allowing it.
HOST_NOT_ALLOWED = "image host not allowed"
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_PIXELS = 64 * 1024 * 1024
MAX_REDIRECTS = 5
#: Seconds after a host did not answer (a timeout, no connection) during which its other pictures are not asked for:
#: each would wait the same timeout, and a reviewer stepping through subjects would wait it on every one.
HOST_RETRY_SECONDS = 60.0
CHUNK = 64 * 1024

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"


class ImageRefused(ValueError):
    """An image location breaks the store's rules: host, scheme, path outside the roots, or size.

    ``reason`` says which in a few plain words, for people ("image host not allowed"); the message adds the
    location and the rule.
    """

    def __init__(self, message: str, reason: str = "image location not allowed"):
        super().__init__(message)
        self.reason = reason


class ImageFetchError(OSError):
    """An allowed URL could not be fetched (no answer, or an HTTP error status).

    ``reason`` says why in a few plain words, for people ("image host not reachable");
    the message adds the URL and the HTTP library's own words, for logs.
    """

    def __init__(self, message: str, reason: str = "image could not be fetched"):
        super().__init__(message)
        self.reason = reason


def image_format(head: bytes) -> str | None:
    """``"png"``, ``"jpeg"`` or ``"fits"`` (a FITS image, not a table) from the first bytes."""
    if head.startswith(PNG_SIGNATURE):
        return "png"
    if head.startswith(JPEG_SIGNATURE):
        return "jpeg"
    layout = fits_layout(head)
    if layout is not None and (layout[0] == "image" or layout[1] == "IMAGE"):
        return "fits"
    return None


@dataclass
class Image:
    """Pixels (top row first), the celestial WCS or None, and where the image came from.

    ``wcs`` describes the FITS pixel grid, whose rows run bottom-up; use
    `sky` rather than the WCS directly with canonical coordinates.
    """

    array: np.ndarray
    wcs: object | None
    source: str
    format: str

    @property
    def height(self) -> int:
        return int(self.array.shape[0])

    @property
    def width(self) -> int:
        return int(self.array.shape[1])

    def sky(self, x, y) -> tuple[np.ndarray, np.ndarray]:
        """ICRS RA and Dec (degrees) at canonical pixel coordinates (edges, top-left origin, y down).

        The picture is this image's own pixel grid, so `celestial.wcs_sky` flips y by its height.
        """
        if self.wcs is None:
            raise ValueError(f"{self.source} has no celestial WCS: pixels have no sky position")
        ra, dec = wcs_sky(x, y, self.wcs, picture_shape=(self.width, self.height))
        # wcs_sky gives 1-d arrays; answer in the shape asked (a scalar for a scalar).
        shape = np.broadcast(np.asarray(x), np.asarray(y)).shape
        return ra.reshape(shape), dec.reshape(shape)

    def cutout(self, x: float, y: float, width: float, height: float) -> Image:
        """The whole pixels covering a box (clipped to the image), with a WCS to match."""
        x0, y0 = max(0, int(np.floor(x))), max(0, int(np.floor(y)))
        x1 = min(self.width, int(np.ceil(x + width)))
        y1 = min(self.height, int(np.ceil(y + height)))
        if x1 <= x0 or y1 <= y0:
            raise ValueError(f"box ({x}, {y}, {width}, {height}) lies outside {self.source}")
        wcs = None
        if self.wcs is not None:
            # The WCS counts rows from the bottom: rows y0..y1 from the top are these.
            wcs = self.wcs.slice((slice(self.height - y1, self.height - y0), slice(x0, x1)))
        return Image(self.array[y0:y1, x0:x1], wcs, f"{self.source}[{y0}:{y1},{x0}:{x1}]",
                     self.format)


@dataclass
class ImageStore:
    """Where images may be read from, with what limits, and where fetched ones are cached.

    Parameters
    ----------
    roots : sequence of path
        Folders local image paths must lie in (after resolving ``..`` and links).
        Relative paths are taken relative to the first root. Empty: no local paths.
    allowed_hosts : sequence of str
        Host names (or ``host:port``) URLs may point at.
    max_bytes : int
        Largest image file or download accepted.
    max_pixels : int
        Largest image (width x height) decoded.
    cache : path, optional
        Folder of fetched images; ``cache_dir()/images`` by default.
    timeout : float
        Seconds to wait for a server to connect or send data.
    """

    roots: tuple = ()
    allowed_hosts: tuple = DEFAULT_ALLOWED_HOSTS
    max_bytes: int = DEFAULT_MAX_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS
    cache: Path | None = None
    timeout: float = 30.0
    _roots: tuple[Path, ...] = field(init=False, repr=False)
    #: Host -> (when it last did not answer, `time.monotonic`; the plain reason), for `HOST_RETRY_SECONDS`.
    _unanswered: dict[str, tuple[float, str]] = field(init=False, repr=False, default_factory=dict)
    _unanswered_lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)

    def __post_init__(self):
        self._roots = tuple(Path(root).resolve() for root in self.roots)
        self.allowed_hosts = tuple(host.lower() for host in self.allowed_hosts)

    def open(self, location) -> Image:
        """The image at a URL or local path given in data, if the rules allow it."""
        text = str(location)
        if "://" in text:
            return read_image_bytes(self.fetch(text).read_bytes(), text, self.max_pixels)
        path = self.local_path(text)
        return read_image_bytes(path.read_bytes(), str(path), self.max_pixels)

    def subject_image(self, locations: dict, frame: int = 0) -> Image:
        """Frame ``frame`` of a subject, from its ``locations`` (a subjects-table cell)."""
        try:
            location = locations[str(frame)]
        except KeyError:
            raise KeyError(f"the subject has no frame {frame}; it has {sorted(locations)}") from None
        return self.open(location)

    def local_path(self, location: str) -> Path:
        """``location`` resolved inside a root, or `ImageRefused`."""
        if not self._roots:
            raise ImageRefused(f"{location}: local image paths are not allowed (no image roots "
                               "configured)")
        candidate = Path(location)
        if not candidate.is_absolute():
            candidate = self._roots[0] / candidate
        resolved = candidate.resolve()
        if not any(resolved.is_relative_to(root) for root in self._roots):
            raise ImageRefused(f"{location}: outside the image roots "
                               f"({', '.join(str(root) for root in self._roots)})")
        if not resolved.is_file():
            raise FileNotFoundError(f"{location}: no such image file")
        if resolved.stat().st_size > self.max_bytes:
            raise ImageRefused(f"{location}: larger than {self.max_bytes} bytes", "image too large")
        return resolved

    def check_url(self, url: str) -> None:
        """Raise `ImageRefused` unless ``url`` is http(s) on an allowed host, without credentials."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise ImageRefused(f"{url}: only http and https URLs are fetched")
        if parts.username or parts.password:
            raise ImageRefused(f"{url}: URLs with credentials are not fetched")
        host = (parts.hostname or "").lower()
        with_port = f"{host}:{parts.port}" if parts.port else host
        if host not in self.allowed_hosts and with_port not in self.allowed_hosts:
            raise ImageRefused(f"{url}: host {with_port} is not allowed (allowed: "
                               f"{', '.join(self.allowed_hosts)})", HOST_NOT_ALLOWED)

    def fetch(self, url: str) -> Path:
        """The cached file of ``url``, downloading it first if needed."""
        self.check_url(url)
        target = self._cached_file(url)
        if target.is_file():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        content = self._download(url)
        handle, staging = tempfile.mkstemp(dir=target.parent, prefix=".partial-")
        with os.fdopen(handle, "wb") as out:
            out.write(content)
        os.replace(staging, target)
        return target

    def asks_host(self, url: str) -> bool:
        """Whether opening ``url`` would wait for its host: not when the rules refuse it, its file is cached, or the
        host did not answer in the last `HOST_RETRY_SECONDS` (each answered at once, with no request)."""
        try:
            self.check_url(url)
        except ImageRefused:
            return False
        if self._cached_file(url).is_file():
            return False
        with self._unanswered_lock:
            when, _ = self._unanswered.get(urlsplit(url).netloc.lower(), (-math.inf, ""))
        return time.monotonic() - when >= HOST_RETRY_SECONDS

    def _cached_file(self, url: str) -> Path:
        """Where ``url``'s file is cached (it may not be there yet)."""
        folder = Path(self.cache) if self.cache is not None else cache_dir() / "images"
        return folder / hashlib.sha256(url.encode()).hexdigest()

    def _download(self, url: str) -> bytes:
        import requests

        for _ in range(MAX_REDIRECTS + 1):
            host = urlsplit(url).netloc.lower()
            with self._unanswered_lock:
                when, reason = self._unanswered.get(host, (-math.inf, ""))
            if time.monotonic() - when < HOST_RETRY_SECONDS:
                raise ImageFetchError(f"{url}: not asked: {host} did not answer {time.monotonic() - when:.0f} s ago "
                                      f"(asked again {HOST_RETRY_SECONDS:.0f} s after)", reason)
            try:
                response = requests.get(url, stream=True, timeout=self.timeout,
                                        allow_redirects=False)
            except requests.RequestException as error:
                reason = ("image host did not answer in time" if isinstance(error, requests.Timeout)
                          else "image host not reachable")
                with self._unanswered_lock:
                    self._unanswered[host] = (time.monotonic(), reason)
                raise ImageFetchError(f"{url}: {error}", reason) from error
            with response:
                if response.is_redirect:
                    url = urljoin(url, response.headers.get("Location", ""))
                    self.check_url(url)
                    continue
                if response.status_code != 200:
                    raise ImageFetchError(f"{url}: HTTP {response.status_code}",
                                          f"image host answered HTTP {response.status_code}")
                declared = response.headers.get("Content-Length", "")
                if declared.isdigit() and int(declared) > self.max_bytes:
                    raise ImageRefused(f"{url}: {declared} bytes, more than {self.max_bytes}", "image too large")
                body = bytearray()
                try:
                    for chunk in response.iter_content(CHUNK):
                        body.extend(chunk)
                        if len(body) > self.max_bytes:
                            raise ImageRefused(f"{url}: more than {self.max_bytes} bytes", "image too large")
                except requests.RequestException as error:
                    raise ImageFetchError(f"{url}: {error}", "image download broke off") from error
                return bytes(body)
        raise ImageFetchError(f"{url}: more than {MAX_REDIRECTS} redirects", "image host redirects too often")


def read_image_bytes(content: bytes, source: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image:
    """Decode PNG, JPEG or FITS bytes into an `Image`; `FormatError` if they are none of these."""
    kind = image_format(content[:64 * 1024])
    if kind is None:
        raise FormatError(f"{source}: not an image: expected PNG, JPEG or FITS image bytes")
    if kind == "fits":
        return _fits_image(content, source, max_pixels)
    return _pillow_image(content, source, kind, max_pixels)


def _pillow_image(content: bytes, source: str, kind: str, max_pixels: int) -> Image:
    from PIL import Image as PillowImage
    from PIL import UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PillowImage.DecompressionBombWarning)
            picture = PillowImage.open(io.BytesIO(content))
            width, height = picture.size
            if width * height > max_pixels:
                raise ImageRefused(f"{source}: {width} x {height} pixels, more than {max_pixels}", "image too large")
            if picture.mode == "P":
                picture = picture.convert("RGBA" if "transparency" in picture.info else "RGB")
            elif picture.mode in ("CMYK", "YCbCr", "LAB", "HSV"):
                picture = picture.convert("RGB")
            picture.load()
            array = np.asarray(picture)
    except ImageRefused:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError,
            PillowImage.DecompressionBombWarning, PillowImage.DecompressionBombError) as error:
        raise FormatError(f"{source}: not a readable {kind.upper()} image ({error})") from error
    return Image(array, None, source, kind)


def _fits_image(content: bytes, source: str, max_pixels: int) -> Image:
    from astropy.io import fits
    from astropy.utils.exceptions import AstropyWarning
    from astropy.wcs import WCS

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyWarning)
            with fits.open(io.BytesIO(content), memmap=False) as hdus:
                hdu = next((h for h in hdus if h.is_image and h.header.get("NAXIS", 0) >= 2), None)
                if hdu is None:
                    raise FormatError(f"{source}: FITS file without an image of two or more axes")
                header = hdu.header
                axes = [int(header.get(f"NAXIS{i}", 0)) for i in (1, 2)]
                if axes[0] * axes[1] > max_pixels:
                    raise ImageRefused(f"{source}: {axes[0]} x {axes[1]} pixels, more than "
                                       f"{max_pixels}", "image too large")
                data = np.asarray(hdu.data)
                while data.ndim > 2:  # a cube: its first plane
                    data = data[0]
                wcs = WCS(header, naxis=2) if "CTYPE1" in header else None
    except (FormatError, ImageRefused):
        raise
    except Exception as error:  # astropy raises many types for a malformed file
        raise FormatError(f"{source}: not a readable FITS image ({type(error).__name__}: "
                          f"{error})") from error
    if wcs is not None and not wcs.has_celestial:
        wcs = None
    # FITS rows run bottom-up; canonical images are top row first.
    return Image(np.ascontiguousarray(data[::-1]), wcs, source, "fits")


@dataclass
class ImageResult(LoadResult):
    """The result of reading an image file: no tables, the `Image`, and the report."""

    image: Image | None = None


class ImageFile(Loader):
    """PNG, JPEG or FITS image (with its celestial WCS)."""

    short_name = "image"
    extensions = (".png", ".jpg", ".jpeg", ".fits", ".fit")

    roots = param.Parameter(default=None, doc="Folders the image must lie in (default: anywhere).")
    max_bytes = param.Integer(default=DEFAULT_MAX_BYTES, bounds=(1, None), doc="Refuse larger files.")
    max_pixels = param.Integer(default=DEFAULT_MAX_PIXELS, bounds=(1, None),
                               doc="Refuse images of more pixels (decompression bombs).")

    @classmethod
    def identify(cls, path: Path, head: bytes) -> bool:
        return image_format(head) is not None

    def read(self, path: Path) -> ImageResult:
        return read_image(path, roots=self.roots, max_bytes=self.max_bytes, max_pixels=self.max_pixels)


def read_image(location, roots=None, allowed_hosts=DEFAULT_ALLOWED_HOSTS,
               max_bytes: int = DEFAULT_MAX_BYTES, max_pixels: int = DEFAULT_MAX_PIXELS
               ) -> ImageResult:
    """Read one image from a local path or URL.

    Parameters
    ----------
    location : str or path-like
        A file path, or an http(s) URL.
    roots : sequence of path, optional
        Confine a local path to these folders; by default a path given here
        directly by the user is read wherever it is (locations from data should
        go through an `ImageStore` with roots).
    allowed_hosts, max_bytes, max_pixels
        As for `ImageStore`.

    Returns
    -------
    ImageResult
        ``.image`` and ``.report`` (size, channels, format, whether it has a WCS).
    """
    text = str(location)
    if "://" in text:
        image = ImageStore(allowed_hosts=allowed_hosts, max_bytes=max_bytes,
                           max_pixels=max_pixels).open(text)
    else:
        path = Path(text)
        if roots:
            path = ImageStore(roots=tuple(roots), max_bytes=max_bytes).local_path(text)
        elif path.stat().st_size > max_bytes:
            raise ImageRefused(f"{path}: larger than {max_bytes} bytes", "image too large")
        image = read_image_bytes(path.read_bytes(), str(path), max_pixels)
    report = LoadReport(source=text, format=ImageFile.short_name, rows_read=1, rows_loaded=1)
    report.counts.update({
        "image_format": image.format, "width": image.width, "height": image.height,
        "channels": 1 if image.array.ndim == 2 else int(image.array.shape[2]),
        "dtype": str(image.array.dtype), "has_wcs": image.wcs is not None})
    return ImageResult({}, report, image)
