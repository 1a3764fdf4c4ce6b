"""The loading options every command that builds a project takes, with the same names and defaults.

``serve``, ``demo``, ``aggregate`` and ``export`` add them with `add_project_arguments`
and turn them into `project.load_project`'s keyword arguments with `project_options`,
so a project is built the same way whichever command builds it (and as
``Explorer.from_paths`` builds it from the same keywords).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

#: ``--method`` value that makes no consensus (the marks are shown alone).
NO_METHOD = "none"


def picture_size(text: str) -> tuple[float, float]:
    """``WIDTHxHEIGHT`` in pixels, e.g. ``424x424``."""
    try:
        width, height = (float(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT in pixels, e.g. 424x424, got {text!r}") from None
    if not (width > 0 and height > 0):
        raise argparse.ArgumentTypeError(f"picture size must be positive, got {text!r}")
    return width, height


def image_host(text: str) -> str:
    """A host name, or ``name:port``, as `data_loaders.images.ImageStore` allows it (lower case)."""
    from urllib.parse import urlsplit

    host = text.strip().lower()
    try:
        parts = urlsplit(f"//{host}")
        port = parts.port  # a port that is no number raises here
    except ValueError:
        parts, port = None, None
    if not host or parts is None or parts.hostname is None or "@" in host or any(c in host for c in "/?#"):
        raise argparse.ArgumentTypeError(f"expected a host name or name:port, e.g. images.example.org or "
                                         f"images.example.org:8080, got {text!r}")
    return parts.hostname if port is None else f"{parts.hostname}:{port}"


def add_project_arguments(parser, consensus_file: bool = True, allow_no_method: bool = False,
                          detections_file: bool = True, store_folder: bool = True) -> None:
    """Add the options that say how to build the project.

    ``consensus_file`` offers ``--consensus FILE`` (the consensus read instead of made);
    ``allow_no_method`` lets ``--method none`` show the marks without a consensus;
    ``detections_file`` offers ``--detections FILE`` (a machine's detections, compared with the consensus);
    ``store_folder`` offers ``--store FOLDER`` (the project kept in a partitioned store, `project.stored`).
    """
    from consensus.base import AUTO_METHOD, DEFAULT_METHODS, methods
    from project import DEFAULT_METHOD

    rows = parser.add_argument_group("which classifications")
    rows.add_argument("--workflow", type=int, metavar="ID",
                      help="keep only this workflow's classifications (required when the export holds several)")
    rows.add_argument("--workflow-version", metavar="V", help='keep only this version, exact ("13.10") or major ("13")')
    rows.add_argument("--task", action="append", metavar="T",
                      help="drawing task to take marks from, e.g. T0 (repeatable; default every drawing task)")
    rows.add_argument("--point-box", metavar="SPEC",
                      help='turn point clicks into square boxes: a side in pixels, or "2.5*#fwhmImagePix"')
    boxes = parser.add_argument_group("consensus")
    if consensus_file:
        boxes.add_argument("--consensus", metavar="FILE",
                           help="read the consensus from this file (any aggregation output zoolens reads) "
                                "instead of making it")
    if detections_file:
        boxes.add_argument("--detections", type=Path, metavar="FILE",
                           help="a machine's detections to compare with the consensus: a CSV, Parquet or FITS "
                                "table (subject_id, x, y, score; width, height, label) or COCO results JSON")
    parser.set_defaults(no_method_allowed=allow_no_method)
    names = (", ".join(methods()) + f", or {AUTO_METHOD}: {DEFAULT_METHODS['point']} for point clicks, "
             f"{DEFAULT_METHODS['box']} for boxes and other shapes"
             + (f"; {NO_METHOD} to show the marks alone" if allow_no_method else ""))
    boxes.add_argument("--method", default=DEFAULT_METHOD,
                       help=f"make the consensus with this method ({names}; default {DEFAULT_METHOD})")
    boxes.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                       help="a method parameter, e.g. --param min_vote_fraction=0.3 (repeatable; values are JSON)")
    images = parser.add_argument_group("images and sky positions")
    images.add_argument("--images", "--image-root", dest="images", action="append", type=Path, metavar="DIR",
                        help="folder of subject images; image paths in the data must lie inside one "
                             "(repeatable; default the given files' folders)")
    images.add_argument("--image-host", dest="image_hosts", action="append", type=image_host, metavar="HOST",
                        help="also fetch subject pictures from this host (a name, or name:port), as from the "
                             "Zooniverse upload hosts, which stay allowed (repeatable)")
    images.add_argument("--fits-column", metavar="NAME",
                        help="subjects column holding each subject's FITS image path, relative to the first "
                             "--images folder")
    images.add_argument("--pixel-scale", metavar="ARCSEC",
                        help="arcseconds per picture pixel (or a subjects column name), for RA/Dec without a WCS")
    images.add_argument("--picture-size", type=picture_size, metavar="WxH",
                        help="size in pixels of the pictures volunteers saw, where the subjects do not say")
    scale = parser.add_argument_group("on a Dask cluster")
    scale.add_argument("--scheduler", metavar="ADDRESS",
                       help="make the consensus on a Dask cluster: a scheduler's address (tcp://host:8786), or "
                            "'local' for worker processes on this machine (default: in this process); with "
                            "--store, the served project's whole-table work (agreement plots) runs there too")
    if store_folder:
        scale.add_argument("--store", type=Path, metavar="FOLDER",
                           help="keep the project in this store folder, partitioned by subject, and use it from there: "
                                "the marks stay on disk (or on the cluster), read one subject at a time. A folder "
                                "holding a store is opened as it is, without the files (delete it to rebuild); "
                                "otherwise the files are read and the store is written there. Workers of a "
                                "--scheduler cluster must see the folder at the same path")
    scale.add_argument("--partitions", type=int, metavar="N",
                       help="with --scheduler, split the project into N parts by subject (default two per worker)")


def project_options(args) -> dict:
    """`project.load_project`'s keyword arguments from the options of `add_project_arguments`."""
    consensus = getattr(args, "consensus", None)
    if args.param and consensus is not None:
        raise ValueError("--param sets the parameters of --method; it cannot change a --consensus file")
    if args.method == NO_METHOD and not args.no_method_allowed:
        raise ValueError(f"--method {NO_METHOD}: this command needs a consensus; give a method or --consensus")
    if args.param and args.method == NO_METHOD:
        raise ValueError(f"--param sets the parameters of --method; --method {NO_METHOD} makes no consensus")
    method_params = parse_params(args.param)
    from data_loaders.images import DEFAULT_ALLOWED_HOSTS
    from consensus.base import AUTO_METHOD, make_aggregator  # the package registers its methods first

    if args.method not in (None, NO_METHOD, AUTO_METHOD):
        # A wrong method name or parameter is said before the export loads, not after it.
        make_aggregator(args.method, **method_params)
    if args.partitions is not None and (args.partitions < 1 or args.scheduler is None):
        raise ValueError("--partitions N needs --scheduler and N of 1 or more")
    if args.images:
        for folder in args.images:
            if not folder.is_dir():
                raise FileNotFoundError(f"{folder}: --images must be a folder")
    detections = getattr(args, "detections", None)
    if detections is not None and not detections.is_file():
        raise FileNotFoundError(f"--detections {detections}: no such file")
    options = {
        "consensus": consensus,
        "detections": detections,
        "method": None if args.method == NO_METHOD else args.method,
        "method_params": method_params,
        "image_roots": [folder.resolve() for folder in args.images] if args.images else None,
        "image_hosts": (*DEFAULT_ALLOWED_HOSTS, *args.image_hosts) if args.image_hosts else None,
        "fits_column": args.fits_column,
        "pixel_scale": number_or_text(args.pixel_scale),
        "picture_size": args.picture_size,
        "workflow_id": args.workflow,
        "workflow_version": args.workflow_version,
        "tasks": args.task,
        "point_box": number_or_text(args.point_box),
        "scheduler": args.scheduler,
        "partitions": args.partitions,
        "store": getattr(args, "store", None),
    }
    return {name: value for name, value in options.items() if value not in (None, {}, [])}


def parse_params(pairs: list[str]) -> dict:
    """``NAME=VALUE`` strings -> parameters; values are JSON (numbers, true/false) or else text."""
    params = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--param {pair!r} is not NAME=VALUE "
                             "(expected NAME=VALUE, e.g. --param min_vote_fraction=0.3)")
        try:
            params[name.strip()] = json.loads(value)
        except json.JSONDecodeError:
            params[name.strip()] = value  # plain text, e.g. estimator=median
    return params


def number_or_text(text: str | None):
    """A number when ``text`` is one, else the text (a metadata rule or a column name, checked when used)."""
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return text
