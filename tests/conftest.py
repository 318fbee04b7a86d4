"""Suite-wide set-up: the hypothesis profile of every property test (tests/fuzzing.py)."""

import tests.fuzzing  # noqa: F401
