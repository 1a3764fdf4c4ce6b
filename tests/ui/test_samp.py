"""SAMP from the served app: a real hub (pyvo's SAMPHubServer on loopback), a second SAMP client as
TOPCAT / Aladin, and the app driven in headless Chromium.

The server runs in this process, so the hub it finds is the one ``$SAMP_HUB`` names here.
"""

from __future__ import annotations

import time
from urllib.parse import urlparse
from urllib.request import url2pathname

import numpy as np
import pytest
from astropy.table import Table

from project.samp import subject_position
from tests.project.test_samp import Tool, hub  # noqa: F401  (fixture: a hub on loopback; the receiving tool)
from tests.ui.test_demo import open_page  # noqa: F401  (fixture: a page of the served demo)

pytestmark = pytest.mark.ui


def _export_tab(page):
    page.locator(".bk-tab", has_text="Export").click()
    page.get_by_text("Send to TOPCAT and Aladin (SAMP)").wait_for(timeout=30_000)


def test_without_a_hub_the_page_says_how_to_start_one(open_page, monkeypatch, tmp_path, artefacts):
    monkeypatch.setenv("SAMP_HUB", f"std-lockurl:{(tmp_path / 'no-hub').as_uri()}")
    page = open_page([])
    _export_tab(page)
    page.get_by_role("button", name="Send the selection to TOPCAT").click()
    message = page.get_by_text("no SAMP hub found")
    message.wait_for(timeout=30_000)
    assert "start TOPCAT or Aladin" in message.inner_text()
    page.screenshot(path=str(artefacts / "demo-samp-no-hub.png"))


def test_the_selection_goes_to_topcat_aladin_is_pointed_and_topcats_rows_come_back(open_page, hub, monkeypatch,
                                                                                   demo_project, artefacts):
    monkeypatch.setenv("SAMP_HUB", f"std-lockurl:{hub.as_uri()}")
    tool = Tool(hub)
    try:
        page = open_page([])
        current = int(page.get_by_text("Subject 3").first.inner_text().split()[1])
        _export_tab(page)
        page.get_by_role("button", name="Send the selection to TOPCAT").click()
        ((mtype, table),) = tool.wait(1)
        assert mtype == "table.load.votable"
        sent = Table.read(url2pathname(urlparse(table["url"]).path), table_id="consensus", format="votable")
        # Every subject passes the filters: the whole consensus, with its sky positions.
        assert sorted(sent["subject_id"]) == sorted(demo_project.consensus.subject_id)
        assert np.isfinite(np.asarray(sent["ra"], dtype=float)).all()
        page.get_by_text("Rows you select in TOPCAT").wait_for(timeout=30_000)

        page.get_by_role("button", name="Point Aladin at this subject").click()
        (_, (point, position)) = tool.wait(2)
        assert point == "coord.pointAt.sky"
        ra, dec = subject_position(demo_project, current)
        assert (float(position["ra"]), float(position["dec"])) == pytest.approx((ra, dec))

        # TOPCAT selects rows 1 and 4: the app keeps their subjects and shows the first.
        rows = np.asarray(sent["subject_id"])[[1, 4]]
        tool.client.notify_all({"samp.mtype": "table.select.rowList",
                                "samp.params": {"table-id": table["table-id"], "url": table["url"],
                                                "row-list": ["1", "4"]}})
        page.get_by_text(f"A SAMP tool selected {len(np.unique(rows))} subjects").wait_for(timeout=60_000)
        page.screenshot(path=str(artefacts / "demo-samp.png"))
        page.locator(".bk-tab", has_text="Subjects").click()
        page.get_by_text(f"{len(np.unique(rows))} of 60 subjects (plot selection active)").wait_for(timeout=30_000)
        page.get_by_text(f"Subject {int(np.unique(rows)[0])}", exact=True).wait_for(timeout=30_000)
    finally:
        tool.client.disconnect()
    # The page's session is on the hub until it closes, and leaves it then.
    assert len(_zoolens_clients(hub)) == 1
    page.close()
    deadline = time.monotonic() + 60
    while _zoolens_clients(hub) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _zoolens_clients(hub)


def _zoolens_clients(lockfile) -> list[str]:
    """Ids of the clients on the hub that call themselves zoolens."""
    from pyvo import samp

    observer = samp.SAMPIntegratedClient(name="observer", addr="127.0.0.1")
    observer.connect(hub_params=samp.lockfile_helpers.read_lockfile(str(lockfile)))
    try:
        return [client for client in observer.get_registered_clients() if _name(observer, client) == "zoolens"]
    finally:
        observer.disconnect()


def _name(observer, client: str) -> str | None:
    """A client's samp.name; None for a client that left the hub since the observer listed it (a closing page's)."""
    from pyvo.samp.errors import SAMPProxyError

    try:
        return observer.get_metadata(client).get("samp.name")
    except SAMPProxyError as error:
        if "Invalid client ID" not in str(error):
            raise
        return None
