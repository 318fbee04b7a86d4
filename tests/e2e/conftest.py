from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import Server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(lake=tmp_path / "lake", log=tmp_path / "server.log").start()
    try:
        yield srv
    finally:
        srv.stop()
