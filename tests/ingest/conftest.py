from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, settings

from tests.ingest.receiver_harness import TEST_SETTINGS, ReceiverServer, SinkExporter

AUTH_TOKEN = "s3cret-token"
#: Examples per fuzz property, by hypothesis profile (README: "Fuzzing").
FUZZ_EXAMPLES = {"tasklake": 100, "fuzz": int(os.environ.get("FUZZ_EXAMPLES", "5000"))}


@pytest.fixture(scope="session")
def receiver() -> Iterator[ReceiverServer]:
    """OTLP/HTTP + OTLP/gRPC receivers over a SinkExporter (no auth, small limits)."""
    server = ReceiverServer().start()
    yield server
    server.stop()


@pytest.fixture
def sink(receiver: ReceiverServer) -> Iterator[SinkExporter]:
    """The shared receiver's sink, emptied and reset to accept everything."""
    receiver.sink.reset()
    receiver.requests.seen.clear()
    yield receiver.sink
    receiver.sink.reset()


@pytest.fixture(scope="session")
def auth_receiver() -> Iterator[ReceiverServer]:
    """Receivers that require ``authorization: Bearer AUTH_TOKEN``."""
    server = ReceiverServer(replace(TEST_SETTINGS, auth_tokens=(AUTH_TOKEN,))).start()
    yield server
    server.stop()


# Hypothesis profiles of the fuzz properties (tests/ingest/test_fuzz_*.py): "tasklake" keeps
# `make test` bounded and reproducible; `make fuzz` runs HYPOTHESIS_PROFILE=fuzz (many more
# examples, a fresh random seed each run, failures remembered in .hypothesis/).
_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
settings.register_profile(
    "tasklake",
    max_examples=FUZZ_EXAMPLES["tasklake"],
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=_QUIET,
)
settings.register_profile(
    "fuzz", max_examples=FUZZ_EXAMPLES["fuzz"], deadline=None, suppress_health_check=_QUIET
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "tasklake"))
