"""The task store served within a bound on staleness, refreshed by a thread of its own.

Under steady ingest ``Database.store_for`` used to refresh the store before every query
(``Store.refresh``): each answer waited for the incremental refresh of whatever was committed
since the previous one, seconds while signals and spans arrive every second. With
``store_staleness`` > 0 a thread follows the Delta logs and a query reads the store as it is,
unless the state it reflects is older than ``store_staleness`` seconds and the thread makes no
progress (failing, stuck in one refresh longer than that, or not started): then the query
refreshes it first, as before. A slow refresh of the thread is not waited for: the store may
then be the bound plus one refresh behind. 0 keeps the
synchronous refresh (read after write, what scripts that write then read expect).
"""

from __future__ import annotations

import logging
import math
import threading
import time

from service.store import Store

log = logging.getLogger(__name__)

#: Seconds between two refreshes of the follower thread (a refresh with no new commit costs
#: one look at each log).
FOLLOW_INTERVAL = 0.25


class StoreFollower:
    """Keeps ``store`` at most ``staleness`` seconds behind the lake's newest versions."""

    def __init__(self, store: Store, staleness: float, interval: float = FOLLOW_INTERVAL) -> None:
        self.store = store
        self.staleness = staleness
        self.interval = interval
        self.last_error: str | None = None
        self._fresh_at = -math.inf  # the store reflects every commit made before this moment
        self._busy_since: float | None = None  # the follower's refresh running since
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def refresh(self) -> None:
        started = time.monotonic()
        self.store.refresh()
        self._fresh_at = max(self._fresh_at, started)

    def current(self) -> Store:
        """The store, refreshed by the caller only when staler than the bound while the
        follower makes no progress: a refresh of the follower younger than the bound is
        not waited for (the store is then at most the bound plus one refresh behind)."""
        now = time.monotonic()
        busy = self._busy_since
        progressing = busy is not None and now - busy <= self.staleness
        if now - self._fresh_at > self.staleness and not progressing:
            self.refresh()
        self._start()
        return self.store

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(
                    target=self._run, name="tasklake-store-follower", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._busy_since = time.monotonic()
            try:
                self.refresh()
                self.last_error = None
            except Exception as exc:  # queries refresh themselves once the bound is passed
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("refreshing the task store failed (queries will): %s", exc)
                self._busy_since = None
                self._stop.wait(min(30.0, 10 * self.interval))
            finally:
                self._busy_since = None

    def stop(self, timeout: float = 60.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
