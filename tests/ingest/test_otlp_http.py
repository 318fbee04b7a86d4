"""OTLP/HTTP receiver over real sockets: every item of reference/otlp-receiver.md that applies
to traces and logs, and the unmodified OTel Python HTTP exporters."""

from __future__ import annotations

import gzip
import http.client
import json
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
import zstandard
from google.protobuf import text_format
from google.rpc.error_details_pb2 import RetryInfo
from google.rpc.status_pb2 import Status
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk._logs.export import LogRecordExportResult
from opentelemetry.sdk.trace.export import SpanExportResult

from ingest.errors import BadRequest, Overloaded
from ingest.receive.export import ExportResult
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

CASES = Path(__file__).parent / "cases"
PB = "application/x-protobuf"
JSON = "application/json"


def post(
    server: ReceiverServer,
    body: bytes | Iterator[bytes],
    content_type: str | None = PB,
    path: str = "/v1/traces",
    **headers: str,
) -> requests.Response:
    if content_type is not None:
        headers["Content-Type"] = content_type
    return requests.post(server.url + path, data=body, headers=headers, timeout=30)


def status_of(response: requests.Response) -> Status:
    """The google.rpc.Status body, decoded per the response's own content type."""
    if response.headers["content-type"] == PB:
        return Status.FromString(response.content)
    assert response.headers["content-type"] == JSON
    data = json.loads(response.content)
    return Status(code=data["code"], message=data["message"])


def assert_refused(response: requests.Response, http_status: int, sink: SinkExporter) -> Status:
    assert response.status_code == http_status, response.content
    assert not sink.traces and not sink.logs, "nothing may reach the exporter"
    status = status_of(response)
    assert status.message
    return status


# ----------------------------------------------------------------------------- happy paths


def test_protobuf_traces_are_exported_with_their_raw_bytes(
    receiver: ReceiverServer, sink: SinkExporter
) -> None:
    request = trace_request(512)
    body = request.SerializeToString()
    response = post(receiver, body)
    assert response.status_code == 200
    assert response.headers["content-type"] == PB
    assert ExportTraceServiceResponse.FromString(response.content) == ExportTraceServiceResponse()
    [(received, raw)] = sink.traces
    assert received == request
    assert raw == body


def test_json_traces_keep_every_field(receiver: ReceiverServer, sink: SinkExporter) -> None:
    expected = text_format.Parse(
        (CASES / "traces_all_fields.txtpb").read_text(), ExportTraceServiceRequest()
    )
    response = post(receiver, (CASES / "traces_all_fields.json").read_bytes(), JSON)
    assert response.status_code == 200
    assert response.headers["content-type"] == JSON
    assert json.loads(response.content) == {}
    [(received, raw)] = sink.traces
    assert received == expected
    assert raw is None


@pytest.mark.parametrize(
    "content_type",
    ["application/json; charset=utf-8", "Application/JSON", "application/json;charset=UTF-8"],
)
def test_json_media_type_parameters_and_case(
    receiver: ReceiverServer, sink: SinkExporter, content_type: str
) -> None:
    response = post(receiver, (CASES / "traces_all_fields.json").read_bytes(), content_type)
    assert response.status_code == 200
    assert response.headers["content-type"] == JSON
    assert len(sink.spans) == 2


def test_protobuf_media_type_with_parameter(receiver: ReceiverServer, sink: SinkExporter) -> None:
    response = post(receiver, trace_request(3).SerializeToString(), "application/x-protobuf; v=1")
    assert response.status_code == 200
    assert response.headers["content-type"] == PB
    assert len(sink.spans) == 3


def test_logs_in_protobuf_and_json(receiver: ReceiverServer, sink: SinkExporter) -> None:
    request = logs_request(3)
    response = post(receiver, request.SerializeToString(), path="/v1/logs")
    assert response.status_code == 200
    assert ExportLogsServiceResponse.FromString(response.content) == ExportLogsServiceResponse()
    expected_json = text_format.Parse(
        (CASES / "logs_outcome.txtpb").read_text(), ExportLogsServiceRequest()
    )
    response = post(receiver, (CASES / "logs_outcome.json").read_bytes(), JSON, path="/v1/logs")
    assert response.status_code == 200
    assert [r for r, _ in sink.logs] == [request, expected_json]
    assert sink.logs[0][1] == request.SerializeToString()


@pytest.mark.parametrize(
    ("body", "content_type"),
    [(b"", PB), (b"", JSON), (b"{}", JSON), (ExportTraceServiceRequest().SerializeToString(), PB)],
)
def test_empty_request_is_200_without_a_write(
    receiver: ReceiverServer, sink: SinkExporter, body: bytes, content_type: str
) -> None:
    response = post(receiver, body, content_type)
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert not sink.traces


