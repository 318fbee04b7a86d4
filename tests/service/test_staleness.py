"""The bounded-staleness follower (PROTOTYPE): a query refreshes the store only when it is
staler than the bound; otherwise the follower thread keeps it fresh."""

from __future__ import annotations

import threading
import time
from typing import Any, cast

from service.staleness import StoreFollower
from service.store import Store


class _CountingStore:
    def __init__(self) -> None:
        self.refreshes = 0
        self.threads: set[str] = set()

    def refresh(self) -> None:
        self.refreshes += 1
        self.threads.add(threading.current_thread().name)


def _follower(store: _CountingStore, staleness: float, interval: float) -> StoreFollower:
    return StoreFollower(cast(Store, cast(Any, store)), staleness, interval=interval)


def test_a_query_refreshes_only_a_store_staler_than_the_bound() -> None:
    store = _CountingStore()
    follower = _follower(store, staleness=60.0, interval=3600.0)
    try:
        follower.current()  # never refreshed: stale
        follower.current()
        follower.current()
        assert store.refreshes == 1
    finally:
        follower.stop()


def test_the_follower_thread_keeps_refreshing() -> None:
    store = _CountingStore()
    follower = _follower(store, staleness=60.0, interval=0.01)
    try:
        follower.current()
        deadline = time.monotonic() + 10
        while store.refreshes < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert store.refreshes >= 4
        assert "tasklake-store-follower" in store.threads
    finally:
        follower.stop()


def test_zero_staleness_means_every_query_refreshes() -> None:
    store = _CountingStore()
    follower = _follower(store, staleness=0.0, interval=3600.0)
    try:
        follower.current()
        time.sleep(0.01)
        follower.current()
        assert store.refreshes == 2
    finally:
        follower.stop()


def test_a_query_does_not_wait_for_a_young_refresh_of_the_follower() -> None:
    store = _CountingStore()
    entered, release = threading.Event(), threading.Event()
    plain = store.refresh

    def slow_in_follower() -> None:
        plain()
        if threading.current_thread().name == "tasklake-store-follower":
            entered.set()
            release.wait(10)

    store.refresh = slow_in_follower  # type: ignore[method-assign]
    follower = _follower(store, staleness=0.3, interval=0.5)
    try:
        follower.current()  # refreshed by the caller; the follower's first refresh is slow
        assert entered.wait(10)
        before = store.refreshes
        follower.current()  # stale, but the follower's refresh is young: served as is
        assert store.refreshes == before
    finally:
        release.set()
        follower.stop()
