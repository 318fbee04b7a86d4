"""How tasklake writes Parquet: one place for encodings, compression and atomic file creation.

Every leaf column has an encoding and a zstd level (``COLUMN_PLAN``), measured per column on
realistic agent spans (``bench/storage_bench.py``; the table is in its docstring):

- random hex ids (``span_id``, ``parent_span_id``, link ids): ``DELTA_LENGTH_BYTE_ARRAY`` (no
  per-value length, no dictionary that overflows) at zstd level 1: the fast levels code random
  literals closest to their 4 bits/char; levels 3-9 spend bytes on spurious short matches;
- ids repeated along a trace or sharing a prefix (``trace_id``, ``conversation_id``,
  ``correlation_id``, ``task_id``, ``call_...`` tool call ids): ``DELTA_BYTE_ARRAY`` (a repeat
  costs a prefix length, not the value) at level 1;
- times, costs and token counts: ``DELTA_BINARY_PACKED`` (``BYTE_STREAM_SPLIT`` is smaller on
  some but DuckDB 1.5 reads it only on FLOAT/DOUBLE);
- the attribute text values (near-unique response ids between repeated constants):
  ``DELTA_LENGTH_BYTE_ARRAY`` at level 12, the one column where a higher level pays for itself
  (level 19 would save another byte per span at 40 µs of CPU per span); the source-key maps
  likewise at 12;
- everything else: dictionary + zstd level 9 (low-cardinality strings, map keys, durations of
  ms clocks). Flush files use the same encodings at level 1; only compacted files pay for the
  plan's levels.

Dictionary-typed input is welcome: a column may be ``dictionary<string>`` where the schema says
``string`` (compaction reads low-cardinality columns that way, see ``merge_read_schema``), and
its indices go straight into the Parquet dictionary pages without hashing every value again.
The file still declares the plain schema (``ARROW:schema``), so every reader sees strings.

Decimals are stored as integers (``store_decimal_as_integer``). Files are written beside their
destination and renamed into place, so a path that exists always holds a complete file.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

FLUSH_LEVEL = 1
#: zstd level of a compacted column that ``COLUMN_PLAN`` does not name.
COMPACT_LEVEL = 9

DICTIONARY = "RLE_DICTIONARY"
PLAIN = "PLAIN"
DELTA_INT = "DELTA_BINARY_PACKED"
DELTA_LENGTH = "DELTA_LENGTH_BYTE_ARRAY"
DELTA_PREFIX = "DELTA_BYTE_ARRAY"

#: Leaf path -> (encoding, zstd level in compacted files). Unnamed leaves: dictionary at
#: ``COMPACT_LEVEL``. Paths of other tables simply never match.
COLUMN_PLAN: Mapping[str, tuple[str, int]] = {
    "span_id": (DELTA_LENGTH, 1),
    "parent_span_id": (DELTA_LENGTH, 1),
    "links.list.element.span_id": (DELTA_LENGTH, 1),
    "links.list.element.trace_id": (DELTA_LENGTH, 1),
    "trace_id": (DELTA_PREFIX, 1),
    "conversation_id": (DELTA_PREFIX, 1),
    "correlation_id": (DELTA_PREFIX, 1),
    "resource_correlation_id": (DELTA_PREFIX, 1),
    "task_id": (DELTA_PREFIX, 3),
    "tool_call_id": (DELTA_PREFIX, 1),
    "start_time": (DELTA_INT, 5),
    "events.list.element.time": (DELTA_INT, 5),
    "cost_usd": (DELTA_INT, 5),
    "input_tokens": (DELTA_INT, 5),
    "total_tokens": (DELTA_INT, 5),
    "cache_read_tokens": (DELTA_INT, 5),
    "cache_write_tokens": (DELTA_INT, 5),
    "attributes.key_value.value": (DELTA_LENGTH, 12),
    "source_keys.key_value.key": (DICTIONARY, 12),
    "source_keys.key_value.value": (DICTIONARY, 12),
}

_ARROW_SCHEMA_KEY = "ARROW:schema"


def _leaves(schema: pa.Schema) -> dict[str, pa.DataType]:
    """Dotted Parquet column path -> Arrow type of every leaf (``attributes.key_value.key``)."""
    out: dict[str, pa.DataType] = {}

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
            out[prefix] = typ

    for field in schema:
        walk(field.name, field.type)
    return out


def _plan(path: str) -> tuple[str, int]:
    return COLUMN_PLAN.get(path, (DICTIONARY, COMPACT_LEVEL))


def writer_options(schema: pa.Schema, *, level: int | None = None) -> dict[str, object]:
    """Keyword arguments for ``pq.ParquetWriter`` for a table of ``schema``.

    ``level=None``: the per-column levels of compacted files; an int: that level everywhere
    (flush files).
    """
    leaves = _leaves(schema)
    encodings: dict[str, str] = {}
    dictionary: list[str] = []
    levels: dict[str, int] = {}
    for path in leaves:
        encoding, column_level = _plan(path)
        levels[path] = column_level if level is None else level
        if encoding == DICTIONARY:
            dictionary.append(path)
        elif encoding != PLAIN:
            encodings[path] = encoding
    return {
        "compression": "zstd",
        "compression_level": levels,
        "use_dictionary": dictionary,
        "column_encoding": encodings,
        "store_decimal_as_integer": True,
        # min/max of map and list leaves (attribute text, event fields) prune nothing and
        # only grow the footer; top-level columns keep theirs (time pruning, null counts)
        "write_statistics": [p for p in leaves if "." not in p],
    }


# ----------------------------------------------------------------------------- dictionaries


def _decoded(typ: pa.DataType) -> pa.DataType:
    """``typ`` with every dictionary replaced by its value type."""
    if pa.types.is_dictionary(typ):
        return _decoded(typ.value_type)
    if pa.types.is_struct(typ):
        return pa.struct([f.with_type(_decoded(f.type)) for f in typ])
    if pa.types.is_map(typ):
        return pa.map_(_decoded(typ.key_type), _decoded(typ.item_type))
    if pa.types.is_list(typ):
        return pa.list_(typ.value_field.with_type(_decoded(typ.value_type)))
    if pa.types.is_large_list(typ):
        return pa.large_list(typ.value_field.with_type(_decoded(typ.value_type)))
    return typ


def logical_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` as readers see it: dictionary columns as their plain value types."""
    return pa.schema([f.with_type(_decoded(f.type)) for f in schema], metadata=schema.metadata)


