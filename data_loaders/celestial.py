"""Sky positions (RA/Dec) of boxes drawn on subject images.

Two routes, tried in this order for each subject:

1. **The image's celestial WCS** (``"wcs"``). zoolens box coordinates are natural
   image pixels of the picture volunteers saw: origin at the top-left corner of
   the image, y down, pixel ``i`` spanning ``[i, i + 1)``. A FITS image is stored
   bottom row first and astropy's 0-based pixel coordinates put the *centre* of
   the first pixel at 0. Assuming the picture shown is the FITS image drawn the
   astronomer's way (first row at the bottom, north up for a standard WCS),
   possibly resampled to another size, a natural position ``(x, y)`` on a
   picture of ``W x H`` pixels is the 0-based FITS pixel::

       x_fits = x * NAXIS1 / W - 0.5
       y_fits = NAXIS2 - y * NAXIS2 / H - 0.5

   which `astropy.wcs.WCS.pixel_to_world` turns into a sky position, given in
   ICRS whatever frame the WCS uses. ``NAXIS1``/``NAXIS2`` come from the WCS's
   ``pixel_shape`` (set when it is read from an image header); when the WCS has
   none, the picture's own size stands in for it (the picture *is* the FITS
   array, flipped). When the picture's size is unknown, the FITS size stands in
   for it.

2. **The subject's RA/Dec plus a pixel scale** (``"tangent_plane"``), for
   subjects without a WCS. The assumption: the picture is a gnomonic (TAN)
   projection centred on the subject's ``ra``/``dec`` at the picture's centre
   ``(W/2, H/2)``, north up and east to the left, with square pixels of the
   given scale. That is how survey cutout services (SDSS, Legacy Surveys) make
   cutouts; a picture that is rotated, flipped or not centred on the subject's
   position gets wrong positions from this route, and only a WCS can fix that.
   Standard coordinates ``xi = -(x - W/2) * scale`` and
   ``eta = -(y - H/2) * scale`` are deprojected exactly (no small-angle
   approximation); the approximation is the assumed geometry.

Subjects that neither route covers get no position (NaN), and the summary says
how many and why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .base import FormatError

#: ``sky_method`` values.
WCS_ROUTE = "wcs"
TANGENT_PLANE_ROUTE = "tangent_plane"

ARCSEC = np.pi / (180.0 * 3600.0)

PIXEL_CONVENTION = (
    "x, y, width, height, x_center, y_center are natural image pixels of the picture volunteers saw: "
    "origin at its top-left corner, y down, pixel i spanning [i, i+1). With a FITS image of NAXIS1 x NAXIS2 "
    "shown as a W x H picture (first FITS row at the bottom), 0-based FITS pixel = "
    "(x * NAXIS1 / W - 0.5, NAXIS2 - y * NAXIS2 / H - 0.5)."
)

TANGENT_PLANE_ASSUMPTION = (
    "RA/Dec from the subject's ra/dec and a pixel scale assume a gnomonic (TAN) projection centred on the "
    "subject's ra/dec at the picture centre (W/2, H/2), north up, east left, square pixels of the given "
    "scale; a rotated, flipped or off-centre picture gets wrong positions."
)


@dataclass
class SkySummary:
    """How the sky positions of a table of boxes were obtained.

    Attributes
    ----------
    boxes : dict
        Boxes per route: ``"wcs"``, ``"tangent_plane"``, ``"none"``.
    subjects_without_position : dict
        Reason -> number of subjects whose boxes got no position.
    pixel_scale : float or str or None
        The pixel scale used by the tangent-plane route (arcsec/pixel, or the
        subjects column it was read from).
    notes : list of str
        The conventions and assumptions behind the numbers, for provenance.
    """

    boxes: dict = field(default_factory=lambda: {WCS_ROUTE: 0, TANGENT_PLANE_ROUTE: 0, "none": 0})
    subjects_without_position: dict = field(default_factory=dict)
    pixel_scale: float | str | None = None
    notes: list = field(default_factory=list)

    @property
    def method(self) -> str:
        """``"wcs"``, ``"tangent_plane"``, ``"wcs+tangent_plane"`` or ``"none"``."""
        used = [route for route in (WCS_ROUTE, TANGENT_PLANE_ROUTE) if self.boxes[route]]
        return "+".join(used) or "none"

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "frame": "ICRS" if self.method != "none" else None,
            "boxes": dict(self.boxes),
            "subjects_without_position": dict(self.subjects_without_position),
            "pixel_scale_arcsec": self.pixel_scale,
            "notes": list(self.notes),
        }


def natural_to_fits_pixels(x, y, fits_shape, picture_shape=None) -> tuple[np.ndarray, np.ndarray]:
    """0-based FITS pixel coordinates of natural picture positions (see the module docstring).

    Parameters
    ----------
    x, y : array-like
        Natural picture coordinates: origin top-left, y down.
    fits_shape : (int, int)
        ``(NAXIS1, NAXIS2)`` of the FITS image.
    picture_shape : (float, float), optional
        ``(width, height)`` of the picture volunteers saw; the FITS size if omitted.
    """
    naxis1, naxis2 = (float(size) for size in fits_shape)
    width, height = (naxis1, naxis2) if picture_shape is None else (float(size) for size in picture_shape)
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    return x * (naxis1 / width) - 0.5, naxis2 - y * (naxis2 / height) - 0.5


def wcs_sky(x, y, wcs, picture_shape=None) -> tuple[np.ndarray, np.ndarray]:
    """ICRS RA/Dec in degrees of natural picture positions on an image with a celestial WCS.

    Parameters
    ----------
    x, y : array-like
        Natural picture coordinates: origin top-left, y down.
    wcs : astropy.wcs.WCS or astropy.io.fits.Header
        The FITS image's WCS. Only its celestial axes are used.
    picture_shape : (float, float), optional
        ``(width, height)`` of the picture volunteers saw. Needed when the WCS
        has no ``pixel_shape``; when both are known and differ, the picture is
        taken to be the FITS image resampled.

    Raises
    ------
    ValueError
        When the WCS has no celestial axes, or neither it nor ``picture_shape``
        gives the image size (needed to flip y).
    """
    celestial = celestial_wcs(wcs)
    fits_shape = celestial.pixel_shape or picture_shape
    if fits_shape is None:
        raise ValueError("the image height is unknown (the WCS has no NAXIS and the picture size is not given); "
                         "it is needed to turn top-left picture pixels into bottom-left FITS pixels")
    fits_x, fits_y = natural_to_fits_pixels(x, y, fits_shape, picture_shape)
    # What `WCS.pixel_to_world(...).icrs` computes, without building a SkyCoord when the WCS is already in
    # ICRS: about ten times faster per subject (bench/results/export.md), which 85,000 subjects feel.
    from astropy.coordinates import ICRS, SkyCoord
    from astropy.wcs.utils import wcs_to_celestial_frame

    world = celestial.pixel_to_world_values(fits_x, fits_y)
    longitude = np.atleast_1d(world[celestial.wcs.lng]).astype(float)
    latitude = np.atleast_1d(world[celestial.wcs.lat]).astype(float)
    frame = wcs_to_celestial_frame(celestial)
    if isinstance(frame, ICRS):
        return longitude % 360.0, latitude
    sky = SkyCoord(longitude, latitude, unit="deg", frame=frame).icrs
    return np.atleast_1d(sky.ra.deg).astype(float), np.atleast_1d(sky.dec.deg).astype(float)


def celestial_wcs(wcs):
    """The celestial part of a WCS (or of the WCS in a FITS header); an error if it has none."""
    from astropy.io import fits
    from astropy.wcs import WCS

    if isinstance(wcs, fits.Header):
        wcs = WCS(wcs)
    if not isinstance(wcs, WCS):
        raise TypeError(f"expected an astropy.wcs.WCS or a FITS header, got {type(wcs).__name__}")
    if not wcs.has_celestial:
        raise ValueError(f"the WCS has no celestial axes (CTYPE {list(wcs.wcs.ctype)})")
    if wcs.naxis == 2:
        return wcs  # both axes are the celestial ones; `.celestial` would copy it (0.7 ms) for nothing
    return wcs.celestial  # keeps the image size of the celestial axes


def tangent_plane_sky(x, y, ra, dec, width, height, pixel_scale) -> tuple[np.ndarray, np.ndarray]:
    """RA/Dec in degrees of natural picture positions from the picture centre's RA/Dec and a pixel scale.

    Vectorised over boxes: every argument is an array of one value per box (or a scalar).
    See the module docstring for the assumed geometry.

    Parameters
    ----------
    x, y : array-like
        Natural picture coordinates: origin top-left, y down.
    ra, dec : array-like
        Sky position of the picture centre, degrees.
    width, height : array-like
        Picture size, pixels.
    pixel_scale : array-like
        Arcseconds per pixel.
    """
    scale = np.asarray(pixel_scale, dtype=float) * ARCSEC
    xi = -(np.asarray(x, dtype=float) - np.asarray(width, dtype=float) / 2) * scale
    eta = -(np.asarray(y, dtype=float) - np.asarray(height, dtype=float) / 2) * scale
    ra0 = np.radians(np.asarray(ra, dtype=float))
    dec0 = np.radians(np.asarray(dec, dtype=float))
    # Inverse gnomonic projection (Calabretta & Greisen 2002, eq. 54 with the TAN native coordinates).
    denominator = np.cos(dec0) - eta * np.sin(dec0)
    ra_out = np.degrees(ra0 + np.arctan2(xi, denominator)) % 360.0
    dec_out = np.degrees(np.arctan2(np.sin(dec0) + eta * np.cos(dec0), np.hypot(xi, denominator)))
    return ra_out, dec_out


def read_wcs(path):
    """The celestial WCS of a FITS image, from its header alone (no pixels are read), or None.

    The first HDU holding an image of two or more axes is used, as
    `data_loaders.images` does; the WCS keeps that image's size (``pixel_shape``),
    which the y flip needs.

    Raises
    ------
    FormatError
        When the file is not a readable FITS file or holds no image.
    """
    import warnings

    from astropy.io import fits
    from astropy.utils.exceptions import AstropyWarning
    from astropy.wcs import WCS

    try:
        with warnings.catch_warnings():
            # Headers written by other tools often carry non-standard cards astropy fixes and warns about.
            warnings.simplefilter("ignore", AstropyWarning)
            with fits.open(path, memmap=False, lazy_load_hdus=True) as hdus:
                header = next((hdu.header for hdu in hdus if hdu.is_image and hdu.header.get("NAXIS", 0) >= 2),
                              None)
                if header is None:
                    raise FormatError(f"{path}: FITS file without an image of two or more axes")
                wcs = WCS(header, naxis=2) if "CTYPE1" in header else None
    except FormatError:
        raise
    except Exception as error:  # astropy raises many types for a malformed file
        raise FormatError(f"{path}: not a readable FITS image ({type(error).__name__}: {error})") from error
    return wcs if wcs is not None and wcs.has_celestial else None


def box_sky_positions(boxes: pd.DataFrame, wcs: Mapping | None = None, subjects: pd.DataFrame | None = None,
                      pixel_scale: float | str | None = None) -> tuple[pd.DataFrame, SkySummary]:
    """RA/Dec of the centre of every box, by the best route each subject allows.

    Parameters
    ----------
    boxes : DataFrame
        Boxes with ``subject_id``, ``x``, ``y``, ``width``, ``height`` (natural
        picture pixels, top-left corner); rotation does not move the centre.
    wcs : mapping, optional
        ``subject_id`` -> `astropy.wcs.WCS` (or FITS header) of the subject's
        FITS image. One WCS serves every frame of a subject.
    subjects : DataFrame, optional
        Canonical subjects: ``width``/``height`` (the picture size) and, for the
        tangent-plane route, ``ra``/``dec`` in degrees.
    pixel_scale : float or str, optional
        Arcseconds per picture pixel for the tangent-plane route, or the name of
        a ``subjects`` column holding it. Without it that route is not used.

    Returns
    -------
    positions : DataFrame
        Indexed like ``boxes``: ``ra``, ``dec`` (degrees, ICRS, NaN where no
        route applies) and ``sky_method`` (``"wcs"``, ``"tangent_plane"`` or ``""``).
    summary : SkySummary
        Boxes per route, subjects left without a position and why, the conventions used.
    """
    summary = SkySummary(pixel_scale=pixel_scale)
    summary.notes.append(PIXEL_CONVENTION)
    count = len(boxes)
    ra = np.full(count, np.nan)
    dec = np.full(count, np.nan)
    method = np.full(count, "", dtype=object)
    if count == 0:
        return _positions(boxes, ra, dec, method), summary

    subject_ids = boxes["subject_id"].to_numpy(dtype=np.int64)
    centre_x = (boxes["x"] + boxes["width"] / 2).to_numpy(dtype=float)
    centre_y = (boxes["y"] + boxes["height"] / 2).to_numpy(dtype=float)
    pictures = _picture_table(subjects, subject_ids)
    # Why each box has no position yet: the first failure is the one reported.
    reason = np.full(count, "", dtype=object)

    if wcs:
        order = np.argsort(subject_ids, kind="stable")
        unique_ids, starts = np.unique(subject_ids[order], return_index=True)
        ends = np.append(starts[1:], len(order))
        # One WCS per subject: the loop runs over subjects that have an image, never over boxes.
        for subject_id, start, end in zip(unique_ids, starts, ends):
            subject_wcs = wcs.get(int(subject_id))
            if subject_wcs is None:
                continue
            rows = order[start:end]
            picture = pictures.loc[int(subject_id)] if int(subject_id) in pictures.index else None
            picture_shape = None
            if picture is not None and np.isfinite(picture["width"]) and np.isfinite(picture["height"]):
                picture_shape = (picture["width"], picture["height"])
            try:
                ra[rows], dec[rows] = wcs_sky(centre_x[rows], centre_y[rows], subject_wcs, picture_shape)
            except ValueError as error:
                reason[rows] = f"WCS not usable: {error}"
                continue
            method[rows] = WCS_ROUTE

    if pixel_scale is not None and subjects is not None:
        scale = _pixel_scales(pixel_scale, subjects, subject_ids)
        centre = {column: _per_box(pictures, subject_ids, column) for column in ("ra", "dec", "width", "height")}
        usable = (method == "") & np.isfinite(scale) & (scale > 0)
        for values in centre.values():
            usable &= np.isfinite(values)
        if usable.any():
            ra[usable], dec[usable] = tangent_plane_sky(
                centre_x[usable], centre_y[usable], centre["ra"][usable], centre["dec"][usable],
                centre["width"][usable], centre["height"][usable], scale[usable],
            )
            method[usable] = TANGENT_PLANE_ROUTE
            summary.notes.append(TANGENT_PLANE_ASSUMPTION)
        fallback_failure = "no WCS, and the subject lacks ra/dec, picture width/height or a positive pixel scale"
    elif subjects is None:
        fallback_failure = "no WCS, and no subjects table with ra/dec for the tangent-plane route"
    else:
        fallback_failure = "no WCS, and no pixel scale for the tangent-plane route"

    unplaced = method == ""
    reason[unplaced & (reason == "")] = fallback_failure
    # Subjects per reason (a subject's boxes share its reason).
    failures = pd.DataFrame({"subject_id": subject_ids[unplaced], "reason": reason[unplaced]}).drop_duplicates()
    summary.subjects_without_position = {str(key): int(value)
                                         for key, value in failures["reason"].value_counts(sort=False).items()}
    summary.boxes = {
        WCS_ROUTE: int((method == WCS_ROUTE).sum()),
        TANGENT_PLANE_ROUTE: int((method == TANGENT_PLANE_ROUTE).sum()),
        "none": int((method == "").sum()),
    }
    return _positions(boxes, ra, dec, method), summary


def _positions(boxes, ra, dec, method) -> pd.DataFrame:
    return pd.DataFrame({"ra": ra, "dec": dec, "sky_method": pd.array(method, dtype="string")},
                        index=boxes.index)


def _picture_table(subjects: pd.DataFrame | None, subject_ids: np.ndarray) -> pd.DataFrame:
    """Per subject id: picture ``width``, ``height`` and the subject's ``ra``, ``dec`` (NaN if unknown)."""
    columns = ["width", "height", "ra", "dec"]
    if subjects is None or len(subjects) == 0:
        return pd.DataFrame(columns=columns, dtype=float, index=pd.Index([], dtype=np.int64, name="subject_id"))
    wanted = subjects[subjects["subject_id"].isin(np.unique(subject_ids))]
    table = pd.DataFrame(index=pd.Index(wanted["subject_id"].to_numpy(dtype=np.int64), name="subject_id"))
    for column in columns:
        values = wanted[column] if column in wanted.columns else pd.Series(np.nan, index=wanted.index)
        table[column] = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return table[~table.index.duplicated()]


def _per_box(pictures: pd.DataFrame, subject_ids: np.ndarray, column: str) -> np.ndarray:
    """One value of ``pictures[column]`` per box (NaN for subjects not in the table)."""
    return pictures[column].reindex(subject_ids).to_numpy(dtype=float, na_value=np.nan)


def _pixel_scales(pixel_scale, subjects: pd.DataFrame, subject_ids: np.ndarray) -> np.ndarray:
    if isinstance(pixel_scale, str):
        if pixel_scale not in subjects.columns:
            raise ValueError(f"pixel scale column {pixel_scale!r} is not in the subjects table; "
                             f"its columns are {list(subjects.columns)}")
        scales = pd.Series(pd.to_numeric(subjects[pixel_scale], errors="coerce").to_numpy(dtype=float,
                                                                                          na_value=np.nan),
                           index=subjects["subject_id"].to_numpy(dtype=np.int64))
        scales = scales[~scales.index.duplicated()]
        return scales.reindex(subject_ids).to_numpy(dtype=float, na_value=np.nan)
    value = float(pixel_scale)
    if not value > 0:
        raise ValueError(f"pixel scale must be a positive number of arcseconds per pixel, got {pixel_scale!r}")
    return np.full(len(subject_ids), value)
