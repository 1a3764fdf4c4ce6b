"""Fetch a project's data exports from Zooniverse with panoptes-client, ready for the loaders.

`fetch_exports` signs in, finds the latest existing export of each kind (or asks Zooniverse for a
fresh one and waits for it), streams it into a hidden staging folder, checks that it is the CSV it
should be, decodes gzip, and moves it into place atomically. A manifest beside the files records
what each file is (project, workflow, export type, export date, SHA-256), so fetching again skips
exports that are already current. With a workflow id, the classification export is also written
filtered to that workflow, counting the rows of other workflows it removed.

panoptes-client 1.7 does a few things this module works around (see the project design notes):

- ``Panoptes(username=None, password=None)`` silently signs in with ``PANOPTES_USERNAME`` /
  ``PANOPTES_PASSWORD`` from the environment, so an anonymous fetch in a served app would use the
  server operator's account. `connect` passes empty strings instead and never reads the environment.
- The client in use is per thread; a worker thread silently gets an anonymous production client.
  Every API call here runs inside ``with client:``, so `fetch_exports` works off the event loop.
- Its requests have no timeout, and ``get_export`` downloads with no status check and no resume.
  Requests here get a timeout, and the download is done here.
- Importing it calls ``logging.basicConfig``; `_import_panoptes` undoes that.

No Panel here: the dashboard's dialog runs `fetch_exports` in a thread with a progress callback.
"""

from __future__ import annotations

import email.utils
import gzip
import hashlib
import json
import logging
import os
import re
import tempfile
import time
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator
from urllib.parse import urlsplit

import requests
import urllib3

from data_loaders.base import FormatError, csv_header, read_head
from data_loaders.cache import file_digest

PRODUCTION_ENDPOINT = "https://www.zooniverse.org"
STAGING_ENDPOINT = "https://panoptes-staging.zooniverse.org"

#: The project exports `fetch_exports` knows, and the columns line 1 of each must have.
REQUIRED_COLUMNS = {
    "classifications": ("classification_id", "workflow_id", "annotations", "subject_ids"),
    "subjects": ("subject_id", "locations"),
    "workflows": ("workflow_id", "tasks"),
}
EXPORT_TYPES = tuple(REQUIRED_COLUMNS)

#: Medium states meaning the file is complete (panoptes-client accepts both).
READY_STATES = ("ready", "finished")
DEFAULT_GENERATE_TIMEOUT = 600.0
DEFAULT_POLL_INTERVAL = 10.0
DEFAULT_REQUEST_TIMEOUT = 60.0
CHUNK_BYTES = 1 << 20
#: Hidden folder inside the output folder holding downloads in progress, so a rerun can resume.
STAGING_DIR = ".zoolens-partial"
MANIFEST_VERSION = 1


class FetchError(RuntimeError):
    """Fetching from Zooniverse failed; the message says what happened and what to do next."""


class LoginError(FetchError):
    """Signing in to Zooniverse failed."""


