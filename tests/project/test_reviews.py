"""The review store on real SQLite files and a real PostgreSQL server.

Every behavioural test runs on both backends through the ``store_url`` fixture. Expected
states and catalogues are worked out by hand in the comments; the property test checks the
store against an independent model that toggles decisions in and out of effect.
"""

from __future__ import annotations

import math
import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from project.reviews import (
    DEFAULT_PATH, SCHEMA_VERSION, SUBJECT_STATUSES, ReviewError, ReviewStore, consensus_fingerprint, decisions,
)
from project.roles import OIDC, SHARED_PASSWORD, UNVERIFIED, USERS_FILE, Reviewer, RoleError

from tests.project import review_writer
from tests.postgres_server import postgres_database, postgres_server  # noqa: F401  (fixtures)

ROOT = Path(__file__).resolve().parents[2]
BOX = {"x": 10.0, "y": 20.0, "width": 30.0, "height": 40.0}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'reviews.sqlite'}"
    return request.getfixturevalue("postgres_database")


@pytest.fixture
def store(store_url):
    with ReviewStore(store_url) as opened:
        yield opened


def geometry(state: dict) -> tuple:
    return tuple(state[key] for key in ("x", "y", "width", "height", "angle"))


# --- recording ---------------------------------------------------------------------------------

def test_a_decision_is_stored_with_who_when_before_after_and_why(store):
    start = datetime.now(timezone.utc)
    decision = store.record("run-1", 7, "accept", "alice", consensus_id=3, original=BOX, reason="clear clump")
    assert decision.id >= 1
    assert (decision.consensus_source, decision.subject_id, decision.consensus_id) == ("run-1", 7, 3)
    assert decision.action == "accept" and decision.reviewer == "alice" and decision.reason == "clear clump"
    assert decision.before == {**BOX, "angle": 0.0, "status": "unreviewed"}
    assert decision.after == {**BOX, "angle": 0.0, "status": "accepted"}
    assert decision.reverts is None
    assert decision.created_at.utcoffset() == timedelta(0)
    assert start - timedelta(seconds=1) <= decision.created_at <= datetime.now(timezone.utc) + timedelta(seconds=1)
    history = store.history()
    assert len(history) == 1
    row = history.iloc[0]
    assert row["id"] == decision.id and row["reviewer"] == "alice" and row["before"] == decision.before
    assert row["created_at"] == pd.Timestamp(decision.created_at) and str(history["created_at"].dt.tz) == "UTC"
    assert bool(row["active"]) and pd.isna(row["reverts"])


def test_text_is_stored_raw_not_escaped(store):
    reviewer = "<script>alert('x')</script> & Zoë 🌌"
    reason = '=HYPERLINK("http://evil.example","click")\t+SUM(A1)\r\n@me -1'
    decision = store.record("<b>run</b>", 1, "flag", reviewer, reason=reason)
    assert (decision.reviewer, decision.reason, decision.consensus_source) == (reviewer, reason, "<b>run</b>")
    row = store.history().iloc[0]
    assert (row["reviewer"], row["reason"], row["consensus_source"]) == (reviewer, reason, "<b>run</b>")


REDRAW = {"action": "redraw", "geometry": {"x": 1, "y": 2, "width": 3, "height": 4}}


@pytest.mark.parametrize(("change", "message"), [
    ({"action": "approve"}, "unknown action 'approve'"),
    ({"action": "revert"}, "ReviewStore.revert"),
    ({"reviewer": ""}, "reviewer must not be empty"),
    ({"reviewer": "  \t"}, "reviewer must not be empty"),
    ({"reviewer": None}, "reviewer must be text"),
    ({"reason": "a\x00b"}, "reason contains a NUL"),
    ({"reviewer": "bad \ud800 surrogate"}, "reviewer is not valid unicode"),
    ({"consensus_source": ""}, "consensus_source must not be empty"),
    ({"subject_id": "1"}, "subject_id must be an integer"),
    ({"subject_id": True}, "subject_id must be an integer"),
    ({"consensus_id": None}, "accept needs consensus_id"),
    ({"consensus_id": 2.0}, "consensus_id must be an integer"),
    ({"original": None}, "needs its original geometry"),
    ({"original": {**BOX, "width": 0}}, "original width and height must be positive"),
    ({"geometry": BOX}, "accept takes no geometry"),
    ({"action": "redraw"}, "redraw needs a geometry"),
    ({**REDRAW, "geometry": {"x": 1, "y": 2, "width": 0, "height": 4}}, "width and height must be positive"),
    ({**REDRAW, "geometry": {"x": 1, "y": 2, "width": 3, "height": -4}}, "width and height must be positive"),
    ({**REDRAW, "geometry": {"x": math.nan, "y": 2, "width": 3, "height": 4}}, "x must be finite"),
    ({**REDRAW, "geometry": {"x": 1, "y": math.inf, "width": 3, "height": 4}}, "y must be finite"),
    ({**REDRAW, "geometry": {"x": "1", "y": 2, "width": 3, "height": 4}}, "x must be a number"),
    ({**REDRAW, "geometry": {"x": 1, "y": 2, "width": True, "height": 4}}, "width must be a number"),
    ({**REDRAW, "geometry": {"x": 1, "y": 2, "width": 3}}, "geometry lacks 'height'"),
    ({**REDRAW, "geometry": {"x": 1, "y": 2, "width": 3, "height": 4, "angle": math.nan}}, "angle must be finite"),
    ({"action": "flag"}, "flag takes no consensus_id"),
    ({"action": "add", "geometry": BOX}, "add takes no consensus_id"),
    ({"action": "add", "consensus_id": None, "geometry": BOX}, "add takes no original geometry"),
    ({"consensus_id": -5}, "accept takes no original geometry"),
    ({"consensus_id": -5, "original": None}, "box -5 of subject 1 does not exist"),
])
def test_invalid_decisions_are_refused_and_nothing_is_stored(store, change, message):
    arguments = {"consensus_source": "run", "subject_id": 1, "action": "accept", "reviewer": "alice",
                 "consensus_id": 2, "original": BOX, **change}
    with pytest.raises(ReviewError, match=re.escape(message)):
        store.record(**arguments)
    assert len(store.history()) == 0


