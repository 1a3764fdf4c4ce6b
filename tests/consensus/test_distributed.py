"""The Dask path on a real dask.distributed LocalCluster gives the pandas path's tables."""

import pandas as pd
import pytest

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

from consensus import aggregate, match  # noqa: E402
from consensus.simulate import simulate_distractor_project, simulate_project  # noqa: E402
from consensus.simulate_points import simulate_point_project  # noqa: E402


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            yield client


@pytest.fixture(scope="module")
def project():
    return simulate_project(240, seed=4)


def _sorted(table, key):
    return table.sort_values(key).reset_index(drop=True)


@pytest.mark.parametrize("method,params", [("iou", {}), ("iou", {"estimator": "weighted"}), ("lean", {})])
def test_aggregate_on_a_cluster_equals_pandas(client, project, method, params):
    # Different partition counts for the two tables: the code aligns them by subject.
    marks = dd.from_pandas(project.marks.set_index("subject_id"), npartitions=4)
    classifications = dd.from_pandas(project.classifications.set_index("subject_id"), npartitions=3)
    on_dask = aggregate(marks, classifications, method=method, **params)
    assert isinstance(on_dask.consensus, dd.DataFrame) and on_dask.consensus.npartitions > 1
    on_pandas = aggregate(project.marks, project.classifications, method=method, **params)

    consensus = _sorted(on_dask.consensus.compute(), "consensus_id")
    assert len(consensus) > 400
    pd.testing.assert_frame_equal(consensus, _sorted(on_pandas.consensus, "consensus_id"), check_exact=False, rtol=1e-9)
    pd.testing.assert_frame_equal(_sorted(on_dask.links.compute(), "mark_id"), _sorted(on_pandas.links, "mark_id"),
                                  check_exact=False, rtol=1e-9)
    pd.testing.assert_frame_equal(_sorted(on_dask.subjects.compute(), "subject_id"), _sorted(on_pandas.subjects, "subject_id"),
                                  check_exact=False, rtol=1e-9)
    assert on_dask.report == on_pandas.report
    if on_pandas.volunteers is not None:
        pd.testing.assert_frame_equal(_sorted(on_dask.volunteers, "user"), _sorted(on_pandas.volunteers, "user"),
                                      check_exact=False, rtol=1e-7)


@pytest.mark.parametrize("method", ["iou", "lean"])
def test_learned_quorum_and_distractor_rates_on_a_cluster_equal_pandas(client, method):
    # A project with volunteers who box distractors: the learned quorum and the distractor model at work.
    project = simulate_distractor_project(300, seed=4)
    marks = dd.from_pandas(project.marks.set_index("subject_id"), npartitions=4)
    classifications = dd.from_pandas(project.classifications.set_index("subject_id"), npartitions=3)
    on_dask = aggregate(marks, classifications, method=method)
    on_pandas = aggregate(project.marks, project.classifications, method=method)
    consensus = _sorted(on_dask.consensus.compute(), "consensus_id")
    pd.testing.assert_frame_equal(consensus, _sorted(on_pandas.consensus, "consensus_id"), check_exact=False, rtol=1e-9)
    if method == "iou":
        assert '"learned": {"candidates": ' in on_pandas.source and '"min_vote_fraction": "valley"' in on_pandas.source
    else:
        assert on_pandas.volunteers["distractor_prob"].max() > 0.5
        pd.testing.assert_frame_equal(_sorted(on_dask.volunteers, "user"), _sorted(on_pandas.volunteers, "user"),
                                      check_exact=False, rtol=1e-7)


def test_unindexed_dask_marks_are_partitioned_by_subject_first(client, project):
    marks = dd.from_pandas(project.marks, npartitions=3)  # split by row, so subjects straddle partitions
    on_dask = aggregate(marks, project.classifications, method="iou").consensus.compute()
    on_pandas = aggregate(project.marks, project.classifications, method="iou").consensus
    pd.testing.assert_frame_equal(_sorted(on_dask, "consensus_id"), _sorted(on_pandas, "consensus_id"))


def test_match_on_a_cluster_equals_pandas(client, project):
    consensus = aggregate(project.marks, project.classifications).consensus
    on_dask = match(
        dd.from_pandas(project.marks.set_index("subject_id"), npartitions=3),
        dd.from_pandas(consensus.set_index("subject_id"), npartitions=2),
        min_iou=0.5,
    ).compute()
    pd.testing.assert_frame_equal(_sorted(on_dask, "mark_id"), _sorted(match(project.marks, consensus, min_iou=0.5), "mark_id"))


@pytest.fixture(scope="module")
def point_project():
    return simulate_point_project(60, seed=4)


def test_point_method_on_a_cluster_equals_pandas(client, point_project):
    marks = dd.from_pandas(point_project.marks.set_index("subject_id"), npartitions=4)
    classifications = dd.from_pandas(point_project.classifications.set_index("subject_id"), npartitions=3)
    on_dask = aggregate(marks, classifications)  # clicks: the point method by default, on Dask too
    assert isinstance(on_dask.consensus, dd.DataFrame) and on_dask.consensus.npartitions > 1
    on_pandas = aggregate(point_project.marks, point_project.classifications)
    consensus = _sorted(on_dask.consensus.compute(), "consensus_id")
    assert len(consensus) > 1000 and (consensus["kind"] == "point").all()
    pd.testing.assert_frame_equal(consensus, _sorted(on_pandas.consensus, "consensus_id"))
    pd.testing.assert_frame_equal(_sorted(on_dask.links.compute(), "mark_id"), _sorted(on_pandas.links, "mark_id"))
    pd.testing.assert_frame_equal(_sorted(on_dask.subjects.compute(), "subject_id"), _sorted(on_pandas.subjects, "subject_id"))
    assert on_dask.report == on_pandas.report


def test_point_match_on_a_cluster_equals_pandas(client, point_project):
    consensus = aggregate(point_project.marks, point_project.classifications).consensus
    on_dask = match(
        dd.from_pandas(point_project.marks.set_index("subject_id"), npartitions=3),
        dd.from_pandas(consensus.set_index("subject_id"), npartitions=2),
        max_distance=8.0,
    ).compute()
    on_pandas = match(point_project.marks, consensus, max_distance=8.0)
    assert on_pandas["distance"].notna().sum() > 1000
    pd.testing.assert_frame_equal(_sorted(on_dask, "mark_id"), _sorted(on_pandas, "mark_id"))
