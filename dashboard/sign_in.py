"""How the served app signs people in, and who they are once in: a `SignIn` per way of signing in.

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
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

import requests
from panel.auth import BasicAuthProvider, BasicLoginHandler, LogoutHandler, OAuthProvider

from project.roles import ROLES, SHARED_PASSWORD, ClaimRoles, Reviewer, UsersFile

#: The OpenID Connect scopes asked for when none are given: the name, the email address.
DEFAULT_OIDC_SCOPES = ("openid", "profile", "email")


class SignIn:
    """A way of signing in to the served app (the base class; see the module's subclasses)."""

    #: Panel's OAuth provider name (``panel.config.oauth_provider``) the sign-in needs, if any.
    oauth_provider: str | None = None

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

    def server_options(self) -> dict:
        return {"auth_provider": _provider(BasicAuthProvider, _SharedPasswordLogin, password=self._password)}

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

    def server_options(self) -> dict:
        return {"auth_provider": _provider(BasicAuthProvider, _UsersFileLogin, users=self.users)}

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
        return {"auth_provider": _provider(OAuthProvider, None, logout_url=self.logout_url),
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


class _SharedPasswordLogin(BasicLoginHandler):
    """Panel's login page, checking the one shared password (any name)."""

    password: str = ""

    def _validate(self, username, password):
        return bool(username.strip()) and password == self.password


class _UsersFileLogin(BasicLoginHandler):
    """Panel's login page, checking the name and password against the users file's hashes."""

    users: UsersFile

    def _validate(self, username, password):
        return self.users.verify(username, password) is not None


class _ProviderLogout(LogoutHandler):
    """Panel's sign-out (clears the app's cookies), then the provider's own sign-out page."""

    provider_logout_url: str | None = None

    def get(self):
        if self.provider_logout_url is None:
            return super().get()
        for cookie in ("user", "id_token", "access_token", "refresh_token", "oauth_expiry"):
            self.clear_cookie(cookie)
        self.redirect(self.provider_logout_url)


def _provider(base: type, login: type | None, logout_url: str | None = None, **login_settings):
    """An instance of Panel's auth provider ``base`` whose login page is ``login`` (a subclass made for
    this server, holding ``login_settings``) and whose logout ends at ``logout_url``."""
    login_class = None if login is None else type(login.__name__, (login,), login_settings)
    logout_class = type("ProviderLogout", (_ProviderLogout,), {"provider_logout_url": logout_url})

    class Provider(base):
        @property
        def login_handler(self):
            if login_class is None:
                return super().login_handler
            login_class._login_endpoint, login_class._login_template = self._login_endpoint, self._login_template
            return login_class

        @property
        def logout_handler(self):
            logout_class._login_endpoint = self._login_endpoint
            if self._logout_template:
                logout_class._logout_template = self._logout_template
            return logout_class

    return Provider()
