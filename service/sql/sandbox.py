"""Where an engineer's query runs: a DuckDB that holds only what the caller may read, locked.

Two kinds, both locked the same way before any query of a caller runs (``lock``): no external
access (``enable_external_access = false``: no file, URL, extension or database beyond the
``allowed`` directories), no Python objects found by name, no autoloading of extensions, no
spill directory, and ``lock_configuration = true`` (no ``SET`` can undo any of it). DuckDB has
no grants: whatever a sandbox's catalog holds is readable, so the catalog is the boundary.

- **scoped** (a team-scoped token): a fresh in-memory DuckDB per query whose catalog is the
  caller's rows of the views the query names (``service.sql.scoped``) as Arrow tables, plus
  the macros and the views computed from them. No file may be read at all.
- **lake** (an unscoped token, ``tasklake sql -c``): one long-lived DuckDB with the views over
  the lake's pinned files (``schemas.views.load_views``); it may read the tables' directories
  and nothing else. Each query runs on its own cursor, pinned to one version of every table.

``run`` applies the limits of one query: a time limit (a timer interrupts it: 503 with
Retry-After, as every read query), DuckDB's ``memory_limit`` (out of memory: 503, the message
says what to change), and a row cap (``query_max_rows``: the answer says it was truncated).
DuckDB's refusals become the endpoint's: a file it may not touch is 403, any other error in
the query 400.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

from schemas.settings import Settings
from service.db import QueryTimeout, QueryTooLarge
from service.sql.statements import SqlRefused

#: Rows per batch read from a result (the row cap stops reading at the first batch past it).
BATCH_ROWS = 2048


@dataclass(frozen=True)
class Answer:
    """A query's columns (names and DuckDB types) and rows, and whether rows were cut."""

    table: pa.Table
    types: list[str]
    truncated: bool


def connect(settings: Settings, *, threads: int | None = 1) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB bounded by ``query_memory_limit``, not locked yet."""
    config: dict[str, Any] = {
        "memory_limit": f"{max(settings.query_memory_limit // (1024 * 1024), 64)}MB",
        "temp_directory": "",  # nowhere to spill, and no directory to reach through it
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
    }
    if threads:
        config["threads"] = threads
    con = duckdb.connect(":memory:", config=config)
    con.execute("SET TimeZone = 'UTC'")
    return con


def lock(con: duckdb.DuckDBPyConnection, allowed: Sequence[str] = ()) -> None:
    """Lock ``con`` for good (see module doc): only ``allowed`` directories stay readable."""
    if allowed:
        listed = ", ".join("'" + a.replace("'", "''") + "'" for a in allowed)
        con.execute(f"SET allowed_directories = [{listed}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET python_enable_replacements = false")
    con.execute("SET python_scan_all_frames = false")
    con.execute("SET lock_configuration = true")


def run(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    *,
    timeout: float,
    max_rows: int,
    settings: Settings,
    prepare: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
) -> Answer:
    """Run ``sql`` (one checked query) on ``con`` within the limits; ``prepare`` readies the
    connection first (pins the tables' versions)."""
    if timeout <= 0:
        raise QueryTimeout(_late(settings))
    timer = threading.Timer(timeout, con.interrupt)
    try:
        if prepare is not None:
            prepare(con)
        timer.start()
        result = con.execute(sql)
        types = [str(d[1]) for d in (result.description or [])]
        reader = result.to_arrow_reader(BATCH_ROWS)
        batches: list[pa.RecordBatch] = []
        held = 0
        truncated = False
        for batch in reader:
            batches.append(batch)
            held += batch.num_rows
            if held > max_rows:
                truncated = True
                break
        table = pa.Table.from_batches(batches, schema=reader.schema).slice(0, max_rows)
        return Answer(table, types, truncated)
    except duckdb.InterruptException as exc:
        raise QueryTimeout(_late(settings)) from exc
    except duckdb.OutOfMemoryException as exc:
        raise QueryTooLarge(
            "the query needs more memory than query_memory_limit"
            f" ({settings.query_memory_limit >> 20} MiB) allows: narrow it (fewer rows or"
            f" columns, a LIMIT, an aggregate) or raise the limit; {_first_line(exc)}"
        ) from exc
    except duckdb.PermissionException as exc:
        raise SqlRefused(
            403, f"sql: not allowed here: only the views can be read ({_first_line(exc)})"
        ) from exc
    except duckdb.Error as exc:
        raise SqlRefused(400, f"sql: {_first_line(exc)}") from exc
    finally:
        timer.cancel()


def _late(settings: Settings) -> str:
    return (
        f"the query took longer than {settings.query_timeout:g} s (query_timeout): narrow it,"
        " or retry when the server is less busy"
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
