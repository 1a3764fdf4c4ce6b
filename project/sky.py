"""Where a subject sits on the sky: the one lookup the app, notebooks and the command line share.

For each subject, the first of these that exists is its FITS image (read for its WCS,
headers only):

1. the path in the subjects column ``fits_column``, when one is named, relative to the
   first image root;
2. ``<subject_id>.fits`` (or ``.fit``, ``.fts``, ``.fits.gz``; or ``<subject_id>_0.fits``) in an
   image root (`SubjectFiles`, the rule the rendering's lookup follows too);
3. the first frame location (``locations``) that is a local FITS file.

A subject without a usable WCS falls back to its ``ra``/``dec`` and the project's pixel
scale (`data_loaders.celestial.box_sky_positions`' tangent-plane route). Paths come from
data, so they are resolved by `data_loaders.images.ImageStore.local_path`, which refuses
anything outside the image roots.
"""

from __future__ import annotations

import functools
import os
import re
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from data_loaders.base import FormatError
from data_loaders.celestial import read_wcs
from data_loaders.images import ImageRefused, ImageStore

FITS_EXTENSIONS = (".fits", ".fit", ".fts", ".fits.gz")
#: Extensions of the pictures volunteers saw, preferred over FITS for the rendering.
PICTURE_EXTENSIONS = (".png", ".jpg", ".jpeg")
#: ``<subject_id>.<ext>`` (frame 0) or ``<subject_id>_<frame>.<ext>``.
SUBJECT_FILE_NAME = re.compile(r"^(\d+)(?:_(\d+))?(\.png|\.jpe?g|\.fits|\.fit|\.fts|\.fits\.gz)$", re.IGNORECASE)

#: Outcome of a subject whose FITS image was found and has a celestial WCS.
FOUND = "wcs"
#: Outcome of a subject without a FITS image.
NO_FITS = "no FITS image found"


class SubjectFiles:
    """Image files named after their subject in the image roots: ``<subject_id>.<ext>`` or
    ``<subject_id>_<frame>.<ext>``, the one rule for a team's downloaded subject images.

    Each root is listed once (its files, not its subfolders); a subject's file in an earlier
    root wins, and in one root ``<id>.png`` wins over ``<id>_0.png``. Found files are later
    read through `data_loaders.images.ImageStore.local_path`, so the roots' rules still hold.

    Parameters
    ----------
    roots : sequence of path
        The image roots, in order.
    """

    def __init__(self, roots: Sequence[str | Path]):
        # (subject_id, frame) -> extension -> path
        self._files: dict[tuple[int, int], dict[str, Path]] = {}
        #: Every extension of a subject's file found (".png", ".fits.gz"...), lower case, ".jpeg" as ".jpg".
        self.extensions: set[str] = set()
        for root in roots:
            try:
                names = sorted(entry.name for entry in os.scandir(root) if entry.is_file())
            except OSError:  # a root that is not a readable folder holds no subject files
                continue
            for name in names:
                found = SUBJECT_FILE_NAME.match(name)
                if found is not None:
                    key = (int(found[1]), int(found[2] or 0))
                    extension = found[3].lower().replace(".jpeg", ".jpg")
                    self._files.setdefault(key, {}).setdefault(extension, Path(root) / name)
                    self.extensions.add(extension)

    def __len__(self) -> int:
        return len(self._files)

    def find(self, subject_id: int, frame: int = 0,
             extensions: Sequence[str] = PICTURE_EXTENSIONS + FITS_EXTENSIONS) -> Path | None:
        """The subject's file for ``frame`` with the first of ``extensions`` found, or None."""
        found = self._files.get((int(subject_id), int(frame)), {})
        for extension in extensions:
            path = found.get(extension.lower().replace(".jpeg", ".jpg"))
            if path is not None:
                return path
        return None


