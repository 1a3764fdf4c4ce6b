"""Serve the zoolens dashboard on a project's files.

Give any files zoolens reads: the classification export (required), the subject
export (for images and metadata), the workflow export, and a consensus file with
--consensus; without one, zoolens makes the consensus itself (--method). Relative image locations in the subject export resolve against the
folders of the given files, or the --images folders. The server listens at
once and reads the files in the background, the pages showing its progress; a bad
file is reported here and in the pages. Every browser session shares the loaded
project, each with its own filters. Review decisions (accept, reject, redraw or add a
consensus box, flag a subject) go to the --reviews store, shared by every session and
kept across restarts. Stop with Ctrl-C.
"""

from __future__ import annotations

import sys

HELP = "serve the dashboard on a project's exports (and a consensus file)"


def add_server_arguments(parser) -> None:
    """Options every command that starts the dashboard server takes."""
    from dashboard.recycling import DEFAULT_GROWTH_MIB, DEFAULT_IDLE_SECONDS
    from project.reviews import DEFAULT_PATH  # no Panel import: --help stays quick

    parser.add_argument("--port", type=int, default=5006, help="port to listen on (default 5006)")
    parser.add_argument("--address", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1, this machine only; 0.0.0.0 for everyone)")
    parser.add_argument("--num-threads", type=int, default=None, metavar="N",
                        help="worker threads for session callbacks, so one user's slow work does not block "
                             "others; each user's actions still run in the order they were made (default: twice the "
                             "cores, at most 4; 0: the server's event loop runs every callback)")
    parser.add_argument("--num-procs", type=int, default=1, metavar="N",
                        help="server processes sharing the port, for more reviewers than one process serves "
                             "(default 1); each loads the project, so give them one PostgreSQL --reviews store")
    parser.add_argument("--recycle-idle", type=float, default=DEFAULT_IDLE_SECONDS, metavar="SECONDS",
                        help="give the memory sessions leave behind back to the system: once no one has had the "
                             f"dashboard open for this long (default {DEFAULT_IDLE_SECONDS:g} s) and the server holds "
                             "more than --recycle-growth beyond its size when the project loaded, a fresh server "
                             "process takes over and loads the project again (0: never; not with --num-procs)")
    parser.add_argument("--recycle-growth", type=float, default=DEFAULT_GROWTH_MIB, metavar="MIB",
                        help=f"how much more memory than when loaded, MiB, is worth a fresh server process "
                             f"(default {DEFAULT_GROWTH_MIB:g})")
    parser.add_argument("--allow-websocket-origin", action="append", default=None, metavar="HOST[:PORT]",
                        help="host name browsers reach the server under, when not localhost (repeatable)")
    parser.add_argument("--show", action="store_true", help="open the dashboard in a web browser")
    parser.add_argument("--reviews", default=str(DEFAULT_PATH), metavar="PATH_OR_URL",
                        help="where the team's review decisions are kept: a SQLite file, created if missing "
                             f"(default {DEFAULT_PATH} in the working directory), or a database URL such as "
                             "postgresql+psycopg2://user@host/db for a shared server")
    parser.add_argument("--basic-auth", metavar="USERS_FILE_OR_PASSWORD",
                        help="ask for a user name and password before the dashboard opens: a users file of names, "
                             "roles and password hashes (made with `zoolens users add`), or one password shared by "
                             "everyone (shared-password mode: names are not verified and everyone is a reviewer); "
                             "review decisions carry the signed-in user's name and role (otherwise each reviewer "
                             "types a name)")
    oidc = parser.add_argument_group(
        "sign-in at an OpenID Connect provider (EOSC AAI, Zooniverse, an institution's login)",
        "The client secret is read from the ZOOLENS_OIDC_CLIENT_SECRET environment variable. Register the app "
        "at the provider with the redirect URI --oidc-redirect-uri and the post-logout URI without /login.")
    oidc.add_argument("--oidc-issuer", metavar="URL", help="the provider's issuer URL (its discovery document is "
                                                         "URL/.well-known/openid-configuration)")
    oidc.add_argument("--oidc-client-id", metavar="ID", help="the app's client id at the provider")
    oidc.add_argument("--oidc-redirect-uri", metavar="URL",
                      help="the app's sign-in address as registered: https://HOST/login "
                           "(default http://localhost:PORT/login)")
    oidc.add_argument("--oidc-user-claim", default="preferred_username", metavar="CLAIM",
                      help="the claim naming the person (default preferred_username)")
    oidc.add_argument("--oidc-role-claim", default="zoolens_role", metavar="CLAIM",
                      help="the claim giving the role: a string or a list such as eduperson_entitlement "
                           "(default zoolens_role)")
    oidc.add_argument("--oidc-role", action="append", default=None, metavar="VALUE=ROLE",
                      help="a value of the role claim and the zoolens role (viewer, reviewer, lead) it gives "
                           "(repeatable; default: the claim holds the role names themselves)")
    oidc.add_argument("--oidc-default-role", choices=("viewer", "reviewer"), default=None,
                      help="the role of someone whose claim gives none (default: they are refused)")
    oidc.add_argument("--oidc-scope", action="append", default=None, metavar="SCOPE",
                      help="a scope to ask for (repeatable; default openid, profile, email): add the one "
                           "that releases the role claim")


