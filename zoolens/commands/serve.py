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

HELP = "serve the dashboard on a project's exports (and a consensus file)"


def add_server_arguments(parser) -> None:
    """Options every command that starts the dashboard server takes."""
    from project.reviews import DEFAULT_PATH  # no Panel import: --help stays quick

    parser.add_argument("--port", type=int, default=5006, help="port to listen on (default 5006)")
    parser.add_argument("--address", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1, this machine only; 0.0.0.0 for everyone)")
    parser.add_argument("--num-threads", type=int, default=None, metavar="N",
                        help="threads for session callbacks, so one user's slow work does not block others")
    parser.add_argument("--allow-websocket-origin", action="append", default=None, metavar="HOST[:PORT]",
                        help="host name browsers reach the server under, when not localhost (repeatable)")
    parser.add_argument("--show", action="store_true", help="open the dashboard in a web browser")
    parser.add_argument("--reviews", default=str(DEFAULT_PATH), metavar="PATH_OR_URL",
                        help="where the team's review decisions are kept: a SQLite file, created if missing "
                             f"(default {DEFAULT_PATH} in the working directory), or a database URL such as "
                             "postgresql+psycopg2://user@host/db for a shared server")
    parser.add_argument("--basic-auth", metavar="PASSWORD_OR_FILE",
                        help="ask for a user name and password before the dashboard opens: one shared password, "
                             "or a JSON file mapping user names to passwords; review decisions then carry the "
                             "signed-in user's name (otherwise each reviewer types a name)")


def add_arguments(parser) -> None:
    from zoolens.project_arguments import add_project_arguments

    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="classification export and optionally subject and workflow exports")
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
    """
    import os
    import secrets

    from dashboard.app import serve

    def build_and_tell(progress):
        project = build(progress)
        for report in project.reports:
            print(report.summary())
        print(f"zoolens: {project.title}: {len(project.subject_stats):,} subjects, "
              f"{len(project.classifications):,} classifications, {len(project.marks):,} marks, "
              f"{len(project.consensus):,} consensus boxes")
        if "where" in project.aggregation_run:
            print(f"zoolens: consensus made on {project.aggregation_run['where']}")
        print(f"zoolens: review decisions go to {reviews.url.render_as_string(hide_password=True)} "
              f"(consensus run {project.consensus_source})")
        return project

    location = "localhost" if args.address in ("127.0.0.1", "0.0.0.0") else args.address
    print(f"zoolens: serving at http://{location}:{args.port}/ (Ctrl-C to stop); loading {title}")
    auth = {}
    if args.basic_auth:
        # Signed-in users are remembered in a signed cookie; a fresh secret signs out everyone on restart.
        auth = {"basic_auth": args.basic_auth,
                "cookie_secret": os.environ.get("BOKEH_COOKIE_SECRET") or secrets.token_urlsafe(32)}
    serve(key, build_and_tell, title=title, port=args.port, address=args.address,
          show=args.show, num_threads=args.num_threads, websocket_origin=args.allow_websocket_origin,
          reviews=reviews, **auth)
    return 0


def run(args) -> int:
    from pathlib import Path

    from project import load_project
    from zoolens.project_arguments import project_options

    reviews = open_reviews(args)
    options = project_options(args)
    files = [Path(path) for path in [*args.paths, *([options["consensus"]] if "consensus" in options else [])]]
    for path in files:  # a mistyped name is reported here; what is inside a file, in the page
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file")

    def build(progress):
        return load_project(args.paths, progress=progress, **options)

    return serve_project(build, args, key="serve", title=files[0].name, reviews=reviews)
