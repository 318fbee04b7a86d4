"""Storage figures: WAL group commit, converter throughput and flush cost, compaction speed and
CPU, bytes per span at rest (per column).

    .venv/bin/python -m bench.storage_bench

- ``wal_ack_spans_per_s`` (durable and not): 512-span requests from 4 concurrent asyncio
  clients through ``LakeExporter`` into 2 lanes, no converters: what the main process can
  acknowledge after fsync (HTTP decoding excluded);
- ``converter_spans_per_s``: one converter (the real normalizer) draining a WAL of the
  ingest bench's requests (512k distinct spans, ``bench.ingest_bench``) into published Parquet
  files, in-process, single core; ``flush_write_us_per_span``: the Parquet part of a flush
  (``write_parquet`` at the flush level, no fsync) and ``bytes_per_span_flushed``;
- ``compaction_rows_per_s`` (wall) and ``compaction_cpu_us_per_row``: ``compact_once`` over
  those flush files (row groups of 100k); ``rollup_hook_cpu_us_per_row``: the companion hook
  the server runs on every compacted file (``schemas.rollup.build_rollups``), measured apart;
- ``bytes_per_span``: span files after compaction ÷ rows (the issue's target: <= 40);
  ``footer_bytes_per_span``; ``col_<leaf>``: bytes per span of the 15 biggest leaf columns,
  ``col_other`` the rest.

Where the bytes went (this workload, 512k spans, row groups of 100k), before -> after the
column plan of ``ingest.lake.parquet`` and dictionary-aware compaction:

=============================  ======  ======  =============================================
column                         before  after   what bought it
=============================  ======  ======  =============================================
span_id                          8.35    8.06  zstd level 1 (random hex; floor 8.0)
attributes values                7.65    6.68  no dictionary (DELTA_LENGTH), zstd level 12
start_time                       3.58    3.58  DELTA_BINARY_PACKED already (trace jumps)
tool_call_id                     3.73    3.21  DELTA_BYTE_ARRAY ("call_" prefix), level 1
conversation_id                  2.71    2.44  DELTA_BYTE_ARRAY (repeats along the trace)
correlation_id                   2.52    2.45  DELTA_BYTE_ARRAY, level 1
cost_usd                         2.45    2.34  DELTA_BINARY_PACKED
duration_ns                      2.24    2.24  dictionary (ms clocks repeat)
trace_id                         2.39    2.13  DELTA_BYTE_ARRAY, level 1 (floor 2.0)
parent_span_id                   1.19    1.11  level 1 (floor 1.0)
input/total_tokens               2.21    1.91  DELTA_BINARY_PACKED
source_keys (key + value)        1.27    1.18  zstd level 12 on the dictionary indices
user_id                          0.32    0.26  sorted dictionary of the used values only
task_id                          0.27    0.02  DELTA_BYTE_ARRAY (sequential ids)
footer                           0.14    0.13  no statistics on map/list leaves
total                           43.12   39.80  (ingest bench, real server, 512k spans)
=============================  ======  ======  =============================================

Measured and not taken: zstd 19 everywhere (38.1, but 40+ µs/row on the attribute values
alone), data page v2 (50.1: levels stay uncompressed), ordering a trace's spans by name (the
attribute text -0.2 and source keys -0.2, start_time +0.5), bigger row groups (131072: -0.17,
200k: -0.33, at ~2.3 KB of compaction memory per row of the window).
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pyarrow.parquet as pq
from ingest.compact import compact_once
from ingest.storage import Storage
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from bench.ingest_bench import _read_cache, _write_cache
from ingest.convert.lane import COMMITTED, STATUS_SLOTS, STOP, Converter, LaneSpec, build_handlers
from ingest.lake.parquet import FLUSH_LEVEL, column_bytes, footer_bytes, write_parquet
from ingest.pipeline import LakeExporter, Lane
from ingest.wal.log import WalWriter
from schemas.lake import SPANS, ensure_lake
from schemas.settings import Settings

SPANS_PER_REQUEST = 512


def _wal_ack(root: Path, bodies: list[bytes], fsync: bool, seconds: float = 3.0) -> float:
    lanes = []
    for i in range(2):
        status = [0] * STATUS_SLOTS

        def on_commit(pos: int, s: list[int] = status) -> None:
            s[COMMITTED] = pos

        writer = WalWriter(
            root / f"wal-{fsync}-{i}", segment_bytes=64 << 20, fsync=fsync, on_commit=on_commit
        )
        lanes.append(Lane(i, writer, status))
    exporter = LakeExporter(lanes, 1 << 40)
    decoded = [ExportTraceServiceRequest.FromString(b) for b in bodies]

    async def client(k: int, until: float) -> int:
        n = 0
        while time.monotonic() < until:
            i = (k + n * 4) % len(bodies)
            request = ExportTraceServiceRequest()
            request.CopyFrom(decoded[i])
            await exporter.export_traces(request, bodies[i])
            n += 1
        return n

    async def run() -> int:
        until = time.monotonic() + seconds
        return sum(await asyncio.gather(*(client(k, until) for k in range(4))))

    started = time.monotonic()
    requests = asyncio.run(run())
    elapsed = time.monotonic() - started
    for lane in lanes:
        lane.writer.close()
    return requests * SPANS_PER_REQUEST / elapsed


def _span_files(storage: Storage) -> list[Path]:
    return [
        storage.partition_path(SPANS, p) / n
        for p in storage.partitions(SPANS)
        if storage.is_generational(SPANS, p)
        for n in storage.list_files(SPANS, p)
    ]


def _flush_write_us(files: list[Path], root: Path) -> float:
    """CPU of writing the flush files again as a converter does (no fsync), per span."""
    tables = [pq.read_table(f) for f in files[:4]]
    rows: int = sum(t.num_rows for t in tables)
    started = time.process_time()
    for i, table in enumerate(tables):
        write_parquet(table, root / f"flush-{i}.parquet", level=FLUSH_LEVEL, fsync=False)
    return (time.process_time() - started) / rows * 1e6


def _rollup_us(path: Path, root: Path) -> float:
    from schemas.rollup import build_rollups

    rows: int = pq.read_metadata(path).num_rows
    started = time.process_time()
    build_rollups(path, root)
    return (time.process_time() - started) / rows * 1e6


def run(root: Path | None = None) -> dict[str, float]:
    own = root is None
    root = Path(tempfile.mkdtemp(prefix="storage-bench-")) if root is None else root
    try:
        bodies = _read_cache(_write_cache(1000))  # the ingest bench's 512k distinct spans
        out: dict[str, float] = {
            "wal_ack_spans_per_s_durable": _wal_ack(root, bodies[:64], True),
            "wal_ack_spans_per_s_nofsync": _wal_ack(root, bodies[:64], False),
        }
        lake = root / "lake"
        ensure_lake(lake)
        settings = replace(
            Settings(),
            lake=str(lake),
            writer_id="bench",
            flush_rows=50_000,
            compaction_target_rows=1_000_000,
            row_group_rows=100_000,
            compaction_grace=0.0,
        )
        spec = LaneSpec(str(lake), "bench", 0)
        writer = WalWriter(spec.wal_dir, segment_bytes=64 << 20)
        for body in bodies:
            writer.append(1, body, int(time.time() * 1000))
        writer.close()
        status = [0] * STATUS_SLOTS
        status[COMMITTED] = writer.position
        status[STOP] = 1
        conv = Converter(
            spec,
            settings,
            status,
            handlers=build_handlers(settings, {1: "ingest.convert.lane:span_handler"}),
        )
        conv.recover()
        started = time.monotonic()
        conv.run()
        spans = len(bodies) * SPANS_PER_REQUEST
        out["converter_spans_per_s"] = spans / (time.monotonic() - started)
        storage = Storage(lake)
        files = _span_files(storage)
        out["flush_files"] = float(len(files))
        out["bytes_per_span_flushed"] = sum(f.stat().st_size for f in files) / spans
        out["flush_write_us_per_span"] = _flush_write_us(files, root)
        stats = compact_once(settings)
        out["compaction_rows_per_s"] = stats.rows / stats.seconds if stats.seconds else 0.0
        out["compaction_cpu_us_per_row"] = stats.cpu_seconds / max(stats.rows, 1) * 1e6
        files = _span_files(storage)
        out["compacted_files"] = float(len(files))
        out["bytes_per_span"] = sum(f.stat().st_size for f in files) / spans
        out["footer_bytes_per_span"] = footer_bytes(files) / spans
        out["rollup_hook_cpu_us_per_row"] = _rollup_us(files[0], root)
        cols: dict[str, int] = {}
        for f in files:
            for name, size in column_bytes(f).items():
                cols[name] = cols.get(name, 0) + size
        ranked = sorted(cols.items(), key=lambda kv: -kv[1])
        for name, size in ranked[:15]:
            out[f"col_{name}"] = size / spans
        out["col_other"] = sum(size for _, size in ranked[15:]) / spans
        return out
    finally:
        if own:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key:60s} {value:14,.2f}")