class DownloadError(FetchError):
    """An export could not be downloaded, or what came back is not the export."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        #: The HTTP status storage answered with, when that was the problem.
        self.status = status


@dataclass(frozen=True)
class FetchProgress:
    """One progress event: a stage message, and byte counts while downloading.

    ``stage`` is one of "connect", "project", "generate", "wait", "download", "resume",
    "current", "filter", "saved". During "download", ``bytes_done`` counts the bytes of the
    (possibly gzip-encoded) body received so far, including any resumed part, out of
    ``bytes_total`` (None when the server does not say).
    """

    stage: str
    message: str
    export_type: str | None = None
    bytes_done: int = 0
    bytes_total: int | None = None
    bytes_per_second: float = 0.0


@dataclass
class WorkflowFilter:
    """The classification export filtered to one workflow, and what the filter removed."""

    workflow_id: int
    path: Path
    sha256: str
    rows_read: int
    rows_kept: int
    #: Rows of other workflows removed, by the workflow id found in the row.
    removed_by_workflow: dict[str, int]
    #: Rows pyarrow could not split into the header's columns; skipped and counted.
    rows_malformed: int = 0

    @property
    def rows_removed(self) -> int:
        return sum(self.removed_by_workflow.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "workflow_id": self.workflow_id,
            "file": self.path.name,
            "sha256": self.sha256,
            "rows_read": self.rows_read,
            "rows_kept": self.rows_kept,
            "rows_removed": self.rows_removed,
            "removed_by_workflow": self.removed_by_workflow,
            "rows_malformed": self.rows_malformed,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], folder: Path) -> WorkflowFilter:
        return cls(
            workflow_id=int(data["workflow_id"]),
            path=folder / data["file"],
            sha256=data["sha256"],
            rows_read=int(data["rows_read"]),
            rows_kept=int(data["rows_kept"]),
            removed_by_workflow={str(k): int(v) for k, v in data["removed_by_workflow"].items()},
            rows_malformed=int(data.get("rows_malformed", 0)),
        )


@dataclass
class FetchedExport:
    """One export on disk: the file as Zooniverse serves it, and its workflow-filtered copy."""

    export_type: str
    path: Path
    export_date: datetime | None
    sha256: str
    size: int
    #: False when the local copy was already current and nothing was downloaded.
    downloaded: bool
    workflow_filter: WorkflowFilter | None = None

    @property
    def load_path(self) -> Path:
        """The file to hand to the loaders: the workflow-filtered copy when there is one."""
        return self.workflow_filter.path if self.workflow_filter else self.path


@dataclass
class PendingExport:
    """An export requested with ``generate=True`` that was not ready within the timeout."""

    export_type: str
    waited: float
    #: Date of the latest existing export of this kind, None if there is none.
    latest_export_date: datetime | None

    @property
    def message(self) -> str:
        text = (
            f"Zooniverse did not finish the new {self.export_type} export within {self.waited:g} s. "
            "It allows one export of each kind per project per day and silently drops further "
            "requests, so this one may never become ready."
        )
        if self.latest_export_date is None:
            return text + (
                f" No earlier {self.export_type} export exists; try again later with a longer "
                "timeout (exports of big projects can take hours)."
            )
        return text + (
            f" The latest existing {self.export_type} export is from "
            f"{format_date(self.latest_export_date)}; fetch again without generating a new one "
            "to download it."
        )


@dataclass
class FetchResult:
    """What `fetch_exports` fetched, what it is still waiting for, and the manifest it wrote."""

    project_id: int
    project_name: str
    exports: dict[str, FetchedExport]
    pending: dict[str, PendingExport]
    manifest_path: Path
    manifest: dict[str, Any] = field(repr=False)

    @property
    def paths(self) -> dict[str, Path]:
        """Export type -> the file to load (workflow-filtered for classifications when asked)."""
        return {name: export.load_path for name, export in self.exports.items()}


def format_date(moment: datetime) -> str:
    """A date as shown to users: ``2024-02-23 16:20 UTC``."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def export_file_name(project_id: int, export_type: str) -> str:
    return f"project-{project_id}-{export_type}.csv"


def workflow_file_name(project_id: int, workflow_id: int) -> str:
    return f"project-{project_id}-classifications-workflow-{workflow_id}.csv"


def manifest_file_name(project_id: int) -> str:
    return f"project-{project_id}-manifest.json"


def read_manifest(path: str | os.PathLike) -> dict[str, Any]:
    """The manifest `fetch_exports` wrote: endpoint, project, and one entry per export type."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _import_panoptes():
    """Import panoptes_client without letting it configure the host application's logging."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    import panoptes_client

    # Its import calls logging.basicConfig, which would add a handler to (and set the level of)
    # the root logger of whatever app or notebook imports zoolens.
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    return panoptes_client


class _TimeoutAdapter(requests.adapters.HTTPAdapter):
    """Gives every request a timeout: panoptes-client sets none, so a stalled server would hang for ever."""

    def __init__(self, timeout: float):
        super().__init__()
        self.timeout = timeout

    def send(self, request, timeout=None, **kwargs):
        return super().send(request, timeout=self.timeout if timeout is None else timeout, **kwargs)


def _mount_timeouts(session: requests.Session, timeout: float) -> requests.Session:
    adapter = _TimeoutAdapter(timeout)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _reason(error: BaseException) -> str:
    # Only the class name: the text of requests' errors holds URLs, and media URLs are signed.
    return type(error).__name__