def dictionary_leaves(schema: pa.Schema) -> list[str]:
    """String leaves the plan stores as dictionaries: cheap to read back as such."""
    return [
        path
        for path, typ in _leaves(schema).items()
        if pa.types.is_string(_decoded(typ)) and _plan(path)[0] == DICTIONARY
    ]


def merge_read_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` with ``dictionary_leaves`` as ``dictionary<int32, string>``: what
    ``pq.ParquetFile(path, read_dictionary=dictionary_leaves(schema))`` returns.

    Reading that way skips materialising millions of repeated strings, and sorting moves
    4-byte indices instead of strings: a compaction reads, sorts and writes in about half
    the CPU and memory.
    """
    wanted = set(dictionary_leaves(schema))
    encoded = pa.dictionary(pa.int32(), pa.string())

    def convert(path: str, typ: pa.DataType) -> pa.DataType:
        if pa.types.is_struct(typ):
            return pa.struct([f.with_type(convert(f"{path}.{f.name}", f.type)) for f in typ])
        if pa.types.is_map(typ):
            return pa.map_(
                convert(f"{path}.key_value.key", typ.key_type),
                convert(f"{path}.key_value.value", typ.item_type),
            )
        if pa.types.is_list(typ):
            return pa.list_(
                typ.value_field.with_type(convert(f"{path}.list.element", typ.value_type))
            )
        return encoded if path in wanted else typ

    return pa.schema(
        [f.with_type(convert(f.name, f.type)) for f in schema], metadata=schema.metadata
    )


# ----------------------------------------------------------------------------- writing


class ParquetFileWriter:
    """One Parquet file written table by table.

    Given a path, the file is written to ``<dest>.part`` and ``commit`` renames it into place
    once it is complete and durable; given an output stream (an object store upload), the
    caller closes the stream after ``finish``. ``schema`` is the file's declared schema;
    tables may carry dictionary versions of its string columns (``write_schema``). The
    declared schema, with its metadata, is stored as ``ARROW:schema`` exactly as pyarrow would
    store it, so readers get plain strings.
    """

    def __init__(
        self,
        dest: Path | pa.NativeFile,
        schema: pa.Schema,
        *,
        write_schema: pa.Schema | None = None,
        level: int | None = None,
    ) -> None:
        self.dest = dest if isinstance(dest, Path) else None
        self.part = self.dest.with_name(self.dest.name + ".part") if self.dest else None
        self.schema = logical_schema(schema)
        self.write_schema = (write_schema or schema).remove_metadata()
        self.rows = 0
        self._writer: pq.ParquetWriter | None = pq.ParquetWriter(
            self.part if self.part is not None else dest,
            self.write_schema,
            store_schema=False,  # stored by hand in finish(): the declared, not the written
            **writer_options(self.write_schema, level=level),
        )

    def write(self, table: pa.Table, row_group_rows: int) -> None:
        if self._writer is None:
            raise ValueError(f"{self.dest}: already closed")
        table = table.replace_schema_metadata(None)
        if not table.schema.equals(self.write_schema):
            table = table.cast(self.write_schema)
        self._writer.write_table(table, row_group_size=max(1, row_group_rows))
        self.rows += table.num_rows

    def finish(self) -> None:
        """Write the footer (with the declared schema) and close the writer."""
        if self._writer is None:
            raise ValueError(f"{self.dest}: already closed")
        meta = {k.decode(): v.decode() for k, v in (self.schema.metadata or {}).items()}
        meta[_ARROW_SCHEMA_KEY] = base64.b64encode(self.schema.serialize().to_pybytes()).decode()
        self._writer.add_key_value_metadata(meta)
        self._writer.close()
        self._writer = None

    def commit(self, *, fsync: bool = True) -> int:
        """Finish the file, make it durable and rename it into place; return its size."""
        if self.dest is None or self.part is None:
            raise ValueError("commit() is for files written to a path")
        self.finish()
        if fsync:
            fd = os.open(self.part, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(self.part, self.dest)
        return self.dest.stat().st_size

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self.part is not None:
            self.part.unlink(missing_ok=True)


def write_parquet(
    table: pa.Table,
    dest: Path,
    *,
    metadata: Mapping[str, str] | None = None,
    row_group_rows: int = 100_000,
    level: int | None = FLUSH_LEVEL,
    fsync: bool = True,
) -> int:
    """Write ``table`` to ``dest`` atomically (temp name, fsync, rename); return its size.

    ``metadata`` lands in the file's key-value metadata (forensics: writer, lane, WAL end).
    ``level=None`` writes with the per-column levels of compacted files.
    """
    schema = logical_schema(table.schema)
    if metadata:
        merged = dict(schema.metadata or {})
        merged.update({k.encode(): v.encode() for k, v in metadata.items()})
        schema = schema.with_metadata(merged)
    writer = ParquetFileWriter(dest, schema, write_schema=table.schema, level=level)
    try:
        writer.write(table, row_group_rows)
        return writer.commit(fsync=fsync)
    except BaseException:
        writer.abort()
        raise


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


def footer_bytes(paths: Iterable[Path]) -> int:
    """Bytes of the files' footers (metadata, statistics): what ``column_bytes`` misses."""
    return sum(pq.ParquetFile(p).metadata.serialized_size for p in paths)


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
