"""The one export path: HTTP and gRPC receivers both end here.

A receiver decodes the wire format into an OTLP request message and awaits
``Exporter.export_traces``; everything after decoding (validation, partial success, the
durable write) is shared, so the two protocols cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import pyarrow as pa
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest


@dataclass(frozen=True)
class ExportResult:
    """What the client is told: how many items were rejected and why (partial success)."""

    rejected: int = 0
    error_message: str = ""


class Exporter(Protocol):
    """What a receiver needs. Raises ``ingest.errors.IngestError`` to refuse the whole request.

    ``raw`` is the request's protobuf encoding when the receiver already has it (an
    uncompressed or decompressed protobuf body), so the durable write need not re-serialize.
    """

    async def export_traces(
        self, request: ExportTraceServiceRequest, raw: bytes | None = None
    ) -> ExportResult: ...

    async def export_logs(
        self, request: ExportLogsServiceRequest, raw: bytes | None = None
    ) -> ExportResult: ...


class RowSink(Protocol):
    """What the signal and cost-entry routes need: append validated rows of a WAL record kind
    (``ingest.wal.log.KIND_SIGNALS``, ``KIND_COSTS``) durably. Raises ``IngestError`` to refuse."""

    async def write_rows(self, kind: int, rows: pa.Table) -> None: ...
