"""How the served app signs people in, who they are once in, and sign-in throttling.

A `SignIn` per way of signing in:

- `SharedPassword`: one password for the whole team; the name is whatever the person types at
  the login page, so every session is a reviewer and is labelled "shared-password mode".
- `UsersFileSignIn`: a `project.roles.UsersFile` of names, roles and argon2 password hashes.
- `OidcSignIn`: Panel's generic OAuth login against an OpenID Connect provider (EOSC AAI,
  Zooniverse, an institution's login), the name and role taken from the ID token's claims
  (`project.roles.ClaimRoles`).

Each gives the options `dashboard.app.serve` passes to `panel.serve`, and `reviewer(user, claims)`:
the `project.roles.Reviewer` a session decides as, or None for someone who may not use the app at
all (the server then refuses the page). The review store checks the reviewer's role on every
decision; nothing here trusts the page.

Panel's basic-auth login page checks a password as often as it is asked (thirty
wrong ones in 60 ms, then the right one works). `ThrottledLoginHandler` is that
page's handler, checking passwords with the `SignIn`, with a `SignInThrottle` in front: after a
few failures for a user name, or from a client address, each further attempt must wait longer
(doubling), and after more a lockout holds for a while. A refused attempt is not checked at
all and says on the login page how long to wait; a successful sign-in clears the
user's and the address's failures.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

import param
import requests
import tornado.escape
from panel.auth import BasicAuthProvider, BasicLoginHandler, LogoutHandler, OAuthProvider
from panel.io.resources import CDN_DIST

from project.roles import ROLES, SHARED_PASSWORD, ClaimRoles, Reviewer, UsersFile

#: The OpenID Connect scopes asked for when none are given: the name, the email address.
DEFAULT_OIDC_SCOPES = ("openid", "profile", "email")


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
    """Panel's basic-auth login page, checking passwords with ``check``, its attempts throttled by a
    `SignInThrottle`."""

    def initialize(self, throttle: SignInThrottle, check: Callable[[str, str], bool],
                   login_endpoint: str = "/login") -> None:
        self.throttle, self._check = throttle, check
        self._login_endpoint = login_endpoint

    def _validate(self, username, password):
        return self._check(username, password)

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
            super().post()  # checks again (one more hash) and signs in, as Panel does
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


def login_route(throttle: SignInThrottle, check: Callable[[str, str], bool],
                login_endpoint: str = "/login") -> tuple[str, type, dict]:
    """The Tornado route (for ``extra_patterns``, which Bokeh matches before the auth
    provider's own login route) of the throttled login page checking passwords with ``check``."""
    return (login_endpoint, ThrottledLoginHandler,
            {"throttle": throttle, "check": check, "login_endpoint": login_endpoint})


class SignIn:
    """A way of signing in to the served app (the base class; see the module's subclasses)."""

    #: Panel's OAuth provider name (``panel.config.oauth_provider``) the sign-in needs, if any.
    oauth_provider: str | None = None
    #: Whether people sign in with a name and password on zoolens' own (throttled) login page.
    asks_password = False

    def check_password(self, user: str, password: str) -> bool:
        """Whether ``password`` signs ``user`` in (for sign-ins that ask for a password)."""
        raise NotImplementedError

    def server_options(self) -> dict:
        """Keyword arguments for `panel.serve` that put the sign-in in front of every page."""
        raise NotImplementedError

    @property
    def description(self) -> str:
        """One line saying how people sign in, for the server's log."""
        raise NotImplementedError

    def reviewer(self, user: str | None, claims: Mapping | None) -> Reviewer | None:
        """Who the signed-in ``user`` (Panel's ``pn.state.user``, with ``pn.state.user_info``) is, or None
        when they may not use the app."""
        raise NotImplementedError

    def authorize(self, user: str | None, claims: Mapping | None) -> bool:
        """Whether the server opens a page for this user."""
        return self.reviewer(user, claims) is not None


class SharedPassword(SignIn):
    """One password for everyone; the name is not verified, so everyone is a reviewer.

    Parameters
    ----------
    password : str
        The team's password.
    """

    def __init__(self, password: str):
        if not password:
            raise ValueError("the shared password must not be empty")
        self._password = password

    asks_password = True

    def check_password(self, user, password):
        return bool(user.strip()) and password == self._password

    def server_options(self) -> dict:
        return {"auth_provider": _provider(BasicAuthProvider)}

    @property
    def description(self) -> str:
        return "shared-password mode: one password, names not verified, everyone a reviewer"

    def reviewer(self, user, claims):
        return Reviewer(user, "reviewer", SHARED_PASSWORD) if user else None


class UsersFileSignIn(SignIn):
    """Names, roles and password hashes from a users file (`project.roles.UsersFile`).

    The file is read when the server starts: restart it after adding a user.

    Parameters
    ----------
    path : str or Path
        The users file.
    """

    def __init__(self, path: str | Path):
        self.users = UsersFile(path)

    asks_password = True

    def check_password(self, user, password):
        return self.users.verify(user, password) is not None

    def server_options(self) -> dict:
        return {"auth_provider": _provider(BasicAuthProvider)}

    @property
    def description(self) -> str:
        roles = [user["role"] for user in self.users.users.values()]
        counts = ", ".join(f"{roles.count(role)} {role}(s)" for role in ROLES)
        return f"users file {self.users.path}: {counts}"

    def reviewer(self, user, claims):
        return self.users.reviewer(user) if user else None


class OidcSignIn(SignIn):
    """Sign-in at an OpenID Connect provider; the name and role from the ID token's claims.

    The provider's endpoints are read from its discovery document
    (``ISSUER/.well-known/openid-configuration``) when the server starts. Register the app at the
    provider as a confidential client with the redirect URI ``https://HOST/login`` (the app's
    address and /login) and the post-logout redirect URI ``https://HOST/``, and have it release the
    role claim.

    Parameters
    ----------
    issuer : str
        The provider's issuer URL.
    client_id, client_secret : str
        The app's client registration.
    redirect_uri : str
        The app's ``/login`` address, as registered.
    roles : ClaimRoles
        Which claims name the person and give their role; someone without a role is refused
        unless it gives a default role.
    scopes : sequence of str
        The scopes to ask for (add the one that releases the role claim, e.g. ``entitlements``).
    timeout : float
        Seconds to wait for the discovery document.
    """

    oauth_provider = "generic"

    def __init__(self, issuer: str, client_id: str, client_secret: str, redirect_uri: str,
                 roles: ClaimRoles = ClaimRoles(), scopes=DEFAULT_OIDC_SCOPES, timeout: float = 30.0):
        self.issuer, self.client_id, self._client_secret = issuer.rstrip("/"), client_id, client_secret
        self.redirect_uri, self.roles, self.scopes = redirect_uri, roles, list(scopes)
        discovery = f"{self.issuer}/.well-known/openid-configuration"
        try:
            response = requests.get(discovery, timeout=timeout)
            response.raise_for_status()
            self.endpoints = response.json()
        except (requests.RequestException, ValueError) as error:
            raise ValueError(f"cannot read the OpenID Connect provider's discovery document {discovery}: "
                             f"{error}") from None
        missing = [key for key in ("authorization_endpoint", "token_endpoint") if key not in self.endpoints]
        if missing:
            raise ValueError(f"{discovery} lacks {', '.join(missing)}")

    @property
    def app_url(self) -> str:
        """The app's own root address (the redirect URI without /login)."""
        parts = urlsplit(self.redirect_uri)
        return urlunsplit((parts.scheme, parts.netloc, parts.path.rsplit("/login", 1)[0] + "/", "", ""))

    @property
    def logout_url(self) -> str | None:
        """Where signing out of the app sends the browser: the provider's own sign-out, then back here."""
        end_session = self.endpoints.get("end_session_endpoint")
        if end_session is None:
            return None
        query = urlencode({"client_id": self.client_id, "post_logout_redirect_uri": self.app_url})
        return f"{end_session}?{query}"

    def server_options(self) -> dict:
        extra = {"AUTHORIZE_URL": self.endpoints["authorization_endpoint"],
                 "TOKEN_URL": self.endpoints["token_endpoint"], "scope": self.scopes}
        if "userinfo_endpoint" in self.endpoints:
            extra["USER_URL"] = self.endpoints["userinfo_endpoint"]
        return {"auth_provider": _provider(OAuthProvider, logout_url=self.logout_url),
                "oauth_key": self.client_id,
                "oauth_secret": self._client_secret, "oauth_redirect_uri": self.redirect_uri,
                "oauth_extra_params": extra, "oauth_jwt_user": self.roles.user_claim}

    @property
    def description(self) -> str:
        default = (f"anyone else a {self.roles.default_role}" if self.roles.default_role
                   else "anyone without a role refused")
        return (f"OpenID Connect at {self.issuer}, name from claim {self.roles.user_claim}, role from claim "
                f"{self.roles.claim}, {default}")

    def reviewer(self, user, claims):
        return self.roles.reviewer(claims) if user else None


class _ProviderLogout(LogoutHandler):
    """Panel's sign-out (clears the app's cookies), then the provider's own sign-out page."""

    provider_logout_url: str | None = None

    def get(self):
        if self.provider_logout_url is None:
            return super().get()
        for cookie in ("user", "id_token", "access_token", "refresh_token", "oauth_expiry"):
            self.clear_cookie(cookie)
        self.redirect(self.provider_logout_url)


def _provider(base: type, logout_url: str | None = None):
    """An instance of Panel's auth provider ``base`` whose logout ends at ``logout_url`` (a page of the
    OpenID Connect provider), or Panel's own logout page without one. A password sign-in's login
    page is `ThrottledLoginHandler`, routed before the provider's (`login_route`)."""
    logout_class = type("ProviderLogout", (_ProviderLogout,), {"provider_logout_url": logout_url})

    class Provider(base):
        @property
        def logout_handler(self):
            logout_class._login_endpoint = self._login_endpoint
            if self._logout_template:
                logout_class._logout_template = self._logout_template
            return logout_class

    return Provider()
