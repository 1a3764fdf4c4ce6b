"""SAMP on a real hub: pyvo's SAMPHubServer on loopback, a second SAMP client as the receiving tool."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import numpy as np
import pytest
from astropy.table import Table

from project import load_project
from project.export import write_catalogue
from project.samp import SampError, SampLink
from project.selection import Selection
from tests.zoolens.test_demo import demo_files  # noqa: F401  (fixture: the demo files)
from zoolens import demo

samp = pytest.importorskip("pyvo.samp")
ROOT = Path(__file__).resolve().parents[2]
#: Seconds the test's SAMP tool takes to answer a call (see `Tool._called`).
REPLY_DELAY = 0.3


@pytest.fixture
def hub(tmp_path):
    lockfile = tmp_path / "samp-hub"
    server = samp.SAMPHubServer(addr="127.0.0.1", lockfile=str(lockfile), web_profile=False)
    server.start()
    try:
        yield lockfile
    finally:
        server.stop()


class Tool:
    """A SAMP tool on the hub (as TOPCAT or Aladin would be): records what it is sent."""

    def __init__(self, lockfile: Path, name: str = "receiver", refuses: bool = False):
        self.client = samp.SAMPIntegratedClient(name=name, addr="127.0.0.1")
        self.client.connect(hub_params=samp.lockfile_helpers.read_lockfile(str(lockfile)))
        self.received: list[tuple[str, dict]] = []
        self.refuses = refuses
        for mtype in ("table.load.votable", "table.load.fits", "coord.pointAt.sky"):
            self.client.bind_receive_notification(mtype, self._notified)
            self.client.bind_receive_call(mtype, self._called)

    def _notified(self, private_key, sender_id, mtype, params, extra):
        self.received.append((mtype, params))

    def _called(self, private_key, sender_id, msg_id, mtype, params, extra):
        """A call answers once the table is in (as TOPCAT's does), or with an error when this tool refuses.

        The answer comes a moment later, from another thread, as TOPCAT's does once it has read the table. An
        answer at once can beat pyvo's hub to registering its own call, and the hub then drops it and waits out
        the call's timeout (astropy/astropy#7985; 8 of 300 calls lost on two busy cores, none with the delay).
        """
        self.received.append((mtype, params))
        answer = ({"samp.status": "samp.error", "samp.error": {"samp.errortxt": "cannot read it"}} if self.refuses
                  else {"samp.status": "samp.ok", "samp.result": {}})
        threading.Timer(REPLY_DELAY, self.client.reply, (msg_id, answer)).start()

    def wait(self, count: int) -> list[tuple[str, dict]]:
        deadline = time.monotonic() + 60  # the hub delivers on its own threads: slow on a busy machine
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.received) >= count, self.received
        return self.received


@pytest.fixture(scope="module")
def catalogue(demo_files, tmp_path_factory):
    built = load_project([demo_files.classifications, demo_files.subjects], image_roots=[demo_files.folder],
                         **demo.PROJECT_OPTIONS)
    path = tmp_path_factory.mktemp("samp") / "catalogue.vot"
    files, export = write_catalogue(built, Selection(project=built), path)
    return files[0], export.consensus


def test_a_catalogue_and_a_position_reach_the_other_tool_and_its_selection_comes_back(hub, catalogue):
    path, boxes = catalogue
    tool = Tool(hub)
    chosen = []
    try:
        with SampLink(hub) as link:
            link.on_selection(chosen.append)
            table_id = link.send_catalogue(path, boxes["subject_id"])
            link.point_at(boxes["ra"].iloc[0], boxes["dec"].iloc[0])
            # The hub delivers each notification on a thread of its own: the two may arrive in either order.
            received = dict(tool.wait(2))
            assert sorted(received) == ["coord.pointAt.sky", "table.load.votable"]
            table, position = received["table.load.votable"], received["coord.pointAt.sky"]
            assert table["table-id"] == table_id
            sent = Table.read(url2pathname(urlparse(table["url"]).path), table_id="consensus", format="votable")
            assert len(sent) == len(boxes) and list(sent["subject_id"]) == list(boxes["subject_id"])
            assert float(position["ra"]) == pytest.approx(boxes["ra"].iloc[0])
            # The tool selects rows 0, 2 and 2 again (and one past the end): zoolens hears their subjects.
            tool.client.notify_all({"samp.mtype": "table.select.rowList",
                                    "samp.params": {"table-id": table_id, "url": table["url"],
                                                    "row-list": ["0", "2", "2", str(len(boxes) + 5)]}})
            deadline = time.monotonic() + 60
            while not chosen and time.monotonic() < deadline:
                time.sleep(0.05)
            assert len(chosen) == 1
            np.testing.assert_array_equal(chosen[0], np.unique(boxes["subject_id"].to_numpy()[[0, 2]]))
    finally:
        tool.client.disconnect()


def test_export_sends_what_it_wrote_and_no_hub_is_a_clear_error(hub, demo_files, tmp_path):
    tool = Tool(hub)
    command = [sys.executable, "-m", "zoolens", "export", str(demo_files.classifications), "--workflow",
               str(demo.WORKFLOW_ID), "--workflow-version", demo.WORKFLOW_VERSION, "--samp"]
    env = {"PATH": "/usr/bin:/bin", "ZOOLENS_CACHE_DIR": str(tmp_path / "cache"), "HOME": str(tmp_path),
           "SAMP_HUB": f"std-lockurl:{hub.as_uri()}"}
    try:
        done = subprocess.run([*command, "-o", str(tmp_path / "sent.fits")], cwd=ROOT, capture_output=True,
                              text=True, env=env)
        assert done.returncode == 0, done.stderr
        # Delivered before the command ended: the hub drops a notification whose sender has left, so the file
        # goes as a call the tool answers (a notification was lost now and then on a busy machine).
        ((mtype, params),) = tool.received
        assert mtype == "table.load.fits" and params["url"] == (tmp_path / "sent.fits").as_uri()
        assert "to the SAMP hub: loaded by receiver" in done.stdout
        # A tool that cannot read it is named, after the others had it.
        fussy = Tool(hub, name="fussy", refuses=True)
        try:
            done = subprocess.run([*command, "-o", str(tmp_path / "sent.vot")], cwd=ROOT, capture_output=True,
                                  text=True, env=env)
        finally:
            fussy.client.disconnect()
        assert done.returncode == 1 and "Traceback" not in done.stderr
        assert "did not reach fussy" in done.stderr and "cannot read it" in done.stderr, done.stderr
        assert "it reached receiver" in done.stderr and tool.received[-1][0] == "table.load.votable"
    finally:
        tool.client.disconnect()
    # No tool on the hub takes catalogues: said, not an error.
    done = subprocess.run([*command, "-o", str(tmp_path / "alone.fits")], cwd=ROOT, capture_output=True,
                          text=True, env=env)
    assert done.returncode == 0 and "no tool on the SAMP hub takes catalogues" in done.stdout, done.stderr
    del env["SAMP_HUB"]  # and no ~/.samp in this HOME
    done = subprocess.run([*command, "-o", str(tmp_path / "unsent.fits")], cwd=ROOT, capture_output=True,
                          text=True, env=env)
    assert done.returncode == 1
    assert done.stderr.startswith("zoolens export: error: --samp: no SAMP hub found") and "Traceback" not in done.stderr


def test_no_hub_at_a_lock_file(tmp_path):
    with pytest.raises(SampError, match="no SAMP hub found through the lock file"):
        SampLink(tmp_path / "missing")
