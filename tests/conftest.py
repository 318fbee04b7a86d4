"""Suite-wide set-up: the hypothesis profile of every property test (tests/fuzzing.py), one
S3-compatible store (moto) for the tests of object-store lakes, and where every other test's
lake lives (``TASKLAKE_TEST_LAKE``: ``local`` by default, ``s3`` for the run's moto server;
``tests.lakes.new_lake``). Tests about a local lake's files on disk are marked ``local_lake``
and skipped on S3."""

from __future__ import annotations

from pathlib import Path

import pytest

import tests.fuzzing  # noqa: F401
from tests.lakes import LAKE_MODE_ENV, lake_mode, new_lake, s3_mode
from tests.s3 import S3, shared, stop_shared


def pytest_configure(config: pytest.Config) -> None:
    try:
        lake_mode()
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_report_header(config: pytest.Config) -> str:
    where = "S3 (one moto server for the run)" if s3_mode() else "local directories"
    return f"lakes: {where} ({LAKE_MODE_ENV}={lake_mode()})"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not s3_mode():
        return
    for item in items:
        marker = item.get_closest_marker("local_lake")
        if marker is not None:
            why = marker.args[0] if marker.args else "about a local lake's files"
            item.add_marker(pytest.mark.skip(reason=f"local lake only: {why}"))


def pytest_unconfigure(config: pytest.Config) -> None:
    stop_shared()


@pytest.fixture(scope="session")
def s3() -> S3:
    """The run's moto S3 server (each test takes its own lake prefix: ``S3.lake``)."""
    return shared()


@pytest.fixture
def lake(tmp_path: Path) -> str:
    """This test's lake: ``tmp_path/lake``, or a fresh S3 prefix in ``TASKLAKE_TEST_LAKE=s3``."""
    return new_lake(tmp_path)
