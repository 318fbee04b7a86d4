"""Spark on the same numbers: the views transpiled to Spark SQL (``schemas.spark``), run by
pyspark in local mode over the pinned files of the scenario's lake, answer cost per completed
task by workflow, team and role as the API does, to the cent, and as DuckDB's views do, to
the last of their 12 decimals."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from schemas.settings import Settings
from schemas.spark.catalog import SparkCatalog, spark_catalog
from service.api.cost_per_task import cost_per_task_query
from service.cli import main
from tests.lakes import connect, tables
from tests.service import scenario
from tests.service.conftest import Api, serve_api
from tests.service.scenario import AS_OF, cents

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = [
    pytest.mark.spark,
    pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs Java 17+"),
    # one Spark session for the module: its start and the views' load come with the first test
    pytest.mark.timeout(900),
]

AS_OF_TEXT = AS_OF.isoformat().replace("+00:00", "Z")
#: (grouping, cost): the three groupings, and the fully loaded cost (allocations) by role.
CASES = [(["workflow"], "inference"), (["team"], "inference"), (["role"], "inference")]
CASES += [(["role"], "full")]
COUNTS = ("attempts", "tasks", "completed", "failed", "escalated", "abandoned", "pending")


class Lake:
    def __init__(
        self,
        path: Path,
        api: dict[tuple[str, str], Any],
        spark: SparkSession,
        catalog: SparkCatalog,
    ) -> None:
        self.path, self.api, self.spark, self.catalog = path, api, spark, catalog


def _api_answers(path: Path) -> dict[tuple[str, str], Any]:
    """The API's answer for each case (served as ``tasklake serve`` serves it)."""
    with serve_api(Settings(lake=str(path))) as base:
        api = Api(base)
        return {
            (",".join(g), cost): api.json(
                "/api/v1/cost-per-task", group_by=",".join(g), as_of=AS_OF_TEXT, cost=cost
            )
            for g, cost in CASES
        }


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lake]:
    pytest.importorskip("pyspark")
    from schemas.spark.session import pin_and_load, start_session

    path = tmp_path_factory.mktemp("spark") / "lake"
    scenario.build(path)
    api = _api_answers(path)
    spark = start_session("local[2]", "tasklake-test")
    spark.sparkContext.setLogLevel("ERROR")
    try:
        catalog = spark_catalog(as_of=AS_OF)
        _, refused = pin_and_load(spark, tables(path), catalog)
        assert refused == {}, refused  # every view runs on Spark
        yield Lake(path, api, spark, catalog)
    finally:
        spark.stop()


def _key(row: dict[str, Any], group_by: list[str]) -> tuple[Any, ...]:
    return tuple(row[g] for g in group_by)


@pytest.mark.parametrize(("group_by", "cost"), CASES, ids=[f"{g[0]}-{c}" for g, c in CASES])
def test_cost_per_completed_task_on_spark(lake: Lake, group_by: list[str], cost: str) -> None:
    full = cost == "full"
    sql, args = cost_per_task_query(group_by, full=full)
    on_spark = {
        _key(r, group_by): r
        for r in (row.asDict() for row in lake.spark.sql(lake.catalog.query(sql, args)).collect())
    }
    # DuckDB's views, exactly
    con = connect(lake.path)
    try:
        con.execute("SET VARIABLE as_of = ?::TIMESTAMPTZ", [AS_OF])
        cursor = con.execute(sql, args)
        names = [d[0] for d in cursor.description]
        on_duckdb = {
            _key(r, group_by): r
            for r in (dict(zip(names, row, strict=True)) for row in cursor.fetchall())
        }
    finally:
        con.close()
    assert on_spark == on_duckdb
    # the API's answer, to the cent
    doc = lake.api[(",".join(group_by), cost)]
    from_api = {_key(r, group_by): r for r in doc["rows"]}
    assert set(from_api) == set(on_spark)
    assert any(r["cost_per_completed_task_usd"] for r in from_api.values())
    for key, row in from_api.items():
        spark_row = on_spark[key]
        for money in ("cost_per_completed_task_usd", "cost_per_attempt_usd", "spend_usd"):
            assert cents(row[money]) == cents(spark_row[money]), (key, money)
        assert [row[c] for c in COUNTS] == [spark_row[c] for c in COUNTS], key


def test_the_headline_on_spark(lake: Lake) -> None:
    sql = "SELECT workflow, cost_per_completed_task_usd FROM cost_per_task ORDER BY workflow"
    rows = lake.spark.sql(lake.catalog.query(sql)).collect()
    assert [(r[0], r[1].quantize(Decimal("0.01"))) for r in rows] == [
        ("billing", Decimal("0.92")),
        ("support", Decimal("0.85")),
    ]


def test_print_writes_the_script_for_any_spark(
    lake: Lake, capsys: pytest.CaptureFixture[str]
) -> None:
    query = "SELECT * FROM cost_per_task_by(by_team := true)"
    assert main(["spark-sql", "--lake", str(lake.path), "--print", "-e", query]) == 0
    script = capsys.readouterr().out
    versions = tables(lake.path).snapshot().versions
    for table, version in versions.items():
        assert f"FROM delta.`{tables(lake.path).uri(table)}` VERSION AS OF {version}" in script
    for view in ("trace_spans", "tasks", "task_allocations", "cost_per_task"):
        assert f"CREATE OR REPLACE TEMPORARY VIEW {view} AS" in script
    assert "spark.sql.session.timeZone = UTC" in script
    assert "cost_per_task_by(" not in script  # the macro inlined
