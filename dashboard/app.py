"""The served app: one template per session, assembled from the data store and the views.

`create_app(project)` builds the page for one session; `serve(...)` runs a Panel
server that listens at once while the project loads in the background
(`dashboard.loading`): each session's page paints straight away with the load's
progress, and fills in with the views when the project is ready. Nothing here
computes or parses anything: that is the data store's and the loaders' work.
"""

from __future__ import annotations

import html
import logging
import os
from collections.abc import Callable

import panel as pn
from bokeh.models import CustomJS

from project import Project
from project.progress import READY, LoadProgress, ProjectLoad
from project.reviews import ReviewStore
from project.roles import Reviewer

from .address import PageAddress
from .data_store import DataStore
from .explorer import Explorer
from .image_route import image_route
from .loading import POLL_MILLISECONDS, LoadingView, consensus_line, failure_panel, load_report_panel, shared_load
from .memory import RELEASE
from .model_checks import unchecked_models
from .model_defaults import cache_model_defaults
from .recycling import IdleRecycle
from .session_threads import use_session_threads
from .sign_in import SignIn, SignInThrottle, login_route
from .views import FetchView
from .views.agreement import AgreementPlots
from .warm_up import warm_up_in_background
from .window_room import WindowRoom


#: Data store parameters kept in the page's address (query string).
URL_STATE = ("subject", "workflow", "tool", "min_votes", "min_volunteers", "disagreement", "sort_by")

#: How often a session looks for review decisions made in other sessions, in milliseconds.
REVIEW_REFRESH_MS = 3000
#: How often a session of a project with remote pictures recounts those that could not be had, in milliseconds.
PICTURE_RECOUNT_MS = 2000
#: How often the server looks for sessions whose browser has gone, in milliseconds. Bokeh drops such a session 15 s
#: after its last connection closed (time a page has to connect at all, kept), but by default looks only every
#: 17 s: a closed session then held its memory, and an idle server its turn to recycle, up to 32 s.
CLOSED_SESSIONS_CHECK_MS = 2000

#: Worker threads for session callbacks by default: twice the cores, at most 4. Each session's callbacks run
#: in the order they arrived (`dashboard.session_threads`); threads do not add CPU under the GIL, but one
#: session's database write, image read or export no longer holds up the others' answers.
DEFAULT_THREADS = min(4, 2 * (os.cpu_count() or 1))

# Once per process: every session's models read their defaults through it (`dashboard.model_defaults`).
cache_model_defaults()

class SessionTemplate(pn.template.FastListTemplate):
    """Panel's FastListTemplate, put into a session's document with one walk of its models.

    Bokeh walks every model of a document each time a root is added (the template adds
    one per area, and its theme hooks more): frozen, it walks once at the end. The models
    are made without Bokeh checking each property value (`dashboard.model_checks`).
    """

    def _init_doc(self, doc=None, *args, **kwargs):
        document = doc or pn.state.curdoc
        if document is None:
            return super()._init_doc(doc, *args, **kwargs)
        with document.models.freeze(), unchecked_models():
            return super()._init_doc(document, *args, **kwargs)


class Fast(pn.theme.Fast):
    """Panel's Fast design without its web font.

    The design's font is Open Sans from fonts.googleapis.com: every page load told a third party who opened the
    dashboard, and where that host is unreachable (a closed network) the page's first paint waited on it. The font
    stack falls back to the system's sans-serif, and every resource the page loads comes from the server. Named as
    Panel's class: Panel finds a design's own files by its class name.
    """

    _resources = {**pn.theme.Fast._resources, "font": {}}


#: Narrower windows (CSS pixels) open with the sidebar folded away: beside it, the Subjects tab's cutout and review
#: panel need a laptop's 1,366 px, and on a 1,280 px window (1,920 px at 150 % scaling) the panel ran past the
#: page's edge, to be scrolled to sideways. The sidebar's button brings it back.
NARROW_WINDOW = 1366

#: Run in the browser once the page is drawn; `closeNav` is the template's own (what its sidebar button calls).
FOLD_SIDEBAR_JS = f"if (window.innerWidth < {NARROW_WINDOW} && typeof closeNav === 'function') closeNav();"


