"""Property tests: the consensus depends on what was drawn, not on row order or volunteer names."""

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consensus import aggregate, match


# Marks scattered around three clump positions per subject, in steps of 1.5 px,
# so clusters overlap, chain and tie (identical boxes, equal IoUs) often.
CLUMPS = [(0.0, 0.0), (24.0, 0.0), (0.0, 24.0)]
offset = st.integers(-4, 4).map(lambda value: value * 1.5)
size = st.sampled_from([6.0, 8.0, 10.0])
mark = st.builds(
    lambda subject, user, clump, dx, dy, width, height: (
        subject, user, CLUMPS[clump][0] + dx, CLUMPS[clump][1] + dy, width, height),
    st.integers(0, 1), st.integers(0, 5), st.integers(0, 2), offset, offset, size, size,
)
projects = st.lists(mark, min_size=6, max_size=40)

# The table builders are stateless functions, so sharing them across examples is safe.
SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
METHOD_PARAMS = [("iou", {"refine": 0, "merge_iou": 1.0}), ("iou", {}), ("iou", {"estimator": "weighted"}), ("lean", {})]


def _tables(rows, names, build_marks, build_classifications):
    marks = build_marks([(subject, names[user], x, y, w, h) for subject, user, x, y, w, h in rows])
    # Everybody saw every subject that has marks, some drawing nothing.
    seen = {(subject, names[user]) for subject in {row[0] for row in rows} for user in range(6)}
    drawn = set(zip(marks["subject_id"], marks["user"]))
    return marks, build_classifications(marks, empty=sorted(seen - drawn))


def _canonical(consensus):
    columns = ["subject_id", "consensus_id", "x", "y", "width", "height", "angle", "n_votes", "n_seen"]
    return consensus[columns].sort_values("consensus_id").reset_index(drop=True)


def _assert_same_consensus(first, second):
    pd.testing.assert_frame_equal(_canonical(first), _canonical(second), check_exact=False, rtol=1e-9, atol=1e-9)


NAMES = [f"volunteer_{k}" for k in range(6)]


@SETTINGS
@given(rows=projects, order_seed=st.integers(0, 2**32 - 1))
def test_permuting_marks_does_not_change_the_consensus(rows, order_seed, marks_from, classifications_for):
    marks, classifications = _tables(rows, NAMES, marks_from, classifications_for)
    shuffled = marks.sample(frac=1.0, random_state=np.random.RandomState(order_seed % 2**32))
    shuffled_classifications = classifications.sample(frac=1.0, random_state=np.random.RandomState(order_seed % 2**31))
    for method, params in METHOD_PARAMS:
        first = aggregate(marks, classifications, method=method, **params)
        second = aggregate(shuffled, shuffled_classifications, method=method, **params)
        _assert_same_consensus(first.consensus, second.consensus)
        # Every mark keeps its link and IoU (mark ids travel with the rows).
        links = second.links.set_index("mark_id").loc[first.links["mark_id"]]
        assert links["consensus_id"].tolist() == first.links["consensus_id"].tolist()
        np.testing.assert_allclose(links["iou"].to_numpy(), first.links["iou"].to_numpy(), rtol=1e-9)


@SETTINGS
@given(rows=projects, permutation=st.permutations(range(6)))
def test_renaming_volunteers_does_not_change_the_consensus(rows, permutation, marks_from, classifications_for):
    marks, classifications = _tables(rows, NAMES, marks_from, classifications_for)
    renamed_names = [f"someone_{k}" for k in permutation]
    renamed, renamed_classifications = _tables(rows, renamed_names, marks_from, classifications_for)
    for method, params in METHOD_PARAMS:
        _assert_same_consensus(
            aggregate(marks, classifications, method=method, **params).consensus,
            aggregate(renamed, renamed_classifications, method=method, **params).consensus,
        )


@SETTINGS
@given(rows=projects, order_seed=st.integers(0, 2**31 - 1))
def test_match_is_row_order_free_and_one_vote_per_volunteer(rows, order_seed, marks_from, classifications_for):
    marks, classifications = _tables(rows, NAMES, marks_from, classifications_for)
    consensus = aggregate(marks, classifications, method="iou", min_votes=1, min_vote_fraction=0.0).consensus
    links = match(marks, consensus, min_iou=0.3)
    shuffled = match(marks.sample(frac=1.0, random_state=order_seed), consensus.sample(frac=1.0, random_state=order_seed), min_iou=0.3)
    assert np.isclose(links["iou"].sum(), shuffled["iou"].sum())
    voted = links[links["consensus_id"] >= 0].merge(marks[["mark_id", "user"]], on="mark_id")
    assert not voted.duplicated(["user", "consensus_id"]).any()
    assert (voted["iou"] >= 0.3).all()