def add_arguments(parser) -> None:
    from zoolens.project_arguments import add_project_arguments

    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="classification export and optionally subject and workflow exports (none when "
                             "--store names an existing project store)")
    add_project_arguments(parser, allow_no_method=True)
    add_server_arguments(parser)


def open_reviews(args):
    """The review store of --reviews, opened before the project loads so a bad one is reported at once."""
    from project.reviews import ReviewError, open_store

    try:
        return open_store(args.reviews)
    except ReviewError as error:
        raise ValueError(f"--reviews {args.reviews}: {error}") from None


def serve_project(build, args, key: str, title: str, reviews) -> int:
    """Start the server with the server options of ``args`` and the review store ``reviews``; blocks until stopped.

    The server listens at once; ``build(progress)`` makes the project in the
    background while the pages show its progress, and its load reports and
    counts are printed here when it is done (a failure is printed and shown in
    the pages; the server keeps running).

    With ``--recycle-idle`` (the default) and one process, this process becomes a small supervisor
    that runs the same command as the server (`dashboard.recycling`); that server returns
    `~dashboard.recycling.RECYCLE_EXIT` when it stops to give its memory back.
    """
    import os
    import secrets

    from dashboard.recycling import (RECYCLE_EXIT, SERVER_GENERATION, IdleRecycle, become_supervisor,
                                     recycling_supported)

    sign_in = make_sign_in(args)
    recycling = args.recycle_idle > 0 and args.num_procs == 1 and recycling_supported()
    if recycling and SERVER_GENERATION not in os.environ:
        reviews.close()  # checked here; the server opens its own
        become_supervisor([sys.executable, "-m", "zoolens", *args.argv])
    recycle = IdleRecycle(args.recycle_idle, args.recycle_growth) if recycling else None
    first = os.environ.get(SERVER_GENERATION, "1") == "1"

    from dashboard.app import serve
    from dashboard.memory import freeze_loaded
    from dashboard.subject_marks import consensus_kinds

    def build_and_tell(progress):
        project = build(progress)
        for report in project.reports:
            print(report.summary())
        print(f"zoolens: {project.title}: {len(project.subject_stats):,} subjects, "
              f"{len(project.classifications):,} classifications, {project.subject_stats.n_marks.sum():,} marks, "
              f"{len(project.consensus):,} consensus {consensus_kinds(project).words[1]}")
        if "where" in project.aggregation_run:
            print(f"zoolens: consensus made on {project.aggregation_run['where']}")
        print(f"zoolens: review decisions go to {reviews.url.render_as_string(hide_password=True)} "
              f"(consensus run {project.consensus_source})")
        # This process serves this project until it ends: the collections after each closed session need not
        # walk it (0.2 s a collection on the demo).
        freeze_loaded(project)
        if recycle is not None:
            recycle.loaded()
        return project

    location = "localhost" if args.address in ("127.0.0.1", "0.0.0.0") else args.address
    print(f"zoolens: serving at http://{location}:{args.port}/ (Ctrl-C to stop); loading {title}"
          + (f" (process {os.getpid()})" if recycle is not None else ""))
    auth = {}
    if sign_in is not None:
        # Signed-in users are remembered in a signed cookie; a fresh secret signs out everyone on restart.
        auth = {"sign_in": sign_in,
                "cookie_secret": os.environ.get("BOKEH_COOKIE_SECRET") or secrets.token_urlsafe(32)}
        print(f"zoolens: sign-in: {sign_in.description}")
    workers = {} if args.num_threads is None else {"num_threads": args.num_threads}  # else serve's default
    if args.num_procs != 1:
        workers["num_procs"] = args.num_procs
    serve(key, build_and_tell, title=title, port=args.port, address=args.address,
          show=args.show and first, websocket_origin=args.allow_websocket_origin,
          reviews=reviews, recycle=recycle, **workers, **auth)
    if recycle is not None and recycle.reason:
        print(f"zoolens: {recycle.reason}: this server process ends to give that memory back")
        reviews.close()
        return RECYCLE_EXIT
    return 0


