"""The image route on a real server on loopback: a subject's image, and nothing else in its folder.

`zoolens serve` is usually started in the export folder, which is then the image
root: it also holds the exports (with volunteers' IP addresses), the review store
and whatever else the team keeps there. Before the route was a static-file route
and served all of it, signed in or not.
"""

from __future__ import annotations

import http.client
import shutil
import time
import urllib.parse
from dataclasses import dataclass

import pandas as pd
import pytest
import requests

from dashboard.sign_in import UsersFileSignIn
from project import Project
from project.roles import add_user
from project.reviews import ReviewStore
from tests.dashboard import tiny
from tests.dashboard.serving import PausedLoad, served, serving

pytestmark = pytest.mark.server

#: Paths (under /zoolens-images/) that must never be served from the demo's export folder.
FORBIDDEN = [
    "0/demo-classifications.csv",
    "0/demo-subjects.csv",
    "0/zoolens-reviews.sqlite",
    "0/zoolens-reviews.sqlite-wal",
    "0/README.txt",
    "0/.env",
    "0/images/.hidden.png",
    "0/images/30000000.fits",
    "0/images/not-a-subject.png",  # a real PNG, but no subject's
    "0/../demo-classifications.csv",
    "0/%2E%2E/outside.png",
    "0/images/%2E%2E/demo-subjects.csv",
    "0//etc/passwd",
    "1/images/30000000.png",  # no second root
    "images/30000000.png",
    "0/images",
    "0/",
]


@pytest.fixture
def export_folder(tmp_path):
    """The demo's export folder as a team keeps it: exports, images, a review store, a dotfile."""
    from zoolens import demo

    files = demo.write_demo(tmp_path / "exports")
    folder = files.folder
    with ReviewStore(path=folder / "zoolens-reviews.sqlite") as store:
        store.record("demo-run", 30000000, "flag", "alice", reason="secret note")
    (folder / ".env").write_text("PANOPTES_PASSWORD=hunter2\n")
    shutil.copy(folder / "images" / "30000000.png", folder / "images" / ".hidden.png")
    shutil.copy(folder / "images" / "30000000.png", folder / "images" / "not-a-subject.png")
    shutil.copy(folder / "images" / "30000000.png", tmp_path / "outside.png")
    return files


@dataclass
class Reply:
    status_code: int
    headers: dict
    content: bytes


def get(url: str, session: requests.Session | None = None) -> Reply:
    """GET ``url`` with its path sent byte for byte (HTTP clients remove ``..`` segments; an attacker does not)."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    cookies = "; ".join(f"{name}={value}" for name, value in (session.cookies.items() if session else []))
    try:
        connection.request("GET", url[url.index("/", len("http://")):], headers={"Cookie": cookies} if cookies else {})
        response = connection.getresponse()
        return Reply(response.status, dict(response.getheaders()), response.read())
    finally:
        connection.close()


def test_only_subject_images_are_served_before_and_after_sign_in(export_folder, tmp_path):
    users = tmp_path / "users.json"
    add_user(users, "alice", "correct horse", "viewer")
    paused = PausedLoad([export_folder.classifications, export_folder.subjects, export_folder.workflows],
                        workflow_id=9001, workflow_version="13.10", method="iou")
    image = export_folder.folder / "images" / "30000000.png"
    with serving(paused.build, "test-image-route", title="demo", sign_in=UsersFileSignIn(users),
                 cookie_secret="test-secret") as server:
        signed_out = get(f"{server.url}/zoolens-images/0/images/30000000.png")
        assert signed_out.status_code == 302 and "/login" in signed_out.headers["Location"]
        session = requests.Session()
        signed_in = session.post(f"{server.url}/login", data={"username": "alice", "password": "correct horse"},
                                 allow_redirects=False, timeout=30)
        assert signed_in.status_code == 302 and "user" in session.cookies
        assert paused.reached.wait(60)
        # While the project loads nothing is known to be a subject's image: nothing is served.
        assert get(f"{server.url}/zoolens-images/0/images/30000000.png", session).status_code == 404
        paused.release.set()
        deadline = time.monotonic() + 120
        while (served_image := get(f"{server.url}/zoolens-images/0/images/30000000.png",
                                   session)).status_code == 404 and time.monotonic() < deadline:
            time.sleep(0.2)  # until the project has loaded
        assert served_image.status_code == 200
        assert served_image.content == image.read_bytes()
        assert served_image.headers["Content-Type"] == "image/png"
        assert served_image.headers["X-Content-Type-Options"] == "nosniff"
        for path in FORBIDDEN:
            response = get(f"{server.url}/zoolens-images/{path}", session)
            assert response.status_code == 404, (path, response.status_code, response.content[:200])
            assert b"PANOPTES" not in response.content and b"SQLite" not in response.content
            assert b"user_ip" not in response.content and str(export_folder.folder).encode() not in response.content


def hostile_project(root) -> Project:
    """The tiny project, whose subjects' locations point at what must not be served."""
    tiny.write_images(root)
    (root / "export.csv").write_text("classification_id,user_ip\n1,192.0.2.1\n")
    (root / "text.png").write_text("classification_id,user_ip\n1,192.0.2.1\n")  # named as an image
    shutil.copy(root / "images" / "1.png", root / ".hidden.png")
    shutil.copy(root / "images" / "1.png", root / "images" / "1.jpg")  # a PNG named as a JPEG
    (root / "images" / "link.png").symlink_to(root.parent / "outside.png")
    (root / "images" / "inside-link.png").symlink_to(root / "images" / "1.png")
    tables = tiny.tiny_tables()
    hostile = ["export.csv", "text.png", ".hidden.png", "images/1.jpg", "images/link.png",
               "../outside.png", str(root.parent / "outside.png"), "images/1.fits", "images/missing.png"]
    subjects = pd.concat([tables["subjects"], pd.DataFrame({
        "subject_id": range(10, 10 + len(hostile) + 1),
        "locations": [{"0": location} for location in hostile] + [{"0": "images/inside-link.png"}],
    })], ignore_index=True)
    return Project(**{**tables, "subjects": subjects}, image_roots=[root], title="hostile")


def test_a_subject_cannot_make_the_route_serve_anything_but_an_image_in_the_root(tmp_path):
    project = hostile_project(tmp_path / "root")
    with served(project, "test-image-route-hostile") as url:
        good = get(f"{url}/zoolens-images/0/images/1.png")
        assert good.status_code == 200
        assert good.content == (tmp_path / "root" / "images" / "1.png").read_bytes()
        # A link that stays inside the root is the file it points at.
        assert get(f"{url}/zoolens-images/0/images/inside-link.png").content == good.content
        for path in ["export.csv", "text.png", ".hidden.png", "images/1.jpg", "images/link.png",
                     "outside.png", "%2E%2E/outside.png", "images/1.fits", "images/missing.png"]:
            response = get(f"{url}/zoolens-images/0/{path}")
            assert response.status_code == 404, (path, response.status_code)
            assert b"192.0.2.1" not in response.content
