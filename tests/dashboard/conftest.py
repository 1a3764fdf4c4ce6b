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


@pytest.fixture(scope="session")
def demo_export(tmp_path_factory):
    """The built-in demo's classification export (912 classifications of workflow 9001 v13.10)."""
    from zoolens import demo

    return demo.write_demo(tmp_path_factory.mktemp("demo")).classifications
