"""The catalog's DuckDB SQL as Spark SQL, answer for answer.

sqlglot's Spark dialect does most of it (``count_if``, ``list_contains``, struct literals,
``IS NOT DISTINCT FROM``, ``ANTI JOIN``, ``EXCLUDE`` as ``EXCEPT``, NULL ordering made
explicit). What it does not, or would do with another answer, is done here on the syntax tree:

- **macros** are inlined where they are called: a scalar macro as its expression, a table macro
  (``cost_per_task_by(by_team := true)``) as a subquery, its parameters replaced by the
  arguments or their defaults; conditions on literal arguments are folded
  (``NULL IS NULL OR list_contains(NULL, x)`` is TRUE), as DuckDB's binder would;
- ``arg_min``/``arg_max`` skip rows whose value is NULL in DuckDB but not as Spark's
  ``min_by``/``max_by``: they get ``FILTER (WHERE value IS NOT NULL)``; ``arg_min_null`` is
  ``min_by`` itself;
- ``HUGEINT`` is ``DECIMAL(38, 0)``; ``epoch_us`` is ``unix_micros``; ``to_microseconds(n)`` is
  ``n * INTERVAL '1' MICROSECOND``; ``to_timestamp(s)`` is ``timestamp_seconds(s)``;
  ``MAP {}`` is ``map()``; ``map_contains`` is ``map_contains_key``; ``getvariable(name)`` is
  the value bound for it (``as_of``) or NULL; ``AS MATERIALIZED`` is dropped (a hint).

What would answer differently on Spark is refused (``NotPortable``), so a template that uses
it fails the Spark test instead of drifting: ``hash()`` (each engine hashes differently), a
recursive CTE with ``UNION`` (Spark runs ``UNION ALL`` only), ``UNION BY NAME``, ``ASOF JOIN``
and unsigned integers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal

import sqlglot
from sqlglot import exp
from sqlglot.dialects.spark import Spark

from schemas.spark.script import READ, Macro


class Spark4(Spark):
    """sqlglot's Spark dialect, keeping each WITH where it is: Spark 3+ runs CTEs nested in
    subqueries, and hoisting them (for Spark 2) would clash the names of inlined templates."""

    class Generator(Spark.Generator):  # type: ignore[valid-type, misc]
        EXPRESSIONS_WITHOUT_NESTED_CTES: set[type[exp.Expr]] = set()  # noqa: RUF012


WRITE = Spark4
#: The ``meta`` key naming the table macro a subquery was inlined from.
MACRO = "tasklake_macro"
#: Nesting of macros in macros deeper than this is a loop.
MAX_DEPTH = 32
#: DuckDB functions that Spark has under another name, with the same answer.
RENAMED = {
    "epoch_us": "UNIX_MICROS",
    "map_contains": "MAP_CONTAINS_KEY",
}
#: DuckDB functions whose answer depends on the engine.
ENGINE_DEPENDENT = frozenset({"hash", "random", "gen_random_uuid", "uuid"})
_UNSIGNED = {
    exp.DataType.Type.UTINYINT,
    exp.DataType.Type.USMALLINT,
    exp.DataType.Type.UINT,
    exp.DataType.Type.UBIGINT,
}
_WIDE = {exp.DataType.Type.INT128, exp.DataType.Type.UINT128}


class NotPortable(ValueError):
    """SQL that Spark would not run, or would answer differently: change the template."""


def literal(value: object) -> exp.Expr:
    """A Python value as a SQL literal (instants in UTC)."""
    if value is None:
        return exp.null()
    if isinstance(value, bool):
        return exp.true() if value else exp.false()
    if isinstance(value, int | float | Decimal):
        return exp.Literal.number(value)
    if isinstance(value, str):
        return exp.Literal.string(value)
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        text = moment.astimezone(UTC).isoformat(sep=" ")
        return exp.cast(exp.Literal.string(text), exp.DataType.build("TIMESTAMPTZ", dialect=READ))
    if isinstance(value, date):
        return exp.cast(exp.Literal.string(value.isoformat()), exp.DataType.build("DATE"))
    if isinstance(value, list | tuple):
        return exp.Array(expressions=[literal(v) for v in value])
    raise TypeError(f"no SQL literal for {type(value).__name__}")


class Transpiler:
    """DuckDB queries over the catalog, as Spark SQL (see module doc)."""

    def __init__(
        self, macros: Mapping[str, Macro], variables: Mapping[str, object] | None = None
    ) -> None:
        self.macros = macros
        self.variables = dict(variables or {})

    def to_spark(self, tree: exp.Expr) -> str:
        """``tree`` (expanded) as Spark SQL."""
        return spark_tree(tree.copy(), self.variables).sql(dialect=WRITE, pretty=True)

    def expand(self, tree: exp.Expr) -> exp.Expr:
        """``tree`` with every macro call inlined and literal conditions folded."""
        tree = tree.copy()
        for _ in range(MAX_DEPTH):
            calls = [
                n
                for n in tree.walk()
                if isinstance(n, exp.Anonymous) and n.name.lower() in self.macros
            ]
            if not calls:
                for node in tree.walk():
                    node.comments = None
                return fold(tree)
            for call in calls:
                if call is not tree and call.root() is not tree:
                    continue  # inside the arguments of a call inlined before it: copied there
                tree = self._inline(tree, call, self.macros[call.name.lower()])
        raise NotPortable(f"macros nested deeper than {MAX_DEPTH}: a macro calls itself?")

    def _inline(self, tree: exp.Expr, call: exp.Anonymous, macro: Macro) -> exp.Expr:
        body = substitute(macro.body.copy(), arguments(macro, call))
        if not macro.table:
            return _replace(tree, call, exp.Paren(this=body))
        table = call.parent
        if not isinstance(table, exp.Table):
            raise NotPortable(f"table macro {macro.name}() used outside FROM")
        while isinstance(body, exp.Subquery | exp.Paren) and not body.alias:
            body = body.this
        alias = table.args.get("alias") or exp.TableAlias(this=exp.to_identifier(macro.name))
        inlined = exp.Subquery(this=body, alias=alias)
        inlined.meta[MACRO] = macro.name
        return _replace(tree, table, inlined)


def parse(sql: str, params: Sequence[object] = ()) -> exp.Expr:
    """``sql`` (DuckDB) with its ``?`` placeholders bound to ``params`` as literals."""
    tree = sqlglot.parse_one(sql, read=READ)
    holes = [n for n in tree.walk(bfs=False) if isinstance(n, exp.Placeholder)]
    if len(holes) != len(params):
        raise ValueError(f"{len(holes)} placeholders, {len(params)} parameters")
    for hole, value in zip(holes, params, strict=True):
        tree = _replace(tree, hole, literal(value))
    return tree


def _replace(tree: exp.Expr, node: exp.Expr, by: exp.Expr) -> exp.Expr:
    if node is tree:
        return by
    node.replace(by)
    return tree


def arguments(macro: Macro, call: exp.Anonymous) -> dict[str, exp.Expr]:
    """Each parameter of ``macro`` bound to the argument of ``call`` or to its default."""
    bound: dict[str, exp.Expr] = {}
    positional = 0
    for arg in call.expressions:
        if isinstance(arg, exp.PropertyEQ | exp.Kwarg):
            name = arg.this.name.lower()
            if name not in macro.params:
                raise NotPortable(f"{macro.name}() has no parameter {name}")
            bound[name] = arg.expression
        else:
            if positional >= len(macro.params):
                raise NotPortable(f"{macro.name}() takes {len(macro.params)} arguments")
            bound[macro.params[positional]] = arg
            positional += 1
    for name in macro.params:
        if name not in bound:
            if name not in macro.defaults:
                raise NotPortable(f"{macro.name}() needs its argument {name}")
            bound[name] = macro.defaults[name]
    return bound


def substitute(body: exp.Expr, args: Mapping[str, exp.Expr]) -> exp.Expr:
    """``body`` with every unqualified column named like a parameter replaced by its value."""
    for column in list(body.find_all(exp.Column)):
        name = column.name.lower()
        if not column.table and name in args:
            value = _atom(args[name].copy())
            if column is body:
                return value
            column.replace(value)
    return body


def _atom(e: exp.Expr) -> exp.Expr:
    """``e`` parenthesized unless it already binds tighter than any operator around it."""
    atomic = exp.Column | exp.Literal | exp.Null | exp.Boolean | exp.Paren | exp.Func | exp.Array
    return e if isinstance(e, atomic) else exp.Paren(this=e)


# ---------------------------------------------------------------------- folding


def fold(tree: exp.Expr) -> exp.Expr:
    """``tree`` with the boolean logic on literals decided (children before parents)."""
    for node in reversed(list(tree.walk(bfs=False))):
        folded = _fold(node)
        if folded is not node:
            tree = _replace(tree, node, folded)
    return tree


def key(query: exp.Expr) -> str:
    """What ``query`` computes, as text to compare (sqlglot's generic SQL: it neither copies
    nor rewrites the tree)."""
    return query.sql(copy=False)


def star_source(query: exp.Expr) -> exp.Expr | None:
    """X when ``query`` is ``SELECT * FROM X`` and nothing else."""
    if not isinstance(query, exp.Select) or len(query.expressions) != 1:
        return None
    if not isinstance(query.expressions[0], exp.Star) or query.expressions[0].args.get("except"):
        return None
    source = query.args.get("from_")
    others = {k for k, v in query.args.items() if v and k not in ("expressions", "from_")}
    return source.this if source is not None and not others else None


def _truth(e: exp.Expr | None) -> bool | None:
    return e.this if isinstance(e, exp.Boolean) else None


def _fold(node: exp.Expr) -> exp.Expr:
    if isinstance(node, exp.Select) and _truth(node.args.get("where") and node.args["where"].this):
        node.set("where", None)  # WHERE TRUE
    if isinstance(node, exp.Subquery):  # (SELECT * FROM x) AS a is x AS a
        source = star_source(node.this)
        if isinstance(source, exp.Table | exp.Subquery):
            source = source.copy()
            source.set("alias", node.args.get("alias") or source.args.get("alias"))
            return source
    if isinstance(node, exp.Is) and isinstance(node.expression, exp.Null):
        if isinstance(node.this, exp.Null):
            return exp.true()
        if isinstance(node.this, exp.Literal | exp.Boolean | exp.Array):
            return exp.false()
    if isinstance(node, exp.Not | exp.Paren) and _truth(node.this) is not None:
        value = bool(_truth(node.this))
        return exp.Boolean(this=not value if isinstance(node, exp.Not) else value)
    if isinstance(node, exp.And | exp.Or):
        decisive = isinstance(node, exp.Or)  # TRUE decides an OR, FALSE an AND
        left, right = _truth(node.this), _truth(node.expression)
        if decisive in (left, right):
            return exp.Boolean(this=decisive)
        kept: exp.Expr | None = None  # the side that decides when the other is a literal
        if left is not None:
            kept = node.expression
        elif right is not None:
            kept = node.this
        if kept is not None:
            return kept
    return node


# ---------------------------------------------------------------------- Spark


def spark_tree(tree: exp.Expr, variables: Mapping[str, object]) -> exp.Expr:
    """``tree`` (macros inlined) with DuckDB's constructs rewritten as Spark's (module doc)."""
    for node in list(tree.walk()):
        if isinstance(node, exp.ArgMin | exp.ArgMax):
            _skip_null_values(node)
        elif isinstance(node, exp.Select):
            _star_replace(node)
    for node in reversed(list(tree.walk(bfs=False))):
        rewritten = _spark(node, variables)
        if rewritten is not node:
            tree = _replace(tree, node, rewritten)
    return tree


def _skip_null_values(node: exp.ArgMin | exp.ArgMax) -> None:
    """DuckDB's arg_min(x, by) ignores rows where x is NULL; Spark's min_by does not."""
    present = exp.not_(exp.Is(this=node.this.copy(), expression=exp.null()))
    parent = node.parent
    if isinstance(parent, exp.Filter) and parent.this is node:
        where = parent.expression
        where.set("this", exp.and_(where.this, present))
    elif isinstance(parent, exp.Window):
        raise NotPortable("arg_min/arg_max as a window function")
    else:
        node.replace(exp.Filter(this=node.copy(), expression=exp.Where(this=present)))


def _star_replace(select: exp.Select) -> None:
    """``* REPLACE (e AS c)`` (Spark has none) as ``* EXCEPT (c), e AS c``: the same columns,
    the replaced ones after the others."""
    out: list[exp.Expr] = []
    for projection in select.expressions:
        star = projection.this if isinstance(projection, exp.Column) else projection
        replaced = star.args.get("replace") if isinstance(star, exp.Star) else None
        out.append(projection)
        if not replaced:
            continue
        dropped = list(star.args.get("except_") or [])
        dropped += [exp.column(alias.alias) for alias in replaced]
        star.set("replace", None)
        star.set("except_", dropped)
        out.extend(replaced)
    select.set("expressions", out)


def _spark(node: exp.Expr, variables: Mapping[str, object]) -> exp.Expr:
    if isinstance(node, exp.Anonymous):
        return _function(node, variables)
    if isinstance(node, exp.DataType):
        if node.this in _WIDE:
            return exp.DataType.build("DECIMAL(38, 0)")
        if node.this in _UNSIGNED:
            raise NotPortable(f"unsigned type {node.sql(READ)}: Spark has none")
    if isinstance(node, exp.CTE) and node.args.get("materialized"):
        node.set("materialized", None)
    if isinstance(node, exp.Union) and node.args.get("by_name"):
        raise NotPortable("UNION BY NAME: list the columns in the same order on both sides")
    if isinstance(node, exp.With) and node.args.get("recursive"):
        for cte in node.expressions:
            if isinstance(cte.this, exp.Union) and cte.this.args.get("distinct"):
                raise NotPortable(f"recursive CTE {cte.alias} with UNION: Spark runs UNION ALL")
    if isinstance(node, exp.Join) and node.args.get("method"):
        raise NotPortable(f"{node.args['method']} JOIN: Spark has none")
    if isinstance(node, exp.ToMap) and not node.this.expressions:
        return exp.Anonymous(this="MAP", expressions=[])
    if isinstance(node, exp.UnixToTime) and node.args.get("scale") is None:
        return exp.Anonymous(this="TIMESTAMP_SECONDS", expressions=[node.this])
    return node


def _function(node: exp.Anonymous, variables: Mapping[str, object]) -> exp.Expr:
    name = node.name.lower()
    args = node.expressions
    if name in ENGINE_DEPENDENT:
        raise NotPortable(f"{name}() answers differently in each engine")
    if name in RENAMED:
        return exp.Anonymous(this=RENAMED[name], expressions=args)
    if name == "arg_min_null":
        return exp.ArgMin(this=args[0], expression=args[1])
    if name == "arg_max_null":
        return exp.ArgMax(this=args[0], expression=args[1])
    if name == "to_microseconds":
        unit = exp.Interval(this=exp.Literal.string("1"), unit=exp.var("MICROSECOND"))
        return exp.Paren(this=exp.Mul(this=_atom(args[0]), expression=unit))
    if name == "getvariable":
        return literal(variables.get(args[0].name))
    return node
