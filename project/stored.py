"""A project backed by its partitioned store: the marks stay on disk (or on a Dask cluster), not in memory.

`StoredProject` is a `project.core.Project` whose large per-mark tables (``marks`` with their
links to the consensus, ``links``, ``mark_vertices``) are Dask DataFrames over the store's Parquet
parts, while what is small stays in memory as in the in-memory project: the subjects, the
per-subject and per-volunteer statistics (computed once, when the store is written, and kept in
it), the consensus boxes, the classifications and any machine detections. Every view and export asks the same questions of
either kind of project:

- one subject's rows (`marks_of`, `vertices_of`, `consensus_of`) are read from the row groups of
  the store's part that hold them (`project.store.ProjectStore.of_subject`);
- whole-table questions get Dask DataFrames (aggregated partition by partition, on the cluster when a
  `dask.distributed.Client` is active) and turn small results into pandas with `computed`; the
  agreement plots read the store's flat per-mark columns instead (`project.plotted`).

A store is written part by part, never whole in memory: `write_project_parts` takes ranges of whole
subjects (from an export, `write_export_store`; from a generator; or cut from a loaded project,
`write_project_store`), makes each part's consensus and statistics as a `Project` of that part and
reduces the volunteer statistics across parts, then writes the agreement plots' flat per-mark columns
(`project.plotted.write_plotted_columns`) and density grids (`write_density_grids`). `StoredProject(folder)` opens a store; `project.load_project(..., store=FOLDER)`
does both.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Mapping, Sequence
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from consensus.distributed import is_dask
from data_loaders.base import LoadReport
from data_loaders.images import DEFAULT_ALLOWED_HOSTS
from data_loaders.writers import _json_safe

from consensus.agreement import AGREEMENT_SUMS, volunteer_agreement_sums, volunteer_rates
from data_loaders.schema import TABLES, empty_table

from .core import Project, _SubjectIndex, volunteer_table
from .plotted import BUCKET_STATISTIC, PLOTS, PlottedMarks, write_plotted_columns
from .recent import RecentlyUsed
from .store import PART_ROWS, ProjectStore, StoreWriter, export_parts

#: File in a store folder saying how the project was made; present once the store is complete.
PROJECT_FILE = "project.json"

#: File in a store folder listing the subjects of each workflow and version (`Project.workflows`), so that
#: opening a store never reads the classifications (read on first use: `StoredProject.classifications`).
WORKFLOW_SUBJECTS_FILE = "workflow_subjects.parquet"

#: File in a store folder holding the agreement plots' density grids of the whole project (`write_density_grids`).
DENSITY_FILE = "density.npz"

#: Size of a density grid (columns, rows): the agreement plot's default frame (320 x 240 screen pixels),
#: so the unfiltered plot shows each grid cell as one pixel.
DENSITY_SHAPE = (320, 240)

#: The agreement plots drawn from the whole project's matched marks: name -> their x and y columns.
DENSITY_PLOTS = PLOTS

#: Subjects whose marks and vertices are kept once read: a subject switch asks for them several times
#: (cutout layers, caption, vertices), and sessions reviewing together ask for the same subjects.
RECENT_SUBJECTS = 64


def computed(table):
    """``table`` as pandas: a Dask DataFrame or Series computed (on the active cluster), pandas as it is."""
    return table.compute() if is_dask(table) else table


def no_rows(table) -> pd.DataFrame:
    """A table with ``table``'s columns and no rows, without reading any (Dask or pandas)."""
    return table._meta if is_dask(table) else table.iloc[:0]


def rows_of_subjects(table, subject_ids):
    """The rows of ``table`` (Dask or pandas) whose ``subject_id`` is one of ``subject_ids``.

    On Dask each partition is filtered by pandas with the ids given to it, rather than by Dask's
    ``isin``, which holds many ids as a delayed object whose graph datashader cannot fuse ("Cannot fuse
    tasks with multiple outputs").
    """
    ids = np.asarray(subject_ids, dtype=np.int64)
    if not is_dask(table):
        return table[table.subject_id.isin(ids)]
    return table.map_partitions(_rows_of_subjects, ids, meta=table._meta)


