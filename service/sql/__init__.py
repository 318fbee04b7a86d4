"""Read-only SQL over the views, for engineers: ``POST /api/v1/query`` and ``tasklake sql -c``.

Safe in layers, as Datasette does it: a permission to run SQL at all (the ``read`` scope), a
parser that lets one read-only query through (``statements``), a sandbox that can reach
nothing but what the caller may read (``sandbox``; for a team-scoped token its teams' rows,
``scoped``), and the limits of one query (time, memory, rows). ``SqlRunner.query`` is the one
path both doors take.
"""

from __future__ import annotations

import threading
import time

import duckdb

from schemas.auth import ANONYMOUS, Principal
from schemas.delta import Tables
from schemas.prices import PriceBook, price_lake_models
from schemas.settings import Settings
from schemas.views import TABLE_INPUTS, load_views, render_prelude
from service.db import Database
from service.sql import scoped
from service.sql.sandbox import Answer, connect, lock, run
from service.sql.statements import Checked, SqlRefused, check

__all__ = ["Answer", "SqlRefused", "SqlRunner"]


class SqlRunner:
    """Runs one query for a caller in its sandbox (see ``service.sql.sandbox``). ``db``:
    the service's database, whose task store a team-scoped caller's rows come from (None
    for the command line: unscoped only)."""

    def __init__(self, settings: Settings, tables: Tables, db: Database | None = None) -> None:
        self.settings = settings
        self.tables = tables
        self.db = db
        self._lake: duckdb.DuckDBPyConnection | None = None
        self._lock = threading.Lock()
        self.cache = scoped.ViewCache(settings.query_memory_limit // 4)

    @classmethod
    def for_database(cls, db: Database) -> SqlRunner:
        return cls(db.settings, db.tables, db)

    def query(self, sql: str, principal: Principal = ANONYMOUS) -> Answer:
        """``sql`` run for ``principal``; ``SqlRefused`` (400/403) or a ``QueryError``."""
        checked = check(sql)
        if principal.teams is None:
            return self._on_lake(checked)
        return self._scoped(checked, sorted(principal.teams))

    def close(self) -> None:
        with self._lock:
            if self._lake is not None:
                self._lake.close()
                self._lake = None

    # ------------------------------------------------------------------ the two sandboxes

    def _scoped(self, checked: Checked, teams: list[str]) -> Answer:
        if self.db is None:
            raise SqlRefused(403, "sql: team-scoped queries need the server's task store")
        settings = self.settings
        started = time.monotonic()
        views = scoped.closure(checked.names)
        deadline = started + settings.query_timeout
        tables, derived = scoped.materialize(self.db, views, teams, deadline, self.cache)
        con = connect(settings)
        try:
            con.execute(render_prelude())
            for name, table in tables.items():
                con.register(name, table)
            for statement in derived:
                con.execute(statement)
            lock(con)
            left = deadline - time.monotonic()
            return run(
                con, checked.sql, timeout=left, max_rows=settings.query_max_rows, settings=settings
            )
        finally:
            con.close()

    def _on_lake(self, checked: Checked) -> Answer:
        settings = self.settings
        cursor = self._lake_connection().cursor()
        try:
            return run(
                cursor,
                checked.sql,
                timeout=settings.query_timeout,
                max_rows=settings.query_max_rows,
                settings=settings,
                prepare=self._pin,
            )
        finally:
            cursor.close()

    def _pin(self, cursor: duckdb.DuckDBPyConnection) -> None:
        """One version of every table for the whole query: the store's when there is one
        (the API's answers read the same), else the newest."""
        store = self.db.store if self.db is not None else None
        snapshot = store.snapshot if store is not None and store.built else None
        self.tables.pin(cursor, snapshot)

    def _lake_connection(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            if self._lake is None:
                con = connect(self.settings, threads=None)
                load_views(con, self.tables, self.settings)
                self.tables.pin(con)
                # the models of the lake so far (the levers price what-ifs with them)
                price_lake_models(con, PriceBook(self.settings.prices))
                lock(con, self._readable())
                self._lake = con
            return self._lake

    def _readable(self) -> list[str]:
        """The directories the lake sandbox reads: each table's, and the seed files'."""
        dirs = [self.tables.uri(t).rstrip("/") + "/" for t in TABLE_INPUTS]
        if self.tables.seed_dir is not None:
            dirs.append(str(self.tables.seed_dir.resolve()).rstrip("/") + "/")
        return dirs
