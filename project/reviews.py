"""The durable review store: shared, attributed, revertible decisions on consensus boxes.

Reviewers accept, reject or redraw consensus boxes, draw boxes the aggregation missed
("add"), and flag subjects. Every decision is one appended row that keeps who, when, what
before, what after and why; nothing is ever updated or deleted. Reverting is a new row
pointing at the decision it undoes, and the effective state of each box is derived from the
decisions still in effect. The aggregation output is never changed either: `ReviewStore.apply`
lays the decisions over a consensus table to make the reviewed catalogue.

Decisions belong to one consensus run, named by ``consensus_source`` (`consensus_fingerprint`
makes a name from the boxes themselves). Each decision on an aggregated box also records the
box's original geometry, and the store refuses a decision or an `apply` whose consensus box
does not match it: consensus ids of another run mean other boxes.

The store is SQLAlchemy over a SQLite file (WAL journal) by default, or a PostgreSQL database
given by URL for a shared server. Writers are serialised (SQLite ``BEGIN IMMEDIATE``, a
PostgreSQL advisory lock), so each decision's "before" is the state the previous decision
left, and when two reviewers act on one box both decisions are kept and the later one wins.
Within a process every decision goes through one writer thread, in the order the sessions
made them: the decisions waiting when a transaction starts are committed together (a
refused one is refused before it writes anything, so it takes no other with it). Sessions left to race for
SQLite's lock were served in no order at all (its busy handler polls, and a newcomer often
wins): at 20 sessions deciding at once some waited over 10 s (bench/results/review_writes.md).
Every decision also keeps the reviewer's role and how their name was established
(`project.roles.Reviewer`), and the store refuses what the role does not allow: a viewer
records nothing, a reviewer reverts only their own decisions, only a lead flags subjects or
reverts anyone's. This module imports no Panel: the app passes the signed-in reviewer in.
"""

from __future__ import annotations

import hashlib
import math
import numbers
import os
import queue
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from .roles import Reviewer, RoleError

#: Bumped with every change of the tables; a store refuses a database of another version.
SCHEMA_VERSION = 2
#: Columns each schema version added to review_decisions, so an older store is brought up to date.
ADDED_COLUMNS = {2: ("role", "authentication")}
#: The SQLite file used when neither a URL nor a path is given (in the working directory).
DEFAULT_PATH = Path("zoolens-reviews.sqlite")
#: How long a SQLite writer waits for another's lock before giving up, in milliseconds.
SQLITE_BUSY_TIMEOUT_MS = 30_000
#: How long to wait before trying the switch to WAL again when another connection holds the file.
SQLITE_WAL_RETRY_S = 0.01
#: PostgreSQL advisory lock key serialising writers (any fixed 64-bit number; this spells "zoolrevw").
POSTGRES_WRITE_LOCK = 0x7A6F6F6C72657677
#: The most decisions committed in one transaction: enough that a burst commits in a few
#: syncs, few enough that the first of them does not wait long for the last.
MAX_DECISIONS_PER_COMMIT = 64

BOX_ACTIONS = ("accept", "reject", "redraw")
SUBJECT_ACTIONS = ("flag", "unflag")
ACTIONS = BOX_ACTIONS + SUBJECT_ACTIONS + ("add", "revert")
STATUS_OF_ACTION = {"accept": "accepted", "reject": "rejected", "redraw": "redrawn", "add": "added"}
#: The values of `ReviewStore.subject_status`'s ``status`` (the review-status filter's choices).
SUBJECT_STATUSES = ("unreviewed", "accepted", "rejected", "flagged", "mixed", "edited")
GEOMETRY = ("x", "y", "width", "height", "angle")
ORIGINAL = tuple(f"original_{name}" for name in GEOMETRY)
BOX = ["subject_id", "consensus_id"]

metadata = sa.MetaData()
# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

