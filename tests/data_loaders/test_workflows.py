"""Workflow exports: real Penguin Watch and aggregation-for-caesar files, labels, bad rows, junk."""

from __future__ import annotations

from pathlib import Path

import pytest

from data_loaders import FormatError, identify_format
from data_loaders.workflows import read_workflows
from tests.data_loaders.loader_properties import junk_bytes_test, junk_rows_test, write

DATA = Path(__file__).resolve().parents[1] / "data"
PENGUIN = "penguin_watch/penguin-watch-workflows.csv"
BATCH = "aggregation_for_caesar/batch_wf_export.csv"


def test_penguin_workflows_one_row_per_version_in_version_order(data_dir):
    result = read_workflows(data_dir / PENGUIN)
    workflows = result.workflows
    # SOURCES.md: 14 version rows of workflows 6465 and 6466, not in version order in the file.
    assert result.report.rows_read == 14 and result.report.rows_loaded == 14
    assert list(workflows["version"][workflows["workflow_id"] == 6465]) == [
        "31.37", "47.49", "51.54", "52.55", "52.56", "52.59", "52.66", "52.69", "52.76"]
    assert list(workflows["version"][workflows["workflow_id"] == 6466]) == [
        "13.16", "23.25", "25.25", "26.25", "27.26"]
    assert workflows["version"].dtype == "string"
    assert set(workflows["display_name"][workflows["workflow_id"] == 6465]) == {"Time lapse cameras"}


def test_penguin_tool_labels_resolved_through_strings(data_dir):
    tools = read_workflows(data_dir / PENGUIN).tools
    t0 = tools[(tools["workflow_id"] == 6465) & (tools["version"] == "52.76")]
    assert list(t0["task"]) == ["T0"] * 4
    assert list(t0["tool"]) == [0, 1, 2, 3]
    assert list(t0["tool_type"]) == ["point"] * 4
    assert list(t0["tool_label"]) == ["Adults", "Chicks", "Eggs", "Other"]
    assert list(t0["n_details"]) == [0, 0, 0, 1]
    # Workflow 6466 drew with one "nest counter" tool: a bezier in version 25.25, a point otherwise.
    nest = tools[tools["workflow_id"] == 6466].set_index("version")
    assert nest.loc["25.25", "tool_type"] == "bezier"
    assert set(nest["tool_label"]) == {"nest counter"}
    assert (nest.drop(index="25.25")["tool_type"] == "point").all()


def test_penguin_answers_and_unresolved_labels(data_dir):
    result = read_workflows(data_dir / PENGUIN)
    answers = result.answers
    t1 = answers[(answers["workflow_id"] == 6465) & (answers["version"] == "52.76")
                 & (answers["task"] == "T1")]
    assert list(t1["answer_label"]) == ["Yes", "There were too many to count"]
    shortcut = answers[(answers["version"] == "52.76") & (answers["task"] == "T6")]
    assert list(shortcut["task_type"]) == ["shortcut"]
    assert list(shortcut["answer_label"]) == ["This image is too dark or blurry."]
    # Versions 23.25 and 25.25 of 6466 have a task T3 whose strings the export lacks.
    assert result.report.counts["unresolved_labels"] == [
        "T3.answers.0.label", "T3.answers.1.label", "T3.question"]


def test_batch_workflow_question_tasks(data_dir):
    result = read_workflows(data_dir / BATCH)
    assert list(result.workflows["version"]) == ["14.52", "14.53", "14.54", "14.55", "15.55", "16.55"]
    assert len(result.tools) == 0
    assert result.report.counts["task_types"] == {"single": 12}
    first = result.tasks.iloc[0]
    assert first["task"] == "T0" and first["label"].startswith("**Has the lightcurve been rising")
    assert list(result.answers["answer_label"][:2]) == ["Yes", "No"]


def test_workflow_filter_and_bad_rows(data_dir, tmp_path):
    lines = (data_dir / PENGUIN).read_text().splitlines()
    header, rows = lines[0], lines[1:]
    broken_tasks = rows[1].replace('"{""T0"":', '"{T0:', 1)
    bad_version = rows[2].replace(",31,true,", ",3x1,true,", 1)
    path = write(tmp_path / "workflows.csv",
                 "\n".join([header, rows[0], broken_tasks, bad_version, rows[0]]) + "\n")
    result = read_workflows(path)
    assert result.report.rows_read == 4 and result.report.rows_loaded == 1
    assert result.report.skipped == {"version is not a whole number": 1,
                                     "duplicate workflow version": 1,
                                     "tasks is not a JSON object": 1}
    assert result.report.skipped_lines["tasks is not a JSON object"] == [3]
    assert result.report.skipped_lines["version is not a whole number"] == [4]
    assert result.report.skipped_lines["duplicate workflow version"] == [5]

    only_6466 = read_workflows(data_dir / PENGUIN, workflow_id=6466)
    assert len(only_6466.workflows) == 5
    assert only_6466.report.skipped == {"other workflow (kept workflow 6466)": 9}


def test_identified(data_dir):
    assert identify_format(data_dir / PENGUIN) == "workflows"
    assert identify_format(data_dir / BATCH) == "workflows"


def test_not_a_workflow_export(tmp_path):
    with pytest.raises(FormatError, match="not a Zooniverse workflow export.*tasks"):
        read_workflows(write(tmp_path / "x.csv", "workflow_id,version\n1,2\n"))


test_junk_bytes = junk_bytes_test(read_workflows, "workflows.csv", use_cache=False)
test_junk_rows = junk_rows_test(read_workflows, DATA / PENGUIN, use_cache=False)
