"""Projects built on a Dask cluster equal those built in memory: on a LocalCluster of worker
processes, and on a real ``dask scheduler`` with two ``dask worker`` processes serving the demo."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import requests

from project import load_project
from tests.bokeh_protocol import Client, find_models, run_apart
from tests.dashboard.serving import free_port
from tests.zoolens.test_demo import demo_files  # noqa: F401  (fixture: the demo files)
from zoolens import demo

distributed = pytest.importorskip("distributed")

ROOT = Path(__file__).resolve().parents[2]
PENGUINS = ROOT / "tests" / "data" / "penguin_watch" / "penguin-watch-classifications-trim.csv"
BOX = ["subject_id", "consensus_id", "x", "y", "width", "height", "n_votes", "n_seen"]


def assert_same_project(in_memory, on_cluster):
    pd.testing.assert_frame_equal(in_memory.consensus[in_memory.consensus_columns],
                                  on_cluster.consensus[on_cluster.consensus_columns])
    pd.testing.assert_frame_equal(in_memory.links.sort_values("mark_id", ignore_index=True),
                                  on_cluster.links.sort_values("mark_id", ignore_index=True))
    pd.testing.assert_frame_equal(in_memory.subject_stats, on_cluster.subject_stats)


@pytest.mark.parametrize("method", ["iou", "lean"])
def test_local_cluster_of_worker_processes_makes_the_in_memory_consensus(demo_files, method):
    paths = [demo_files.classifications, demo_files.subjects]
    in_memory = load_project(paths, method=method, **demo.PROJECT_OPTIONS)
    on_cluster = load_project(paths, method=method, scheduler="local", partitions=5, **demo.PROJECT_OPTIONS)
    assert len(on_cluster.consensus) > 50
    assert_same_project(in_memory, on_cluster)
    assert on_cluster.aggregation_run["where"].endswith(", 5 partitions by subject")
    assert "the Dask cluster at tcp://127.0.0.1:" in on_cluster.aggregation_run["where"]


def test_points_and_a_consensus_file_on_the_cluster(demo_files, tmp_path):
    penguins = load_project([PENGUINS], method="auto", workflow_id=6465)
    assert (penguins.consensus.width == 0).all() and len(penguins.consensus) > 100
    assert_same_project(penguins, load_project([PENGUINS], method="auto", workflow_id=6465, scheduler="local"))
    # A consensus read from a file: the marks are linked to its boxes on the cluster.
    from zoolens.cli import main

    consensus_file = tmp_path / "consensus.csv"
    assert main(["aggregate", str(demo_files.classifications), "--workflow", str(demo.WORKFLOW_ID),
                 "--workflow-version", demo.WORKFLOW_VERSION, "-o", str(consensus_file)]) == 0
    boxaggregator = tmp_path / "boxes.csv"
    boxes = pd.read_csv(consensus_file)
    pd.DataFrame({"subject_id": boxes.subject_id, "x1": boxes.x, "x2": boxes.x + boxes.width, "y1": boxes.y,
                  "y2": boxes.y + boxes.height}).to_csv(boxaggregator, index=False)
    options = dict(consensus=boxaggregator, workflow_id=demo.WORKFLOW_ID, workflow_version=demo.WORKFLOW_VERSION)
    in_memory = load_project([demo_files.classifications], **options)
    on_cluster = load_project([demo_files.classifications], scheduler="local", **options)
    assert (in_memory.links.consensus_id >= 0).sum() > 500
    assert_same_project(in_memory, on_cluster)


def _started(command: list[str], log: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env, cwd=ROOT,
                            start_new_session=True)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _wait_for(predicate, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    raise AssertionError(f"{what} within {timeout} s; log:\n{log.read_text()[-3000:]}")


def test_the_demo_served_through_a_real_scheduler_and_two_workers(demo_files, tmp_path):
    """``zoolens serve --scheduler ADDRESS --store FOLDER``: the consensus made on the workers, the marks kept in
    the store, a page's cutout read from it and its agreement plots drawn from the store's grids and columns."""
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "PYTHONPATH": str(ROOT),
           "ZOOLENS_CACHE_DIR": str(tmp_path / "cache"), "HOME": str(tmp_path)}
    dask = str(Path(sys.executable).parent / "dask")
    scheduler_port, web_port = free_port(), free_port()
    address = f"tcp://127.0.0.1:{scheduler_port}"
    processes = []
    try:
        processes.append(_started([dask, "scheduler", "--host", "127.0.0.1", "--port", str(scheduler_port),
                                   "--no-dashboard"], tmp_path / "scheduler.log", env))
        for number in range(2):
            processes.append(_started([dask, "worker", address, "--host", "127.0.0.1", "--nworkers", "1",
                                       "--nthreads", "1", "--no-dashboard", "--name", f"worker-{number}"],
                                      tmp_path / f"worker-{number}.log", env))
        with distributed.Client(address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=60)
            before = client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.transition_counter)
            served_log = tmp_path / "serve.log"
            served = _started([sys.executable, "-m", "zoolens", "serve", str(demo_files.classifications),
                               str(demo_files.subjects), str(demo_files.workflows),
                               "--workflow", str(demo.WORKFLOW_ID), "--workflow-version", demo.WORKFLOW_VERSION,
                               "--fits-column", demo.FITS_COLUMN, "--images", str(demo_files.folder),
                               "--port", str(web_port), "--scheduler", address, "--store", str(tmp_path / "store"),
                               "--reviews", str(tmp_path / "reviews.sqlite")], served_log, env)
            processes.append(served)
            _wait_for(lambda: "consensus boxes" in served_log.read_text(), 180, "the demo loaded", served_log)
            page = requests.get(f"http://127.0.0.1:{web_port}/", timeout=30)
            assert page.status_code == 200 and "zoolens" in page.text
            # The consensus was made on the cluster: its tasks went through the scheduler.
            after = client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.transition_counter)
            assert after > before
            ran_on = client.run(lambda dask_worker: dask_worker.state.executed_count)
            session = run_apart(_open_page_and_agreement(f"http://127.0.0.1:{web_port}"))
            rasterized_on = client.run(lambda dask_worker: dask_worker.state.executed_count)
        in_memory = load_project([demo_files.classifications, demo_files.subjects, demo_files.workflows],
                                 **demo.PROJECT_OPTIONS)
        text = served_log.read_text()
        assert f"{len(in_memory.consensus):,} consensus boxes" in text
        assert f"made on the Dask cluster at {address} (2 workers)" in text
        assert len(ran_on) == 2 and all(count > 0 for count in ran_on.values())
        assert (tmp_path / "store" / "project.json").is_file()
        # The page: a subject's cutout (its image and caption), then the agreement plots, filtered too, drawn from
        # the store's density grids and plotted columns in the server: no pass over the marks on the workers.
        assert session.errors == []
        assert sum(rasterized_on.values()) == sum(ran_on.values())
    finally:
        for process in reversed(processes):
            _stop(process)


async def _open_page_and_agreement(url: str):
    from dashboard.explorer import TABS

    session = Client(url, 0)
    await session.open()
    document = json.dumps(session.document)
    assert find_models(session.document, "ImageRGBA"), "no subject image in the page"
    assert "Subject " in document
    await session._show_tab(TABS.index("Agreement"), "Image")
    shown = [json.loads(patch) for patch in session.patches]
    assert "IoU with the consensus box against box size" in "".join(session.patches)
    assert any(find_models(patch, "Image") for patch in shown), "no rasterized agreement plot in the page"
    # Unfiltered, the plots come from the store's density grids; a filter bins the store's plotted columns of the
    # subjects it keeps (`project.plotted`).
    since, start = len(session.patches), time.perf_counter()
    await session._change(session.min_volunteers, "value", 12)
    assert await session.wait_for("filter", start, since, lambda patch: '"image"' in patch)
    await session.close()
    return session
