"""A minimal span handler for storage tests: identity, timing and status columns only.

Storage tests need rows from real OTLP requests without depending on the normalizer; the
crash and runtime tests use the real normalizer when it is importable (``SPAN_HANDLERS``).
"""

from __future__ import annotations

import importlib.util

import pyarrow as pa
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from ingest.wal.log import KIND_TRACES
from schemas.lake import SPANS
from schemas.settings import Settings
from schemas.spans import SCHEMA_VERSION, SPAN_SCHEMA


class StubSpanHandler:
    table = SPANS
    time_column = "start_time"

    def rows(self, payload: memoryview, time_ms: int) -> pa.RecordBatch:
        request = ExportTraceServiceRequest.FromString(bytes(payload))
        cols: dict[str, list[object]] = {
            k: []
            for k in (
                "trace_id",
                "span_id",
                "parent_span_id",
                "name",
                "kind",
                "start_time",
                "duration_ns",
                "status_code",
                "service_name",
            )
        }
        for rs in request.resource_spans:
            service = next(
                (a.value.string_value for a in rs.resource.attributes if a.key == "service.name"),
                None,
            )
            for ss in rs.scope_spans:
                for s in ss.spans:
                    cols["trace_id"].append(s.trace_id.hex())
                    cols["span_id"].append(s.span_id.hex())
                    cols["parent_span_id"].append(s.parent_span_id.hex() or None)
                    cols["name"].append(s.name)
                    cols["kind"].append(s.kind)
                    cols["start_time"].append(s.start_time_unix_nano)
                    cols["duration_ns"].append(s.end_time_unix_nano - s.start_time_unix_nano)
                    cols["status_code"].append(s.status.code)
                    cols["service_name"].append(service)
        n = len(cols["span_id"])
        arrays = []
        for field in SPAN_SCHEMA:
            if field.name in cols:
                arrays.append(pa.array(cols[field.name], field.type))
            elif field.name == "schema_version":
                arrays.append(pa.array([SCHEMA_VERSION] * n, field.type))
            elif field.name == "ingested_at":
                arrays.append(pa.array([time_ms] * n, field.type))
            else:
                arrays.append(pa.nulls(n, field.type))
        return pa.RecordBatch.from_arrays(arrays, schema=SPAN_SCHEMA)


def handler(settings: Settings) -> StubSpanHandler:
    return StubSpanHandler()


STUB_HANDLERS = {KIND_TRACES: "tests.ingest.stub_handler:handler"}
#: The real normalizer once it exists, else the stub.
SPAN_HANDLERS = (
    {KIND_TRACES: "ingest.convert.lane:span_handler"}
    if importlib.util.find_spec("ingest.convert.normalize") is not None
    else STUB_HANDLERS
)
