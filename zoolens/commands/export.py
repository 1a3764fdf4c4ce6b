"""Write a catalogue of consensus boxes (CSV, ECSV, FITS or VOTable) from a classification export.

Reads the classification export EXPORT (one workflow: --workflow, optionally --workflow-version),
takes consensus boxes from --consensus FILE (a panoptes_aggregation reducer CSV, a Caesar
reduction export or BoxAggregator output) or computes them with --method and --param, and writes
them to --output in the format its extension names (.csv, .ecsv, .fits, .xml/.vot) or --format.

RA/Dec per box: from each subject's FITS image WCS when --images DIR holds it (<subject_id>.fits,
the path in the subjects column --fits-column, or a FITS frame location), else from the subject's
ra/dec metadata (--subjects) and --pixel-scale, assuming a north-up, east-left tangent-plane
cutout centred on the subject. Without either, the catalogue has no RA/Dec and says why.

Every catalogue records its provenance: the input files with their SHA-256, the aggregation
method and parameters, the filters, the zoolens version and time, row counts and how RA/Dec were
found (CSV: a NAME.provenance.json beside it; ECSV: its header; FITS: header keywords, HISTORY and a
PROVENANCE extension; VOTable: INFO elements). Text cells starting with = + - @ tab or CR are
neutralised in CSV and ECSV so spreadsheets do not run them. --marks adds the raw marks, each with
the consensus box it supports (NAME.marks.csv, or a MARKS table).

--reviews PATH_OR_URL writes the reviewed catalogue instead: the decisions a team made in the
dashboard (`zoolens serve --reviews ...`) on this same consensus laid over it: rejected boxes left
out (or kept with --keep-rejected), redrawn boxes at their new place with the aggregated geometry
in original_x ..., boxes reviewers added included, and review_status, reviewed_by, reviewed_at and
subject_flagged columns; the provenance names the review store and counts the decisions.
"""

from __future__ import annotations

import json
from pathlib import Path

HELP = "write consensus boxes with RA/Dec and provenance to CSV, ECSV, FITS or VOTable"


def _picture_size(text: str) -> tuple[float, float]:
    import argparse

    try:
        width, height = (float(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT in pixels, e.g. 424x424, got {text!r}") from None
    if not (width > 0 and height > 0):
        raise argparse.ArgumentTypeError(f"picture size must be positive, got {text!r}")
    return width, height


def add_arguments(parser) -> None:
    parser.add_argument("export", type=Path, metavar="EXPORT",
                        help="the Zooniverse classification export CSV (optionally .gz)")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="PATH",
                        help="the catalogue to write: .csv, .csv.gz, .ecsv, .fits or .xml/.vot")
    parser.add_argument("--format", choices=("csv", "ecsv", "fits", "votable"),
                        help="write this format whatever the extension")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    selection = parser.add_argument_group("which classifications")
    selection.add_argument("--workflow", type=int, metavar="ID",
                           help="the workflow to use (required when the export holds several)")
    selection.add_argument("--workflow-version", metavar="V",
                           help='only this version, exact ("13.10") or major ("13")')
    selection.add_argument("--tasks", nargs="+", metavar="TASK", help="drawing tasks to use (default: all)")
    selection.add_argument("--point-box", metavar="SPEC",
                           help='turn point clicks into square boxes: a side in pixels or "2.5*#fwhmImagePix"')
    boxes = parser.add_argument_group("consensus boxes")
    source = boxes.add_mutually_exclusive_group()
    source.add_argument("--consensus", type=Path, metavar="FILE",
                        help="read consensus boxes from this aggregation output instead of computing them")
    source.add_argument("--method", default="iou",
                        help="aggregation method to compute consensus boxes with (default iou)")
    boxes.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                       help="an aggregation parameter, e.g. --param min_votes=3 (repeatable; values are JSON)")
    boxes.add_argument("--marks", action="store_true",
                       help="also export the raw marks with the consensus box each supports")
    review = parser.add_argument_group("review decisions")
    review.add_argument("--reviews", metavar="PATH_OR_URL",
                        help="apply the decisions in this review store (the SQLite file or database URL "
                             "the dashboard was served with) to the consensus: the reviewed catalogue")
    review.add_argument("--keep-rejected", action="store_true",
                        help="with --reviews, keep rejected boxes (review_status 'rejected') instead of "
                             "leaving them out")
    sky = parser.add_argument_group("sky positions")
    sky.add_argument("--subjects", type=Path, metavar="FILE",
                     help="the Zooniverse subject export (ra/dec metadata, picture locations)")
    sky.add_argument("--images", type=Path, metavar="DIR",
                     help="folder of subject images; image paths found in the data must lie inside it")
    sky.add_argument("--fits-column", metavar="NAME",
                     help="subjects column holding each subject's FITS image path, relative to --images")
    sky.add_argument("--pixel-scale", metavar="ARCSEC",
                     help="arcseconds per picture pixel (or a subjects column name), for RA/Dec "
                          "without a WCS")
    sky.add_argument("--picture-size", type=_picture_size, metavar="WxH",
                     help="size in pixels of the pictures volunteers saw, where the subjects do not say")


