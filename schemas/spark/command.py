"""``tasklake spark-sql``: queries over the views on Spark, or the script for someone's own.

Queries are written as for ``tasklake sql`` (DuckDB's dialect, table macros included:
``SELECT * FROM cost_per_task_by(by_team := true)``) and transpiled like the views. Every
query of one run reads one version of each table: the newest when the run starts.
"""

from __future__ import annotations

import csv
import sys
from datetime import datetime
from typing import TYPE_CHECKING, TextIO

from schemas.delta import Tables
from schemas.settings import Settings
from schemas.spark.catalog import spark_catalog, spark_script
from schemas.spark.script import statements

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def spark_sql_command(
    settings: Settings,
    *,
    sql: str | None,
    print_script: bool,
    as_of: datetime | None = None,
    out: TextIO = sys.stdout,
) -> int:
    """Print the Spark SQL script (``print_script``), or run ``sql`` (else standard input)
    on a local pyspark session and print each answer as CSV."""
    tables = Tables(settings.location, seed_dir=settings.effective_store_dir / "seeds")
    tables.ensure()
    if print_script:
        out.write(spark_script(tables, tables.snapshot(), settings, as_of=as_of, query=sql))
        return 0
    queries = statements(sql if sql is not None else sys.stdin.read())
    if not queries:
        print("tasklake spark-sql: no query (-e SQL, -f FILE or standard input)", file=sys.stderr)
        return 2
    try:
        from schemas.spark.session import pin_and_load, start_session
    except ImportError:
        print(
            "tasklake spark-sql: pyspark is not installed (pip install 'tasklake[spark]');"
            " --print writes the script for a Spark of your own",
            file=sys.stderr,
        )
        return 1
    spark = start_session()
    spark.sparkContext.setLogLevel("ERROR")  # the answers on stdout, problems on stderr
    try:
        catalog = spark_catalog(settings, as_of=as_of).needed_by(queries)
        _, refused = pin_and_load(spark, tables, catalog)
        for view, reason in refused.items():
            print(f"tasklake spark-sql: view {view} not loaded: {reason}", file=sys.stderr)
        for query in queries:
            write_csv(spark, catalog.query(query), out)
    finally:
        spark.stop()
    return 0


def write_csv(spark: SparkSession, query: str, out: TextIO) -> None:
    """The answer of ``query`` (Spark SQL) as CSV with a header (NULL as an empty field)."""
    frame = spark.sql(query)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(frame.columns)
    for row in frame.toLocalIterator():
        writer.writerow(["" if v is None else v for v in row])
