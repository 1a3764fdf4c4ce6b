"""Compare a machine's detections with the volunteers' consensus: precision, recall, F1, AP and counts.

DETECTIONS is a detector's output: a CSV, Parquet or FITS table (subject_id, x, y, score; width,
height, angle, label when it has them) or COCO results JSON (image_id, category_id, bbox, score;
--image-subjects maps COCO image ids to subject ids). The consensus is taken or computed as
`zoolens export` does: read from --consensus FILE, or made from the classification export
--classifications with --method and --param.

Only subjects the volunteers classified (in the workflow and version kept) count, so a detection
on a subject no volunteer saw is not "machine-only". A detection matches a consensus box at IoU
--min-iou or more, a point detection a consensus point within --max-distance pixels, highest
scores first as COCO's evaluation matches them; detections scoring under --score-threshold are
left out of the counts. The average precision (COCO's 101-point interpolation) uses every
detection, whatever the threshold.

--reviews PATH_OR_URL compares with the reviewed catalogue instead: the decisions a team made in
the dashboard (`zoolens serve --reviews ...`) on this same consensus laid over it (rejected boxes
left out, redrawn boxes at their new place, boxes reviewers added included).

Prints the numbers; --json prints the same as one JSON object. The app's Machine tab shows the
same numbers, from the same functions (`project.machine`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HELP = "compare a machine's detections with the consensus: precision, recall, F1, AP and counts"


def add_arguments(parser) -> None:
    from consensus.matching import DEFAULT_MAX_DISTANCE, DEFAULT_MIN_IOU
    from zoolens.project_arguments import add_project_arguments

    parser.add_argument("detections_file", type=Path, metavar="DETECTIONS",
                        help="the detections: CSV, Parquet or FITS table, or COCO results JSON")
    parser.add_argument("--classifications", type=Path, required=True, metavar="EXPORT",
                        help="the Zooniverse classification export CSV (optionally .gz)")
    parser.add_argument("--image-subjects", type=Path, metavar="FILE",
                        help="for COCO results: a CSV (image_id, subject_id) or JSON object mapping COCO image "
                             "ids to subject ids (default: image ids are subject ids)")
    comparison = parser.add_argument_group("comparison")
    comparison.add_argument("--score-threshold", type=float, default=0.5, metavar="S",
                            help="count detections scoring at least S (default 0.5)")
    comparison.add_argument("--min-iou", type=float, default=DEFAULT_MIN_IOU, metavar="IOU",
                            help=f"IoU a detection needs with a consensus box to match it (default {DEFAULT_MIN_IOU})")
    comparison.add_argument("--max-distance", type=float, default=DEFAULT_MAX_DISTANCE, metavar="PIXELS",
                            help="distance within which a point detection matches a consensus point "
                                 f"(default {DEFAULT_MAX_DISTANCE:g})")
    comparison.add_argument("--reviews", metavar="PATH_OR_URL",
                            help="compare with the reviewed catalogue: the decisions in this review store (the "
                                 "SQLite file or database URL the dashboard was served with) applied to the "
                                 "consensus")
    comparison.add_argument("--json", action="store_true", help="print the numbers as JSON")
    add_project_arguments(parser, detections_file=False, store_folder=False)


def run(args) -> int:
    from data_loaders import FormatError, read
    from project import load_project
    from project.machine import classified_subjects, compare_detections
    from project.reviews import ReviewError
    from zoolens.commands.export import open_review_store
    from zoolens.project_arguments import project_options

    options = project_options(args)
    detections_file = args.detections_file
    if not detections_file.exists():
        raise FileNotFoundError(f"{detections_file}: no such file (the detections)")
    try:
        loaded = read(detections_file, format="detections",
                      **({"image_subjects": args.image_subjects} if args.image_subjects else {}))
    except FormatError as error:
        raise ValueError(str(error)) from None
    project = load_project([args.classifications], **options)
    workflows = project.reports[0].counts.get("workflows", {})
    if args.workflow is None and len(workflows) > 1:
        raise ValueError(f"{args.classifications} holds workflows {', '.join(sorted(workflows))}: "
                         "choose one with --workflow")
    store = open_review_store(args.reviews, project, "compare") if args.reviews is not None else None
    try:
        comparison = compare_detections(loaded.detections, project, reviews=store, min_iou=args.min_iou,
                                        max_distance=args.max_distance)
    except ReviewError as error:
        raise ValueError(f"--reviews {args.reviews}: {error}") from None
    finally:
        if store is not None:
            store.close()
    summary = comparison.summary(args.score_threshold)
    summary["detections_file"] = str(detections_file)
    summary["detections_outside_classified_subjects"] = int(
        (~loaded.detections["subject_id"].isin(classified_subjects(project))).sum())
    summary["consensus_source"] = project.consensus_source
    summary["compared_with"] = comparison.against
    if store is not None:
        summary["reviews"] = args.reviews

    for report in (loaded.report, *project.reports):
        if report.rows_skipped:
            print(f"{report.source}: {report.rows_skipped:,} rows skipped ({'; '.join(report.skipped)})",
                  file=sys.stderr)
    if args.json:
        # JSON has no NaN: an undefined number (precision without detections) is null.
        print(json.dumps({key: None if value != value else value for key, value in summary.items()}, indent=2))
        return 0
    print(_text(summary))
    return 0


def _number(value: float) -> str:
    return "undefined" if value != value else f"{value:.3f}"


def _text(summary: dict) -> str:
    return "\n".join([
        f"{summary['detections_file']}: {summary['detections']:,} detections scoring {summary['score_threshold']:g} "
        f"or more, {summary['consensus']:,} boxes and points of the {summary['compared_with']}, "
        f"on {summary['subjects']:,} subjects",
        f"  precision {_number(summary['precision'])}  recall {_number(summary['recall'])}  "
        f"F1 {_number(summary['f1'])}  AP {_number(summary['average_precision'])} (COCO, IoU {summary['min_iou']:g})",
        f"  matched: {summary['true_positives']:,}  machine only: {summary['machine_only']:,}  "
        f"human only: {summary['human_only']:,}",
        f"  detections on subjects no volunteer classified, left out: "
        f"{summary['detections_outside_classified_subjects']:,}",
    ])