def test_a_decision_must_name_the_box_the_earlier_decisions_saw(store):
    store.record("run-1", 1, "accept", "alice", consensus_id=4, original=BOX)
    moved = {**BOX, "x": 11.0}
    with pytest.raises(ReviewError, match="not the run those decisions refer to"):
        store.record("run-1", 1, "reject", "bob", consensus_id=4, original=moved)
    # The same ids in another consensus run are other boxes: no clash.
    store.record("run-2", 1, "reject", "bob", consensus_id=4, original=moved)
    assert store.box_status("run-1")["status"].tolist() == ["accepted"]
    assert store.box_status("run-2")[["x", "status"]].values.tolist() == [[11.0, "rejected"]]


# --- conflicts and reverts -------------------------------------------------------------------------

def test_two_reviewers_on_one_box_both_kept_latest_wins(store_url):
    with ReviewStore(store_url) as alice_session, ReviewStore(store_url) as bob_session:
        accept = alice_session.record("run", 5, "accept", "alice", consensus_id=2, original=BOX)
        reject = bob_session.record("run", 5, "reject", "bob", consensus_id=2, original=BOX, reason="artefact")
        # bob saw alice's decision as the state before his.
        assert reject.before["status"] == "accepted" and reject.after["status"] == "rejected"
        status = alice_session.box_status("run")
        assert status[["consensus_id", "status", "reviewer", "decision_id"]].values.tolist() == \
            [[2, "rejected", "bob", reject.id]]
        history = alice_session.history(subject_id=5)
        assert history[["id", "reviewer", "action"]].values.tolist() == \
            [[accept.id, "alice", "accept"], [reject.id, "bob", "reject"]]
        assert history["active"].tolist() == [True, True]
        alice_session.record("run", 5, "accept", "alice", consensus_id=2, original=BOX)
        assert bob_session.box_status("run")["status"].tolist() == ["accepted"]


def test_revert_and_revert_of_revert(store):
    redraw = store.record("run", 1, "redraw", "alice", consensus_id=0, original=BOX,
                          geometry={"x": 12, "y": 20, "width": 26, "height": 40, "angle": 15})
    accept = store.record("run", 1, "accept", "bob", consensus_id=0, original=BOX)
    # Accepting keeps the redrawn geometry.
    assert geometry(accept.after) == (12, 20, 26, 40, 15) and accept.after["status"] == "accepted"

    undo = store.revert(redraw.id, "carol", "redrawn on the wrong clump")
    assert (undo.action, undo.reverts, undo.consensus_id, undo.subject_id) == ("revert", redraw.id, 0, 1)
    # bob's accept stays in effect, now on the original geometry.
    assert undo.before == {"x": 12, "y": 20, "width": 26, "height": 40, "angle": 15, "status": "accepted"}
    assert undo.after == {**BOX, "angle": 0.0, "status": "accepted"}
    row = store.box_status("run").iloc[0]
    assert (row["status"], row["x"], row["width"], row["angle"], row["edited"]) == ("accepted", 10, 30, 0, False)

    with pytest.raises(ReviewError, match=f"decision {redraw.id} is not in effect: decision {undo.id} reverted it"):
        store.revert(redraw.id, "dave")
    redo = store.revert(undo.id, "alice", "it was right")
    assert redo.after == {"x": 12, "y": 20, "width": 26, "height": 40, "angle": 15, "status": "accepted"}
    assert store.history()["active"].tolist() == [True, True, False, True]
    row = store.box_status("run").iloc[0]
    assert (row["status"], row["x"], row["original_x"], row["edited"], row["reviewer"]) == \
        ("accepted", 12, 10, True, "bob")

    # Reverting every box decision leaves the box unreviewed, so it leaves box_status.
    store.revert(accept.id, "bob")
    store.revert(redraw.id, "bob")
    assert store.box_status("run").empty
    assert store.subject_status("run")["status"].tolist() == ["unreviewed"]


def test_the_store_only_ever_appends(store):
    statements = []

    def remember(connection, cursor, statement, *args):
        statements.append(statement.lstrip().split(None, 1)[0].upper())

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", remember)
    try:
        review_the_demo(store)
        store.revert(store.revert(2, "carol").id, "dave")
        store.revert(4, "erin")
        store.apply(make_consensus(), "run")
        store.subject_status("run", make_consensus())
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", remember)
    assert "INSERT" in statements
    assert not {"UPDATE", "DELETE", "DROP", "ALTER", "TRUNCATE", "REPLACE"} & set(statements)


def test_revert_errors(store):
    with pytest.raises(ReviewError, match="there is no decision 99"):
        store.revert(99, "alice")
    decision = store.record("run", 1, "flag", "alice")
    with pytest.raises(ReviewError, match="reviewer must not be empty"):
        store.revert(decision.id, " ")
    with pytest.raises(ReviewError, match="decision_id must be an integer"):
        store.revert(str(decision.id), "bob")
    assert len(store.history()) == 1