def test_zero_spans_is_200(receiver: ReceiverServer, sink: SinkExporter) -> None:
    request = ExportTraceServiceRequest()
    request.resource_spans.add().scope_spans.add()
    assert post(receiver, request.SerializeToString()).status_code == 200


# ----------------------------------------------------------------------------- encodings


def _raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


ENCODERS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "deflate-raw": _raw_deflate,
    "zstd": zstandard.ZstdCompressor().compress,
    "identity": lambda data: data,
}


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_content_encodings(receiver: ReceiverServer, sink: SinkExporter, name: str) -> None:
    request = trace_request(64)
    body = request.SerializeToString()
    encoding = name.split("-", maxsplit=1)[0]
    response = post(receiver, ENCODERS[name](body), **{"Content-Encoding": encoding})
    assert response.status_code == 200, response.content
    [(received, raw)] = sink.traces
    assert received == request
    assert raw == body  # the decompressed protobuf, for the durable write


def test_compressed_json(receiver: ReceiverServer, sink: SinkExporter) -> None:
    body = gzip.compress((CASES / "traces_all_fields.json").read_bytes())
    response = post(receiver, body, JSON, **{"Content-Encoding": "gzip"})
    assert response.status_code == 200
    assert len(sink.spans) == 2


def test_unknown_encoding_is_400(receiver: ReceiverServer, sink: SinkExporter) -> None:
    body = trace_request(2).SerializeToString()
    status = assert_refused(post(receiver, body, **{"Content-Encoding": "br"}), 400, sink)
    assert "br" in status.message


def test_corrupt_gzip_is_400(receiver: ReceiverServer, sink: SinkExporter) -> None:
    response = post(receiver, b"\x1f\x8bnot really gzip", **{"Content-Encoding": "gzip"})
    assert_refused(response, 400, sink)


def test_chunked_body_without_content_length(receiver: ReceiverServer, sink: SinkExporter) -> None:
    request = trace_request(512)
    body = request.SerializeToString()

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(body), 7_000):
            yield body[i : i + 7_000]

    response = post(receiver, chunks())
    assert response.status_code == 200
    seen = receiver.requests.seen[-1].headers
    assert seen.get("transfer-encoding") == "chunked" and "content-length" not in seen
    assert sink.traces[0][0] == request


# ----------------------------------------------------------------------------- size limits


def test_declared_length_over_the_limit_is_413_before_reading(
    receiver: ReceiverServer, sink: SinkExporter
) -> None:
    """Content-Length says 50 MiB and no body follows: only an early check can answer."""
    connection = http.client.HTTPConnection("127.0.0.1", receiver.http_port, timeout=30)
    try:
        connection.putrequest("POST", "/v1/traces")
        connection.putheader("Content-Type", PB)
        connection.putheader("Content-Length", str(50 << 20))
        connection.endheaders()
        response = connection.getresponse()
        assert response.status == 413
        assert "limit" in Status.FromString(response.read()).message
    finally:
        connection.close()
    assert not sink.traces


def test_chunked_body_over_the_limit_is_413(receiver: ReceiverServer, sink: SinkExporter) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(40):  # 2.5 MiB against a 1 MiB wire limit
            yield bytes(64 << 10)

    assert_refused(post(receiver, chunks()), 413, sink)


def test_body_at_the_wire_limit_is_accepted(receiver: ReceiverServer, sink: SinkExporter) -> None:
    limit = receiver.settings.max_request_bytes
    request = trace_request(1)
    span = request.resource_spans[0].scope_spans[0].spans[0]
    span.name = ""
    span.name = "x" * (limit - request.ByteSize())
    span.name = "x" * (len(span.name) - (request.ByteSize() - limit))  # longer length prefixes
    body = request.SerializeToString()
    assert len(body) == limit
    assert post(receiver, body).status_code == 200
    assert sink.traces[0][0] == request
    sink.reset()
    assert_refused(post(receiver, body + b"x"), 413, sink)


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "zstd"])
def test_decompression_bomb_is_413_and_stores_nothing(
    receiver: ReceiverServer, sink: SinkExporter, encoding: str
) -> None:
    inflated = bytes(16 << 20)  # 16 MiB of zeros against a 4 MiB decompressed limit
    body = ENCODERS[encoding](inflated)
    assert len(body) < receiver.settings.max_request_bytes
    response = post(receiver, body, **{"Content-Encoding": encoding})
    status = assert_refused(response, 413, sink)
    assert response.headers["content-type"] == PB
    assert "decompressed" in status.message


# ----------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_not_post_is_405_with_allow(
    receiver: ReceiverServer, sink: SinkExporter, method: str
) -> None:
    response = requests.request(method, receiver.url + "/v1/traces", timeout=30)
    assert_refused(response, 405, sink)
    assert response.headers["allow"] == "POST"


