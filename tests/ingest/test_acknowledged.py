"""A 200 means stored: the defects of issue "Trust" as regressions, through a real
``tasklake serve`` (HTTP and gRPC receivers, WAL, converter processes, Parquet, DuckDB views
and the REST API).

Whatever is acknowledged lands in the lake (adjusted and flagged where the lake cannot hold it
as sent); whatever cannot be stored is refused for good, with its reason: 400 /
INVALID_ARGUMENT, or partial success for just the bad span; never 503 for bad input.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from ingest.convert.notes import END_TIME_KEY, EVENT_TIME_KEY
from ingest.receive.validate import MAX_SPAN_TIME_NS
from tests.e2e.harness import Server, query, wait_for
from tests.ingest.native_requests import fixed64, ld
from tests.ingest.otlp_builders import T0, kv

JSON = "application/json"
PROTOBUF = "application/x-protobuf"
EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
UINT32_MAX = 2**32 - 1


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("acknowledged")
    srv = Server(
        lake=base / "lake", log=base / "server.log", args=("--flush-interval", "0.2")
    ).start()
    try:
        yield srv
    finally:
        srv.stop()


# ----------------------------------------------------------------------------- helpers


def post(server: Server, body: bytes, content_type: str) -> tuple[int, bytes, dict[str, str]]:
    request = urllib.request.Request(
        server.url + "/v1/traces", data=body, headers={"Content-Type": content_type}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as err:
        return err.code, err.read(), dict(err.headers)


def export_grpc(server: Server, body: bytes) -> ExportTraceServiceResponse:
    with grpc.insecure_channel(server.grpc_target) as channel:
        call = channel.unary_unary(EXPORT)
        answer: bytes = call(body, timeout=30)
    return ExportTraceServiceResponse.FromString(answer)


def request_of(*spans: Span) -> ExportTraceServiceRequest:
    return ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=list(spans))])]
    )


def span(trace: int, name: str, *attrs: KeyValue, **fields: Any) -> Span:
    base: dict[str, Any] = {
        "trace_id": trace.to_bytes(16, "big"),
        "span_id": (trace * 1000 + len(name)).to_bytes(8, "big"),
        "name": name,
        "start_time_unix_nano": T0,
        "end_time_unix_nano": T0 + 1_000_000,
    }
    return Span(attributes=list(attrs), **{**base, **fields})


def stored(server: Server, trace: int, count: int) -> list[dict[str, Any]]:
    """The trace's rows in the ``spans`` view, once ``count`` of them are there."""
    trace_id = trace.to_bytes(16, "big").hex()
    sql = "SELECT count(*) FROM spans WHERE trace_id = ?"
    assert wait_for(server.target, sql, count, params=[trace_id]) == count
    rows = query(server.target, "SELECT * FROM spans WHERE trace_id = ? ORDER BY name", [trace_id])
    names = [d[0] for d in _columns(server.target)]
    return [dict(zip(names, row, strict=True)) for row in rows]


def acknowledged(server: Server, trace: int, *spans: Span) -> list[dict[str, Any]]:
    """POST ``spans`` (protobuf): 200 with no partial success; their rows, once stored."""
    status, answer, _ = post(server, request_of(*spans).SerializeToString(), PROTOBUF)
    assert status == 200
    assert not ExportTraceServiceResponse.FromString(answer).HasField("partial_success")
    return stored(server, trace, len(spans))


def _columns(lake: str) -> list[tuple[Any, ...]]:
    return query(lake, "DESCRIBE SELECT * FROM spans")


