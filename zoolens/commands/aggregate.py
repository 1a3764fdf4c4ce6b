"""Make consensus boxes and points from a Zooniverse classification export and write them as CSV.

Reads EXPORT (a classification export CSV, optionally gzipped), keeps the
workflow, version and drawing tasks asked for, turns the volunteers' marks into
consensus boxes and points with --method (by default each kind of mark gets its
own method: point clicks the point method, boxes and other shapes iou), and
writes two files:

  OUTPUT              one row per consensus box or point: subject_id,
                      consensus_id, x, y, width, height (top-left corner and
                      size, image pixels; a point has width = height = 0),
                      angle, n_votes, n_seen (volunteers who saw the subject,
                      including those who drew nothing), vote_fraction, task,
                      tool, frame, what the method adds, and source: the method
                      and every parameter as JSON, to reproduce the result.
  OUTPUT.links.csv    one row per mark: mark_id, the consensus_id it votes for
                      (-1 for none) and its IoU (boxes) or distance (points),
                      plus the box it overlaps most or the nearest point.

Method parameters are set with --param NAME=VALUE (repeatable); the methods and
their parameters are listed below. Text cells that a spreadsheet would run as a
formula (starting with = + - @, tab or CR) are written with a leading quote.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path

HELP = "make consensus boxes and points from a classification export (iou, lean EM, point) and write them as CSV"

def _methods_epilog() -> str:
    from consensus.base import get_aggregator, methods

    lines = ["methods and their parameters (--param NAME=VALUE):"]
    for method, description in methods().items():
        lines.append(f"  {method}: {description}")
        aggregator = get_aggregator(method)
        for name in aggregator.param:
            if name == "name":
                continue
            # The class value, not Parameter.default: a subclass may set its own default.
            text = f"{name} (default {getattr(aggregator, name)!r}): {aggregator.param[name].doc}"
            lines.extend(textwrap.wrap(text, width=88, initial_indent="    ", subsequent_indent="      "))
    return "\n".join(lines)


def add_arguments(parser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = _methods_epilog()
    parser.add_argument("export", metavar="EXPORT", help="classification export CSV (.csv or .csv.gz)")
    parser.add_argument("-o", "--output", required=True, metavar="OUTPUT", help="consensus CSV to write")
    parser.add_argument("--links", metavar="PATH", help="links CSV to write (default: OUTPUT with .links.csv)")
    parser.add_argument("--workflow", type=int, metavar="ID", help="keep only this workflow id")
    parser.add_argument("--workflow-version", metavar="V", help='keep only this version, e.g. "50.46" or major "50"')
    parser.add_argument("--task", action="append", metavar="T",
                        help="drawing task to take marks from, e.g. T0 (repeatable; default every drawing task)")
    parser.add_argument("--point-box", metavar="SPEC",
                        help='turn point clicks into square boxes: a side in pixels, or "2.5*#fwhmImagePix" '
                             "(without it, clicks stay points and get consensus points)")
    parser.add_argument("--method",
                        help="consensus method: iou, lean or point (default: point for clicks, iou for boxes and "
                             "other shapes; both when the export holds both)")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="a method parameter, e.g. --param min_vote_fraction=0.3 (repeatable)")
    parser.add_argument("--overwrite", action="store_true", help="replace OUTPUT and the links file if they exist")


def parse_params(pairs: list[str]) -> dict:
    """``NAME=VALUE`` strings -> parameters; values are JSON (numbers, true/false) or else text."""
    params = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--param {pair!r} is not NAME=VALUE, e.g. --param min_vote_fraction=0.3")
        try:
            params[name.strip()] = json.loads(value)
        except json.JSONDecodeError:
            params[name.strip()] = value
    return params


def links_path(output: Path) -> Path:
    """OUTPUT.csv -> OUTPUT.links.csv (any other name gets .links.csv appended)."""
    stem = output.name[: -len(".csv")] if output.name.lower().endswith(".csv") else output.name
    return output.with_name(f"{stem}.links.csv")


def run(args) -> int:
    from consensus import aggregate
    from data_loaders.classifications import read_classifications
    from data_loaders.writers import to_safe_csv

    output = Path(args.output)
    links_output = Path(args.links) if args.links else links_path(output)
    for path in (output, links_output):
        if path.exists() and not args.overwrite:
            raise ValueError(f"{path} exists; pass --overwrite to replace it")
    params = parse_params(args.param)

    loaded = read_classifications(args.export, workflow_id=args.workflow, workflow_version=args.workflow_version,
                                  tasks=args.task, point_box=args.point_box)
    print(loaded.report.summary(), file=sys.stderr)
    result = aggregate(loaded.marks, loaded.classifications, method=args.method, **params)

    output.parent.mkdir(parents=True, exist_ok=True)
    links_output.parent.mkdir(parents=True, exist_ok=True)
    to_safe_csv(result.consensus, output)
    to_safe_csv(result.links, links_output)
    report = result.report
    made = [f"{report[key]} consensus {noun}" for key, noun in (("consensus_boxes", "boxes"), ("consensus_points", "points"))
            if key in report]
    unusable = " and ".join(f"{report[key]} {what}" for key, what in (("marks_without_box", "without a usable box"),
                                                                      ("marks_without_point", "not points"))
                            if key in report)
    # A mixed export's source lists the settings of each kind's method.
    sources = json.loads(result.source)
    method = " and ".join(part["method"] for part in (sources if isinstance(sources, list) else [sources]))
    print(
        f"{' and '.join(made)} on {report.get('subjects', 0)} subjects from "
        f"{report.get('marks', 0)} marks ({report.get('linked_marks', 0)} linked, {unusable}) by method {method}\n"
        f"wrote {output} and {links_output}",
        file=sys.stderr,
    )
    return 0
