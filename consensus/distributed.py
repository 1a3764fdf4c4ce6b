"""The same consensus code on one pandas table or on a Dask DataFrame partitioned by subject.

A method sees its input as *partitions*: `LocalPartitions` holds the whole
pandas table as one partition; `DaskPartitions` holds one Dask task per
partition, each a (marks, classifications) pair of pandas frames covering the
same subjects. Both offer the three operations the methods need:

- ``map(func, *args)``: run ``func`` on every partition (lazily under Dask);
- ``gather()``: the results as a list of Python objects, for the small
  cross-partition reductions (per-volunteer sums);
- ``persist()``: keep expensive intermediate state on the workers.

"Partitioned by subject" means indexed by ``subject_id`` with known divisions
(``ddf.set_index("subject_id")``, or Parquet written that way and read with
``calculate_divisions=True``): then no subject spans two partitions. Other Dask
inputs are re-indexed by ``subject_id`` first, which costs a shuffle. The two
tables are then repartitioned to the union of their divisions, so partition
*i* of each holds the same subjects.

Per-subject work is the same function in both paths; cross-partition reductions
are sums, so results agree with the pandas path up to floating-point
summation order. The partitions are Dask tasks (``to_delayed``) rather than one
``map_partitions`` call because the methods alternate per-partition steps with
those reductions (EM over volunteer skills) and keep their intermediate state on
the workers between steps; each step is still a map over the partitions.
"""

from __future__ import annotations

import pandas as pd


def is_dask(obj) -> bool:
    """Whether ``obj`` is a Dask collection (checked without importing dask)."""
    return type(obj).__module__.split(".")[0] == "dask" and hasattr(obj, "__dask_graph__")


class LocalPartitions:
    """All the data as one in-memory partition."""

    def __init__(self, items: list):
        self.items = items

    def map(self, func, *args) -> LocalPartitions:
        return LocalPartitions([func(item, *args) for item in self.items])

    def gather(self) -> list:
        return list(self.items)

    def persist(self) -> LocalPartitions:
        return self


class DaskPartitions:
    """One Dask task per partition; runs on whatever scheduler is active (e.g. a distributed Client)."""

    def __init__(self, items: list):
        self.items = items

    def map(self, func, *args) -> DaskPartitions:
        import dask

        # Broadcast arguments are put in the graph once and shared by every task.
        shared = [dask.delayed(arg) if not is_dask(arg) else arg for arg in args]
        return DaskPartitions([dask.delayed(func, pure=True)(item, *shared) for item in self.items])

    def gather(self) -> list:
        import dask

        return list(dask.compute(*self.items))

    def persist(self) -> DaskPartitions:
        import dask

        return DaskPartitions(list(dask.persist(*self.items)))


def _subject_indexed(frame):
    """A Dask DataFrame indexed by ``subject_id`` with known divisions."""
    if frame.index.name == "subject_id" and frame.known_divisions:
        return frame
    if frame.index.name == "subject_id":
        frame = frame.reset_index()
    if "subject_id" not in frame.columns:
        raise ValueError(f"a Dask table to aggregate needs a subject_id column or index; it has {list(frame.columns)}")
    indexed = frame.set_index("subject_id")
    if not indexed.known_divisions and indexed.npartitions == 1:
        # Dask leaves a single partition's divisions unknown; its bounds are its divisions.
        import dask
        import dask.dataframe as dd

        low, high = dask.compute(frame["subject_id"].min(), frame["subject_id"].max())
        indexed = dd.from_delayed(indexed.map_partitions(pd.DataFrame.sort_index).to_delayed(),
                                  meta=indexed._meta, divisions=(low, high))
    if not indexed.known_divisions:
        raise ValueError("could not partition the Dask table by subject_id; set_index('subject_id') it first")
    return indexed


def _as_subject_column(part: pd.DataFrame) -> pd.DataFrame:
    """A partition with ``subject_id`` back as a column and a fresh index."""
    if part.index.name == "subject_id":
        if "subject_id" in part.columns:
            return part.reset_index(drop=True)
        return part.reset_index()
    return part.reset_index(drop=True)


def _pair(first: pd.DataFrame, second: pd.DataFrame | None):
    return _as_subject_column(first), None if second is None else _as_subject_column(second)


def partitions(first, second=None):
    """Partitions of two tables covering the same subjects (``second`` may be None).

    Pandas tables give one `LocalPartitions`; if either table is a Dask
    DataFrame, both are aligned by subject (see the module docstring) and give
    `DaskPartitions`.
    """
    if not is_dask(first) and not is_dask(second):
        return LocalPartitions([(first, second)])

    import dask
    import dask.dataframe as dd

    def to_dask(table):
        if table is None or is_dask(table):
            return table
        return dd.from_pandas(table, npartitions=1)

    first = _subject_indexed(to_dask(first))
    second = to_dask(second)
    if second is None:
        return DaskPartitions([dask.delayed(_pair)(part, None) for part in first.to_delayed()])
    second = _subject_indexed(second)
    divisions = tuple(sorted(set(first.divisions) | set(second.divisions)))
    first = first.repartition(divisions=divisions, force=True)
    second = second.repartition(divisions=divisions, force=True)
    return DaskPartitions(
        [dask.delayed(_pair)(a, b) for a, b in zip(first.to_delayed(), second.to_delayed())]
    )


def frame(parts, meta):
    """One table from per-partition pandas frames: pandas for local partitions, a Dask DataFrame otherwise.

    ``meta`` is a function returning the empty table Dask needs, called only for Dask.
    """
    if isinstance(parts, LocalPartitions):
        items = parts.gather()
        return items[0] if len(items) == 1 else pd.concat(items, ignore_index=True)
    import dask.dataframe as dd

    return dd.from_delayed(parts.items, meta=meta(), verify_meta=False)
