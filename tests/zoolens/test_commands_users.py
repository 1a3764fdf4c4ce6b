"""`zoolens users add` and the sign-in options of serve and demo."""

from __future__ import annotations

import io
import json

import pytest

from dashboard.sign_in import SharedPassword, UsersFileSignIn
from project.roles import UsersFile
from zoolens.cli import build_parser, main
from zoolens.commands.serve import make_sign_in


def test_users_add_writes_a_hash_and_a_role(tmp_path, monkeypatch, capsys):
    users = tmp_path / "users.json"
    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret words\n"))
    assert main(["users", "add", "ann", "--role", "lead", "--users", str(users), "--password-stdin"]) == 0
    assert f"ann is a lead in {users}" in capsys.readouterr().out
    assert "s3cret" not in users.read_text()
    assert UsersFile(users).verify("ann", "s3cret words").role == "lead"
    with pytest.raises(SystemExit):  # an unknown role is an argument error
        main(["users", "add", "bob", "--role", "boss", "--users", str(users), "--password-stdin"])
    assert "invalid choice: 'boss'" in capsys.readouterr().err


def test_users_add_refuses_a_file_of_plain_passwords(tmp_path, monkeypatch, capsys):
    users = tmp_path / "old.json"
    users.write_text(json.dumps({"ann": "plain"}))
    monkeypatch.setattr("sys.stdin", io.StringIO("pw\n"))
    assert main(["users", "add", "bob", "--role", "reviewer", "--users", str(users), "--password-stdin"]) == 1
    assert "maps user names to plain passwords" in capsys.readouterr().err
    assert json.loads(users.read_text()) == {"ann": "plain"}


def test_basic_auth_is_a_users_file_or_the_shared_password(tmp_path, monkeypatch):
    parser = build_parser()
    users = tmp_path / "users.json"
    monkeypatch.setattr("sys.stdin", io.StringIO("pw\n"))
    main(["users", "add", "ann", "--role", "lead", "--users", str(users), "--password-stdin"])
    from_file = make_sign_in(parser.parse_args(["serve", "c.csv", "--basic-auth", str(users)]))
    assert isinstance(from_file, UsersFileSignIn) and "0 viewer(s), 0 reviewer(s), 1 lead(s)" in from_file.description
    shared = make_sign_in(parser.parse_args(["demo", "--basic-auth", "open sesame"]))
    assert isinstance(shared, SharedPassword) and "shared-password mode" in shared.description
    assert make_sign_in(parser.parse_args(["demo"])) is None
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({"ann": "plain"}))
    with pytest.raises(ValueError, match="plain passwords"):
        make_sign_in(parser.parse_args(["demo", "--basic-auth", str(plain)]))


def test_oidc_options_are_checked_before_the_server_starts(monkeypatch):
    parser = build_parser()
    monkeypatch.delenv("ZOOLENS_OIDC_CLIENT_SECRET", raising=False)
    with pytest.raises(ValueError, match="needs --oidc-client-id and the client secret in ZOOLENS_OIDC_CLIENT_SECRET"):
        make_sign_in(parser.parse_args(["demo", "--oidc-issuer", "http://127.0.0.1:9/", "--oidc-client-id", "z"]))
    with pytest.raises(ValueError, match="two ways of signing in"):
        make_sign_in(parser.parse_args(["demo", "--oidc-issuer", "http://127.0.0.1:9/", "--basic-auth", "pw"]))
    monkeypatch.setenv("ZOOLENS_OIDC_CLIENT_SECRET", "secret")
    with pytest.raises(ValueError, match="--oidc-role 'lead': give VALUE=ROLE"):
        make_sign_in(parser.parse_args(["demo", "--oidc-issuer", "http://127.0.0.1:9/", "--oidc-client-id", "z",
                                        "--oidc-role", "lead"]))
    # Port 9 (discard) has no provider: the discovery document cannot be read, said at once.
    with pytest.raises(ValueError, match="cannot read the OpenID Connect provider's discovery document "
                                         "http://127.0.0.1:9/.well-known/openid-configuration"):
        make_sign_in(parser.parse_args(["demo", "--oidc-issuer", "http://127.0.0.1:9/", "--oidc-client-id", "z"]))