def test_flags_are_subject_decisions(store):
    flag = store.record("run", 3, "flag", "alice", reason="two galaxies")
    assert (flag.consensus_id, flag.before, flag.after) == (None, {"flagged": False}, {"flagged": True})
    assert store.subject_status("run")[["subject_id", "status", "flagged"]].values.tolist() == [[3, "flagged", True]]
    unflag = store.record("run", 3, "unflag", "bob")
    assert (unflag.before, unflag.after) == ({"flagged": True}, {"flagged": False})
    assert store.subject_status("run")["flagged"].tolist() == [False]
    undo = store.revert(unflag.id, "alice")
    assert (undo.before, undo.after, undo.consensus_id) == ({"flagged": False}, {"flagged": True}, None)
    assert store.subject_status("run")["status"].tolist() == ["flagged"]
    assert store.box_status("run").empty


def test_added_boxes_get_negative_ids_and_vanish_when_reverted(store):
    first = store.record("run", 2, "add", "alice", geometry={"x": 50, "y": 50, "width": 6, "height": 6})
    second = store.record("run", 9, "add", "bob", geometry={"x": 1, "y": 1, "width": 2, "height": 2})
    # -1 means "matched nothing" in the links table, so the first added box is -2.
    assert (first.consensus_id, second.consensus_id) == (-2, -3)
    assert first.before is None and first.after == {"x": 50, "y": 50, "width": 6, "height": 6, "angle": 0,
                                                    "status": "added"}
    redraw = store.record("run", 2, "redraw", "bob", consensus_id=-2,
                          geometry={"x": 51, "y": 50, "width": 6, "height": 6})
    assert redraw.before["status"] == "added"
    status = store.box_status("run").set_index("consensus_id")
    assert status.loc[-2, ["status", "x", "edited"]].tolist() == ["redrawn", 51, True]
    assert math.isnan(status.loc[-2, "original_x"])
    with pytest.raises(ReviewError, match="box -2 of subject 9 does not exist"):
        store.record("run", 9, "accept", "bob", consensus_id=-2)
    undo = store.revert(first.id, "carol")
    assert undo.after is None and undo.before["x"] == 51
    assert store.box_status("run")["consensus_id"].tolist() == [-3]
    with pytest.raises(ReviewError, match="never added, or its addition was reverted"):
        store.record("run", 2, "accept", "bob", consensus_id=-2)


# --- derived tables --------------------------------------------------------------------------------

def make_consensus() -> pd.DataFrame:
    return pd.DataFrame({
        "subject_id": [1, 1, 2, 2, 3, 4, 5, 6, 7, 7],
        "consensus_id": [0, 1, 0, 1, 0, 0, 0, 0, 0, 1],
        "x": [10.0, 60, 30, 5, 0, 1, 3, 9, 2, 4],
        "y": [10.0, 60, 30, 5, 0, 1, 3, 9, 2, 4],
        "width": [20.0, 10, 10, 8, 4, 2, 2, 3, 1, 1],
        "height": [20.0, 10, 10, 8, 4, 2, 2, 3, 1, 1],
        "n_votes": [5, 3, 4, 2, 1, 6, 2, 3, 4, 4],
        "source": "demo agglomerative",
    })


def review_the_demo(store) -> None:
    consensus = make_consensus().set_index(["subject_id", "consensus_id"])

    def box(subject, consensus_id):
        return consensus.loc[(subject, consensus_id)]  # a consensus row serves as the original

    store.record("run", 1, "accept", "alice", consensus_id=0, original=box(1, 0))
    store.record("run", 1, "reject", "bob", consensus_id=1, original=box(1, 1), reason="star")
    store.record("run", 2, "redraw", "alice", consensus_id=0, original=box(2, 0),
                 geometry={"x": 32, "y": 30, "width": 12, "height": 10})
    store.record("run", 2, "add", "bob", geometry={"x": 50, "y": 50, "width": 6, "height": 6})
    store.record("run", 3, "flag", "carol", reason="merger")
    store.record("run", 4, "accept", "alice", consensus_id=0, original=box(4, 0))
    store.record("run", 5, "reject", "bob", consensus_id=0, original=box(5, 0))
    store.record("run", 7, "accept", "alice", consensus_id=0, original=box(7, 0))


def test_subject_status_with_and_without_the_consensus_table(store):
    review_the_demo(store)
    columns = ["subject_id", "status", "flagged", "n_accepted", "n_rejected", "n_redrawn", "n_added",
               "n_unreviewed", "last_reviewer"]
    with_table = store.subject_status("run", make_consensus())
    assert with_table[columns].values.tolist() == [
        [1, "mixed", False, 1, 1, 0, 0, 0, "bob"],        # one accepted, one rejected
        [2, "edited", False, 0, 0, 1, 1, 1, "bob"],       # redrawn + added; box 1 untouched
        [3, "flagged", True, 0, 0, 0, 0, 1, "carol"],
        [4, "accepted", False, 1, 0, 0, 0, 0, "alice"],
        [5, "rejected", False, 0, 1, 0, 0, 0, "bob"],
        [6, "unreviewed", False, 0, 0, 0, 0, 1, pd.NA],
        [7, "mixed", False, 1, 0, 0, 0, 1, "alice"],      # box 1 of 2 still unreviewed
    ]
    assert with_table["last_reviewed_at"].isna().tolist() == [False] * 5 + [True, False]
    assert set(with_table["status"]) == set(SUBJECT_STATUSES)  # the filter's choices, all met here
    without = store.subject_status("run")
    # Without the table only subjects with decisions appear, and subject 7 looks fully accepted.
    assert without["subject_id"].tolist() == [1, 2, 3, 4, 5, 7]
    assert without["status"].tolist() == ["mixed", "edited", "flagged", "accepted", "rejected", "accepted"]
    assert without["n_unreviewed"].isna().all()
    assert store.subject_status("other-run").empty


