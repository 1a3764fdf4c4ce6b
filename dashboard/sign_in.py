"""Sign-in throttling for ``--basic-auth``: failed attempts slow down, then lock out, per user and address.

Panel's basic-auth login page checks a password as often as it is asked (thirty
wrong ones in 60 ms, then the right one works). `ThrottledLoginHandler` is that
page's handler with a `SignInThrottle` in front: after a few failures for a user
name, or from a client address, each further attempt must wait longer (doubling),
and after more a lockout holds for a while. A refused attempt is not checked at
all and says on the login page how long to wait; a successful sign-in clears the
user's and the address's failures.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import param
import tornado.escape
from panel.auth import BasicLoginHandler
from panel.io.resources import CDN_DIST


@dataclass
class _Failures:
    count: int = 0
    last: float = 0.0


class SignInThrottle(param.Parameterized):
    """Failed sign-ins per user name and per client address, and how long each must now wait."""

    free_failures = param.Integer(default=3, bounds=(0, None), doc="""
        Failures allowed before attempts are slowed down.""")

    first_delay = param.Number(default=1.0, bounds=(0, None), doc="""
        Seconds to wait after the first failure past the free ones; each further one doubles it.""")

    max_delay = param.Number(default=60.0, bounds=(0, None), doc="""
        The longest wait between attempts before the lockout.""")

    lockout_failures = param.Integer(default=10, bounds=(1, None), doc="""
        Failures after which the user name or address is locked out.""")

    lockout_seconds = param.Number(default=15 * 60.0, bounds=(0, None), doc="""
        How long a lockout lasts; failures older than this are forgotten.""")

    max_tracked = param.Integer(default=100_000, bounds=(1, None), doc="""
        User names and addresses remembered at most (the oldest are forgotten first), so
        attempts with ever new names cannot fill the server's memory.""")

    def __init__(self, clock=time.monotonic, **params):
        super().__init__(**params)
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: OrderedDict[tuple[str, str], _Failures] = OrderedDict()

    def wait(self, user: str, address: str) -> float:
        """Seconds before ``user`` may try again from ``address`` (0: now)."""
        now = self._clock()
        with self._lock:
            return max(self._wait(key, now) for key in self._keys(user, address))

    def failed(self, user: str, address: str) -> float:
        """Count a failed attempt; the seconds to wait before the next one."""
        now = self._clock()
        with self._lock:
            for key in self._keys(user, address):
                failures = self._failures.pop(key, None) or _Failures()
                if now - failures.last >= self.lockout_seconds:
                    failures = _Failures()
                failures.count += 1
                failures.last = now
                self._failures[key] = failures
                while len(self._failures) > self.max_tracked:
                    self._failures.popitem(last=False)
            return max(self._wait(key, now) for key in self._keys(user, address))

    def succeeded(self, user: str, address: str) -> None:
        """Forget the failures of ``user`` and of ``address``."""
        with self._lock:
            for key in self._keys(user, address):
                self._failures.pop(key, None)

    def locked_out(self, user: str, address: str) -> bool:
        """Whether ``user`` or ``address`` has failed often enough to be locked out now."""
        now = self._clock()
        with self._lock:
            return any(self._count(key, now) >= self.lockout_failures for key in self._keys(user, address))

    @staticmethod
    def _keys(user: str, address: str) -> tuple[tuple[str, str], ...]:
        return (("user", user), ("address", address))

    def _count(self, key, now: float) -> int:
        failures = self._failures.get(key)
        return failures.count if failures and now - failures.last < self.lockout_seconds else 0

    def _wait(self, key, now: float) -> float:
        count = self._count(key, now)
        if count >= self.lockout_failures:
            delay = self.lockout_seconds
        elif count > self.free_failures:
            delay = min(self.first_delay * 2 ** (count - self.free_failures - 1), self.max_delay)
        else:
            return 0.0
        # Elapsed first: a failure just now waits exactly ``delay`` (no rounding from adding clock readings).
        return max(0.0, delay - (now - self._failures[key].last))


def wait_message(seconds: float, locked_out: bool) -> str:
    """What the login page says to a refused attempt."""
    if locked_out:
        minutes = math.ceil(seconds / 60)
        return (f"Too many failed sign-ins for this user or from this address: signing in is locked "
                f"for {minutes} minute{'s' if minutes != 1 else ''}.")
    wait = math.ceil(seconds)
    return (f"Too many failed sign-ins for this user or from this address: wait {wait} second"
            f"{'s' if wait != 1 else ''} before trying again.")


class ThrottledLoginHandler(BasicLoginHandler):
    """Panel's basic-auth login page, with its attempts throttled by a `SignInThrottle`."""

    def initialize(self, throttle: SignInThrottle, login_endpoint: str = "/login") -> None:
        self.throttle = throttle
        self._login_endpoint = login_endpoint

    def post(self):
        user = self.get_argument("username", "")
        address = self.request.remote_ip or ""
        wait = self.throttle.wait(user, address)
        if wait > 0:
            # Refused unchecked, so a locked-out guesser learns nothing about the password.
            self._refuse(wait_message(wait, self.throttle.locked_out(user, address)), status=429)
            return
        if self._validate(user, self.get_argument("password", "")):
            self.throttle.succeeded(user, address)
            super().post()  # checks again (cheap) and signs in, as Panel does
            return
        wait = self.throttle.failed(user, address)
        message = "Invalid username or password!"
        if wait > 0:
            message = f"{message} {wait_message(wait, self.throttle.locked_out(user, address))}"
        self._refuse(message)

    def _refuse(self, message: str, status: int | None = None) -> None:
        # Back to the login page with the message, as Panel's handler does; a refusal unchecked
        # carries 429 Too Many Requests in its body's page instead of a redirect.
        if status is None:
            self.redirect(f"{self._login_endpoint}?error={tornado.escape.url_escape(message)}")
            return
        self.set_status(status)
        self.write(self._login_template.render(login_endpoint=self._login_endpoint, errormessage=message,
                                               PANEL_CDN=CDN_DIST))


def login_route(throttle: SignInThrottle, login_endpoint: str = "/login") -> tuple[str, type, dict]:
    """The Tornado route (for ``extra_patterns``, which Bokeh matches before the auth
    provider's own login route) of the throttled login page."""
    return (login_endpoint, ThrottledLoginHandler, {"throttle": throttle, "login_endpoint": login_endpoint})