@pytest.mark.parametrize("path", ["/v1/metrics", "/v1/trace", "/v1/traces/extra", "/v1/"])
def test_unknown_path_under_v1_is_404(
    receiver: ReceiverServer, sink: SinkExporter, path: str
) -> None:
    response = post(receiver, trace_request(1).SerializeToString(), path=path)
    status = assert_refused(response, 404, sink)
    assert response.headers["content-type"] == PB  # the request's encoding
    assert path in status.message


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/protobuf", "application/jsonx", "multipart/form-data"],
)
def test_other_content_type_is_415(
    receiver: ReceiverServer, sink: SinkExporter, content_type: str | None
) -> None:
    response = post(receiver, trace_request(1).SerializeToString(), content_type)
    status = assert_refused(response, 415, sink)
    assert PB in status.message and JSON in status.message


def test_undecodable_protobuf_is_400_in_protobuf(
    receiver: ReceiverServer, sink: SinkExporter
) -> None:
    response = post(receiver, b"\x0a\xff\xff\xff\xff\x0f garbage")
    assert response.headers["content-type"] == PB
    assert "decoded" in assert_refused(response, 400, sink).message


def test_undecodable_json_is_400_in_json(receiver: ReceiverServer, sink: SinkExporter) -> None:
    response = post(
        receiver, b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "xyz"}]}]}]}', JSON
    )
    assert response.headers["content-type"] == JSON
    status = assert_refused(response, 400, sink)
    assert "resourceSpans[0].scopeSpans[0].spans[0].traceId" in status.message


def test_exporter_refusal_is_mapped(receiver: ReceiverServer, sink: SinkExporter) -> None:
    sink.error = BadRequest("span 3 has no name")
    response = post(receiver, trace_request(1).SerializeToString())
    assert response.status_code == 400
    assert status_of(response).message == "span 3 has no name"


@pytest.mark.parametrize("content_type", [PB, JSON])
def test_overload_is_503_with_integer_retry_after(
    receiver: ReceiverServer, sink: SinkExporter, content_type: str
) -> None:
    sink.error = Overloaded("write-ahead log backlog", retry_after=2)
    body = trace_request(1).SerializeToString() if content_type == PB else b'{"resourceSpans":[{}]}'
    response = post(receiver, body, content_type)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "2"
    assert response.headers["content-type"] == content_type
    if content_type == PB:
        status = Status.FromString(response.content)
        info = RetryInfo()
        assert status.details[0].Unpack(info) and info.retry_delay.seconds == 2
    else:
        assert json.loads(response.content)["details"][0]["retryDelay"] == "2s"


def test_unexpected_failure_is_503_never_500(receiver: ReceiverServer, sink: SinkExporter) -> None:
    sink.error = OSError(28, "No space left on device")
    response = post(receiver, trace_request(1).SerializeToString())
    assert response.status_code == 503
    assert response.headers["retry-after"].isdigit()
    assert status_of(response).code == 14  # UNAVAILABLE


# ----------------------------------------------------------------------------- partial success


def test_partial_success_in_protobuf(receiver: ReceiverServer, sink: SinkExporter) -> None:
    sink.validate = True  # the real span validation decides
    response = post(receiver, trace_request(5, invalid=2).SerializeToString())
    assert response.status_code == 200
    answer = ExportTraceServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_spans == 2
    assert "trace_id" in answer.partial_success.error_message
    assert len(sink.spans) == 3  # the good spans are stored


def test_partial_success_in_json(receiver: ReceiverServer, sink: SinkExporter) -> None:
    sink.result = ExportResult(rejected=4, error_message="4 span(s): missing start_time_unix_nano")
    response = post(receiver, (CASES / "traces_all_fields.json").read_bytes(), JSON)
    assert response.status_code == 200
    assert json.loads(response.content) == {
        "partialSuccess": {
            "rejectedSpans": "4",
            "errorMessage": "4 span(s): missing start_time_unix_nano",
        }
    }


def test_logs_partial_success(receiver: ReceiverServer, sink: SinkExporter) -> None:
    sink.result = ExportResult(rejected=1, error_message="1 record(s): no task.id")
    response = post(receiver, logs_request(2).SerializeToString(), path="/v1/logs")
    answer = ExportLogsServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_log_records == 1
    assert answer.partial_success.error_message == "1 record(s): no task.id"


def test_warning_without_rejections_is_reported(
    receiver: ReceiverServer, sink: SinkExporter
) -> None:
    sink.result = ExportResult(rejected=0, error_message="2 span(s) had unknown models")
    response = post(receiver, trace_request(2).SerializeToString())
    answer = ExportTraceServiceResponse.FromString(response.content)
    assert answer.HasField("partial_success")
    assert answer.partial_success.rejected_spans == 0


