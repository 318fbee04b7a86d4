"""Parquet writing: chosen encodings, lossless round trip through pyarrow and DuckDB."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from ingest.parquet import column_bytes, conform, file_metadata, write_parquet
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
