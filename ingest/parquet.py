"""How tasklake writes Parquet: one place for encodings, compression and atomic file creation.

Measured on realistic agent spans (``bench/storage_bench.py``; see its report):

- random ids (``trace_id``, ``span_id``, ``parent_span_id``, link ids) gain nothing from a
  dictionary and pay its fallback; ``DELTA_LENGTH_BYTE_ARRAY`` drops the per-value length;
- ``start_time`` as ``DELTA_BINARY_PACKED`` beats dictionary and plain once traces are sorted
  together (``BYTE_STREAM_SPLIT`` was smaller still but DuckDB 1.5 cannot read it on INT64);
- other near-unique ids (tool calls, conversations, attempts) likewise; ``cost_usd`` plain;
- every other column: dictionary (low-cardinality strings) + zstd; level 1 for the short-lived
  flush files the converter writes, a higher level when compaction writes the files that stay;
- decimals as integers (``store_decimal_as_integer``), statistics on (row-group pruning).

Files are written beside their destination and renamed into place, so a path that exists
always holds a complete file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

FLUSH_LEVEL = 1
COMPACT_LEVEL = 9

_DELTA_STRINGS = {
    "trace_id",
    "span_id",
    "parent_span_id",
    "links.list.element.trace_id",
    "links.list.element.span_id",
    # ids that are new per call or per attempt: a dictionary of them overflows and falls back
    "tool_call_id",
    "conversation_id",
    "correlation_id",
}
_DELTA_INTS = {"start_time"}
#: Near-unique fixed-width numbers: plain + zstd beats a dictionary that overflows.
_PLAIN = {"cost_usd"}


def _leaf_paths(schema: pa.Schema) -> list[str]:
    """Dotted Parquet column paths of every leaf (``attributes.key_value.key``, ...)."""
    out: list[str] = []

    def walk(prefix: str, typ: pa.DataType) -> None:
        if pa.types.is_struct(typ):
            for i in range(typ.num_fields):
                f = typ.field(i)
                walk(f"{prefix}.{f.name}", f.type)
        elif pa.types.is_map(typ):
            walk(f"{prefix}.key_value.key", typ.key_type)
            walk(f"{prefix}.key_value.value", typ.item_type)
        elif pa.types.is_list(typ) or pa.types.is_large_list(typ):
            walk(f"{prefix}.list.element", typ.value_type)
        else:
            out.append(prefix)

    for field in schema:
        walk(field.name, field.type)
    return out


def writer_options(schema: pa.Schema, *, level: int) -> dict[str, object]:
    """Keyword arguments for ``pq.ParquetWriter`` for a table of ``schema``."""
    leaves = _leaf_paths(schema)
    encodings = {
        p: ("DELTA_LENGTH_BYTE_ARRAY" if p in _DELTA_STRINGS else "DELTA_BINARY_PACKED")
        for p in leaves
        if p in _DELTA_STRINGS or p in _DELTA_INTS
    }
    return {
        "compression": "zstd",
        "compression_level": level,
        "use_dictionary": [p for p in leaves if p not in encodings and p not in _PLAIN],
        "column_encoding": encodings,
        "store_decimal_as_integer": True,
        "write_statistics": True,
    }


def write_parquet(
    table: pa.Table,
    dest: Path,
    *,
    metadata: Mapping[str, str] | None = None,
    row_group_rows: int = 100_000,
    level: int = FLUSH_LEVEL,
    fsync: bool = True,
) -> int:
    """Write ``table`` to ``dest`` atomically (temp name, fsync, rename); return its size.

    ``metadata`` lands in the file's key-value metadata (forensics: writer, lane, WAL end).
    """
    schema = table.schema
    if metadata:
        merged = dict(schema.metadata or {})
        merged.update({k.encode(): v.encode() for k, v in metadata.items()})
        schema = schema.with_metadata(merged)
        table = table.replace_schema_metadata(merged)
    part = dest.with_name(dest.name + ".part")
    with pq.ParquetWriter(part, schema, **writer_options(schema, level=level)) as writer:
        writer.write_table(table, row_group_size=row_group_rows)
    if fsync:
        fd = os.open(part, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    os.replace(part, dest)
    return dest.stat().st_size


def file_metadata(path: Path) -> dict[str, str]:
    """The tasklake key-value metadata of a Parquet file."""
    raw = pq.ParquetFile(path).schema_arrow.metadata or {}
    return {k.decode(): v.decode() for k, v in raw.items() if k.decode().startswith("tasklake.")}


def column_bytes(path: Path) -> dict[str, int]:
    """Compressed bytes per leaf column: where the bytes of a file go."""
    md = pq.ParquetFile(path).metadata
    out: dict[str, int] = {}
    for rg in range(md.num_row_groups):
        group = md.row_group(rg)
        for c in range(group.num_columns):
            col = group.column(c)
            out[col.path_in_schema] = out.get(col.path_in_schema, 0) + col.total_compressed_size
    return out


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with ``schema``'s columns in order: missing ones null, older types cast.

    Files written before a column existed merge with newer ones; columns unknown to
    ``schema`` are kept at the end rather than dropped.
    """
    if table.schema.equals(schema, check_metadata=False):
        return table  # the common case: rows written with the current schema
    arrays = []
    for field in schema:
        if field.name in table.column_names:
            col = table.column(field.name)
            arrays.append(col if col.type == field.type else col.cast(field.type))
        else:
            arrays.append(pa.nulls(table.num_rows, field.type))
    extra = [n for n in table.column_names if n not in schema.names]
    fields = list(schema) + [table.schema.field(n) for n in extra]
    arrays.extend(table.column(n) for n in extra)
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=schema.metadata))
