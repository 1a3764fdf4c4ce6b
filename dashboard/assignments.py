"""Who each subject is assigned to, shared by every session of the process and read again only when it changed.

The review panel's heading names the current subject's assignee. Asked of the review store on every
subject switch, that was a query and a table per switch. Here a process keeps each consensus run's
assignments as a dict, checks the store's newest assignment id at most every `FRESH_SECONDS` (the
periodic review refresh's period: other processes' assignments show as soon as their decisions do),
reads them all again only when that id moved, and forgets them at once when a session of its own assigns.
"""

from __future__ import annotations

import threading
import time
import weakref

from project.reviews import ReviewStore

#: How long a reading of the store's assignments is trusted without asking whether anyone assigned since.
FRESH_SECONDS = 3.0

#: Review store -> consensus source -> (checked at, newest assignment id, subject id -> assignee).
_KNOWN: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def assignee_of(reviews: ReviewStore, consensus_source: str, subject_id: int) -> str | None:
    """Who ``subject_id`` is assigned to on ``consensus_source`` (None: nobody), as of at most `FRESH_SECONDS` ago."""
    with _LOCK:  # one session reads while the others wait for its reading
        known = _KNOWN.setdefault(reviews, {}).get(consensus_source)
        now = time.monotonic()
        if known is None or now - known[0] > FRESH_SECONDS:
            newest = reviews.last_assignment_id(consensus_source)
            if known is None or newest != known[1]:
                table = reviews.assignments(consensus_source)
                known = (now, newest, dict(zip(table.subject_id.tolist(), table.assignee.astype(object).tolist())))
            else:
                known = (now, *known[1:])
            _KNOWN[reviews][consensus_source] = known
    return known[2].get(int(subject_id))


def forget_assignments(reviews: ReviewStore, consensus_source: str) -> None:
    """Drop the process's reading of ``consensus_source``'s assignments (a session of this process just assigned)."""
    with _LOCK:
        _KNOWN.get(reviews, {}).pop(consensus_source, None)
