"""The DuckDB -> Spark SQL transpiler (``schemas.spark.transpile``) without Spark: what it
rewrites, and what it refuses because Spark would answer differently."""

from __future__ import annotations

import pytest

from schemas.spark import NotPortable, spark_catalog
from schemas.spark.script import parse_script
from schemas.spark.transpile import Transpiler, parse

MACROS = parse_script(
    "CREATE OR REPLACE MACRO twice(x) AS x * 2;\n"
    "CREATE OR REPLACE MACRO rows_of(n := 1, flag := NULL) AS TABLE\n"
    "SELECT * FROM t WHERE k = n AND (flag IS NULL OR list_contains(flag, k));\n"
).macros


def spark(sql: str) -> str:
    """``sql`` as Spark SQL, on one line."""
    t = Transpiler(MACROS, {"as_of": None})
    return " ".join(t.to_spark(t.expand(parse(sql))).split())


def test_macros_are_inlined_and_literal_conditions_folded() -> None:
    out = spark("SELECT twice(a) AS b FROM rows_of(n := 3) r")
    assert "twice" not in out and "rows_of" not in out
    assert "( a * 2 ) AS b" in out
    assert "k = 3" in out and "LIST_CONTAINS" not in out.upper()


def test_arg_min_skips_null_values_as_in_duckdb() -> None:
    out = spark("SELECT arg_min(x, y) FROM t")
    assert "MIN_BY(x, y) FILTER(WHERE NOT x IS NULL)" in out


def test_star_replace_becomes_except_and_the_column_after() -> None:
    out = spark("SELECT s.* REPLACE (lower(a) AS a), b FROM t s")
    assert "s.* EXCEPT (a), LOWER(a) AS a, b" in out


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT hash(a) FROM t",
        "SELECT * FROM t ASOF JOIN u ON t.a >= u.a",
        "SELECT a FROM t UNION ALL BY NAME SELECT a FROM u",
        "SELECT a::UBIGINT FROM t",
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION SELECT n + 1 FROM r WHERE n < 3) SELECT * FROM r",
    ],
)
def test_what_spark_would_answer_differently_is_refused(sql: str) -> None:
    with pytest.raises(NotPortable):
        spark(sql)


def test_the_whole_catalog_transpiles() -> None:
    catalog = spark_catalog()
    names = [v.name for v in catalog.views]
    for view in ("spans", "tasks", "task_allocations", "cost_per_task", "unmatched_signals"):
        assert view in names
    query = catalog.query("SELECT * FROM cost_per_task_by(by_role := true, full_cost := true)")
    assert "cost_per_task_by(" not in query
    needed = catalog.needed_by(["SELECT * FROM llm_calls"]).views
    assert [v.name for v in needed][-1] == "llm_calls" and len(needed) < len(catalog.views)
