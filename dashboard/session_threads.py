"""Worker threads for a served app's callbacks: sessions in parallel, each session's events in order.

Panel runs a session's callbacks (a widget's change, a button's click, a periodic callback,
an onload) on its thread pool when ``pn.config.nthreads`` is set. Panel hands them to the pool
in the order they arrived, but a plain pool starts each on any free thread at once: two events of
one session then run side by side, and the later one can take the session's lock, or finish,
first (a Reject handled before the row click that picked the box). Panel has no setting for
this, so `SessionExecutor` stands where Panel keeps its pool (``pn.state._thread_pool``): every
Bokeh document (a session) has its own queue whose tasks run one after another, in the order
they were submitted, while the queues of different sessions share the worker threads.

A worker thread must not set a served document's Bokeh models itself: Bokeh sends a session's
changes to the browser only while the session's document lock is held, which the server's event
loop takes around each of its callbacks (else "_pending_writes should be non-None"). Panel's own
components schedule their model updates onto the event loop when they change on another thread;
`in_document` does the same for code that sets Bokeh models directly (the cutout's figure).
"""

from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from functools import partial

import panel as pn
from bokeh.document import Document


def in_document(document: Document | None, change) -> None:
    """Run ``change()``, a function setting Bokeh models of ``document``, so its changes reach the browser in order.

    On the thread that made the served document (the server's event loop), or for a document not
    served, at once. On any other thread (a worker), as the event loop's next callback, under the
    document's lock: each call's changes go out as they were made, after the changes already
    scheduled, as Panel schedules its own components' updates (``state.execute``). ``change`` then
    runs after this returns, so it must carry the values to set, computed beforehand.
    """
    from panel.io.state import set_curdoc, state

    if document is not None and _destroyed(document):
        return  # its session closed while the change was being worked out on a worker: nobody to show it to
    made_on = state._thread_id_.get(document) if document is not None else None
    if document is None or document.session_context is None or made_on in (None, threading.get_ident()):
        change()
        return
    with set_curdoc(document):  # an error in it then goes to the app's exception handler, as a callback's does
        state.execute(change, schedule=True)


def in_session(document: Document | None, task) -> None:
    """Run ``task()`` as one more of the session's callbacks, from any thread: after the session's callbacks
    already waiting, on its worker thread (`SessionExecutor`), or on the server's event loop where the app runs
    none; for a document not served, at once; for a session that closed, never. ``task`` may change the
    session's parameters and work out its views, as a widget's callback does."""
    from panel.io.state import set_curdoc, state

    if document is not None and _destroyed(document):
        return
    if document is None or document.session_context is None:
        task()
        return
    with set_curdoc(document):
        state.execute(task, schedule="thread" if state._thread_pool is not None else True)


def session_of(function, args: tuple) -> Document | None:
    """The Bokeh document (session) a task Panel submits belongs to, or None when it names none.

    Panel submits its handlers with the document as the first argument (``_change_event(doc)``,
    ``_process_bokeh_event(doc, event)``, ``_on_load(doc)``), inside a `functools.partial`
    (``_execute_on_thread(doc, callback)``), or as a bound method of a periodic callback that
    keeps its document; otherwise the document being served when the task was submitted.
    """
    while isinstance(function, partial):
        args = function.args + args
        function = function.func
    for value in args:
        if isinstance(value, Document):
            return value
    owner = getattr(getattr(function, "__self__", None), "_doc", None)
    if isinstance(owner, Document):
        return owner
    return pn.state.curdoc


def _destroyed(session) -> bool:
    """Whether ``session`` is a document Bokeh served and has since destroyed (``Document.destroy`` drops its
    session context and roots; a document never served has its roots).

    Setting a destroyed document's half-dismantled models as if it were never served failed three ways in a row
    ("unexpected attribute 'reset_start' to DataRange1d", then no ``_change_callbacks``, then no ``_roots``) when
    a session closed during its periodic review refresh."""
    return isinstance(session, Document) and session.session_context is None and not hasattr(session, "_roots")


class SessionExecutor(Executor):
    """A thread pool that runs the tasks of one session in submission order, sessions side by side.

    Parameters
    ----------
    max_workers : int
        Worker threads shared by all sessions.
    """

    def __init__(self, max_workers: int):
        self.max_workers = max_workers
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="zoolens-session")
        self._lock = threading.Lock()
        # Session -> its tasks not yet started; a session is a key while one of its tasks is queued
        # or running, and then exactly one `_run_next` of it is in the pool.
        self._queues: dict[object, deque] = {}

    def submit(self, fn, /, *args, **kwargs) -> Future:
        session = session_of(fn, args)
        if session is None:
            return self._pool.submit(fn, *args, **kwargs)
        future: Future = Future()
        with self._lock:
            queue = self._queues.get(session)
            if queue is not None:  # a task of this session is queued or running: wait behind it
                queue.append((future, fn, args, kwargs))
                return future
            self._queues[session] = deque([(future, fn, args, kwargs)])
        self._pool.submit(self._run_next, session)
        return future

    def _run_next(self, session) -> None:
        """Run the session's oldest task, then put the session back in the pool's line if it has more.

        One task per turn, not the whole queue: a session sending many events does not hold a
        thread while other sessions wait.
        """
        with self._lock:
            future, fn, args, kwargs = self._queues[session].popleft()
        if _destroyed(session):
            # Bokeh destroyed the session while this waited (a periodic refresh queued as it closed): its
            # document has no models left to change, so the task is skipped. Finished with no result rather
            # than cancelled: Panel's done-callback asks the future for its exception, which for a cancelled
            # one raises, and logged a CancelledError traceback per skipped task.
            if future.set_running_or_notify_cancel():
                future.set_result(None)
        elif future.set_running_or_notify_cancel():
            try:
                result = fn(*args, **kwargs)
            except BaseException as error:  # handed to whoever waits on the future, as a pool does
                future.set_exception(error)
            else:
                future.set_result(result)
        with self._lock:
            if not self._queues[session]:
                del self._queues[session]
                return
        self._pool.submit(self._run_next, session)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        if cancel_futures:
            with self._lock:
                for queue in self._queues.values():
                    for future, *_ in queue:
                        future.cancel()
        self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)


def use_session_threads(threads: int) -> None:
    """Run the served sessions' callbacks on ``threads`` worker threads (0: on the server's event loop).

    Sets Panel's ``config.nthreads`` (process-wide; other code reads it) and puts a
    `SessionExecutor` of that size where Panel keeps its pool.
    """
    from panel.io.state import state

    pool = state._thread_pool
    if threads and isinstance(pool, SessionExecutor) and pool.max_workers == threads and pn.config.nthreads == threads:
        return
    # A running pool cannot be resized: Panel's config stops it when set to None, and starts one
    # when given a size, which is then swapped for the session-ordered one.
    pn.config.nthreads = None
    if threads:
        pn.config.nthreads = threads
        state._thread_pool.shutdown(wait=False)
        state._thread_pool = SessionExecutor(threads)