def _shown_url(url: str) -> str:
    """A URL without its query string, which for media holds a signature."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _check_endpoint(endpoint: str) -> str:
    endpoint = endpoint.rstrip("/")
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise FetchError(
            f"endpoint {endpoint!r} is not an http(s) URL; use e.g. {PRODUCTION_ENDPOINT} "
            f"or {STAGING_ENDPOINT}"
        )
    return endpoint


@contextmanager
def _api_errors(what: str) -> Iterator[None]:
    """Turn panoptes-client and requests failures into a FetchError that says what was being done."""
    from panoptes_client.panoptes import PanoptesAPIException

    try:
        yield
    except PanoptesAPIException as error:
        raise FetchError(f"{what}: {error}") from None
    except requests.RequestException as error:
        raise FetchError(f"{what}: the server could not be reached ({_reason(error)})") from None
    except KeyError as error:
        # panoptes-client indexes answers without checking, e.g. a token answer with no access_token.
        raise FetchError(f"{what}: the server's answer lacked {error}") from error


def connect(
    endpoint: str = PRODUCTION_ENDPOINT,
    username: str | None = None,
    password: str | None = None,
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
):
    """A panoptes-client ``Panoptes`` client for ``endpoint``, signed in when credentials are given.

    Unlike ``Panoptes.connect`` this never reads credentials from the environment (with no
    credentials it stays anonymous), does not install itself as the current thread's client
    (use ``with client:``), and gives every request a timeout.

    Parameters
    ----------
    endpoint : str
        The Panoptes server, e.g. ``https://www.zooniverse.org`` or the staging server.
    username, password : str, optional
        Zooniverse credentials. Both or neither.
    request_timeout : float
        Seconds to wait for the server to connect and to answer each read.

    Raises
    ------
    LoginError
        The sign-in failed (wrong credentials, or the endpoint is not a Panoptes server).
    """
    panoptes = _import_panoptes()
    from panoptes_client.panoptes import PanoptesAPIException

    endpoint = _check_endpoint(endpoint)
    if bool(username) != bool(password):
        raise LoginError("signing in needs both a Zooniverse username and a password")
    # Empty strings, not None: with None panoptes-client signs in as PANOPTES_USERNAME.
    client = panoptes.Panoptes(endpoint=endpoint, username="", password="")
    _mount_timeouts(client.session, request_timeout)
    if not username:
        return client
    try:
        client.login(username, password)
    except PanoptesAPIException as error:
        raise LoginError(f"signing in to {endpoint} as {username!r} failed: {error}") from None
    except KeyError:
        raise LoginError(
            f"{endpoint} does not look like a Zooniverse (Panoptes) server: its sign-in page "
            "sent no CSRF token; check --endpoint"
        ) from None
    except ValueError:
        raise LoginError(
            f"signing in to {endpoint} failed: the server did not answer in JSON; check --endpoint"
        ) from None
    except requests.RequestException as error:
        raise LoginError(f"cannot reach {endpoint} to sign in ({_reason(error)})") from None
    return client


def fetch_exports(
    project_id: int,
    workflow_id: int | None = None,
    exports: Iterable[str] = EXPORT_TYPES,
    generate: bool = False,
    timeout: float = DEFAULT_GENERATE_TIMEOUT,
    out_dir: str | os.PathLike = ".",
    endpoint: str = PRODUCTION_ENDPOINT,
    username: str | None = None,
    password: str | None = None,
    progress: Callable[[FetchProgress], None] | None = None,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
) -> FetchResult:
    """Download a project's exports from Zooniverse into ``out_dir``.

    Safe to call from a worker thread. Each export lands as ``project-<ID>-<type>.csv`` (decoded
    from gzip, checked to be the CSV it should be, moved into place atomically), listed in
    ``project-<ID>-manifest.json``. An export whose local copy is still current (the server
    answers "not modified") is not downloaded again. An interrupted download leaves no file under
    the export's name; its bytes wait in the hidden ``.zoolens-partial`` folder and the next call
    resumes it (HTTP Range) or, if the export changed meanwhile, starts it again.

    Parameters
    ----------
    project_id : int
        The Zooniverse project id.
    workflow_id : int, optional
        Also write the classification export filtered to this workflow
        (``project-<ID>-classifications-workflow-<WID>.csv``), counting the rows removed. The
        workflow must belong to the project.
    exports : iterable of str
        Any of "classifications", "subjects", "workflows".
    generate : bool
        Ask Zooniverse for fresh exports and wait up to ``timeout`` seconds for them. Exports
        that are not ready by then are listed in ``FetchResult.pending`` (with the date of the
        latest existing export) and not downloaded.
    timeout : float
        Seconds to wait for generated exports.
    out_dir : path
        Folder for the files and the manifest; created if missing.
    endpoint : str
        The Panoptes server.
    username, password : str, optional
        Zooniverse credentials. Without them the fetch is anonymous (the environment is never
        read), and Zooniverse shows anonymous users no classification or subject exports.
    progress : callable, optional
        Called with a `FetchProgress` for each stage and for each chunk downloaded.
    poll_interval : float
        Seconds between checks on a generated export.
    request_timeout : float
        Seconds to wait for the server on each request.

    Returns
    -------
    FetchResult
        ``.paths`` maps each fetched export type to the file to load; ``.exports`` has dates,
        hashes and the workflow filter counts; ``.pending`` the generated exports not ready.

    Raises
    ------
    LoginError
        Wrong credentials, or the endpoint is not a Panoptes server.
    DownloadError
        A download failed or returned something other than the export (e.g. an HTML page).
    FetchError
        Anything else Zooniverse refused: unknown project, workflow of another project, no
        export of that kind yet...
    """
    export_types = _check_export_types(exports)
    project_id = int(project_id)
    workflow_id = None if workflow_id is None else int(workflow_id)
    endpoint = _check_endpoint(endpoint)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    emit = _Emitter(progress)
    panoptes = _import_panoptes()

    emit("connect", f"signing in to {endpoint} as {username}" if username else f"connecting to {endpoint} anonymously")
    client = connect(endpoint, username, password, request_timeout)
    media = _mount_timeouts(requests.Session(), request_timeout)
    manifest_path = out_dir / manifest_file_name(project_id)
    manifest = _load_manifest(manifest_path, endpoint, project_id)
    fetched: dict[str, FetchedExport] = {}
    # The client is per thread in panoptes-client: every API call must run inside this block.
    with client, media:
        project = _find_project(panoptes, project_id, endpoint)
        project_name = str(project.raw.get("display_name") or "")
        emit("project", f"project {project_id}: {project_name}")
        if workflow_id is not None:
            _check_workflow(panoptes, workflow_id, project_id, endpoint)
        manifest["project"] = {"id": project_id, "display_name": project_name}
        if generate:
            ready, pending = _generate_and_wait(project, export_types, timeout, poll_interval, media, emit)
        else:
            # Look every export up before the first download, so a missing one fails early.
            ready, pending = [name for name in export_types if _describe(project, name)], {}
        for export_type in ready:
            # Described again just before its download: the storage link in it expires.
            medium = _describe(project, export_type)
            fetched[export_type] = _fetch_one(
                export_type, medium, project_id, workflow_id, out_dir, manifest, media, emit
            )
            _write_json_atomic(manifest_path, manifest)
    _write_json_atomic(manifest_path, manifest)
    _remove_empty_staging(out_dir)
    return FetchResult(project_id, project_name, fetched, pending, manifest_path, manifest)


class _Emitter:
    """Calls the progress callback, if any, with a FetchProgress built from keyword arguments."""

    def __init__(self, callback: Callable[[FetchProgress], None] | None):
        self.callback = callback

    def __call__(self, stage: str, message: str, export_type: str | None = None, **counts) -> None:
        if self.callback is not None:
            self.callback(FetchProgress(stage, message, export_type, **counts))


def _check_export_types(exports: Iterable[str]) -> tuple[str, ...]:
    if isinstance(exports, str):
        exports = exports.split(",")
    names = tuple(dict.fromkeys(str(name).strip() for name in exports))
    unknown = [name for name in names if name not in REQUIRED_COLUMNS]
    if unknown or not names:
        raise ValueError(
            f"unknown export type(s) {', '.join(map(repr, unknown)) or '(none given)'}; "
            f"known: {', '.join(EXPORT_TYPES)}"
        )
    return names


#: How Panoptes words a lookup of an id it does not have (or does not show to this user).
_NOT_FOUND = re.compile(r"could(?:n't| not) find", re.IGNORECASE)


def _find_project(panoptes, project_id: int, endpoint: str):
    from panoptes_client.panoptes import PanoptesAPIException

    with _api_errors(f"looking up project {project_id} at {endpoint}"):
        try:
            return panoptes.Project.find(project_id)
        except PanoptesAPIException as error:
            if not _NOT_FOUND.search(str(error)):
                raise
    raise FetchError(
        f"project {project_id} was not found at {endpoint}: check the id, and sign in as one of "
        "its collaborators if it is private"
    )


def _check_workflow(panoptes, workflow_id: int, project_id: int, endpoint: str) -> None:
    from panoptes_client.panoptes import PanoptesAPIException

    with _api_errors(f"looking up workflow {workflow_id} at {endpoint}"):
        try:
            workflow = panoptes.Workflow.find(workflow_id)
        except PanoptesAPIException as error:
            if not _NOT_FOUND.search(str(error)):
                raise
            raise FetchError(f"workflow {workflow_id} was not found at {endpoint}") from None
    owner = (workflow.raw.get("links") or {}).get("project")
    if str(owner) != str(project_id):
        raise FetchError(
            f"workflow {workflow_id} belongs to project {owner}, not to project {project_id}"
        )


def _describe(project, export_type: str) -> dict[str, Any]:
    """The medium (src URL, state, id, created_at) of the project's latest export of this kind."""
    from panoptes_client.panoptes import PanoptesAPIException

    what = f"looking up the {export_type} export of project {project.id}"
    with _api_errors(what):
        try:
            description = project.describe_export(export_type)
        except PanoptesAPIException as error:
            if "exists" not in str(error):
                raise
            description = None
    media = (description or {}).get("media") or []
    if not media:
        raise FetchError(
            f"no {export_type} export exists for project {project.id} yet; fetch with --generate "
            "(generate=True) to ask Zooniverse for one. Zooniverse shows exports only to the "
            "project's owners and collaborators, so sign in as one of them."
        )
    medium = media[0]
    if not medium.get("src"):
        raise FetchError(f"{what}: the answer has no download link (media src)")
    return medium


