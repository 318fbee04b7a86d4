"""A rendered DuckDB catalog script, read back as statements: its macros and its views.

``schemas.views.render_catalog`` writes one DuckDB script. DuckDB's ``CREATE MACRO`` (with
``name := default`` parameters) is not SQL that sqlglot parses, and Spark has nothing like a
table macro, so the head of a macro is read here and only its body is parsed; other engines
inline a macro where it is called (``schemas.spark.transpile``).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.dialects.duckdb import DuckDB
from sqlglot.tokenizer_core import TokenType

READ = "duckdb"
_MACRO = re.compile(
    r"CREATE\s+(?:OR\s+REPLACE\s+)?MACRO\s+(\w+)\s*\(([^()]*)\)\s+AS\s+(TABLE\b)?", re.I
)


@dataclass(frozen=True)
class Macro:
    """A DuckDB macro: ``name(params)`` stands for ``body`` with the arguments in place."""

    name: str
    params: tuple[str, ...]
    defaults: Mapping[str, exp.Expr]
    body: exp.Expr
    table: bool


@dataclass(frozen=True)
class View:
    name: str
    query: exp.Query


@dataclass(frozen=True)
class Script:
    macros: Mapping[str, Macro]
    views: tuple[View, ...]


def statements(script: str) -> list[str]:
    """The statements of ``script``, split at the semicolons outside strings and comments."""
    cuts = [0]
    for token in DuckDB().tokenize(script):
        if token.token_type == TokenType.SEMICOLON:
            cuts.append(token.end + 1)
    cuts.append(len(script))
    parts = (script[a:b].strip().rstrip(";").strip() for a, b in itertools.pairwise(cuts))
    return [p for p in parts if _code(p)]


def _code(statement: str) -> str:
    """``statement`` without its leading comment lines."""
    lines = statement.splitlines()
    while lines and (not lines[0].strip() or lines[0].lstrip().startswith("--")):
        lines.pop(0)
    return "\n".join(lines)


def parse_script(script: str) -> Script:
    """Every macro and view of a rendered catalog script, in order."""
    macros: dict[str, Macro] = {}
    views: list[View] = []
    for statement in statements(script):
        code = _code(statement)
        head = _MACRO.match(code)
        if head is not None:
            macro = _macro(head, code[head.end() :])
            macros[macro.name] = macro
            continue
        parsed = sqlglot.parse_one(code, read=READ)
        if isinstance(parsed, exp.Create) and parsed.kind == "TABLE":
            views.append(_empty_table(parsed))
            continue
        if not (isinstance(parsed, exp.Create) and parsed.kind == "VIEW"):
            raise ValueError(f"not a view, a table or a macro: {code[:80]!r}")
        query = parsed.expression
        assert isinstance(query, exp.Query), code[:80]
        views.append(View(parsed.this.name, query))
    return Script(macros, tuple(views))


def _empty_table(create: exp.Create) -> View:
    """A table the catalog creates for its client to fill (``model_prices``) as an empty
    relation of its columns: another engine's session starts with nothing in it."""
    schema = create.this
    columns = [
        exp.alias_(exp.cast(exp.null(), column.args["kind"]), column.name)
        for column in schema.expressions
        if isinstance(column, exp.ColumnDef)
    ]
    query = exp.select(*columns).where(exp.false())
    return View(schema.this.name, query)


def _macro(head: re.Match[str], body: str) -> Macro:
    params: list[str] = []
    defaults: dict[str, exp.Expr] = {}
    for part in head.group(2).split(","):
        if not part.strip():
            continue
        name, _, default = part.partition(":=")
        params.append(name.strip().lower())
        if default.strip():
            defaults[name.strip().lower()] = sqlglot.parse_one(default, read=READ)
    return Macro(
        name=head.group(1).lower(),
        params=tuple(params),
        defaults=defaults,
        body=sqlglot.parse_one(body, read=READ),
        table=head.group(3) is not None,
    )