def page_template(title: str) -> pn.template.FastListTemplate:
    """An empty page: its sidebar, main area and modal each hold one Column, filled in later.

    Served, the page folds its sidebar away in a window narrower than `NARROW_WINDOW`.
    """
    document = pn.state.curdoc
    if document is not None and document.session_context is not None:
        document.js_on_event("document_ready", CustomJS(code=FOLD_SIDEBAR_JS))
    return SessionTemplate(
        title=f"zoolens · {title}", sidebar=[pn.Column(sizing_mode="stretch_width")],
        main=[pn.Column(sizing_mode="stretch_width")], modal=[pn.Column()],
        # 280 px: the widest widget is 260 px; with 300 the Subjects tab overflowed a 1,366 px window by 13 px.
        sidebar_width=280, theme_toggle=False, accent="#1f5f8b", design=Fast,
        # No busy spinner: Panel's default is one spinner for every session of the process, turned on and off
        # around each callback, so every switch in one session sent a dozen changes to every open page.
        busy_indicator=None,
    )


def create_app(project: Project, reviews: ReviewStore | None = None, review_refresh_ms: int = REVIEW_REFRESH_MS,
               template: pn.template.FastListTemplate | None = None,
               reviewer: Reviewer | None = None) -> pn.template.FastListTemplate:
    """The page of one session: filters and the load report in the sidebar, the views in tabs.

    Parameters
    ----------
    project : Project
        The shared, read-only project; the session gets its own `Explorer` (data
        store and views) over it.
    reviews : ReviewStore, optional
        The process's review store, shared by every session.
    review_refresh_ms : int
        How often the session reads decisions other sessions made.
    template : FastListTemplate, optional
        A `page_template` already shown (with the load's progress) to fill in;
        default a new one.
    reviewer : Reviewer, optional
        The signed-in person the session decides as (`SignIn.reviewer`); without one the
        reviewer types a name.
    """
    template = template if template is not None else page_template(project.title)
    explorer = Explorer(project, reviews=reviews, reviewer=reviewer)
    # Containers, so a project fetched from Zooniverse can replace the session's parts in place.
    sidebar, main = pn.Column(*explorer.sidebar()), pn.Column(explorer.tabs(), sizing_mode="stretch_width")
    report = pn.Column(consensus_line(project), load_report_panel(project.reports), sizing_mode="stretch_width")
    fetch = FetchView(data_store=explorer.data_store)
    open_fetch = pn.widgets.Button(label="Fetch from Zooniverse…", width=260)
    # The address holds the current subject and filters: a shared link reopens the same view.
    address = PageAddress(names=list(URL_STATE))
    address.follow(explorer.data_store)
    # The cutout grows to the room the browser gives the page (a large screen), and with the window.
    room = WindowRoom()
    room.param.watch(lambda *events: template.explorer.fit_cutout(room.main_width, room.window_height),
                     ["main_width", "window_height"])
    template.sidebar[0][:] = [sidebar, open_fetch, report, address, room]
    template.main[0][:] = [main]

    def open_dialog(event):
        # The dialog is built when first opened, not with every session: most never fetch a project.
        if not template.modal[0].objects:
            template.modal[0][:] = [fetch]
        template.open_modal()

    open_fetch.on_click(open_dialog)

    def show_fetched(event):
        fetched = Explorer(event.new, reviews=reviews, reviewer=reviewer)
        sidebar[:], main[:] = fetched.sidebar(), [fetched.tabs()]
        report[:] = [consensus_line(event.new), load_report_panel(event.new.reports)]
        address.follow(fetched.data_store, read=False)  # another project: the opening link was not about it
        template.explorer, fetch.data_store = fetched, fetched.data_store
        fetched.fit_cutout(room.main_width, room.window_height)
        template.close_modal()

    fetch.param.watch(show_fetched, "project")
    # Tests and notebook users reach the session's parts through the template.
    template.explorer, template.fetch = explorer, fetch
    if reviews is not None:
        # Decisions made in other sessions show within review_refresh_ms; this session's own at once. Started
        # once the page has loaded: in a session no browser connects to (a plain GET of the page: a health
        # check, a link preview, a load test's poll), Panel retries starting a periodic callback on every tick
        # of the server's loop until the session expires, a busy loop taking CPU from every other session.
        pn.state.onload(lambda: pn.state.add_periodic_callback(
            lambda: template.explorer.data_store.refresh_reviews(poll_age=review_refresh_ms / 3000),
            period=review_refresh_ms))
    if project.has_remote_pictures:
        # The table's thumbnails of remote pictures are made by the image route, outside any session: the sidebar's
        # count of pictures not shown catches up with them (its text changes only when the count does).
        pn.state.onload(lambda: pn.state.add_periodic_callback(
            lambda: template.explorer.data_store.param.trigger("pictures_fetched"), period=PICTURE_RECOUNT_MS))
    return template


