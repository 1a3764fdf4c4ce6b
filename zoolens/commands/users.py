"""Manage the users file that `zoolens serve --basic-auth users.json` signs people in with.

Each user has a role: viewer (looks and exports), reviewer (decides, reverts their own
decisions) or lead (also reverts anyone's and flags subjects). Passwords are stored as argon2
hashes, never as given. `add` asks for the password twice (or reads one line from standard
input with --password-stdin, for scripts); adding an existing user replaces their role and
password. Restart the server to apply changes.
"""

from __future__ import annotations

HELP = "add users (with a role and a password) to the users file of --basic-auth"


def add_arguments(parser) -> None:
    from project.roles import ROLES  # argon2 only: --help stays quick

    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="add a user, or replace an existing user's role and password")
    add.add_argument("name", metavar="NAME", help="the user name people sign in with")
    add.add_argument("--role", required=True, choices=ROLES, help="what the user may do")
    add.add_argument("--users", default="users.json", metavar="FILE",
                     help="the users file, created if missing (default users.json)")
    add.add_argument("--password-stdin", action="store_true",
                     help="read the password from the first line of standard input instead of asking")


def run(args) -> int:
    import getpass
    import sys

    from project.roles import UsersFileError, add_user

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"Password for {args.name}: ")
        if getpass.getpass("Again: ") != password:
            raise ValueError("the two passwords differ; nothing changed")
    try:
        add_user(args.users, args.name, password, args.role)
    except UsersFileError as error:
        raise ValueError(str(error)) from None
    print(f"zoolens: {args.name} is a {args.role} in {args.users}")
    return 0