def _rows_of_subjects(part: pd.DataFrame, subject_ids: np.ndarray) -> pd.DataFrame:
    return part[part.subject_id.isin(subject_ids)]


def is_store(folder: str | Path) -> bool:
    """Whether ``folder`` holds a complete project store (`write_project_store` finished writing it)."""
    return (Path(folder) / PROJECT_FILE).is_file()


#: Columns `Project` adds to the canonical marks (links, classification time, size, offsets), left out of
#: the marks a project is split into (each part's `Project` adds them again).
DERIVED_MARK_COLUMNS = ("consensus_id", "iou", "created_at", "size", "dx", "dy")

#: Per-volunteer parts of the statistics reduced over a store's parts: summed (counts and
#: `consensus.agreement.AGREEMENT_SUMS`), or the earliest, latest, any.
VOLUNTEER_SUMS = ("n_classifications", "n_subjects", "n_marks", "n_empty",
                  *(f"agreement_{column}" for column in AGREEMENT_SUMS))
VOLUNTEER_REDUCTIONS = {**dict.fromkeys(VOLUNTEER_SUMS, "sum"), "first_classification": "min",
                        "last_classification": "max", "logged_in": "any"}

#: Per-part volunteer tables reduced into one once this many are waiting (bounds their memory).
REDUCE_EVERY = 16


def write_project_store(project: Project, folder: str | Path, part_rows: int = PART_ROWS) -> Path:
    """Write a loaded project into a store at ``folder`` (replaced if it exists), part by part.

    The project's canonical tables are cut into ranges of whole subjects (about ``part_rows``
    rows each) and written through `write_project_parts`, as a streamed project is: every
    statistic of the store is computed per part and reduced, the same code whatever the source.
    """
    has_links = project.has_links
    own_marks = [column for column in computed(no_rows(project.marks)).columns if column not in DERIVED_MARK_COLUMNS]
    subject_of_mark = project.marks.set_index("mark_id").subject_id
    vertices = project.mark_vertices.assign(
        subject_id=subject_of_mark.reindex(project.mark_vertices.mark_id).to_numpy())
    tables = {"classifications": project.classifications, "marks": project.marks[own_marks],
              "mark_vertices": vertices}
    if has_links:
        tables["consensus"] = project.consensus[project.consensus_columns]
        tables["links"] = project.links.assign(subject_id=subject_of_mark.reindex(project.links.mark_id).to_numpy())
    subjects = project.subjects.drop(columns=["thumbnail"])
    ids = np.unique(np.concatenate([subjects.subject_id.to_numpy(dtype=np.int64),
                                    *(table.subject_id.to_numpy(dtype=np.int64) for table in tables.values())]))
    rows = sum(np.bincount(np.searchsorted(ids, table.subject_id.to_numpy(dtype=np.int64)), minlength=len(ids))
               for table in tables.values())
    group = np.cumsum(rows) // max(1, part_rows)
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]]) if len(ids) else np.zeros(0, np.int64)
    highs = ids[np.r_[starts[1:], len(ids)] - 1] if len(ids) else ids
    lows = np.r_[np.iinfo(np.int64).min, highs[:-1] + 1] if len(ids) else ids
    by_subject = {name: (table, table.subject_id.to_numpy(dtype=np.int64)) for name, table in tables.items()}

    def parts():
        for low, high in zip(lows, highs):
            yield {name: table[(ids_of >= low) & (ids_of <= high)] for name, (table, ids_of) in by_subject.items()}

    return write_project_parts(
        parts(), folder, subjects=subjects, title=project.title, reports=project.reports, sources=project.sources,
        filters=project.filters, aggregation_run=project.aggregation_run, image_roots=project.image_roots,
        fits_column=project.sky.fits_column, pixel_scale=project.sky.pixel_scale, detections=project.detections,
        has_links=has_links)