def api(server: Server, path: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(server.url + path, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")


def metric(server: Server, name: str) -> float:
    with urllib.request.urlopen(server.url + "/metrics", timeout=30) as resp:
        text = resp.read().decode()
    (line,) = [x for x in text.splitlines() if x.startswith(name + " ")]
    return float(line.split()[1])


def assert_refused(status: int, body: bytes, headers: dict[str, str], reason: str) -> None:
    """A permanent refusal: 400 with the reason, no Retry-After."""
    assert status == 400, body
    assert "Retry-After" not in headers
    assert reason in json.loads(body)["message"]


# ----------------------------------------------------------------------------- dropped counts


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_max_dropped_count_plus_a_duplicate_key_is_stored_saturated(
    server: Server, protocol: str
) -> None:
    """Was: 200, then the converter overflowed uint32 and quarantined the whole request."""
    trace = 0x100 + (protocol == "grpc")
    dup = [kv("k", "first"), kv("k", "second")]
    body = request_of(
        span(trace, "overflowing", *dup, dropped_attributes_count=UINT32_MAX),
        span(
            trace,
            "nested",
            events=[
                Span.Event(
                    time_unix_nano=T0, name="e", attributes=dup, dropped_attributes_count=UINT32_MAX
                )
            ],
            links=[
                Span.Link(
                    trace_id=b"\x01" * 16,
                    span_id=b"\x02" * 8,
                    attributes=dup,
                    dropped_attributes_count=UINT32_MAX,
                )
            ],
        ),
        span(trace, "plain"),
    ).SerializeToString()
    if protocol == "http":
        status, answer, _ = post(server, body, PROTOBUF)
        assert status == 200
        assert not ExportTraceServiceResponse.FromString(answer).HasField("partial_success")
    else:
        assert not export_grpc(server, body).HasField("partial_success")
    nested, overflowing, plain = stored(server, trace, 3)
    assert overflowing["dropped_attributes_count"] == UINT32_MAX
    assert overflowing["attributes"] == {"k": "first"}
    assert nested["events"][0]["dropped_attributes_count"] == UINT32_MAX
    assert nested["links"][0]["dropped_attributes_count"] == UINT32_MAX
    assert plain["dropped_attributes_count"] == 0
    assert metric(server, "tasklake_quarantined_records") == 0


# ----------------------------------------------------------------------------- bad input: 400


def _deep_json(depth: int) -> bytes:
    value = '{"arrayValue":{"values":[' * depth + '{"stringValue":"x"}' + "]}}" * depth
    return _json_span('"attributes":[{"key":"deep","value":' + value + "}]")


def _json_span(extra: str, trace_id: str = "01" * 16) -> bytes:
    spans = (
        '{"traceId":"' + trace_id + '","spanId":"' + "02" * 8 + '",'
        '"startTimeUnixNano":"' + str(T0) + '",' + extra + "}"
    )
    return ('{"resourceSpans":[{"scopeSpans":[{"spans":[' + spans + "]}]}]}").encode()


def _deep_protobuf(depth: int) -> bytes:
    value = ld(1, b"x")  # AnyValue.string_value
    for _ in range(depth):  # AnyValue.array_value -> ArrayValue.values
        value = ld(5, ld(1, value))
    attribute = ld(1, b"deep") + ld(2, value)
    one = ld(1, b"\x01" * 16) + ld(2, b"\x02" * 8) + fixed64(7, T0) + ld(9, attribute)
    return ld(1, ld(2, ld(2, one)))


@pytest.mark.parametrize("depth", [150, 5000])
def test_deeply_nested_attributes_are_a_400(server: Server, depth: int) -> None:
    status, body, headers = post(server, _deep_json(depth), JSON)
    assert_refused(status, body, headers, "nested too deeply")
    status, body, headers = post(server, _deep_protobuf(depth), PROTOBUF)
    assert status == 400 and "Retry-After" not in headers
    assert "cannot be decoded" in Status.FromString(body).message
    with pytest.raises(grpc.RpcError) as refused:
        export_grpc(server, _deep_protobuf(depth))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (_json_span('"name":"\\ud800"'), "spans[0].name: string is not valid Unicode"),
        (_json_span('"name":"a"', trace_id="\\ud800"), "spans[0].traceId: not an even-length hex"),
        (
            _json_span('"attributes":[{"key":"\\udfff","value":{"stringValue":"v"}}]'),
            "attributes[0].key: string is not valid Unicode",
        ),
        (
            _json_span('"attributes":[{"key":"k","value":{"stringValue":"\\ud83d"}}]'),
            "stringValue: string is not valid Unicode",
        ),
        (
            _json_span('"name":"?"').replace(b"?", b"\xed\xa0\x80"),
            "name: string is not valid Unicode",
        ),
        (
            _json_span('"attributes":[{"key":"k","value":{"bytesValue":"\u00e9"}}]'),
            "bytesValue: not base64",
        ),
        (_json_span('"droppedAttributesCount":' + "9" * 5000), "not valid JSON"),
    ],
    ids=[
        "surrogate-name",
        "surrogate-id",
        "surrogate-key",
        "surrogate-value",
        "bad-utf8",
        "non-ascii-bytes",
        "huge-number",
    ],
)
def test_bad_json_is_a_400_with_the_reason(server: Server, body: bytes, reason: str) -> None:
    """Was: 503 + Retry-After for the whole batch, so exporters retried it forever."""
    status, answer, headers = post(server, body, JSON)
    assert_refused(status, answer, headers, reason)


