"""A child process for crash tests: an ``IngestRuntime`` under sustained ingest that records
every acknowledgement, to be ``kill -9``-ed at any moment and restarted.

    python -m tests.ingest.crash_driver LAKE ACKS FIRST [--drain] [--lanes N] [--wal-dir DIR]

Sends requests of uniquely numbered spans (span id = number, start times over three UTC days
so a flush writes several files) from 4 concurrent clients; after each acknowledgement it
appends ``first count`` to ACKS. Prints ``READY <converter pids>`` once recovery is done.
``--drain`` starts, waits until ready, stops cleanly (converting everything) and exits.
The lead's HTTP crash test can reuse ``numbered_request`` and ``acknowledged``/``lake_span_ids``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections import Counter
from pathlib import Path

import duckdb
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from schemas.settings import Settings

DAY_NS = 86_400 * 10**9
BASE_NS = 20_500 * DAY_NS + 3_600 * 10**9  # 2026-02-16T01:00Z
#: The partitions ``numbered_request`` spans land in.
DRIVER_PARTITIONS = ("date=2026-02-16", "date=2026-02-17", "date=2026-02-18")
SPANS_PER_REQUEST = 100
#: Span ids are this plus the span number (an all-zero span id is invalid).
SPAN_ID_BASE = 1 << 60


def numbered_request(first: int, count: int, days: int = 3) -> ExportTraceServiceRequest:
    """Spans numbered ``first``..``first+count-1`` (span id ``SPAN_ID_BASE + n``), one trace per
    ten spans, start times spread over ``days`` days."""
    spans = []
    for n in range(first, first + count):
        start = BASE_NS + (n % days) * DAY_NS + n * 1000
        spans.append(
            Span(
                trace_id=(n // 10 + 1).to_bytes(16, "big"),
                span_id=(SPAN_ID_BASE + n).to_bytes(8, "big"),
                name=f"chat #{n}",
                kind=Span.SPAN_KIND_CLIENT,
                start_time_unix_nano=start,
                end_time_unix_nano=start + 5_000_000,
                attributes=[
                    KeyValue(key="gen_ai.operation.name", value=AnyValue(string_value="chat")),
                    KeyValue(key="gen_ai.request.model", value=AnyValue(string_value="gpt-4o")),
                    KeyValue(key="gen_ai.usage.input_tokens", value=AnyValue(int_value=100)),
                    KeyValue(key="gen_ai.usage.output_tokens", value=AnyValue(int_value=10)),
                ],
            )
        )
    resource = Resource(
        attributes=[KeyValue(key="service.name", value=AnyValue(string_value="crash-test"))]
    )
    return ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(resource=resource, scope_spans=[ScopeSpans(spans=spans)])]
    )


def driver_settings(
    lake: Path | str, lanes: int = 2, wal_dir: Path | str | None = None
) -> Settings:
    """The driver's settings over ``lake`` (an S3 lake: its WAL in ``wal_dir``, by default in
    ``tests.lakes.local_dir``)."""
    from tests.lakes import lake_settings

    return lake_settings(
        lake,
        **({"wal_dir": str(wal_dir)} if wal_dir is not None else {}),
        writer_id="crash",
        lanes=lanes,
        flush_interval=0.05,
        flush_rows=3_000,
        wal_segment_bytes=256 * 1024,
        compaction_interval=0.3,
        compaction_target_rows=20_000,
        commit_interval=0.05,
    )


def acknowledged(acks: Path) -> list[int]:
    """Every span number the driver saw acknowledged (across all its runs)."""
    out: list[int] = []
    if not acks.exists():
        return out
    for line in acks.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2:  # a line cut by kill -9 is not an acknowledgement we recorded
            first, count = int(parts[0]), int(parts[1])
            out.extend(range(first, first + count))
    return out


def lake_span_ids(lake: Path | str) -> Counter[int]:
    """How many times each span id was committed to the spans table by ingest: every commit
    of the log, so a span committed twice counts twice even after compaction merged the
    copies away (the ``spans`` view would count it once either way)."""
    from schemas.lake import SPANS
    from schemas.location import configure_duckdb
    from tests.lakes import tables

    t = tables(lake)
    t.ensure()
    files = [
        f.uri
        for c in t.commits(SPANS, 0, t.version_of(SPANS).version) or []
        if c.op == "ingest"
        for f in c.added
    ]
    if not files:
        return Counter()
    con = duckdb.connect()
    configure_duckdb(con, t.location)
    rows = con.execute(
        "SELECT span_id, count(*) FROM read_parquet(?) GROUP BY span_id", [files]
    ).fetchall()
    return Counter({int(span_id, 16) - SPAN_ID_BASE: int(n) for span_id, n in rows})


async def _drive(runtime: object, acks: Path, first: int) -> None:
    from ingest.runtime import IngestRuntime

    assert isinstance(runtime, IngestRuntime)
    exporter = runtime.exporter
    counter = iter(range(first, first + 10**9, SPANS_PER_REQUEST))
    with open(acks, "a", buffering=1) as out:

        async def client() -> None:
            while True:
                start = next(counter)
                request = numbered_request(start, SPANS_PER_REQUEST)
                await exporter.export_traces(request, request.SerializeToString())
                out.write(f"{start} {SPANS_PER_REQUEST}\n")

        await asyncio.gather(*(client() for _ in range(4)))


def main(argv: list[str] | None = None) -> int:
    from ingest.runtime import IngestRuntime
    from tests.ingest.stub_handler import SPAN_HANDLERS

    parser = argparse.ArgumentParser()
    parser.add_argument("lake")
    parser.add_argument("acks", type=Path)
    parser.add_argument("first", type=int)
    parser.add_argument("--drain", action="store_true")
    parser.add_argument("--lanes", type=int, default=2)
    parser.add_argument("--wal-dir", default=None)
    args = parser.parse_args(argv)
    settings = driver_settings(args.lake, args.lanes, args.wal_dir)
    runtime = IngestRuntime(settings, handlers=SPAN_HANDLERS)
    runtime.start()
    if not runtime.wait_ready(120):
        print("NOT READY", runtime.stats(), flush=True)
        return 2
    pids = " ".join(str(lane["converter_pid"]) for lane in runtime.stats()["lanes"])
    print(f"READY {pids}", flush=True)
    if args.drain:
        runtime.stop(timeout=120)
        print("DRAINED", flush=True)
        return 0
    asyncio.run(_drive(runtime, args.acks, args.first))
    return 0


if __name__ == "__main__":
    sys.exit(main())
