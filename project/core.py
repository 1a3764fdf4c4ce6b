"""`Project`: one project's canonical tables and what is derived from them once.

Shared read-only by everything that shows or exports a project: the served app's
sessions, a notebook's `dashboard.Explorer`, and the command line. Built from files by
`project.load_project`; nothing here parses a file (tables come from `data_loaders`)
or imports Panel.
"""

from __future__ import annotations

import hashlib
import posixpath
import threading
import urllib.parse
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from consensus import match
from consensus.agreement import box_agreement, subject_agreement, volunteer_agreement
from data_loaders.base import FormatError
from data_loaders.cache import cache_dir
from data_loaders.images import (DEFAULT_ALLOWED_HOSTS, Image, ImageFetchError, ImageRefused, ImageStore,
                                  read_image_bytes)
from data_loaders.schema import conform, empty_table

from .machine import compare_detections
from .recent import RecentlyUsed
from .reviews import consensus_fingerprint
from .sky import NO_FITS, SkyLookup, SubjectFiles
from .thumbnails import Thumbnails

#: URL route of subjects' image files in a served app: ``zoolens-images/<root number>/<path>``
#: (`Project.image_file`; only files a subject refers to are served: `dashboard.image_route`).
IMAGE_ROUTE = "zoolens-images"
#: Route (under `IMAGE_ROUTE`) of the table's thumbnails of subject images, local or fetched (`thumbnail_dir`).
THUMBNAIL_ROUTE = f"{IMAGE_ROUTE}/thumbnails"
#: Longer side of a thumbnail in pixels: the table shows 40, twice that stays sharp on dense screens.
THUMBNAIL_SIDE = 80

#: Decoded pictures a project keeps, the most recently used: the subjects its sessions show and are about to.
RECENT_PICTURES = 256
#: Threads reading pictures ahead of the reviewers (`Project.prefetch_pictures`), shared by every project: two, so
#: a slow host holds up at most two reads, and a large local file's decoding takes at most two cores.
PICTURE_READERS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="zoolens-pictures")
#: Threads reading the pictures views show as they come (`Project.picture_read`): apart from the reads ahead, so a
#: picture a reviewer opened never waits behind them.
SHOWN_PICTURE_READERS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="zoolens-shown-pictures")

#: Subject columns never offered as metadata filters, though numeric.
NOT_METADATA = {"subject_id", "width", "height", "retired", "project_id", "workflow_id", "subject_set_id",
                "classifications_count", "n_frames"}

#: The agreement columns of `Project.volunteer_stats`, NaN without links.
VOLUNTEER_AGREEMENT_COLUMNS = ["precision", "recall", "mean_iou", "mean_distance", "unmatched_rate", "n_double_marks"]


def volunteer_table(stats: pd.DataFrame, agreement: pd.DataFrame | None) -> pd.DataFrame:
    """`Project.volunteer_stats` from per-volunteer counts (indexed by user) and their agreement (None: no links).

    One row per volunteer, busiest first; in memory and in a store alike.
    """
    if agreement is None:
        for column in VOLUNTEER_AGREEMENT_COLUMNS:
            stats[column] = np.nan
    else:
        stats = stats.join(agreement[VOLUNTEER_AGREEMENT_COLUMNS])
    stats.index.name = "user"
    return stats.reset_index().sort_values(["n_classifications", "user"], ascending=[False, True],
                                           ignore_index=True)


