"""Profile: where a subject switch's wall time goes, the server's side or the page's.

The demo is served (worker threads, the default) from each source tree given; headless Chromium
opens it and presses ``j`` ``--switches`` times. For each switch the page's own clock records when
the key went down and when each websocket frame arrived; the switch ends when the caption names the
new subject. Printed per tree: the medians of key -> first frame, key -> last frame (the patch
complete: the server's part), key -> caption shown, the frames and bytes per switch, and the page's
JavaScript CPU per switch by function (Chrome's sampling profiler), so the page's share is measured
rather than guessed.

    python bench/profile_page_switch.py
    python bench/profile_page_switch.py --tree /tmp/before .
"""

from __future__ import annotations

import argparse
import collections
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from bench_latency import CHROMIUM  # noqa: E402
from bench_sessions import free_port, start_server  # noqa: E402

CAPTION = re.compile(r"^Subject (\d+)$")
#: Put in the page before its scripts: the time of each key press and of each websocket frame, page clock.
WATCH_PAGE = """
window.zoolensFrames = []; window.zoolensKeys = [];
const NativeSocket = window.WebSocket;
window.WebSocket = function (...args) {
  const socket = new NativeSocket(...args);
  socket.addEventListener('message', (event) => window.zoolensFrames.push(
    [performance.now(), typeof event.data === 'string' ? event.data.length : (event.data.byteLength || event.data.size)]));
  return socket;
};
window.WebSocket.prototype = NativeSocket.prototype;
document.addEventListener('keydown', () => window.zoolensKeys.push(performance.now()), true);
"""


def profile_tree(tree: Path, switches: int, top: int) -> None:
    from playwright.sync_api import expect, sync_playwright

    folder = Path(tempfile.mkdtemp(prefix="zoolens-profile-page-"))
    port = free_port()
    server = start_server(port, 4, folder / "reviews.sqlite", None, folder / "server.log", tree=tree)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM,
                                                 args=["--headless", "--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.add_init_script(WATCH_PAGE)
            page.goto(f"http://127.0.0.1:{port}/", wait_until="networkidle", timeout=300_000)
            caption = page.get_by_text(CAPTION).first
            caption.wait_for(timeout=300_000)
            for _ in range(60):  # untimed: until the page's key listener is live
                shown = caption.inner_text()
                caption.click()
                page.keyboard.press("j")
                page.wait_for_timeout(1000)
                if caption.inner_text() != shown:
                    break
            page.wait_for_timeout(3000)
            cdp = page.context.new_cdp_session(page)
            cdp.send("Profiler.enable")
            cdp.send("Profiler.setSamplingInterval", {"interval": 200})
            cdp.send("Profiler.start")
            rows = []
            for _ in range(switches):
                shown = caption.inner_text()
                caption.click()  # focus the page on plain text
                page.wait_for_timeout(200)
                page.evaluate("window.zoolensFrames = []; window.zoolensKeys = []")
                began = time.perf_counter()
                page.keyboard.press("j")
                expect(caption).not_to_have_text(shown, timeout=60_000)
                seen = time.perf_counter() - began
                page.wait_for_timeout(400)  # the rest of the switch's frames
                keys, frames = page.evaluate("[window.zoolensKeys, window.zoolensFrames]")
                if keys and frames:
                    rows.append((seen * 1000, frames[0][0] - keys[0], frames[-1][0] - keys[0], len(frames),
                                 sum(size for _, size in frames)))
            profile = cdp.send("Profiler.stop")["profile"]
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=60)
    median = lambda column: statistics.median(row[column] for row in rows)  # noqa: E731
    print(f"## {tree}: {len(rows)} switches by key j; medians: key -> first frame {median(1):.0f} ms, key -> last "
          f"frame {median(2):.0f} ms, key -> caption seen {median(0):.0f} ms; {median(3):.0f} frames, "
          f"{median(4) / 1024:.1f} kB to the page per switch\n")
    nodes = {node["id"]: node["callFrame"] for node in profile["nodes"]}
    by_function = collections.Counter()
    for node, delta in zip(profile["samples"], profile["timeDeltas"]):
        frame = nodes[node]
        script = frame["url"].split("/")[-1].split("?")[0] or "(page)"
        by_function[f"{frame['functionName'] or '(anonymous)'} {script}"] += delta
    print("The page's CPU per switch by function (ms; '(idle)' is waiting, playwright's polling is its own):")
    for name, microseconds in by_function.most_common(top):
        print(f"{microseconds / 1000 / len(rows):8.2f}  {name}")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trees", nargs="*", type=Path, default=[ROOT], help="source trees (default: this one)")
    parser.add_argument("--tree", dest="more", action="append", type=Path, default=[],
                        help="another source tree, profiled first (e.g. a checkout of main)")
    parser.add_argument("--switches", type=int, default=20, help="switches per tree (default 20)")
    parser.add_argument("--top", type=int, default=20, help="functions listed per tree (default 20)")
    args = parser.parse_args()
    for tree in args.more + args.trees:
        profile_tree(tree.resolve(), args.switches, args.top)


if __name__ == "__main__":
    main()
