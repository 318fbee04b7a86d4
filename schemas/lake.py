"""The lake's tables: Delta tables under one location, and how rows become their rows.

```
<lake>/spans/     Delta table, partitioned by date (UTC day of the span's start)
<lake>/signals/   Delta table, partitioned by date (UTC day the signal occurred)
<lake>/costs/     Delta table, partitioned by date (UTC day the cost period starts)
```

Each table is declared once (``Table``): the Arrow schema its rows are built in (by the
converters, the signal and cost parsers) and the column whose UTC day is the partition. The
table's own schema is derived from it by one rule, because Delta's types are narrower than
Arrow's (``lake_type``):

- times in nanoseconds become ``<name>_unix_nano`` int64 columns: Delta timestamps hold only
  microseconds, and OTLP times are nanoseconds (the views expose them as ``TIMESTAMPTZ``);
- other timestamps (``ingested_at``, ``received_at``: milliseconds) become Delta timestamps;
- unsigned integers (OTLP flags and dropped counts) become ``long``: Delta has no unsigned
  types, and a count never overflows its column;
- the partition column ``date`` is a Delta ``date``; it lives in the log and the path
  (``date=2026-12-01/``), not in the data files.

Files are written by tasklake itself (``ingest.lake``), with the per-column encodings of
``ingest.lake.parquet``, and committed with delta-rs; a query reads one table version.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

import pyarrow as pa
import pyarrow.compute as pc

from schemas.spans import SCHEMA_VERSION, SPAN_SCHEMA

SPANS = "spans"
SIGNALS = "signals"
COSTS = "costs"
#: The partition column of every table.
PARTITION = "date"
#: Name prefix of the data files compaction writes (``c-<writer>-<ulid>.parquet``): a
#: compacted file holds spans already in the lake, rewritten.
COMPACTED_PREFIX = "c-"
#: Suffix of an int64 nanoseconds-since-epoch column made from a nanosecond timestamp.
NANOS_SUFFIX = "_unix_nano"
DAY_NS = 86_400 * 10**9
_EPOCH = dt.date(1970, 1, 1)


def lake_type(typ: pa.DataType) -> pa.DataType:
    """The Delta-compatible Arrow type a value of ``typ`` is stored as (see module doc)."""
    if pa.types.is_timestamp(typ):
        return pa.int64() if typ.unit == "ns" else pa.timestamp("us", tz="UTC")
    if pa.types.is_unsigned_integer(typ):
        return pa.int64()
    if pa.types.is_struct(typ):
        return pa.struct([lake_field(f) for f in typ])
    if pa.types.is_map(typ):
        return pa.map_(lake_type(typ.key_type), lake_type(typ.item_type))
    if pa.types.is_list(typ):
        return pa.list_(lake_field(typ.value_field))
    return typ


def lake_name(f: pa.Field) -> str:
    """``start_time`` (ns) -> ``start_time_unix_nano``; other names stay."""
    name = str(f.name)
    if pa.types.is_timestamp(f.type) and f.type.unit == "ns":
        return name + NANOS_SUFFIX
    return name


def lake_field(f: pa.Field) -> pa.Field:
    return pa.field(lake_name(f), lake_type(f.type), f.nullable)


def to_lake_array(array: pa.Array | pa.ChunkedArray, typ: pa.DataType) -> pa.ChunkedArray:
    """``array`` (of ``typ``) as ``lake_type(typ)``: nanosecond timestamps as their int64,
    nested fields renamed with them."""
    chunks = array.chunks if isinstance(array, pa.ChunkedArray) else [array]
    return pa.chunked_array([_convert(c, typ) for c in chunks], lake_type(typ))


def _convert(array: pa.Array, typ: pa.DataType) -> pa.Array:
    target = lake_type(typ)
    if array.type == target:
        return array
    if pa.types.is_struct(typ):
        children = [_convert(array.field(i), typ.field(i).type) for i in range(typ.num_fields)]
        return pa.StructArray.from_arrays(
            children,
            fields=list(target),
            mask=array.is_null() if array.null_count else None,
        )
    if pa.types.is_list(typ):
        flat = _convert(array.values, typ.value_type)
        offsets = array.offsets
        if array.offset or len(array.values) != offsets[-1].as_py() - offsets[0].as_py():
            flat = _convert(array.flatten(), typ.value_type)
            offsets = pc.subtract(offsets, offsets[0])
        return pa.ListArray.from_arrays(
            offsets, flat, type=target, mask=array.is_null() if array.null_count else None
        )
    if pa.types.is_timestamp(typ) and typ.unit == "ns":
        return array.cast(pa.int64())
    return array.cast(target)


@dataclass(frozen=True)
class Table:
    """A lake table: the schema its rows are built in and how they are stored."""

    name: str
    schema: pa.Schema
    version: int
    #: Column of ``schema`` whose UTC day is the partition.
    time_column: str
    #: Columns of one trace/key, for sorting compacted files (None: by time only).
    sort_keys: tuple[str, ...] = field(default=())

    @cached_property
    def file_schema(self) -> pa.Schema:
        """The columns of the table's data files."""
        return pa.schema([lake_field(f) for f in self.schema])

    @cached_property
    def delta_schema(self) -> pa.Schema:
        """The table's schema as Delta knows it: the data columns and the partition."""
        return self.file_schema.append(pa.field(PARTITION, pa.date32()))

    @cached_property
    def time_lake_column(self) -> str:
        return lake_name(self.schema.field(self.time_column))

    def to_lake(self, rows: pa.Table) -> pa.Table:
        """``rows`` (in ``schema``, or an older version of it) as the data files store them."""
        arrays = []
        for f in self.schema:
            if f.name in rows.column_names:
                col = rows.column(f.name)
                if col.type != f.type:
                    col = col.cast(f.type)
                arrays.append(to_lake_array(col, f.type))
            else:
                arrays.append(pa.nulls(rows.num_rows, lake_type(f.type)))
        return pa.Table.from_arrays(arrays, schema=self.file_schema)

    def split_by_day(self, rows: pa.Table) -> list[tuple[dt.date, pa.Table]]:
        """``rows`` (lake form) by the UTC day of the time column, days in order."""
        if rows.num_rows == 0:
            return []
        # every table's time column holds int64 nanoseconds >= 0 (validated on the way in)
        days = pc.divide(pc.fill_null(rows.column(self.time_lake_column), 0), DAY_NS)
        lo, hi = pc.min(days).as_py(), pc.max(days).as_py()
        if lo == hi:
            return [(day_date(lo), rows)]
        out = [(day_date(d), rows.filter(pc.equal(days, d))) for d in pc.unique(days).to_pylist()]
        return sorted(out, key=lambda p: p[0])


def day_date(day: int) -> dt.date:
    return _EPOCH + dt.timedelta(days=int(day))


def partition_dir(day: dt.date) -> str:
    """The directory of a partition inside its table (``date=2026-12-01``)."""
    return f"{PARTITION}={day.isoformat()}"


#: Every table readers see. Signals and cost entries register themselves (schemas.signals,
#: schemas.costs) so this module needs no import of theirs.
TABLES: dict[str, Table] = {
    SPANS: Table(SPANS, SPAN_SCHEMA, SCHEMA_VERSION, "start_time", ("trace_id", "span_id")),
}


def register_table(table: Table) -> None:
    TABLES[table.name] = table


def table_config(settings_log_retention: str = "interval 1 days") -> Mapping[str, str]:
    """Delta table properties of every tasklake table."""
    return {
        # readers never time-travel further than a query: keep a day of log, checkpoint often
        "delta.logRetentionDuration": settings_log_retention,
        "delta.enableExpiredLogCleanup": "true",
        "delta.checkpointInterval": "100",
    }