class Project:
    """One project's tables and what is derived from them once; shared read-only by all sessions.

    Parameters
    ----------
    classifications, marks : DataFrame
        Canonical tables (`data_loaders.schema`).
    subjects : DataFrame, optional
        Canonical subjects with flattened metadata; default: the subject ids seen in
        the classifications, without images.
    consensus : DataFrame, optional
        Canonical consensus boxes; default none.
    links : DataFrame, optional
        Canonical mark -> consensus box links; made with `consensus.match` when a
        consensus comes without them. Without a consensus, marks are shown unlinked.
    image_roots : sequence of path
        Folders image paths in the data must lie in; relative ones resolve against
        the first (`data_loaders.images.ImageStore` rules).
    image_hosts : sequence of str
        Hosts (or ``host:port``) image URLs in the data may be fetched from; default the Zooniverse
        upload hosts (`data_loaders.images.DEFAULT_ALLOWED_HOSTS`).
    reports : sequence of LoadReport
        How the tables were read, shown to the user.
    title : str
        Shown in the app's header.
    sources : mapping, optional
        Role (``classifications``, ``subjects``, ``workflows``, ``consensus``) -> the files
        the tables came from, for the provenance of every export.
    filters : mapping, optional
        The loading options that chose rows (workflow, version, tasks, point boxes), for
        the provenance.
    aggregation_run : mapping, optional
        How the consensus was made (method and report, or the file it was read from).
    fits_column, pixel_scale
        How the sky lookup finds each subject's position (`project.sky.SkyLookup`).
    picture_size : (width, height), optional
        Size in pixels of the pictures volunteers saw, where the subjects do not say.
    mark_vertices : DataFrame, optional
        The outlines of marks drawn through their vertices (`data_loaders.schema.MARK_VERTICES`),
        vertices of marks not in ``marks`` left out; default none: every mark is drawn from its box.
    detections : DataFrame, optional
        A machine's canonical detections, compared with the consensus in `machine`.

    Attributes
    ----------
    marks : DataFrame
        The canonical marks, plus ``consensus_id`` (-1: matched
        nothing), ``iou``, ``created_at`` of the classification, ``size`` (square root
        of the area) and ``dx``, ``dy`` (mark centre minus its consensus box centre).
    consensus : DataFrame
        The canonical consensus plus, with links, `consensus.agreement.box_agreement`'s
        columns (votes' spread ``sigma_*`` and the error band ``x_err``, ``y_err``,
        ``width_err``, ``height_err``).
    subject_stats : DataFrame
        One row per subject: classifications, volunteers, empty classifications,
        marks, consensus boxes, most votes on a box, and with links the consensus
        layer's mean IoU (boxes), mean distance (points, pixels), unmatched fraction, boxes below quorum
        and disagreement score (`consensus.agreement.subject_agreement`); numeric metadata,
        ``thumbnail`` URL.
    volunteer_stats : DataFrame
        (Computed on first use.) One row per volunteer: classifications, subjects, marks, marks per
        classification, empty share, first and last classification time, logged
        in or not, and with links precision, recall, mean IoU (boxes), mean distance (points, pixels),
        unmatched rate and double marks (`consensus.agreement.volunteer_agreement`).
    """

    #: The true objects (`project.truth.read_truth`), when known (the demo's); set by `load_project`'s ``truth``.
    truth: pd.DataFrame | None = None

    def __init__(self, classifications: pd.DataFrame, marks: pd.DataFrame,
                 subjects: pd.DataFrame | None = None, consensus: pd.DataFrame | None = None,
                 links: pd.DataFrame | None = None, image_roots: Sequence[str | Path] = (),
                 reports: Sequence = (), title: str = "zoolens", sources: Mapping | None = None,
                 filters: Mapping | None = None, aggregation_run: Mapping | None = None,
                 fits_column: str | None = None, pixel_scale: float | str | None = None,
                 picture_size: tuple[float, float] | None = None, mark_vertices: pd.DataFrame | None = None,
                 detections: pd.DataFrame | None = None, image_hosts: Sequence[str] = DEFAULT_ALLOWED_HOSTS):
        self._set_provenance(title, reports, sources, filters, aggregation_run, image_roots, image_hosts)
        self.classifications = conform(classifications, "classifications")
        self.consensus = (conform(consensus, "consensus") if consensus is not None
                          else empty_table("consensus")).sort_values(["subject_id", "consensus_id"],
                                                                     ignore_index=True)
        #: The consensus table's own columns, before the statistics added below.
        self.consensus_columns = list(self.consensus.columns)
        self.detections = conform(detections, "detections") if detections is not None else None
        marks = conform(marks, "marks")
        if links is None and consensus is not None:
            # A consensus from elsewhere: link each mark to the box it supports.
            links = match(marks, self.consensus)
        self.has_links = links is not None
        self.links = conform(links, "links") if links is not None else empty_table("links")
        self.subjects = self._subjects(subjects, picture_size)
        self._set_sky(fits_column, pixel_scale)
        self.marks = self._marks(marks)
        self.mark_vertices = _vertices_of_marks(mark_vertices, self.marks.mark_id.to_numpy())
        if self.has_links:
            self.consensus = self._with_box_agreement(marks)
        self.metadata_columns = self._metadata_columns()
        self.subject_stats = self._subject_stats()
        self.workflows = self._workflow_subjects()
        self.tools = sorted(self.marks.tool_label.dropna().unique().tolist())
        self._mark_index = _SubjectIndex(self.marks.subject_id.to_numpy(), self.marks.mark_id.to_numpy())
        self._consensus_index = _SubjectIndex(self.consensus.subject_id.to_numpy(),
                                              self.consensus.consensus_id.to_numpy())
        self._subject_row = pd.Series(np.arange(len(self.subjects)), index=self.subjects.subject_id.to_numpy())

    # -- derived once ----------------------------------------------------------------------

    def _set_provenance(self, title, reports, sources, filters, aggregation_run, image_roots,
                        image_hosts: Sequence[str] = DEFAULT_ALLOWED_HOSTS) -> None:
        """What every project keeps besides its tables: how it was made, and where its images may be read."""
        self.title = title
        self.reports = tuple(reports)
        self.sources = {role: [Path(path) for path in paths] for role, paths in (sources or {}).items()}
        self.filters = dict(filters or {})
        self.aggregation_run = dict(aggregation_run or {})
        self.image_roots = tuple(Path(root).resolve() for root in image_roots)
        self.images = ImageStore(roots=self.image_roots, allowed_hosts=tuple(image_hosts))
        #: Files named after their subject in the image roots, found before any location in the subjects.
        self.subject_files = SubjectFiles(self.image_roots)
        #: Image location -> the read of its picture (a future of what `_read_image` gives), per project so every
        #: session shares the decoded images; a few hundred subjects.
        self._pictures: RecentlyUsed[Future] = RecentlyUsed(RECENT_PICTURES)
        #: Name -> file of the thumbnails made of subjects' own pictures, the only ones `image_file` serves
        #: (the file kept: the cache folder is where it was when the project was made).
        self._thumbnail_files: dict[str, Path] = {}
        #: Name -> URL (from the subject export) of the thumbnails of remote pictures, made when first asked for
        #: (`remote_thumbnail`): the only other ones `image_file` serves.
        self._remote_thumbnails: dict[str, str] = {}
        #: Name -> the lock of a remote thumbnail being made, so two sessions asking at once fetch it once.
        self._making: dict[str, threading.Lock] = {}
        #: Image location -> the kind of reason it could not be shown, for the images tried so far.
        self.image_problems: dict[str, str] = {}
        #: Guards the dicts above, shared by the sessions' threads, and who starts a picture's read (`_read_into`).
        self._lock = threading.Lock()

    def _set_sky(self, fits_column, pixel_scale) -> None:
        # Made with the project, in the loading thread, not by the first image request on the event loop.
        self._published_images = self._image_routes()
        self.sky = SkyLookup(self.subjects, self.images, fits_column=fits_column, pixel_scale=pixel_scale,
                             files=self.subject_files)

    def _metadata_columns(self) -> list[str]:
        """The subjects' numeric metadata columns offered as filters."""
        return [
            column for column in self.subjects.columns
            if column not in NOT_METADATA and pd.api.types.is_numeric_dtype(self.subjects[column])
            and not pd.api.types.is_bool_dtype(self.subjects[column]) and self.subjects[column].notna().any()
            # The subject loader keeps a recognised ra/dec pair as ra, dec (degrees) and the
            # raw values as metadata_ra, metadata_dec: offer each quantity once.
            and not (column.startswith("metadata_") and column.removeprefix("metadata_") in self.subjects.columns)
        ]

    def _subjects(self, subjects: pd.DataFrame | None, picture_size: tuple[float, float] | None) -> pd.DataFrame:
        if subjects is None:
            ids = np.unique(self.classifications.subject_id.to_numpy())
            subjects = pd.DataFrame({"subject_id": ids, "locations": [{} for _ in ids], "width": np.nan,
                                     "height": np.nan, "retired": pd.NA})
        subjects = conform(subjects, "subjects").sort_values("subject_id", ignore_index=True)
        if picture_size is not None:
            # The pictures volunteers saw, where the subjects do not say: the sky positions need their size.
            subjects["width"] = subjects["width"].fillna(float(picture_size[0]))
            subjects["height"] = subjects["height"].fillna(float(picture_size[1]))
        first_location = subjects.locations.map(
            lambda locations: locations.get("0") if isinstance(locations, dict) else None)
        # A subject's own file in the image roots comes before any location in the export.
        local = [self.subject_files.find(subject_id) for subject_id in subjects.subject_id.to_numpy()]
        return subjects.assign(thumbnail=[self._thumbnail_url(location, path)
                                          for location, path in zip(first_location, local)])

    def _thumbnail_url(self, location, local_file: Path | None = None) -> str:
        """Where a browser gets a subject's image ("" if nowhere it may).

        A file named after the subject in an image root (``local_file``) is shrunk once into
        `thumbnail_dir` and published under `THUMBNAIL_ROUTE` (`image_file` serves it). Otherwise,
        a local path is published under the image route (`_route_path`), and an http(s) URL on an
        allowed host under `THUMBNAIL_ROUTE` too, its thumbnail made on the server when a page first
        asks for it (`remote_thumbnail`): the browser never fetches from the image host. Paths are
        percent-quoted, so a location cannot climb out of the HTML attribute.
        """
        if local_file is not None:
            made = _thumbnail(local_file, self.images)
            if made is not None:
                self._thumbnail_files[made.name] = made
                return f"{THUMBNAIL_ROUTE}/{made.name}"
        if not isinstance(location, str) or not location:
            return ""
        if "://" in location:
            try:
                self.images.check_url(location)
            except ImageRefused:
                return ""
            name = _remote_thumbnail_name(location)
            self._remote_thumbnails[name] = location
            return f"{THUMBNAIL_ROUTE}/{name}"
        route_path = self._route_path(location)
        return f"{IMAGE_ROUTE}/{urllib.parse.quote(route_path)}" if route_path else ""

    def _route_path(self, location: str) -> str | None:
        """``<root number>/<path in that root>`` for a local image location, None if in no root.

        A relative path lies in the first image root, an absolute one in the root holding
        it. The path is normalised, so a location cannot climb out of its root.
        """
        path = posixpath.normpath(location.replace("\\", "/"))
        for number, root in enumerate(self.image_roots):
            if posixpath.isabs(path):
                relative = posixpath.relpath(path, root.as_posix()) if path.startswith(root.as_posix() + "/") else None
            else:
                relative = path if number == 0 else None
            if relative and not relative.startswith(".."):
                return f"{number}/{relative}"
        return None

    def _image_routes(self) -> dict[str, str]:
        """Route path -> location, for every local image location of every subject."""
        published = {}
        for locations in self.subjects.locations:
            for location in (locations.values() if isinstance(locations, dict) else ()):
                if isinstance(location, str) and location and "://" not in location:
                    route_path = self._route_path(location)
                    if route_path:
                        published[route_path] = location
        return published

    def image_file(self, route_path: str) -> Path | None:
        """The file a served image URL (``zoolens-images/<route path>``) refers to, if it may be served.

        Only a file some subject of the project refers to, that exists inside the image
        roots once symbolic links are resolved (`ImageStore.local_path`), or a thumbnail of one
        (``thumbnails/<name>``); None otherwise. A remote picture's thumbnail not made yet is made
        here (`remote_thumbnail`): this may wait on the image host, so call it off the event loop.
        """
        folder, _, name = route_path.partition("/")
        if f"{IMAGE_ROUTE}/{folder}" == THUMBNAIL_ROUTE:
            # A thumbnail of a subject's own picture (`_thumbnail_url`), and no other file.
            made = self._thumbnail_files.get(name)
            if made is not None:
                return made if made.is_file() else None
            url = self._remote_thumbnails.get(name)
            return None if url is None else self.remote_thumbnail(url)
        location = self._published_images.get(route_path)
        if location is None:
            return None
        try:
            return self.images.local_path(location)
        except (ImageRefused, OSError):
            return None

    @property
    def has_remote_pictures(self) -> bool:
        """Whether some subject's thumbnail is of a picture on an image host (`remote_thumbnail`)."""
        return bool(self._remote_thumbnails)

    def remote_thumbnail(self, url: str) -> Path | None:
        """The file in `thumbnail_dir` of a thumbnail of the picture at ``url``, fetched and made once; None if
        it cannot be had.

        Fetched through the project's `ImageStore` (allowed hosts, size caps, timeout); a picture that cannot
        be had is counted in `image_problems` with its plain reason, as the cutout's are, and not asked for
        again by this project. Blocks while fetching: call it off the event loop.
        """
        target = thumbnail_dir() / _remote_thumbnail_name(url)
        with self._lock:
            making = self._making.setdefault(target.name, threading.Lock())
        with making:
            if not target.is_file():
                with self._lock:
                    tried = url in self.image_problems
                # Not through `_open_image`: its cache is for the cutout's few pictures, not every thumbnail's. But
                # a picture a cutout has, or is reading or about to, is not fetched again.
                read = None if tried else self._pictures.peek(url)
                if read is None:
                    image = None if tried else self._read_image(url)[0]
                else:
                    self._read_into(read, url)
                    image = read.result()[0]
                if image is not None:
                    _save_thumbnail(image, target)
        with self._lock:
            self._making.pop(target.name, None)
        return target if target.is_file() else None

    def _marks(self, marks: pd.DataFrame) -> pd.DataFrame:
        marks = marks.merge(self.links[["mark_id", "consensus_id", "iou"]], on="mark_id", how="left")
        marks["consensus_id"] = marks.consensus_id.fillna(-1).astype(np.int64)
        created = self.classifications.set_index("classification_id").created_at
        marks["created_at"] = marks.classification_id.map(created)
        marks["size"] = np.sqrt(marks.width * marks.height)
        boxes = self.consensus.set_index("consensus_id")
        centre_x = (boxes.x + boxes.width / 2).reindex(marks.consensus_id).to_numpy()
        centre_y = (boxes.y + boxes.height / 2).reindex(marks.consensus_id).to_numpy()
        # A point (no width or height) is its own centre.
        marks["dx"] = marks.x + marks.width.fillna(0) / 2 - centre_x
        marks["dy"] = marks.y + marks.height.fillna(0) / 2 - centre_y
        return marks

    def _with_box_agreement(self, marks: pd.DataFrame) -> pd.DataFrame:
        """The consensus with `consensus.agreement.box_agreement`'s columns (spread, error band).

        Counts a producer did not record are filled in from the data: ``n_votes`` as the
        marks linked to the box, ``n_seen`` as the volunteers who classified the subject.
        """
        consensus = self.consensus.copy()
        seen = self.classifications.groupby("subject_id").user.nunique()
        consensus["n_seen"] = consensus.n_seen.fillna(consensus.subject_id.map(seen).fillna(0)).astype("Int64")
        boxes = box_agreement(marks, consensus, self.links).set_index("consensus_id")
        consensus["n_votes"] = consensus.n_votes.fillna(consensus.consensus_id.map(boxes.n_votes)).astype("Int64")
        extra = [column for column in boxes.columns if column not in consensus.columns]
        return consensus.join(boxes[extra], on="consensus_id")

    def _subject_stats(self) -> pd.DataFrame:
        classifications = self.classifications.groupby("subject_id")
        marks = self.marks.groupby("subject_id")
        stats = pd.DataFrame({
            "n_classifications": classifications.size(),
            "n_volunteers": classifications.user.nunique(),
            "n_empty": (self.classifications.n_marks == 0).groupby(self.classifications.subject_id).sum(),
            "n_marks": marks.size(),
            "n_consensus": self.consensus.groupby("subject_id").size(),
            "max_votes": self.consensus.groupby("subject_id").n_votes.max(),
        }).reindex(self.subjects.subject_id)
        for column in ("n_classifications", "n_volunteers", "n_empty", "n_marks", "n_consensus", "max_votes"):
            stats[column] = stats[column].fillna(0).astype(np.int64)
        agreement_columns = ["mean_iou", "mean_distance", "unmatched_fraction", "n_below_quorum", "disagreement"]
        if self.has_links:
            # The disagreement score and its parts are the consensus layer's (see
            # consensus.agreement): one definition wherever the score is shown.
            agreement = subject_agreement(self.marks, self.consensus, self.links, self.classifications)
            stats = stats.join(agreement.set_index("subject_id")[agreement_columns])
        else:
            for column in agreement_columns:
                stats[column] = np.nan
        return self._with_subject_columns(stats.reset_index())

    def _with_subject_columns(self, stats: pd.DataFrame) -> pd.DataFrame:
        """Per-subject counts with each subject's numeric metadata and thumbnail URL."""
        extra = self.subjects.set_index("subject_id")[self.metadata_columns + ["thumbnail"]]
        return stats.join(extra, on="subject_id")

    @cached_property
    def volunteer_stats(self) -> pd.DataFrame:
        # Computed on first use (the Volunteers tab), once per process: it is the
        # costliest statistic, and most visits never need it.
        return self.volunteer_stats_of(None)

    def volunteer_stats_of(self, subject_ids=None) -> pd.DataFrame:
        """`volunteer_stats` counted over some subjects only (all when None): what a filtered view shows.

        A volunteer who classified none of them is left out.
        """
        classifications, marks, consensus, links = self.classifications, self.marks, self.consensus, self.links
        if subject_ids is not None:
            ids = np.asarray(subject_ids, dtype=np.int64)
            classifications = classifications[classifications.subject_id.isin(ids)]
            marks = marks[marks.subject_id.isin(ids)]
            consensus = consensus[consensus.subject_id.isin(ids)]
            links = links[links.mark_id.isin(marks.mark_id)]
        return self._volunteer_stats(classifications, marks, consensus, links)

    def _volunteer_stats(self, classifications: pd.DataFrame, marks: pd.DataFrame, consensus: pd.DataFrame,
                         links: pd.DataFrame) -> pd.DataFrame:
        by_user = classifications.groupby("user")
        stats = pd.DataFrame({
            "n_classifications": by_user.size(),
            "n_subjects": by_user.subject_id.nunique(),
            "n_marks": marks.groupby("user").size(),
            "empty_share": (classifications.n_marks == 0).groupby(classifications.user).mean(),
            "first_classification": by_user.created_at.min(),
            "last_classification": by_user.created_at.max(),
            "logged_in": classifications.user_id.notna().groupby(classifications.user).any(),
        })
        stats = stats[stats.n_classifications.notna()]
        stats["n_classifications"] = stats.n_classifications.astype(np.int64)
        stats["n_subjects"] = stats.n_subjects.astype(np.int64)
        stats["n_marks"] = stats.n_marks.fillna(0).astype(np.int64)
        stats["marks_per_classification"] = stats.n_marks / stats.n_classifications
        agreement = (volunteer_agreement(marks, consensus, links, classifications).set_index("user")
                     if self.has_links and len(classifications) else None)
        return volunteer_table(stats, agreement)

    @cached_property
    def thumbnails(self) -> Thumbnails:
        """The subjects' thumbnails with their marks drawn on, rendered once (`project.thumbnails`)."""
        return Thumbnails(self)

    @cached_property
    def machine(self):
        """The detections matched to the consensus (`project.machine.MachineComparison`); None without detections."""
        return None if self.detections is None else compare_detections(self.detections, self)

    @cached_property
    def consensus_source(self) -> str:
        """The name review decisions on this consensus are stored under: its boxes' fingerprint.

        `project.reviews.consensus_fingerprint` of the boxes, so another aggregation run (other
        boxes) gets its own decisions, and ``zoolens export --reviews`` finds these ones again
        from the same consensus.
        """
        return consensus_fingerprint(self.consensus)

    def _workflow_subjects(self) -> dict[str, np.ndarray]:
        """``"<workflow_id> v<version>"`` -> the subject ids classified in it."""
        # De-duplicate first: millions of classifications, a few workflow versions.
        seen = self.classifications[["workflow_id", "workflow_version", "subject_id"]].drop_duplicates()
        keys = seen.workflow_id.astype(str) + " v" + seen.workflow_version.astype(str)
        return {key: np.unique(ids.to_numpy()) for key, ids in seen.subject_id.groupby(keys.to_numpy())}

    # -- per subject, fast -----------------------------------------------------------------

    def marks_of(self, subject_id: int) -> pd.DataFrame:
        """The marks drawn on one subject (a slice of the sorted mark table)."""
        return self.marks.iloc[self._mark_index.rows(subject_id)]

    def vertices_of(self, mark_ids) -> pd.DataFrame:
        """The `mark_vertices` rows of some marks (a subject's: a few), in mark then vertex order."""
        ids = self.mark_vertices.mark_id.to_numpy()
        wanted = np.unique(np.asarray(mark_ids, dtype=np.int64))
        starts, stops = np.searchsorted(ids, wanted, "left"), np.searchsorted(ids, wanted, "right")
        lengths = stops - starts
        # Each wanted mark's run of rows, joined: starts repeated, plus the position within each run.
        rows = np.repeat(starts, lengths) + np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        return self.mark_vertices.iloc[rows]

    def subjects_with_tool(self, tool: str) -> np.ndarray:
        """Ids of the subjects with a mark drawn with the tool labelled ``tool``."""
        return np.unique(self.marks.subject_id[self.marks.tool_label == tool].to_numpy())

    def consensus_of(self, subject_id: int) -> pd.DataFrame:
        """The consensus boxes of one subject."""
        return self.consensus.iloc[self._consensus_index.rows(subject_id)]

    def subject(self, subject_id: int) -> pd.Series | None:
        """The subjects-table row of one subject, or None if unknown."""
        row = self._subject_row.get(subject_id)
        return None if row is None else self.subjects.iloc[int(row)]

    def stats_of(self, subject_id: int) -> pd.Series | None:
        """The `subject_stats` row of one subject, or None if unknown."""
        row = self._subject_row.get(subject_id)
        return None if row is None else self.subject_stats.iloc[int(row)]

    def image(self, subject_id: int, kind: str = "rendering") -> tuple[Image | None, str | None]:
        """A subject's image and, when there is none, why.

        Parameters
        ----------
        subject_id : int
        kind : {"rendering", "fits"}
            The first frame's location, or the subject's FITS image as the sky lookup
            finds it (`project.sky.SkyLookup`). Both are read through the project's `ImageStore`: paths
            confined to the image roots, URLs to the allowed hosts, sizes capped.

        Returns
        -------
        (Image or None, str or None)
            The image (top row first, WCS for FITS) or None with the reason.
        """
        subject = self.subject(subject_id)
        if subject is None:
            return None, f"subject {subject_id} is not in the project"
        if kind == "fits":
            path, outcome = self.sky.fits_path(subject_id)
            if path is None:
                found_none = outcome == NO_FITS
                return None, f"subject {subject_id} has no FITS file" if found_none else f"subject {subject_id}: {outcome}"
            location = str(path)
        else:
            location = self.picture_location(subject_id)
        if location is None:
            return None, f"subject {subject_id} has no image location"
        return self._open_image(location)

    def prefetch_pictures(self, subject_ids) -> None:
        """Start reading the pictures of ``subject_ids`` in the background (`PICTURE_READERS`): the subjects a
        reviewer is likely to open next, so that opening one does not wait for its image host. A picture being
        read already, or read before, is not read again; one asked for meanwhile waits for this read (or, if no
        thread has started it yet, is read by the thread asking)."""
        for subject_id in subject_ids:
            location = self.picture_location(int(subject_id))
            if location is not None:
                self._picture_read(location, PICTURE_READERS)

    def picture_read(self, subject_id: int) -> Future | None:
        """The read of a subject's picture (a future of what `image` gives), for a view that shows the picture when
        it comes: the one kept or under way, else one of a picture on an image host started on
        `SHOWN_PICTURE_READERS` (a read ahead still waiting for its thread is started there too), or a file in
        an image root read now, as is one the image store answers without asking its host (`ImageStore.asks_host`:
        refused, cached, or its host not answering); None when the subject has no picture location."""
        location = self.picture_location(subject_id)
        if location is None:
            return None
        remote = "://" in location and self.images.asks_host(location)
        return self._picture_read(location, SHOWN_PICTURE_READERS if remote else None)

    def _open_image(self, location: str) -> tuple[Image | None, str | None]:
        """`_read_image` of ``location`` once for every session and read ahead: read here, unless another thread
        is reading it (then its read is waited for)."""
        return self._picture_read(location, None).result()

    def _picture_read(self, location: str, readers: ThreadPoolExecutor | None) -> Future:
        """The read of the picture at ``location``: the one kept, else a new one; run on ``readers`` (None: in this
        thread) unless a thread has started it already."""
        mine = Future()
        read = self._pictures.get(location, lambda: mine)
        if readers is None:
            self._read_into(read, location)
        elif not (read.running() or read.done()):
            try:
                readers.submit(self._read_into, read, location)
            except RuntimeError:  # the process is ending (its pools take nothing more): the read is not needed
                pass
        return read

    def _read_into(self, read: Future, location: str) -> None:
        """Read the picture at ``location`` into ``read``, unless another thread has started it."""
        with self._lock:
            if read.running() or read.done():
                return
            read.set_running_or_notify_cancel()
        try:
            read.set_result(self._read_image(location))
        except BaseException as error:  # raised in every thread waiting for this read, and not kept
            self._pictures.discard(location, read)
            read.set_exception(error)

    def picture_location(self, subject_id: int) -> str | None:
        """Where the subject's picture is read from: its own file in an image root (`project.sky.SubjectFiles`)
        first, then the first location in the subject export; None when it has neither."""
        subject = self.subject(subject_id)
        if subject is None:
            return None
        local_file = self.subject_files.find(subject_id)
        if local_file is not None:
            return str(local_file)
        location = subject.locations.get("0") if isinstance(subject.locations, dict) else None
        return location if isinstance(location, str) and location else None

    def _read_image(self, location: str) -> tuple[Image | None, str | None]:
        try:
            return self.images.open(location), None
        except ImageFetchError as error:
            # The plain reason: the HTTP library's message (host, pool, errno) helps no one reading the page.
            problem = kind = error.reason
        except ImageRefused as error:
            problem, kind = str(error), error.reason
        except FormatError as error:
            problem, kind = str(error), "not a readable image"
        except FileNotFoundError as error:
            problem, kind = str(error), "image file not found"
        except OSError as error:
            problem, kind = str(error), "image file not readable"
        with self._lock:
            self.image_problems[location] = kind
        return None, problem

    def unavailable_thumbnails(self) -> set[str]:
        """The thumbnail URLs (`THUMBNAIL_ROUTE`) of remote pictures that could not be had: a page shows the grey
        square for them rather than ask again (`remote_thumbnail` would only answer that it has none)."""
        with self._lock:
            failed = list(self.image_problems)
        return {f"{THUMBNAIL_ROUTE}/{_remote_thumbnail_name(url)}" for url in failed if "://" in url}

    def image_problem_counts(self) -> dict[str, int]:
        """Images that could not be shown so far, by reason ("image host not reachable": 3), the most common
        first and ties by name (not by which of the thumbnail makers' threads met its reason first)."""
        with self._lock:
            counts = Counter(self.image_problems.values())
        return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def _vertices_of_marks(mark_vertices: pd.DataFrame | None, mark_ids: np.ndarray) -> pd.DataFrame:
    """``mark_vertices`` conformed, of the given marks only, sorted by mark and vertex (empty when None)."""
    if mark_vertices is None:
        return empty_table("mark_vertices")
    vertices = conform(mark_vertices, "mark_vertices")
    vertices = vertices[np.isin(vertices.mark_id.to_numpy(), mark_ids)]
    return vertices.sort_values(["mark_id", "vertex"], kind="stable", ignore_index=True)