def test_review_state_is_box_status_and_subject_status_from_one_reading(store, monkeypatch):
    review_the_demo(store)
    consensus = make_consensus()
    expected = store.box_status("run"), store.subject_status("run", consensus)
    readings, history = [], type(store).history
    monkeypatch.setattr(type(store), "history", lambda self, *a, **k: readings.append(1) or history(self, *a, **k))
    state = store.review_state("run", consensus)
    assert len(readings) == 1 and state.changed is None
    pd.testing.assert_frame_equal(state.box_status, expected[0])
    pd.testing.assert_frame_equal(state.subject_status, expected[1])


def test_apply_gives_the_reviewed_catalogue(store):
    review_the_demo(store)
    consensus = make_consensus()
    catalogue = store.apply(consensus, "run")
    assert catalogue[["subject_id", "consensus_id", "review_status"]].values.tolist() == [
        [1, 0, "accepted"], [2, 0, "redrawn"], [2, 1, "unreviewed"], [3, 0, "unreviewed"],
        [4, 0, "accepted"], [6, 0, "unreviewed"], [7, 0, "accepted"], [7, 1, "unreviewed"],
        [2, -2, "added"],
    ]
    redrawn = catalogue.iloc[1]
    assert [redrawn[k] for k in ("x", "y", "width", "height", "angle")] == [32, 30, 12, 10, 0]
    assert [redrawn[f"original_{k}"] for k in ("x", "y", "width", "height", "angle")] == [30, 30, 10, 10, 0]
    assert redrawn["reviewed_by"] == "alice" and redrawn["n_votes"] == 4
    added = catalogue.iloc[-1]
    assert [added[k] for k in ("x", "y", "width", "height")] == [50, 50, 6, 6]
    assert pd.isna(added["n_votes"]) and pd.isna(added["source"]) and math.isnan(added["original_x"])
    assert str(catalogue["n_votes"].dtype) == "Int64"
    assert catalogue["subject_flagged"].tolist() == [False, False, False, True, False, False, False, False, False]
    unreviewed = catalogue[catalogue["review_status"] == "unreviewed"]
    assert unreviewed["reviewed_by"].isna().all() and unreviewed["reviewed_at"].isna().all()
    assert (unreviewed["x"] == unreviewed["original_x"]).all()
    # The aggregation output is untouched.
    pd.testing.assert_frame_equal(consensus, make_consensus())

    kept = store.apply(consensus, "run", rejected="keep")
    assert len(kept) == 11
    assert kept.loc[kept["review_status"] == "rejected", ["subject_id", "consensus_id"]].values.tolist() == \
        [[1, 1], [5, 0]]
    # Unreviewed when nothing was decided under that source.
    assert (store.apply(consensus, "other-run")["review_status"] == "unreviewed").all()


@pytest.mark.parametrize(("change", "message"), [
    (lambda c: c.assign(x=c["x"].where(c["subject_id"] != 2, 31.0)), r"boxes \(subject_id, consensus_id\) \(2, 0\) have other geometry"),
    (lambda c: c[c["subject_id"] != 5], r"lacks: \(5, 0\); is it that consensus run"),
    (lambda c: c.assign(consensus_id=c["consensus_id"] - 1), "negative consensus ids"),
    (lambda c: pd.concat([c, c.iloc[[0]]]), r"repeats boxes: \(1, 0\)"),
    (lambda c: c.drop(columns="height"), r"lacks column\(s\) \['height'\]"),
])
def test_apply_refuses_a_consensus_table_the_decisions_were_not_made_on(store, change, message):
    review_the_demo(store)
    with pytest.raises(ReviewError, match=message):
        store.apply(change(make_consensus()), "run")


def test_apply_option_is_checked(store):
    with pytest.raises(ReviewError, match="rejected must be 'drop' or 'keep'"):
        store.apply(make_consensus(), "run", rejected="mark")


def test_fingerprint_names_the_boxes_not_their_order():
    consensus = make_consensus()
    fingerprint = consensus_fingerprint(consensus)
    assert len(fingerprint) == 16
    assert consensus_fingerprint(consensus.iloc[::-1].drop(columns=["n_votes"])) == fingerprint
    assert consensus_fingerprint(consensus.assign(angle=0.0)) == fingerprint
    assert consensus_fingerprint(consensus.assign(x=consensus["x"] + (consensus.index == 3))) != fingerprint
    assert consensus_fingerprint(consensus.iloc[1:]) != fingerprint


# --- durability, schema, the SQLite set-up -----------------------------------------------------------

def test_decisions_survive_reopening(store_url):
    with ReviewStore(store_url) as store:
        review_the_demo(store)
        store.revert(1, "carol")
        before = store.history()
    with ReviewStore(store_url) as reopened:
        pd.testing.assert_frame_equal(reopened.history(), before)
        assert reopened.record("run", 6, "accept", "dave", consensus_id=0,
                               original={"x": 9, "y": 9, "width": 3, "height": 3}).id == 10


def test_a_database_of_another_schema_version_is_refused(store_url):
    ReviewStore(store_url).close()
    engine = sa.create_engine(store_url)
    with engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO review_schema (version) VALUES (99)"))
    engine.dispose()
    with pytest.raises(ReviewError, match=f"schema version 99; this zoolens reads version {SCHEMA_VERSION}"):
        ReviewStore(store_url)


