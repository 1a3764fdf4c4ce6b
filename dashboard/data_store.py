"""The dashboard's data: one read-only `Project` per process, one `DataStore` per session.

Panel's "structure a data store" pattern:

- `Project` holds the canonical tables (`data_loaders.schema`) of one project and
  what is derived from them once (marks joined with their consensus box, per-subject
  and per-volunteer statistics from `consensus.agreement`, thumbnail URLs, an image
  store confined to the image roots). Every session shares it, so nothing ever
  mutates it.
- `load_project` reads a project's files into a Project (a served app does it once per
  process, in the background: `dashboard.loading.shared_load`).
- `DataStore` is a `Viewer` made per session: its ``param`` parameters are that
  session's filters, current subject, plot selection and volunteer; its ``subjects``
  output holds the subjects passing the filters, and its panel is the sidebar.

No file is parsed here: tables come from `data_loaders` and `consensus`.
"""

from __future__ import annotations

import html
import posixpath
import threading
import urllib.parse
import weakref
from collections.abc import Sequence
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import panel as pn
import param
from panel.viewable import Viewer

from consensus import aggregate, match
from consensus.agreement import box_agreement, subject_agreement, volunteer_agreement
from data_loaders.base import FormatError
from data_loaders.images import Image, ImageFetchError, ImageRefused, ImageStore
from data_loaders.schema import conform, empty_table

from .reviews import GEOMETRY, SUBJECT_STATUSES, ReviewStore, consensus_fingerprint

if TYPE_CHECKING:
    from .loading import LoadProgress

#: URL route under which a served app publishes image root number i: ``zoolens-images/<i>/``.
IMAGE_ROUTE = "zoolens-images"

#: The value of a selector filter that keeps everything.
ANY = "any"