def thumbnail_dir() -> Path:
    """Where the table's thumbnails of subjects' own pictures are kept: ``cache_dir()/table-thumbnails``.

    Apart from the gallery's (`project.thumbnails`, marks drawn on): these are the plain pictures.
    """
    return cache_dir() / "table-thumbnails"


def _thumbnail(path: Path, store: ImageStore) -> Path | None:
    """The file in `thumbnail_dir` of a small PNG of the image at ``path``, made once; None if unreadable.

    Named after the image's path, size and modification time, so a changed image gets a new one.
    """
    try:
        resolved = store.local_path(str(path))
        status = resolved.stat()
    except (ImageRefused, OSError):
        return None
    key = f"{resolved}\0{status.st_size}\0{status.st_mtime_ns}\0{THUMBNAIL_SIDE}"
    name = hashlib.sha256(key.encode()).hexdigest()[:32] + ".png"
    target = thumbnail_dir() / name
    if target.is_file():
        return target
    try:
        image = read_image_bytes(resolved.read_bytes(), str(resolved), store.max_pixels)
    except (ImageRefused, FormatError, OSError):
        return None
    _save_thumbnail(image, target)
    return target


def _remote_thumbnail_name(url: str) -> str:
    """The file name in `thumbnail_dir` of the thumbnail of the picture at ``url`` (a URL's picture never changes
    on the Zooniverse upload hosts; `ImageStore` caches it by URL too)."""
    return hashlib.sha256(f"{url}\0{THUMBNAIL_SIDE}".encode()).hexdigest()[:32] + ".png"


