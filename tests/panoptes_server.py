"""A real HTTP server on loopback speaking the parts of the Panoptes API that panoptes-client uses.

Sign-in (sign-in page with a CSRF token and a session cookie, the sign-in POST, ``/oauth/token``),
project and workflow lookup, the ``<type>_export`` describe (GET) and create (POST), and the media
download. Modelled on the Panoptes server's source (zooniverse/panoptes):

- ``CreateOrUpdateMedium`` sets the export medium's state to "creating" on every create request;
  only the dump worker sets it to "ready" (after uploading a new file), and a rate-limited request
  never runs the worker, so the state stays "creating" for ever.
- The dump is uploaded gzipped and served with ``Content-Encoding: gzip``; the medium's ``src`` is
  a signed storage link that changes on every describe. Storage honours ``If-None-Match``,
  ``If-Modified-Since``, ``Range`` and ``If-Range``, and answers errors with XML.
- Exports are shown only to signed-in collaborators; others get "No <type>_export exists".

Tests steer it through attributes: ``publish`` an export, ``generate`` behaviour per export type,
``cut_after`` (drop the connection mid-body once), ``media_error_page``. ``log`` lists every request.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

DATA = Path(__file__).parent / "data"

USERNAME = "clump-scout-lead"
#: Distinctive, so tests can search every output and file for it.
PASSWORD = "Wr0ng-never-on-disk-7Q!pass"
USER_ID = 1325
PROJECT_ID = 4242
PROJECT_NAME = "Many tools & supernovae (loopback)"
#: Workflow id -> project id.
WORKFLOWS = {21790: PROJECT_ID, 10: PROJECT_ID, 777: 999}
#: The client id panoptes-client 1.7 sends for any endpoint but the staging one.
PRODUCTION_CLIENT_ID = "ce310d45f951de68c4cc8ef46ca38cc0a008f607a2026680295757bfef99f43c"

CLASSIFICATIONS_DATE = datetime(2024, 2, 23, 16, 20, tzinfo=timezone.utc)
SUBJECTS_DATE = datetime(2024, 2, 22, 9, 5, tzinfo=timezone.utc)
WORKFLOWS_DATE = datetime(2024, 2, 21, 8, 30, tzinfo=timezone.utc)


def data_file(name: str) -> bytes:
    return (DATA / name).read_bytes()


def two_workflow_classifications() -> bytes:
    """The classification export as served: the DISCnet rows (workflow 21790), then the batch rows (workflow 10)."""
    first = data_file("discnet/many-tools-classifications.csv")
    second = data_file("fetch/batch_cls_export.csv")
    return first + second.split(b"\n", 1)[1]


@dataclass
class Blob:
    """A file in storage: its bytes as stored (gzipped or not) and its validators."""

    body: bytes
    encoding: str
    etag: str
    last_modified: datetime

    @classmethod
    def of(cls, content: bytes, last_modified: datetime, gzipped: bool = True) -> Blob:
        body = gzip.compress(content, mtime=0) if gzipped else content
        etag = '"0x' + hashlib.sha1(body).hexdigest()[:15].upper() + '"'
        return cls(body, "gzip" if gzipped else "identity", etag, last_modified)


@dataclass
class Export:
    medium_id: int
    state: str
    blob: Blob | None
    created_at: datetime
    #: When a requested export becomes ready (monotonic clock), and the file it will have then.
    ready_at: float | None = None
    next_blob: Blob | None = None


@dataclass
class Request:
    method: str
    path: str
    query: dict
    headers: dict
    status: int = 0
    body_bytes_sent: int = 0


@dataclass
class FakePanoptes:
    exports: dict[str, Export] = field(default_factory=dict)
    #: export type -> ("ready_after", seconds, Blob) or ("never",): what a create request leads to.
    generate: dict[str, tuple] = field(default_factory=dict)
    #: The next media response sends this many body bytes, then drops the connection.
    cut_after: int | None = None
    #: (status, content type, body) served instead of every media file while set.
    media_error_page: tuple[int, str, bytes] | None = None
    log: list[Request] = field(default_factory=list)
    project_name: str = PROJECT_NAME

    def __post_init__(self):
        self.lock = threading.Lock()
        self.sessions: dict[str, dict] = {}
        self.tokens: set[str] = set()
        self.signatures: set[str] = set()
        self._next_medium_id = 90001
        handler = type("Handler", (_Handler,), {"panoptes": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakePanoptes:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def publish(self, export_type: str, content: bytes, last_modified: datetime, gzipped: bool = True) -> Blob:
        """Make ``content`` the project's ready export of this type."""
        blob = Blob.of(content, last_modified, gzipped)
        with self.lock:
            existing = self.exports.get(export_type)
            if existing:
                existing.blob, existing.state = blob, "ready"
            else:
                self.exports[export_type] = Export(self._new_medium_id(), "ready", blob, last_modified)
        return blob

    def _new_medium_id(self) -> int:
        self._next_medium_id += 1
        return self._next_medium_id

    def requests(self, method: str | None = None, prefix: str = "") -> list[Request]:
        return [r for r in self.log if (method is None or r.method == method) and r.path.startswith(prefix)]

    def medium_json(self, export_type: str, export: Export) -> dict:
        signature = secrets.token_urlsafe(12)
        self.signatures.add(signature)
        return {
            "id": str(export.medium_id),
            "href": f"/projects/{PROJECT_ID}/{export_type}_export",
            "src": f"{self.endpoint}/media/project-{PROJECT_ID}-{export_type}.csv?sv=2023-11-03&sr=b&sp=r&sig={signature}",
            "content_type": "text/csv",
            "media_type": f"project_{export_type}_export",
            "external_link": False,
            "created_at": export.created_at.isoformat().replace("+00:00", "Z"),
            "metadata": {"state": export.state, "recipients": [USER_ID]},
        }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    panoptes: FakePanoptes

    def log_message(self, format, *args):  # keep test output clean
        pass

    # -- plumbing -------------------------------------------------------------------------
    def _start(self) -> Request:
        parts = urlsplit(self.path)
        record = Request(self.command, parts.path, parse_qs(parts.query), dict(self.headers.items()))
        with self.panoptes.lock:
            self.panoptes.log.append(record)
        self.record = record
        length = int(self.headers.get("Content-Length") or 0)
        self.body = self.rfile.read(length) if length else b""
        return record

    def _reply(self, status: int, body: bytes = b"", headers: dict | None = None) -> None:
        self.record.status = status
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)
            self.record.body_bytes_sent = len(body)

    def _json(self, status: int, payload: dict, headers: dict | None = None) -> None:
        self._reply(status, json.dumps(payload).encode(), {"Content-Type": "application/json; charset=utf-8", **(headers or {})})

    def _session(self) -> dict | None:
        cookie = self.headers.get("Cookie", "")
        for item in cookie.split(";"):
            name, _, value = item.strip().partition("=")
            if name == "_Panoptes_session":
                return self.panoptes.sessions.get(value)
        return None

    def _signed_in(self) -> bool:
        authorization = self.headers.get("Authorization", "")
        return authorization.startswith("Bearer ") and authorization[7:] in self.panoptes.tokens

    # -- routes ---------------------------------------------------------------------------
    def do_GET(self):
        record = self._start()
        path = record.path
        if path == "/users/sign_in":
            return self._sign_in_page()
        if path == f"/api/projects/{PROJECT_ID}":
            return self._json(200, {"projects": [self._project_json()], "meta": {"projects": {"page": 1, "page_count": 1, "count": 1}}})
        if path.startswith("/api/workflows/") and path[len("/api/workflows/"):].isdigit():
            workflow_id = int(path[len("/api/workflows/"):])
            if workflow_id in WORKFLOWS:
                return self._json(200, {"workflows": [self._workflow_json(workflow_id)], "meta": {"workflows": {"page": 1, "page_count": 1, "count": 1}}})
            return self._json(404, {"errors": [{"message": f"Could not find workflow with id='{workflow_id}'"}]})
        if path.startswith("/api/projects/") and path[len("/api/projects/"):].isdigit():
            return self._json(404, {"errors": [{"message": f"Could not find project with id='{path[len('/api/projects/'):]}'"}]})
        export_type = self._export_route(path)
        if export_type:
            return self._describe(export_type)
        if path.startswith("/media/"):
            return self._media(path[len("/media/"):])
        self._json(404, {"errors": [{"message": "Not found"}]})

    def do_POST(self):
        record = self._start()
        if record.path == "/users/sign_in":
            return self._sign_in()
        if record.path == "/oauth/token":
            return self._token()
        export_type = self._export_route(record.path)
        if export_type:
            return self._create_export(export_type)
        self._json(404, {"errors": [{"message": "Not found"}]})

    def _export_route(self, path: str) -> str | None:
        prefix = f"/api/projects/{PROJECT_ID}/"
        if path.startswith(prefix) and path.endswith("_export"):
            return path[len(prefix):-len("_export")]
        return None

    def _sign_in_page(self):
        session_id, csrf = secrets.token_hex(16), secrets.token_urlsafe(24)
        with self.panoptes.lock:
            self.panoptes.sessions[session_id] = {"csrf": csrf, "user": None}
        self._json(200, {}, {"x-csrf-token": csrf, "Set-Cookie": f"_Panoptes_session={session_id}; path=/; HttpOnly"})

    def _sign_in(self):
        session = self._session()
        payload = json.loads(self.body or b"{}")
        if not session or payload.get("authenticity_token") != session["csrf"]:
            return self._json(422, {"error": "Can't verify CSRF token authenticity."})
        user = payload.get("user") or {}
        if user.get("login") != USERNAME or user.get("password") != PASSWORD:
            return self._json(401, {"error": "Invalid email or password."})
        session["user"] = USER_ID
        self._json(200, {"users": [{"id": str(USER_ID), "login": USERNAME, "display_name": USERNAME}]})

    def _token(self):
        session = self._session()
        form = parse_qs(self.body.decode())
        if (
            not session
            or not session["user"]
            or form.get("grant_type") != ["password"]
            or form.get("client_id") != [PRODUCTION_CLIENT_ID]
        ):
            return self._json(401, {"error": "invalid_grant", "error_description": "The provided authorization grant is invalid."})
        token = secrets.token_hex(20)
        with self.panoptes.lock:
            self.panoptes.tokens.add(token)
        self._json(200, {
            "access_token": token, "token_type": "Bearer", "expires_in": 7200,
            "refresh_token": secrets.token_hex(20), "scope": "public user project", "created_at": int(time.time()),
        })

    def _project_json(self) -> dict:
        return {
            "id": str(PROJECT_ID), "display_name": self.panoptes.project_name, "slug": "loopback/many-tools",
            "private": False, "configuration": {},
            "links": {"workflows": [str(w) for w, p in WORKFLOWS.items() if p == PROJECT_ID]},
        }

    def _workflow_json(self, workflow_id: int) -> dict:
        return {"id": str(workflow_id), "display_name": f"workflow {workflow_id}", "links": {"project": str(WORKFLOWS[workflow_id])}}

    def _describe(self, export_type: str):
        panoptes = self.panoptes
        with panoptes.lock:
            export = panoptes.exports.get(export_type)
            if export and export.ready_at is not None and time.monotonic() >= export.ready_at:
                # The dump worker finished: new file uploaded, state set to ready.
                export.blob, export.state, export.ready_at = export.next_blob, "ready", None
        if not self._signed_in() or export is None:
            return self._json(404, {"errors": [{"message": f"No {export_type}_export exists for project #{PROJECT_ID}"}]})
        self._json(200, {"media": [panoptes.medium_json(export_type, export)], "links": {}, "meta": {}})

    def _create_export(self, export_type: str):
        panoptes = self.panoptes
        if not self._signed_in():
            return self._json(401, {"errors": [{"message": "You must be logged in to access this resource."}]})
        with panoptes.lock:
            export = panoptes.exports.get(export_type)
            if export is None:
                export = panoptes.exports[export_type] = Export(
                    panoptes._new_medium_id(), "creating", None, datetime.now(timezone.utc)
                )
            export.state = "creating"
            behaviour = panoptes.generate.get(export_type, ("never",))
            if behaviour[0] == "ready_after":
                export.ready_at, export.next_blob = time.monotonic() + behaviour[1], behaviour[2]
        self._json(201, {"media": [panoptes.medium_json(export_type, export)]})

    def _media(self, name: str):
        panoptes = self.panoptes
        signature = self.record.query.get("sig", [""])[0]
        if signature not in panoptes.signatures:
            return self._storage_error(403, "AuthenticationFailed")
        if panoptes.media_error_page:
            status, content_type, body = panoptes.media_error_page
            return self._reply(status, body, {"Content-Type": content_type})
        export_type = name.removeprefix(f"project-{PROJECT_ID}-").removesuffix(".csv")
        export = panoptes.exports.get(export_type)
        blob = export.blob if export else None
        if blob is None:
            return self._storage_error(404, "BlobNotFound")
        headers = {
            "Content-Type": "text/csv",
            "Content-Disposition": f'attachment; filename="many-tools-{export_type}.csv"',
            "ETag": blob.etag,
            "Last-Modified": format_datetime(blob.last_modified, usegmt=True),
            "Accept-Ranges": "bytes",
        }
        if blob.encoding == "gzip":
            headers["Content-Encoding"] = "gzip"
        if self._not_modified(blob):
            return self._reply(304, b"", {k: headers[k] for k in ("ETag", "Last-Modified")})
        body, status = blob.body, 200
        byte_range = self.headers.get("Range", "")
        if_range = self.headers.get("If-Range")
        if byte_range.startswith("bytes=") and (if_range is None or if_range in (blob.etag, headers["Last-Modified"])):
            start = int(byte_range[len("bytes="):].split("-")[0])
            if start >= len(blob.body):
                return self._reply(416, b"", {"Content-Range": f"bytes */{len(blob.body)}"})
            body, status = blob.body[start:], 206
            headers["Content-Range"] = f"bytes {start}-{len(blob.body) - 1}/{len(blob.body)}"
        with panoptes.lock:
            cut, panoptes.cut_after = panoptes.cut_after, None
        if cut is None:
            return self._reply(status, body, headers)
        # Send the full length in the headers, part of the body, then drop the connection.
        self.record.status = status
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[:cut])
        self.wfile.flush()
        self.record.body_bytes_sent = cut
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)

    def _not_modified(self, blob: Blob) -> bool:
        if_none_match = self.headers.get("If-None-Match")
        if if_none_match is not None:
            return if_none_match == blob.etag
        since = self.headers.get("If-Modified-Since")
        if since:
            try:
                return parsedate_to_datetime(since) >= blob.last_modified
            except (TypeError, ValueError):
                return False
        return False

    def _storage_error(self, status: int, code: str):
        body = (
            '<?xml version="1.0" encoding="utf-8"?><Error><Code>' + code + "</Code><Message>"
            "The specified resource does not exist or the signature is not valid.</Message></Error>"
        ).encode()
        self._reply(status, body, {"Content-Type": "application/xml"})


@pytest.fixture
def panoptes_server():
    """The loopback Panoptes server with the three exports of project 4242 published (gzipped)."""
    server = FakePanoptes().start()
    server.publish("classifications", two_workflow_classifications(), CLASSIFICATIONS_DATE)
    server.publish("subjects", data_file("fetch/cat-project-subjects.csv"), SUBJECTS_DATE)
    server.publish("workflows", data_file("fetch/batch_wf_export.csv"), WORKFLOWS_DATE)
    yield server
    server.stop()
