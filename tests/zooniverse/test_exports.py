"""Fetching exports with panoptes-client from a real Panoptes-speaking HTTP server on loopback."""

from __future__ import annotations

import csv
import hashlib
import io
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import pytest

from data_loaders.base import FormatError
from zooniverse.exports import (
    DownloadError,
    FetchError,
    LoginError,
    fetch_exports,
    filter_classifications_by_workflow,
    read_manifest,
)
from tests.panoptes_server import (  # noqa: F401  (panoptes_server is a fixture)
    CLASSIFICATIONS_DATE,
    PASSWORD,
    PROJECT_ID,
    SUBJECTS_DATE,
    USERNAME,
    WORKFLOWS_DATE,
    Blob,
    Export,
    data_file,
    panoptes_server,
    two_workflow_classifications,
)

ROOT = Path(__file__).resolve().parents[2]


def fetch(server, out_dir, **options):
    settings = dict(
        project_id=PROJECT_ID,
        out_dir=out_dir,
        endpoint=server.endpoint,
        username=USERNAME,
        password=PASSWORD,
        poll_interval=0.05,
        request_timeout=5,
    )
    settings.update(options)
    return fetch_exports(**settings)


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def csv_rows(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode("utf-8"), newline="")))


def visible_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


EXPECTED = {
    "classifications": (two_workflow_classifications(), CLASSIFICATIONS_DATE),
    "subjects": (data_file("fetch/cat-project-subjects.csv"), SUBJECTS_DATE),
    "workflows": (data_file("fetch/batch_wf_export.csv"), WORKFLOWS_DATE),
}


@pytest.mark.parametrize("gzipped", [True, False], ids=["gzip-encoded", "identity"])
def test_latest_exports_are_downloaded_checked_and_listed_in_the_manifest(panoptes_server, tmp_path, gzipped):
    for export_type, (content, date) in EXPECTED.items():
        panoptes_server.publish(export_type, content, date, gzipped=gzipped)
    events = []

    result = fetch(panoptes_server, tmp_path, progress=events.append)

    assert result.project_name == "Many tools & supernovae (loopback)"
    assert result.pending == {}
    for export_type, (content, date) in EXPECTED.items():
        fetched = result.exports[export_type]
        assert fetched.path == tmp_path / f"project-{PROJECT_ID}-{export_type}.csv"
        assert fetched.path.read_bytes() == content
        assert fetched.sha256 == sha256(content)
        assert fetched.export_date == date
        assert fetched.downloaded
    media = panoptes_server.requests("GET", "/media/")
    assert len(media) == 3 and all(r.status == 200 for r in media)
    # Without --generate nothing asks Zooniverse to make an export.
    assert panoptes_server.requests("POST", "/api/") == []

    manifest = read_manifest(result.manifest_path)
    assert manifest["endpoint"] == panoptes_server.endpoint
    assert manifest["project"] == {"id": PROJECT_ID, "display_name": "Many tools & supernovae (loopback)"}
    entry = manifest["exports"]["classifications"]
    assert entry["export_type"] == "classifications"
    assert entry["project_id"] == PROJECT_ID
    assert entry["export_date"] == "2024-02-23T16:20:00+00:00"
    assert entry["sha256"] == sha256(EXPECTED["classifications"][0])
    assert entry["content_encoding"] == ("gzip" if gzipped else "identity")
    # No staging folder or temporary file is left behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"project-{PROJECT_ID}-classifications.csv",
        f"project-{PROJECT_ID}-manifest.json",
        f"project-{PROJECT_ID}-subjects.csv",
        f"project-{PROJECT_ID}-workflows.csv",
    ]

    downloads = [e for e in events if e.stage == "download" and e.export_type == "classifications"]
    encoded_size = len(panoptes_server.exports["classifications"].blob.body)
    assert downloads[0].bytes_total == encoded_size
    assert downloads[-1].bytes_done == encoded_size
    assert downloads[-1].bytes_per_second > 0


