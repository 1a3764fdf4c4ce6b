"""Who may do what in a team review: roles, the users file, and roles from sign-in claims.

Three roles, each allowed what the one before it is and more:

- **viewer**: looks at everything and exports; records no decision.
- **reviewer**: accepts, rejects, redraws and adds boxes, and reverts their own decisions.
- **lead**: also reverts anyone's decisions, flags or unflags subjects, and assigns subjects to
  reviewers.

A `Reviewer` is one person as the server knows them: a name, a role and how the name was
established (``authentication``): a users file (`UsersFile`), an OpenID Connect sign-in
(`ClaimRoles`), one password shared by the whole team (the name is whatever the person typed),
or nothing at all (``unverified``: a name typed into the page, or given in a notebook).
`project.reviews.ReviewStore` refuses what a reviewer's role does not allow and stores the
role and authentication with every decision. Passwords in a users file are argon2 hashes
(argon2-cffi); the file never holds a password.

This module imports no Panel: the served app (`dashboard.sign_in`) passes the sign-in in.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import argon2

#: The roles, least allowed first.
ROLES = ("viewer", "reviewer", "lead")
#: The least role that may record each action (`project.reviews.ACTIONS`); reverting one's own decision
#: needs ``revert``'s role, anyone's needs `REVERT_ANYONES`.
ACTION_ROLES = {"accept": "reviewer", "reject": "reviewer", "redraw": "reviewer", "add": "reviewer",
                "revert": "reviewer", "flag": "lead", "unflag": "lead", "assign": "lead"}
#: The least role that may revert a decision someone else made.
REVERT_ANYONES = "lead"

#: How a reviewer's name was established, as recorded with each decision.
USERS_FILE, OIDC, SHARED_PASSWORD, UNVERIFIED = "users-file", "oidc", "shared-password", "unverified"
AUTHENTICATIONS = (USERS_FILE, OIDC, SHARED_PASSWORD, UNVERIFIED)
#: What the page says of each way of signing in.
AUTHENTICATION_LABELS = {
    USERS_FILE: "signed in (users file)",
    OIDC: "signed in (OpenID Connect)",
    SHARED_PASSWORD: "shared-password mode: the name is what was typed at sign-in, not verified",
    UNVERIFIED: "not signed in: the name is what was typed, not verified",
}

#: The version of the users file's layout, written into it.
USERS_FILE_VERSION = 1


class RoleError(PermissionError):
    """An action the reviewer's role does not allow."""


class UsersFileError(ValueError):
    """A users file that cannot be read or used, or a user that cannot be added."""


def rank(role: str) -> int:
    """A role's place in `ROLES` (higher allows more); a clear error for an unknown role."""
    try:
        return ROLES.index(role)
    except ValueError:
        raise ValueError(f"unknown role {role!r}; the roles are {', '.join(ROLES)}") from None


@dataclass(frozen=True)
class Reviewer:
    """One person as the server knows them.

    Parameters
    ----------
    name : str
        The name decisions are attributed to.
    role : str
        One of `ROLES`.
    authentication : str
        How the name was established: one of `AUTHENTICATIONS`.
    """

    name: str
    role: str = "lead"
    authentication: str = UNVERIFIED

    def __post_init__(self):
        rank(self.role)
        if self.authentication not in AUTHENTICATIONS:
            raise ValueError(f"unknown authentication {self.authentication!r}; known: {', '.join(AUTHENTICATIONS)}")

    def may(self, action: str) -> bool:
        """Whether the role allows recording ``action`` (for ``revert``: reverting one's own decision)."""
        return rank(self.role) >= rank(ACTION_ROLES[action])

    def may_revert_anyones(self) -> bool:
        return rank(self.role) >= rank(REVERT_ANYONES)

    def check(self, action: str) -> None:
        """Raise `RoleError` unless the role allows ``action``."""
        if not self.may(action):
            raise RoleError(f"{self.name} is a {self.role}: {action} needs the {ACTION_ROLES[action]} role "
                            f"or higher")

    @property
    def label(self) -> str:
        """What the page says of how this reviewer signed in."""
        return AUTHENTICATION_LABELS[self.authentication]