def write_project_parts(parts: Iterable[dict[str, pd.DataFrame]], folder: str | Path, *,
                        subjects: pd.DataFrame | None = None, method: str | None = None,
                        method_params: Mapping | None = None, has_links: bool | None = None, title: str = "zoolens",
                        reports: Sequence[LoadReport] = (), sources: Mapping | None = None,
                        filters: Mapping | None = None, aggregation_run: Mapping | None = None,
                        image_roots: Sequence[str | Path] = (), fits_column: str | None = None,
                        pixel_scale=None, picture_size=None, detections: pd.DataFrame | None = None,
                        tools_table: pd.DataFrame | None = None, progress=None) -> Path:
    """Write a project, given range of subjects by range, into a store at ``folder`` (replaced), in bounded memory.

    Each item of ``parts`` holds every row of a range of whole subjects, each range after the one
    before: ``classifications`` and canonical ``marks``, optionally ``mark_vertices`` and
    ``circle_handles`` (each with the ``subject_id`` of its mark; with the handles, the classic front
    end's unnamed marks are named per part from ``tools_table``, the workflows' tools:
    `project.tool_kinds.named_tool_kinds`), and ``consensus`` with its
    ``links`` when the consensus is made elsewhere. Otherwise ``method`` (with
    ``method_params``) makes it per part with `consensus.aggregate`: a part holds whole subjects, so
    a method whose boxes are a function of each subject's marks (``iou``, ``point``) gives the
    whole project's consensus; ``lean`` estimates its volunteer skills within each part. Each part becomes a
    `Project` of its own, whose marks (with their links), links, vertices, classifications and
    subject statistics are written and dropped; the consensus (with its statistics) and the
    subjects are gathered (one row per box or subject), and the volunteer statistics are
    reduced from per-part sums (`consensus.agreement.volunteer_agreement_sums`). Memory is
    one part plus those small tables, whatever the project's size. ``progress`` is called
    with each written part's number, its marks and the marks so far.
    """
    from consensus import aggregate

    from .tool_kinds import named_tool_kinds

    folder = Path(folder)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    writer = StoreWriter(folder)
    subjects = None if subjects is None else subjects.sort_values("subject_id", ignore_index=True)
    subject_ids = None if subjects is None else subjects.subject_id.to_numpy(dtype=np.int64)
    # The per-subject and per-box tables wait on disk, part by part, until every part is written.
    gathered = _Gathered(folder / ".gathered")
    volunteers, tools, consensus_columns = [], set(), None
    marks_so_far, last_high = 0, np.iinfo(np.int64).min
    parts = iter(parts)
    part = next(parts, None)
    while part is not None:
        following = next(parts, None)
        ids = np.unique(np.concatenate([table.subject_id.to_numpy(dtype=np.int64) for table in part.values()]))
        if subject_ids is not None:
            # The subjects without rows between this part's and the next one's go with this one.
            high = np.iinfo(np.int64).max if following is None else ids[-1] if len(ids) else last_high
            own = subjects[(subject_ids > last_high) & (subject_ids <= high)]
            last_high = high
        else:
            own = None
        classifications, marks = part["classifications"], part["marks"]
        part_consensus, links = part.get("consensus"), part.get("links")
        if part_consensus is None and method is not None:
            made = aggregate(marks, classifications, method=method, **dict(method_params or {}))
            part_consensus, links = made.consensus, made.links
        vertices = part.get("mark_vertices")
        if "circle_handles" in part:
            # Per mark, so per part: the classic front end's unnamed point lists, circles and triangles named.
            marks, vertices = named_tool_kinds(marks, classifications, tools_table,
                                               None if vertices is None else vertices.drop(columns=["subject_id"]),
                                               part["circle_handles"].drop(columns=["subject_id"]))
        one = Project(classifications, marks, subjects=own, picture_size=picture_size,
                      consensus=part_consensus, links=None if links is None else links.drop(columns=["subject_id"],
                                                                                           errors="ignore"),
                      mark_vertices=None if vertices is None else vertices.drop(columns=["subject_id"],
                                                                                 errors="ignore"))
        subject_of_mark = pd.Series(one.marks.subject_id.to_numpy(), index=one.marks.mark_id.to_numpy())
        writer.add({"classifications": one.classifications, "marks": one.marks,
                    "links": one.links.assign(subject_id=subject_of_mark.reindex(one.links.mark_id).to_numpy(
                        dtype=np.int64)),
                    "mark_vertices": one.mark_vertices.assign(subject_id=subject_of_mark.reindex(
                        one.mark_vertices.mark_id).to_numpy(dtype=np.int64))},
                   subject_ids=one.subjects.subject_id.to_numpy())
        gathered.add("consensus", one.consensus)
        own_columns = ["subject_id", *(column for column in one.subject_stats.columns
                                       if column not in one.subjects.columns and column != "thumbnail")]
        gathered.add("subject_stats", one.subject_stats[own_columns])
        # Locations are dicts of frame -> URL with keys varying by subject: kept as JSON text.
        gathered.add("subjects", one.subjects.drop(columns=["thumbnail"]).assign(
            locations=lambda table: table.locations.map(json.dumps)))
        tools |= set(one.tools)
        gathered.add(WORKFLOW_SUBJECTS_FILE, pd.concat(
            [pd.DataFrame({"workflow": key, "subject_id": ids_of}) for key, ids_of in one.workflows.items()]
            or [pd.DataFrame({"workflow": pd.Series(dtype=str), "subject_id": np.zeros(0, np.int64)})],
            ignore_index=True))
        consensus_columns = consensus_columns or one.consensus_columns
        volunteers.append(_volunteer_sums(one))
        if len(volunteers) >= REDUCE_EVERY:
            volunteers = [_reduced(volunteers)]
        marks_so_far += len(one.marks)
        if progress is not None:
            progress(gathered.parts - 1, len(one.marks), marks_so_far)
        has_links = one.has_links if has_links is None else has_links
        del one, part, classifications, marks, part_consensus, links, vertices  # one part in memory at a time
        part = following
    report = reports[0] if reports else LoadReport("project", "store")
    writer.finish(report)
    empty_subjects = empty_table("subjects")
    for name, file, empty in (("subjects", "subjects.parquet", empty_subjects.assign(locations=pd.Series(dtype=str))),
                              ("consensus", "consensus.parquet", empty_table("consensus")),
                              ("subject_stats", "subject_stats.parquet", None),
                              (WORKFLOW_SUBJECTS_FILE, WORKFLOW_SUBJECTS_FILE, None)):
        gathered.write(name, folder / file, empty)
    shutil.rmtree(gathered.folder)
    if detections is not None:
        detections.to_parquet(folder / "detections.parquet", index=False)
    _volunteer_stats_from_sums(_reduced(volunteers), bool(has_links)).to_parquet(
        folder / "volunteer_stats.parquet", index=False)
    write_plotted_columns(folder)
    write_density_grids(folder)
    description = {
        "title": title, "reports": [report.to_dict() for report in reports],
        "sources": {role: [str(path) for path in paths] for role, paths in (sources or {}).items()},
        "filters": _json_safe(dict(filters or {})), "aggregation_run": _json_safe(dict(aggregation_run or {})),
        "image_roots": [str(root) for root in image_roots], "has_links": bool(has_links),
        "consensus_columns": consensus_columns or list(TABLES["consensus"]), "tools": sorted(tools),
        "fits_column": fits_column, "pixel_scale": _json_safe(pixel_scale),
    }
    (folder / PROJECT_FILE).write_text(json.dumps(description, indent=1))
    return folder


