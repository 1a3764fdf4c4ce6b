"""Make consensus boxes and points from a Zooniverse classification export and write them as CSV.

Reads the classification export (a CSV, optionally gzipped) among the PATHs (the
workflow and subject exports may be given beside it, as for serve), keeps the
workflow, version and drawing tasks asked for, turns the volunteers' marks into
consensus boxes and points with --method (by default, auto, each kind of mark
gets its own method: point clicks the point method, boxes and other shapes
lean), and writes two files:

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
    from zoolens.project_arguments import add_project_arguments

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = _methods_epilog()
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="classification export CSV (.csv or .csv.gz) and, optionally, the workflow export (what "
                             "each classic-front-end tool draws: triangles, curves) and the subject export (the "
                             "metadata --point-box may scale by), as for serve")
    parser.add_argument("-o", "--output", required=True, metavar="OUTPUT", help="consensus CSV to write")
    parser.add_argument("--links", metavar="PATH", help="links CSV to write (default: OUTPUT with .links.csv)")
    parser.add_argument("--overwrite", action="store_true", help="replace OUTPUT and the links file if they exist")
    add_project_arguments(parser, consensus_file=False, detections_file=False)


def links_path(output: Path) -> Path:
    """OUTPUT.csv -> OUTPUT.links.csv (any other name gets .links.csv appended)."""
    stem = output.name[: -len(".csv")] if output.name.lower().endswith(".csv") else output.name
    return output.with_name(f"{stem}.links.csv")


def run(args) -> int:
    from data_loaders.writers import to_safe_csv
    from project import load_project
    from project.stored import computed
    from zoolens.project_arguments import project_options

    output = Path(args.output)
    links_output = Path(args.links) if args.links else links_path(output)
    for path in (output, links_output):
        if path.exists() and not args.overwrite:
            raise ValueError(f"{path} exists; pass --overwrite to replace it")

    project = load_project(args.paths, **project_options(args))
    for report in project.reports:
        print(report.summary(), file=sys.stderr)

    output.parent.mkdir(parents=True, exist_ok=True)
    links_output.parent.mkdir(parents=True, exist_ok=True)
    # The method's own table, without the statistics the project adds for the views.
    to_safe_csv(project.consensus[project.consensus_columns], output)
    to_safe_csv(computed(project.links), links_output)
    report = project.aggregation_run["report"]
    made = [f"{report[key]} consensus {noun}" for key, noun in (("consensus_boxes", "boxes"), ("consensus_points", "points"))
            if key in report]
    unusable = " and ".join(f"{report[key]} {what}" for key, what in (("marks_without_box", "without a usable box"),
                                                                      ("marks_without_point", "not points"))
                            if key in report)
    # Each row's source names its method; a mixed export has one per kind of mark.
    used = sorted({json.loads(source)["method"] for source in project.consensus["source"].dropna().unique()})
    method = " and ".join(used) or args.method
    print(
        f"{' and '.join(made)} on {report.get('subjects', 0)} subjects from "
        f"{report.get('marks', 0)} marks ({report.get('linked_marks', 0)} linked, {unusable}) by method {method}\n"
        f"wrote {output} and {links_output}",
        file=sys.stderr,
    )
    marks = project.marks
    points = int(computed(((marks["kind"] == "point") & marks["width"].isna()).sum())) if "kind" in marks else 0
    if points and "consensus_points" not in report and not args.point_box:
        print(f"{points} point marks have no box: pass --point-box SIDE (pixels) or --point-box "
              f'"FACTOR*METADATA_KEY" to turn clicks into boxes, or --method point for consensus points',
              file=sys.stderr)
    return 0