def test_a_store_made_before_roles_is_upgraded_in_place(store_url):
    with ReviewStore(store_url) as store:
        store.record("run", 1, "accept", "alice", consensus_id=2, original=BOX)
    engine = sa.create_engine(store_url)  # make it the version-1 layout: no role columns
    with engine.begin() as connection:
        for column in ("role", "authentication"):
            connection.execute(sa.text(f"ALTER TABLE review_decisions DROP COLUMN {column}"))
        connection.execute(sa.text("UPDATE review_schema SET version = 1"))
    engine.dispose()
    with ReviewStore(store_url) as upgraded:
        upgraded.record("run", 1, "reject", Reviewer("bob", "reviewer", USERS_FILE), consensus_id=2, original=BOX)
        history = upgraded.history()
        assert history[["reviewer", "action"]].values.tolist() == [["alice", "accept"], ["bob", "reject"]]
        assert history.role.isna().tolist() == [True, False] and history.role.iloc[1] == "reviewer"
        assert history.authentication.iloc[1] == USERS_FILE
    with ReviewStore(store_url) as reopened:  # the upgrade was recorded: nothing to do the second time
        assert len(reopened.history()) == 2


def test_foreign_keys_are_enforced(store):
    store.record("run", 1, "flag", "alice")
    bad_revert = {"consensus_source": "run", "subject_id": 1, "action": "revert", "reason": "",
                  "reviewer": "mallory", "created_at": datetime.now(timezone.utc), "reverts": 12345}
    with pytest.raises(sa.exc.IntegrityError):
        with store._engine.begin() as connection:
            connection.execute(sa.insert(decisions).values(**bad_revert))
    assert len(store.history()) == 1


def test_sqlite_file_is_set_up_for_concurrent_durable_writes(tmp_path):
    path = tmp_path / "reviews.sqlite"
    with ReviewStore(path=path) as store:
        with store._engine.connect() as connection:
            pragmas = {name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                       for name in ("journal_mode", "foreign_keys", "busy_timeout", "synchronous")}
    assert pragmas == {"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 30000, "synchronous": 2}
    with sqlite3.connect(path) as connection:  # WAL is a property of the file itself
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_sqlite_store_opens_while_another_process_holds_the_new_file(tmp_path):
    # The race of several workers creating one store: SQLite refuses the switch to WAL at once,
    # not after its busy timeout, while another connection holds the write lock on the file.
    path = tmp_path / "reviews.sqlite"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE other (x)")
    holder.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.3, holder.execute, ["COMMIT"])
    release.start()
    try:
        with ReviewStore(path=path) as store:
            store.record("run", 1, "flag", "alice")
            assert len(store.history()) == 1
    finally:
        release.join()
        holder.close()
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_default_store_is_a_sqlite_file_in_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with ReviewStore() as store:
        store.record("run", 1, "flag", "alice")
    assert (tmp_path / DEFAULT_PATH).is_file()
    with ReviewStore(path=tmp_path / DEFAULT_PATH) as store:
        assert store.history()["reviewer"].tolist() == ["alice"]


def test_bad_stores_are_refused_with_a_clear_error(tmp_path):
    junk = tmp_path / "notes.sqlite"
    junk.write_text("these are not the decisions you are looking for\n" * 100)
    with pytest.raises(ReviewError, match="notes.sqlite.*file is not a database"):
        ReviewStore(path=junk)
    with pytest.raises(ReviewError, match="in-memory"):
        ReviewStore("sqlite://")
    with pytest.raises(ReviewError, match="SQLite or PostgreSQL, not mysql"):
        ReviewStore("mysql+pymysql://reviewer@127.0.0.1/reviews")
    with pytest.raises(ReviewError, match="cannot open ReviewStore.*reviewer:\\*\\*\\*@127.0.0.1:1/") as refused:
        ReviewStore("postgresql+psycopg2://reviewer:s3cret-pw@127.0.0.1:1/reviews")
    assert "s3cret-pw" not in str(refused.value)
    with pytest.raises(ReviewError, match="not both"):
        ReviewStore("sqlite:///a.sqlite", path=tmp_path / "b.sqlite")


# --- concurrency ---------------------------------------------------------------------------------------

def assert_serialised(history: pd.DataFrame, expected_reasons: set) -> None:
    """No decision lost, and each one's "before" is exactly the state the previous one left."""
    assert len(history) == len(expected_reasons)
    assert set(history["reason"]) == expected_reasons
    assert history["id"].is_unique
    afters, befores = history["after"].tolist(), history["before"].tolist()
    assert befores[0]["status"] == "unreviewed"
    assert all(befores[i] == afters[i - 1] for i in range(1, len(history)))


def test_threads_writing_at_once_lose_nothing(store):
    n_threads, per_thread = 6, 10
    barrier = threading.Barrier(n_threads)

    def review(reviewer):
        barrier.wait()
        for number in range(per_thread):
            store.record(review_writer.SOURCE, 1, "accept" if number % 2 == 0 else "reject", reviewer,
                         consensus_id=1, original=review_writer.BOX, reason=f"{reviewer} #{number}")

    with ThreadPoolExecutor(n_threads) as pool:
        list(pool.map(review, [f"thread-{n}" for n in range(n_threads)]))
    assert_serialised(store.history(), {f"thread-{n} #{i}" for n in range(n_threads) for i in range(per_thread)})


def test_a_refused_decision_among_concurrent_ones_takes_no_other_with_it(store):
    # The writer thread commits the decisions waiting together: one refused must not undo the rest.
    store.record("run", 0, "accept", "lead", consensus_id=0, original=BOX)
    n_threads = 20
    barrier = threading.Barrier(n_threads)

    def decide(number):
        barrier.wait()
        if number == 0:  # another geometry for box 0 than the one it was reviewed with
            return store.record("run", 0, "reject", "thread-0", consensus_id=0, original={**BOX, "x": 99.0})
        return store.record("run", number, "reject", f"thread-{number}", consensus_id=0, original=BOX)

    with ThreadPoolExecutor(n_threads) as pool:
        futures = [pool.submit(decide, number) for number in range(n_threads)]
    with pytest.raises(ReviewError, match="reviewed with geometry"):
        futures[0].result()
    stored = [future.result() for future in futures[1:]]
    history = store.history()
    assert sorted(history["id"]) == sorted([1] + [decision.id for decision in stored])
    assert set(history["reviewer"]) == {"lead"} | {f"thread-{n}" for n in range(1, n_threads)}
    assert all(decision.before["status"] == "unreviewed" for decision in stored)