def run(args) -> int:
    import sys

    import data_loaders
    from data_loaders import writers

    if args.param and args.consensus:
        raise ValueError("--param sets the parameters of --method; it cannot change a --consensus file")
    try:
        output_format = writers.writer_format(args.output, args.format)
    except data_loaders.FormatError as error:
        raise ValueError(str(error)) from None
    if args.output.exists() and not args.overwrite:
        # Said before the export is read and aggregated; companion files are checked when written.
        raise ValueError(f"{args.output} already exists; pass --overwrite to replace it, or choose another name")

    sources: dict[str, list[Path]] = {"classifications": [args.export]}
    reports = []
    loaded = data_loaders.read_classifications(args.export, workflow_id=args.workflow,
                                               workflow_version=args.workflow_version, tasks=args.tasks,
                                               point_box=_number_or_text(args.point_box))
    reports.append(loaded.report.to_dict())
    workflows = loaded.report.counts.get("workflows", {})
    if args.workflow is None and len(workflows) > 1:
        raise ValueError(f"{args.export} holds workflows {', '.join(sorted(workflows))}: choose one with --workflow")
    marks, classifications = loaded.marks, loaded.classifications
    filters = {key: value for key, value in {
        "workflow_id": args.workflow, "workflow_version": args.workflow_version, "tasks": args.tasks,
        "point_box": args.point_box}.items() if value is not None}

    tables, links_note = _consensus_tables(args, marks, classifications, sources, reports)
    tables["marks"] = marks

    subjects = None
    if args.subjects is not None:
        sources["subjects"] = [args.subjects]
        subjects_result = data_loaders.read_subjects(args.subjects, workflow_id=args.workflow)
        reports.append(subjects_result.report.to_dict())
        subjects = subjects_result.subjects
    wcs, image_outcomes = None, None
    if args.images is not None:
        if not args.images.is_dir():
            raise FileNotFoundError(f"{args.images}: --images must be a folder")
        subjects, wcs, image_outcomes, image_files = _images(args, subjects, tables["consensus"])
        sources["image"] = image_files
    if args.picture_size is not None and subjects is not None:
        subjects = _with_picture_size(subjects, args.picture_size)
    pixel_scale = _number_or_text(args.pixel_scale)

    extra = {"load_reports": reports, "aggregation_run": links_note}
    if args.reviews is not None:
        tables["consensus"], extra["review"] = _reviewed(args, tables["consensus"])
    if image_outcomes is not None:
        extra["images"] = {"folder": str(args.images), "subjects": image_outcomes}
    export = writers.prepare_export(tables, include_marks=args.marks, subjects=subjects, wcs=wcs,
                                    pixel_scale=pixel_scale, sources=sources, filters=filters, extra=extra)
    try:
        files = writers.write(export, args.output, output_format, overwrite=args.overwrite)
    except FileExistsError as error:
        raise ValueError(str(error)) from None  # the user's to fix: reported without a traceback

    rows, sky = export.provenance["rows"], export.provenance["sky"]
    print(f"wrote {', '.join(str(file) for file in files)}")
    print(f"  {rows['consensus']} consensus boxes on {rows['subjects']} subjects"
          + (f", {rows['marks']} marks" if "marks" in rows else ""))
    print(f"  RA/Dec: {sky['method']}" + (f", boxes by route {sky['boxes']}" if "boxes" in sky else ""))
    if "review" in extra:
        review = extra["review"]
        actions = ", ".join(f"{count} {action}" for action, count in review["by_action"].items()) or "none"
        print(f"  reviewed: {review['in_effect']} decisions in effect of {review['decisions']} on consensus run "
              f"{review['consensus_source']} ({actions})")
    for reason, count in sky.get("subjects_without_position", {}).items():
        print(f"  {count} subjects without RA/Dec: {reason}")
    for report in reports:
        if report.get("rows_skipped"):
            print(f"  {report['source']}: {report['rows_skipped']} rows skipped "
                  f"({'; '.join(report['skipped'])})", file=sys.stderr)
    return 0


