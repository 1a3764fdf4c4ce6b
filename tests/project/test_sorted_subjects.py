"""The subject statistics sorted once and shared (`project.sorted_subjects`): the rows a filter keeps, in the order
and with the review statuses pandas gives them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from project import sorted_subjects as sorted_module
from project.sorted_subjects import SortedSubjects, review_status_array


def _stats(rng, n=2000) -> pd.DataFrame:
    disagreement = rng.choice([0.0, 0.25, 0.5, 1.0, np.nan], n)  # many ties, and missing values
    return pd.DataFrame({"subject_id": rng.permutation(np.arange(10, 10 + 3 * n, 3)), "disagreement": disagreement,
                         "n_volunteers": rng.integers(0, 30, n),
                         "thumbnail": pd.array([f"t{number}" for number in range(n)], dtype="string")})


def test_the_rows_kept_are_those_pandas_sorts(monkeypatch):
    rng = np.random.default_rng(2)
    stats = _stats(rng)
    statuses = pd.DataFrame({"subject_id": stats.subject_id.iloc[::7].to_numpy(),
                             "status": pd.array(rng.choice(["accepted", "mixed", "flagged"], len(stats.iloc[::7])),
                                                dtype="string")})
    expected_statuses = (stats.subject_id.map(statuses.set_index("subject_id").status).fillna("unreviewed")
                         .astype("string"))
    pd.testing.assert_series_equal(pd.Series(review_status_array(stats.subject_id, statuses)),
                                   expected_statuses.rename(None))
    made = []
    monkeypatch.setattr(sorted_module, "review_status_array", lambda *args: made.append(args) or review_status_array(*args))
    sorted_subjects = SortedSubjects.of(stats, "disagreement", statuses)
    SortedSubjects.of(stats, "disagreement", statuses)
    assert len(made) == 1  # the status column made once, shared
    with_statuses = stats.assign(review_status=expected_statuses.array)
    for keep, status in (((stats.n_volunteers >= 12).to_numpy(), None), (np.ones(len(stats), bool), None),
                         (np.zeros(len(stats), bool), None), ((stats.n_volunteers < 20).to_numpy(), "mixed")):
        expected = with_statuses[keep & ((with_statuses.review_status == status).to_numpy() if status else True)]
        expected = expected.sort_values(["disagreement", "subject_id"], ascending=[False, True], na_position="last",
                                        ignore_index=True)
        pd.testing.assert_frame_equal(sorted_subjects.passing(keep, status), expected)


def test_without_statuses_every_subject_is_unreviewed_and_a_new_table_is_sorted_again():
    rng = np.random.default_rng(4)
    stats = _stats(rng, 50)
    kept = SortedSubjects.of(stats, "disagreement").passing(np.ones(50, bool))
    assert kept.review_status.tolist() == ["unreviewed"] * 50
    assert review_status_array([], None).tolist() == []
    changed = stats.assign(disagreement=-stats.disagreement)  # a new table: its own order
    first = SortedSubjects.of(changed, "disagreement").passing(np.ones(50, bool))
    assert first.subject_id.tolist() == changed.sort_values(["disagreement", "subject_id"], ascending=[False, True],
                                                            na_position="last").subject_id.tolist()