def create_loading_app(load: ProjectLoad, reviews: ReviewStore | None = None,
                       review_refresh_ms: int = REVIEW_REFRESH_MS,
                       sign_in: SignIn | None = None) -> pn.template.FastListTemplate:
    """The page of one session of a served project: the views, or the load's progress until they can show.

    A session opened while the project loads paints at once with a `LoadingView`;
    a periodic callback on the session's own event loop follows the load and fills
    the page in when it is over: the views (rows skipped are counted in the sidebar's
    load report, never in a pop-up over the image), or the error with its load report.

    Parameters
    ----------
    load : ProjectLoad
        The process-wide load (`dashboard.loading.shared_load`).
    reviews, review_refresh_ms
        As for `create_app`.
    sign_in : SignIn, optional
        How the server signed the session's user in: it says who they are and with which role.
    """
    # The views arrive after the page is drawn: load what they need in the browser now.
    pn.extension("tabulator")
    template = page_template(load.title)
    reviewer = None
    if sign_in is not None:
        reviewer = sign_in.reviewer(pn.state.user, pn.state.user_info)
        if reviewer is None:  # the server's authorization refuses such a page; never build one anyway
            template.main[0][:] = [pn.pane.Markdown("### Not allowed\nYour sign-in gives you no zoolens role.")]
            return template

    def show_outcome():
        if load.status == READY:
            create_app(load.project, reviews=reviews, review_refresh_ms=review_refresh_ms, template=template,
                       reviewer=reviewer)
        else:
            template.main[0][:] = [failure_panel(load)]

    # The session's own notification area, so a later callback or event reaches this page's.
    notifications = pn.state.notifications

    def notify_outcome():
        # Only a failure: a load's warnings (rows skipped) are in the sidebar's load report,
        # where they do not cover the image on every page open.
        if notifications is not None and load.status != READY:
            error = f"Loading failed: {load.error_text()} (the load report is in the page)"
            notifications.error(html.escape(error), duration=0)

    if load.wait(0):
        show_outcome()
        # Sent before the browser has drawn the page, a notification would never show: wait for it.
        document = pn.state.curdoc
        if document is not None and document.session_context is not None:
            document.on_event("document_ready", lambda event: notify_outcome())
        else:
            notify_outcome()
        return template
    loading = LoadingView(load=load)
    template.main[0][:] = [loading]

    def follow():
        loading.refresh()
        if load.wait(0) and watchers:  # a tick queued before the watcher stopped finds it gone
            watchers.pop().stop()
            show_outcome()
            notify_outcome()

    # Started once the page has loaded, as the review refresh is (`create_app`): a session no browser
    # connects to (a health check's or a link preview's plain GET) would otherwise retry starting it on
    # every tick of the server's loop until the session expires, taking CPU from every other session.
    watchers = []
    pn.state.onload(lambda: watchers.append(pn.state.add_periodic_callback(follow, period=POLL_MILLISECONDS)))
    return template


def notify_error(exception: BaseException) -> None:
    """Show an exception raised in a session's callback as a notification, never a traceback.

    The message may quote data (a file name, a location): it is escaped, as the
    notification renders HTML. The traceback goes to the server's log.
    """
    logging.getLogger("zoolens").error("a callback failed", exc_info=exception)
    if pn.state.notifications is not None:
        pn.state.notifications.error(html.escape(f"{type(exception).__name__}: {exception}"), duration=0)


