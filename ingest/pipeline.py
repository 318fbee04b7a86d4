"""The export path behind every receiver: validate, append to a lane's WAL, await durability.

The main process does as little per span as it can: ``validate_traces`` (partial success),
then one WAL append of the request's bytes (the receiver's own ``raw`` bytes when nothing was
rejected, so nothing is re-serialized). Normalization happens later in the lane's converter
process. A request is answered only once its record is fsynced (group commit: one fsync per
batch of waiting requests, not per request).

Signals (``POST /api/v1/signals`` and OTLP log records carrying ``task.outcome``) and cost
entries (``POST /api/v1/costs``) take the same path: ``write_rows`` appends their validated rows
as records of their own kind (``ingest.wal.records``), acknowledged only once fsynced.

A request larger than ``FRAGMENT_BYTES`` is appended as a chain of smaller records
(``ingest.wal.fragments``), durable all or none, so a converter never has to hold a whole 64 MiB
request at once.

Back-pressure: when even the least-loaded lane holds more than ``wal_max_backlog_bytes`` of
unconverted log, or the runtime is stopping, the request is refused with 503 + Retry-After
(``Overloaded``) before anything is written: nothing refused is half-stored.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from ingest.convert.lane import CHECKPOINT_POS, COMMITTED
from ingest.errors import Overloaded
from ingest.receive.export import ExportResult
from ingest.receive.log_signals import signals_from_logs
from ingest.receive.validate import validate_traces
from ingest.wal.fragments import split_rows, split_traces
from ingest.wal.log import KIND_COSTS, KIND_SIGNALS, KIND_TRACES, Pieces, WalError, WalWriter
from ingest.wal.records import encode_rows
from schemas.settings import Settings
from schemas.signals import signals_table


@dataclass
class Lane:
    """The main-process side of a lane: its WAL writer and the status its converter shares."""

    index: int
    writer: WalWriter
    status: Any  # RawArray('q') shared with the converter (see ingest.convert.lane slots)

    def backlog(self) -> int:
        """WAL bytes accepted but not yet published as Parquet (queued ones included)."""
        return (
            int(self.status[COMMITTED])
            - int(self.status[CHECKPOINT_POS])
            + self.writer.queued_bytes
        )


@dataclass
class Counters:
    requests: int = 0
    spans: int = 0
    rejected_spans: int = 0
    refused_requests: int = 0
    bytes: int = 0
    by_lane: dict[int, int] = field(default_factory=dict)
    signals: int = 0
    cost_entries: int = 0
    rejected_log_records: int = 0


class LakeExporter:
    """``ingest.receive.export.Exporter`` writing to the lake's write-ahead log."""

    def __init__(
        self, lanes: Sequence[Lane], max_backlog_bytes: int, settings: Settings | None = None
    ) -> None:
        if not lanes:
            raise ValueError("at least one lane")
        self.lanes = list(lanes)
        self.max_backlog_bytes = max_backlog_bytes
        #: attribute keys of log records that are signals (task, correlation, workflow)
        self.settings = settings or Settings()
        self.counters = Counters()
        self.stopping = False
        self._turn = itertools.cycle(range(len(self.lanes)))

    def pick_lane(self) -> Lane:
        """The lane with the least backlog; round-robin among equals."""
        start = next(self._turn)
        order = self.lanes[start:] + self.lanes[:start]
        lane = min(order, key=Lane.backlog)
        backlog = lane.backlog()
        if backlog > self.max_backlog_bytes:
            self.counters.refused_requests += 1
            raise Overloaded(
                f"ingest is behind: {backlog // (1024 * 1024)} MiB of write-ahead log wait for "
                "conversion; retry later",
                retry_after=2,
            )
        return lane

    async def export_traces(
        self, request: ExportTraceServiceRequest, raw: bytes | None = None
    ) -> ExportResult:
        self._check_open()
        accepted, rejected, message = validate_traces(request)
        self.counters.rejected_spans += rejected
        if accepted == 0:
            return ExportResult(rejected, message)
        payload = raw if raw is not None and rejected == 0 else request.SerializeToString()
        lane = await self._append(KIND_TRACES, split_traces(payload))
        c = self.counters
        c.requests += 1
        c.spans += accepted
        c.bytes += len(payload)
        c.by_lane[lane.index] = c.by_lane.get(lane.index, 0) + accepted
        return ExportResult(rejected, message)

    async def export_logs(
        self, request: ExportLogsServiceRequest, raw: bytes | None = None
    ) -> ExportResult:
        """Store the signals among the log records (``ingest.receive.log_signals``); the other
        records are accepted and ignored."""
        self._check_open()
        found = signals_from_logs(request, self.settings, now=time.time_ns())
        self.counters.rejected_log_records += found.rejected
        if found.signals:
            rows = signals_table(
                found.signals, received_at_ms=int(time.time() * 1000), source="otlp-logs"
            )
            await self.write_rows(KIND_SIGNALS, rows)
        return ExportResult(found.rejected, found.error_message)

    async def write_rows(self, kind: int, rows: pa.Table) -> None:
        """Append validated signal or cost-entry rows as one record; return once durable."""
        self._check_open()
        if rows.num_rows == 0:
            return
        payloads = [encode_rows(part) for part in split_rows(rows)]
        await self._append(kind, [[payload] for payload in payloads])
        c = self.counters
        c.requests += 1
        c.bytes += sum(len(payload) for payload in payloads)
        if kind == KIND_SIGNALS:
            c.signals += rows.num_rows
        elif kind == KIND_COSTS:
            c.cost_entries += rows.num_rows

    def _check_open(self) -> None:
        if self.stopping:
            self.counters.refused_requests += 1
            raise Overloaded("tasklake is shutting down; retry later", retry_after=5)

    async def _append(self, kind: int, records: Sequence[Pieces]) -> Lane:
        """One chain of WAL records on the least-loaded lane, awaited until durable."""
        lane = self.pick_lane()
        try:
            future = lane.writer.append_chain(kind, records, int(time.time() * 1000))
            await asyncio.wrap_future(future)
        except WalError as exc:
            self.counters.refused_requests += 1
            raise Overloaded(f"write-ahead log unavailable: {exc}", retry_after=5) from exc
        return lane