def test_a_second_fetch_of_current_exports_downloads_nothing(panoptes_server, tmp_path):
    first = fetch(panoptes_server, tmp_path)
    stamps = {name: e.path.stat().st_mtime_ns for name, e in first.exports.items()}
    manifest_before = read_manifest(first.manifest_path)
    panoptes_server.log.clear()

    second = fetch(panoptes_server, tmp_path)

    assert not any(e.downloaded for e in second.exports.values())
    media = panoptes_server.requests("GET", "/media/")
    assert [r.status for r in media] == [304, 304, 304]
    assert sum(r.body_bytes_sent for r in media) == 0
    assert all("If-None-Match" in r.headers for r in media)
    assert {name: e.path.stat().st_mtime_ns for name, e in second.exports.items()} == stamps
    assert read_manifest(second.manifest_path) == manifest_before
    assert second.exports["classifications"].export_date == CLASSIFICATIONS_DATE


def test_a_local_copy_that_was_changed_is_downloaded_again(panoptes_server, tmp_path):
    first = fetch(panoptes_server, tmp_path, exports=["subjects"])
    path = first.exports["subjects"].path
    path.write_bytes(path.read_bytes().replace(b"458021", b"458022"))
    panoptes_server.log.clear()

    second = fetch(panoptes_server, tmp_path, exports=["subjects"])

    assert second.exports["subjects"].downloaded
    (media,) = panoptes_server.requests("GET", "/media/")
    assert media.status == 200 and "If-None-Match" not in media.headers
    assert path.read_bytes() == data_file("fetch/cat-project-subjects.csv")


def test_a_newer_export_on_the_server_replaces_the_local_copy(panoptes_server, tmp_path):
    panoptes_server.publish("classifications", data_file("discnet/many-tools-classifications.csv"), datetime(2024, 1, 2, tzinfo=timezone.utc))
    fetch(panoptes_server, tmp_path, exports=["classifications"], workflow_id=21790)
    panoptes_server.publish("classifications", two_workflow_classifications(), CLASSIFICATIONS_DATE)

    result = fetch(panoptes_server, tmp_path, exports=["classifications"], workflow_id=21790)

    fetched = result.exports["classifications"]
    assert fetched.downloaded and fetched.export_date == CLASSIFICATIONS_DATE
    assert fetched.path.read_bytes() == two_workflow_classifications()
    assert fetched.workflow_filter.rows_removed == 7


def test_generate_waits_for_the_new_export_then_downloads_it(panoptes_server, tmp_path):
    older = datetime(2024, 1, 2, 12, 0, tzinfo=timezone.utc)
    panoptes_server.publish("classifications", data_file("discnet/many-tools-classifications.csv"), older)
    fresh = Blob.of(two_workflow_classifications(), CLASSIFICATIONS_DATE)
    panoptes_server.generate["classifications"] = ("ready_after", 0.3, fresh)

    result = fetch(panoptes_server, tmp_path, exports=["classifications"], generate=True, timeout=5)

    assert result.pending == {}
    fetched = result.exports["classifications"]
    assert fetched.path.read_bytes() == two_workflow_classifications()
    assert fetched.export_date == CLASSIFICATIONS_DATE
    assert len(panoptes_server.requests("POST", "/api/projects/4242/classifications_export")) == 1
    # It polled while the export was being made, rather than taking the older file at once.
    assert len(panoptes_server.requests("GET", "/api/projects/4242/classifications_export")) >= 2
    assert len(panoptes_server.requests("GET", "/media/")) == 1


