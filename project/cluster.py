"""Running a project's heavy work on a Dask cluster: this machine's worker processes, or an existing cluster.

`load_project(..., scheduler=...)` uses it: the marks and classifications go to the cluster as
Dask DataFrames partitioned by subject (known divisions, so no subject spans two partitions),
`consensus.aggregate` and `consensus.match` run there through their distributed path, and the
results come back as the same pandas tables the in-memory path makes.

``scheduler`` is ``"local"`` (a `dask.distributed.LocalCluster` of worker processes on this
machine, started for the work and stopped after it) or the address of a running scheduler
(``tcp://host:8786``: ``dask scheduler`` and ``dask worker`` by hand, dask-jobqueue on an HPC
batch system, Dask on Kubernetes). Workers need zoolens installed (or on their ``PYTHONPATH``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import pandas as pd

#: ``scheduler`` value that starts a cluster of worker processes on this machine.
LOCAL = "local"


def connect(scheduler: str):
    """A `dask.distributed.Client` of ``scheduler``, the default for every Dask computation of the process.

    What a served store-backed project needs for as long as it is served: its whole-table work
    (agreement plots, statistics by tool) runs on the cluster. ``"local"`` starts a
    `dask.distributed.LocalCluster` of worker processes, closed with the client.
    """
    from distributed import Client, LocalCluster

    if scheduler == LOCAL:
        workers = max(1, min(4, os.cpu_count() or 1))
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
        return Client(cluster)
    try:
        return Client(scheduler, timeout="30s")
    except (OSError, TimeoutError) as error:
        raise ValueError(f"--scheduler {scheduler}: no Dask scheduler answers there ({error})") from None


@contextmanager
def cluster_client(scheduler: str) -> Iterator[object]:
    """`connect` for the block only: the client (and a local cluster) closed after it."""
    client = connect(scheduler)
    try:
        yield client
    finally:
        cluster = client.cluster if scheduler == LOCAL else None
        client.close()
        if cluster is not None:
            cluster.close()


def describe(client) -> str:
    """``the Dask cluster at ADDRESS (N workers)``, for reports and provenance."""
    workers = len(client.scheduler_info().get("workers", {}))
    return f"the Dask cluster at {client.scheduler.address} ({workers} worker{'s' if workers != 1 else ''})"


def subject_partitioned(table: pd.DataFrame, partitions: int):
    """``table`` as a Dask DataFrame indexed by ``subject_id`` with known divisions, in about ``partitions`` parts.

    Rows of one subject always share a partition: divisions fall between subject ids.
    """
    import dask.dataframe as dd

    indexed = table.set_index("subject_id").sort_index(kind="stable")
    return dd.from_pandas(indexed, npartitions=max(1, min(partitions, indexed.index.nunique())), sort=True)
