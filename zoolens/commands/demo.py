"""Serve the dashboard on the built-in demo project.

The demo is a synthetic Galaxy Zoo: Clump Scout-like project made by zoolens itself:
60 galaxy images with clumps (PNG and FITS with a WCS), a classification export in both
Zooniverse front-end formats with the dirt real exports carry, subject and workflow
exports, the true clump boxes, and a simulated machine's detections (--detections for others),
compared with the volunteers in the Machine tab; the consensus is made by zoolens' IoU method (--method). It is
generated on first use (a few seconds) into
the zoolens cache folder (--folder to choose another). No browser opens unless --show.
"""

from __future__ import annotations

from .serve import add_server_arguments, open_reviews, serve_project

HELP = "serve the dashboard on the built-in demo project (generated on first use)"


def add_arguments(parser) -> None:
    from zoolens.project_arguments import add_project_arguments

    parser.add_argument("--folder", metavar="DIR",
                        help="where the demo files are (generated there if missing; default the zoolens cache)")
    add_project_arguments(parser, allow_no_method=True)
    add_server_arguments(parser)


def run(args) -> int:
    from pathlib import Path

    from zoolens import demo
    from zoolens.project_arguments import project_options

    reviews = open_reviews(args)
    options = project_options(args)
    folder = Path(args.folder) if args.folder else demo.default_demo_folder()

    def build(progress):
        print(f"zoolens: demo files in {folder}")  # by the server that loads them
        progress.plan(1)
        progress.stage("Preparing the demo files (generated on first start only)")
        # The demo's workflow, version, FITS images, images and detections unless the options name others.
        return demo.load_demo(demo.ensure_demo(folder), progress=progress, **options)

    return serve_project(build, args, key="demo", title="built-in demo", reviews=reviews)
