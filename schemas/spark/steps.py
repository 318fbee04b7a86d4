"""Which parts of the expanded views are views of their own on Spark.

DuckDB's catalog inlines a template wherever a macro rebinds its input (``tasks_in(NULL,
NULL)`` holds its own copy of the whole chain from the spans up), and it shares each CTE a
query reads twice. Spark does neither: a view is a macro to it, and a deterministic CTE is
inlined at every reference, so a diamond of CTEs over a diamond of views grows exponentially
while it is analyzed. So, after the macros are expanded:

- ``Shared.reuse``: a subquery that computes what an earlier view computes reads that view;
- ``hoist``: a subquery found in several views becomes a view of its own, before its first
  reader;
- ``readers``: which views other views read (the steps a session materializes once).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator

from sqlglot import exp

from schemas.spark.transpile import MACRO, key, star_source

#: Subqueries shorter than this (as SQL) are not worth a view of their own.
HOIST_MIN_CHARS = 400

View = tuple[str, exp.Expr]


class Shared:
    """The defining queries of the views so far, to find them again inside later ones."""

    def __init__(self) -> None:
        self.known: dict[str, str] = {}  # a defining query's SQL -> its view

    def remember(self, name: str, tree: exp.Expr) -> None:
        core: exp.Expr = tree
        while True:  # SELECT * FROM (q) defines q too
            self.known.setdefault(key(core), name)
            inner = star_source(core)
            if not isinstance(inner, exp.Subquery):
                return
            core = inner.this

    def reuse(self, tree: exp.Expr) -> exp.Expr:
        """``tree`` with each subquery that is the defining query of a known view replaced by
        that view (innermost first, so an enclosing copy matches in its turn)."""
        for node in reversed(list(tree.walk(bfs=False))):
            if isinstance(node, exp.Subquery):
                name = self.known.get(key(node.this))
                if name is not None:
                    tree = _by_view(tree, node, name)
        return tree


def _by_view(tree: exp.Expr, node: exp.Subquery, name: str) -> exp.Expr:
    table = exp.Table(this=exp.to_identifier(name), alias=node.args.get("alias"))
    if node is tree:
        return table
    node.replace(table)
    return tree


def relations(tree: exp.Expr) -> Iterator[exp.Subquery]:
    """The subqueries read as relations (in FROM or JOIN): never correlated."""
    for node in tree.walk():
        if isinstance(node, exp.Subquery) and isinstance(node.parent, exp.From | exp.Join):
            yield node


def tables_read(tree: exp.Expr) -> set[str]:
    """The relations ``tree`` reads by name, less the CTEs it defines."""
    ctes = {cte.alias for cte in tree.find_all(exp.CTE)}
    return {t.name for t in tree.find_all(exp.Table) if t.name not in ctes}


def hoist(views: list[View], inputs: Iterable[str]) -> list[View]:
    """``views`` with every subquery that two views (or one, twice) compute made a view of
    its own, named after the table macro it came from; largest first."""
    views = list(views)
    base = set(inputs)
    while True:
        counts: Counter[str] = Counter()
        first: dict[str, tuple[int, exp.Subquery]] = {}
        for i, (_, tree) in enumerate(views):
            for sub in relations(tree):
                k = key(sub.this)
                counts[k] += 1
                first.setdefault(k, (i, sub))
        candidates = [
            k
            for k, n in counts.items()
            if n > 1
            and len(k) >= HOIST_MIN_CHARS
            and tables_read(first[k][1].this) <= base | {name for name, _ in views[: first[k][0]]}
        ]
        if not candidates:
            return views
        chosen = max(candidates, key=len)
        at, sample = first[chosen]
        name = _fresh(str(sample.meta.get(MACRO, "step")) + "_rows", {n for n, _ in views})
        body = sample.this.copy()
        for i, (view, tree) in enumerate(views):
            out = tree
            for sub in list(relations(tree)):
                if key(sub.this) == chosen:
                    out = _by_view(out, sub, name)
            views[i] = (view, out)
        views.insert(at, (name, body))


def _fresh(name: str, taken: set[str]) -> str:
    out, n = name, 1
    while out in taken:
        n += 1
        out = f"{name}_{n}"
    return out


def readers(views: list[View]) -> Counter[str]:
    """How many later views read each view."""
    names = {name for name, _ in views}
    out: Counter[str] = Counter()
    for _, tree in views:
        for name in tables_read(tree) & names:
            out[name] += 1
    return out
