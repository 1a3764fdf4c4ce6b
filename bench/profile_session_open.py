"""Profile: where the server CPU of opening a session goes, on one or more source trees side by side.

Each tree runs in a fresh interpreter on the built-in demo: ``--warm`` sessions are opened first
(the first pays for imports and for what the process makes once per project), then ``--opens``
sessions are timed without the profiler and as many under cProfile. A session is opened as the
server does: `create_app` into a new Bokeh document, which is then serialised whole (what the
browser receives). Printed per tree: the CPU seconds per open (median) and the functions with the
most cumulative time.

    python bench/profile_session_open.py
    python bench/profile_session_open.py --tree /tmp/before .  # an older checkout beside this one
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from profile_switch import ROOT, run_in

PROFILE = """
import cProfile, io, json, pstats, resource, statistics, sys
sys.path.insert(0, {tree!r})
import panel as pn
from bokeh.document import Document
from panel.io.state import set_curdoc
from dashboard.app import create_app
from project import load_project
from project.reviews import open_store
from zoolens import demo
folder = demo.default_demo_folder()
files = demo.ensure_demo(folder)
project = load_project([files.classifications, files.subjects, files.workflows], title="demo",
                       image_roots=[folder.resolve()], **demo.PROJECT_OPTIONS)
reviews = open_store({reviews!r})
pn.extension("tabulator")

def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime

try:  # as the server opens a session: its models made without Bokeh's value checks (since 4063388)
    from dashboard.model_checks import unchecked_models
except ImportError:
    from contextlib import nullcontext as unchecked_models

def open_session():
    document = Document()
    with set_curdoc(document):
        with unchecked_models():
            template = create_app(project, reviews=reviews)
        template.server_doc(document)
    document.to_json()
    return document

kept = []  # open sessions stay open, as a server's do
first = cpu()
kept.append(open_session())
first = cpu() - first
for _ in range({warm} - 1):
    kept.append(open_session())
opens, profiled, profile = [], [], cProfile.Profile()
for _ in range({opens}):
    start = cpu()
    kept.append(open_session())
    opens.append(cpu() - start)
for _ in range({opens}):
    start = cpu()
    profile.enable()
    kept.append(open_session())
    profile.disable()
    profiled.append(cpu() - start)
text = io.StringIO()
pstats.Stats(profile, stream=text).sort_stats("cumulative").print_stats({top})
print(text.getvalue(), file=sys.stderr)
print(json.dumps({{"first": first, "median": statistics.median(opens), "profiled": statistics.median(profiled)}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trees", nargs="*", type=Path, default=[ROOT], help="source trees (default: this one)")
    parser.add_argument("--tree", dest="more", action="append", type=Path, default=[],
                        help="another source tree, profiled first (e.g. a checkout of main)")
    parser.add_argument("--warm", type=int, default=2, help="sessions opened before the timed ones (default 2)")
    parser.add_argument("--opens", type=int, default=5, help="timed opens per tree, then as many profiled (default 5)")
    parser.add_argument("--top", type=int, default=50, help="functions listed per tree (default 50)")
    args = parser.parse_args()
    for tree in args.more + args.trees:
        tree = tree.resolve()
        folder = Path(tempfile.mkdtemp(prefix="zoolens-profile-open-"))
        timing, listing = run_in(tree, PROFILE.format(tree=str(tree), reviews=str(folder / "reviews.sqlite"),
                                                      warm=args.warm, opens=args.opens, top=args.top))
        print(f"## {tree}: {timing['median'] * 1000:.0f} ms CPU per session opened (median of {args.opens}; the "
              f"process's first: {timing['first'] * 1000:.0f} ms); under the profiler "
              f"{timing['profiled'] * 1000:.0f} ms (median)\n")
        print(listing)


if __name__ == "__main__":
    main()