# ----------------------------------------------------------------------------- auth


def test_auth_missing_token_is_401(auth_receiver: ReceiverServer) -> None:
    auth_receiver.sink.reset()
    response = post(auth_receiver, trace_request(1).SerializeToString())
    assert_refused(response, 401, auth_receiver.sink)
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", [f"Basic {AUTH_TOKEN}", "Bearer", "Bearer "])
def test_auth_other_scheme_is_401(auth_receiver: ReceiverServer, header: str) -> None:
    auth_receiver.sink.reset()
    response = post(auth_receiver, b"", JSON, Authorization=header)
    assert_refused(response, 401, auth_receiver.sink)


def test_auth_wrong_token_is_403(auth_receiver: ReceiverServer) -> None:
    auth_receiver.sink.reset()
    response = post(auth_receiver, b"{}", JSON, Authorization="Bearer not-the-token")
    assert_refused(response, 403, auth_receiver.sink)
    assert response.headers["content-type"] == JSON


@pytest.mark.parametrize("header", [f"Bearer {AUTH_TOKEN}", f"bearer  {AUTH_TOKEN} "])
def test_auth_right_token_is_accepted(auth_receiver: ReceiverServer, header: str) -> None:
    auth_receiver.sink.reset()
    response = post(auth_receiver, trace_request(2).SerializeToString(), Authorization=header)
    assert response.status_code == 200
    assert len(auth_receiver.sink.spans) == 2


# ----------------------------------------------------------------------------- real exporters


#: (environment variable, path appended to the server's URL in it)
BY_BASE_URL = ("OTEL_EXPORTER_OTLP_ENDPOINT", "")
BY_SIGNAL_URL = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "/v1/traces")


@pytest.mark.parametrize(
    ("endpoint", "compression"),
    [(BY_BASE_URL, None), (BY_SIGNAL_URL, None), (BY_BASE_URL, "gzip"), (BY_SIGNAL_URL, "deflate")],
)
def test_sdk_http_exporter_delivers_every_field(
    receiver: ReceiverServer,
    sink: SinkExporter,
    monkeypatch: pytest.MonkeyPatch,
    endpoint: tuple[str, str],
    compression: str | None,
) -> None:
    variable, path = endpoint
    monkeypatch.setenv(variable, receiver.url + path)
    if compression:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", compression)
    spans = sdk_spans()
    assert export_spans(OTLPSpanExporter(), spans) == SpanExportResult.SUCCESS
    [(received, raw)] = sink.traces
    assert received == encode_spans(spans)
    assert raw is not None and ExportTraceServiceRequest.FromString(raw) == received
    [seen] = receiver.requests.seen
    assert seen.path == "/v1/traces"
    assert seen.headers.get("content-encoding") == compression
    # the fields the SDK sample is built to exercise really are there
    chat = next(s for s in sink.spans if s.name == "chat gpt-4o")
    assert chat.dropped_attributes_count and chat.dropped_events_count and chat.dropped_links_count
    assert chat.trace_state == "vendor=abc,other=x" and chat.links[0].flags
    root = next(s for s in sink.spans if s.name == "invoke_agent triage")
    assert root.flags & 0x300 == 0x300  # parent is remote, and says so
    assert chat.events[1].dropped_attributes_count == 1 and chat.status.message == "rate limited"
    assert received.resource_spans[0].scope_spans[0].scope.attributes[0].key == "scope.attr"
    assert received.resource_spans[0].scope_spans[0].schema_url.endswith("1.27.0")


def test_sdk_http_exporter_with_bearer_token_from_env(
    auth_receiver: ReceiverServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth_receiver.sink.reset()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", auth_receiver.url)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"authorization=Bearer%20{AUTH_TOKEN}")
    spans = sdk_spans()
    assert export_spans(OTLPSpanExporter(), spans) == SpanExportResult.SUCCESS
    assert auth_receiver.sink.traces[0][0] == encode_spans(spans)


def test_sdk_http_exporter_is_refused_without_the_token(
    auth_receiver: ReceiverServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth_receiver.sink.reset()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", auth_receiver.url)
    assert export_spans(OTLPSpanExporter(), sdk_spans()) == SpanExportResult.FAILURE
    assert not auth_receiver.sink.traces


def test_sdk_http_log_exporter(
    receiver: ReceiverServer, sink: SinkExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
    records = sdk_log_records()
    assert export_logs(OTLPLogExporter(), records) == LogRecordExportResult.SUCCESS
    assert [r for r, _ in sink.logs] == [encode_logs(records)]
