"""Hand-made classification export rows for tests, in the real export's column layout."""

from __future__ import annotations

import csv
import json

HEADER = ["classification_id", "user_name", "user_id", "user_ip", "workflow_id", "workflow_name",
          "workflow_version", "created_at", "gold_standard", "expert", "metadata", "annotations",
          "subject_data", "subject_ids"]
FEM = {"classifier_version": "2.0", "started_at": "2024-01-01T10:00:00.000Z",
       "finished_at": "2024-01-01T10:00:30.000Z"}
PFE = {"started_at": "2024-01-01T10:00:00.000Z", "finished_at": "2024-01-01T10:01:00.000Z"}


def row(classification_id, annotations, user="alice", user_id="1", workflow_id=1, version="3.10",
        subject_id=100, metadata=PFE, subject_data=None, created_at="2024-01-01 10:00:00 UTC"):
    annotations = annotations if isinstance(annotations, str) else json.dumps(annotations)
    subject_data = subject_data or {str(subject_id): {"retired": None}}
    return [str(classification_id), user, user_id, "abc", str(workflow_id), "Clumps", version,
            created_at, "", "", json.dumps(metadata), annotations, json.dumps(subject_data),
            str(subject_id)]


def write_export(path, rows, header=HEADER):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def boxes(*values, task="T0"):
    return [{"task": task, "task_label": "Box the clumps", "value": list(values)}]
