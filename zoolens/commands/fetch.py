"""Download a project's exports from Zooniverse into a folder, ready for zoolens to read.

Signs in with PANOPTES_USERNAME and PANOPTES_PASSWORD from the environment, or asks for them
(the password is never shown, stored or logged). By default it downloads the latest existing
export of each kind; --generate asks Zooniverse for fresh ones first and waits up to --timeout
seconds (Zooniverse makes one export of each kind per project per day and silently ignores
further requests). Files land in --out as project-<ID>-<export>.csv, listed in
project-<ID>-manifest.json with their export dates and SHA-256, so running the command again
downloads only what changed, and an interrupted download resumes. With --workflow, the
classification export is also written filtered to that workflow
(project-<ID>-classifications-workflow-<WID>.csv), with a count of the rows of other workflows.

Exit status: 0 when everything was fetched, 1 on an error, 3 when an export requested with
--generate was not ready in time.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

from zooniverse.exports import (
    DEFAULT_GENERATE_TIMEOUT,
    EXPORT_TYPES,
    PRODUCTION_ENDPOINT,
    STAGING_ENDPOINT,
    FetchError,
    FetchProgress,
    fetch_exports,
    format_date,
)

HELP = "download a project's classification, subject and workflow exports from Zooniverse"

#: Exit status when a generated export was not ready within --timeout.
EXIT_NOT_READY = 3


def _export_list(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in EXPORT_TYPES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown export {', '.join(unknown) or '(none given)'}; choose from {','.join(EXPORT_TYPES)}"
        )
    return names


def add_arguments(parser) -> None:
    parser.add_argument("--project", type=int, required=True, metavar="ID",
                        help="the Zooniverse project id (the number in the Project Builder's address)")
    parser.add_argument("--workflow", type=int, metavar="ID",
                        help="also write the classification export with only this workflow's rows")
    parser.add_argument("--exports", type=_export_list, default=list(EXPORT_TYPES), metavar="LIST",
                        help=f"comma-separated exports to fetch (default {','.join(EXPORT_TYPES)})")
    parser.add_argument("--generate", action="store_true",
                        help="ask Zooniverse for fresh exports and wait for them, instead of taking the latest existing ones")
    parser.add_argument("--timeout", type=float, default=DEFAULT_GENERATE_TIMEOUT, metavar="S",
                        help=f"with --generate, seconds to wait for the exports (default {DEFAULT_GENERATE_TIMEOUT:g})")
    parser.add_argument("--out", type=Path, default=Path("."), metavar="DIR",
                        help="folder for the files and the manifest (default: the current folder)")
    parser.add_argument("--endpoint", default=PRODUCTION_ENDPOINT, metavar="URL",
                        help=f"the Panoptes server (default {PRODUCTION_ENDPOINT}; staging: {STAGING_ENDPOINT})")


def _credentials() -> tuple[str, str]:
    """Username and password from the environment, or asked for on the terminal."""
    username = os.environ.get("PANOPTES_USERNAME") or ""
    password = os.environ.get("PANOPTES_PASSWORD") or ""
    if username and password:
        return username, password
    if not sys.stdin.isatty():
        raise FetchError(
            "no Zooniverse credentials: set PANOPTES_USERNAME and PANOPTES_PASSWORD, or run "
            "zoolens fetch in a terminal to be asked for them"
        )
    print("Sign in to Zooniverse (the password is not shown or stored).", file=sys.stderr)
    username = username or input("Username or email: ").strip()
    password = password or getpass.getpass("Password: ")
    if not username or not password:
        raise FetchError("a Zooniverse username and password are both needed")
    return username, password


def _printable(text: str) -> str:
    """Text from the server (project names, error messages) without terminal control characters."""
    return "".join(character if character.isprintable() or character == "\n" else "?" for character in str(text))


class _ProgressPrinter:
    """Stage messages on stderr, and a tqdm bar (size and rate) per download when stderr is a terminal."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.bars = {}
        self.started = set()
        self.interactive = self.stream.isatty()

    def __call__(self, event: FetchProgress) -> None:
        if event.stage != "download":
            self._close(event.export_type)
            print(_printable(event.message), file=self.stream)
            return
        if event.export_type not in self.started:
            self.started.add(event.export_type)
            print(event.message, file=self.stream)
            if self.interactive:
                self.bars[event.export_type] = self._bar(event)
        bar = self.bars.get(event.export_type)
        if bar is not None:
            bar.update(event.bytes_done - bar.n)

    def _bar(self, event: FetchProgress):
        from tqdm import tqdm

        return tqdm(
            desc=event.export_type, total=event.bytes_total, initial=event.bytes_done,
            unit="B", unit_scale=True, unit_divisor=1024, file=self.stream, leave=True,
        )

    def _close(self, export_type: str | None) -> None:
        self.started.discard(export_type)
        bar = self.bars.pop(export_type, None)
        if bar is not None:
            bar.close()

    def close(self) -> None:
        for export_type in list(self.bars):
            self._close(export_type)


def run(args) -> int:
    progress = _ProgressPrinter()
    try:
        username, password = _credentials()
        result = fetch_exports(
            args.project,
            workflow_id=args.workflow,
            exports=args.exports,
            generate=args.generate,
            timeout=args.timeout,
            out_dir=args.out,
            endpoint=args.endpoint,
            username=username,
            password=password,
            progress=progress,
        )
    except FetchError as error:
        progress.close()
        print(f"zoolens fetch: error: {_printable(error)}", file=sys.stderr)
        return 1
    progress.close()
    print(f"project {result.project_id}: {_printable(result.project_name)}")
    for export in result.exports.values():
        date = format_date(export.export_date) if export.export_date else "date unknown"
        state = "downloaded" if export.downloaded else "already current"
        print(f"{export.export_type}: {state}, export of {date}, {export.size:,} bytes: {export.path}")
        selected = export.workflow_filter
        if selected is not None:
            removed = ", ".join(f"workflow {_printable(w) or '(blank)'}: {n:,}" for w, n in sorted(selected.removed_by_workflow.items()))
            print(
                f"  workflow {selected.workflow_id}: kept {selected.rows_kept:,} of {selected.rows_read:,} rows, "
                f"removed {selected.rows_removed:,} rows of other workflows ({removed or 'none'})"
                + (f", skipped {selected.rows_malformed:,} malformed rows" if selected.rows_malformed else "")
                + f": {selected.path}"
            )
    print(f"manifest: {result.manifest_path}")
    for pending in result.pending.values():
        print(f"zoolens fetch: {pending.message} (run the same command without --generate)", file=sys.stderr)
    return EXIT_NOT_READY if result.pending else 0
