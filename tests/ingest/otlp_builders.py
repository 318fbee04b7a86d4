"""OTLP requests for receiver tests: hand-built protobuf ones and real SDK spans."""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import (
    InMemoryLogRecordExporter,
    LogRecordExporter,
    LogRecordExportResult,
    SimpleLogRecordProcessor,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    set_span_in_context,
)
from opentelemetry.trace.span import TraceState

T0 = 1_767_225_600_000_000_000


#: What ``kv`` turns into an OTLP attribute value.
AttrValue = str | int | float | bool | list[str]


def kv(key: str, value: AttrValue) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    if isinstance(value, list):
        items = [AnyValue(string_value=v) for v in value]
        return KeyValue(key=key, value=AnyValue(array_value=ArrayValue(values=items)))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def trace_request(spans: int, *, invalid: int = 0) -> ExportTraceServiceRequest:
    """One resource, one scope, ``spans`` GenAI chat spans; the last ``invalid`` of them have
    an all-zero trace id (refused by validation, for partial success)."""
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    rs.resource.attributes.extend([kv("service.name", "support-agent")])
    ss = rs.scope_spans.add()
    ss.scope.name = "agent.lib"
    for i in range(spans):
        span = ss.spans.add()
        span.trace_id = bytes(16) if i >= spans - invalid else (i // 8 + 1).to_bytes(16, "big")
        span.span_id = (i + 1).to_bytes(8, "big")
        span.name = f"chat gpt-4o #{i}"
        span.kind = Span.SPAN_KIND_CLIENT
        span.start_time_unix_nano = T0 + i * 1_000_000
        span.end_time_unix_nano = T0 + i * 1_000_000 + 750_000
        span.attributes.extend(
            [
                kv("gen_ai.operation.name", "chat"),
                kv("gen_ai.provider.name", "openai"),
                kv("gen_ai.request.model", "gpt-4o"),
                kv("gen_ai.usage.input_tokens", 1200 + i),
                kv("gen_ai.usage.output_tokens", 300),
                kv("gen_ai.request.temperature", 0.2),
                kv("correlation.id", f"att-{i // 8}"),
            ]
        )
    return request


def logs_request(records: int = 2) -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    sl = request.resource_logs.add().scope_logs.add()
    for i in range(records):
        record = sl.log_records.add()
        record.time_unix_nano = T0 + i
        record.body.string_value = "ticket resolved"
        record.attributes.extend([kv("task.outcome", "completed"), kv("task.id", f"T-{i}")])
    return request


REMOTE_PARENT = SpanContext(
    trace_id=0x5B8EFFF798038103D269B633813FC60C,
    span_id=0xEEE19B7EC3C1B173,
    is_remote=True,
    trace_flags=TraceFlags(TraceFlags.SAMPLED),
    trace_state=TraceState([("vendor", "abc"), ("other", "x")]),
)
LINKED = SpanContext(
    trace_id=0x0AF7651916CD43DD8448EB211C80319C,
    span_id=0xB7AD6B7169203331,
    is_remote=True,
    trace_flags=TraceFlags(TraceFlags.SAMPLED),
    trace_state=TraceState([("vendor", "abc")]),
)


def sdk_spans() -> Sequence[ReadableSpan]:
    """Spans made by the real SDK, exercising what it can express: resource and scope with
    version, schema URL and attributes; a remote parent (trace state, remote flags); kinds;
    every attribute value type; events; links; error status; and dropped attribute, event and
    link counts (low span limits)."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": "support-agent", "team.id": "support"}),
        span_limits=SpanLimits(
            max_span_attributes=9,
            max_events=2,
            max_links=1,
            max_event_attributes=1,
            max_link_attributes=1,
        ),
    )
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer(
        "agent.lib",
        "0.9",
        schema_url="https://opentelemetry.io/schemas/1.27.0",
        attributes={"scope.attr": True},
    )
    with tracer.start_as_current_span(
        "invoke_agent triage",
        context=set_span_in_context(NonRecordingSpan(REMOTE_PARENT)),
        kind=SpanKind.SERVER,
        attributes={"correlation.id": "att-1"},
    ):
        with tracer.start_as_current_span(
            "chat gpt-4o",
            kind=SpanKind.CLIENT,
            links=[
                Link(LINKED, {"link.kind": "retry-of", "dropped": 1}),
                Link(LINKED),  # over max_links: dropped
            ],
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.usage.input_tokens": 1200,
                "gen_ai.request.temperature": 0.25,
                "gen_ai.stream": False,
                "gen_ai.request.stop_sequences": ("\n\n", "END"),
                "scores": (0.5, 1.5),
                "ids": (1, 2, 3),
                "flags": (True, False),
                "over.the.limit": "dropped",
            },
        ) as span:
            span.add_event("over.the.limit")  # the oldest event is the one dropped
            span.add_event("retry", timestamp=T0)
            span.add_event("gen_ai.content.prompt", {"gen_ai.prompt": "hi", "dropped": 1})
            span.set_status(Status(StatusCode.ERROR, "rate limited"))
        with tracer.start_as_current_span("execute_tool search", kind=SpanKind.INTERNAL):
            pass
    provider.shutdown()
    return memory.get_finished_spans()


def sdk_log_records() -> Sequence[ReadableLogRecord]:
    memory = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    provider = LoggerProvider(resource=Resource.create({"service.name": "ticketing"}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    logger = provider.get_logger("tickets")
    logger.emit(body="ticket resolved", attributes={"task.outcome": "completed", "task.id": "T-7"})
    provider.shutdown()
    return memory.get_finished_logs()


def export_spans(exporter: SpanExporter, spans: Sequence[ReadableSpan]) -> SpanExportResult:
    """One export through a real SDK exporter, then its shutdown."""
    try:
        return exporter.export(spans)
    finally:
        exporter.shutdown()


def export_logs(
    exporter: LogRecordExporter, records: Sequence[ReadableLogRecord]
) -> LogRecordExportResult:
    try:
        return exporter.export(records)
    finally:
        exporter.shutdown()  # type: ignore[no-untyped-call]
