"""Read files of any supported format and print what was found in them.

For each PATH: the format identified, rows read, loaded and skipped (with the
reason and line numbers of every skipped row), marks by kind, subjects,
workflows and versions seen. Use --json for a machine-readable report.
"""

from __future__ import annotations

import json

HELP = "read any supported file and report rows, marks, subjects, workflows and skipped rows"


def add_arguments(parser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="files to read")
    parser.add_argument("--format", help="skip identification and read as this format")
    parser.add_argument("--workflow", type=int, help="keep only this workflow id (classification exports)")
    parser.add_argument("--workflow-version", help='keep only this version, e.g. "50.46" or major "50"')
    parser.add_argument("--json", action="store_true", help="print the reports as JSON")


def run(args) -> int:
    import data_loaders

    reports = []
    for path in args.paths:
        options = {}
        format = args.format or data_loaders.identify_format(path)
        if format == "classifications":
            options = {"workflow_id": args.workflow, "workflow_version": args.workflow_version}
        result = data_loaders.read(path, format=format, **options)
        report = result.report
        reports.append(report)
        if not args.json:
            print(report.summary())
            for name, table in getattr(result, "tables", {}).items():
                print(f"  table {name}: {len(table)} rows x {len(table.columns)} columns")
    if args.json:
        payload = [report.to_dict() for report in reports]
        print(json.dumps(payload[0] if len(payload) == 1 else payload, indent=2, default=str))
    return 0