# ----------------------------------------------------------------------------- times


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_a_time_past_2262_is_refused_by_partial_success(server: Server, protocol: str) -> None:
    """Was: 200 and stored; then its task's drill-down answered 500."""
    trace = 0x200 + (protocol == "grpc")
    request = request_of(
        span(
            trace,
            "int64-max",
            kv("task.id", f"T-{trace}"),
            start_time_unix_nano=2**63 - 1,
            end_time_unix_nano=2**63 - 1,
        ),
        span(trace, "ends-late", end_time_unix_nano=2**64 - 1),
        span(trace, "good", kv("task.id", f"T-{trace}")),
    )
    if protocol == "http":
        status, answer, _ = post(server, request.SerializeToString(), PROTOBUF)
        assert status == 200
        partial = ExportTraceServiceResponse.FromString(answer).partial_success
    else:
        partial = export_grpc(server, request.SerializeToString()).partial_success
    assert partial.rejected_spans == 2
    assert "start_time_unix_nano after 2262-01-01T00:00:00Z" in partial.error_message
    assert "end_time_unix_nano after 2262-01-01T00:00:00Z" in partial.error_message
    (good,) = stored(server, trace, 1)
    assert good["name"] == "good"
    status, task = api(server, f"/api/v1/tasks/T-{trace}")
    assert status == 200, task


def test_the_last_accepted_time_is_stored_and_drills_down(server: Server) -> None:
    trace = 0x210
    last = span(
        trace,
        "last",
        kv("task.id", "T-LAST"),
        start_time_unix_nano=MAX_SPAN_TIME_NS,
        end_time_unix_nano=MAX_SPAN_TIME_NS,
    )
    (row,) = acknowledged(server, trace, last)
    assert row["duration_ns"] == 0
    status, task = api(server, "/api/v1/tasks/T-LAST")
    assert status == 200, task


def test_an_end_before_the_start_is_stored_with_duration_zero_and_flagged(
    server: Server,
) -> None:
    """Was: stored with a negative duration."""
    trace = 0x300
    before, no_end = acknowledged(
        server,
        trace,
        span(trace, "ends-before", kv("task.id", "T-BACKWARDS"), end_time_unix_nano=T0 - 5),
        span(trace, "no-end", kv("task.id", "T-BACKWARDS"), end_time_unix_nano=0),
    )
    assert before["duration_ns"] == 0 and before["end_time"] == before["start_time"]
    assert before["attributes"][END_TIME_KEY] == str(T0 - 5)
    assert no_end["duration_ns"] == 0 and no_end["attributes"][END_TIME_KEY] == "0"
    flagged = query(
        server.target,
        "SELECT count(*) FROM spans WHERE trace_id = ? AND attributes[?] IS NOT NULL",
        [trace.to_bytes(16, "big").hex(), END_TIME_KEY],
    )
    assert flagged == [(2,)]
    status, task = api(server, "/api/v1/tasks/T-BACKWARDS")
    assert status == 200, task


def test_an_event_time_past_the_range_is_kept_without_a_time(server: Server) -> None:
    trace = 0x310
    late = Span.Event(time_unix_nano=2**64 - 1, name="late", attributes=[kv("k", "v")])
    (row,) = acknowledged(server, trace, span(trace, "s", kv("task.id", "T-LATE"), events=[late]))
    (event,) = row["events"]
    assert event["time"] is None and event["name"] == "late"
    assert event["attributes"] == {"k": "v", EVENT_TIME_KEY: str(2**64 - 1)}
    status, task = api(server, "/api/v1/tasks/T-LATE")
    assert status == 200, task


# ----------------------------------------------------------------------------- usage and cost


def gpt_4o_call(trace: int, input_tokens: int, output_tokens: int) -> Span:
    return span(
        trace,
        "chat",
        kv("gen_ai.operation.name", "chat"),
        kv("gen_ai.request.model", "gpt-4o"),
        kv("gen_ai.usage.input_tokens", input_tokens),
        kv("gen_ai.usage.output_tokens", output_tokens),
    )


def test_a_negative_token_count_is_stored_flagged_and_unpriced(server: Server) -> None:
    """Was: dropped silently (no column, no flag, priced on what was left)."""
    trace = 0x400
    (row,) = acknowledged(server, trace, gpt_4o_call(trace, -5, 10))
    assert row["is_model_call"] and row["input_tokens"] is None
    assert row["usage_basis"] == "invalid:gen_ai.usage.input_tokens"
    assert (row["cost_usd"], row["cost_source"]) == (None, "unpriced")
    assert row["attributes"]["gen_ai.usage.input_tokens"] == "-5"  # as sent
    assert row["all_attributes"]["gen_ai.usage.input_tokens"] == "-5"


def test_a_price_beyond_the_cost_column_is_stored_unpriced_with_the_reason(
    server: Server,
) -> None:
    """2^53 tokens of gpt-4o cost billions: more than decimal128(18, 12) holds."""
    trace = 0x410
    (row,) = acknowledged(server, trace, gpt_4o_call(trace, 2**53, 2**53))
    assert (row["input_tokens"], row["output_tokens"]) == (2**53, 2**53)
    assert (row["cost_usd"], row["cost_source"]) == (None, "unpriced")
    assert row["price_ref"].startswith("overflow:genai-prices@")
    assert metric(server, "tasklake_quarantined_records") == 0
