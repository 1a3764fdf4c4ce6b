"""The ``zoolens`` command: one subcommand per module in `zoolens.commands`."""

from __future__ import annotations

import argparse
import importlib
import sys

#: Subcommand modules, in the order ``zoolens --help`` lists them. Each defines
#: ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``.
COMMANDS = ("demo", "serve", "inspect", "fetch", "aggregate", "export", "compare", "users")


class _Version(argparse.Action):
    """``--version``: the version is the loaders' (`data_loaders.__version__`), imported only when asked."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from data_loaders import __version__

        print(f"zoolens {__version__}")
        parser.exit()


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every subcommand, or with the arguments of subcommand ``only`` alone.

    ``only=""`` adds no subcommand's arguments: the top-level help and errors need none.
    Some subcommands' arguments list what the server or the aggregators offer, which
    imports them (SQLAlchemy, SciPy): ``zoolens inspect`` need not wait for that.
    """
    parser = argparse.ArgumentParser(
        prog="zoolens",
        description="Explore Zooniverse volunteer marks and their consensus.",
    )
    parser.add_argument("--version", action=_Version, help="show zoolens' version and exit")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"zoolens.commands.{name}")
        sub = subparsers.add_parser(name, help=module.HELP, description=module.__doc__)
        if only is None or only == name:
            module.add_arguments(sub)
            sub.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # A server's log lines go out as they happen, also when its output goes to a file or a pipe.
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
    # Top-level options (--help, --version) come before the subcommand and end the run,
    # so only a first word that names a subcommand needs its arguments.
    parser = build_parser(argv[0] if argv and argv[0] in COMMANDS else "")
    args = parser.parse_args(argv)
    args.argv = list(argv)  # the command as given: a server that restarts itself runs it again
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except (FileNotFoundError, ValueError) as error:
        # Bad input is the user's to fix: say what, without a traceback.
        print(f"zoolens {args.command}: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
