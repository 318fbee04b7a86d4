"""Parquet writing: chosen encodings, lossless round trip through pyarrow, DuckDB and the
DuckDB CLI, dictionary-typed input declared as plain strings."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingest.lake.parquet import (
    column_bytes,
    conform,
    dictionary_leaves,
    file_metadata,
    footer_bytes,
    merge_read_schema,
    write_parquet,
)
from schemas.spans import SPAN_SCHEMA
from tests.ingest.spanrows import span_rows


def _encodings(path: Path) -> dict[str, set[str]]:
    md = pq.ParquetFile(path).metadata.row_group(0)
    return {md.column(i).path_in_schema: set(md.column(i).encodings) for i in range(md.num_columns)}


def test_encodings_statistics_and_metadata(tmp_path: Path) -> None:
    rows = span_rows(300)
    dest = tmp_path / "f.parquet"
    size = write_parquet(rows, dest, metadata={"tasklake.writer": "w1", "tasklake.lane": "0"})
    assert size == dest.stat().st_size and not list(tmp_path.glob("*.part"))
    enc = _encodings(dest)
    assert "DELTA_LENGTH_BYTE_ARRAY" in enc["span_id"] and "RLE_DICTIONARY" not in enc["span_id"]
    assert "DELTA_BINARY_PACKED" in enc["start_time"]
    assert "RLE_DICTIONARY" in enc["service_name"]
    assert "RLE_DICTIONARY" in enc["attributes.key_value.key"]
    md = pq.ParquetFile(dest).metadata
    cost = md.row_group(0).column(md.schema.names.index("cost_usd"))
    assert cost.physical_type == "INT64"  # store_decimal_as_integer
    assert md.row_group(0).column(md.schema.names.index("trace_id")).statistics.has_min_max
    assert cost.compression == "ZSTD"
    assert file_metadata(dest) == {"tasklake.writer": "w1", "tasklake.lane": "0"}
    assert set(column_bytes(dest)) >= {"span_id", "attributes.key_value.value"}


def test_round_trip_is_lossless_in_pyarrow_and_duckdb(tmp_path: Path) -> None:
    rows = span_rows(200, seed=5)
    dest = tmp_path / "f.parquet"
    write_parquet(rows, dest)
    assert pq.read_table(dest).equals(rows.replace_schema_metadata(None).cast(SPAN_SCHEMA))
    # DuckDB 1.5 reads UTC-adjusted ns timestamps as TIMESTAMPTZ (microseconds): the file
    # keeps nanoseconds (pyarrow above), DuckDB sees them truncated to its resolution
    got = duckdb.sql(
        f"SELECT span_id, epoch_us(start_time), cost_usd::VARCHAR, attributes "
        f"FROM '{dest}' ORDER BY span_id"
    ).fetchall()
    want = sorted(
        zip(
            rows.column("span_id").to_pylist(),
            [t // 1000 for t in rows.column("start_time").cast(pa.int64()).to_pylist()],
            [None if c is None else str(c) for c in rows.column("cost_usd").to_pylist()],
            [dict(m) if m is not None else {} for m in rows.column("attributes").to_pylist()],
            strict=True,
        )
    )
    assert [(a, b, c, d or {}) for a, b, c, d in got] == want


def test_conform_fills_new_columns_and_keeps_unknown_ones() -> None:
    old = pa.table({"span_id": ["a"], "zzz_future": [1]})
    got = conform(old, SPAN_SCHEMA)
    assert got.schema.names[: len(SPAN_SCHEMA)] == SPAN_SCHEMA.names
    assert got.column("span_id").to_pylist() == ["a"] and got.column("trace_id").null_count == 1
    assert got.schema.names[-1] == "zzz_future"


def test_compacted_files_use_the_column_plan(tmp_path: Path) -> None:
    dest = tmp_path / "f.parquet"
    write_parquet(span_rows(2_000), dest, level=None)
    enc = _encodings(dest)
    assert "DELTA_BYTE_ARRAY" in enc["trace_id"] and "DELTA_BYTE_ARRAY" in enc["tool_call_id"]
    assert "DELTA_LENGTH_BYTE_ARRAY" in enc["attributes.key_value.value"]
    assert "DELTA_BINARY_PACKED" in enc["cost_usd"]
    assert "RLE_DICTIONARY" in enc["duration_ns"] and "RLE_DICTIONARY" in enc["name"]
    group = pq.ParquetFile(dest).metadata.row_group(0)
    stats = {group.column(i).path_in_schema: group.column(i).statistics for i in range(67)}
    assert stats["start_time"] is not None and stats["start_time"].has_min_max
    assert stats["attributes.key_value.value"] is None  # prunes nothing, grows the footer
    assert 0 < footer_bytes([dest]) < dest.stat().st_size


def test_dictionary_input_is_declared_and_read_as_plain_strings(tmp_path: Path) -> None:
    rows = span_rows(500, seed=9)
    plain = tmp_path / "plain.parquet"
    write_parquet(rows, plain, metadata={"tasklake.writer": "w"})
    schema = merge_read_schema(SPAN_SCHEMA)
    encoded = pq.ParquetFile(plain, read_dictionary=dictionary_leaves(SPAN_SCHEMA)).read()
    assert encoded.schema.equals(schema)
    assert pa.types.is_dictionary(encoded.schema.field("name").type)
    again = tmp_path / "again.parquet"
    write_parquet(encoded, again, metadata={"tasklake.writer": "w"}, level=None)
    assert pq.ParquetFile(again).schema_arrow.equals(SPAN_SCHEMA)
    assert pq.read_table(again).equals(pq.read_table(plain))
    assert file_metadata(again) == {"tasklake.writer": "w"}
    assert _encodings(again)["name"] >= {"RLE_DICTIONARY"}
    query = "SELECT name, map_keys(attributes) FROM '{}' ORDER BY span_id"
    assert duckdb.sql(query.format(again)).fetchall() == duckdb.sql(query.format(plain)).fetchall()


def _cli() -> str | None:
    try:
        import duckdb_cli  # type: ignore[import-untyped]
    except ImportError:
        return shutil.which("duckdb")
    binary = Path(duckdb_cli.__file__).with_name("duckdb")
    return str(binary) if binary.is_file() else shutil.which("duckdb")


def test_the_duckdb_cli_reads_every_encoding_of_the_plan(tmp_path: Path) -> None:
    dest = tmp_path / "f.parquet"
    write_parquet(span_rows(1_000, seed=11), dest, level=None)
    sql = (
        "SELECT count(*), count(DISTINCT trace_id), sum(cost_usd), max(tool_call_id), "
        "sum(len(map_keys(attributes))), min(start_time)::VARCHAR, "
        f"sum(duration_ns), max(correlation_id), max(task_id) FROM '{dest}'"
    )
    want = duckdb.sql(sql).fetchone()
    assert want is not None and want[0] == 1_000
    cli = _cli()
    if cli is None:
        pytest.skip("the DuckDB CLI (duckdb-cli) is not installed")
    out = subprocess.run(
        [cli, "-csv", "-noheader", "-c", sql],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.strip()
    assert out.split(",") == ["" if v is None else str(v) for v in want]