def _save_thumbnail(image: Image, target: Path) -> None:
    """``image`` shrunk to at most `THUMBNAIL_SIDE` pixels a side, written to ``target`` whole or not at all."""
    from PIL import Image as PillowImage

    picture = PillowImage.fromarray(display_pixels(image.array))
    picture.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_suffix(f".{threading.get_ident()}.partial")
    picture.save(staging, format="PNG")
    staging.replace(target)


def display_pixels(pixels: np.ndarray) -> np.ndarray:
    """A decoded image as 8-bit RGB(A): grey levels repeated, grey+alpha dropped to grey, other
    depths (FITS, 16-bit) scaled between their 0.5 and 99.8 percentiles."""
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[:, :, None], 3, axis=2)
    elif pixels.shape[2] == 2:
        pixels = np.repeat(pixels[:, :, :1], 3, axis=2)
    if pixels.dtype != np.uint8:
        pixels = (np.nan_to_num(normalised(pixels.astype(np.float32))) * 255).astype(np.uint8)
    return pixels


def normalised(pixels: np.ndarray) -> np.ndarray:
    """Pixel values scaled to 0-1 between their 0.5 and 99.8 percentiles (NaN ignored)."""
    low, high = np.nanpercentile(pixels, [0.5, 99.8])
    return np.clip((pixels - low) / ((high - low) or 1.0), 0.0, 1.0)


class _SubjectIndex:
    """Row numbers of a table grouped by subject, found by binary search.

    The table itself stays in its order: sorting millions of marks (every column)
    costs seconds, sorting two integer columns' row numbers a fraction of that.
    """

    def __init__(self, subject_ids: np.ndarray, row_ids: np.ndarray):
        self.order = np.lexsort((row_ids, subject_ids))
        self.ids, self.starts = np.unique(subject_ids[self.order], return_index=True)
        self.stops = np.r_[self.starts[1:], len(self.order)]

    def rows(self, subject_id: int) -> np.ndarray:
        """Row numbers of one subject's rows, in row-id order (none for an unknown subject)."""
        position = np.searchsorted(self.ids, subject_id)
        if position < len(self.ids) and self.ids[position] == subject_id:
            return self.order[self.starts[position]:self.stops[position]]
        return self.order[:0]