#: Subject columns never offered as metadata filters, though numeric.
NOT_METADATA = {"subject_id", "width", "height", "retired", "project_id", "workflow_id", "subject_set_id",
                "classifications_count", "n_frames"}


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
    reports : sequence of LoadReport
        How the tables were read, shown to the user.
    title : str
        Shown in the app's header.

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
        layer's mean IoU, unmatched fraction, boxes below quorum and disagreement
        score (`consensus.agreement.subject_agreement`); numeric metadata,
        ``thumbnail`` URL.
    volunteer_stats : DataFrame
        (Computed on first use.) One row per volunteer: classifications, subjects, marks, marks per
        classification, empty share, first and last classification time, logged
        in or not, and with links precision, recall, mean IoU, unmatched rate and
        double marks (`consensus.agreement.volunteer_agreement`).
    """

    def __init__(self, classifications: pd.DataFrame, marks: pd.DataFrame,
                 subjects: pd.DataFrame | None = None, consensus: pd.DataFrame | None = None,
                 links: pd.DataFrame | None = None, image_roots: Sequence[str | Path] = (),
                 reports: Sequence = (), title: str = "zoolens"):
        self.title = title
        self.reports = tuple(reports)
        self.image_roots = tuple(Path(root).resolve() for root in image_roots)
        self.images = ImageStore(roots=self.image_roots)
        # Per project, so every session shares the decoded images; a few hundred subjects.
        self._open_image = lru_cache(maxsize=256)(self._read_image)
        self.classifications = conform(classifications, "classifications")
        self.consensus = (conform(consensus, "consensus") if consensus is not None
                          else empty_table("consensus")).sort_values(["subject_id", "consensus_id"],
                                                                     ignore_index=True)
        marks = conform(marks, "marks")
        if links is None and consensus is not None:
            # A consensus from elsewhere: link each mark to the box it supports.
            links = match(marks, self.consensus)
        self.has_links = links is not None
        self.links = conform(links, "links") if links is not None else empty_table("links")
        self.subjects = self._subjects(subjects)
        # Made with the project, in the loading thread, not by the first image request on the event loop.
        self._published_images = self._image_routes()
        self.marks = self._marks(marks)
        if self.has_links:
            self.consensus = self._with_box_agreement(marks)
        self.metadata_columns = [
            column for column in self.subjects.columns
            if column not in NOT_METADATA and pd.api.types.is_numeric_dtype(self.subjects[column])
            and not pd.api.types.is_bool_dtype(self.subjects[column]) and self.subjects[column].notna().any()
            # The subject loader keeps a recognised ra/dec pair as ra, dec (degrees) and the
            # raw values as metadata_ra, metadata_dec: offer each quantity once.
            and not (column.startswith("metadata_") and column.removeprefix("metadata_") in self.subjects.columns)
        ]
        self.subject_stats = self._subject_stats()
        self.workflows = self._workflow_subjects()
        self.tools = sorted(self.marks.tool_label.dropna().unique().tolist())
        self._mark_index = _SubjectIndex(self.marks.subject_id.to_numpy(), self.marks.mark_id.to_numpy())
        self._consensus_index = _SubjectIndex(self.consensus.subject_id.to_numpy(),
                                              self.consensus.consensus_id.to_numpy())
        self._subject_row = pd.Series(np.arange(len(self.subjects)), index=self.subjects.subject_id.to_numpy())

    # -- derived once ----------------------------------------------------------------------

    def _subjects(self, subjects: pd.DataFrame | None) -> pd.DataFrame:
        if subjects is None:
            ids = np.unique(self.classifications.subject_id.to_numpy())
            subjects = pd.DataFrame({"subject_id": ids, "locations": [{} for _ in ids], "width": np.nan,
                                     "height": np.nan, "retired": pd.NA})
        subjects = conform(subjects, "subjects").sort_values("subject_id", ignore_index=True)
        first_location = subjects.locations.map(
            lambda locations: locations.get("0") if isinstance(locations, dict) else None)
        return subjects.assign(thumbnail=[self._thumbnail_url(location) for location in first_location])

    def _thumbnail_url(self, location) -> str:
        """Where a browser gets a subject's image ("" if nowhere it may).

        A local path is published under the image route (`_route_path`), an http(s)
        URL on an allowed host is used as it is. Paths are percent-quoted, so a
        location cannot climb out of the HTML attribute.
        """
        if not isinstance(location, str) or not location:
            return ""
        if "://" in location:
            try:
                self.images.check_url(location)
            except ImageRefused:
                return ""
            return urllib.parse.quote(location, safe=":/?&=%#")
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
        roots once symbolic links are resolved (`ImageStore.local_path`); None otherwise.
        """
        location = self._published_images.get(route_path)
        if location is None:
            return None
        try:
            return self.images.local_path(location)
        except (ImageRefused, OSError):
            return None

    def _marks(self, marks: pd.DataFrame) -> pd.DataFrame:
        marks = marks.merge(self.links[["mark_id", "consensus_id", "iou"]], on="mark_id", how="left")
        marks["consensus_id"] = marks.consensus_id.fillna(-1).astype(np.int64)
        created = self.classifications.set_index("classification_id").created_at
        marks["created_at"] = marks.classification_id.map(created)
        marks["size"] = np.sqrt(marks.width * marks.height)
        boxes = self.consensus.set_index("consensus_id")
        centre_x = (boxes.x + boxes.width / 2).reindex(marks.consensus_id).to_numpy()
        centre_y = (boxes.y + boxes.height / 2).reindex(marks.consensus_id).to_numpy()
        marks["dx"] = marks.x + marks.width / 2 - centre_x
        marks["dy"] = marks.y + marks.height / 2 - centre_y
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
        agreement_columns = ["mean_iou", "unmatched_fraction", "n_below_quorum", "disagreement"]
        if self.has_links:
            # The disagreement score and its parts are the consensus layer's (see
            # consensus.agreement): one definition wherever the score is shown.
            agreement = subject_agreement(self.marks, self.consensus, self.links, self.classifications)
            stats = stats.join(agreement.set_index("subject_id")[agreement_columns])
        else:
            for column in agreement_columns:
                stats[column] = np.nan
        stats = stats.reset_index()
        extra = self.subjects.set_index("subject_id")[self.metadata_columns + ["thumbnail"]]
        return stats.join(extra, on="subject_id")

    @cached_property
    def volunteer_stats(self) -> pd.DataFrame:
        # Computed on first use (the Volunteers tab), once per process: it is the
        # costliest statistic, and most visits never need it.
        classifications = self.classifications.groupby("user")
        marks = self.marks.groupby("user")
        stats = pd.DataFrame({
            "n_classifications": classifications.size(),
            "n_subjects": classifications.subject_id.nunique(),
            "n_marks": marks.size(),
            "empty_share": (self.classifications.n_marks == 0).groupby(self.classifications.user).mean(),
            "first_classification": classifications.created_at.min(),
            "last_classification": classifications.created_at.max(),
            "logged_in": self.classifications.user_id.notna().groupby(self.classifications.user).any(),
        })
        stats["n_marks"] = stats.n_marks.fillna(0).astype(np.int64)
        stats["marks_per_classification"] = stats.n_marks / stats.n_classifications
        agreement_columns = ["precision", "recall", "mean_iou", "unmatched_rate", "n_double_marks"]
        if self.has_links:
            agreement = volunteer_agreement(self.marks, self.consensus, self.links, self.classifications)
            stats = stats.join(agreement.set_index("user")[agreement_columns])
        else:
            for column in agreement_columns:
                stats[column] = np.nan
        stats.index.name = "user"
        return stats.reset_index().sort_values(["n_classifications", "user"], ascending=[False, True],
                                               ignore_index=True)

    @cached_property
    def consensus_source(self) -> str:
        """The name review decisions on this consensus are stored under: its boxes' fingerprint.

        `dashboard.reviews.consensus_fingerprint` of the boxes, so another aggregation run (other
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
            The first frame's location, or the FITS file named by the ``fits_file``
            metadata column. Both are read through the project's `ImageStore`: paths
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
            location = subject.get("fits_file")
        else:
            locations = subject.locations if isinstance(subject.locations, dict) else {}
            location = locations.get("0")
        if not isinstance(location, str) or not location:
            return None, f"subject {subject_id} has no {'FITS file' if kind == 'fits' else 'image location'}"
        return self._open_image(location)

    def _read_image(self, location: str) -> tuple[Image | None, str | None]:
        try:
            return self.images.open(location), None
        except (ImageRefused, ImageFetchError, FormatError, OSError) as error:
            return None, str(error)


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


def load_project(paths: Sequence[str | Path], consensus: str | Path | None = None,
                 workflow_id: int | None = None, workflow_version: str | None = None,
                 image_roots: Sequence[str | Path] | None = None, title: str | None = None,
                 method: str | None = None, progress: LoadProgress | None = None, **method_params) -> Project:
    """Read project files with `data_loaders` into a `Project`.

    Parameters
    ----------
    paths : sequence of path
        Any files the loaders identify: classification, subject and workflow exports,
        consensus files. Tables of the same kind from several files are concatenated
        (subjects de-duplicated by id).
    consensus : path, optional
        A consensus file (any format the loaders read), read after ``paths``.
    workflow_id, workflow_version : optional
        Keep only this workflow (and version) of the classification exports.
    image_roots : sequence of path, optional
        Folders image files may be read from, relative locations resolving against the
        first; default `default_image_roots` of the files.
    title : str, optional
        Shown in the app's header; default the first file's name.
    method : str, optional
        When no file holds a consensus: make one with `consensus.aggregate` and this
        method (``"iou"``, ``"lean"``), with ``method_params``.
    progress : dashboard.loading.LoadProgress, optional
        Told each stage (the file being read, with its rows as the loader reads them,
        the consensus, the statistics) and each file's report, for a progress bar.
    """
    import data_loaders

    files = [Path(path) for path in paths] + ([Path(consensus)] if consensus is not None else [])
    if progress is not None:
        progress.plan(len(files) + 1)
    tables: dict[str, list[pd.DataFrame]] = {}
    reports = []
    for number, path in enumerate(files, start=1):
        if progress is not None:
            progress.stage(f"Reading {path.name} (file {number} of {len(files)})")
        format = data_loaders.identify_format(path)
        options = ({"workflow_id": workflow_id, "workflow_version": workflow_version}
                   if format == "classifications" else {})
        if format == "classifications" and progress is not None:
            options["progress"] = progress.rows
        result = data_loaders.read(path, format=format, **options)
        reports.append(result.report)
        if progress is not None:
            progress.report(result.report)
        for name, table in result.tables.items():
            tables.setdefault(name, []).append(table)
    if "classifications" not in tables:
        raise ValueError(f"no classification export among {', '.join(str(path) for path in files)}; "
                         "zoolens needs one to show what volunteers drew")

    def combined(name):
        return pd.concat(tables[name], ignore_index=True) if name in tables else None

    classifications, marks = combined("classifications"), combined("marks")
    consensus_table, links = combined("consensus"), combined("links")
    if consensus_table is None and method is not None:
        if progress is not None:
            progress.plan(1)
            progress.stage(f"Making the consensus ({method} method) of {len(marks):,} marks")
        result = aggregate(marks, classifications, method=method, **method_params)
        consensus_table, links = result.consensus, result.links
    subjects = combined("subjects")
    if subjects is not None:
        subjects = subjects.drop_duplicates("subject_id", ignore_index=True)
    if image_roots is None:
        image_roots = default_image_roots(files)
    if progress is not None:
        progress.stage("Building the statistics of subjects and consensus boxes")
    return Project(classifications, marks, subjects=subjects, consensus=consensus_table, links=links,
                   image_roots=image_roots, reports=reports, title=title or files[0].name)


def default_image_roots(files: Sequence[str | Path]) -> list[Path]:
    """Folders a project's images may be read from when none are given.

    Relative image locations are relative to the subject export, so the subject
    exports' folders come first, then the other files' folders. Known before any
    file is read (a server publishes them as it starts); a file whose format
    cannot be identified counts as not a subject export (reading it reports why).
    """
    import data_loaders

    def is_subject_export(path: Path) -> bool:
        try:
            return data_loaders.identify_format(path) == "subjects"
        except (OSError, ValueError):
            return False

    files = [Path(path).resolve() for path in files]
    subject_folders = [path.parent for path in files if is_subject_export(path)]
    return list(dict.fromkeys([*subject_folders, *(path.parent for path in files)]))


#: Review store -> consensus source -> (decision id, box status, subject status) as last read: one
#: read of the store per new decision for the whole process, however many sessions show it.
_REVIEW_STATE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_REVIEW_STATE_LOCK = threading.Lock()


def shared_review_state(reviews: ReviewStore, project: Project, latest: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The review state of ``project``'s consensus as of decision ``latest`` or newer, shared read-only.

    Parameters
    ----------
    reviews : ReviewStore
    project : Project
    latest : int
        The newest decision id the caller knows of (`ReviewStore.last_decision_id`).

    Returns
    -------
    (DataFrame, DataFrame)
        `ReviewStore.box_status` indexed by subject_id and consensus_id, and
        `ReviewStore.subject_status` with the project's consensus. Never mutate them.
    """
    source = project.consensus_source
    # One session reads while the others wait for its result rather than read the same again.
    with _REVIEW_STATE_LOCK:
        known = _REVIEW_STATE.setdefault(reviews, {}).get(source)
        if known is None or known[0] < latest:
            boxes = reviews.box_status(source).set_index(["subject_id", "consensus_id"])
            known = (latest, boxes, reviews.subject_status(source, project.consensus))
            _REVIEW_STATE[reviews][source] = known
    return known[1], known[2]