def test_closing_finishes_the_decisions_under_way(store_url):
    store = ReviewStore(store_url)
    with ThreadPoolExecutor(8) as pool:
        decided = list(pool.map(lambda number: store.record("run", number, "flag", "alice"), range(40)))
    store.close()
    with ReviewStore(store_url) as reopened:
        assert sorted(reopened.history()["id"]) == sorted(decision.id for decision in decided)
        # A store reopened after closing writes again (a new writer thread).
        assert reopened.record("run", 99, "flag", "bob").id > max(decision.id for decision in decided)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_process_gets_a_writer_thread_of_its_own(tmp_path):
    # A fork copies no thread: a child of a process that had decided must not wait for ever.
    path = tmp_path / "reviews.sqlite"
    store = ReviewStore(path=path)
    store.record("run", 1, "flag", "parent")
    store._engine.dispose(close=False)  # the child opens connections of its own, as SQLAlchemy asks
    child = os.fork()
    if child == 0:
        try:
            signal.alarm(60)  # a child left waiting for a thread it does not have dies, and the test fails
            store.record("run", 2, "flag", "child")
            os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert store.history()["reviewer"].tolist() == ["parent", "child"]
    store.close()


def run_writer(*arguments) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.project.review_writer", *map(str, arguments)],
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_processes_writing_at_once_lose_nothing(store_url, tmp_path):
    # The processes also race to create the schema: the store does not exist until they start.
    n_processes, per_process = 4, 15
    go = tmp_path / "go"
    writers = [run_writer("write", store_url, f"process-{n}", per_process, go) for n in range(n_processes)]
    go.touch()
    for writer in writers:
        _, stderr = writer.communicate(timeout=240)
        assert writer.returncode == 0, stderr
    with ReviewStore(store_url) as store:
        assert_serialised(store.history(), {f"process-{n} #{i}" for n in range(n_processes)
                                            for i in range(per_process)})
        with store._engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT version FROM review_schema").all() == [(SCHEMA_VERSION,)]


def test_a_writer_killed_mid_decision_leaves_no_half_row(store_url):
    with ReviewStore(store_url) as store:
        store.record(review_writer.SOURCE, 1, "add", "alice", geometry={"x": 1, "y": 1, "width": 1, "height": 1})
    writer = run_writer("die", store_url)
    _, stderr = writer.communicate(timeout=120)
    assert writer.returncode == -9, stderr
    with ReviewStore(store_url) as store:
        assert store.history()["reviewer"].tolist() == ["alice"]
        # The box-id row the dead transaction inserted first is gone with it.
        with store._engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT count(*) FROM review_added_boxes").scalar() == 1
            if store_url.startswith("sqlite"):
                assert connection.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        # The lock the dead writer held is free again.
        store.record(review_writer.SOURCE, 1, "flag", "bob")
        assert store.history()["reviewer"].tolist() == ["alice", "bob"]


# --- the store against an independent model ----------------------------------------------------------

ORIGINALS = {(1, 0): {"x": 10.0, "y": 10.0, "width": 20.0, "height": 20.0, "angle": 0.0},
             (2, 0): {"x": 30.0, "y": 30.0, "width": 10.0, "height": 10.0, "angle": 30.0}}
STATUS = {"accept": "accepted", "reject": "rejected", "redraw": "redrawn", "add": "added"}
coordinate = st.floats(-1000, 1000, allow_nan=False)
size = st.floats(0.001, 1000, allow_nan=False)
shapes = st.fixed_dictionaries({"x": coordinate, "y": coordinate, "width": size, "height": size,
                                "angle": st.floats(-180, 180, allow_nan=False)})
box_actions = st.sampled_from(["accept", "reject", "redraw"])
on_aggregated_box = st.tuples(st.just("box"), box_actions, st.sampled_from(sorted(ORIGINALS)), shapes)
# Reverting the k-th newest decision, mostly the newest few so that reverts of reverts and of
# decisions with later ones on the same box come up often; k = 5 names no decision.
revert = st.tuples(st.just("revert"), st.sampled_from([0, 0, 1, 1, 2, 5]))
operations = st.lists(st.one_of(
    on_aggregated_box, on_aggregated_box,
    st.tuples(st.just("added"), box_actions, st.integers(0, 3), shapes),  # 3: a box never added
    st.tuples(st.just("add"), st.sampled_from([1, 2]), shapes),
    st.tuples(st.sampled_from(["flag", "unflag"]), st.sampled_from([1, 2])),
    revert, revert,
), min_size=1, max_size=15)


