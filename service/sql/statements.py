"""Which SQL the query endpoint runs: one read-only query, decided by DuckDB's own parser.

``check`` parses the text with DuckDB (no regular expressions): it must hold exactly one
statement, of type SELECT, that DuckDB can serialize as a query (``json_serialize_sql``:
SELECT, WITH … SELECT, FROM-first, VALUES, DESCRIBE, SUMMARIZE, SHOW, PIVOT-free). Anything
else is refused before it reaches a database: a parse error or several statements is 400; a
statement that is not a query (ATTACH, COPY, CREATE, INSERT, SET, PRAGMA, INSTALL, LOAD, CALL,
EXPORT, EXPLAIN, …) is 403, naming it. The sandbox (``service.sql.sandbox``) is the second
layer: what a query may reach once it runs.

``check`` also lists the names the query uses (``BASE_TABLE`` references of the parse tree,
CTE names included, and function names): a team-scoped sandbox is filled with those views
only (``cost_per_task_by`` brings the tables ``cost_per_task`` is computed from).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

import duckdb

from service.db import QueryError

#: Longest SQL text accepted (a query is text a person writes, not a data upload).
MAX_SQL_CHARS = 100_000


class SqlRefused(QueryError):
    """The text is not one query the endpoint runs: 400 (malformed) or 403 (not allowed)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Checked:
    """One query, and the relations and functions it names (lower case)."""

    sql: str
    names: frozenset[str]


_parser = threading.local()


def _connection() -> duckdb.DuckDBPyConnection:
    """A connection holding nothing, only to parse (one per thread: they are not shared)."""
    con = getattr(_parser, "con", None)
    if con is None:
        con = duckdb.connect(config={"enable_external_access": False, "threads": 1})
        con.execute("SET lock_configuration = true")
        _parser.con = con
    return con


ALLOWED = "the endpoint runs one read-only query (SELECT, WITH, FROM, VALUES, DESCRIBE,"
ALLOWED += " SUMMARIZE, SHOW)"


def _first_word(sql: str) -> str:
    """The statement's first keyword, as DuckDB's tokenizer finds it (for messages)."""
    tokens = duckdb.tokenize(sql)
    if not tokens:
        return ""
    end = tokens[1][0] if len(tokens) > 1 else len(sql)
    words = sql[tokens[0][0] : end].split()
    return words[0].upper() if words else ""


def check(sql: str) -> Checked:
    """``sql`` as one allowed query; else ``SqlRefused`` (see module doc)."""
    if len(sql) > MAX_SQL_CHARS:
        raise SqlRefused(400, f"sql: longer than {MAX_SQL_CHARS} characters")
    con = _connection()
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise SqlRefused(400, f"sql: {_first_line(exc)}") from None
    if not statements:
        raise SqlRefused(400, "sql: no statement")
    if len(statements) > 1:
        raise SqlRefused(400, f"sql: one statement at a time ({len(statements)} given)")
    tree = _serialized(con, sql) if statements[0].type == duckdb.StatementType.SELECT else None
    if tree is None or tree.get("error"):
        word = _first_word(sql) or statements[0].type.name
        raise SqlRefused(403, f"sql: {word} is not allowed: {ALLOWED}")
    return Checked(sql, frozenset(_names(tree)))


def _serialized(con: duckdb.DuckDBPyConnection, sql: str) -> dict[str, Any]:
    try:
        row = con.execute("SELECT json_serialize_sql(?::VARCHAR)", [sql]).fetchone()
    except duckdb.Error as exc:
        raise SqlRefused(400, f"sql: {_first_line(exc)}") from None
    doc = json.loads(row[0]) if row else {"error": True}
    return doc if isinstance(doc, dict) else {"error": True}


def _names(node: Any) -> set[str]:
    found: set[str] = set()
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, dict):
            if n.get("type") == "BASE_TABLE" and isinstance(n.get("table_name"), str):
                found.add(n["table_name"].lower())
            if isinstance(n.get("function_name"), str):  # table macros: cost_per_task_by
                found.add(n["function_name"].lower())
            stack.extend(n.values())
        elif isinstance(n, list):
            stack.extend(n)
    return found


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
