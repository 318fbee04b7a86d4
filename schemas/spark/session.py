"""A Spark session with the views over one pinned version of each table (needs pyspark).

pyspark from PyPI bundles Spark but no Delta connector, so the tables are read as what a
Delta version is: its list of Parquet files (``Tables.version_of``), with the ``date``
partition from their hive paths and the table's current schema (columns a file predates are
NULL, as in DuckDB's ``union_by_name``).
"""

from __future__ import annotations

import os
import tempfile
from typing import TYPE_CHECKING

from schemas.delta import Snapshot, Tables
from schemas.lake import PARTITION, SPANS, TABLES
from schemas.spark.catalog import COPY_COLUMNS, TABLE_VIEWS, SparkCatalog, delta_inputs

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


#: The local session's settings: views over one lake answer small, and plan much.
LOCAL_CONF = {
    "spark.sql.shuffle.partitions": "1",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    # never a spark-warehouse/ folder in the directory it was started from
    "spark.sql.warehouse.dir": os.path.join(tempfile.gettempdir(), "tasklake-spark-warehouse"),
}


def start_session(master: str | None = None, app_name: str = "tasklake") -> SparkSession:
    """The active session, else one on ``master`` (default: ``$SPARK_REMOTE`` for Spark
    Connect, else ``$MASTER``, else in-process ``local[*]``)."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app_name)
    remote = os.environ.get("SPARK_REMOTE")
    if master is None and remote:
        return builder.remote(remote).getOrCreate()
    builder = builder.master(master or os.environ.get("MASTER") or "local[*]")
    # small answers on one machine: one shuffle partition, no web UI, no progress bars
    for key, value in LOCAL_CONF.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def register_pinned(spark: SparkSession, tables: Tables, snapshot: Snapshot) -> None:
    """``tasklake_<table>`` views over the files of ``snapshot``'s version of each table."""
    from pyspark.sql.pandas.types import from_arrow_schema

    for table, view in TABLE_VIEWS.items():
        schema = from_arrow_schema(TABLES[table].delta_schema)
        files = snapshot[table].uris()
        frame: DataFrame
        if files:
            reader = spark.read.schema(schema).option("basePath", tables.uri(table))
            frame = reader.parquet(*files)
            if table == SPANS:
                frame = frame.selectExpr("*", *COPY_COLUMNS.split(", "))
        else:
            frame = spark.createDataFrame([], schema)
            if table == SPANS:
                frame = frame.selectExpr(
                    "*",
                    "CAST(NULL AS STRING) AS filename",
                    "CAST(NULL AS BIGINT) AS file_row_number",
                )
        frame.createOrReplaceTempView(view)
    assert PARTITION in TABLES[SPANS].delta_schema.names


def register_delta(spark: SparkSession, tables: Tables, snapshot: Snapshot) -> None:
    """``tasklake_<table>`` views through Spark's Delta connector (Databricks, or Spark with
    ``delta-spark``), at ``snapshot``'s versions: for a session of your own."""
    for statement in delta_inputs(tables, snapshot):
        spark.sql(statement)


def load_views(spark: SparkSession, catalog: SparkCatalog) -> dict[str, str]:
    """The session settings and every view of ``catalog`` on ``spark``; returns the views
    Spark refused, each with the first line of its error (the views that read one fail too).
    A step (a view other views read) is computed once, when first needed, and its readers
    read the result: their plans stay small, and the tables are pinned, so the result never
    goes stale."""
    from pyspark.errors import PySparkException

    for statement in catalog.settings():
        spark.sql(statement)
    refused: dict[str, str] = {}
    for view in catalog.views:
        try:
            if view.step:
                frame = spark.sql(view.query).localCheckpoint(eager=False)
                frame.createOrReplaceTempView(view.name)
            else:
                spark.sql(view.create())
        except PySparkException as exc:
            refused[view.name] = str(exc).strip().splitlines()[0]
    return refused


def pin_and_load(
    spark: SparkSession, tables: Tables, catalog: SparkCatalog, snapshot: Snapshot | None = None
) -> tuple[Snapshot, dict[str, str]]:
    """The views over ``snapshot`` (default: the newest version of every table), and the
    views Spark refused (``load_views``)."""
    snap = snapshot or tables.snapshot()
    register_pinned(spark, tables, snap)
    return snap, load_views(spark, catalog)