class DataStore(Viewer):
    """One session's view of a shared project: filters, current subject, selection.

    Its panel is the sidebar of filter widgets, generated from the parameters.
    """

    project = param.ClassSelector(class_=Project, constant=True, doc="The shared, read-only project.")
    workflow = param.Selector(default=ANY, objects=[ANY], doc="Keep subjects classified in this workflow version.")
    tool = param.Selector(default=ANY, objects=[ANY], doc="Show only marks of this tool.")
    min_votes = param.Integer(default=0, bounds=(0, None),
                              doc="Keep subjects with a consensus box of at least this many votes.")
    min_volunteers = param.Integer(default=0, bounds=(0, None),
                                   doc="Keep subjects seen by at least this many volunteers.")
    disagreement = param.Range(default=(0.0, 1.0), bounds=(0.0, 1.0),
                               doc="Keep subjects whose disagreement score lies in this range.")
    metadata_ranges = param.Dict(default={}, doc="Metadata column -> (low, high): keep subjects inside.")
    selection = param.Array(default=None, allow_None=True,
                            doc="Subject ids picked in a plot (None: no plot selection).")
    subject = param.Integer(default=None, allow_None=True, doc="The subject shown in the cutout viewer.")
    volunteer = param.String(default=None, allow_None=True, doc="The volunteer whose marks are listed.")
    subjects = param.DataFrame(default=None, doc="Output: statistics of the subjects passing the filters, "
                                                 "most disagreement first.")
    # -- review sessions: decisions live in the shared store; these are this session's view of them.
    reviews = param.ClassSelector(class_=ReviewStore, default=None, allow_None=True, constant=True,
                                  doc="The review store every session of the process shares (None: no reviewing).")
    reviewer = param.String(default="", doc="Who this session's review decisions are attributed to.")
    review_status = param.Selector(default=ANY, objects=[ANY, *SUBJECT_STATUSES],
                                   doc="Keep subjects with this review status.")
    review_statuses = param.DataFrame(default=None, doc="Output: `ReviewStore.subject_status` of the project's "
                                                        "consensus, as last read.")
    last_decision = param.Integer(default=0, doc="Output: the newest decision id read from the review store.")
    review_box = param.Integer(default=None, allow_None=True,
                               doc="The current subject's box picked for review (negative: added by a reviewer).")
    drawn_box = param.NumericTuple(default=None, allow_None=True, length=4,
                                   doc="A box the reviewer drew on the cutout, for a redraw or an added box: "
                                       "x, y, width, height in image pixels (y down).")
    reviewer_signed_in = param.Boolean(default=False, constant=True,
                                       doc="The reviewer is the server's authenticated user, not a typed name.")

    def __init__(self, **params):
        super().__init__(**params)
        project = self.project
        self.param.workflow.objects = [ANY, *project.workflows]
        self.param.tool.objects = [ANY, *project.tools]
        self._box_status = None
        self._reviewed_memo = None
        with param.discard_events(self):
            self._read_reviews()
        self._update_subjects()
        if self.subject is None and len(self.subjects):
            self.subject = int(self.subjects.subject_id.iloc[0])

    @param.depends("subject", watch=True)
    def _forget_drawn_box(self):
        """A drawn box belongs to the subject it was drawn on."""
        self.drawn_box = None

    @param.depends("workflow", "tool", "min_votes", "min_volunteers", "disagreement", "metadata_ranges",
                   "selection", watch=True)
    def _update_subjects(self):
        stats = self.project.subject_stats
        stats = stats.assign(review_status=self.review_status_of(stats.subject_id).array)
        keep = np.ones(len(stats), dtype=bool)
        if self.workflow != ANY:
            keep &= stats.subject_id.isin(self.project.workflows[self.workflow]).to_numpy()
        if self.tool != ANY:
            with_tool = self.project.marks.subject_id[self.project.marks.tool_label == self.tool]
            keep &= stats.subject_id.isin(with_tool).to_numpy()
        keep &= (stats.n_volunteers >= self.min_volunteers).to_numpy()
        if self.min_votes > 0:
            keep &= (stats.max_votes >= self.min_votes).to_numpy()
        low, high = self.disagreement
        if (low, high) != self.param.disagreement.bounds:
            keep &= stats.disagreement.between(low, high).to_numpy()
        for column, (low, high) in self.metadata_ranges.items():
            keep &= stats[column].between(low, high).to_numpy()
        if self.selection is not None:
            keep &= stats.subject_id.isin(self.selection).to_numpy()
        if self.review_status != ANY:
            keep &= (stats.review_status == self.review_status).to_numpy()
        self.subjects = stats[keep].sort_values(["disagreement", "subject_id"], ascending=[False, True],
                                                na_position="last", ignore_index=True)

    @param.depends("review_status", "review_statuses", watch=True)
    def _review_filter_changed(self):
        self._update_subjects()

    # -- review decisions ------------------------------------------------------------------

    def _read_reviews(self, latest: int | None = None) -> None:
        """Read the subjects' and boxes' review state from the store (the newest decision ``latest``)."""
        if self.reviews is None:
            self.review_statuses = pd.DataFrame({"subject_id": pd.Series(dtype=np.int64),
                                                 "status": pd.Series(dtype="string")})
            return
        latest = self.reviews.last_decision_id() if latest is None else latest
        self._box_status, self.review_statuses = shared_review_state(self.reviews, self.project, latest)
        self.last_decision = latest

    def refresh_reviews(self) -> bool:
        """Read the review state again if anyone decided since the last read.

        Cheap when nothing changed (one ``max(id)`` query), so a served session calls it
        periodically; the session that decides calls it at once.

        Returns
        -------
        bool
            Whether there were new decisions.
        """
        if self.reviews is None:
            return False
        latest = self.reviews.last_decision_id()
        if latest == self.last_decision:
            return False
        self._read_reviews(latest)
        return True

    def review_status_of(self, subject_ids) -> pd.Series:
        """The review status of each subject id (unreviewed when the store knows nothing of it)."""
        statuses = self.review_statuses.set_index("subject_id")["status"]
        return (pd.Series(np.asarray(subject_ids, dtype=np.int64)).map(statuses)
                .fillna("unreviewed").astype("string"))

    def picked_box_id(self, boxes: pd.DataFrame | None = None) -> int | None:
        """The box under review: ``review_box`` when it is one of the current subject's boxes, else the first.

        Derived rather than set on every subject change, so switching subject redraws
        the cutout once, not twice. ``boxes`` is `reviewed_consensus_of` when the caller
        has it already. None when the subject has no box.
        """
        ids = (self.reviewed_consensus_of() if boxes is None else boxes).consensus_id
        if self.review_box is not None and (ids == self.review_box).any():
            return self.review_box
        return int(ids.iloc[0]) if len(ids) else None

    def reviewed_consensus_of(self, subject_id: int | None = None) -> pd.DataFrame:
        """A subject's consensus boxes as reviewed: the boxes passing ``min_votes`` and those reviewers added.

        Returns
        -------
        DataFrame
            ``consensus_id`` (negative for added boxes), ``status`` (unreviewed, accepted,
            rejected, redrawn, added), the effective geometry ``x`` ... ``angle`` (redrawn
            boxes at their new place), the aggregated geometry ``original_x`` ...
            ``original_angle`` (NaN for added boxes), ``n_votes``, ``n_seen``, and the last
            decision's ``reviewer`` and ``decided_at``. Shared with other callers: do not modify it.
        """
        subject_id = self.subject if subject_id is None else subject_id
        # The cutout's layers and the review panel each ask for it on every subject switch;
        # it only changes with the subject, the vote threshold or a new reading of the store.
        # The memo holds the status table itself, compared by identity: a new reading is a new table.
        memo = self._reviewed_memo
        if memo is None or memo[:2] != (subject_id, self.min_votes) or memo[2] is not self._box_status:
            memo = self._reviewed_memo = (subject_id, self.min_votes, self._box_status,
                                          self._reviewed_consensus(subject_id))
        return memo[3]

    def _reviewed_consensus(self, subject_id: int | None) -> pd.DataFrame:
        boxes = self.consensus_of(subject_id)
        columns = ["subject_id", "consensus_id", *GEOMETRY, "n_votes", "n_seen"]
        reviewed = boxes[columns].assign(status="unreviewed", reviewer=None)
        reviewed["decided_at"] = pd.Series(pd.NaT, index=reviewed.index, dtype="datetime64[ns, UTC]")
        for name in GEOMETRY:
            reviewed[f"original_{name}"] = reviewed[name]
        if self._box_status is None or subject_id is None:
            return reviewed.reset_index(drop=True)
        decided = self._box_status.loc[self._box_status.index.get_level_values("subject_id") == subject_id]
        decided = decided.reset_index()
        on_aggregated = decided[decided.consensus_id.isin(reviewed.consensus_id)].set_index("consensus_id")
        state = ["status", *GEOMETRY, "reviewer", "decided_at"]
        reviewed = reviewed.set_index("consensus_id")
        reviewed.loc[on_aggregated.index, state] = on_aggregated[state]
        added = decided[decided.consensus_id < 0].assign(n_votes=pd.NA, n_seen=pd.NA)
        reviewed = pd.concat([reviewed.reset_index(), added[reviewed.reset_index().columns]], ignore_index=True)
        return reviewed.astype({"n_votes": "Int64", "n_seen": "Int64", "status": "string"})

    # -- what the views ask for ------------------------------------------------------------

    def marks_of(self, subject_id: int | None = None) -> pd.DataFrame:
        """Marks of a subject (default: the current one) passing the tool filter."""
        subject_id = self.subject if subject_id is None else subject_id
        if subject_id is None:
            return self.project.marks.iloc[0:0]
        marks = self.project.marks_of(subject_id)
        return marks if self.tool == ANY else marks[marks.tool_label == self.tool]

    def consensus_of(self, subject_id: int | None = None) -> pd.DataFrame:
        """Consensus boxes of a subject (default: the current one) with at least ``min_votes``."""
        subject_id = self.subject if subject_id is None else subject_id
        if subject_id is None:
            return self.project.consensus.iloc[0:0]
        boxes = self.project.consensus_of(subject_id)
        # Boxes whose producer recorded no vote count pass only the "any" threshold.
        return boxes[(boxes.n_votes.fillna(0) >= self.min_votes).to_numpy(dtype=bool)]

    def filtered_marks(self) -> pd.DataFrame:
        """Marks of every subject passing the filters (for the agreement plots)."""
        marks = self.project.marks
        if len(self.subjects) < len(self.project.subject_stats):
            marks = marks[marks.subject_id.isin(self.subjects.subject_id)]
        return marks if self.tool == ANY else marks[marks.tool_label == self.tool]

    def filtered_consensus(self) -> pd.DataFrame:
        """Consensus boxes of every subject passing the filters, with at least ``min_votes``."""
        boxes = self.project.consensus
        boxes = boxes[(boxes.n_votes.fillna(0) >= self.min_votes).to_numpy(dtype=bool)]
        if len(self.subjects) < len(self.project.subject_stats):
            boxes = boxes[boxes.subject_id.isin(self.subjects.subject_id)]
        return boxes

    def step_subject(self, step: int) -> None:
        """Move the current subject ``step`` places along the filtered subjects (wrapping)."""
        ids = self.subjects.subject_id.to_numpy()
        if not len(ids):
            return
        here = np.flatnonzero(ids == self.subject)
        position = (int(here[0]) + step) % len(ids) if len(here) else 0
        self.subject = int(ids[position])

    def clear_selection(self) -> None:
        self.selection = None

    # -- the sidebar -----------------------------------------------------------------------

    def __panel__(self):
        filters = pn.Param(
            self, parameters=["workflow", "tool", "min_votes", "min_volunteers", "disagreement"],
            widgets={"workflow": {"width": 250}, "tool": {"width": 250}, "min_votes": {"width": 250},
                     "min_volunteers": {"width": 250},
                     "disagreement": {"type": pn.widgets.RangeSlider, "step": 0.01, "width": 250}},
            show_name=False, width=260,
        )
        metadata_sliders = [self._metadata_slider(column) for column in self.project.metadata_columns]
        clear = pn.widgets.Button(label="Clear plot selection", width=250)
        clear.on_click(lambda event: self.clear_selection())
        return pn.Column(
            filters, *metadata_sliders, *self._review_widgets(),
            pn.panel(self._counts, sizing_mode="stretch_width"),
            clear, sizing_mode="stretch_width",
        )

    def _review_widgets(self) -> list:
        """The review-status filter and who decides: a name box, unless the server signed the user in."""
        if self.reviews is None:
            return []
        status = pn.widgets.Select.from_param(self.param.review_status, name="Review status", width=250)
        if self.reviewer_signed_in:
            # The name comes from the authentication provider, still text: escaped into HTML.
            who = pn.pane.HTML(f"Reviewing as <b>{html.escape(self.reviewer)}</b>", width=250)
        else:
            who = pn.widgets.TextInput.from_param(self.param.reviewer, name="Your name (reviewer)", width=250,
                                                  placeholder="needed to record decisions")
        return [status, who]

    def _metadata_slider(self, column: str):
        values = self.project.subject_stats[column].dropna()
        low, high = float(values.min()), float(values.max())
        slider = pn.widgets.RangeSlider(label=column, start=low, end=high, value=(low, high),
                                        step=(high - low) / 200 or 1.0, width=250)

        def update(event):
            ranges = dict(self.metadata_ranges)
            if event.new == (low, high):
                ranges.pop(column, None)
            else:
                ranges[column] = event.new
            self.metadata_ranges = ranges

        slider.param.watch(update, "value")
        return slider

    @param.depends("subjects")
    def _counts(self) -> str:
        total = len(self.project.subject_stats)
        selected = "" if self.selection is None else " (plot selection active)"
        return f"**{len(self.subjects):,}** of {total:,} subjects{selected}"
