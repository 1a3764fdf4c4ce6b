"""Review sessions on a real Panel server on loopback: two sessions decide on one box, a restart keeps it.

Sessions are opened with plain HTTP requests (the server builds each session's page then), or held
open by a Bokeh protocol client where they must run as a browser's do (their periodic refresh starts
once the page has loaded), and driven through their own widgets on the server's event loop, as a
browser's messages would.
"""

from __future__ import annotations

import asyncio
import threading
import time
from contextlib import contextmanager

import panel as pn
import pytest
import requests

import dashboard.app
from dashboard.sign_in import SharedPassword, UsersFileSignIn
from project.reviews import ReviewStore
from project.roles import RoleError, add_user
from tests.dashboard.serving import served

pytestmark = pytest.mark.server


@pytest.fixture
def sessions(monkeypatch):
    """The template of every session the server makes, in order."""
    made = []
    create_app = dashboard.app.create_app

    def recording(*args, **kwargs):
        made.append(create_app(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(dashboard.app, "create_app", recording)
    return made


def in_session(template, action):
    """Run ``action()`` on the session's event loop (the only safe place to touch its widgets)."""
    done, outcome = threading.Event(), {}

    def run():
        try:
            outcome["value"] = action()
        except BaseException as error:  # handed to the test thread
            outcome["error"] = error
        finally:
            done.set()

    template._documents[0].add_next_tick_callback(run)
    assert done.wait(30), "the session never ran the callback"
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def find(template, kind, label):
    for part in [*template.sidebar, *template.main]:
        for widget in part.select(kind):
            if (getattr(widget, "label", None) or widget.name) == label:
                return widget
    raise LookupError(f"no {kind.__name__} {label!r} on the page")


def open_session(url, sessions):
    before = len(sessions)
    assert requests.get(url, timeout=60).status_code == 200
    assert len(sessions) == before + 1
    return sessions[-1]


@contextmanager
def connected_session(url, sessions):
    """A session held open by a Bokeh protocol client, which says the page is ready as BokehJS does."""
    from tests.bokeh_protocol import Client

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    before = len(sessions)
    client = Client(url, before)
    asyncio.run_coroutine_threadsafe(client.open(), loop).result(120)
    try:
        assert len(sessions) == before + 1
        yield sessions[-1]
    finally:
        asyncio.run_coroutine_threadsafe(client.close(), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def review_status(template, subject_id):
    """The Review column of the session's subject table for one subject."""
    def read():
        rows = template.explorer.subjects.table.value
        return rows.set_index("subject_id").review_status.get(subject_id)
    return in_session(template, read)


def press(template, label):
    find(template, pn.widgets.Button, label).clicks += 1


def decide(template, reviewer, subject_row, button):
    """Type the reviewer's name, pick a row of the subject table, press a review button."""
    def act():
        find(template, pn.widgets.TextInput, "Your name (reviewer)").value = reviewer
        template.explorer.subjects.table.selection = [subject_row]
        press(template, button)
    in_session(template, act)


def wait_for(check, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_two_sessions_decide_on_one_box_and_a_restart_keeps_the_decisions(tiny_project, tmp_path, sessions):
    path = tmp_path / "reviews.sqlite"
    store = ReviewStore(path=path)
    with served(tiny_project, "test-review-server", reviews=store, review_refresh_ms=200) as url, \
            connected_session(url, sessions) as first, connected_session(url, sessions) as second:
        assert first.explorer.data_store.reviews is second.explorer.data_store.reviews is store  # one engine
        # Subjects are listed most disagreement first: 1 (11/18), 2 (2/7), 3. Subject 2 has one box, 20.
        decide(first, "ann", 1, "Accept")
        assert review_status(first, 2) == "accepted"  # the deciding session, at once
        wait_for(lambda: review_status(second, 2) == "accepted")  # the other, on its periodic refresh
        decide(second, "bob", 1, "Reject")
        assert review_status(second, 2) == "rejected"
        wait_for(lambda: review_status(first, 2) == "rejected")  # the later decision wins everywhere

        history = store.history()
        assert history[["subject_id", "consensus_id", "action", "reviewer"]].values.tolist() == [
            [2, 20, "accept", "ann"], [2, 20, "reject", "bob"]]
        assert history.after.iloc[0]["status"] == "accepted" == history.before.iloc[1]["status"]
        assert history.after.iloc[1]["status"] == "rejected"
        # The refresh runs on a worker thread: the review panel follows the table a moment later.
        boxes = lambda: in_session(first, lambda: first.explorer.review._boxes.value)  # noqa: E731
        wait_for(lambda: boxes()[["consensus_id", "status", "reviewer"]].values.tolist() == [[20, "rejected", "bob"]])
    store.close()

    # A new server process would open the file afresh: so does this one.
    sessions.clear()
    with ReviewStore(path=path) as reopened, served(tiny_project, "test-review-server-2", reviews=reopened) as url:
        after_restart = open_session(url, sessions)
        assert review_status(after_restart, 2) == "rejected"
        assert review_status(after_restart, 1) == "unreviewed"
        assert len(reopened.history()) == 2


def test_behind_basic_auth_decisions_carry_the_signed_in_user(tiny_project, tmp_path, sessions):
    with ReviewStore(path=tmp_path / "reviews.sqlite") as store, served(
            tiny_project, "test-review-auth", reviews=store, sign_in=SharedPassword("open sesame"),
            cookie_secret="a-test-only-cookie-secret-of-some-length") as url:
        browser = requests.Session()
        assert "login" in browser.get(url, timeout=60).url  # not signed in: sent to the login page
        assert not sessions
        signed_in = browser.post(f"{url}/login", data={"username": "<i>dr who</i>", "password": "open sesame"},
                                 timeout=60)
        assert signed_in.status_code == 200 and len(sessions) == 1
        template = sessions[0]
        data_store = template.explorer.data_store
        assert (data_store.reviewer, data_store.reviewer_signed_in) == ("<i>dr who</i>", True)
        with pytest.raises(LookupError):  # no name box to type into
            find(template, pn.widgets.TextInput, "Your name (reviewer)")
        shown = [pane.object for part in template.sidebar for pane in part.select(pn.pane.HTML)
                 if "Reviewing as" in str(pane.object)]
        assert shown == ["Reviewing as <b>&lt;i&gt;dr who&lt;/i&gt;</b> (reviewer)<br><small>shared-password mode: "
                         "the name is what was typed at sign-in, not verified</small>"]
        in_session(template, lambda: press(template, "Accept"))
        assert store.history()[["consensus_id", "action", "reviewer", "role", "authentication"]].values.tolist() == [
            [10, "accept", "<i>dr who</i>", "reviewer", "shared-password"]]
        wrong = requests.Session().post(f"{url}/login", data={"username": "x", "password": "open"}, timeout=60)
        assert "Invalid username or password" in wrong.text and len(sessions) == 1


def sign_in(url, name, password):
    browser = requests.Session()
    response = browser.post(f"{url}/login", data={"username": name, "password": password}, timeout=60)
    return browser, response


def test_a_users_file_gives_each_user_their_role_on_the_server(tiny_project, tmp_path, sessions):
    users = tmp_path / "users.json"
    for name, role in [("ann", "lead"), ("bob", "reviewer"), ("vic", "viewer")]:
        add_user(users, name, f"{name}'s password", role)
    with ReviewStore(path=tmp_path / "reviews.sqlite") as store, served(
            tiny_project, "test-review-users", reviews=store, sign_in=UsersFileSignIn(users),
            cookie_secret="a-test-only-cookie-secret-of-some-length") as url:
        _, refused = sign_in(url, "bob", "ann's password")  # someone else's password
        assert "Invalid username or password" in refused.text and not sessions
        _, refused = sign_in(url, "nobody", "ann's password")
        assert "Invalid username or password" in refused.text and not sessions
        for name in ("ann", "bob", "vic"):
            assert sign_in(url, name, f"{name}'s password")[1].status_code == 200
        ann, bob, vic = sessions
        assert [(s.explorer.data_store.reviewer, s.explorer.data_store.role) for s in sessions] == [
            ("ann", "lead"), ("bob", "reviewer"), ("vic", "viewer")]
        in_session(bob, lambda: press(bob, "Accept"))  # bob accepts box 10 of subject 1
        with pytest.raises(LookupError):  # vic has no Accept button...
            find(vic, pn.widgets.Button, "Accept")
        with pytest.raises(RoleError, match="vic is a viewer"):  # ...and the server refuses a forged one
            in_session(vic, lambda: vic.explorer.review.accept(10))
        with pytest.raises(LookupError):
            find(bob, pn.widgets.Button, "Flag subject")
        in_session(ann, lambda: ann.explorer.data_store.refresh_reviews())
        in_session(ann, lambda: press(ann, "Revert last"))  # a lead reverts bob's decision
        in_session(ann, lambda: press(ann, "Flag subject"))
        history = store.history()
        assert history[["reviewer", "role", "authentication", "action"]].values.tolist() == [
            ["bob", "reviewer", "users-file", "accept"], ["ann", "lead", "users-file", "revert"],
            ["ann", "lead", "users-file", "flag"]]
