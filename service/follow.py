"""Keeps the task store at the lake's newest versions, from a thread of its own.

Queries never refresh the store themselves: under steady ingest every query would pay for a
refresh (and wait for the one before it). From the first read on (a receiver nobody reads
from never builds a store), a follower thread refreshes whenever a table moved;
a query asks for the versions that were newest when it arrived and waits — at most
``read_wait`` seconds, about one refresh — until the store reflects them, so a commit is in
the next answer (read after commit). Should the store lag longer (steady ingest, a burst, a
slow object store), the query is answered from the store as it is: one consistent set of
versions, a moment old, never a mix. Under steady ingest a refresh is nearly always running
when a query arrives; waiting for it whole made p99 the refresh's p99 (31 s at 4k spans/s on
a loaded 2-core machine). A store that cannot be built or followed answers 503: a passing condition.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping

from schemas.delta import Tables
from service.store import Store

log = logging.getLogger(__name__)

#: How often the follower looks for new commits when nothing wakes it.
POLL_SECONDS = 0.2


class StoreUnavailable(Exception):
    """The store is being built, or cannot follow the lake: retry later."""


def _reflects(have: Mapping[str, int] | None, want: Mapping[str, int]) -> bool:
    return have is not None and all(have.get(t, -1) >= v for t, v in want.items())


class Follower:
    """Refreshes ``store`` from ``tables`` in the background (see module doc)."""

    def __init__(self, store: Store, tables: Tables, *, poll: float = POLL_SECONDS) -> None:
        self.store = store
        self.tables = tables
        self.poll = poll
        self.error: str | None = None
        self.refreshes = 0
        self._changed = threading.Condition()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="store-follower", daemon=True)

    def start(self) -> Follower:
        """Start following (once; ``current`` starts it too)."""
        with self._changed:
            if not self._thread.is_alive() and not self._stop.is_set():
                self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                stats = self.store.refresh()
                self.error = None
                if stats.kind != "none":
                    self.refreshes += 1
                    log.debug("task store %s in %.3f s", stats.kind, stats.seconds)
            except Exception as exc:  # the lake is unreachable, say: keep trying
                self.error = f"{type(exc).__name__}: {exc}"
                log.error("the task store cannot follow the lake: %s", self.error)
            with self._changed:
                self._changed.notify_all()
            self._wake.wait(self.poll)
            self._wake.clear()

    def current(self, wait: float, build_wait: float | None = None) -> Store:
        """The store once it reflects the versions newest now, waiting at most ``wait``
        seconds (then as it is: one consistent set of versions, a moment old); a store never
        built yet is waited for up to ``build_wait`` (default ``wait``), then
        ``StoreUnavailable``."""
        self.start()
        want = self.tables.snapshot().versions
        start = time.monotonic()
        follow_deadline = start + wait
        build_deadline = start + (wait if build_wait is None else max(wait, build_wait))
        with self._changed:
            while True:
                have = self.store.snapshot.versions if self.store.snapshot else None
                if self.store.built and _reflects(have, want):
                    return self.store
                deadline = follow_deadline if self.store.built else build_deadline
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._wake.set()
                self._changed.wait(min(left, 1.0))
        if not self.store.built:
            why = f": {self.error}" if self.error else " (building it)"
            raise StoreUnavailable(f"the task store is not ready yet{why}; retry later")
        if self.error:
            raise StoreUnavailable(f"the task store cannot follow the lake: {self.error}")
        log.info("answering from the task store at %s (the lake is at %s)", have, want)
        return self.store
