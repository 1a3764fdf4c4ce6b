"""The one function that builds a `Project` from files: `load_project`.

The command line (`serve`, `demo`, `aggregate`, `export`), the served app and a
notebook's `Explorer.from_paths` all call it, with the same options and the same
defaults, so the same files give the same project everywhere.

Reading options belong to the loaders (`data_loaders.base.Loader.options`): each
file's loader gets the options it declares, and an option no loader (nor this
function) takes is an error that lists the known ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path

import pandas as pd

import data_loaders
from consensus import aggregate, match
from consensus.base import AUTO_METHOD, parse_source
from data_loaders.images import DEFAULT_ALLOWED_HOSTS

from .core import Project
from .progress import LoadProgress
from .tool_kinds import named_tool_kinds
from .truth import read_truth

#: The consensus method used when no file holds a consensus (None: show the marks alone): each
#: kind of mark its own (`consensus.base.DEFAULT_METHODS`), as every command does by default.
DEFAULT_METHOD = AUTO_METHOD

#: Loader options whose values chose which rows were kept: recorded as the project's filters.
FILTER_OPTIONS = ("workflow_id", "workflow_version", "tasks", "point_box")

#: Options a format's loader takes but a project does not give it. The workflow filter chooses which
#: classifications count; the subject and workflow exports describe the whole project (a subject reached
#: through a set linked to another workflow must still show), so their rows are not skipped for it.
NOT_GIVEN = {"subjects": {"workflow_id"}, "workflows": {"workflow_id"}}

#: Methods whose boxes are a function of each subject's marks alone: with ``store``, one classification export
#: and nothing else to match, `load_project` parses the export straight into the store part by part
#: (`project.stored.write_export_store`), never holding the project in memory, with the same result.
STREAMED_METHODS = ("iou", "point", None)

#: Formats whose files give a project its consensus (their role in the provenance is "consensus").
CONSENSUS_FORMATS = ("panoptes_aggregation", "caesar", "boxaggregator")


def loader_options() -> dict[str, str]:
    """Every reading option some loader declares -> what it does (the first loader's words)."""
    options: dict[str, str] = {}
    for loader in data_loaders.REGISTRY.values():
        for name, doc in loader.options().items():
            options.setdefault(name, doc)
    return options


def load_project(paths: Sequence[str | Path], consensus: str | Path | None = None, *,
                 detections: str | Path | None = None, truth: str | Path | None = None, image_roots: Sequence[str | Path] | None = None,
                 image_hosts: Sequence[str] = DEFAULT_ALLOWED_HOSTS, title: str | None = None,
                 method: str | None = DEFAULT_METHOD, method_params: Mapping | None = None,
                 fits_column: str | None = None, pixel_scale: float | str | None = None,
                 picture_size: tuple[float, float] | None = None, scheduler: str | None = None,
                 partitions: int | None = None, store: str | Path | None = None,
                 progress: LoadProgress | None = None, **options) -> Project:
    """Read project files with `data_loaders` into a `Project`.

    Parameters
    ----------
    paths : sequence of path
        Any files the loaders identify: classification, subject and workflow exports.
        Tables of the same kind from several files are concatenated (subjects
        de-duplicated by id).
    consensus : path, optional
        A consensus file (any format the loaders read). Its boxes are linked to the
        classification export's marks by `consensus.match` (a file's own links point at
        its own extracts, not at the export's marks).
    detections : path, optional
        A machine's detections (any layout `data_loaders.detections` reads), compared with the
        consensus (`Project.machine`). A detections file among ``paths`` is taken as well; one
        detector run per project.
    truth : path, optional
        The true objects (`project.truth.read_truth`: a CSV of subject_id, x, y, width, height, as the
        demo writes), kept as ``Project.truth`` for the cutout to draw.
    image_roots : sequence of path, optional
        Folders image files may be read from, relative locations resolving against the
        first; default `default_image_roots` of the files.
    image_hosts : sequence of str
        Hosts (or ``host:port``) image URLs in the subject export may be fetched from; default
        the Zooniverse upload hosts.
    title : str, optional
        Shown in the app's header; default the first file's name.
    method : str or None
        Without a consensus file: make the consensus with `consensus.aggregate` and this
        method (default ``"iou"``), with ``method_params``; None shows the marks alone.
    method_params : mapping, optional
        The method's parameters (`consensus.get_aggregator(method).param`).
    fits_column, pixel_scale, picture_size
        How RA/Dec are found for each subject (`project.sky.SkyLookup`, `Project`).
    scheduler : str, optional
        Make (or link) the consensus on a Dask cluster: ``"local"`` for worker processes on
        this machine, or a scheduler's address (`project.cluster`). The tables are the same
        as without one.
    partitions : int, optional
        How many parts (by subject) the cluster gets; default two per worker.
    store : path, optional
        Keep the project in this store folder and return it store-backed
        (`project.stored.StoredProject`: the marks stay on disk, read one subject at a time or
        as Dask DataFrames). A folder holding a complete store is opened as it is (the files and
        loading options are not read again: delete the folder to rebuild it); otherwise the
        project is built from the files and written there: part by part, straight from the
        classification export and never whole in memory, when there is one export, no consensus,
        detections, truth or scheduler, and ``method`` is one of `STREAMED_METHODS`. With ``scheduler``, the client stays
        connected, so the project's whole-table work runs on the cluster while it is used.
    progress : project.progress.LoadProgress, optional
        Told each stage (the file being read, with its rows as the loader reads them,
        the consensus, the statistics) and each file's report, for a progress bar.
    **options
        Reading options (`loader_options`): ``workflow_id``, ``workflow_version``,
        ``tasks``, ``point_box``, ``use_cache``... Each file's loader gets those it takes.
    """
    client = None
    if store is not None:
        from .cluster import connect
        from .stored import StoredProject, is_store, write_project_store

        # Kept for as long as the project is used: its Dask work runs on the cluster.
        client = connect(scheduler) if scheduler is not None else None
        if is_store(store):
            if progress is not None:
                progress.plan(1)
                progress.stage(f"Opening the project store {store}")
            return StoredProject(store, image_roots=image_roots, image_hosts=image_hosts, title=title, client=client)
    if not paths:
        raise ValueError("no files to read: give a classification export (or an existing project store)")
    # A loader's row-count callback is this function's to give (from ``progress``), not the caller's.
    known = sorted(set(loader_options()) - {"progress"})
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(f"unknown loading option {', '.join(map(repr, unknown))}; known options: "
                         f"{', '.join(known)}, and consensus, image_roots, image_hosts, title, method, method_params, "
                         "fits_column, pixel_scale, picture_size, scheduler, partitions")
    if method_params and (consensus is not None or method is None):
        raise ValueError("method_params set the parameters of a consensus method; they cannot change a "
                         "consensus file or an absent consensus")
    files = [Path(path) for path in paths]
    consensus_file = Path(consensus) if consensus is not None else None
    detections_file = Path(detections) if detections is not None else None
    every_file = files + [path for path in (consensus_file, detections_file) if path is not None]
    if progress is not None:
        progress.plan(len(every_file) + 1)
    tables: dict[str, list[pd.DataFrame]] = {}
    reports = []
    sources: dict[str, list[Path]] = {}
    streamed = None
    if (store is not None and scheduler is None and consensus_file is None and detections_file is None
            and truth is None and method in STREAMED_METHODS):
        exports = [path for path in files if data_loaders.identify_format(path) == "classifications"]
        streamed = exports[0] if len(exports) == 1 else None
    for number, path in enumerate(every_file, start=1):
        if path == streamed:
            continue  # parsed part by part straight into the store, below
        if progress is not None:
            progress.stage(f"Reading {path.name} (file {number} of {len(every_file)})")
        # The detections option's file is detections whatever else its columns could be.
        format = "detections" if path == detections_file else data_loaders.identify_format(path)
        loader = data_loaders.get_loader(format)
        taken = {name: value for name, value in options.items()
                 if name in loader.options() and name not in NOT_GIVEN.get(format, ())}
        if progress is not None and "progress" in loader.options():
            taken["progress"] = progress.rows
        result = loader(**taken).read(path)
        reports.append(result.report)
        if progress is not None:
            progress.report(result.report)
        role = "consensus" if path == consensus_file or format in CONSENSUS_FORMATS else format
        sources.setdefault(role, []).append(path.resolve())
        for name, table in result.tables.items():
            # Of a consensus file only the boxes count: its links and marks are its own extracts', and the
            # export's marks are matched to the boxes below.
            if role != "consensus" or name == "consensus":
                tables.setdefault(name, []).append(table)
    if streamed is not None:
        return _streamed_store(streamed, store, tables, reports, sources, method, method_params, options,
                               title or every_file[0].name,
                               image_roots if image_roots is not None else default_image_roots(every_file),
                               {"fits_column": fits_column, "pixel_scale": pixel_scale, "picture_size": picture_size},
                               image_hosts, progress, client)
    if len(sources.get("detections", [])) > 1:
        raise ValueError(f"several detections files ({', '.join(str(path) for path in sources['detections'])}): "
                         "a project compares one detector run with the volunteers; give one")
    if "classifications" not in tables:
        raise ValueError(f"no classification export among {', '.join(str(path) for path in every_file)}; "
                         "zoolens needs one to show what volunteers drew")

    def combined(name):
        return pd.concat(tables[name], ignore_index=True) if name in tables else None

    classifications, marks = combined("classifications"), combined("marks")
    # The classic front end does not say which tool drew a point list or a triangle; a workflow export does.
    marks, mark_vertices = named_tool_kinds(marks, classifications, combined("tools"), combined("mark_vertices"),
                                            combined("circle_handles"))
    consensus_table = combined("consensus")
    if method is not None or consensus_table is not None:
        if progress is not None:
            progress.plan(1)
            progress.stage(f"Linking {len(marks):,} marks to the consensus file's boxes" if consensus_table is not None
                           else f"Making the consensus ({method} method) of {len(marks):,} marks")
        if scheduler is None:
            consensus_table, links, run = _consensus(marks, classifications, consensus_table, method,
                                                     method_params, sources)
        else:
            from .cluster import cluster_client, describe, subject_partitioned

            with nullcontext(client) if client is not None else cluster_client(scheduler) as active:
                parts = partitions or 2 * max(1, len(active.scheduler_info().get("workers", {})))

                def on_cluster(table):
                    return subject_partitioned(table, parts)

                consensus_table, links, run = _consensus(marks, classifications, consensus_table, method,
                                                         method_params, sources, on_cluster)
                run["where"] = f"{describe(active)}, {parts} partitions by subject"
    else:
        links, run = None, {"made_by": "none: the marks are shown without a consensus"}
    subjects = combined("subjects")
    if subjects is not None:
        subjects = subjects.drop_duplicates("subject_id", ignore_index=True)
    if image_roots is None:
        image_roots = default_image_roots(every_file)
    if progress is not None:
        progress.stage("Building the statistics of subjects and consensus boxes")
    filters = {name: options[name] for name in FILTER_OPTIONS if options.get(name) is not None}
    project = Project(classifications, marks, mark_vertices=mark_vertices, subjects=subjects,
                      consensus=consensus_table, links=links, image_roots=image_roots, reports=reports,
                      title=title or every_file[0].name, sources=sources, filters=filters, aggregation_run=run,
                      fits_column=fits_column, pixel_scale=pixel_scale, picture_size=picture_size,
                      detections=combined("detections"), image_hosts=image_hosts)
    if store is not None:
        if progress is not None:
            progress.plan(1)
            progress.stage(f"Writing the project store {store}")
        write_project_store(project, store)
        project = StoredProject(store, image_roots=image_roots, image_hosts=image_hosts, title=title, client=client)
    if project.detections is not None:
        if progress is not None:
            progress.plan(1)
            progress.stage(f"Matching {len(project.detections):,} machine detections to the consensus")
        project.machine  # noqa: B018 -- matched here, in the loading thread, not by the first page that asks
    if truth is not None:
        project.truth, report = read_truth(truth)
        project.reports += (report,)
    return project


def _streamed_store(export: Path, store, tables: dict, reports: list, sources: dict, method, method_params,
                    options: Mapping, title, image_roots, sky: Mapping, image_hosts, progress, client) -> Project:
    """The project store written straight from the classification export, part by part (`load_project`)."""
    from .stored import StoredProject, write_export_store

    loader = data_loaders.get_loader("classifications")
    taken = {name: value for name, value in options.items() if name in loader.options() and name != "use_cache"}
    subjects = pd.concat(tables["subjects"], ignore_index=True).drop_duplicates(
        "subject_id", ignore_index=True) if "subjects" in tables else None
    tools = pd.concat(tables["tools"], ignore_index=True) if "tools" in tables else None
    if progress is not None:
        progress.plan(1)
        progress.stage(f"Writing {export.name} into the project store {store}, part by part")
    write_export_store(export, store, method=method, method_params=method_params, subjects=subjects,
                       tools_table=tools, title=title, reports=reports, sources=sources,
                       filters={name: options[name] for name in FILTER_OPTIONS if options.get(name) is not None},
                       project_options={"image_roots": image_roots, **sky}, **taken)
    return StoredProject(store, image_roots=image_roots, image_hosts=image_hosts, title=title, client=client)


def _consensus(marks: pd.DataFrame, classifications: pd.DataFrame, boxes: pd.DataFrame | None,
               method: str | None, method_params: Mapping | None, sources: Mapping,
               on_cluster=None) -> tuple[pd.DataFrame | None, pd.DataFrame | None, dict]:
    """The consensus boxes, the marks' links to them, and how they were made.

    A consensus file's ``boxes`` are matched to the marks; otherwise ``method`` makes them.
    ``on_cluster(table)`` (a Dask DataFrame partitioned by subject) runs the work on a cluster
    through `consensus`' distributed path; the results come back as pandas.
    """
    if boxes is not None:
        run = {"made_by": "consensus.match (marks of the classification export against the boxes of "
                          f"{', '.join(path.name for path in sources['consensus'])})"}
        if not len(marks):
            return boxes, None, run
        links = match(marks, boxes) if on_cluster is None else match(on_cluster(marks), on_cluster(boxes)).compute()
        return boxes, links, run
    if on_cluster is None:
        result = aggregate(marks, classifications, method=method, **dict(method_params or {}))
        consensus_table, links = result.consensus, result.links
    else:
        import dask

        result = aggregate(on_cluster(marks), on_cluster(classifications), method=method,
                           **dict(method_params or {}))
        consensus_table, links = dask.compute(result.consensus, result.links)
        consensus_table, links = consensus_table.reset_index(drop=True), links.reset_index(drop=True)
    used = sorted({parse_source(text).get("method", "") for text in pd.unique(consensus_table["source"])}
                  - {""}) if len(consensus_table) else []
    return consensus_table, links, {"made_by": f"consensus.aggregate(method={method!r})", "methods": used,
                                    "report": result.report}


def default_image_roots(files: Sequence[str | Path]) -> list[Path]:
    """Folders a project's images may be read from when none are given.

    Relative image locations are relative to the subject export, so the subject
    exports' folders come first, then the other files' folders. Known before any
    file is read (a server publishes them as it starts); a file whose format
    cannot be identified counts as not a subject export (reading it reports why).
    """

    def is_subject_export(path: Path) -> bool:
        try:
            return data_loaders.identify_format(path) == "subjects"
        except (OSError, ValueError):
            return False

    files = [Path(path).resolve() for path in files]
    subject_folders = [path.parent for path in files if is_subject_export(path)]
    return list(dict.fromkeys([*subject_folders, *(path.parent for path in files)]))