class SkyLookup:
    """Each subject's FITS image and celestial WCS, looked up once and remembered.

    Parameters
    ----------
    subjects : DataFrame
        Canonical subjects (``subject_id``, ``locations``, ``width``, ``height``, ...).
    store : data_loaders.images.ImageStore
        Its roots say where images may be read.
    fits_column : str, optional
        Subjects column holding each subject's FITS path. Naming a column the table
        lacks is an error.
    pixel_scale : float or str, optional
        Arcseconds per picture pixel (or the subjects column holding it) for subjects
        without a WCS.
    files : SubjectFiles, optional
        The image roots' files named after subjects; listed from the store's roots by default.
    """

    def __init__(self, subjects: pd.DataFrame, store: ImageStore, fits_column: str | None = None,
                 pixel_scale: float | str | None = None, files: SubjectFiles | None = None):
        if fits_column is not None and fits_column not in subjects.columns:
            raise ValueError(f"FITS path column {fits_column!r} is not in the subjects table; its columns are "
                             f"{list(subjects.columns)}")
        if isinstance(pixel_scale, str) and pixel_scale not in subjects.columns:
            raise ValueError(f"pixel scale column {pixel_scale!r} is not in the subjects table; its columns are "
                             f"{list(subjects.columns)}")
        self.subjects = subjects
        self.store = store
        self.files = files if files is not None else SubjectFiles(store.roots)
        self.fits_column = fits_column
        self.pixel_scale = pixel_scale
        self._row = pd.Series(np.arange(len(subjects)), index=subjects["subject_id"].to_numpy(dtype=np.int64))
        self._row = self._row[~self._row.index.duplicated()]
        # subject_id -> (path or None, WCS or None, outcome); sessions share it, so guarded.
        self._found: dict[int, tuple[Path | None, object, str]] = {}
        self._lock = threading.Lock()

    @functools.cached_property
    def has_fits(self) -> bool:
        """Whether any subject may have a FITS image: a path in ``fits_column``, a FITS file named after a subject in
        an image root, or a local FITS frame location (no file is opened: a project without one shows no FITS
        controls). Without image roots, none: no local file may be read."""
        if not self.store.roots:
            return False
        if self.fits_column is not None and self.subjects[self.fits_column].astype("string").fillna("").ne("").any():
            return True
        if self.files.extensions & set(FITS_EXTENSIONS):
            return True
        if "locations" not in self.subjects.columns:
            return False
        frames = pd.Series([location for locations in self.subjects["locations"] if isinstance(locations, Mapping)
                            for location in locations.values() if isinstance(location, str)], dtype="string")
        return bool((~frames.str.contains("://", regex=False) & frames.str.lower().str.endswith(FITS_EXTENSIONS)).any())

    def fits_path(self, subject_id: int) -> tuple[Path | None, str]:
        """The subject's FITS image inside the image roots, or None and why."""
        path, _, outcome = self._lookup(int(subject_id))
        return path, outcome

    def wcs(self, subject_ids) -> tuple[dict, list[Path], dict[str, int]]:
        """Celestial WCS of the given subjects' FITS images.

        Returns
        -------
        wcs : dict
            ``subject_id`` -> `astropy.wcs.WCS`, for the subjects that have one.
        files : list of Path
            The FITS files whose WCS is used.
        outcomes : dict
            Subjects per outcome: ``"wcs"``, ``"no FITS image found"``, ``"FITS image without a
            celestial WCS"``, ``"FITS image refused: ..."`` or ``"FITS image unreadable"``.
        """
        found, files, outcomes = {}, [], {}
        for subject_id in pd.unique(np.asarray(subject_ids, dtype=np.int64)):
            path, subject_wcs, outcome = self._lookup(int(subject_id))
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            if subject_wcs is not None:
                found[int(subject_id)] = subject_wcs
                files.append(path)
        return found, files, outcomes

    def _lookup(self, subject_id: int) -> tuple[Path | None, object, str]:
        known = self._found.get(subject_id)
        if known is None:
            known = self._find(subject_id)
            with self._lock:
                self._found[subject_id] = known
        return known

    def _find(self, subject_id: int) -> tuple[Path | None, object, str]:
        row = self._row.get(subject_id)
        subject = None if row is None else self.subjects.iloc[int(row)]
        candidates = []
        named = subject.get(self.fits_column) if subject is not None and self.fits_column else None
        if isinstance(named, str) and named:
            candidates.append(named)
        named_after = self.files.find(subject_id, 0, FITS_EXTENSIONS)
        if named_after is not None:
            candidates.append(str(named_after))
        frames = subject.get("locations") if subject is not None else None
        if isinstance(frames, Mapping):
            candidates += [location for _, location in sorted(frames.items())
                           if isinstance(location, str) and "://" not in location
                           and location.lower().endswith(FITS_EXTENSIONS)]
        for candidate in candidates:
            try:
                path = self.store.local_path(candidate)
            except FileNotFoundError:
                continue
            except ImageRefused as error:
                return None, None, f"FITS image refused: {error}"
            try:
                subject_wcs = read_wcs(path)
            except FormatError:
                return path, None, "FITS image unreadable"
            if subject_wcs is None:
                return path, None, "FITS image without a celestial WCS"
            return path, subject_wcs, FOUND
        return None, None, NO_FITS


def picture_sizes(subjects: pd.DataFrame, store: ImageStore) -> pd.DataFrame:
    """``subjects`` with missing ``width``/``height`` read from the header of each subject's first local picture.

    Only local PNG/JPEG frame locations inside the store's roots are read (Pillow
    reads the header, not the pixels). URLs are not fetched: a subject whose
    picture is remote keeps NaN.
    """
    subjects = subjects.copy()
    unknown = ~(np.isfinite(subjects["width"].to_numpy(dtype=float, na_value=np.nan))
                & np.isfinite(subjects["height"].to_numpy(dtype=float, na_value=np.nan)))
    # One header per subject whose size is unknown: the loop runs over those subjects' files.
    for index in np.flatnonzero(unknown):
        frames = subjects["locations"].iloc[index]
        location = frames.get("0") if isinstance(frames, Mapping) else None
        if not isinstance(location, str) or "://" in location:
            continue
        try:
            size = _picture_size(store.local_path(location))
        except (FileNotFoundError, ImageRefused, FormatError):
            continue
        subjects.iloc[index, subjects.columns.get_loc("width")] = float(size[0])
        subjects.iloc[index, subjects.columns.get_loc("height")] = float(size[1])
    return subjects


def _picture_size(path: Path) -> tuple[int, int]:
    """(width, height) of a PNG or JPEG picture from its header."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as picture:
            return picture.size
    except (UnidentifiedImageError, OSError) as error:
        raise FormatError(f"{path}: not a readable picture ({error})") from error