def _number_or_text(text: str | None):
    """A number when ``text`` is one, else the text (a metadata rule or a column name, checked when used)."""
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return text


def _consensus_tables(args, marks, classifications, sources, reports) -> tuple[dict, dict]:
    """Consensus boxes and links: read from --consensus (links by matching) or computed with --method."""
    import consensus
    import data_loaders

    if args.consensus is not None:
        sources["consensus"] = [args.consensus]
        result = data_loaders.read(args.consensus)
        reports.append(result.report.to_dict())
        boxes = getattr(result, "tables", {}).get("consensus")
        if boxes is None:
            raise ValueError(f"{args.consensus}: holds no consensus boxes (read as {result.report.format}); "
                             "give a reducer, Caesar reduction or BoxAggregator output")
        # The file's own links point at its extracts; the export's marks are linked by matching.
        links = consensus.match(marks, boxes) if len(marks) else None
        return ({"consensus": boxes, "links": links},
                {"made_by": "consensus.match (marks of EXPORT against the boxes of --consensus)"})
    params = dict(_parameter(text) for text in args.param)
    result = consensus.aggregate(marks, classifications, method=args.method, **params)
    return ({"consensus": result.consensus, "links": result.links},
            {"made_by": f"consensus.aggregate(method={args.method!r})", "report": result.report})


def _reviewed(args, consensus_boxes):
    """The consensus with the review decisions of --reviews applied, and the review's provenance."""
    import sys

    from dashboard.export import reviewed_consensus
    from dashboard.reviews import ReviewError, consensus_fingerprint, open_store

    if "://" not in args.reviews and not Path(args.reviews).is_file():
        raise FileNotFoundError(f"--reviews {args.reviews}: no such review store (give the file or URL the "
                                "dashboard was served with)")
    source = consensus_fingerprint(consensus_boxes)
    try:
        with open_store(args.reviews) as store:
            catalogue, record = reviewed_consensus(store, consensus_boxes, source,
                                                   rejected="keep" if args.keep_rejected else "drop")
            others = store.history()["consensus_source"]
    except ReviewError as error:
        raise ValueError(f"--reviews {args.reviews}: {error}") from None
    others = sorted(set(others) - {source})
    if record["decisions"] == 0 and others:
        print(f"zoolens export: warning: {args.reviews} holds no decisions on this consensus (run {source}), only "
              f"on {', '.join(others)}: was the dashboard served on another consensus?", file=sys.stderr)
    return catalogue, record


def _parameter(text: str) -> tuple[str, object]:
    name, separator, value = text.partition("=")
    if not separator or not name.strip():
        raise ValueError(f"--param {text!r}: expected NAME=VALUE, e.g. min_votes=3")
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = value  # plain text, e.g. estimator=median
    return name.strip(), parsed


def _images(args, subjects, boxes):
    """WCS of each subject's FITS image and picture sizes, read only inside --images."""
    import pandas as pd

    from data_loaders.celestial import picture_sizes, subject_wcs
    from data_loaders.images import ImageStore

    store = ImageStore(roots=(args.images,))
    if subjects is None:
        # No subject export: look for <subject_id>.fits for the subjects that have boxes.
        subjects = pd.DataFrame({"subject_id": pd.unique(boxes["subject_id"]), "locations": None,
                                 "width": float("nan"), "height": float("nan")})
    else:
        subjects = picture_sizes(subjects, store)
    wcs, files, outcomes = subject_wcs(subjects, store, fits_column=args.fits_column)
    return subjects, wcs, outcomes, files


def _with_picture_size(subjects, size):
    subjects = subjects.copy()
    subjects["width"] = subjects["width"].fillna(size[0])
    subjects["height"] = subjects["height"].fillna(size[1])
    return subjects
