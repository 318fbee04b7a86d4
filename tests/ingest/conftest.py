from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from tests.ingest.receiver_harness import TEST_SETTINGS, ReceiverServer, SinkExporter

AUTH_TOKEN = "s3cret-token"


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