def _state(medium: dict[str, Any]) -> str:
    return str((medium.get("metadata") or {}).get("state", ""))


def _generate_and_wait(project, export_types, timeout, poll_interval, media, emit):
    """Ask for new exports and poll until each is ready or the timeout passes.

    Returns the export types that became ready, and a PendingExport for each of the others.
    """
    for export_type in export_types:
        with _api_errors(f"asking Zooniverse for a new {export_type} export"):
            answer = project.generate_export(export_type)
        if not answer or not answer.get("media"):
            # panoptes-client returns None instead of raising when, e.g., the token has expired.
            raise FetchError(
                f"Zooniverse did not accept the request for a new {export_type} export (its "
                "answer was empty; the sign-in may have expired). Try again."
            )
        emit("generate", f"asked Zooniverse for a new {export_type} export", export_type)
    started = time.monotonic()
    deadline = started + timeout
    waiting = list(export_types)
    latest: dict[str, dict[str, Any]] = {}
    while True:
        for export_type in list(waiting):
            latest[export_type] = _describe(project, export_type)
            if _state(latest[export_type]) in READY_STATES:
                waiting.remove(export_type)
        now = time.monotonic()
        if not waiting or now >= deadline:
            break
        emit(
            "wait",
            f"waiting for Zooniverse to finish the {', '.join(waiting)} export(s): "
            f"{now - started:.0f} s of {timeout:g} s",
        )
        time.sleep(max(0.0, min(poll_interval, deadline - now)))
    pending = {
        export_type: PendingExport(export_type, timeout, _existing_export_date(media, latest[export_type]))
        for export_type in waiting
    }
    return [name for name in export_types if name not in waiting], pending