def write_export_store(export: str | Path, folder: str | Path, *, method: str | None = "iou",
                       method_params: Mapping | None = None, subjects: pd.DataFrame | None = None,
                       tools_table: pd.DataFrame | None = None, part_rows: int = PART_ROWS, title: str | None = None,
                       reports: Sequence[LoadReport] = (), sources: Mapping | None = None, filters: Mapping | None = None,
                       progress=None, project_options: Mapping | None = None, **loader_options) -> Path:
    """Parse a classification export straight into a project store at ``folder``, in bounded memory.

    The export is parsed part by part into ranges of whole subjects (`project.store.export_parts`),
    and each range made into its part of the store with its consensus and statistics
    (`write_project_parts`): no table of the whole project is ever in memory. ``loader_options``
    are the classification loader's (``workflow_id``, ``workflow_version``, ...); ``subjects`` and
    ``tools_table`` the subject and workflow exports' tables, if any, ``reports`` and ``sources``
    theirs (the export's own come first); ``project_options`` go to `write_project_parts`
    (``image_roots``, ``fits_column``, ``pixel_scale``, ``picture_size``).

    The default method, ``iou``, makes each subject's boxes from its marks alone, so the store equals
    the project loaded in memory with the same method; ``lean`` (and ``auto`` for boxes) would
    estimate the volunteers' skills within each part (about ``part_rows`` rows) rather than over
    the whole project.
    """
    export, folder = Path(export), Path(folder)
    shutil.rmtree(folder, ignore_errors=True)
    spill = folder.with_name(folder.name + ".spill")
    with export_parts(export, spill, part_rows, **loader_options) as (report, parts):
        run = ({"made_by": f"consensus.aggregate(method={method!r}), per part of the store", "method": method}
               if method is not None else {"made_by": "none: the marks are shown without a consensus"})
        every_source = {"classifications": [export.resolve()]}
        for role, paths in (sources or {}).items():
            every_source.setdefault(role, []).extend(paths)
        return write_project_parts(
            parts, folder, subjects=subjects, method=method, method_params=method_params, title=title or export.name,
            reports=[report, *reports], sources=every_source,
            filters=filters if filters is not None else {name: value for name, value in loader_options.items()
                                                         if value is not None},
            aggregation_run=run, tools_table=tools_table, progress=progress, **dict(project_options or {}))


