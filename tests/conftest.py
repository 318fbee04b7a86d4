"""Suite-wide set-up: the hypothesis profile of every property test (tests/fuzzing.py), and one
S3-compatible store (moto) for the tests of object-store lakes."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

import tests.fuzzing  # noqa: F401
from tests.s3 import S3, moto_s3


@pytest.fixture(scope="session")
def s3() -> Iterator[S3]:
    """One moto S3 server for the whole run (each test takes its own lake prefix)."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's access log
    with moto_s3() as store:
        yield store
