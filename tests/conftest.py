"""Shared fixtures: tiny real data files, and isolation of global state between tests."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
#: The workplace's shared data folder; tests that need files too large or unlicensed
#: for the repo read them from here and skip cleanly when it is absent. It is looked
#: for above the checkout, so a git worktree nested deeper (../wt/<name>) finds it too.
SHARED_DATA = next(
    (folder / "shared" / "data" for folder in Path(__file__).resolve().parents[1:]
     if (folder / "shared" / "data").is_dir()),
    Path(__file__).resolve().parents[2] / "shared" / "data",
)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Each test gets its own parsed-file cache, so no test reads another's entries."""
    monkeypatch.setenv("ZOOLENS_CACHE_DIR", str(tmp_path_factory.mktemp("zoolens-cache")))


@pytest.fixture
def data_dir() -> Path:
    return DATA


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


@pytest.fixture
def review_store(tmp_path):
    """A review store (`project.reviews.ReviewStore`) in a fresh SQLite file."""
    from project.reviews import ReviewStore

    with ReviewStore(path=tmp_path / "reviews.sqlite") as store:
        yield store
