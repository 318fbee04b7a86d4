"""Storage figures: WAL group commit, converter throughput, compaction, bytes per span at rest.

    .venv/bin/python -m bench.storage_bench

- ``wal_ack_spans_per_s`` (durable and not): 512-span requests from 4 concurrent asyncio
  clients through ``LakeExporter`` into 2 lanes, no converters: what the main process can
  acknowledge after fsync (HTTP decoding excluded);
- ``converter_spans_per_s``: one converter (the real normalizer) draining a WAL of those
  requests into published Parquet files, in-process, single core;
- ``compaction_rows_per_s`` and ``bytes_per_span``: the converter's flush files compacted into
  one partition (row groups of 100k, zstd), all span files ÷ rows; ``col_<name>``: bytes per
  span of the biggest columns.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from bench.workload import request_bodies
from ingest.compact import compact_once
from ingest.convert import COMMITTED, STATUS_SLOTS, STOP, Converter, LaneSpec, build_handlers
from ingest.parquet import column_bytes
from ingest.pipeline import LakeExporter, Lane
from ingest.storage import Storage
from ingest.wal import WalWriter
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


def run(requests: int = 400, root: Path | None = None) -> dict[str, float]:
    own = root is None
    root = Path(tempfile.mkdtemp(prefix="storage-bench-")) if root is None else root
    try:
        bodies = request_bodies(requests, SPANS_PER_REQUEST)
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
            flush_rows=20_000,
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
            handlers=build_handlers(settings, {1: "ingest.convert:span_handler"}),
        )
        conv.recover()
        started = time.monotonic()
        conv.run()
        spans = requests * SPANS_PER_REQUEST
        out["converter_spans_per_s"] = spans / (time.monotonic() - started)
        storage = Storage(lake)
        partitions = [p for p in storage.partitions(SPANS) if storage.is_generational(SPANS, p)]
        files = [
            storage.partition_path(SPANS, p) / n
            for p in partitions
            for n in storage.list_files(SPANS, p)
        ]
        out["flush_files"] = float(len(files))
        out["bytes_per_span_flushed"] = sum(f.stat().st_size for f in files) / spans
        stats = compact_once(settings)
        out["compaction_rows_per_s"] = stats.rows / stats.seconds if stats.seconds else 0.0
        files = [
            storage.partition_path(SPANS, p) / n
            for p in partitions
            for n in storage.list_files(SPANS, p)
        ]
        out["compacted_files"] = float(len(files))
        out["bytes_per_span"] = sum(f.stat().st_size for f in files) / spans
        cols: dict[str, int] = {}
        for f in files:
            for name, size in column_bytes(f).items():
                cols[name] = cols.get(name, 0) + size
        for name, size in sorted(cols.items(), key=lambda kv: -kv[1])[:15]:
            out[f"col_{name}"] = size / spans
        return out
    finally:
        if own:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key:60s} {value:14,.2f}")
