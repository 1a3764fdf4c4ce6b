"""Profile: where a subject switch's server CPU goes, on one or more source trees side by side.

Each tree runs in a fresh interpreter: the built-in demo (as ``zoolens demo`` serves it: with its machine
detections and true clumps) and its session built into a Bokeh
document (`create_app`, as the server does), then the current subject is set ``--switches``
times unprofiled and as many times under cProfile, each switch's document changes serialised into
one PATCH-DOC message as a served session sends them. Printed per tree: the CPU seconds per switch (median and mean) and the
functions with the most cumulative time, so a change to the cutout is judged by the same
run as the tree it replaces.

    python bench/profile_switch.py                       # this tree
    python bench/profile_switch.py --tree /tmp/before .  # an older checkout beside this one
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

PROFILE = """
import cProfile, io, json, pstats, resource, statistics, sys
sys.path.insert(0, {tree!r})
import panel as pn
from bokeh.document import Document
from bokeh.document.events import DocumentPatchedEvent
from bokeh.protocol import Protocol
from panel.io.state import set_curdoc
from dashboard.app import create_app
from project.reviews import open_store
from zoolens import demo
folder = demo.default_demo_folder()
files = demo.ensure_demo(folder)
project = demo.load_demo(files)
reviews = open_store({reviews!r})
pn.extension("tabulator")

#: The views' methods that refresh them on a switch.
REFRESHES = {{"redraw", "_refresh", "_heading", "_follow", "_box_changed", "_image_problems", "_counts", "_pick_box"}}

def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime

document = Document()
with set_curdoc(document):
    template = create_app(project, reviews=reviews)
    template.server_doc(document)
document.to_json()
# As a served session does, a switch's changes leave as one PATCH-DOC message, serialised here: the document
# is held around the switch (Panel's own hold inside then leaves the changes to it), and the changes it
# collected are serialised and let go.
protocol, messages, buffers = Protocol(), [], []

def switch(subject_id):
    document.hold("combine")
    store.subject = subject_id
    held = [event for event in document.callbacks._held_events if isinstance(event, DocumentPatchedEvent)]
    document.callbacks._held_events = []
    document.unhold()
    messages.append(len(held))
    # The message's binary buffers: each goes to the browser as websocket frames of its own.
    buffers.append(len(protocol.create("PATCH-DOC", held).buffers) if held else 0)

store = template.explorer.data_store
ids = project.subject_stats.subject_id.to_numpy()
switches, profiled, profile = [], [], cProfile.Profile()
with set_curdoc(document):
    for subject_id in ids[1:4]:  # warm: first switches fill caches the others find
        switch(int(subject_id))
    # Timed without the profiler (its overhead doubles the time), then profiled on other subjects.
    for subject_id in ids[4:{switches} + 4]:
        start = cpu()
        switch(int(subject_id))
        switches.append(cpu() - start)
    for subject_id in ids[{switches} + 4:2 * {switches} + 4]:
        start = cpu()
        profile.enable()
        switch(int(subject_id))
        profile.disable()
        profiled.append(cpu() - start)
text = io.StringIO()
stats = pstats.Stats(profile, stream=text)
# How often each view refreshes per switch (each should once): the views' refresh methods' calls.
for (path, line, name), (_, calls, *_) in sorted(stats.stats.items()):
    if "/dashboard/" in path and name in REFRESHES:
        print(f"{{calls / {switches}:.1f}} per switch: {{path.split('/dashboard/')[-1]}}:{{name}}", file=text)
stats.sort_stats("cumulative").print_stats({top})
print(text.getvalue(), file=sys.stderr)
print(json.dumps({{"median": statistics.median(switches), "mean": statistics.fmean(switches),
                  "events": statistics.median(messages), "buffers": statistics.median(buffers),
                  "profiled": statistics.median(profiled)}}))
"""


def profile_tree(tree: Path, switches: int, top: int) -> tuple[dict, str]:
    """CPU per switch on ``tree`` and cProfile's listing of the most cumulative functions."""
    folder = Path(tempfile.mkdtemp(prefix="zoolens-profile-switch-"))
    return run_in(tree, PROFILE.format(tree=str(tree), reviews=str(folder / "reviews.sqlite"), switches=switches,
                                       top=top))


def run_in(tree: Path, code: str) -> tuple[dict, str]:
    """Run ``code`` in a fresh interpreter importing ``tree``: the JSON of its last line of output, and what it
    wrote to stderr (the profile's listing)."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tree,
                          env={**os.environ, "PYTHONPATH": str(tree)})
    if done.returncode:
        raise SystemExit(f"profiling {tree} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trees", nargs="*", type=Path, default=[ROOT], help="source trees (default: this one)")
    parser.add_argument("--tree", dest="more", action="append", type=Path, default=[],
                        help="another source tree, profiled first (e.g. a checkout of main)")
    parser.add_argument("--switches", type=int, default=20,
                        help="timed switches per tree, then as many profiled (default 20; the demo has 60 subjects)")
    parser.add_argument("--top", type=int, default=40, help="functions listed per tree (default 40)")
    args = parser.parse_args()
    for tree in args.more + args.trees:
        timing, listing = profile_tree(tree.resolve(), args.switches, args.top)
        print(f"## {tree.resolve()}: {timing['median'] * 1000:.0f} ms CPU per switch (median), "
              f"{timing['mean'] * 1000:.0f} ms (mean) over {args.switches}; under the profiler "
              f"{timing['profiled'] * 1000:.0f} ms (median); {timing['events']:.0f} document changes and "
              f"{timing['buffers']:.0f} binary buffers sent per switch (median)\n")
        print(listing)


if __name__ == "__main__":
    main()
