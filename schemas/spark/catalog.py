"""The views as Spark SQL: the DuckDB catalog rendered once, then transpiled statement by
statement (``schemas.spark.transpile``).

The catalog reads its three tables through temporary views named ``tasklake_<table>``,
defined one of two ways:

- **pinned files** (``tasklake spark-sql``, the tests): the Parquet files of one version of
  each Delta table, registered from Python (``schemas.spark.session``) — pyspark from PyPI
  carries no Delta connector;
- **the Delta connector** (``delta_inputs``; Databricks, or Spark with ``delta-spark``):
  ``delta.`<table uri>` VERSION AS OF <n>``, the same pinned versions.

Either way the spans relation carries ``filename`` and ``file_row_number`` (Spark's
``_metadata.file_path`` and ``_metadata.row_index``), which the copy rule of
``span_copies.sql`` orders by.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlglot import exp

from schemas.delta import Snapshot, Tables
from schemas.lake import SPANS
from schemas.settings import Settings
from schemas.spark.script import parse_script
from schemas.spark.steps import Shared, hoist, readers, tables_read
from schemas.spark.transpile import Transpiler, parse, star_source
from schemas.views import TABLE_INPUTS, render_catalog

#: The temporary view each table is read through.
TABLE_VIEWS = {table: f"tasklake_{table}" for table in TABLE_INPUTS}
#: Session settings the views need on Spark to answer as DuckDB does.
SESSION_CONF: Mapping[str, str] = {
    # instants and days in UTC, as the service's DuckDB sessions
    "spark.sql.session.timeZone": "UTC",
    # money keeps its 12 decimals through products (the default trades scale for range)
    "spark.sql.decimalOperations.allowPrecisionLoss": "false",
    # overflow is an error, never a wrong number
    "spark.sql.ansi.enabled": "true",
    # a span's attributes: a key given twice keeps its last value, as map_concat in DuckDB
    "spark.sql.mapKeyDedupPolicy": "LAST_WIN",
    # the walks over span trees recurse as deep as the deepest trace
    "spark.sql.cteRecursionLevelLimit": "-1",
    "spark.sql.cteRecursionRowLimit": "-1",
}
#: The columns of the spans relation that name each row's copy (span_copies.sql).
COPY_COLUMNS = "_metadata.file_path AS filename, _metadata.row_index AS file_row_number"


@dataclass(frozen=True)
class SparkView:
    name: str
    query: str  # Spark SQL
    #: Read by other views: a session computes it once (its plan would be copied into each).
    step: bool
    #: The views and table views its query reads.
    reads: frozenset[str] = frozenset()

    def create(self) -> str:
        return f"CREATE OR REPLACE TEMPORARY VIEW {self.name} AS\n{self.query}"


@dataclass(frozen=True)
class SparkCatalog:
    """Every view as Spark SQL, in load order, and how to transpile queries over them."""

    views: tuple[SparkView, ...]
    transpiler: Transpiler
    shared: Shared

    def settings(self) -> list[str]:
        return [f"SET {k} = {v}" for k, v in SESSION_CONF.items()]

    def statements(self) -> list[str]:
        """The settings, then the views, in load order."""
        return self.settings() + [v.create() for v in self.views]

    def query(self, sql: str, params: Sequence[object] = ()) -> str:
        """A DuckDB query over the views (the API's, ``tasklake sql``'s) as Spark SQL; table
        macros such as ``cost_per_task_by(by_team := true)`` are inlined."""
        return self.transpiler.to_spark(self._tree(sql, params))

    def _tree(self, sql: str, params: Sequence[object] = ()) -> exp.Expr:
        return self.shared.reuse(self.transpiler.expand(parse(sql, params)))

    def needed_by(self, queries: Sequence[str]) -> SparkCatalog:
        """This catalog with only the views ``queries`` (DuckDB) read, directly or not: a
        session loads them sooner than all."""
        wanted: set[str] = set()
        for sql in queries:
            wanted |= tables_read(self._tree(sql))
        for view in reversed(self.views):
            if view.name in wanted:
                wanted |= view.reads
        kept = tuple(v for v in self.views if v.name in wanted)
        return SparkCatalog(kept, self.transpiler, self.shared)


def spark_catalog(
    settings: Settings | None = None, *, as_of: datetime | None = None
) -> SparkCatalog:
    """The catalog over ``TABLE_VIEWS``; outcomes are decided at ``as_of`` (None: now)."""
    script = parse_script(render_catalog(TABLE_VIEWS, settings))
    transpiler = Transpiler(script.macros, {"as_of": as_of})
    shared = Shared()
    trees = []
    for view in script.views:
        tree = shared.reuse(transpiler.expand(view.query))
        shared.remember(view.name, tree)
        trees.append((view.name, tree))
    trees = hoist(trees, TABLE_VIEWS.values())
    read = readers(trees)
    views = []
    for name, tree in trees:
        shared.remember(name, tree)
        passthrough = isinstance(star_source(tree), exp.Table)  # SELECT * FROM an input
        step = read[name] > 0 and not passthrough
        views.append(SparkView(name, transpiler.to_spark(tree), step, frozenset(tables_read(tree))))
    return SparkCatalog(tuple(views), transpiler, shared)


def delta_inputs(tables: Tables, snapshot: Snapshot) -> list[str]:
    """The table views read through Spark's Delta connector, at ``snapshot``'s versions."""
    out = []
    for table, view in TABLE_VIEWS.items():
        uri = tables.uri(table).replace("`", "``")
        extra = f", {COPY_COLUMNS}" if table == SPANS else ""
        out.append(
            f"CREATE OR REPLACE TEMPORARY VIEW {view} AS\nSELECT *{extra}\n"
            f"FROM delta.`{uri}` VERSION AS OF {snapshot[table].version}"
        )
    return out


def spark_script(
    tables: Tables,
    snapshot: Snapshot,
    settings: Settings | None = None,
    *,
    as_of: datetime | None = None,
    query: str | None = None,
) -> str:
    """A Spark SQL script for an existing Spark or Databricks session with the Delta
    connector: settings, table views at ``snapshot``, every view, then ``query`` if given."""
    catalog = spark_catalog(settings, as_of=as_of)
    parts = [*catalog.settings(), *delta_inputs(tables, snapshot)]
    parts += [v.create() for v in catalog.views]
    if query is not None:
        parts.append(catalog.query(query))
    header = (
        "-- tasklake views for Spark SQL (Spark 4.1+ or Databricks, with the Delta connector),\n"
        f"-- over {tables.location.root} at versions "
        + ", ".join(f"{t} {v}" for t, v in snapshot.versions.items())
        + ".\n-- Each view is a plain temporary view here: Spark copies a view into every"
        " reader's plan,\n-- so the cost views plan slowly (or run out of driver memory)"
        " unless the views other views\n-- read are computed once:"
        " schemas.spark.session.load_views does that (README).\n"
    )
    return header + "".join(f"\n{p};\n" for p in parts)
