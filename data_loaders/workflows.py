"""Zooniverse workflow export CSV -> ``workflows``, ``tasks``, ``tools`` and ``answers`` tables.

The export has one row per workflow version: ``version`` (major) and
``minor_version`` together make the version string the classification export
uses, ``"52.76"``, kept as text because ``"13.10"`` is not ``"13.1"``. The
``tasks`` JSON names each task's type, its drawing tools and its answers by
translation key (``"T0.tools.0.label"``); the ``strings`` JSON maps those keys
to the text volunteers saw. Older exports wrote the text into ``tasks``
itself: a label that is not a key of ``strings`` is kept as written, and a
key-shaped label that ``strings`` lacks is counted as unresolved.

Tables (one row per workflow version and item, sorted by workflow and version):

- ``workflows``: workflow_id, version, major_version, minor_version, display_name,
  active, first_task, n_tasks, retirement_criteria, retirement_options, ...
- ``tasks``: workflow_id, version, task, task_type, label (question or instruction),
  n_tools, n_answers.
- ``tools``: workflow_id, version, task, task_type, tool (index), tool_type,
  tool_label, n_details (subtask questions on the tool).
- ``answers``: workflow_id, version, task, task_type, answer (index), answer_label, next.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import param

from ._csv import CsvExport, RowFilter, parse_integers, parse_literals, read_text_csv
from .base import LoadReport, LoadResult

REQUIRED_COLUMNS = ("workflow_id", "version", "tasks")
EXPECTED = "a Zooniverse workflow export"

#: What an untranslated label looks like: a translation key such as ``T0.tools.0.label``.
_KEY_PATTERN = re.compile(r"^T\d+\.[\w.]+$")

TABLE_COLUMNS = {
    "tasks": ("workflow_id", "version", "task", "task_type", "label", "n_tools", "n_answers"),
    "tools": ("workflow_id", "version", "task", "task_type", "tool", "tool_type", "tool_label",
              "n_details"),
    "answers": ("workflow_id", "version", "task", "task_type", "answer", "answer_label", "next"),
}
INTEGER_COLUMNS = ("n_tools", "n_answers", "tool", "n_details", "answer")


class WorkflowExport(CsvExport):
    """Zooniverse workflow export CSV: versions, tasks, tools and answers with labels resolved."""

    short_name = "workflows"
    column_sets = (REQUIRED_COLUMNS,)

    workflow_id = param.Integer(default=None, allow_None=True,
                                doc="Keep only this workflow's versions; rows of others are counted in the report.")

    def parse(self, path: Path, workflow_id: int | None) -> LoadResult:
        return _parse(path, workflow_id, self.limits)


def read_workflows(path, workflow_id: int | None = None, use_cache: bool = True) -> LoadResult:
    """Read a Zooniverse workflow export into workflow, task, tool and answer tables.

    Parameters
    ----------
    path : str or path-like
        The workflow export CSV (optionally gzipped).
    workflow_id : int, optional
        Keep only this workflow's versions; rows of others are counted in the report.
    use_cache : bool
        Reuse the Parquet cache of an earlier parse of the same file.

    Returns
    -------
    LoadResult
        ``.workflows``, ``.tasks``, ``.tools``, ``.answers`` and ``.report``.
    """
    return WorkflowExport(workflow_id=workflow_id, use_cache=use_cache).read(Path(path))


def _parse(path: Path, workflow_id: int | None, limits: dict) -> LoadResult:
    report = LoadReport(source=str(path), format=WorkflowExport.short_name)
    rows = read_text_csv(path, report, EXPECTED, REQUIRED_COLUMNS, **limits)
    rows_kept = RowFilter(report, rows.lines)
    reject = rows_kept.reject

    workflow_ids, ok = parse_integers(rows.column("workflow_id"))
    reject(~ok, "workflow_id is not an integer")
    majors, ok = parse_integers(rows.column("version"))
    reject(~ok | (majors < 0), "version is not a whole number")
    if "minor_version" in rows.columns:
        minors, ok = parse_integers(rows.column("minor_version"))
        reject(~ok | (minors < 0), "minor_version is not a whole number")
        versions = np.char.add(np.char.add(majors.astype(str), "."), minors.astype(str))
    else:
        minors = np.full(len(rows), -1)
        versions = majors.astype(str)
    if workflow_id is not None:
        reject(workflow_ids != workflow_id, f"other workflow (kept workflow {workflow_id})")

    tasks, ok = parse_literals(list(rows.strings("tasks")))
    reject(~ok | ~_objects(tasks), "tasks is not a JSON object")
    if "strings" in rows.columns:
        strings, ok = parse_literals(list(rows.strings("strings")))
        reject(~ok | ~_objects(strings), "strings is not a JSON object")
    else:
        strings = [None] * len(rows)
    candidates = rows_kept.kept
    duplicate = np.zeros(len(rows), dtype=bool)
    duplicate[candidates] = pd.DataFrame({"workflow": workflow_ids[candidates],
                                          "version": versions[candidates]}).duplicated().to_numpy()
    reject(duplicate, "duplicate workflow version")

    kept = rows_kept.kept
    report.rows_loaded = len(kept)
    workflows = pd.DataFrame({
        "workflow_id": workflow_ids[kept],
        "version": pd.array(versions[kept], dtype="string"),
        "major_version": majors[kept],
        "minor_version": pd.array(np.where(minors[kept] >= 0, minors[kept], 0), dtype="Int64"),
    })
    workflows.loc[minors[kept] < 0, "minor_version"] = pd.NA
    for column in ("display_name", "first_task", "primary_language"):
        if column in rows.columns:
            workflows[column] = pd.array(rows.strings(column)[kept], dtype="string")
    if "active" in rows.columns:
        workflows["active"] = pd.array(rows.strings("active")[kept] == "true", dtype="boolean")
    for column in ("classifications_count", "retired_set_member_subjects_count"):
        if column in rows.columns:
            values, ok = parse_integers(rows.column(column))
            workflows[column] = pd.array(np.where(ok, values, 0)[kept], dtype="Int64")
            workflows.loc[~ok[kept], column] = pd.NA
    if "retirement" in rows.columns:
        retirement, _ = parse_literals(list(rows.strings("retirement")[kept]))
        workflows["retirement_criteria"] = pd.array(
            [r.get("criteria") if isinstance(r, dict) else None for r in retirement], dtype="string")
        workflows["retirement_options"] = pd.array(
            [orjson.dumps(r.get("options")).decode() if isinstance(r, dict) else None
             for r in retirement], dtype="string")

    items = {name: [] for name in TABLE_COLUMNS}
    unresolved: set[str] = set()
    for row in kept:
        _describe_tasks(workflow_ids[row], versions[row], tasks[row] or {}, strings[row] or {},
                        items, unresolved)
    tables = {"workflows": workflows}
    for name, columns in TABLE_COLUMNS.items():
        table = pd.DataFrame(items[name], columns=list(columns))
        tables[name] = _typed(table)
    workflows["n_tasks"] = workflows.merge(
        tables["tasks"].groupby(["workflow_id", "version"]).size().rename("n").reset_index(),
        on=["workflow_id", "version"], how="left")["n"].fillna(0).astype(np.int64).to_numpy()

    order = np.lexsort((workflows["minor_version"].fillna(-1).to_numpy(),
                        workflows["major_version"].to_numpy(), workflows["workflow_id"].to_numpy()))
    tables["workflows"] = workflows.iloc[order].reset_index(drop=True)
    rank = {(w, v): i for i, (w, v) in enumerate(zip(tables["workflows"]["workflow_id"],
                                                     tables["workflows"]["version"]))}
    for name in TABLE_COLUMNS:
        table = tables[name]
        version_rank = np.fromiter((rank[key] for key in zip(table["workflow_id"], table["version"])),
                                   dtype=np.int64, count=len(table))
        tables[name] = table.iloc[np.argsort(version_rank, kind="stable")].reset_index(drop=True)

    counts = report.counts
    counts["workflows"] = {str(w): list(group["version"]) for w, group in
                           tables["workflows"].groupby("workflow_id", sort=True)}
    counts["task_types"] = {str(k): int(v) for k, v in
                            tables["tasks"]["task_type"].value_counts().sort_index().items()}
    counts["tool_types"] = {str(k): int(v) for k, v in
                            tables["tools"]["tool_type"].value_counts().sort_index().items()}
    counts["unresolved_labels"] = sorted(unresolved)
    return LoadResult(tables, report)


def _objects(values: list) -> np.ndarray:
    return np.fromiter((value is None or isinstance(value, dict) for value in values), dtype=bool,
                       count=len(values))


def _typed(table: pd.DataFrame) -> pd.DataFrame:
    table = table.astype({column: "string" for column in table.columns
                          if column not in INTEGER_COLUMNS and column != "workflow_id"})
    return table.astype({"workflow_id": np.int64,
                         **{column: np.int64 for column in INTEGER_COLUMNS if column in table}})


def _describe_tasks(workflow_id, version, tasks: dict, strings: dict, items: dict,
                    unresolved: set) -> None:
    """Append one workflow version's tasks, tools and answers to ``items``."""

    def text(label):
        if not isinstance(label, str):
            return None
        if label in strings:
            return strings[label] if isinstance(strings[label], str) else None
        if _KEY_PATTERN.match(label):
            unresolved.add(label)
        return label

    for task_key, task in tasks.items():
        if not isinstance(task, dict):
            continue
        task_type = task.get("type")
        task_type = task_type if isinstance(task_type, str) else None
        tools = task.get("tools") if isinstance(task.get("tools"), list) else []
        answers = task.get("answers") if isinstance(task.get("answers"), list) else []
        label = text(task.get("question", task.get("instruction")))
        items["tasks"].append((workflow_id, version, task_key, task_type, label, len(tools),
                               len(answers)))
        for index, tool in enumerate(tools):
            tool = tool if isinstance(tool, dict) else {}
            details = tool.get("details") if isinstance(tool.get("details"), list) else []
            tool_type = tool.get("type") if isinstance(tool.get("type"), str) else None
            items["tools"].append((workflow_id, version, task_key, task_type, index, tool_type,
                                   text(tool.get("label")), len(details)))
        for index, answer in enumerate(answers):
            answer = answer if isinstance(answer, dict) else {}
            following = answer.get("next") if isinstance(answer.get("next"), str) else None
            items["answers"].append((workflow_id, version, task_key, task_type, index,
                                     text(answer.get("label")), following))
