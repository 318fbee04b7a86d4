"""Hypothesis profiles for the property tests (marked ``fuzz``): a bounded, reproducible run in
``make test`` and a long one with a fresh seed in ``make fuzz`` (``TASKLAKE_FUZZ=1``;
``FUZZ_EXAMPLES`` sets its cases per property). ``tests/conftest.py`` imports this module, so
the profile holds for every test; a slower or cheaper property asks for its own count with
``examples()``."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

#: Cases per property in ``make test`` and in ``make fuzz``.
TEST_EXAMPLES = 40
FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "2000"))

_COMMON = settings(
    deadline=None,  # no timed assertions: a slow shared machine is not a failure
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
    print_blob=True,
)
settings.register_profile(
    "tasklake-test", _COMMON, max_examples=TEST_EXAMPLES, derandomize=True, database=None
)
settings.register_profile("tasklake-fuzz", _COMMON, max_examples=FUZZ_EXAMPLES)
FUZZING = bool(os.environ.get("TASKLAKE_FUZZ"))
settings.load_profile("tasklake-fuzz" if FUZZING else "tasklake-test")


def examples(test_count: int = TEST_EXAMPLES, fuzz_count: int = FUZZ_EXAMPLES) -> int:
    """How many cases a slower property runs: fewer than the profile's in ``make test``."""
    return fuzz_count if FUZZING else test_count
