"""Serve the dashboard on the built-in demo project.

The demo is a synthetic Galaxy Zoo: Clump Scout-like project made by zoolens itself:
60 galaxy images with clumps (PNG and FITS with a WCS), a classification export in both
Zooniverse front-end formats with the dirt real exports carry, subject and workflow
exports, and the true clump boxes; the consensus is made by zoolens' IoU method. It is
generated on first use (a few seconds) into
the zoolens cache folder (--folder to choose another). No browser opens unless --show.
"""

from __future__ import annotations

from .serve import add_server_arguments, open_reviews, serve_project

HELP = "serve the dashboard on the built-in demo project (generated on first use)"


def add_arguments(parser) -> None:
    parser.add_argument("--folder", metavar="DIR",
                        help="where the demo files are (generated there if missing; default the zoolens cache)")
    add_server_arguments(parser)


def run(args) -> int:
    from pathlib import Path

    from dashboard.data_store import load_project
    from zoolens import demo

    reviews = open_reviews(args)
    folder = Path(args.folder) if args.folder else demo.default_demo_folder()
    print(f"zoolens: demo files in {folder}")

    def build(progress):
        progress.plan(1)
        progress.stage("Preparing the demo files (generated on first start only)")
        files = demo.ensure_demo(folder)
        return load_project([files.classifications, files.subjects, files.workflows],
                            workflow_id=demo.WORKFLOW_ID, workflow_version=demo.WORKFLOW_VERSION,
                            image_roots=[files.folder], title="built-in demo", method="iou", progress=progress)

    return serve_project(build, args, key="demo", title="built-in demo", reviews=reviews)