def write_density_grids(folder: str | Path, shape: tuple[int, int] = DENSITY_SHAPE) -> dict:
    """The agreement plots' density grids of the whole project's matched marks, stored in ``folder``.

    Binned from the store's plotted columns (`project.plotted`, written first if missing) in one pass,
    as datashader bins the marks over their whole range. A store-backed project's unfiltered
    agreement plots are drawn from these grids without a pass over the marks; its filtered views start from the same
    binning kept whole and split by volunteers per subject (`PlottedMarks.save_bucket_binnings`). Returns the grids.
    """
    folder = Path(folder)
    plotted = PlottedMarks.of_store(folder) or write_plotted_columns(folder)
    view = plotted.save_whole_binning(shape)  # kept beside the columns too: filtered views start from it
    # The same split by volunteers per subject: a minimum volunteers filter is then a sum of these, no mark read.
    stats = pd.read_parquet(folder / "subject_stats.parquet", columns=["subject_id", BUCKET_STATISTIC])
    plotted.save_bucket_binnings(stats.subject_id.to_numpy(dtype=np.int64), stats[BUCKET_STATISTIC], shape)
    grids, saved = {}, {}
    for plot, grid in view.grids.items():
        if grid is None:
            continue
        grids[plot] = {"counts": grid.counts, "x_range": grid.x_range, "y_range": grid.y_range, "marks": grid.marks}
        saved |= {f"{plot}_counts": grid.counts, f"{plot}_x_range": np.array(grid.x_range),
                  f"{plot}_y_range": np.array(grid.y_range), f"{plot}_marks": np.array(grid.marks)}
    np.savez(folder / DENSITY_FILE, **saved)
    return grids