class Model:
    """Decisions toggled in and out of effect; a box's state replays its decisions in effect."""

    def __init__(self):
        self.decisions = {}  # id -> (key, action, shape, reverted id)
        self.active = {}
        self.added = {}  # (subject_id, consensus_id) of each added box -> the add's decision id

    def store(self, decision_id, key, action, shape=None, target=None):
        self.decisions[decision_id] = (key, action, shape, target)
        self.active[decision_id] = True
        if target is not None:
            self.undo(target)

    def undo(self, decision_id):
        self.active[decision_id] = False
        target = self.decisions[decision_id][3]
        if target is not None:  # undoing a revert puts what it reverted back in effect
            self.redo(target)

    def redo(self, decision_id):
        self.active[decision_id] = True
        target = self.decisions[decision_id][3]
        if target is not None:
            self.undo(target)

    def in_effect(self, key):
        return [(action, shape) for d, (box, action, shape, _) in sorted(self.decisions.items())
                if box == key and self.active[d] and action != "revert"]

    def state(self, key):
        """What before/after should hold: a box's geometry and status (None if an added box does
        not exist), or a subject's flag."""
        if key[1] is None:
            flags = [action for action, _ in self.in_effect(key)]
            return {"flagged": bool(flags) and flags[-1] == "flag"}
        if key[1] < 0 and not self.active.get(self.added.get(key)):
            return None
        state = {**ORIGINALS[key], "status": "unreviewed"} if key[1] >= 0 else None
        for action, shape in self.in_effect(key):
            state = {**(shape or state), "status": STATUS[action]}
        return state


@pytest.mark.timeout(900)  # let Hypothesis finish shrinking (it stops itself after 300 s)
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=operations)
def test_effective_state_equals_replaying_the_history(store, operations):
    source = uuid.uuid4().hex  # each example starts from nothing in the shared database
    model = Model()
    ids = []
    # The state kept up to date decision by decision must equal one read whole after each of them.
    consensus = pd.DataFrame([{"subject_id": s, "consensus_id": c, **shape} for (s, c), shape in ORIGINALS.items()]
                             + [{"subject_id": 3, "consensus_id": 0, **ORIGINALS[(1, 0)]}])
    kept = store.review_state(source, consensus)

    def check_kept_state():
        nonlocal kept
        before, kept = kept, store.review_state(source, consensus, since=kept)
        whole = store.review_state(source, consensus)
        pd.testing.assert_frame_equal(kept.history, whole.history)
        pd.testing.assert_frame_equal(kept.box_status, whole.box_status)
        pd.testing.assert_frame_equal(kept.subject_status, whole.subject_status)
        differ = pd.concat([before.subject_status, kept.subject_status]).drop_duplicates(keep=False)
        assert set(differ["subject_id"]) <= set(kept.changed.tolist())

    for operation in operations:
        check_kept_state()
        kind = operation[0]
        if kind == "revert":
            target = ids[-1 - operation[1]] if operation[1] < len(ids) else 10**9
            if not model.active.get(target):
                with pytest.raises(ReviewError, match="not in effect|there is no decision"):
                    store.revert(target, "rita")
                continue
            key = model.decisions[target][0]
            before = model.state(key)
            decision = store.revert(target, "rita")
            model.store(decision.id, key, "revert", target=target)
        elif kind in ("flag", "unflag"):
            key = (operation[1], None)
            before = model.state(key)
            decision = store.record(source, operation[1], kind, "fred")
            model.store(decision.id, key, kind)
        elif kind == "add":
            before = None
            decision = store.record(source, operation[1], "add", "ada", geometry=operation[2])
            key = (operation[1], decision.consensus_id)
            assert key not in model.added and decision.consensus_id < -1
            model.added[key] = decision.id
            model.store(decision.id, key, "add", operation[2])
        else:
            action, shape = operation[1], operation[3] if operation[1] == "redraw" else None
            if kind == "box":
                key, original = operation[2], ORIGINALS[operation[2]]
            else:
                key = list(model.added)[operation[2]] if operation[2] < len(model.added) else (1, -99)
                original = None
            before = model.state(key)
            if before is None:
                with pytest.raises(ReviewError, match="does not exist"):
                    store.record(source, key[0], action, "bob", consensus_id=key[1], original=original,
                                 geometry=shape)
                continue
            decision = store.record(source, key[0], action, "bob", consensus_id=key[1], original=original,
                                    geometry=shape)
            model.store(decision.id, key, action, shape)
        assert (decision.before, decision.after) == (before, model.state(key))
        ids.append(decision.id)
    check_kept_state()

    history = store.history(consensus_source=source)
    assert history["id"].tolist() == ids
    assert history["active"].tolist() == [model.active[d] for d in ids]
    columns = ["x", "y", "width", "height", "angle", "status"]
    boxes = {(row["subject_id"], row["consensus_id"]): {c: row[c] for c in columns}
             for row in store.box_status(source).to_dict("records")}
    expected = {key: state for key in [*ORIGINALS, *model.added]
                if (state := model.state(key)) is not None and state["status"] != "unreviewed"}
    assert boxes == expected
    flagged = store.subject_status(source).set_index("subject_id")["flagged"]
    assert sorted(flagged.index[flagged]) == [s for s in (1, 2) if model.state((s, None))["flagged"]]


def test_last_decision_id_and_summary(store):
    assert store.last_decision_id() == 0
    first = store.record("run-1", 1, "accept", "alice", consensus_id=3, original=BOX)
    second = store.record("run-1", 1, "reject", "bob", consensus_id=3, original=BOX)
    store.revert(second.id, "alice")
    other = store.record("run-2", 1, "flag", "carol")
    assert store.last_decision_id() == other.id > first.id
    summary = store.summary("run-1")
    # Three rows on run-1; the reject is reverted and the revert itself is no decision in effect.
    assert (summary["decisions"], summary["in_effect"], summary["by_action"]) == (3, 1, {"accept": 1})
    assert summary["reviewers"] == 2 and summary["consensus_source"] == "run-1"
    assert "password" not in summary["store"]
    assert store.summary("run-3")["decisions"] == 0 and store.summary("run-3")["last_decision_at"] is None


