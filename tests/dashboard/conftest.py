"""Fixtures of the dashboard tests: the hand-made project of `tests.dashboard.tiny`."""

from __future__ import annotations

import pytest

from tests.dashboard import tiny


@pytest.fixture
def tiny_tables():
    return tiny.tiny_tables()


@pytest.fixture
def tiny_project(tmp_path, tiny_tables):
    return tiny.tiny_project(tmp_path / "root", tiny_tables)
