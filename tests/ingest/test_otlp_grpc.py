"""OTLP/gRPC receiver over real sockets, and the unmodified OTel Python gRPC exporters."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from google.rpc.error_details_pb2 import RetryInfo
from google.rpc.status_pb2 import Status
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsPartialSuccess
from opentelemetry.proto.collector.logs.v1.logs_service_pb2_grpc import LogsServiceStub
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub
from opentelemetry.sdk._logs.export import LogRecordExportResult
from opentelemetry.sdk.trace.export import SpanExportResult

from ingest.errors import BadRequest, Overloaded
from ingest.receive.export import ExportResult
from ingest.receive.status import GRPC_DETAILS_KEY, GRPC_RETRY_INFO_KEY
from tests.ingest.conftest import AUTH_TOKEN
from tests.ingest.otlp_builders import (
    export_logs,
    export_spans,
    logs_request,
    sdk_log_records,
    sdk_spans,
    trace_request,
)
from tests.ingest.receiver_harness import ReceiverServer, SinkExporter

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def trace_stub(channel: grpc.Channel) -> TraceServiceStub:
    return TraceServiceStub(channel)  # type: ignore[no-untyped-call]


def logs_stub(channel: grpc.Channel) -> LogsServiceStub:
    return LogsServiceStub(channel)  # type: ignore[no-untyped-call]


@pytest.fixture
def channel(receiver: ReceiverServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(receiver.grpc_target) as ch:
        yield ch


def call_error(call: grpc.RpcError) -> tuple[grpc.StatusCode, str, dict[str, bytes]]:
    assert isinstance(call, grpc.Call)
    trailers = {k: v for k, v in call.trailing_metadata() or () if isinstance(v, bytes)}
    return call.code(), call.details() or "", trailers


def test_export_delivers_request_and_raw_bytes(channel: grpc.Channel, sink: SinkExporter) -> None:
    request = trace_request(512)
    response = trace_stub(channel).Export(request, timeout=30)
    assert response == ExportTraceServiceResponse()
    [(received, raw)] = sink.traces
    assert received == request
    assert raw == request.SerializeToString()


def test_gzip_compressed_export(receiver: ReceiverServer, sink: SinkExporter) -> None:
    request = trace_request(64)
    with grpc.insecure_channel(receiver.grpc_target, compression=grpc.Compression.Gzip) as ch:
        trace_stub(ch).Export(request, timeout=30)
    assert sink.traces[0][0] == request


def test_empty_request_is_ok_without_a_write(channel: grpc.Channel, sink: SinkExporter) -> None:
    assert trace_stub(channel).Export(ExportTraceServiceRequest(), timeout=30) == (
        ExportTraceServiceResponse()
    )
    assert not sink.traces


@pytest.mark.parametrize("compression", [grpc.Compression.NoCompression, grpc.Compression.Gzip])
def test_over_the_limit_is_resource_exhausted(
    receiver: ReceiverServer, sink: SinkExporter, compression: grpc.Compression
) -> None:
    """5 MiB against a 4 MiB limit; gzip shrinks it to a few KB on the wire, and the limit
    still holds after decompression."""
    request = trace_request(1)
    request.resource_spans[0].scope_spans[0].spans[0].name = "x" * (5 << 20)
    with (
        grpc.insecure_channel(receiver.grpc_target, compression=compression) as ch,
        pytest.raises(grpc.RpcError) as info,
    ):
        trace_stub(ch).Export(request, timeout=30)
    assert call_error(info.value)[0] == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert not sink.traces


def test_undecodable_request_is_invalid_argument(channel: grpc.Channel, sink: SinkExporter) -> None:
    export = channel.unary_unary(EXPORT)  # no serializer: raw bytes on the wire
    with pytest.raises(grpc.RpcError) as info:
        export(b"\x0a\xff\xff\xff\xff\x0f garbage", timeout=30)
    code, details, trailers = call_error(info.value)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "decoded" in details
    assert Status.FromString(trailers[GRPC_DETAILS_KEY]).code == code.value[0]
    assert not sink.traces


def test_exporter_refusal_is_invalid_argument(channel: grpc.Channel, sink: SinkExporter) -> None:
    sink.error = BadRequest("span 3 has no name")
    with pytest.raises(grpc.RpcError) as info:
        trace_stub(channel).Export(trace_request(1), timeout=30)
    code, details, _ = call_error(info.value)
    assert (code, details) == (grpc.StatusCode.INVALID_ARGUMENT, "span 3 has no name")


def test_overload_is_unavailable_with_retry_info(channel: grpc.Channel, sink: SinkExporter) -> None:
    sink.error = Overloaded("write-ahead log backlog", retry_after=3)
    with pytest.raises(grpc.RpcError) as info:
        trace_stub(channel).Export(trace_request(1), timeout=30)
    code, details, trailers = call_error(info.value)
    assert code == grpc.StatusCode.UNAVAILABLE
    assert details == "write-ahead log backlog"
    # where the Python exporter reads it
    assert RetryInfo.FromString(trailers[GRPC_RETRY_INFO_KEY]).retry_delay.seconds == 3
    # and the standard place (grpc-status-details-bin)
    status = Status.FromString(trailers[GRPC_DETAILS_KEY])
    info_detail = RetryInfo()
    assert status.code == 14 and status.details[0].Unpack(info_detail)
    assert info_detail.retry_delay.seconds == 3


def test_unexpected_failure_is_unavailable(channel: grpc.Channel, sink: SinkExporter) -> None:
    sink.error = RuntimeError("boom")
    with pytest.raises(grpc.RpcError) as info:
        trace_stub(channel).Export(trace_request(1), timeout=30)
    code, _, trailers = call_error(info.value)
    assert code == grpc.StatusCode.UNAVAILABLE
    assert GRPC_RETRY_INFO_KEY in trailers


def test_partial_success(channel: grpc.Channel, sink: SinkExporter) -> None:
    sink.validate = True
    response = trace_stub(channel).Export(trace_request(6, invalid=2), timeout=30)
    assert response.partial_success.rejected_spans == 2
    assert "trace_id" in response.partial_success.error_message
    assert len(sink.spans) == 4


def test_logs_export_and_partial_success(channel: grpc.Channel, sink: SinkExporter) -> None:
    request = logs_request(3)
    sink.result = ExportResult(rejected=1, error_message="1 record(s): no task.id")
    response = logs_stub(channel).Export(request, timeout=30)
    assert response.partial_success == ExportLogsPartialSuccess(
        rejected_log_records=1, error_message="1 record(s): no task.id"
    )
    assert sink.logs == [(request, request.SerializeToString())]


@pytest.mark.parametrize(
    ("metadata", "code"),
    [
        ((), grpc.StatusCode.UNAUTHENTICATED),
        ((("authorization", f"Basic {AUTH_TOKEN}"),), grpc.StatusCode.UNAUTHENTICATED),
        ((("authorization", "Bearer wrong"),), grpc.StatusCode.PERMISSION_DENIED),
    ],
)
def test_auth_refusals(
    auth_receiver: ReceiverServer, metadata: tuple[tuple[str, str], ...], code: grpc.StatusCode
) -> None:
    auth_receiver.sink.reset()
    with (
        grpc.insecure_channel(auth_receiver.grpc_target) as ch,
        pytest.raises(grpc.RpcError) as info,
    ):
        trace_stub(ch).Export(trace_request(1), metadata=metadata, timeout=30)
    assert call_error(info.value)[0] == code
    assert not auth_receiver.sink.traces


def test_auth_accepts_the_token(auth_receiver: ReceiverServer) -> None:
    auth_receiver.sink.reset()
    with grpc.insecure_channel(auth_receiver.grpc_target) as ch:
        trace_stub(ch).Export(
            trace_request(2), metadata=(("authorization", f"Bearer {AUTH_TOKEN}"),), timeout=30
        )
    assert len(auth_receiver.sink.spans) == 2


# ----------------------------------------------------------------------------- real exporters


@pytest.mark.parametrize(
    ("variable", "compression"),
    [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", None),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", None),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "gzip"),
    ],
)
def test_sdk_grpc_exporter_delivers_every_field(
    receiver: ReceiverServer,
    sink: SinkExporter,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    compression: str | None,
) -> None:
    monkeypatch.setenv(variable, f"http://{receiver.grpc_target}")
    if compression:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", compression)
    spans = sdk_spans()
    assert export_spans(OTLPSpanExporter(), spans) == SpanExportResult.SUCCESS
    [(received, raw)] = sink.traces
    assert received == encode_spans(spans)
    assert raw is not None and ExportTraceServiceRequest.FromString(raw) == received
    chat = next(s for s in sink.spans if s.name == "chat gpt-4o")
    assert chat.dropped_attributes_count and chat.dropped_events_count and chat.dropped_links_count


def test_sdk_grpc_exporter_with_bearer_token_from_env(
    auth_receiver: ReceiverServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth_receiver.sink.reset()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://{auth_receiver.grpc_target}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"authorization=Bearer%20{AUTH_TOKEN}")
    spans = sdk_spans()
    assert export_spans(OTLPSpanExporter(), spans) == SpanExportResult.SUCCESS
    assert auth_receiver.sink.traces[0][0] == encode_spans(spans)


def test_sdk_grpc_log_exporter(
    receiver: ReceiverServer, sink: SinkExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://{receiver.grpc_target}")
    records = sdk_log_records()
    assert export_logs(OTLPLogExporter(), records) == LogRecordExportResult.SUCCESS
    assert [r for r, _ in sink.logs] == [encode_logs(records)]