def _existing_export_date(media: requests.Session, medium: dict[str, Any]) -> datetime | None:
    """Date of the file a medium's link serves now (the previous export while a new one is made)."""
    try:
        with media.get(medium["src"], headers={"Range": "bytes=0-0"}, stream=True) as response:
            if response.status_code not in (200, 206):
                return None
            return _parse_http_date(response.headers.get("Last-Modified"))
    except requests.RequestException:
        return None


def _parse_http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value).astimezone(timezone.utc)
    except (TypeError, ValueError):
        return None


def _parse_iso(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(timezone.utc)
    except ValueError:
        return None


def _load_manifest(path: Path, endpoint: str, project_id: int) -> dict[str, Any]:
    try:
        manifest = read_manifest(path)
    except (OSError, ValueError):
        manifest = None
    if (
        not isinstance(manifest, dict)
        or manifest.get("version") != MANIFEST_VERSION
        or manifest.get("endpoint") != endpoint
        or (manifest.get("project") or {}).get("id") != project_id
        or not isinstance(manifest.get("exports"), dict)
    ):
        # A manifest from another server (staging has the same project ids) or an unreadable one
        # vouches for nothing: start afresh, and the files get downloaded again.
        manifest = {"version": MANIFEST_VERSION, "endpoint": endpoint, "project": {"id": project_id}, "exports": {}}
    return manifest


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(data, stream, indent=2, sort_keys=True)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _is_intact(path: Path, record: dict[str, Any]) -> bool:
    """Whether ``path`` still holds what the manifest ``record`` says (size, then hash)."""
    try:
        stat = path.stat()
    except OSError:
        return False
    if stat.st_size != record.get("size"):
        return False
    if stat.st_mtime_ns == record.get("mtime_ns"):
        return True
    # Touched since: only the content decides (hashing a big export takes seconds, not minutes).
    if file_digest(path) != record.get("sha256"):
        return False
    record["mtime_ns"] = stat.st_mtime_ns  # so the next fetch need not hash it again
    return True


def _fetch_one(export_type, medium, project_id, workflow_id, out_dir, manifest, media, emit) -> FetchedExport:
    target = out_dir / export_file_name(project_id, export_type)
    entry = manifest["exports"].get(export_type)
    current = entry if entry and _is_intact(target, entry) else None
    making_new = _state(medium) not in READY_STATES
    if making_new:
        emit(
            "wait",
            f"Zooniverse is making a new {export_type} export right now; fetching the previous one",
            export_type,
        )
    try:
        download = _download(media, medium["src"], out_dir / STAGING_DIR, target.stem, current, export_type, emit)
    except DownloadError as error:
        if making_new and error.status == 404:
            # No file behind the link yet: the first export of this kind is still being made.
            raise DownloadError(
                f"no finished {export_type} export exists yet: Zooniverse is still making the first "
                "one. Fetch again later, or with --generate and a long --timeout to wait for it",
                error.status,
            ) from None
        raise
    if download is None:
        entry = current
        emit("current", f"the {export_type} export here is current: {target}", export_type)
    else:
        sha256, size = _finalize(download, target, export_type)
        _discard_filtered(out_dir, entry)
        entry = {
            "export_type": export_type,
            "project_id": project_id,
            "file": target.name,
            "export_date": _iso(_parse_http_date(download.last_modified) or _parse_iso(medium.get("created_at"))),
            "last_modified": download.last_modified,
            "etag": download.etag,
            "medium_id": medium.get("id"),
            "medium_created_at": medium.get("created_at"),
            "source": _shown_url(medium["src"]),
            "content_encoding": download.encoding,
            "size": size,
            "sha256": sha256,
            "mtime_ns": target.stat().st_mtime_ns,
            "fetched_at": _iso(datetime.now(timezone.utc)),
            "workflows": {},
        }
        manifest["exports"][export_type] = entry
        emit("saved", f"{export_type} export saved: {target} ({size:,} bytes)", export_type)
    fetched = FetchedExport(
        export_type, target, _parse_iso(entry["export_date"]), entry["sha256"], entry["size"], download is not None
    )
    if workflow_id is not None and export_type == "classifications":
        fetched.workflow_filter = _filtered(entry, target, workflow_id, out_dir, project_id, emit)
    return fetched


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _discard_filtered(out_dir: Path, entry: dict[str, Any] | None) -> None:
    """Delete the workflow-filtered copies of an export that has just been replaced."""
    for record in ((entry or {}).get("workflows") or {}).values():
        (out_dir / record["file"]).unlink(missing_ok=True)


def _filtered(entry, source, workflow_id, out_dir, project_id, emit) -> WorkflowFilter:
    target = out_dir / workflow_file_name(project_id, workflow_id)
    record = entry["workflows"].get(str(workflow_id))
    if record and _is_intact(target, record):
        return WorkflowFilter.from_dict(record, out_dir)
    emit("filter", f"keeping only workflow {workflow_id} in the classification export", "classifications")
    result = filter_classifications_by_workflow(source, target, workflow_id)
    entry["workflows"][str(workflow_id)] = {
        **result.to_dict(),
        "size": target.stat().st_size,
        "mtime_ns": target.stat().st_mtime_ns,
    }
    emit(
        "saved",
        f"workflow {workflow_id}: kept {result.rows_kept:,} rows, removed {result.rows_removed:,} "
        f"rows of other workflows: {target}",
        "classifications",
    )
    return result


@dataclass
class _Download:
    part: Path
    state_file: Path
    encoding: str
    etag: str | None
    last_modified: str | None


def _read_partial(part: Path, state_file: Path) -> dict[str, Any] | None:
    """What an interrupted download recorded, if its bytes and its record are both there."""
    try:
        state = json.loads(state_file.read_text(encoding="utf-8"))
        size = part.stat().st_size
    except (OSError, ValueError):
        return None
    if not size or not (state.get("etag") or state.get("last_modified")):
        return None
    return {**state, "size": size}


def _discard(*paths: Path) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def _content_range(value: str | None) -> tuple[int, int | None]:
    match = re.fullmatch(r"\s*bytes\s+(\d+)-\d+/(\d+|\*)\s*", value or "")
    if not match:
        return -1, None
    return int(match.group(1)), None if match.group(2) == "*" else int(match.group(2))


def _download(media, url, staging, key, current, export_type, emit, allow_resume=True) -> _Download | None:
    """Stream the export's encoded bytes into ``staging/<key>.part``; None if ``current`` is still current."""
    staging.mkdir(parents=True, exist_ok=True)
    part = staging / f"{key}.part"
    state_file = staging / f"{key}.part.json"
    shown = _shown_url(url)
    # Only gzip is decoded below; identity is always acceptable.
    headers = {"Accept-Encoding": "gzip"}
    if current:
        if current.get("etag"):
            headers["If-None-Match"] = current["etag"]
        if current.get("last_modified"):
            headers["If-Modified-Since"] = current["last_modified"]
    partial = _read_partial(part, state_file) if allow_resume else None
    if partial:
        # The Range counts bytes of the encoded (gzip) body: the part file holds those bytes.
        headers["Range"] = f"bytes={partial['size']}-"
        headers["If-Range"] = partial.get("etag") or partial["last_modified"]
    try:
        response = media.get(url, headers=headers, stream=True)
    except requests.RequestException as error:
        raise DownloadError(f"the {export_type} export could not be downloaded from {shown} ({_reason(error)})") from None
    with response:
        status = response.status_code
        if status == 304:
            return None
        if status == 416 and partial:
            _discard(part, state_file)
            return _download(media, url, staging, key, current, export_type, emit, allow_resume=False)
        if status not in (200, 206):
            raise DownloadError(
                f"the {export_type} export could not be downloaded: {shown} answered HTTP "
                f"{status} {response.reason or ''}".rstrip()
                + "; the link may have expired or storage may be failing, so try again later",
                status,
            )
        content_type = response.headers.get("Content-Type", "")
        if "html" in content_type.lower():
            raise DownloadError(
                f"the {export_type} export could not be downloaded: {shown} answered with a web "
                f"page ({content_type}) instead of the CSV export; try again later"
            )
        encoding = response.headers.get("Content-Encoding", "").strip().lower() or "identity"
        if encoding not in ("gzip", "identity"):
            raise DownloadError(f"the {export_type} export came with an unsupported Content-Encoding {encoding!r}")
        etag = response.headers.get("ETag")
        last_modified = response.headers.get("Last-Modified")
        if current and status == 200 and etag and etag == current.get("etag"):
            # A server that ignores If-None-Match: the validator still says the copy is current.
            return None
        if status == 206:
            start, total = _content_range(response.headers.get("Content-Range"))
            if not partial or start != partial["size"] or encoding != partial.get("encoding"):
                response.close()
                _discard(part, state_file)
                return _download(media, url, staging, key, current, export_type, emit, allow_resume=False)
            done, mode = start, "ab"
            emit("resume", f"resuming the {export_type} export after {start:,} bytes", export_type)
        else:
            if partial:
                emit("resume", f"the {export_type} export changed since the interrupted download; starting again", export_type)
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            done, mode = 0, "wb"
        state_file.write_text(
            json.dumps({"etag": etag, "last_modified": last_modified, "encoding": encoding, "total": total}),
            encoding="utf-8",
        )
        started, received = time.monotonic(), 0
        date = _parse_http_date(last_modified)
        emit(
            "download",
            f"downloading the {export_type} export" + (f" of {format_date(date)}" if date else ""),
            export_type,
            bytes_done=done,
            bytes_total=total,
        )
        try:
            with open(part, mode) as sink:
                # decode_content=False keeps the gzip bytes as sent, so a Range can resume them.
                for chunk in response.raw.stream(CHUNK_BYTES, decode_content=False):
                    sink.write(chunk)
                    done += len(chunk)
                    received += len(chunk)
                    rate = received / max(time.monotonic() - started, 1e-6)
                    emit("download", "", export_type, bytes_done=done, bytes_total=total, bytes_per_second=rate)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as error:
            raise DownloadError(
                f"the {export_type} export download was interrupted after {done:,} of "
                f"{f'{total:,}' if total else 'unknown'} bytes ({_reason(error)}); fetch again to resume it"
            ) from None
    if total is not None and done != total:
        raise DownloadError(
            f"the {export_type} export download stopped after {done:,} of {total:,} bytes; fetch again to resume it"
        )
    return _Download(part, state_file, encoding, etag, last_modified)


def _check_head(head: bytes, export_type: str) -> None:
    """Refuse content that is not this kind of Zooniverse export (error pages above all)."""
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if start[:1] == b"<":
        raise DownloadError(
            f"the {export_type} export is a web page, not CSV (it starts {start[:40]!r}): the "
            "server sent an error page. Nothing was saved; try again later"
        )
    columns = csv_header(head)
    missing = [name for name in REQUIRED_COLUMNS[export_type] if name not in columns]
    if missing:
        raise DownloadError(
            f"the downloaded {export_type} export is not a Zooniverse {export_type} export: line 1 "
            f"lacks the column(s) {', '.join(missing)}. Nothing was saved"
        )


def _decoded_blocks(stream, export_type: str) -> Iterator[bytes]:
    while True:
        try:
            block = stream.read(CHUNK_BYTES)
        except (OSError, EOFError, zlib.error) as error:
            raise DownloadError(
                f"the downloaded {export_type} export is damaged (not valid gzip: {error}); it was "
                "discarded, fetch again to download it afresh"
            ) from None
        if not block:
            return
        yield block


def _finalize(download: _Download, target: Path, export_type: str) -> tuple[str, int]:
    """Decode, check and hash the staged bytes into ``target`` atomically; return (sha256, size)."""
    digest, size = hashlib.sha256(), 0
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with open(download.part, "rb") as raw, os.fdopen(handle, "wb") as sink:
            # Storage may also serve the gzip file without Content-Encoding: trust the magic bytes.
            gzipped = download.encoding == "gzip" or raw.read(2) == b"\x1f\x8b"
            raw.seek(0)
            stream = gzip.GzipFile(fileobj=raw, mode="rb") if gzipped else raw
            for block in _decoded_blocks(stream, export_type):
                if not size:
                    _check_head(block, export_type)
                digest.update(block)
                sink.write(block)
                size += len(block)
        if not size:
            raise DownloadError(f"the downloaded {export_type} export is empty. Nothing was saved")
        os.replace(temporary, target)
    except DownloadError:
        # Wrong or damaged content cannot be resumed into anything useful.
        _discard(download.part, download.state_file)
        raise
    finally:
        Path(temporary).unlink(missing_ok=True)
    _discard(download.part, download.state_file)
    return digest.hexdigest(), size


def _remove_empty_staging(out_dir: Path) -> None:
    try:
        (out_dir / STAGING_DIR).rmdir()
    except OSError:
        pass  # absent, or holds an interrupted download to resume


def filter_classifications_by_workflow(
    source: str | os.PathLike, target: str | os.PathLike, workflow_id: int
) -> WorkflowFilter:
    """Write the rows of one workflow from a classification export to ``target``.

    Streams the CSV with pyarrow (every column read as text, so "13.10" stays "13.10" and ids keep
    their digits) and filters each block with a vectorised comparison. Rows of other workflows
    are removed and counted by workflow id; rows that do not split into the header's columns are
    skipped and counted. Values are written back unchanged, every one quoted; cells are not
    formula-neutralised, since this file is a copy of the Zooniverse export for the loaders, not
    a spreadsheet for people.

    Parameters
    ----------
    source : path
        A Zooniverse classification export (CSV, not compressed).
    target : path
        Where to write the filtered export; replaced atomically.
    workflow_id : int
        The workflow to keep (a workflow_id of "21790" or "21790.0" matches 21790).

    Raises
    ------
    FormatError
        The file has no workflow_id column or cannot be read as CSV.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pa_csv

    source, target = Path(source), Path(target)
    columns = csv_header(read_head(source))
    if "workflow_id" not in columns:
        raise FormatError(f"{source}: line 1: no workflow_id column, so rows cannot be filtered by workflow")
    malformed = 0

    def skip_malformed(row) -> str:
        nonlocal malformed
        malformed += 1
        return "skip"

    wanted = pa.array([str(int(workflow_id)), f"{int(workflow_id)}.0"], pa.string())
    removed_by_workflow: dict[str, int] = {}
    kept = 0
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(handle)
    try:
        reader = pa_csv.open_csv(
            source,
            # Big blocks: one export row (annotations JSON) can be hundreds of kB.
            read_options=pa_csv.ReadOptions(column_names=columns, skip_rows=1, block_size=16 << 20),
            parse_options=pa_csv.ParseOptions(newlines_in_values=True, invalid_row_handler=skip_malformed),
            convert_options=pa_csv.ConvertOptions(
                column_types={name: pa.string() for name in columns},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
        with pa_csv.CSVWriter(temporary, reader.schema, write_options=pa_csv.WriteOptions(quoting_style="needed")) as writer:
            for batch in reader:
                workflow_ids = batch.column("workflow_id")
                keep = pc.is_in(workflow_ids, value_set=wanted)
                rows = batch.filter(keep)
                writer.write_batch(rows)
                kept += rows.num_rows
                others = pc.value_counts(workflow_ids.filter(pc.invert(keep)))
                # One step per distinct workflow id in the block, not per row.
                for value, count in zip(others.field("values").to_pylist(), others.field("counts").to_pylist()):
                    removed_by_workflow[value] = removed_by_workflow.get(value, 0) + count
        os.replace(temporary, target)
    except (pa.ArrowInvalid, UnicodeDecodeError) as error:
        raise FormatError(f"{source}: cannot be read as a CSV classification export ({error})") from None
    finally:
        Path(temporary).unlink(missing_ok=True)
    removed = sum(removed_by_workflow.values())
    return WorkflowFilter(
        workflow_id=int(workflow_id),
        path=target,
        sha256=file_digest(target),
        rows_read=kept + removed + malformed,
        rows_kept=kept,
        removed_by_workflow=removed_by_workflow,
        rows_malformed=malformed,
    )