def _whole_table(path: Path) -> pd.DataFrame:
    """A stored table read whole, each column one contiguous array: picking one subject's rows (`Project.consensus_of`,
    `Project.subject`) from text columns left in Parquet's chunks cost 40 times more (150 ms a subject switch at
    10 million marks)."""
    return pq.read_table(path).combine_chunks().to_pandas()


def _with_later_columns(stats: pd.DataFrame) -> pd.DataFrame:
    """Per-subject or per-volunteer statistics of a store written before ``mean_distance`` (points' distance to
    their consensus point) was counted: the column added as unknown, so the tables that show it still open."""
    return stats if "mean_distance" in stats.columns else stats.assign(mean_distance=np.nan)


class _Gathered:
    """Small tables (per subject, per box) of every part, spilled to ``folder`` until the last part is written:
    in memory together only once, when each is written whole."""

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True)
        self.files: dict[str, list[Path]] = {}
        self.parts = 0

    def add(self, name: str, table: pd.DataFrame) -> None:
        files = self.files.setdefault(name, [])
        files.append(self.folder / f"{name.removesuffix('.parquet')}-{len(files):05d}.parquet")
        table.to_parquet(files[-1], index=False)
        self.parts = max(self.parts, len(files))

    def write(self, name: str, path: Path, empty: pd.DataFrame | None) -> None:
        """Every part's rows of table ``name``, in part order, written to ``path`` (``empty`` if there are none)."""
        files = self.files.get(name, [])
        table = (pd.concat([pd.read_parquet(file) for file in files], ignore_index=True) if files
                 else empty if empty is not None else pd.DataFrame({"subject_id": np.zeros(0, np.int64)}))
        table.to_parquet(path, index=False)


def _volunteer_sums(project: Project) -> pd.DataFrame:
    """One part's per-volunteer sums, earliest and latest times (`VOLUNTEER_REDUCTIONS`), indexed by ``user``."""
    classifications = project.classifications
    by_user = classifications.groupby("user")
    sums = pd.DataFrame({
        "n_classifications": by_user.size(),
        "n_subjects": by_user.subject_id.nunique(),
        "n_marks": project.marks.groupby("user").size(),
        "n_empty": (classifications.n_marks == 0).groupby(classifications.user).sum(),
        "first_classification": by_user.created_at.min(),
        "last_classification": by_user.created_at.max(),
        "logged_in": classifications.user_id.notna().groupby(classifications.user).any(),
    })
    sums = sums[sums.n_classifications.notna()]
    if project.has_links and len(classifications):
        agreement = volunteer_agreement_sums(project.marks, project.consensus, project.links, classifications)
        sums = sums.join(agreement.add_prefix("agreement_"))
    sums.index.name = "user"
    return sums


def _reduced(tables: list[pd.DataFrame]) -> pd.DataFrame:
    """Per-volunteer tables of disjoint sets of subjects as one (`VOLUNTEER_REDUCTIONS`)."""
    table = pd.concat(tables)
    if len(tables) == 1:
        return table
    reductions = {column: how for column, how in VOLUNTEER_REDUCTIONS.items() if column in table.columns}
    return table.groupby(level=0, sort=True).agg(reductions)


def _volunteer_stats_from_sums(sums: pd.DataFrame, has_links: bool) -> pd.DataFrame:
    """`Project.volunteer_stats` from the reduced per-volunteer sums: the same columns, order and types."""
    stats = pd.DataFrame({
        "n_classifications": sums.n_classifications.astype(np.int64),
        "n_subjects": sums.n_subjects.astype(np.int64),
        "n_marks": sums.n_marks.fillna(0).astype(np.int64),
        "empty_share": sums.n_empty / sums.n_classifications,
        "first_classification": sums.first_classification,
        "last_classification": sums.last_classification,
        "logged_in": sums.logged_in.astype(bool),
    }, index=sums.index)
    stats["marks_per_classification"] = stats.n_marks / stats.n_classifications
    agreement = None
    if has_links and "agreement_n_linked" in sums.columns:
        summed = sums[[f"agreement_{column}" for column in AGREEMENT_SUMS]].set_axis(list(AGREEMENT_SUMS), axis=1)
        agreement = volunteer_rates(summed).assign(n_double_marks=summed["n_double_marks"])
    return volunteer_table(stats, agreement)