class UsersFile:
    """A JSON file of user names, roles and argon2 password hashes, for ``--basic-auth users.json``.

    Its layout::

        {"zoolens_users": 1,
         "users": {"ann": {"role": "lead", "password_hash": "$argon2id$v=19$..."}}}

    Make it with ``zoolens users add NAME --role ROLE --users users.json`` (which asks for the
    password) rather than by hand.

    Parameters
    ----------
    path : str or Path
        The file.

    Raises
    ------
    UsersFileError
        The file is missing, not JSON, not of this layout (a file of plain passwords is refused
        with how to convert it), or names an unknown role.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.users = read_users(self.path)
        self._hasher = argon2.PasswordHasher()

    def verify(self, name: str, password: str) -> Reviewer | None:
        """The user ``name`` if ``password`` is theirs, else None (also for an unknown name)."""
        user = self.users.get(name)
        if user is None:
            # Hash anyway, so an unknown name takes as long to refuse as a wrong password.
            self._hasher.hash(password)
            return None
        try:
            self._hasher.verify(user["password_hash"], password)
        except argon2.exceptions.VerificationError:
            return None
        except argon2.exceptions.InvalidHashError:
            return None
        return Reviewer(name, user["role"], USERS_FILE)

    def reviewer(self, name: str) -> Reviewer | None:
        """The signed-in user ``name`` with their role from the file (None when no longer in it)."""
        user = self.users.get(name)
        return None if user is None else Reviewer(name, user["role"], USERS_FILE)


def read_users(path: Path) -> dict[str, dict]:
    """The ``users`` mapping of a users file, checked."""
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsersFileError(f"{path}: no such users file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UsersFileError(f"{path}: not a JSON users file: {error}") from None
    if not isinstance(content, dict) or "zoolens_users" not in content:
        if isinstance(content, dict) and all(isinstance(value, str) for value in content.values()):
            raise UsersFileError(
                f"{path} maps user names to plain passwords, which zoolens no longer reads: make a users "
                "file of hashed passwords and roles with `zoolens users add NAME --role reviewer --users "
                f"{path.with_suffix('.users.json').name}` for each user")
        raise UsersFileError(f"{path}: not a zoolens users file (no \"zoolens_users\" key)")
    if content["zoolens_users"] != USERS_FILE_VERSION:
        raise UsersFileError(f"{path}: users file version {content['zoolens_users']!r}; this zoolens reads "
                             f"version {USERS_FILE_VERSION}")
    users = content.get("users")
    if not isinstance(users, dict):
        raise UsersFileError(f"{path}: \"users\" must map user names to their role and password hash")
    for name, user in users.items():
        if not isinstance(user, dict) or not isinstance(user.get("password_hash"), str):
            raise UsersFileError(f"{path}: user {name!r} has no password_hash")
        if user.get("role") not in ROLES:
            raise UsersFileError(f"{path}: user {name!r} has role {user.get('role')!r}; "
                                 f"the roles are {', '.join(ROLES)}")
    return users


def add_user(path: str | Path, name: str, password: str, role: str) -> None:
    """Add or replace user ``name`` in the users file ``path`` (created if missing), with a new hash.

    The file is replaced whole (written beside it, then renamed), so a reader never sees it half
    written; it is readable by its owner only.

    Raises
    ------
    UsersFileError
        An empty name or password, an unknown role, or an existing file that is not a users file.
    """
    path = Path(path)
    if not name.strip():
        raise UsersFileError("the user name must not be empty")
    if not password:
        raise UsersFileError("the password must not be empty")
    if role not in ROLES:
        raise UsersFileError(f"unknown role {role!r}; the roles are {', '.join(ROLES)}")
    users = read_users(path) if path.exists() else {}
    users[name] = {"role": role, "password_hash": argon2.PasswordHasher().hash(password)}
    text = json.dumps({"zoolens_users": USERS_FILE_VERSION, "users": users}, indent=2, ensure_ascii=False)
    handle, temporary = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".", prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text + "\n")
        os.replace(temporary, path)  # mkstemp made it owner-only
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class ClaimRoles:
    """A signed-in person's role from one claim of their OpenID Connect token.

    Parameters
    ----------
    claim : str
        The claim holding the role: a string, or a list of strings (as entitlement and group
        claims are), e.g. ``zoolens_role`` or ``eduperson_entitlement``.
    mapping : mapping of str to str
        Claim value -> role. Default: the role names themselves. When several values map to
        roles, the highest role wins.
    default_role : str, optional
        The role of someone whose claim maps to no role; None (the default) refuses them.
    user_claim : str
        The claim naming the person, as decisions are attributed.
    """

    claim: str = "zoolens_role"
    mapping: Mapping[str, str] | None = None
    default_role: str | None = None
    user_claim: str = "preferred_username"

    def __post_init__(self):
        for role in [*(self.mapping or {}).values(), *([self.default_role] if self.default_role else [])]:
            rank(role)

    def role_of(self, claims: Mapping) -> str | None:
        """The role the claims give (None: refused)."""
        values = claims.get(self.claim)
        values = [values] if isinstance(values, str) else values if isinstance(values, Iterable) else []
        mapping = self.mapping if self.mapping is not None else {role: role for role in ROLES}
        roles = [mapping[value] for value in values if isinstance(value, str) and value in mapping]
        return max(roles, key=rank) if roles else self.default_role

    def reviewer(self, claims: Mapping | None) -> Reviewer | None:
        """The person the claims describe, or None when they have no name or no role."""
        if not claims:
            return None
        name, role = claims.get(self.user_claim), self.role_of(claims)
        if not isinstance(name, str) or not name.strip() or role is None:
            return None
        return Reviewer(name, role, OIDC)