def make_sign_in(args):
    """The `dashboard.sign_in.SignIn` the options ask for (None: no sign-in), checked before the server starts."""
    import os
    from pathlib import Path

    from project.roles import ClaimRoles

    if args.basic_auth and args.oidc_issuer:
        raise ValueError("--basic-auth and --oidc-issuer are two ways of signing in: give one")
    if args.basic_auth:
        from dashboard.sign_in import SharedPassword, UsersFileSignIn

        # A users file when it names one; anything else is the shared password itself.
        return UsersFileSignIn(args.basic_auth) if Path(args.basic_auth).is_file() else SharedPassword(args.basic_auth)
    if not args.oidc_issuer:
        return None
    from dashboard.sign_in import DEFAULT_OIDC_SCOPES, OidcSignIn

    secret = os.environ.get("ZOOLENS_OIDC_CLIENT_SECRET")
    if not args.oidc_client_id or not secret:
        raise ValueError("--oidc-issuer needs --oidc-client-id and the client secret in ZOOLENS_OIDC_CLIENT_SECRET")
    mapping = None
    if args.oidc_role:
        pairs = [value.rpartition("=") for value in args.oidc_role]
        bad = [value for value, (claim, _, _) in zip(args.oidc_role, pairs) if not claim]
        if bad:
            raise ValueError(f"--oidc-role {bad[0]!r}: give VALUE=ROLE, e.g. urn:example:zoo:leads=lead")
        mapping = {claim: role for claim, _, role in pairs}
    roles = ClaimRoles(claim=args.oidc_role_claim, mapping=mapping, default_role=args.oidc_default_role,
                       user_claim=args.oidc_user_claim)
    redirect_uri = args.oidc_redirect_uri or f"http://localhost:{args.port}/login"
    return OidcSignIn(args.oidc_issuer, args.oidc_client_id, secret, redirect_uri, roles=roles,
                      scopes=args.oidc_scope or DEFAULT_OIDC_SCOPES)


def run(args) -> int:
    from pathlib import Path

    from project import load_project
    from project.stored import is_store
    from zoolens.project_arguments import project_options

    reviews = open_reviews(args)
    options = project_options(args)
    files = [Path(path) for path in [*args.paths, *([options["consensus"]] if "consensus" in options else [])]]
    if not files and not ("store" in options and is_store(options["store"])):
        raise ValueError("give the project's files (a classification export first), or --store FOLDER of an "
                         "existing project store")
    for path in files:  # a mistyped name is reported here; what is inside a file, in the page
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file")

    def build(progress):
        return load_project(args.paths, progress=progress, **options)

    title = files[0].name if files else options["store"].name
    return serve_project(build, args, key="serve", title=title, reviews=reviews)