schema_versions = sa.Table(
    "review_schema", metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
)
# One row per box a reviewer added: its id n gives the box consensus id -(n + 1), so added
# boxes never take -1, which the links table uses for "matched nothing".
added_boxes = sa.Table("review_added_boxes", metadata, sa.Column("id", _ID, primary_key=True))
decisions = sa.Table(
    "review_decisions", metadata,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("consensus_source", sa.Text, nullable=False),
    sa.Column("subject_id", sa.BigInteger, nullable=False),
    sa.Column("consensus_id", sa.BigInteger, nullable=True),  # NULL: a decision on the subject
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("before", sa.JSON(none_as_null=True), nullable=True),
    sa.Column("after", sa.JSON(none_as_null=True), nullable=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("reviewer", sa.Text, nullable=False),
    # NULL in decisions recorded before roles existed (schema version 1).
    sa.Column("role", sa.Text, nullable=True),
    sa.Column("authentication", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("reverts", _ID, sa.ForeignKey("review_decisions.id"), nullable=True),
    sa.CheckConstraint("action IN ({})".format(", ".join(f"'{a}'" for a in ACTIONS)),
                       name="review_decisions_action"),
    sa.Index("review_decisions_box", "consensus_source", "subject_id", "consensus_id"),
)
# One row per assignment of a subject to a reviewer (a lead's work plan); the newest row of a
# subject is in effect, an empty assignee takes the assignment back. Kept apart from the
# decisions: an assignment says who should review, not what was decided.
assignments = sa.Table(
    "review_assignments", metadata,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("consensus_source", sa.Text, nullable=False),
    sa.Column("subject_id", sa.BigInteger, nullable=False),
    sa.Column("assignee", sa.Text, nullable=False),
    sa.Column("assigned_by", sa.Text, nullable=False),
    sa.Column("role", sa.Text, nullable=False),
    sa.Column("authentication", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("review_assignments_subject", "consensus_source", "subject_id"),
)
HISTORY_DTYPES = {
    "id": "int64", "consensus_source": "string", "subject_id": "int64", "consensus_id": "Int64",
    "action": "string", "before": "object", "after": "object", "reason": "string",
    "reviewer": "string", "role": "string", "authentication": "string", "created_at": "datetime64[ns, UTC]",
    "reverts": "Int64",
}


class ReviewError(ValueError):
    """A decision that cannot be recorded, or a store that cannot be opened or applied."""


@dataclass(frozen=True)
class Decision:
    """One stored decision, as read back from the database."""

    id: int
    consensus_source: str
    subject_id: int
    consensus_id: int | None
    action: str
    before: dict | None
    after: dict | None
    reason: str
    reviewer: str
    role: str | None
    authentication: str | None
    created_at: datetime
    reverts: int | None


#: The install extra holding the PostgreSQL driver (``pip install 'zoolens[postgres]'``).
POSTGRES_EXTRA = "postgres"


@dataclass(frozen=True)
class ReviewState:
    """A consensus run's review state as of one reading of its decisions (`ReviewStore.review_state`).

    Read-only: a newer state is a new object, so a state handed to others never changes under them.
    """

    consensus_source: str
    #: Every decision on the run, oldest first, with ``active`` (`ReviewStore.history`).
    history: pd.DataFrame
    #: `ReviewStore.box_status`.
    box_status: pd.DataFrame
    #: `ReviewStore.subject_status`, with every subject of the consensus table when one was given.
    subject_status: pd.DataFrame
    #: Ids of the subjects whose state may differ from the state this one was updated from (each with
    #: a decision since), sorted; None for a state read whole.
    changed: np.ndarray | None

    def updated(self, added: pd.DataFrame, consensus: pd.DataFrame | None) -> ReviewState:
        """This state with the decisions ``added`` (newer than all of its own, oldest first)."""
        if added.empty:
            return ReviewState(self.consensus_source, self.history, self.box_status, self.subject_status,
                               np.array([], dtype=np.int64))
        history = pd.concat([self.history.drop(columns="active"), added], ignore_index=True)
        history["active"] = _active(history)
        # A decision (a revert included) changes only its own subject's boxes and flag.
        changed = np.unique(added["subject_id"].to_numpy(np.int64))
        history_changed = history[history["subject_id"].isin(changed)]
        boxes_changed = _effective_boxes(history_changed).reset_index()
        consensus_changed = None if consensus is None else consensus[consensus["subject_id"].isin(changed)]
        subjects_changed = _subject_status(history_changed, boxes_changed, consensus_changed)
        # Rows in the order a whole reading gives: boxes by their deciding decision, subjects by id.
        boxes = _spliced(self.box_status, boxes_changed, changed, "decision_id")
        subjects = _spliced(self.subject_status, subjects_changed, changed, "subject_id")
        return ReviewState(self.consensus_source, history, boxes, subjects, changed)


def _spliced(table: pd.DataFrame, rows: pd.DataFrame, subject_ids: np.ndarray, order: str) -> pd.DataFrame:
    """``table`` with its rows of ``subject_ids`` replaced by ``rows``, sorted by ``order`` (unique)."""
    kept = table[~table["subject_id"].isin(subject_ids)]
    parts = [part for part in (kept, rows) if len(part)]
    if not parts:
        return table.iloc[:0]
    joined = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
    return joined.sort_values(order, kind="stable").reset_index(drop=True).astype(table.dtypes.to_dict())


class ReviewStore:
    """Review decisions in a SQLite file or a PostgreSQL database.

    Parameters
    ----------
    url : str, optional
        A SQLAlchemy database URL: ``postgresql+psycopg2://user@host/db``, or ``sqlite:///path``.
    path : str or Path, optional
        The SQLite file to use when no URL is given (default `DEFAULT_PATH`).

    Notes
    -----
    The schema is created when absent. One store serves every thread of a process, and it
    survives a fork (``zoolens serve --num-procs``): a forked child leaves the parent's open
    connections to the parent and opens its own.
    """

    def __init__(self, url: str | None = None, path: str | Path | None = None):
        if url is not None and path is not None:
            raise ReviewError("give a database URL or a SQLite path, not both")
        if url is None:
            url = sa.URL.create("sqlite", database=str(Path(path if path is not None else DEFAULT_PATH)))
        self.url = sa.make_url(url)
        self._backend = self.url.get_backend_name()
        # Only these two have the write lock that keeps concurrent decisions in order.
        if self._backend not in ("sqlite", "postgresql"):
            raise ReviewError(f"review decisions go to SQLite or PostgreSQL, not {self._backend}")
        if self._backend == "sqlite" and self.url.database in (None, "", ":memory:"):
            raise ReviewError("an in-memory SQLite database would lose every decision; give a file path")
        try:
            self._engine = sa.create_engine(self.url)
        except ModuleNotFoundError as error:
            # The PostgreSQL driver is an install extra: say which, not a traceback.
            install = f"zoolens[{POSTGRES_EXTRA}]" if error.name == "psycopg2" else error.name
            raise ReviewError(f"{self.url.drivername} needs the {error.name} driver, which is not installed: "
                              f"pip install '{install}'") from None
        if self._backend == "sqlite":
            sa.event.listen(self._engine, "connect", _configure_sqlite)
            sa.event.listen(self._engine, "begin", _begin_sqlite)
        try:
            with self._writing() as connection:
                metadata.create_all(connection)
                version = connection.execute(sa.select(sa.func.max(schema_versions.c.version))).scalar()
                if version is None:
                    connection.execute(sa.insert(schema_versions).values(version=SCHEMA_VERSION))
                elif version < SCHEMA_VERSION:
                    _upgrade(connection, version)
                elif version != SCHEMA_VERSION:
                    raise ReviewError(f"{self} holds review schema version {version}; this zoolens "
                                      f"reads version {SCHEMA_VERSION}: open it with a matching zoolens")
        except sa.exc.DBAPIError as error:
            self._engine.dispose()
            raise ReviewError(f"cannot open {self}: {error.orig}") from error
        except ReviewError:
            self._engine.dispose()
            raise
        self._writer = _WriterThread(self._writing)
        # SQLAlchemy's recipe for a fork: the child forgets the pooled connections without closing
        # them (they are the parent's). Weakly held, so a closed store is not kept alive by the hook.
        engine = weakref.ref(self._engine)
        os.register_at_fork(after_in_child=lambda: engine() is not None and engine().dispose(close=False))

    def __repr__(self) -> str:
        return f"ReviewStore({self.url.render_as_string(hide_password=True)!r})"

    def close(self) -> None:
        """Finish the decisions under way and close the database connections."""
        self._writer.stop()
        self._engine.dispose()

    def __enter__(self) -> ReviewStore:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @contextmanager
    def _writing(self) -> Iterator[sa.Connection]:
        """A transaction that holds the store's write lock until it commits or rolls back."""
        with self._engine.connect() as connection:
            connection.execution_options(zoolens_write=True)
            with connection.begin():
                if self._backend == "postgresql":
                    connection.execute(sa.select(sa.func.pg_advisory_xact_lock(POSTGRES_WRITE_LOCK)))
                yield connection

    def record(self, consensus_source: str, subject_id: int, action: str, reviewer: Reviewer | str, *,
               consensus_id: int | None = None, original: Mapping | None = None,
               geometry: Mapping | None = None, reason: str = "") -> Decision:
        """Store one decision and return it as stored.

        Parameters
        ----------
        consensus_source : str
            The consensus run the decision refers to.
        subject_id : int
            The subject.
        action : str
            ``accept``, ``reject`` or ``redraw`` a box; ``add`` a box the aggregation missed;
            ``flag`` or ``unflag`` the subject. Use `revert` to revert.
        reviewer : Reviewer or str
            Who decides, with their role and how they signed in; a plain name is an
            unverified reviewer with every right (a notebook's user), kept as given.
        consensus_id : int, optional
            The box, for accept, reject and redraw: an aggregated box's id, or the negative id
            of a box added by a reviewer.
        original : mapping, optional
            An aggregated box's geometry as the consensus table gives it (``x``, ``y``,
            ``width``, ``height``, optional ``angle``; other keys are ignored, so a consensus
            row will do). Required for aggregated boxes; it must match the geometry earlier
            decisions on the box recorded.
        geometry : mapping, optional
            The new geometry, for redraw and add.
        reason : str, optional
            Why, in the reviewer's words, kept as given.

        Returns
        -------
        Decision
            The stored row; for ``add``, ``consensus_id`` is the new box's id.

        Raises
        ------
        ReviewError
            An unknown action, a missing reviewer, arguments that do not fit the action,
            geometry that is not finite or not of positive size, an added box that does not
            exist, or an ``original`` that differs from the one recorded before.
        project.roles.RoleError
            The reviewer's role does not allow the action.
        """
        consensus_source = _text("consensus_source", consensus_source, required=True)
        subject_id = _integer("subject_id", subject_id)
        reviewer = _reviewer(reviewer)
        reason = _text("reason", reason)
        if action == "revert":
            raise ReviewError("revert a decision with ReviewStore.revert(decision_id, reviewer, reason)")
        if action not in ACTIONS:
            raise ReviewError(f"unknown action {action!r}; known: {', '.join(ACTIONS[:-1])}")
        reviewer.check(action)
        on_box = action in BOX_ACTIONS
        if on_box == (consensus_id is None):
            raise ReviewError(f"{action} {'needs' if on_box else 'takes no'} consensus_id")
        if (action in ("redraw", "add")) == (geometry is None):
            raise ReviewError(f"{action} {'takes no' if geometry is not None else 'needs a'} geometry")
        if on_box:
            consensus_id = _integer("consensus_id", consensus_id)
        aggregated = on_box and consensus_id >= 0
        if aggregated and original is None:
            raise ReviewError(f"{action} on aggregated box {consensus_id} needs its original geometry "
                              "(its consensus row)")
        if not aggregated and original is not None:
            raise ReviewError(f"{action} takes no original geometry: only aggregated boxes have one")
        original = _geometry("original", original, point=True) if aggregated else None
        geometry = _geometry("geometry", geometry) if geometry is not None else None
        undecided = _undecided(consensus_id, original)

        def write(connection: sa.Connection) -> Decision:
            box_id = consensus_id
            if action == "add":
                new_id = connection.execute(sa.insert(added_boxes)).inserted_primary_key[0]
                box_id, before = -(new_id + 1), None
            else:
                decided = _first_and_last(connection, consensus_source, subject_id, consensus_id)
                if aggregated and decided is not None:
                    recorded = _geometry("recorded", decided[0], point=True)
                    if not _same_geometry(recorded, original):
                        raise ReviewError(
                            f"box {consensus_id} of subject {subject_id} in {consensus_source!r} was "
                            f"reviewed with geometry {recorded}, not {original}: this consensus is not "
                            "the run those decisions refer to; review it under its own consensus_source")
                # Every decision stores the state it left, so the newest one's is the state now.
                before = undecided if decided is None else decided[1]
                if before is None:
                    raise ReviewError(f"box {consensus_id} of subject {subject_id} does not exist in "
                                      f"{consensus_source!r} (never added, or its addition was reverted)")
            after = _transition(before, action, geometry)
            return _insert(connection, reviewer, consensus_source=consensus_source, subject_id=subject_id,
                           consensus_id=box_id, action=action, before=before, after=after,
                           reason=reason, reverts=None)

        return self._writer.run(write)

    def revert(self, decision_id: int, reviewer: Reviewer | str, reason: str = "") -> Decision:
        """Undo a decision that is in effect, by storing a ``revert`` decision.

        Reverting a revert puts the reverted decision back in effect. A reviewer reverts their own
        decisions only (the same name, signed in the same way); a lead reverts anyone's.

        Parameters
        ----------
        decision_id : int
            The decision to revert.
        reviewer : Reviewer or str
            Who reverts (as for `record`).
        reason : str, optional
            Why.

        Returns
        -------
        Decision
            The stored revert; ``before`` and ``after`` are the box's (or the subject's flag's)
            effective state without and with it.

        Raises
        ------
        ReviewError
            No such decision, or it is not in effect (already reverted).
        project.roles.RoleError
            A viewer, or a reviewer reverting someone else's decision.
        """
        decision_id = _integer("decision_id", decision_id)
        reviewer = _reviewer(reviewer)
        reason = _text("reason", reason)
        reviewer.check("revert")

        def write(connection: sa.Connection) -> Decision:
            target = connection.execute(
                sa.select(decisions).where(decisions.c.id == decision_id)).mappings().one_or_none()
            if target is None:
                raise ReviewError(f"there is no decision {decision_id}")
            if not reviewer.may_revert_anyones() and not _made_by(target, reviewer):
                raise RoleError(f"{reviewer.name} is a {reviewer.role} and reverts only their own decisions: "
                                f"decision {decision_id} is {target['reviewer']}'s; a lead can revert it")
            rows = _select(connection, target["consensus_source"], target["subject_id"], target["consensus_id"])
            if not _active(rows)[rows["id"] == decision_id].item():
                reverter = rows.loc[(rows["reverts"] == decision_id) & _active(rows), "id"].iloc[-1]
                raise ReviewError(f"decision {decision_id} is not in effect: decision {reverter} reverted it")
            consensus_id = target["consensus_id"]
            aggregated = consensus_id is not None and consensus_id >= 0
            original = _geometry("recorded", rows["before"].iloc[0], point=True) if aggregated else None
            # The state after is the state with this revert appended to the box's decisions.
            reverted = pd.concat([rows, rows.tail(1).assign(id=rows["id"].max() + 1, action="revert",
                                                            reverts=decision_id)], ignore_index=True)
            return _insert(connection, reviewer, consensus_source=target["consensus_source"],
                           subject_id=target["subject_id"], consensus_id=consensus_id, action="revert",
                           before=_state(rows, consensus_id, original),
                           after=_state(reverted, consensus_id, original),
                           reason=reason, reverts=decision_id)

        return self._writer.run(write)

    def history(self, subject_id: int | None = None, consensus_source: str | None = None) -> pd.DataFrame:
        """Every decision, oldest first, with whether it is still in effect.

        Parameters
        ----------
        subject_id : int, optional
            Only this subject's decisions.
        consensus_source : str, optional
            Only decisions on this consensus run.

        Returns
        -------
        DataFrame
            The stored columns (``id``, ``consensus_source``, ``subject_id``, ``consensus_id``,
            ``action``, ``before``, ``after``, ``reason``, ``reviewer``, ``role`` and
            ``authentication`` (`project.roles`; missing in decisions stored before roles),
            ``created_at`` in UTC, ``reverts``) and ``active``: False once a revert in effect undid the decision.
        """
        query = sa.select(decisions).order_by(decisions.c.id)
        if subject_id is not None:
            query = query.where(decisions.c.subject_id == _integer("subject_id", subject_id))
        if consensus_source is not None:
            query = query.where(decisions.c.consensus_source == consensus_source)
        with self._engine.connect() as connection:
            rows = _frame(connection.execute(query).mappings().all())
        rows["active"] = _active(rows)
        return rows

    def assign(self, consensus_source: str, subject_ids, assignee: str, lead: Reviewer | str) -> int:
        """Assign subjects to a reviewer (a lead's action); an empty ``assignee`` takes them back.

        Parameters
        ----------
        consensus_source : str
            The consensus run.
        subject_ids : int or sequence of int
            The subjects.
        assignee : str
            The reviewer's name as they sign in ("" to unassign).
        lead : Reviewer or str
            Who assigns (as for `record`).

        Returns
        -------
        int
            How many subjects were assigned.

        Raises
        ------
        ReviewError
            No subject, or text that cannot be stored.
        project.roles.RoleError
            Someone other than a lead.
        """
        consensus_source = _text("consensus_source", consensus_source, required=True)
        subject_ids = [_integer("subject_id", subject) for subject in np.atleast_1d(subject_ids).tolist()]
        assignee = _text("assignee", assignee).strip()
        lead = _reviewer(lead)
        lead.check("assign")
        if not subject_ids:
            raise ReviewError("assign needs at least one subject")
        now = datetime.now(timezone.utc)
        rows = [{"consensus_source": consensus_source, "subject_id": subject, "assignee": assignee,
                 "assigned_by": lead.name, "role": lead.role, "authentication": lead.authentication,
                 "created_at": now} for subject in subject_ids]

        def write(connection: sa.Connection) -> int:
            connection.execute(sa.insert(assignments), rows)
            return len(rows)

        return self._writer.run(write)

    def assignments(self, consensus_source: str, subject_id: int | None = None) -> pd.DataFrame:
        """The assignment in effect of each assigned subject of a consensus run (or of one subject).

        Returns
        -------
        DataFrame
            ``subject_id``, ``assignee``, ``assigned_by``, ``assigned_at`` (UTC); subjects whose
            newest assignment took it back are absent.
        """
        query = (sa.select(assignments).where(assignments.c.consensus_source == consensus_source)
                 .order_by(assignments.c.id))
        if subject_id is not None:
            query = query.where(assignments.c.subject_id == _integer("subject_id", subject_id))
        with self._engine.connect() as connection:
            rows = pd.DataFrame([dict(row) for row in connection.execute(query).mappings().all()],
                                columns=[column.name for column in assignments.columns])
        newest = rows.drop_duplicates("subject_id", keep="last")
        newest = newest[newest["assignee"] != ""]
        table = pd.DataFrame({"subject_id": newest["subject_id"].astype("int64"),
                              "assignee": newest["assignee"].astype("string"),
                              "assigned_by": newest["assigned_by"].astype("string"),
                              "assigned_at": pd.to_datetime(newest["created_at"], utc=True)})
        return table.reset_index(drop=True)

    def last_assignment_id(self, consensus_source: str) -> int:
        """The id of the newest assignment on a consensus run (0 when none): changes exactly when anyone assigns."""
        query = sa.select(sa.func.max(assignments.c.id)).where(assignments.c.consensus_source == consensus_source)
        with self._engine.connect() as connection:
            return int(connection.execute(query).scalar() or 0)

    def last_decision_id(self) -> int:
        """The id of the newest decision in the store (0 when empty): a cheap "has anyone decided?" check.

        Decision ids only grow, so a session that remembers the last id it read knows it must
        read the statuses again exactly when this number changes.
        """
        with self._engine.connect() as connection:
            return int(connection.execute(sa.select(sa.func.max(decisions.c.id))).scalar() or 0)

    def summary(self, consensus_source: str) -> dict:
        """What a reviewed export records about the review: the store and the decision counts.

        Parameters
        ----------
        consensus_source : str
            The consensus run.

        Returns
        -------
        dict
            ``store`` (the database URL, password hidden), ``consensus_source``, ``decisions``
            (all stored on this run, reverts included), ``in_effect`` (not reverted, reverts
            excluded), ``by_action`` (decisions in effect per action), ``reviewers`` (how many
            people decided) and ``last_decision_at`` (ISO 8601 UTC, None without decisions).
        """
        history = self.history(consensus_source=consensus_source)
        in_effect = history[history["active"] & (history["action"] != "revert")]
        last = history["created_at"].max() if len(history) else None
        return {
            "store": self.url.render_as_string(hide_password=True),
            "consensus_source": consensus_source,
            "decisions": len(history),
            "in_effect": len(in_effect),
            "by_action": {str(action): int(count)
                          for action, count in in_effect["action"].value_counts().sort_index().items()},
            "reviewers": int(history["reviewer"].nunique()),
            "last_decision_at": None if last is None else last.isoformat(),
        }

    def box_status(self, consensus_source: str) -> pd.DataFrame:
        """The effective state of every box with a decision in effect.

        Parameters
        ----------
        consensus_source : str
            The consensus run.

        Returns
        -------
        DataFrame
            One row per box: ``subject_id``, ``consensus_id`` (negative for added boxes),
            ``status`` (accepted, rejected, redrawn or added: the last decision in effect),
            the effective geometry ``x``, ``y``, ``width``, ``height``, ``angle`` (from the last
            redraw or add in effect, else the original), the aggregated geometry as
            ``original_x`` ... ``original_angle`` (NaN for added boxes), ``edited`` (added, or
            its geometry differs from the original), and the last decision in effect: ``decision_id``, ``reviewer``,
            ``decided_at``. Boxes whose decisions were all reverted are absent (unreviewed).
        """
        return _effective_boxes(self.history(consensus_source=consensus_source)).reset_index()

    def subject_status(self, consensus_source: str, consensus: pd.DataFrame | None = None) -> pd.DataFrame:
        """The review status of each subject.

        Parameters
        ----------
        consensus_source : str
            The consensus run.
        consensus : DataFrame, optional
            Its consensus table. When given, every subject in it gets a row and boxes without a
            decision count as unreviewed; otherwise only subjects with decisions are listed and
            ``n_unreviewed`` is missing.

        Returns
        -------
        DataFrame
            ``subject_id``; ``status``: flagged (the subject is flagged), edited (a box in it that is
            not rejected was added or has redrawn geometry), unreviewed (no box decision in effect), accepted or
            rejected (every box), else mixed; ``flagged``; the number of boxes ``n_accepted``,
            ``n_rejected``, ``n_redrawn``, ``n_added``, ``n_unreviewed``; and the last decision of
            any kind on the subject: ``last_reviewer``, ``last_reviewed_at``.
        """
        history = self.history(consensus_source=consensus_source)
        return _subject_status(history, _effective_boxes(history).reset_index(), consensus)

    def review_state(self, consensus_source: str, consensus: pd.DataFrame | None = None,
                     since: ReviewState | None = None) -> ReviewState:
        """`box_status` and `subject_status` (with ``consensus``) from one reading of the decisions: a
        consistent pair (two calls can fall either side of a new decision), for about half the work.

        Given ``since``, an earlier state of the same run and consensus table, only the decisions
        stored after it are read and only their subjects worked out again: a long review's every
        decision was read and worked out again at each new one (65 ms at 1,500 decisions and growing
        with them, bench/bench_review_refresh.py). When the store holds decisions the earlier state
        should have had and does not (a write committed after a later one was read, with several
        processes on PostgreSQL), everything is read again.
        """
        if since is not None and since.consensus_source == consensus_source:
            with self._engine.connect() as connection:
                newest = since.history["id"].max() if len(since.history) else 0
                query = (sa.select(decisions).where(decisions.c.consensus_source == consensus_source,
                                                    decisions.c.id > int(newest)).order_by(decisions.c.id))
                added = _frame(connection.execute(query).mappings().all())
                stored = connection.execute(sa.select(sa.func.count()).where(
                    decisions.c.consensus_source == consensus_source)).scalar()
            if stored == len(since.history) + len(added):
                return since.updated(added, consensus)
        history = self.history(consensus_source=consensus_source)
        boxes = _effective_boxes(history).reset_index()
        return ReviewState(consensus_source, history, boxes, _subject_status(history, boxes, consensus), None)

    def apply(self, consensus: pd.DataFrame, consensus_source: str, rejected: str = "drop") -> pd.DataFrame:
        """The reviewed catalogue: the consensus table with the decisions in effect applied.

        Parameters
        ----------
        consensus : DataFrame
            The consensus table the decisions were made on (``subject_id``, ``consensus_id``,
            ``x``, ``y``, ``width``, ``height``, optional ``angle``; other columns are kept).
        consensus_source : str
            The consensus run the decisions were recorded under.
        rejected : {"drop", "keep"}
            Drop rejected boxes, or keep them with ``review_status`` "rejected".

        Returns
        -------
        DataFrame
            The consensus rows in their order with redrawn geometry in ``x`` ... ``angle``
            and the aggregated geometry in ``original_x`` ... ``original_angle``, then the
            boxes reviewers added (negative ``consensus_id``, original geometry NaN, other
            consensus columns missing). Added columns: ``review_status`` (unreviewed, accepted,
            rejected, redrawn, added), ``reviewed_by``, ``reviewed_at``, ``subject_flagged``.

        Raises
        ------
        ReviewError
            The consensus table lacks a column, has negative or repeated box ids, or does
            not hold the boxes the decisions were made on (absent, or with other geometry).
        """
        if rejected not in ("drop", "keep"):
            raise ReviewError(f"rejected must be 'drop' or 'keep', not {rejected!r}")
        missing = [column for column in BOX + list(GEOMETRY[:4]) if column not in consensus.columns]
        if missing:
            raise ReviewError(f"the consensus table lacks column(s) {missing}")
        catalogue = consensus.copy()
        if "angle" not in catalogue.columns:
            catalogue["angle"] = 0.0
        index = pd.MultiIndex.from_frame(catalogue[BOX].astype("int64"))
        if (catalogue["consensus_id"] < 0).any():
            raise ReviewError("the consensus table has negative consensus ids, which are kept for added boxes")
        if index.duplicated().any():
            raise ReviewError(f"the consensus table repeats boxes: {_some(index[index.duplicated()])}")
        history = self.history(consensus_source=consensus_source)
        boxes = _effective_boxes(history)
        decided = boxes[boxes.index.get_level_values("consensus_id") >= 0]
        absent = decided.index.difference(index)
        if len(absent):
            raise ReviewError(f"decisions under {consensus_source!r} refer to boxes (subject_id, consensus_id) "
                              f"this consensus table lacks: {_some(absent)}; is it that consensus run?")
        aligned = decided.reindex(index)
        has_decision = aligned["status"].notna().to_numpy()
        given = catalogue[list(GEOMETRY)].to_numpy(float)[has_decision]
        recorded = aligned[list(ORIGINAL)].to_numpy(float)[has_decision]
        moved = ~np.isclose(given, recorded, rtol=1e-9, atol=1e-9).all(axis=1)
        if moved.any():
            raise ReviewError(f"boxes (subject_id, consensus_id) {_some(index[has_decision][moved])} have "
                              f"other geometry than when reviewed under {consensus_source!r}; "
                              "is this that consensus run?")
        for name, original_name in zip(GEOMETRY, ORIGINAL):
            catalogue[original_name] = catalogue[name].astype(float)
            catalogue[name] = np.where(has_decision, aligned[name].to_numpy(float), catalogue[original_name])
        catalogue["review_status"] = aligned["status"].fillna("unreviewed").set_axis(catalogue.index)
        catalogue["reviewed_by"] = aligned["reviewer"].set_axis(catalogue.index)
        catalogue["reviewed_at"] = aligned["decided_at"].set_axis(catalogue.index)
        added = boxes[boxes.index.get_level_values("consensus_id") < 0].reset_index()
        added = added.rename(columns={"status": "review_status", "reviewer": "reviewed_by",
                                      "decided_at": "reviewed_at"})
        if len(added):
            for column in catalogue.columns.difference(added.columns):
                if pd.api.types.is_integer_dtype(catalogue[column]):
                    catalogue[column] = catalogue[column].astype("Int64")  # added boxes leave it missing
            catalogue = pd.concat([catalogue, added[[c for c in catalogue.columns if c in added.columns]]],
                                  ignore_index=True)
        flagged = _flagged(history)
        catalogue["subject_flagged"] = catalogue["subject_id"].isin(flagged.index[flagged])
        if rejected == "drop":
            catalogue = catalogue[catalogue["review_status"] != "rejected"].reset_index(drop=True)
        return catalogue


class _WriterThread:
    """The one thread that writes a store's decisions, in the order they were asked for.

    Sessions hand it their decision as a function of a connection and wait for the result.
    It takes every decision waiting (up to `MAX_DECISIONS_PER_COMMIT`) into one write
    transaction. A decision is refused (`ReviewError`, or `RoleError` for a revert of someone
    else's decision) before it writes anything, so a
    refusal goes to its session alone; the others' results are handed back once the
    transaction has committed, so a returned decision is always a stored one. Any other
    error rolls the transaction back and fails every decision in it. The thread starts
    with the first decision, and again in a process forked after that (a fork copies no
    thread).
    """

    def __init__(self, writing: Callable[[], Any]):
        self._writing = writing
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._process = os.getpid()

    def run(self, write: Callable[[sa.Connection], Any]) -> Any:
        """``write(connection)``'s result once committed; its exception if it raised."""
        done: Future = Future()
        with self._lock:
            if self._process != os.getpid():  # forked: the thread and what it had queued stayed behind
                self._queue, self._thread, self._process = queue.SimpleQueue(), None, os.getpid()
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name="zoolens-review-writer", daemon=True)
                self._thread.start()
            self._queue.put((write, done))
        return done.result()

    def stop(self) -> None:
        """Write what is queued, then end the thread."""
        with self._lock:
            if self._thread is not None and self._process == os.getpid():
                self._queue.put(None)
                self._thread.join()
            self._thread = None

    def _serve(self) -> None:
        while True:
            batch = [self._queue.get()]
            while batch[-1] is not None and len(batch) < MAX_DECISIONS_PER_COMMIT:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stopping = batch[-1] is None
            self._write([job for job in batch if job is not None])
            if stopping:
                return

    def _write(self, batch: list[tuple[Callable, Future]]) -> None:
        if not batch:
            return
        outcomes = []
        try:
            with self._writing() as connection:
                for write, done in batch:
                    try:
                        outcomes.append((done, write(connection), None))
                    except (ReviewError, RoleError) as error:
                        outcomes.append((done, None, error))
        except Exception as error:  # noqa: BLE001  (rolled back: nothing in it was stored)
            for _, done in batch:
                done.set_exception(error)
            return
        for done, result, error in outcomes:
            if error is None:
                done.set_result(result)
            else:
                done.set_exception(error)


def open_store(location: str | Path) -> ReviewStore:
    """A `ReviewStore` from what a user typed: a database URL (it has ``://``) or a SQLite file path.

    Parameters
    ----------
    location : str or Path
        ``postgresql+psycopg2://user@host/db``, ``sqlite:///path``, or a file path.
    """
    text = str(location)
    return ReviewStore(url=text) if "://" in text else ReviewStore(path=text)


def consensus_fingerprint(consensus: pd.DataFrame) -> str:
    """A short hash of a consensus table's box ids and geometry, to name its consensus run.

    The order of rows and any other columns do not change it; moving, adding or removing a
    box does.

    Parameters
    ----------
    consensus : DataFrame
        ``subject_id``, ``consensus_id``, ``x``, ``y``, ``width``, ``height``, optional ``angle``.

    Returns
    -------
    str
        16 hexadecimal digits.
    """
    boxes = consensus.sort_values(BOX, kind="stable")
    digest = hashlib.sha256()
    for column in BOX:
        digest.update(boxes[column].to_numpy("<i8").tobytes())
    for column in GEOMETRY:
        values = boxes[column] if column in boxes.columns else pd.Series(0.0, index=boxes.index)
        digest.update(values.to_numpy("<f8").tobytes())
    return digest.hexdigest()[:16]


def _configure_sqlite(dbapi_connection, _connection_record) -> None:
    """Set each new SQLite connection up for several writers and durable commits."""
    # Transactions are begun by _begin_sqlite, not by the sqlite3 module's own guesswork.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    _switch_to_wal(cursor)
    for pragma in ("synchronous = FULL", "foreign_keys = ON"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _switch_to_wal(cursor) -> None:
    """Put the database file in WAL mode, waiting up to the busy timeout for other connections.

    SQLite answers "database is locked" at once, without waiting on the busy timeout, when another
    connection holds a lock during the switch: several processes opening a new store together
    (a served app's workers starting) would otherwise fail all but one.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(SQLITE_WAL_RETRY_S)


def _begin_sqlite(connection: sa.Connection) -> None:
    """Begin a SQLite transaction; a writer takes the write lock at once.

    With a deferred BEGIN, two writers could both read the state and then race for the lock,
    and one would fail with "database is locked" instead of waiting its turn.
    """
    write = connection.get_execution_options().get("zoolens_write", False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _text(name: str, value: Any, required: bool = False) -> str:
    """Check free text is storable as given: a str, no NUL (PostgreSQL refuses it), valid UTF-8."""
    if not isinstance(value, str):
        raise ReviewError(f"{name} must be text, not {type(value).__name__}")
    if required and not value.strip():
        raise ReviewError(f"{name} must not be empty")
    if "\x00" in value:
        raise ReviewError(f"{name} contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ReviewError(f"{name} is not valid unicode text: {error.reason}") from None
    return value


def _integer(name: str, value: Any) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ReviewError(f"{name} must be an integer, not {value!r}")
    return int(value)


def _geometry(name: str, box: Mapping | None, point: bool = False) -> dict[str, float]:
    """A box's x, y, width, height, angle as finite floats with positive size (``point``: or no size at all, as a
    consensus point the aggregation made has)."""
    if box is None:
        raise ReviewError(f"{name} geometry is missing")
    geometry = {}
    for key in GEOMETRY:
        if key not in box:
            if key == "angle":
                geometry[key] = 0.0
                continue
            raise ReviewError(f"{name} geometry lacks {key!r}")
        value = box[key]
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
            raise ReviewError(f"{name} {key} must be a number, not {value!r}")
        if not math.isfinite(value):
            raise ReviewError(f"{name} {key} must be finite, not {value!r}")
        geometry[key] = float(value)
    if point and geometry["width"] == geometry["height"] == 0:
        return geometry
    if geometry["width"] <= 0 or geometry["height"] <= 0:
        raise ReviewError(f"{name} width and height must be positive, not "
                          f"{geometry['width']!r} x {geometry['height']!r}")
    return geometry


def _same_geometry(a: dict[str, float], b: dict[str, float]) -> bool:
    return all(math.isclose(a[key], b[key], rel_tol=1e-9, abs_tol=1e-9) for key in GEOMETRY)


def _some(index: pd.Index, limit: int = 5) -> str:
    shown = ", ".join(str(tuple(int(v) for v in item)) for item in index[:limit])
    return shown + (f" and {len(index) - limit} more" if len(index) > limit else "")


def _frame(rows) -> pd.DataFrame:
    """Decision rows as a DataFrame with fixed dtypes; created_at in UTC (SQLite keeps it naive)."""
    frame = pd.DataFrame([dict(row) for row in rows], columns=list(HISTORY_DTYPES))
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    return frame.astype(HISTORY_DTYPES)


def _select(connection: sa.Connection, consensus_source: str, subject_id: int,
            consensus_id: int | None) -> pd.DataFrame:
    """The decisions on one box (or on one subject's flag, when consensus_id is None), oldest first."""
    box = (decisions.c.consensus_id.is_(None) if consensus_id is None
           else decisions.c.consensus_id == consensus_id)
    query = sa.select(decisions).where(decisions.c.consensus_source == consensus_source,
                                       decisions.c.subject_id == subject_id, box).order_by(decisions.c.id)
    return _frame(connection.execute(query).mappings().all())


def _upgrade(connection: sa.Connection, version: int) -> None:
    """Bring a store of an older schema ``version`` up to `SCHEMA_VERSION`: add the columns it lacks."""
    for newer in range(version + 1, SCHEMA_VERSION + 1):
        for name in ADDED_COLUMNS[newer]:
            column = decisions.c[name]
            connection.execute(sa.text(f"ALTER TABLE {decisions.name} ADD COLUMN {name} "
                                       f"{column.type.compile(connection.dialect)}"))
    connection.execute(sa.update(schema_versions).values(version=SCHEMA_VERSION))


def _reviewer(reviewer: Reviewer | str) -> Reviewer:
    """A `Reviewer` with a storable name; a plain name is an unverified reviewer with every right."""
    if isinstance(reviewer, str):
        reviewer = Reviewer(reviewer)
    if not isinstance(reviewer, Reviewer):
        raise ReviewError(f"reviewer must be text (a name) or a project.roles.Reviewer, "
                          f"not {type(reviewer).__name__}")
    _text("reviewer", reviewer.name, required=True)
    return reviewer


def _made_by(decision: Mapping, reviewer: Reviewer) -> bool:
    """Whether a stored decision is ``reviewer``'s own: the same name, signed in the same way."""
    return decision["reviewer"] == reviewer.name and decision["authentication"] == reviewer.authentication


def _first_and_last(connection: sa.Connection, consensus_source: str, subject_id: int,
                    consensus_id: int | None) -> tuple[dict | None, dict | None] | None:
    """The first decision's ``before`` and the newest one's ``after`` on one box (or subject's flag).

    None when there is no decision. Two indexed lookups, where reading every decision on the
    box into a DataFrame held the write lock several times longer.
    """
    box = (decisions.c.consensus_id.is_(None) if consensus_id is None
           else decisions.c.consensus_id == consensus_id)
    where = (decisions.c.consensus_source == consensus_source, decisions.c.subject_id == subject_id, box)
    first = connection.execute(sa.select(decisions.c.before, decisions.c.after).where(*where)
                               .order_by(decisions.c.id).limit(1)).one_or_none()
    if first is None:
        return None
    last = connection.execute(sa.select(decisions.c.after).where(*where)
                              .order_by(decisions.c.id.desc()).limit(1)).one()
    return first.before, last.after


def _insert(connection: sa.Connection, reviewer: Reviewer, **values) -> Decision:
    values.update(reviewer=reviewer.name, role=reviewer.role, authentication=reviewer.authentication,
                  created_at=datetime.now(timezone.utc))
    new_id = connection.execute(sa.insert(decisions).values(**values)).inserted_primary_key[0]
    row = dict(connection.execute(sa.select(decisions).where(decisions.c.id == new_id)).mappings().one())
    created_at = row["created_at"]  # SQLite hands the UTC time back without its time zone
    row["created_at"] = (created_at.replace(tzinfo=timezone.utc) if created_at.tzinfo is None
                         else created_at.astimezone(timezone.utc))
    return Decision(**row)


def _active(rows: pd.DataFrame) -> pd.Series:
    """Whether each decision is in effect: not undone by a revert that is itself in effect."""
    reverts = rows[rows["action"] == "revert"].sort_values("id", ascending=False)
    reverted = set()
    # A revert always comes after its target, so walking newest first settles whether each
    # revert is in effect before reaching the decision it reverts. Only reverts are walked.
    for revert_id, target in zip(reverts["id"].tolist(), reverts["reverts"].tolist()):
        if revert_id not in reverted:
            reverted.add(target)
    return ~rows["id"].isin(list(reverted))


def _subject_status(history: pd.DataFrame, boxes: pd.DataFrame, consensus: pd.DataFrame | None) -> pd.DataFrame:
    """`ReviewStore.subject_status` from the decisions ``history`` and their effective ``boxes``."""
    counts = boxes.groupby(["subject_id", "status"]).size().unstack(fill_value=0).reindex(
        columns=list(STATUS_OF_ACTION.values()), fill_value=0)
    counts.columns = [f"n_{status}" for status in counts.columns]
    last = history.groupby("subject_id").tail(1).set_index("subject_id")
    subjects = np.unique(history["subject_id"].to_numpy(np.int64))
    if consensus is not None:
        subjects = np.union1d(subjects, consensus["subject_id"].to_numpy(np.int64))
    table = counts.reindex(subjects, fill_value=0).astype("int64")
    table.index.name = "subject_id"
    if consensus is None:
        table["n_unreviewed"] = pd.array([pd.NA] * len(table), dtype="Int64")
    else:
        aggregated = consensus.groupby("subject_id").size().reindex(subjects, fill_value=0)
        decided = boxes[boxes["consensus_id"] >= 0].groupby("subject_id").size().reindex(subjects, fill_value=0)
        table["n_unreviewed"] = (aggregated - decided).astype("Int64")
    table["flagged"] = _flagged(history).reindex(subjects, fill_value=False).astype(bool)
    edited = boxes[boxes["edited"] & (boxes["status"] != "rejected")]["subject_id"].unique()
    reviewed = table[["n_accepted", "n_rejected", "n_redrawn", "n_added"]].sum(axis=1)
    total = reviewed + table["n_unreviewed"].fillna(0).astype("int64")
    table["status"] = np.select(
        [table["flagged"], table.index.isin(edited), reviewed == 0,
         table["n_accepted"] == total, table["n_rejected"] == total],
        ["flagged", "edited", "unreviewed", "accepted", "rejected"], "mixed")
    table["status"] = table["status"].astype("string")
    table["last_reviewer"] = last["reviewer"].reindex(subjects).astype("string")
    table["last_reviewed_at"] = last["created_at"].reindex(subjects)
    columns = ["status", "flagged", "n_accepted", "n_rejected", "n_redrawn", "n_added",
               "n_unreviewed", "last_reviewer", "last_reviewed_at"]
    return table[columns].reset_index()


def _flagged(rows: pd.DataFrame) -> pd.Series:
    """Whether each subject with a flag decision in effect is flagged (the last such decision)."""
    flags = rows[rows["consensus_id"].isna()]
    flags = flags[_active(flags) & flags["action"].isin(SUBJECT_ACTIONS)]
    last = flags.groupby("subject_id")["action"].last()
    return (last == "flag").astype(bool)


def _geometry_frame(states: pd.Series) -> pd.DataFrame:
    """The geometry held in JSON states (dicts, or None/NaN for none) as float columns."""
    states_index = states.index
    states = [state if isinstance(state, dict) else {} for state in states]
    return pd.DataFrame({key: [state.get(key, np.nan) for state in states] for key in GEOMETRY},
                        index=states_index, dtype=float)


def _effective_boxes(rows: pd.DataFrame) -> pd.DataFrame:
    """Each box's effective state from its decisions (rows sorted by id), indexed by BOX."""
    boxes = rows[rows["consensus_id"].notna()].astype({"consensus_id": "int64"})
    live = boxes[_active(boxes) & (boxes["action"] != "revert")]
    last = live.drop_duplicates(BOX, keep="last")
    # An added box exists only while its add is in effect (added box ids are unique store-wide).
    adds = live.loc[live["action"] == "add", "consensus_id"]
    last = last[(last["consensus_id"] >= 0) | last["consensus_id"].isin(adds)]
    index = pd.MultiIndex.from_frame(last[BOX])
    shaped = live[live["action"].isin(["redraw", "add"])].drop_duplicates(BOX, keep="last")
    first = boxes.drop_duplicates(BOX, keep="first")
    original = _geometry_frame(first.set_index(BOX)["before"].reindex(index))
    geometry = _geometry_frame(shaped.set_index(BOX)["after"].reindex(index)).fillna(original)
    state = geometry.join(original.add_prefix("original_"))
    state.insert(0, "status", last["action"].map(STATUS_OF_ACTION).astype("string").array)
    # Added boxes have no original geometry, so they count as edited too.
    state["edited"] = geometry.ne(original).any(axis=1)
    state["decision_id"] = last["id"].array
    state["reviewer"] = last["reviewer"].array
    state["decided_at"] = last["created_at"].array
    return state


def _state(rows: pd.DataFrame, consensus_id: int | None, original: dict | None) -> dict | None:
    """The effective state of one box or one subject's flag, as stored in before/after.

    A box: its geometry and status ("unreviewed" without decisions in effect), None for an
    added box that does not exist. A subject: whether it is flagged.
    """
    if consensus_id is None:
        return {"flagged": bool(_flagged(rows).any())}
    boxes = _effective_boxes(rows)
    if len(boxes):
        state = boxes.iloc[0]
        return {**{key: float(state[key]) for key in GEOMETRY}, "status": str(state["status"])}
    return _undecided(consensus_id, original)


def _undecided(consensus_id: int | None, original: dict | None) -> dict | None:
    """The state of a box (or a subject's flag) with no decision in effect: `_state` of no decisions."""
    if consensus_id is None:
        return {"flagged": False}
    return None if original is None else {**original, "status": "unreviewed"}


def _transition(before: dict | None, action: str, geometry: dict | None) -> dict:
    """The state one decision leaves, given the state before it."""
    if action in SUBJECT_ACTIONS:
        return {"flagged": action == "flag"}
    shape = geometry if action in ("redraw", "add") else {key: before[key] for key in GEOMETRY}
    return {**shape, "status": STATUS_OF_ACTION[action]}
