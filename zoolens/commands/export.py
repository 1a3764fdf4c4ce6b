"""Write a catalogue of consensus boxes (CSV, ECSV, FITS or VOTable) from a classification export.

Reads the classification export (one workflow: --workflow, optionally --workflow-version) and the
subject and workflow exports given beside it (PATH..., as for serve), takes consensus boxes from
--consensus FILE (a panoptes_aggregation reducer CSV, a Caesar reduction export or BoxAggregator
output) or computes them with --method and --param, and writes them to --output in the format its
extension names (.csv, .ecsv, .fits, .xml/.vot) or --format.

RA/Dec per box: from each subject's FITS image WCS when --images DIR holds it (<subject_id>.fits,
the path in the subjects column --fits-column, or a FITS frame location), else from the subject's
ra/dec metadata (the subject export) and --pixel-scale, assuming a north-up, east-left tangent-plane
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

from pathlib import Path

HELP = "write consensus boxes with RA/Dec and provenance to CSV, ECSV, FITS or VOTable"


def add_arguments(parser) -> None:
    from zoolens.project_arguments import add_project_arguments

    parser.add_argument("paths", type=Path, nargs="+", metavar="PATH",
                        help="the Zooniverse classification export CSV (optionally .gz) and, optionally, the "
                             "subject export (ra/dec metadata, picture locations) and the workflow export (what "
                             "each tool draws), as for serve")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="PATH",
                        help="the catalogue to write: .csv, .csv.gz, .ecsv, .fits or .xml/.vot")
    parser.add_argument("--format", choices=("csv", "ecsv", "fits", "votable"),
                        help="write this format whatever the extension")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.add_argument("--marks", action="store_true",
                        help="also export the raw marks with the consensus box each supports")
    add_project_arguments(parser)
    parser.add_argument("--samp", action="store_true",
                        help="send the catalogue to the SAMP hub (TOPCAT, Aladin) once written")
    review = parser.add_argument_group("review decisions")
    review.add_argument("--reviews", metavar="PATH_OR_URL",
                        help="apply the decisions in this review store (the SQLite file or database URL "
                             "the dashboard was served with) to the consensus: the reviewed catalogue")
    review.add_argument("--keep-rejected", action="store_true",
                        help="with --reviews, keep rejected boxes (review_status 'rejected') instead of "
                             "leaving them out")


def run(args) -> int:
    import sys

    import data_loaders
    from dashboard.subject_marks import consensus_kinds
    from data_loaders import writers
    from project import load_project
    from project.export import write_catalogue
    from project.reviews import ReviewError
    from project.selection import Selection
    from zoolens.project_arguments import project_options

    options = project_options(args)
    try:
        output_format = writers.writer_format(args.output, args.format)
    except data_loaders.FormatError as error:
        raise ValueError(str(error)) from None
    if args.output.exists() and not args.overwrite:
        # Said before the export is read and aggregated; companion files are checked when written.
        raise ValueError(f"{args.output} already exists; pass --overwrite to replace it, or choose another name")

    project = load_project(args.paths, **options)
    export_report = next(report for report in project.reports if report.format == "classifications")
    workflows = export_report.counts.get("workflows", {})
    if args.workflow is None and len(workflows) > 1:
        raise ValueError(f"{export_report.source} holds workflows {', '.join(sorted(workflows))}: choose one with "
                         "--workflow")
    store = open_review_store(args.reviews, project, "export") if args.reviews is not None else None
    try:
        files, export = write_catalogue(project, Selection(project=project), args.output, output_format,
                                        overwrite=args.overwrite, include_marks=args.marks, reviews=store,
                                        rejected="keep" if args.keep_rejected else "drop")
    except FileExistsError as error:
        raise ValueError(str(error)) from None  # the user's to fix: reported without a traceback
    except ReviewError as error:
        raise ValueError(f"--reviews {args.reviews}: {error}") from None
    finally:
        if store is not None:
            store.close()

    rows, sky = export.provenance["rows"], export.provenance["sky"]
    print(f"wrote {', '.join(str(file) for file in files)}")
    marks = "points" if consensus_kinds(project).only_points else "boxes"
    print(f"  {rows['consensus']} consensus {marks} on {rows['subjects']} subjects"
          + (f", {rows['marks']} marks" if "marks" in rows else ""))
    print(f"  RA/Dec: {sky['method']}" + (f", {marks} by route {sky['boxes']}" if "boxes" in sky else ""))
    if "review" in export.provenance:
        review = export.provenance["review"]
        actions = ", ".join(f"{count} {action}" for action, count in review["by_action"].items()) or "none"
        print(f"  reviewed: {review['in_effect']} decisions in effect of {review['decisions']} on consensus run "
              f"{review['consensus_source']} ({actions})")
    if args.samp:
        from project.samp import SampError, SampLink

        try:
            with SampLink() as link:
                tools = link.deliver_catalogue(files[0], export.consensus["subject_id"], name=args.output.name)
        except SampError as error:
            raise ValueError(f"--samp: {error}") from None
        print(f"  sent {files[0]} to the SAMP hub: loaded by {', '.join(tools)}" if tools else
              f"  {files[0]} not sent: no tool on the SAMP hub takes catalogues (start TOPCAT or Aladin)")
    for reason, count in sky.get("subjects_without_position", {}).items():
        print(f"  {count} subjects without RA/Dec: {reason}")
    for report in project.reports:
        if report.rows_skipped:
            print(f"  {report.source}: {report.rows_skipped} rows skipped ({'; '.join(report.skipped)})",
                  file=sys.stderr)
    return 0


def open_review_store(location: str, project, command: str):
    """The review store of ``--reviews location``; a warning when it holds decisions on other consensus runs only."""
    import sys

    from project.reviews import ReviewError, open_store

    if "://" not in location and not Path(location).is_file():
        raise FileNotFoundError(f"--reviews {location}: no such review store (give the file or URL the "
                                "dashboard was served with)")
    source = project.consensus_source
    try:
        store = open_store(location)
        runs = set(store.history()["consensus_source"])
    except ReviewError as error:
        raise ValueError(f"--reviews {location}: {error}") from None
    if runs and source not in runs:
        print(f"zoolens {command}: warning: {location} holds no decisions on this consensus (run {source}), only "
              f"on {', '.join(sorted(runs))}: was the dashboard served on another consensus?", file=sys.stderr)
    return store
