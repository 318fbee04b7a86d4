"""DuckDB over the lake, with the views loaded: the only way the read side touches the lake.

One connection holds the catalog (views and macros from ``schemas/``); each query runs on its
own cursor, so requests run concurrently and a time limit can ``interrupt()`` one without
touching the others. Its memory is bounded (``query_memory_limit``): the task store lives in a
file (``<store_dir>``) whose pages DuckDB evicts under pressure, and queries that need more
spill to ``<store_dir>/tmp``. Each query reads one version of every table, pinned on its
cursor just before it runs (``schemas.delta.Tables.pin``): the store's versions when it reads
the store, else the newest; a commit or compaction meanwhile never changes its answer. One
that outlived ``vacuum_retention`` and lost a file is pinned anew and run again.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa
from starlette.requests import Request

from schemas.delta import Snapshot, Tables, is_vanished_file_error
from schemas.prices import PriceBook, price_lake_models
from schemas.settings import Settings
from schemas.views import load_views
from service.follow import Follower, StoreUnavailable
from service.store import Store

#: How often a query is tried when compaction keeps replacing the files it listed.
VANISHED_FILE_TRIES = 3


#: Seconds a client is asked to wait before asking again after a 503 of the read side.
RETRY_AFTER_S = 5


class QueryError(Exception):
    """The query failed; ``status`` is the HTTP status it deserves and ``retry_after`` (seconds,
    0: none) whether asking again later can help. ``service.errors`` renders them."""

    status = 500
    retry_after = 0

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class QueryTimeout(QueryError):
    """The query ran past ``query_timeout``: the machine may be busy; retry later."""

    status = 503
    retry_after = RETRY_AFTER_S


class StoreNotReady(QueryError):
    """The task store is being built or cannot follow the lake: retry later."""

    status = 503
    retry_after = RETRY_AFTER_S


class QueryTooLarge(QueryError):
    """Out of memory under ``query_memory_limit``: a passing condition when other queries
    hold the memory, so 503 with Retry-After (a question that alone needs more than the
    limit keeps failing: the message says what to change)."""

    status = 503
    retry_after = RETRY_AFTER_S


def out_of_memory(settings: Settings, exc: duckdb.Error) -> QueryTooLarge:
    return QueryTooLarge(
        "the query needs more memory than query_memory_limit"
        f" ({settings.query_memory_limit >> 20} MiB) allows now; retry later, raise it, or"
        f" narrow the question: {exc}"
    )


class Database:
    """The lake as DuckDB sees it. Thread-safe: every call uses its own cursor."""

    def __init__(
        self, settings: Settings, *, threads: int | None = None, store: bool = True
    ) -> None:
        self.settings = settings
        self.store_dir = settings.effective_store_dir
        spill = self.store_dir / "tmp"
        spill.mkdir(parents=True, exist_ok=True)
        self.tables = Tables(settings.location, seed_dir=self.store_dir / "seeds")
        self.tables.ensure()
        config: dict[str, Any] = {
            "memory_limit": f"{max(settings.query_memory_limit // (1024 * 1024), 64)}MB",
            "temp_directory": str(spill),
        }
        if threads:
            config["threads"] = threads
        self._con = duckdb.connect(config=config)
        self._con.execute("SET GLOBAL TimeZone = 'UTC'")
        # Footers of unchanged files are read once, not per query (files are immutable).
        self._con.execute("SET GLOBAL parquet_metadata_cache = true")
        load_views(self._con, self.tables, settings)
        self._prices = PriceBook(settings.prices)
        self.timeout = settings.query_timeout
        self.read_wait = settings.read_wait
        self._columns: dict[str, list[str]] = {}
        self.store = (
            Store(
                self._con,
                self.tables,
                path=self.store_dir / f"{settings.effective_writer_id}.duckdb",
                settings=settings,
            )
            if store
            else None
        )
        # the store follows the lake from its own thread, from the first read on: a receiver
        # nobody reads from never spends memory on it
        self.follower = Follower(self.store, self.tables) if self.store else None

    def store_for(self, as_of: datetime | None = None) -> Store | None:
        """The store at the versions newest now (it answers for any ``as_of``); None when
        this database reads the views alone. Waits for the store's build at most
        ``query_timeout``, for it to follow the newest commit at most ``read_wait``."""
        del as_of  # the store decides tasks at any moment (tasks_at.sql)
        if self.follower is None:
            return None
        try:
            return self.follower.current(self.read_wait, build_wait=self.timeout)
        except StoreUnavailable as exc:
            raise StoreNotReady(str(exc)) from exc

    def price_models(self) -> None:
        """Price the models the views' model calls name that ``model_prices`` lacks (the
        store does this as it follows the lake; a database without one asks the views)."""
        cursor = self._con.cursor()
        try:
            self.tables.pin(cursor)
            price_lake_models(cursor, self._prices)
        finally:
            cursor.close()

    def columns(self, view: str) -> list[str]:
        """The column names of a view of the catalog, in order."""
        if view not in self._columns:
            cursor = self._con.cursor()
            try:
                self.tables.pin(cursor)
                rows = cursor.execute(f'DESCRIBE "{view}"').fetchall()
            finally:
                cursor.close()
            self._columns[view] = [r[0] for r in rows]
        return self._columns[view]

    def warm(self, timeout: float = 3600.0) -> None:
        """Wait until the store is built and at the newest versions (tools, benchmarks)."""
        if self.follower is not None:
            self.follower.current(timeout)

    def close(self) -> None:
        if self.follower is not None:
            self.follower.stop()
        if self.store is not None:
            self.store.close()
        self._con.close()

    def arrow(
        self,
        sql: str,
        params: Sequence[Any] | Mapping[str, Any] | None = None,
        *,
        as_of: datetime | None = None,
        timeout: float | None = None,
        snapshot: Snapshot | None = None,
    ) -> pa.Table:
        """Run one query and return its result as Arrow; ``snapshot``: the table versions it
        reads (default: the newest; a query of the store passes the store's)."""
        limit = self.timeout if timeout is None else timeout
        for attempt in range(VANISHED_FILE_TRIES):
            cursor = self._con.cursor()
            timer = threading.Timer(limit, cursor.interrupt) if limit > 0 else None
            try:
                self.tables.pin(cursor, snapshot if attempt == 0 else None)
                if as_of is not None:
                    cursor.execute("SET VARIABLE as_of = ?::TIMESTAMPTZ", [as_of])
                if timer is not None:
                    timer.start()
                result: pa.Table = cursor.execute(sql, params).to_arrow_table()
                return result
            except duckdb.InterruptException as exc:
                raise QueryTimeout(f"the query took longer than {limit:g} s") from exc
            except duckdb.OutOfMemoryException as exc:
                raise out_of_memory(self.settings, exc) from exc
            except duckdb.Error as exc:
                if is_vanished_file_error(exc) and attempt + 1 < VANISHED_FILE_TRIES:
                    continue
                raise QueryError(str(exc)) from exc
            finally:
                if timer is not None:
                    timer.cancel()
                cursor.close()
        raise AssertionError("unreachable")

    def rows(
        self,
        sql: str,
        params: Sequence[Any] | Mapping[str, Any] | None = None,
        *,
        as_of: datetime | None = None,
        timeout: float | None = None,
        snapshot: Snapshot | None = None,
    ) -> list[dict[str, Any]]:
        """Run one query and return its rows as dicts (Decimal, datetime, date values)."""
        rows: list[dict[str, Any]] = self.arrow(
            sql, params, as_of=as_of, timeout=timeout, snapshot=snapshot
        ).to_pylist()
        return rows

    def value(
        self,
        sql: str,
        params: Sequence[Any] | Mapping[str, Any] | None = None,
        *,
        as_of: datetime | None = None,
        snapshot: Snapshot | None = None,
    ) -> Any:
        table = self.arrow(sql, params, as_of=as_of, snapshot=snapshot)
        return table.column(0)[0].as_py() if table.num_rows else None


def get_db(request: Request) -> Database:
    """FastAPI dependency: the app's ``Database`` (``app.state.db``)."""
    db: Database = request.app.state.db
    return db