class StoredProject(Project):
    """A `Project` whose per-mark tables stay in its store (Dask DataFrames), read one subject at a time.

    Parameters
    ----------
    folder : path
        A store `write_project_store` wrote.
    image_roots : sequence of path, optional
        Folders image files may be read from; default those of the project the store was written from.
    image_hosts : sequence of str
        Hosts (or ``host:port``) image URLs may be fetched from; default the Zooniverse upload hosts.
    title : str, optional
        Shown in the app's header; default the stored project's.
    client : distributed.Client, optional
        The cluster the project's whole-table work runs on (`project.cluster.connect`), kept
        connected while the project is used; default Dask's own scheduler in this process.
    """

    def __init__(self, folder: str | Path, image_roots: Sequence[str | Path] | None = None, title: str | None = None,
                 client=None, image_hosts: Sequence[str] = DEFAULT_ALLOWED_HOSTS):
        folder = Path(folder)
        self.client = client
        if not is_store(folder):
            raise FileNotFoundError(f"{folder}: not a zoolens project store (no {PROJECT_FILE}); "
                                    "write one with `zoolens serve ... --store FOLDER`")
        self.store = ProjectStore(folder)
        description = json.loads((folder / PROJECT_FILE).read_text())
        self._set_provenance(title or description["title"],
                             [LoadReport.from_dict(report) for report in description["reports"]],
                             description["sources"], description["filters"], description["aggregation_run"],
                             description["image_roots"] if image_roots is None else image_roots, image_hosts)
        self.consensus = _whole_table(folder / "consensus.parquet")
        self.consensus_columns = description["consensus_columns"]
        detections = folder / "detections.parquet"
        self.detections = pd.read_parquet(detections) if detections.is_file() else None
        self.has_links = description["has_links"]
        subjects = _whole_table(folder / "subjects.parquet")
        self.subjects = self._subjects(subjects.assign(locations=subjects.locations.map(json.loads)), None)
        self._set_sky(description["fits_column"], description["pixel_scale"])
        self.marks = self.store.dask("marks", index=False)
        # The canonical columns (the subject each row is stored under is the store's to know).
        self.links = self.store.dask("links", index=False).drop(columns=["subject_id"])
        self.mark_vertices = self.store.dask("mark_vertices", index=False).drop(columns=["subject_id"])
        self.metadata_columns = self._metadata_columns()
        self.subject_stats = self._with_subject_columns(
            _with_later_columns(_whole_table(folder / "subject_stats.parquet")))
        workflows = pd.read_parquet(folder / WORKFLOW_SUBJECTS_FILE)
        self.workflows = {key: np.unique(ids.to_numpy(dtype=np.int64))
                          for key, ids in workflows.subject_id.groupby(workflows.workflow.to_numpy())}
        self.tools = description["tools"]
        self._consensus_index = _SubjectIndex(self.consensus.subject_id.to_numpy(),
                                              self.consensus.consensus_id.to_numpy())
        self._subject_row = pd.Series(np.arange(len(self.subjects)), index=self.subjects.subject_id.to_numpy())
        self._has_vertices = bool(self.store.index["mark_vertices_rows"].any())
        #: Subject id -> its marks and vertex rows, for the subjects read last (sessions share them).
        self._recent: RecentlyUsed[tuple[pd.DataFrame, pd.DataFrame | None]] = RecentlyUsed(RECENT_SUBJECTS)
        self._with_tool: dict[str, np.ndarray] = {}
        #: The agreement plots' flat per-mark columns (`project.plotted`); None for a store written without them.
        self.plotted = PlottedMarks.of_store(folder)

    @cached_property
    def classifications(self) -> pd.DataFrame:
        """Every classification, read on first use (the volunteer views and the sandbox filter them per
        subject and per volunteer): opening the store, browsing subjects and the agreement plots never do."""
        return self.store.table("classifications")

    @cached_property
    def volunteer_stats(self) -> pd.DataFrame:
        return _with_later_columns(pd.read_parquet(self.store.folder / "volunteer_stats.parquet"))

    @cached_property
    def density_grids(self) -> dict | None:
        """The agreement plots' density grids of the whole project (`write_density_grids`), None if not written."""
        path = self.store.folder / DENSITY_FILE
        if not path.is_file():
            return None
        with np.load(path) as stored:
            return {plot: {"counts": stored[f"{plot}_counts"], "x_range": tuple(stored[f"{plot}_x_range"]),
                           "y_range": tuple(stored[f"{plot}_y_range"]), "marks": int(stored[f"{plot}_marks"])}
                    for plot in DENSITY_PLOTS if f"{plot}_counts" in stored}

    def volunteer_stats_of(self, subject_ids=None) -> pd.DataFrame:
        if subject_ids is None:
            return self.volunteer_stats
        ids = np.asarray(subject_ids, dtype=np.int64)
        classifications = self.of_subjects("classifications", ids)
        consensus = self.consensus[self.consensus.subject_id.isin(ids)]
        return self._volunteer_stats(classifications, self.of_subjects("marks", ids), consensus,
                                     self.of_subjects("links", ids))

    def of_subjects(self, name: str, subject_ids) -> pd.DataFrame:
        """Some subjects' rows of a stored table, read from the parts holding them."""
        ids = np.asarray(subject_ids, dtype=np.int64)
        parts = np.unique(self.store.index.part.reindex(ids).dropna().to_numpy(dtype=np.int64))
        if not len(parts):
            return self.store.table_schema(name)
        read = [pd.read_parquet(self.store.parts(name)[part], filters=[("subject_id", "in", ids.tolist())])
                for part in parts]
        return pd.concat(read, ignore_index=True)

    def subjects_with_tool(self, tool: str) -> np.ndarray:
        # One pass over the marks per tool label, on the cluster; kept for every session.
        if tool not in self._with_tool:
            marks = self.marks[["subject_id", "tool_label"]]
            self._with_tool[tool] = np.unique(computed(marks.subject_id[marks.tool_label == tool]).to_numpy())
        return self._with_tool[tool]

    def marks_of(self, subject_id: int) -> pd.DataFrame:
        # A copy (lazy under copy-on-write): a view changing it in place would change what every session reads.
        return self._read_subject(subject_id)[0].copy()

    def _read_subject(self, subject_id: int) -> tuple[pd.DataFrame, pd.DataFrame | None]:
        """A subject's marks and (when the store has any) vertices, read once for the views that ask in turn."""
        subject_id = int(subject_id)
        return self._recent.get(subject_id, lambda: (
            self.store.of_subject("marks", subject_id),
            self.store.of_subject("mark_vertices", subject_id).drop(columns=["subject_id"])
            if self._has_vertices else None))

    def vertices_of(self, mark_ids) -> pd.DataFrame:
        wanted = np.unique(np.asarray(mark_ids, dtype=np.int64))
        if not self._has_vertices or not len(wanted):
            return no_rows(self.mark_vertices)
        recent = self._recent.values()
        read = np.concatenate([marks.mark_id.to_numpy(dtype=np.int64) for marks, _ in recent]) if recent else wanted[:0]
        if np.isin(wanted, read).all():
            found = pd.concat([vertices for _, vertices in recent], ignore_index=True)
            found = found[found.mark_id.isin(wanted)]
        else:
            # Marks not read through `marks_of` (rare): one pass over the stored vertices.
            found = computed(self.mark_vertices[self.mark_vertices.mark_id.isin(wanted)])
        return found.sort_values(["mark_id", "vertex"], kind="stable", ignore_index=True)