def test_open_store_takes_a_path_or_a_url(tmp_path):
    from project.reviews import open_store

    with open_store(tmp_path / "a.sqlite") as by_path:
        assert by_path.url.database == str(tmp_path / "a.sqlite")
    with open_store(f"sqlite:///{tmp_path / 'b.sqlite'}") as by_url:
        assert by_url.url.database == str(tmp_path / "b.sqlite")
    with pytest.raises(ReviewError, match="not mysql"):
        open_store("mysql://user@localhost/reviews")


def test_a_missing_postgresql_driver_is_one_line_naming_the_extra(tmp_path):
    # The driver is hidden from this one process, as on a machine installed without the postgres extra.
    script = textwrap.dedent("""
        import sys
        from importlib.abc import MetaPathFinder

        class NoDriver(MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "psycopg2":
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)

        sys.meta_path.insert(0, NoDriver())
        from zoolens.cli import main
        sys.exit(main(["serve", sys.argv[1], "--reviews", "postgresql+psycopg2://zoolens@127.0.0.1:1/reviews"]))
    """)
    export = tmp_path / "classifications.csv"
    export.write_text("classification_id,annotations,subject_ids\n")
    done = subprocess.run([sys.executable, "-c", script, str(export)], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "zoolens serve: error: --reviews postgresql+psycopg2://zoolens@127.0.0.1:1/reviews: postgresql+psycopg2 "
        "needs the psycopg2 driver, which is not installed: pip install 'zoolens[postgres]'"]


# --- roles -------------------------------------------------------------------------------------

ANN_LEAD = Reviewer("ann", "lead", USERS_FILE)
BOB = Reviewer("bob", "reviewer", USERS_FILE)
CAROL = Reviewer("carol", "reviewer", OIDC)
VIC = Reviewer("vic", "viewer", OIDC)


def test_decisions_keep_who_decided_with_which_role_and_sign_in(store):
    store.record("run", 1, "accept", BOB, consensus_id=2, original=BOX)
    store.record("run", 1, "flag", ANN_LEAD, reason="a blend")
    store.record("run", 1, "reject", Reviewer("bob", "reviewer", SHARED_PASSWORD), consensus_id=2, original=BOX)
    store.record("run", 1, "unflag", "notebook user")
    history = store.history()
    assert history[["reviewer", "role", "authentication"]].values.tolist() == [
        ["bob", "reviewer", USERS_FILE], ["ann", "lead", USERS_FILE], ["bob", "reviewer", SHARED_PASSWORD],
        ["notebook user", "lead", UNVERIFIED]]


@pytest.mark.parametrize("action, extra", [
    ("accept", {"consensus_id": 2, "original": BOX}), ("reject", {"consensus_id": 2, "original": BOX}),
    ("redraw", {"consensus_id": 2, "original": BOX, "geometry": BOX}), ("add", {"geometry": BOX}),
    ("flag", {}), ("unflag", {}),
])
def test_a_viewer_records_nothing(store, action, extra):
    with pytest.raises(RoleError, match=f"vic is a viewer: {action} needs the"):
        store.record("run", 1, action, VIC, **extra)
    assert store.history().empty


@pytest.mark.parametrize("action", ["flag", "unflag"])
def test_only_a_lead_flags(store, action):
    with pytest.raises(RoleError, match=f"bob is a reviewer: {action} needs the lead role"):
        store.record("run", 1, action, BOB)
    assert store.history().empty
    assert store.record("run", 1, action, ANN_LEAD).role == "lead"


def test_a_reviewer_reverts_their_own_decisions_and_a_lead_anyones(store):
    bobs = store.record("run", 1, "accept", BOB, consensus_id=2, original=BOX)
    carols = store.record("run", 1, "reject", CAROL, consensus_id=3, original=BOX)
    with pytest.raises(RoleError, match=f"bob is a reviewer and reverts only their own decisions: decision "
                                        f"{carols.id} is carol's; a lead can revert it"):
        store.revert(carols.id, BOB)
    # The same name signed in another way (a shared password lets anyone type "bob") is not bob.
    with pytest.raises(RoleError, match="reverts only their own"):
        store.revert(bobs.id, Reviewer("bob", "reviewer", SHARED_PASSWORD))
    with pytest.raises(RoleError, match="vic is a viewer: revert needs the reviewer role"):
        store.revert(bobs.id, VIC)
    assert len(store.history()) == 2  # nothing stored by the refusals
    assert store.revert(bobs.id, BOB).reverts == bobs.id
    revert = store.revert(carols.id, ANN_LEAD, reason="not a blend")
    assert (revert.reviewer, revert.role, revert.reverts) == ("ann", "lead", carols.id)
    assert not store.history().active.iloc[:2].any()


def test_a_lead_assigns_subjects_and_takes_them_back(store):
    with pytest.raises(RoleError, match="bob is a reviewer: assign needs the lead role"):
        store.assign("run", [1, 2], "bob", BOB)
    assert store.assignments("run").empty
    assert store.assign("run", [1, 2, 3], "bob", ANN_LEAD) == 3
    assert store.assign("run", 2, "carol", ANN_LEAD) == 1  # reassigned
    assert store.assign("run", 3, "", ANN_LEAD) == 1  # taken back
    store.assign("other run", 1, "carol", ANN_LEAD)
    table = store.assignments("run")
    assert table[["subject_id", "assignee", "assigned_by"]].values.tolist() == [[1, "bob", "ann"], [2, "carol", "ann"]]
    assert str(table.assigned_at.dt.tz) == "UTC"
    assert store.assignments("run", subject_id=2).assignee.tolist() == ["carol"]
    assert store.assignments("run", subject_id=3).empty
    assert store.history().empty  # an assignment is not a decision
    with pytest.raises(ReviewError, match="at least one subject"):
        store.assign("run", [], "bob", ANN_LEAD)
