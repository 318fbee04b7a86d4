"""The same views on Spark: the catalog transpiled from DuckDB SQL (``catalog``,
``transpile``), and a session reading the tables' pinned files (``session``, needs pyspark).
"""

from schemas.spark.catalog import SparkCatalog, delta_inputs, spark_catalog, spark_script
from schemas.spark.transpile import NotPortable

__all__ = ["NotPortable", "SparkCatalog", "delta_inputs", "spark_catalog", "spark_script"]
