"""Sign-in throttling: the rules on a clock the test turns, then real HTTP against a real server."""

from __future__ import annotations

import time

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from dashboard.sign_in import SignInThrottle, UsersFileSignIn
from project.roles import add_user
from tests.dashboard import tiny
from tests.dashboard.serving import served
from tests.data_loaders.loader_properties import PROPERTY_SETTINGS


class Clock:
    """Time that moves only when the test says."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_failures_slow_down_then_lock_out_and_success_resets():
    clock = Clock()
    throttle = SignInThrottle(clock=clock, free_failures=2, first_delay=1.0, max_delay=4.0,
                              lockout_failures=6, lockout_seconds=600.0)
    assert [throttle.failed("alice", "10.0.0.1") for _ in range(2)] == [0.0, 0.0]
    assert throttle.failed("alice", "10.0.0.1") == 1.0  # 3rd: 1 s
    clock.now += 1.0
    assert throttle.failed("alice", "10.0.0.1") == 2.0  # 4th: doubled
    clock.now += 2.0
    assert throttle.failed("alice", "10.0.0.1") == 4.0  # 5th: 8 s, capped at 4
    clock.now += 4.0
    assert throttle.failed("alice", "10.0.0.1") == 600.0  # 6th: locked out
    assert throttle.locked_out("alice", "10.0.0.2")  # the user, from any address
    assert throttle.locked_out("bob", "10.0.0.1")  # the address, for any user
    assert throttle.wait("bob", "10.0.0.2") == 0.0
    clock.now += 599.0
    assert throttle.wait("alice", "10.0.0.2") == 1.0
    clock.now += 1.0
    assert throttle.wait("alice", "10.0.0.2") == 0.0 and not throttle.locked_out("alice", "10.0.0.1")
    assert throttle.failed("alice", "10.0.0.1") == 0.0  # old failures are forgotten
    throttle.failed("alice", "10.0.0.1")
    throttle.failed("alice", "10.0.0.1")
    throttle.succeeded("alice", "10.0.0.1")
    assert throttle.failed("alice", "10.0.0.1") == 0.0


def test_memory_is_bounded_whatever_names_are_tried():
    throttle = SignInThrottle(max_tracked=50)
    for number in range(1000):
        throttle.failed(f"user{number}", f"10.0.{number // 250}.{number % 250}")
    assert len(throttle._failures) == 50


events = st.lists(st.tuples(st.sampled_from(["fail", "succeed", "tick"]), st.sampled_from(["a", "b"]),
                            st.sampled_from(["1.1.1.1", "2.2.2.2"]), st.floats(0, 400)), max_size=40)


@PROPERTY_SETTINGS
@given(events=events)
def test_wait_follows_the_failures_of_user_and_address(events):
    clock = Clock()
    throttle = SignInThrottle(clock=clock, free_failures=1, first_delay=2.0, max_delay=30.0,
                              lockout_failures=5, lockout_seconds=300.0)
    failures: dict[tuple[str, str], tuple[int, float]] = {}  # key -> (count, time of the last)

    def count(key):
        number, last = failures.get(key, (0, 0.0))
        return number if clock.now - last < 300.0 else 0

    for event, user, address, seconds in events:
        keys = (("user", user), ("address", address))
        if event == "tick":
            clock.now += seconds
        elif event == "succeed":
            throttle.succeeded(user, address)
            for key in keys:
                failures.pop(key, None)
        else:
            wait = throttle.failed(user, address)
            for key in keys:
                failures[key] = (count(key) + 1, clock.now)
            worst = max(count(key) for key in keys)
            expected = (300.0 if worst >= 5 else min(2.0 * 2 ** (worst - 2), 30.0) if worst > 1 else 0.0)
            assert wait == expected
        for user_ in ("a", "b"):
            for address_ in ("1.1.1.1", "2.2.2.2"):
                worst = max(count(("user", user_)), count(("address", address_)))
                wait = throttle.wait(user_, address_)
                assert 0.0 <= wait <= 300.0
                assert (wait == 0.0) if worst <= 1 else True
                assert throttle.locked_out(user_, address_) == (worst >= 5)


# ----------------------------------------------------------------------------- on a real server


@pytest.fixture
def serve_throttled(tmp_path):
    """Serve the tiny project behind basic auth (alice, bob) with a throttle of the given settings."""
    users = tmp_path / "users.json"
    add_user(users, "alice", "correct horse", "reviewer")
    add_user(users, "bob", "battery staple", "lead")
    project = tiny.tiny_project(tmp_path / "root")

    def serve(**settings):
        return served(project, f"test-sign-in-{len(settings)}", sign_in=UsersFileSignIn(users),
                      cookie_secret="test-secret", sign_in_throttle=SignInThrottle(**settings))
    return serve


def sign_in(url: str, user: str, password: str) -> tuple[requests.Response, str]:
    """POST the login form as the page does; the response and the message the login page then shows."""
    session = requests.Session()
    response = session.post(f"{url}/login", data={"username": user, "password": password},
                            allow_redirects=False, timeout=30)
    if response.status_code == 302 and "error=" in response.headers["Location"]:
        shown = session.get(f"{url}{response.headers['Location']}", timeout=30).text
    else:
        shown = response.text
    response.signed_in = "user" in session.cookies
    return response, shown


@pytest.mark.server
def test_wrong_passwords_slow_down_and_lock_out_on_the_login_page(serve_throttled):
    with serve_throttled(free_failures=2, first_delay=0.4, max_delay=0.8, lockout_failures=5,
                         lockout_seconds=3.0) as url:
        check_slow_down_and_lockout(url)


def check_slow_down_and_lockout(url: str) -> None:
    for _ in range(2):
        response, page = sign_in(url, "alice", "guess")
        assert "Invalid username or password!" in page and "wait" not in page
    response, page = sign_in(url, "alice", "guess")
    assert "Invalid username or password!" in page and "wait 1 second before trying again" in page
    # At once, even the right password is refused, unchecked.
    response, page = sign_in(url, "alice", "correct horse")
    assert response.status_code == 429 and not response.signed_in
    assert "Too many failed sign-ins for this user or from this address: wait 1 second" in page
    time.sleep(0.5)
    response, page = sign_in(url, "alice", "correct horse")
    assert response.status_code == 302 and response.signed_in
    # Success reset the count: two free failures again.
    for _ in range(2):
        response, page = sign_in(url, "alice", "guess")
        assert "wait" not in page
    # Failures for other names from the same address count against the address.
    for user in ("carol", "dave", "erin"):
        time.sleep(0.85)
        response, page = sign_in(url, user, "guess")
    assert "signing in is locked for 1 minute" in page
    response, page = sign_in(url, "bob", "battery staple")
    assert response.status_code == 429 and not response.signed_in
    assert "signing in is locked" in page
    time.sleep(3.1)  # the lockout has passed
    response, page = sign_in(url, "bob", "battery staple")
    assert response.status_code == 302 and response.signed_in


@pytest.mark.server
def test_thirty_wrong_passwords_then_the_right_one_is_refused(serve_throttled):
    # The defaults: 3 free failures, then 1 s doubling.
    with serve_throttled() as url:
        pages = [sign_in(url, "bob", f"guess{number}")[1] for number in range(30)]
        assert sum("Invalid username or password!" in page for page in pages) == 4  # the others unchecked
        response, page = sign_in(url, "bob", "battery staple")
        assert response.status_code == 429 and not response.signed_in
        assert "Too many failed sign-ins for this user or from this address: wait" in page
