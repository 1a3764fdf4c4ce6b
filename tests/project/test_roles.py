"""Roles, the users file (argon2 hashes, never a password) and roles from OpenID Connect claims."""

from __future__ import annotations

import stat

import pytest

from project.roles import (
    OIDC, ROLES, USERS_FILE, ClaimRoles, Reviewer, RoleError, UsersFile, UsersFileError, add_user,
)


def test_each_role_allows_what_the_one_before_it_does_and_more():
    actions = ("accept", "reject", "redraw", "add", "revert", "flag", "unflag", "assign")
    allowed = {role: {action for action in actions if Reviewer("x", role).may(action)} for role in ROLES}
    assert allowed == {"viewer": set(), "reviewer": {"accept", "reject", "redraw", "add", "revert"},
                       "lead": set(actions)}
    assert [Reviewer("x", role).may_revert_anyones() for role in ROLES] == [False, False, True]
    with pytest.raises(RoleError, match="x is a reviewer: flag needs the lead role or higher"):
        Reviewer("x", "reviewer").check("flag")
    with pytest.raises(ValueError, match="unknown role 'admin'; the roles are viewer, reviewer, lead"):
        Reviewer("x", "admin")


def test_the_users_file_holds_hashes_and_roles_and_verifies_passwords(tmp_path):
    path = tmp_path / "users.json"
    add_user(path, "ann", "correct horse", "lead")
    add_user(path, "bob", "battery staple", "reviewer")
    text = path.read_text()
    assert "correct horse" not in text and "battery staple" not in text and "$argon2id$" in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # readable by its owner only
    users = UsersFile(path)
    assert users.verify("ann", "correct horse") == Reviewer("ann", "lead", USERS_FILE)
    assert users.verify("bob", "battery staple") == Reviewer("bob", "reviewer", USERS_FILE)
    assert users.verify("ann", "battery staple") is None
    assert users.verify("nobody", "correct horse") is None
    add_user(path, "bob", "new password", "viewer")  # replaced: new role, new password
    users = UsersFile(path)
    assert users.verify("bob", "battery staple") is None
    assert users.verify("bob", "new password").role == "viewer"
    assert users.reviewer("ann").role == "lead" and users.reviewer("carol") is None


@pytest.mark.parametrize("content, message", [
    ('{"ann": "plain password"}', "maps user names to plain passwords, which zoolens no longer reads: make a "
                                  "users file of hashed passwords and roles with `zoolens users add"),
    ("not json", "not a JSON users file"),
    ('{"zoolens_users": 7, "users": {}}', "users file version 7; this zoolens reads version 1"),
    ('{"zoolens_users": 1, "users": {"ann": {"role": "lead"}}}', "user 'ann' has no password_hash"),
    ('{"zoolens_users": 1, "users": {"ann": {"role": "boss", "password_hash": "x"}}}',
     "user 'ann' has role 'boss'; the roles are viewer, reviewer, lead"),
])
def test_a_bad_users_file_is_refused_naming_the_file_and_problem(tmp_path, content, message):
    path = tmp_path / "users.json"
    path.write_text(content)
    with pytest.raises(UsersFileError, match=str(path).replace(".", r"\.")) as error:
        UsersFile(path)
    assert message in str(error.value)
    with pytest.raises(UsersFileError):  # and is not overwritten by adding a user to it
        add_user(path, "carol", "pw", "reviewer")
    assert path.read_text() == content


def test_adding_a_user_checks_name_password_and_role(tmp_path):
    for name, password, role, message in [("", "pw", "lead", "user name must not be empty"),
                                          ("ann", "", "lead", "password must not be empty"),
                                          ("ann", "pw", "boss", "unknown role 'boss'")]:
        with pytest.raises(UsersFileError, match=message):
            add_user(tmp_path / "users.json", name, password, role)
    assert not (tmp_path / "users.json").exists()
    with pytest.raises(UsersFileError, match="no such users file"):
        UsersFile(tmp_path / "users.json")


def test_roles_from_claims():
    roles = ClaimRoles()  # the claim zoolens_role holding a role name
    assert roles.reviewer({"preferred_username": "ann", "zoolens_role": "lead"}) == Reviewer("ann", "lead", OIDC)
    assert roles.reviewer({"preferred_username": "ann", "zoolens_role": "boss"}) is None  # refused
    assert roles.reviewer({"preferred_username": "ann"}) is None
    assert roles.reviewer({"zoolens_role": "lead"}) is None  # no name
    assert roles.reviewer(None) is None
    # An entitlement list (as EOSC AAI gives), mapped; the highest role wins; others may only look.
    entitlements = ClaimRoles(claim="eduperson_entitlement", user_claim="email", default_role="viewer",
                              mapping={"urn:geant:example.org:group:zoo:leads": "lead",
                                       "urn:geant:example.org:group:zoo": "reviewer"})
    claims = {"email": "ann@example.org",
              "eduperson_entitlement": ["urn:geant:example.org:group:zoo", "urn:geant:example.org:group:zoo:leads"]}
    assert entitlements.reviewer(claims) == Reviewer("ann@example.org", "lead", OIDC)
    assert entitlements.reviewer({"email": "eve@example.org", "eduperson_entitlement": ["other"]}).role == "viewer"
    with pytest.raises(ValueError, match="unknown role 'boss'"):
        ClaimRoles(mapping={"x": "boss"})
