"""A project backed by its partitioned store: the marks stay on disk (or on a Dask cluster), not in memory.

`StoredProject` is a `project.core.Project` whose large per-mark tables (``marks`` with their
links to the consensus, ``links``, ``mark_vertices``) are Dask DataFrames over the store's Parquet
parts, while what is small stays in memory as in the in-memory project: the subjects, the
per-subject and per-volunteer statistics (computed once, when the store is written, and kept in
it), the consensus boxes, the classifications and any machine detections. Every view and export asks the same questions of
either kind of project:

- one subject's rows (`marks_of`, `vertices_of`, `consensus_of`) are read from the row groups of
  the store's part that hold them (`project.store.ProjectStore.of_subject`);
- whole-table questions get Dask DataFrames (the agreement plots hand them to datashader, which
  aggregates them partition by partition, on the cluster when a `dask.distributed.Client` is
  active) and turn small results into pandas with `computed`.

`write_project_store` writes a loaded project into a store folder; `StoredProject(folder)` opens
one. `project.load_project(..., store=FOLDER)` does both.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections import OrderedDict
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from consensus.distributed import is_dask
from data_loaders.base import LoadReport
from data_loaders.writers import _json_safe

from .core import Project, _SubjectIndex
from .store import ROW_GROUP_ROWS, ProjectStore

#: The per-mark tables a project store keeps, each partitioned by subject like the marks.
STORED_TABLES = ("classifications", "marks", "links", "mark_vertices")

#: Rows (of every table) about one part of a project store holds.
PART_ROWS = 500_000

#: File in a store folder saying how the project was made; present once the store is complete.
PROJECT_FILE = "project.json"

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


def write_project_store(project: Project, folder: str | Path, part_rows: int = PART_ROWS) -> Path:
    """Write a loaded project into a store at ``folder`` (replaced if it exists).

    The per-mark tables go in parts of whole subjects (about ``part_rows`` rows each, in subject
    order, `ROW_GROUP_ROWS` rows per row group), with an index of each subject's rows; the
    subjects, consensus, subject and volunteer statistics and how the project was made go beside
    them. The project file is written last: a store is complete only when it is there.
    """
    folder = Path(folder)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    subject_of_mark = project.marks.set_index("mark_id").subject_id
    vertices = project.mark_vertices.assign(
        subject_id=subject_of_mark.reindex(project.mark_vertices.mark_id).to_numpy())
    links = project.links.assign(subject_id=subject_of_mark.reindex(project.links.mark_id).to_numpy())
    tables = {"classifications": (project.classifications, ["subject_id", "created_at", "classification_id"]),
              "marks": (project.marks, ["subject_id", "mark_id"]),
              "links": (links, ["subject_id", "mark_id"]),
              "mark_vertices": (vertices, ["subject_id", "mark_id", "vertex"])}
    # Each table sorted once; a part is then a slice of each.
    tables = {name: table.sort_values(order, kind="stable", ignore_index=True) for name, (table, order) in tables.items()}
    # Every subject with rows, in the subjects table or not: no row is left out of the store.
    ids = np.unique(np.concatenate([project.subjects.subject_id.to_numpy(dtype=np.int64),
                                    *(table.subject_id.to_numpy(dtype=np.int64) for table in tables.values())]))
    starts = {name: np.searchsorted(table.subject_id.to_numpy(dtype=np.int64), ids, "left")
              for name, table in tables.items()}
    stops = {name: np.searchsorted(table.subject_id.to_numpy(dtype=np.int64), ids, "right")
             for name, table in tables.items()}
    rows = sum(stops[name] - starts[name] for name in tables)
    cut = np.cumsum(rows) // max(1, part_rows)
    part_of = np.r_[0, np.cumsum(cut[1:] != cut[:-1])] if len(ids) else np.zeros(0, dtype=np.int64)
    index = pd.DataFrame({"subject_id": ids, "part": part_of})
    for name, table in tables.items():
        (folder / name).mkdir()
        index[f"{name}_rows"] = stops[name] - starts[name]
        index[f"{name}_first"] = 0
        for part in range(int(part_of.max()) + 1 if len(ids) else 1):
            in_part = np.flatnonzero(part_of == part)
            low = starts[name][in_part[0]] if len(in_part) else 0
            high = stops[name][in_part[-1]] if len(in_part) else 0
            index.loc[in_part, f"{name}_first"] = starts[name][in_part] - low
            table.iloc[low:high].to_parquet(folder / name / f"part-{part:05d}.parquet", index=False,
                                            row_group_size=ROW_GROUP_ROWS)
    index.to_parquet(folder / "index.parquet", index=False)
    reports = [report.to_dict() for report in project.reports]
    (folder / "report.json").write_text(json.dumps(reports[0] if reports else LoadReport("project", "store").to_dict(),
                                                   indent=1, default=str))
    subjects = project.subjects.drop(columns=["thumbnail"])
    # Locations are dicts of frame -> URL with keys varying by subject: kept as JSON text.
    subjects.assign(locations=subjects.locations.map(json.dumps)).to_parquet(folder / "subjects.parquet", index=False)
    project.consensus.to_parquet(folder / "consensus.parquet", index=False)
    if project.detections is not None:
        project.detections.to_parquet(folder / "detections.parquet", index=False)
    stat_columns = [column for column in project.subject_stats.columns
                    if column not in project.metadata_columns and column != "thumbnail"]
    project.subject_stats[stat_columns].to_parquet(folder / "subject_stats.parquet", index=False)
    project.volunteer_stats.to_parquet(folder / "volunteer_stats.parquet", index=False)
    description = {
        "title": project.title, "reports": reports,
        "sources": {role: [str(path) for path in paths] for role, paths in project.sources.items()},
        "filters": _json_safe(project.filters), "aggregation_run": _json_safe(project.aggregation_run),
        "image_roots": [str(root) for root in project.image_roots], "has_links": project.has_links,
        "consensus_columns": project.consensus_columns, "tools": project.tools,
        "fits_column": project.sky.fits_column, "pixel_scale": _json_safe(project.sky.pixel_scale),
    }
    (folder / PROJECT_FILE).write_text(json.dumps(description, indent=1))
    return folder


class StoredProject(Project):
    """A `Project` whose per-mark tables stay in its store (Dask DataFrames), read one subject at a time.

    Parameters
    ----------
    folder : path
        A store `write_project_store` wrote.
    image_roots : sequence of path, optional
        Folders image files may be read from; default those of the project the store was written from.
    title : str, optional
        Shown in the app's header; default the stored project's.
    client : distributed.Client, optional
        The cluster the project's whole-table work runs on (`project.cluster.connect`), kept
        connected while the project is used; default Dask's own scheduler in this process.
    """

    def __init__(self, folder: str | Path, image_roots: Sequence[str | Path] | None = None, title: str | None = None,
                 client=None):
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
                             description["image_roots"] if image_roots is None else image_roots)
        # Small beside the marks (one row per classification): kept in memory, as the
        # volunteer views and the sandbox filter it per subject and per volunteer.
        self.classifications = self.store.table("classifications")
        self.consensus = pd.read_parquet(folder / "consensus.parquet")
        self.consensus_columns = description["consensus_columns"]
        detections = folder / "detections.parquet"
        self.detections = pd.read_parquet(detections) if detections.is_file() else None
        self.has_links = description["has_links"]
        subjects = pd.read_parquet(folder / "subjects.parquet")
        self.subjects = self._subjects(subjects.assign(locations=subjects.locations.map(json.loads)), None)
        self._set_sky(description["fits_column"], description["pixel_scale"])
        self.marks = self.store.dask("marks", index=False)
        # The canonical columns (the subject each row is stored under is the store's to know).
        self.links = self.store.dask("links", index=False).drop(columns=["subject_id"])
        self.mark_vertices = self.store.dask("mark_vertices", index=False).drop(columns=["subject_id"])
        self.metadata_columns = self._metadata_columns()
        self.subject_stats = self._with_subject_columns(pd.read_parquet(folder / "subject_stats.parquet"))
        self.workflows = self._workflow_subjects()
        self.tools = description["tools"]
        self._consensus_index = _SubjectIndex(self.consensus.subject_id.to_numpy(),
                                              self.consensus.consensus_id.to_numpy())
        self._subject_row = pd.Series(np.arange(len(self.subjects)), index=self.subjects.subject_id.to_numpy())
        self._has_vertices = bool(self.store.index["mark_vertices_rows"].any())
        #: Subject id -> its marks and vertex rows, for the subjects read last (sessions share them).
        self._recent: OrderedDict[int, tuple[pd.DataFrame, pd.DataFrame | None]] = OrderedDict()
        self._recent_lock = threading.Lock()
        self._with_tool: dict[str, np.ndarray] = {}

    @cached_property
    def volunteer_stats(self) -> pd.DataFrame:
        return pd.read_parquet(self.store.folder / "volunteer_stats.parquet")

    def volunteer_stats_of(self, subject_ids=None) -> pd.DataFrame:
        if subject_ids is None:
            return self.volunteer_stats
        ids = np.asarray(subject_ids, dtype=np.int64)
        classifications = self.classifications[self.classifications.subject_id.isin(ids)]
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
        with self._recent_lock:
            if subject_id in self._recent:
                self._recent.move_to_end(subject_id)
                return self._recent[subject_id]
        read = (self.store.of_subject("marks", subject_id),
                self.store.of_subject("mark_vertices", subject_id).drop(columns=["subject_id"])
                if self._has_vertices else None)
        with self._recent_lock:
            self._recent[subject_id] = read
            while len(self._recent) > RECENT_SUBJECTS:
                self._recent.popitem(last=False)
        return read

    def vertices_of(self, mark_ids) -> pd.DataFrame:
        wanted = np.unique(np.asarray(mark_ids, dtype=np.int64))
        if not self._has_vertices or not len(wanted):
            return no_rows(self.mark_vertices)
        with self._recent_lock:
            recent = list(self._recent.values())
        read = np.concatenate([marks.mark_id.to_numpy(dtype=np.int64) for marks, _ in recent]) if recent else wanted[:0]
        if np.isin(wanted, read).all():
            found = pd.concat([vertices for _, vertices in recent], ignore_index=True)
            found = found[found.mark_id.isin(wanted)]
        else:
            # Marks not read through `marks_of` (rare): one pass over the stored vertices.
            found = computed(self.mark_vertices[self.mark_vertices.mark_id.isin(wanted)])
        return found.sort_values(["mark_id", "vertex"], kind="stable", ignore_index=True)
