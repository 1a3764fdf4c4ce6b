"""The served app's image route: a subject's image file, and nothing else in its folder.

Thumbnails in the subject table point at ``/zoolens-images/<root number>/<path>``, or at
``/zoolens-images/thumbnails/<name>`` for those made on the server: of a subject's own file, or of
its remote picture, fetched by the server (never the browser) when a page first asks for it.
An image folder is usually the export folder, which also holds the exports (with
volunteers' IP addresses) and the review store, so the route is no static-file
route: `ImageHandler` answers only for a file that a subject of the loaded project
refers to (`Project.image_file`), inside the image roots once symbolic links are
resolved, named as an image and holding one (its first bytes are checked). Every
other request, and every request before the project has loaded, is a 404 that
says no more than that. A remote picture's name is looked up among the project's own
subjects (the URL comes from the subject export, never from the request): the route is
no proxy.
"""

from __future__ import annotations

from pathlib import Path

from panel.io.server import AuthenticatedStaticFileHandler
from tornado.ioloop import IOLoop
from tornado.web import HTTPError, RequestHandler, authenticated

from data_loaders.images import image_format
from project import thumbnails
from project.core import IMAGE_ROUTE
from project.progress import READY, ProjectLoad

#: File name endings served, with the format their content must have and the type sent for it.
IMAGE_TYPES = {".png": ("png", "image/png"), ".jpg": ("jpeg", "image/jpeg"),
               ".jpeg": ("jpeg", "image/jpeg")}


class ImageHandler(RequestHandler):
    """Serves ``zoolens-images/<route path>`` when the route path names a subject's image file."""

    # Who is signed in, and where to sign in, exactly as Panel's own static-file route asks
    # its auth provider (basic auth, OAuth); none of that route's file serving is used.
    get_login_url = AuthenticatedStaticFileHandler.get_login_url
    get_current_user = AuthenticatedStaticFileHandler.get_current_user
    prepare = AuthenticatedStaticFileHandler.prepare

    def initialize(self, load: ProjectLoad) -> None:
        self.load = load

    @authenticated
    async def get(self, route_path: str, include_body: bool = True) -> None:
        # A remote picture's thumbnail is made here when first asked for (`Project.image_file`): on the pool that
        # makes thumbnails, off the event loop.
        path = await IOLoop.current().run_in_executor(thumbnails.THUMBNAIL_MAKERS, self._image_file, route_path)
        content = await IOLoop.current().run_in_executor(None, path.read_bytes)
        kind, content_type = IMAGE_TYPES[path.suffix.lower()]
        if image_format(content[:64]) != kind:
            raise HTTPError(404)
        self.set_header("Content-Type", content_type)
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Cache-Control", "private, max-age=3600")
        if include_body:
            self.write(content)

    @authenticated
    async def head(self, route_path: str) -> None:
        await self.get(route_path, include_body=False)

    def _image_file(self, route_path: str) -> Path:
        """The file to send, or a 404."""
        if self.load.status != READY:
            raise HTTPError(404)
        if any(part.startswith(".") for part in route_path.split("/")):
            raise HTTPError(404)  # dotfiles and dot folders, whatever a subject says
        path = self.load.project.image_file(route_path)
        if path is None or path.suffix.lower() not in IMAGE_TYPES:
            raise HTTPError(404)
        return path

    def write_error(self, status_code: int, **kwargs) -> None:
        # Never a traceback or a file name: a refused path must look like a missing one.
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(f"{status_code}: {self._reason}\n")


def image_route(load: ProjectLoad) -> tuple[str, type, dict]:
    """The Tornado route (for ``extra_patterns``) that serves ``load``'s project's images."""
    return (rf"/{IMAGE_ROUTE}/(.*)", ImageHandler, {"load": load})