def serve(key: str, build_project: Callable[[LoadProgress], Project], title: str,
          port: int = 5006, address: str | None = None, show: bool = False, num_threads: int = DEFAULT_THREADS,
          threaded: bool = False, reviews: ReviewStore | None = None,
          review_refresh_ms: int = REVIEW_REFRESH_MS, sign_in: SignIn | None = None,
          sign_in_throttle: SignInThrottle | None = None, recycle: IdleRecycle | None = None, **server_options):
    """Serve the app: the server listens at once, and every session shares the project ``build_project`` makes.

    Parameters
    ----------
    key : str
        Names the project in the process cache.
    build_project : callable
        ``build_project(progress)`` makes the `Project`, reporting its stages to
        ``progress`` (a `dashboard.loading.LoadProgress`). Called once, in a
        background thread, as the server starts.
    title : str
        Names the project on the pages while it loads.
    port, address, show, threaded
        As for `panel.serve`.
    num_threads : int
        Worker threads that run the sessions' callbacks, each session's in the order they arrived
        (`dashboard.session_threads`); 0: the server's event loop runs them.
    reviews : ReviewStore, optional
        Where review decisions go: one store (one database engine) for every session.
    review_refresh_ms : int
        How often each session reads the decisions made in other sessions.
    sign_in : SignIn, optional
        Who may open the app and with which role (`dashboard.sign_in`); without one anyone may,
        typing a name to decide under. Give a ``cookie_secret`` with it.
    sign_in_throttle : SignInThrottle, optional
        With a sign-in that asks for a password, how failed sign-ins slow down and lock out
        (default: a `SignInThrottle` with its default settings).
    recycle : IdleRecycle, optional
        Stop the server once it has had no session for a while and holds much more memory than when
        the project loaded (`dashboard.recycling`): ``serve`` then returns, and the caller ends the
        process to give that memory back. Its ``loaded()`` is the caller's to call once the project
        has loaded; serve tells it when the plots have warmed up (`dashboard.warm_up`). Not with
        ``num_procs``.
    **server_options
        Passed to `panel.serve` (``cookie_secret``, ``websocket_origin``, ``num_procs``...). With
        ``num_procs`` N > 1 the server forks N processes sharing the port, each loading the project
        itself; give them one PostgreSQL review store, whose decisions every process reads.

    Subjects' image files are served under ``zoolens-images/`` from the loaded project's
    image roots (`dashboard.image_route`), and nothing else in those folders.
    """
    for option in ("basic_auth", "oauth_provider", "auth_provider"):
        if option in server_options:
            raise TypeError(f"serve() takes sign_in=, not {option}=: the sessions must know the user's role")
    if recycle is not None and server_options.get("num_procs", 1) != 1:
        raise ValueError("serve() recycles one server process, not num_procs of them")
    def build_and_warm_up(progress):
        project = build_project(progress)
        # Once loaded, the plots' compiled code is made off the sessions' way (and its memory is not growth).
        warm_up_in_background(lambda: AgreementPlots(data_store=DataStore(project=project)).warm_up(),
                              then=recycle.warmed_up if recycle is not None else None)
        return project

    # With num_procs, Bokeh forks the worker processes inside panel.serve: each loads the project.
    load = shared_load(key, build_and_warm_up, title, forked=server_options.get("num_procs", 1) != 1)

    def session():
        pn.state.on_session_destroyed(RELEASE.session_closed)  # its memory goes back once it is gone
        if recycle is not None:
            recycle.session_opened()
            pn.state.on_session_destroyed(recycle.session_closed)
        # On the server's event loop, as is the template's `_init_doc` after it (`SessionTemplate`).
        with unchecked_models():
            return create_loading_app(load, reviews=reviews, review_refresh_ms=review_refresh_ms, sign_in=sign_in)

    pn.config.notifications = True
    pn.config.exception_handler = notify_error
    # `panel.serve` passes num_threads to Bokeh, which ignores it: Panel's thread pool is its config.
    use_session_threads(num_threads)
    # Panel keeps these process-wide; each server sets them for its own sign-in (or none).
    pn.config.oauth_provider = sign_in.oauth_provider if sign_in is not None else None
    pn.config.authorize_callback = None if sign_in is None else (
        lambda user_info: sign_in.authorize(pn.state.user, user_info))
    if sign_in is not None:
        server_options.update(sign_in.server_options())
    # Subjects' images only, once the project has loaded (`dashboard.image_route`): never the
    # folders they are in, which hold the exports and the review store too.
    extra_patterns = [*server_options.pop("extra_patterns", []), image_route(load)]
    if sign_in is not None and sign_in.asks_password:
        # Matched before Panel's own login page, which would check passwords as fast as asked.
        extra_patterns.append(login_route(sign_in_throttle or SignInThrottle(), sign_in.check_password,
                                          server_options.get("login_endpoint") or "/login"))
    server_options.setdefault("check_unused_sessions_milliseconds", CLOSED_SESSIONS_CHECK_MS)
    return pn.serve({"/": session}, port=port, address=address, show=show,
                    extra_patterns=extra_patterns, title="zoolens", threaded=threaded, **server_options)
