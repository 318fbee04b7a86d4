"""``tasklake sql``: the lake owner's interactive DuckDB, and ``-c`` through the query endpoint.

``-c "..."`` runs one query exactly as ``POST /api/v1/query`` does for an unscoped token
(``service.sql``: one read-only statement, the sandbox, ``query_timeout``,
``query_memory_limit``, ``query_max_rows``), printed as a table, CSV or JSON.

Without ``-c`` it is a shell for the person who owns the lake, on their machine: full DuckDB
(any statement, any file) with the views over each table's newest version loaded, but every
statement still stops at ``query_timeout`` and the database at ``query_memory_limit``
(spilling to ``<store_dir>/tmp``). End a statement with ``;``; ``.quit`` leaves; Ctrl-C stops
the running statement.
"""

from __future__ import annotations

import sys
import threading
from typing import TextIO

import duckdb

from schemas.delta import Tables
from schemas.prices import PriceBook, price_lake_models
from schemas.settings import Settings
from schemas.views import PUBLIC_VIEWS, load_latest_views
from service.api.render import arrow_rows, dumps
from service.db import QueryError
from service.sql import Answer, SqlRunner

FORMATS = ("table", "csv", "json")


def run_command(settings: Settings, sql: str, fmt: str = "table", out: TextIO = sys.stdout) -> int:
    """``tasklake sql -c``: 0 when answered, 1 when refused or failed (message on stderr)."""
    runner = SqlRunner(settings, _tables(settings))
    try:
        answer = runner.query(sql)
    except QueryError as exc:
        print(f"tasklake sql: {exc.message}", file=sys.stderr)
        return 1
    finally:
        runner.close()
    print_answer(answer, fmt, out)
    return 0


def _tables(settings: Settings) -> Tables:
    """The lake's tables, created when new (as the server does): a fresh lake answers empty."""
    tables = Tables(settings.location, seed_dir=settings.effective_store_dir / "seeds")
    tables.ensure()
    return tables


def print_answer(answer: Answer, fmt: str, out: TextIO) -> None:
    table = answer.table
    if fmt == "json":
        doc = {
            "columns": table.column_names,
            "types": answer.types,
            "rows": arrow_rows(table),
            "truncated": answer.truncated,
        }
        out.write(dumps(doc) + "\n")
    elif fmt == "csv":
        import csv

        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(table.column_names)
        writer.writerows(
            [dumps(v) if isinstance(v, dict | list) else v for v in row]
            for row in arrow_rows(table)
        )
    else:
        out.write(str(duckdb.connect().from_arrow(table)))
    if answer.truncated:
        print(f"tasklake sql: truncated at query_max_rows ({table.num_rows} rows)", file=sys.stderr)


def interactive(settings: Settings) -> int:
    """The shell (see module doc)."""
    spill = settings.effective_store_dir / "tmp"
    spill.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(
        config={
            "memory_limit": f"{max(settings.query_memory_limit // (1024 * 1024), 64)}MiB",
            "temp_directory": str(spill),
        }
    )
    con.execute("SET TimeZone = 'UTC'")
    _tables(settings)
    load_latest_views(con, settings.location, settings)
    price_lake_models(con, PriceBook(settings.prices))
    print(
        f"tasklake: views loaded over {settings.location.root} ({', '.join(PUBLIC_VIEWS[:4])},"
        f" …); each statement stops after {settings.query_timeout:g} s, memory"
        f" {settings.query_memory_limit >> 20} MiB. End with ';', .quit to leave."
    )
    buffer = ""
    while True:
        try:
            line = input("tasklake> " if not buffer else "      ...> ")
        except EOFError:
            print()
            return 0
        except KeyboardInterrupt:
            print()
            buffer = ""
            continue
        if not buffer and line.strip() in (".quit", ".exit", ".q"):
            return 0
        buffer += line + "\n"
        if buffer.strip() and buffer.rstrip().endswith(";"):
            execute(con, buffer, settings.query_timeout)
            buffer = ""


def execute(con: duckdb.DuckDBPyConnection, text: str, timeout: float) -> None:
    """Run each statement of ``text``, printing its result; stop one at ``timeout``."""
    try:
        statements = con.extract_statements(text)
    except duckdb.Error as exc:
        print(exc)
        return
    for statement in statements:
        timer = threading.Timer(timeout, con.interrupt)
        timer.start()
        try:
            relation = con.sql(statement.query)
            if relation is not None:
                print(relation)
        except duckdb.InterruptException:
            print(f"stopped: longer than query_timeout ({timeout:g} s)")
            return
        except KeyboardInterrupt:
            con.interrupt()
            print("interrupted")
            return
        except duckdb.Error as exc:
            print(exc)
            return
        finally:
            timer.cancel()