def test_generate_that_never_becomes_ready_offers_the_latest_existing_export(panoptes_server, tmp_path):
    panoptes_server.generate["classifications"] = ("never",)
    panoptes_server.generate["workflows"] = ("ready_after", 0.0, Blob.of(data_file("fetch/batch_wf_export.csv"), WORKFLOWS_DATE))

    result = fetch(panoptes_server, tmp_path, exports=["classifications", "workflows"], generate=True, timeout=0.5)

    assert list(result.exports) == ["workflows"]
    pending = result.pending["classifications"]
    assert pending.latest_export_date == CLASSIFICATIONS_DATE
    assert "did not finish the new classifications export within 0.5 s" in pending.message
    assert "one export of each kind per project per day" in pending.message
    assert "latest existing classifications export is from 2024-02-23 16:20 UTC" in pending.message
    assert not (tmp_path / f"project-{PROJECT_ID}-classifications.csv").exists()
    assert "classifications" not in read_manifest(result.manifest_path)["exports"]


def test_generate_never_ready_with_no_earlier_export_says_so(panoptes_server, tmp_path):
    panoptes_server.exports.pop("subjects")
    panoptes_server.generate["subjects"] = ("never",)

    result = fetch(panoptes_server, tmp_path, exports=["subjects"], generate=True, timeout=0.2)

    pending = result.pending["subjects"]
    assert pending.latest_export_date is None
    assert "No earlier subjects export exists" in pending.message


def test_while_a_new_export_is_being_made_the_previous_one_is_fetched(panoptes_server, tmp_path):
    panoptes_server.exports["subjects"].state = "creating"
    events = []

    result = fetch(panoptes_server, tmp_path, exports=["subjects"], progress=events.append)

    assert result.exports["subjects"].path.read_bytes() == data_file("fetch/cat-project-subjects.csv")
    assert result.exports["subjects"].export_date == SUBJECTS_DATE
    assert "Zooniverse is making a new subjects export right now; fetching the previous one" in [e.message for e in events]


def test_while_the_first_export_is_being_made_it_says_to_come_back_later(panoptes_server, tmp_path):
    panoptes_server.exports["subjects"] = Export(90500, "creating", None, SUBJECTS_DATE)

    with pytest.raises(DownloadError, match="no finished subjects export exists yet: Zooniverse is still making the first one"):
        fetch(panoptes_server, tmp_path, exports=["subjects"])
    assert visible_files(tmp_path) == []


def test_an_interrupted_download_leaves_no_file_and_the_rerun_resumes_it(panoptes_server, tmp_path):
    blob = panoptes_server.exports["classifications"].blob
    cut = len(blob.body) // 2
    panoptes_server.cut_after = cut

    with pytest.raises(DownloadError, match=rf"interrupted after {cut:,} of {len(blob.body):,} bytes.*resume"):
        fetch(panoptes_server, tmp_path, exports=["classifications"])

    assert visible_files(tmp_path) == []
    parts = list((tmp_path / ".zoolens-partial").glob("*.part"))
    assert [p.stat().st_size for p in parts] == [cut]

    result = fetch(panoptes_server, tmp_path, exports=["classifications"])

    resumed = panoptes_server.requests("GET", "/media/")[-1]
    assert resumed.headers["Range"] == f"bytes={cut}-"
    assert resumed.headers["If-Range"] == blob.etag
    assert resumed.status == 206 and resumed.body_bytes_sent == len(blob.body) - cut
    assert result.exports["classifications"].path.read_bytes() == two_workflow_classifications()
    assert not (tmp_path / ".zoolens-partial").exists()


def test_an_interrupted_download_restarts_when_the_export_changed_meanwhile(panoptes_server, tmp_path):
    panoptes_server.cut_after = 1000
    with pytest.raises(DownloadError, match="interrupted"):
        fetch(panoptes_server, tmp_path, exports=["classifications"])
    newer = data_file("discnet/many-tools-classifications.csv")
    panoptes_server.publish("classifications", newer, datetime(2024, 3, 1, tzinfo=timezone.utc))

    result = fetch(panoptes_server, tmp_path, exports=["classifications"])

    restarted = panoptes_server.requests("GET", "/media/")[-1]
    assert "If-Range" in restarted.headers and restarted.status == 200
    assert result.exports["classifications"].path.read_bytes() == newer


