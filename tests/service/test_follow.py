"""The follower: a read waits at most ``read_wait`` for the store to reach the newest commit,
then answers from the versions the store has — one consistent set, never a mix."""

from __future__ import annotations

import threading
import time
from typing import Any

import duckdb

from service.follow import Follower
from service.store import Store
from tests.lakes import span, tables, write_spans
from tests.schemas.test_trace_spans import random_rows, scatter
from tests.service.test_store import _open


def test_a_lagging_store_answers_its_own_versions_within_read_wait(lake: str) -> None:
    scatter(lake, random_rows(5, traces=20), 2, files=2, copies=0)
    con = duckdb.connect()
    store = _open(con, lake)
    follower = Follower(store, tables(lake), poll=0.05)
    try:
        first = follower.current(0.0, build_wait=60.0)  # the build is waited for
        assert first.snapshot is not None
        before = dict(first.snapshot.versions)
        # hold the next refresh (the test seam: a slow refresh, as under steady ingest)
        gate, real = threading.Event(), store.refresh

        def slow_refresh(*args: Any, **kwargs: Any) -> Any:
            gate.wait(30)
            return real(*args, **kwargs)

        store.refresh = slow_refresh  # type: ignore[method-assign]
        write_spans(lake, [span("late", "late-1", op="chat", cost="1")], "late")
        began = time.monotonic()
        lagging: Store = follower.current(0.3, build_wait=60.0)
        assert time.monotonic() - began < 5  # not the refresh's time (held for up to 30 s)
        assert lagging.snapshot is not None
        assert dict(lagging.snapshot.versions) == before  # as it was: consistent, not mixed
        gate.set()
        fresh = follower.current(60.0)
        assert fresh.snapshot is not None
        assert any(fresh.snapshot.versions[t] > v for t, v in before.items())
    finally:
        follower.stop()
        con.close()
