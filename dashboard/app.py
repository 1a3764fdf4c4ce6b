"""The served app: one template per session, assembled from the data store and the views.

`create_app(project)` builds the page for one session; `serve(...)` runs a Panel
server whose sessions each call it on the process-wide shared project. Nothing here
computes or parses anything: that is the data store's and the loaders' work.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable

import panel as pn

from .data_store import IMAGE_ROUTE, Project, shared_project
from .explorer import Explorer
from .reviews import ReviewStore
from .views import FetchView


#: Data store parameters kept in the page's address (query string).
URL_STATE = ("subject", "workflow", "tool", "min_votes", "min_volunteers", "disagreement")

#: How often a session looks for review decisions made in other sessions, in milliseconds.
REVIEW_REFRESH_MS = 3000


def create_app(project: Project, reviews: ReviewStore | None = None,
               review_refresh_ms: int = REVIEW_REFRESH_MS) -> pn.template.FastListTemplate:
    """The page of one session: filters in the sidebar, the views in tabs.

    Parameters
    ----------
    project : Project
        The shared, read-only project; the session gets its own `Explorer` (data
        store and views) over it.
    reviews : ReviewStore, optional
        The process's review store, shared by every session.
    review_refresh_ms : int
        How often the session reads decisions other sessions made.
    """
    explorer = Explorer(project, reviews=reviews)
    # Containers, so a project fetched from Zooniverse can replace the session's parts in place.
    sidebar, main = pn.Column(*explorer.sidebar()), pn.Column(explorer.tabs(), sizing_mode="stretch_width")
    fetch = FetchView(data_store=explorer.data_store)
    open_fetch = pn.widgets.Button(label="Fetch from Zooniverse…", width=260)
    template = pn.template.FastListTemplate(
        title=f"zoolens · {project.title}", sidebar=[sidebar, open_fetch], main=[main], modal=[fetch],
        sidebar_width=300, theme_toggle=False, accent="#1f5f8b",
    )
    open_fetch.on_click(lambda event: template.open_modal())

    def show_fetched(event):
        fetched = Explorer(event.new, reviews=reviews)
        sidebar[:], main[:] = fetched.sidebar(), [fetched.tabs()]
        if pn.state.location is not None:
            pn.state.location.unsync(template.explorer.data_store)
            pn.state.location.sync(fetched.data_store, {name: name for name in URL_STATE})
        template.explorer, fetch.data_store = fetched, fetched.data_store
        template.close_modal()

    fetch.param.watch(show_fetched, "project")
    if pn.state.location is not None:
        # The address holds the current subject and filters: a shared link reopens the same view.
        pn.state.location.sync(explorer.data_store, {name: name for name in URL_STATE})
    # Tests and notebook users reach the session's parts through the template.
    template.explorer, template.fetch = explorer, fetch
    if reviews is not None:
        # Decisions made in other sessions show within review_refresh_ms; this session's own at once.
        pn.state.add_periodic_callback(lambda: template.explorer.data_store.refresh_reviews(),
                                       period=review_refresh_ms)
    return template


def notify_error(exception: BaseException) -> None:
    """Show an exception raised in a session's callback as a notification, never a traceback.

    The message may quote data (a file name, a location): it is escaped, as the
    notification renders HTML. The traceback goes to the server's log.
    """
    logging.getLogger("zoolens").error("a callback failed", exc_info=exception)
    if pn.state.notifications is not None:
        pn.state.notifications.error(html.escape(f"{type(exception).__name__}: {exception}"), duration=0)


def serve(key: str, build_project: Callable[[], Project], image_roots=(), port: int = 5006,
          address: str | None = None, show: bool = False, num_threads: int | None = None,
          threaded: bool = False, reviews: ReviewStore | None = None,
          review_refresh_ms: int = REVIEW_REFRESH_MS, **server_options):
    """Serve the app: every session shares the project ``build_project`` makes once.

    Parameters
    ----------
    key : str
        Names the project in the process cache.
    build_project : callable
        Makes the `Project`; called once, on the first session.
    image_roots : sequence of path
        Image folders, published at ``zoolens-images/<i>/`` for thumbnails.
    port, address, show, num_threads, threaded
        As for `panel.serve`.
    reviews : ReviewStore, optional
        Where review decisions go: one store (one database engine) for every session.
    review_refresh_ms : int
        How often each session reads the decisions made in other sessions.
    """
    def session():
        return create_app(shared_project(key, build_project), reviews=reviews, review_refresh_ms=review_refresh_ms)

    pn.config.notifications = True
    pn.config.exception_handler = notify_error
    static_dirs = {f"{IMAGE_ROUTE}/{number}": str(root) for number, root in enumerate(image_roots)}
    return pn.serve({"/": session}, port=port, address=address, show=show, num_threads=num_threads,
                    static_dirs=static_dirs, title="zoolens", threaded=threaded, **server_options)