def test_wrong_credentials_give_a_clear_error_without_the_password(panoptes_server, tmp_path):
    with pytest.raises(LoginError) as caught:
        fetch(panoptes_server, tmp_path, password="not-" + PASSWORD)

    message = str(caught.value)
    assert "Invalid email or password." in message
    assert USERNAME in message and PASSWORD not in message
    assert visible_files(tmp_path) == []


@pytest.mark.parametrize(
    "status, content_type, body, expected",
    [
        (200, "text/html; charset=utf-8", b"<!DOCTYPE html><html><body>Sign in to Zooniverse</body></html>", "web page"),
        (200, "text/csv", b"\n  <!DOCTYPE html><html><body>Service unavailable</body></html>", "web page, not CSV"),
        (403, "application/xml", b'<?xml version="1.0"?><Error><Code>AuthenticationFailed</Code></Error>', "HTTP 403"),
        (200, "text/csv", b"id,name\n1,not an export\n", "lacks the column"),
    ],
    ids=["html-content-type", "html-body-as-csv", "storage-403", "wrong-columns"],
)
def test_an_error_page_is_never_saved_as_the_export(panoptes_server, tmp_path, status, content_type, body, expected):
    panoptes_server.media_error_page = (status, content_type, body)

    with pytest.raises(DownloadError, match=expected):
        fetch(panoptes_server, tmp_path, exports=["classifications"])

    assert visible_files(tmp_path) == []
    assert list(tmp_path.glob(".zoolens-partial/*")) == []


def test_workflow_filter_keeps_its_rows_verbatim_and_counts_the_rest(panoptes_server, tmp_path):
    result = fetch(panoptes_server, tmp_path, exports=["classifications"], workflow_id=21790)

    fetched = result.exports["classifications"]
    selected = fetched.workflow_filter
    assert selected.path == tmp_path / f"project-{PROJECT_ID}-classifications-workflow-21790.csv"
    assert result.paths["classifications"] == selected.path
    assert (selected.rows_read, selected.rows_kept, selected.rows_removed) == (20, 13, 7)
    assert selected.removed_by_workflow == {"10": 7}
    # Every value of the kept rows is as in the original DISCnet export (read independently).
    assert csv_rows(selected.path.read_bytes()) == csv_rows(data_file("discnet/many-tools-classifications.csv"))
    # The unfiltered export stays as Zooniverse served it.
    assert fetched.path.read_bytes() == two_workflow_classifications()
    record = read_manifest(result.manifest_path)["exports"]["classifications"]["workflows"]["21790"]
    assert (record["rows_kept"], record["rows_removed"], record["removed_by_workflow"]) == (13, 7, {"10": 7})

    panoptes_server.log.clear()
    other = fetch(panoptes_server, tmp_path, exports=["classifications"], workflow_id=10).exports["classifications"]

    # The export is current, so the other workflow is filtered from the local copy.
    assert [r.status for r in panoptes_server.requests("GET", "/media/")] == [304]
    assert (other.workflow_filter.rows_kept, other.workflow_filter.removed_by_workflow) == (7, {"21790": 13})
    assert csv_rows(other.workflow_filter.path.read_bytes())[1:] == csv_rows(data_file("fetch/batch_cls_export.csv"))[1:]


def test_workflow_filter_skips_and_counts_rows_that_do_not_split_into_columns(tmp_path):
    source = tmp_path / "classifications.csv"
    broken_row = b"999999999,someone,12\n"  # 3 of 14 columns
    source.write_bytes(two_workflow_classifications() + broken_row)

    selected = filter_classifications_by_workflow(source, tmp_path / "21790.csv", 21790)

    assert (selected.rows_read, selected.rows_kept, selected.rows_removed, selected.rows_malformed) == (21, 13, 7, 1)


def test_workflow_filter_needs_a_workflow_id_column(tmp_path):
    source = tmp_path / "subjects.csv"
    source.write_bytes(data_file("fetch/cat-project-subjects.csv").replace(b"workflow_id", b"workflow", 1))
    with pytest.raises(FormatError, match="subjects.csv: line 1: no workflow_id column"):
        filter_classifications_by_workflow(source, tmp_path / "out.csv", 1)


def test_a_workflow_of_another_project_is_refused(panoptes_server, tmp_path):
    with pytest.raises(FetchError, match="workflow 777 belongs to project 999, not to project 4242"):
        fetch(panoptes_server, tmp_path, workflow_id=777)
    assert panoptes_server.requests("GET", "/media/") == []


def test_an_unknown_project_is_reported(panoptes_server, tmp_path):
    with pytest.raises(FetchError, match="project 31337 was not found"):
        fetch(panoptes_server, tmp_path, project_id=31337)


def test_an_unknown_export_type_lists_the_known_ones(panoptes_server, tmp_path):
    with pytest.raises(ValueError, match="unknown export type.*'talk_comments'.*known: classifications, subjects, workflows"):
        fetch(panoptes_server, tmp_path, exports=["talk_comments"])


def test_it_runs_on_a_worker_thread_as_the_signed_in_user(panoptes_server, tmp_path):
    with ThreadPoolExecutor(max_workers=1) as pool:
        result = pool.submit(fetch, panoptes_server, tmp_path, exports=["classifications"]).result()

    assert result.exports["classifications"].path.read_bytes() == two_workflow_classifications()
    describe = panoptes_server.requests("GET", "/api/projects/4242/classifications_export")
    assert describe[0].status == 200
    assert describe[0].headers["Authorization"].removeprefix("Bearer ") in panoptes_server.tokens
    # Nothing was installed as the calling thread's client.
    from panoptes_client import Panoptes

    assert getattr(Panoptes._local, "panoptes_client", None) is None


def test_anonymous_fetch_never_signs_in_with_credentials_from_the_environment(panoptes_server, tmp_path, monkeypatch):
    monkeypatch.setenv("PANOPTES_USERNAME", USERNAME)
    monkeypatch.setenv("PANOPTES_PASSWORD", PASSWORD)

    with pytest.raises(FetchError, match="no classifications export exists for project 4242 yet"):
        fetch(panoptes_server, tmp_path, exports=["classifications"], username=None, password=None)

    assert panoptes_server.requests("POST", "/users/sign_in") == []
    assert panoptes_server.requests("POST", "/oauth/token") == []


def test_the_password_is_written_nowhere(panoptes_server, tmp_path, caplog):
    caplog.set_level("DEBUG")
    fetch(panoptes_server, tmp_path, workflow_id=21790)
    with pytest.raises(LoginError):
        fetch(panoptes_server, tmp_path, password=PASSWORD + "x")

    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert PASSWORD.encode() not in path.read_bytes(), path
    assert PASSWORD not in caplog.text


def test_importing_panoptes_client_through_zoolens_leaves_root_logging_alone():
    code = (
        "import logging\n"
        "from zooniverse.exports import _import_panoptes\n"
        "_import_panoptes()\n"
        "root = logging.getLogger()\n"
        "print(len(root.handlers), root.level)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0", str(30)]  # no handler added; level still WARNING


def test_the_filtered_export_loads_as_the_loader_filters_the_full_one(panoptes_server, tmp_path):
    from data_loaders.classifications import read_classifications

    fetched = fetch(panoptes_server, tmp_path, exports=["classifications"], workflow_id=21790).exports["classifications"]

    filtered = read_classifications(fetched.workflow_filter.path)
    full = read_classifications(fetched.path, workflow_id=21790)
    assert filtered.report.rows_loaded == full.report.rows_loaded == 13
    assert filtered.classifications.equals(full.classifications)
    assert filtered.marks.equals(full.marks)
