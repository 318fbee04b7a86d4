from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format, text_format
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from ingest.errors import BadRequest
from ingest.receive.otlp_json import parse_logs_json, parse_traces_json, to_otlp_json

CASES = Path(__file__).parent / "cases"
TRACE_HEX = "5b8efff798038103d269b633813fc60c"  # hex, and also valid base64
SPAN_HEX = "eee19b7ec3c1b174"


def case(name: str) -> bytes:
    return (CASES / name).read_bytes()


def expected_traces() -> ExportTraceServiceRequest:
    return text_format.Parse(case("traces_all_fields.txtpb").decode(), ExportTraceServiceRequest())


def one_span(**fields: Any) -> bytes:
    span = {"traceId": TRACE_HEX, "spanId": SPAN_HEX, "name": "s", **fields}
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}).encode()


def test_every_field_and_anyvalue_kind_decodes() -> None:
    """Mixed-case hex ids, int64 as string and number, enums as numbers and names, unknown
    fields at every level, every AnyValue kind: equal to the independently written text proto."""
    assert parse_traces_json(case("traces_all_fields.json")) == expected_traces()


def test_log_records_decode_with_hex_ids() -> None:
    expected = text_format.Parse(case("logs_outcome.txtpb").decode(), ExportLogsServiceRequest())
    assert parse_logs_json(case("logs_outcome.json")) == expected


def test_ids_that_look_like_base64_are_read_as_hex() -> None:
    # the trap: a plain proto3 JSON parser takes the 32 hex digits for base64 (24 bytes)
    naive = json_format.Parse(one_span(), ExportTraceServiceRequest())
    assert len(naive.resource_spans[0].scope_spans[0].spans[0].trace_id) == 24

    span = parse_traces_json(one_span()).resource_spans[0].scope_spans[0].spans[0]
    assert span.trace_id == bytes.fromhex(TRACE_HEX)
    assert span.span_id == bytes.fromhex(SPAN_HEX)


@pytest.mark.parametrize(
    "trace_id", [TRACE_HEX, TRACE_HEX.upper(), "5B8eFFf798038103D269b633813Fc60C"]
)
def test_hex_ids_in_any_case(trace_id: str) -> None:
    span = parse_traces_json(one_span(traceId=trace_id)).resource_spans[0].scope_spans[0].spans[0]
    assert span.trace_id == bytes.fromhex(TRACE_HEX)


def test_link_ids_are_hex_too() -> None:
    body = one_span(links=[{"traceId": TRACE_HEX.upper(), "spanId": SPAN_HEX}])
    link = parse_traces_json(body).resource_spans[0].scope_spans[0].spans[0].links[0]
    assert (link.trace_id, link.span_id) == (bytes.fromhex(TRACE_HEX), bytes.fromhex(SPAN_HEX))


def test_proto_field_names_are_accepted_with_hex_ids() -> None:
    body = json.dumps(
        {
            "resource_spans": [
                {"scope_spans": [{"spans": [{"trace_id": TRACE_HEX, "span_id": SPAN_HEX}]}]}
            ]
        }
    ).encode()
    span = parse_traces_json(body).resource_spans[0].scope_spans[0].spans[0]
    assert span.trace_id == bytes.fromhex(TRACE_HEX)


def test_wrong_length_ids_are_kept_for_validation_to_judge() -> None:
    span = parse_traces_json(one_span(spanId="abcd")).resource_spans[0].scope_spans[0].spans[0]
    assert span.span_id == b"\xab\xcd"


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"traceId": "zz" * 16}, "resourceSpans[0].scopeSpans[0].spans[0].traceId"),
        ({"spanId": "abc"}, "resourceSpans[0].scopeSpans[0].spans[0].spanId"),
        ({"parentSpanId": "ab cd ef 01"}, "resourceSpans[0].scopeSpans[0].spans[0].parentSpanId"),
        ({"traceId": 12345}, "resourceSpans[0].scopeSpans[0].spans[0].traceId"),
        (
            {"links": [{}, {"traceId": base64.b64encode(bytes(16)).decode()}]},
            "resourceSpans[0].scopeSpans[0].spans[0].links[1].traceId",
        ),
    ],
)
def test_invalid_hex_is_a_bad_request_that_says_where(fields: dict[str, Any], where: str) -> None:
    with pytest.raises(BadRequest) as info:
        parse_traces_json(one_span(**fields))
    assert where in info.value.message


def test_invalid_log_id_says_where() -> None:
    body = json.dumps(
        {"resourceLogs": [{"scopeLogs": [{"logRecords": [{"spanId": "xyz0"}]}]}]}
    ).encode()
    with pytest.raises(BadRequest, match=r"resourceLogs\[0\]\.scopeLogs\[0\]\.logRecords\[0\]"):
        parse_logs_json(body)


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b'{"resourceSpans": [', "line 1 column 20"),
        (b'{"resourceSpans": []}\n garbage', "line 2"),
        (b"\xff\xfe\xfa", "not valid"),
        (b"[1, 2]", "must be an object"),
        (one_span(startTimeUnixNano="soon"), "startTimeUnixNano"),
        (one_span(attributes=[{"key": "b", "value": {"bytesValue": "not base64!"}}]), "bytesValue"),
        (b'{"resourceSpans": {"not": "a list"}}', "resourceSpans"),
    ],
)
def test_undecodable_json_is_a_bad_request(body: bytes, needle: str) -> None:
    with pytest.raises(BadRequest) as info:
        parse_traces_json(body)
    assert needle in info.value.message


def test_deep_nesting_is_a_bad_request_not_a_crash() -> None:
    depth = 5000
    value = '{"arrayValue":{"values":[' * depth + '{"stringValue":"x"}' + "]}}" * depth
    body = one_span(attributes=[{"key": "deep", "value": "VALUE"}])
    with pytest.raises(BadRequest, match="nested too deeply"):
        parse_traces_json(body.replace(b'"VALUE"', value.encode()))


def test_int64_as_string_and_number() -> None:
    big = 2**63 - 1
    body = one_span(
        startTimeUnixNano=str(big),
        endTimeUnixNano=big,
        attributes=[
            {"key": "s", "value": {"intValue": str(-big)}},
            {"key": "n", "value": {"intValue": -big}},
        ],
    )
    span = parse_traces_json(body).resource_spans[0].scope_spans[0].spans[0]
    assert span.start_time_unix_nano == span.end_time_unix_nano == big
    assert [a.value.int_value for a in span.attributes] == [-big, -big]


def test_empty_body_is_an_empty_request() -> None:
    assert parse_traces_json(b"") == ExportTraceServiceRequest()
    assert parse_traces_json(b" \n") == ExportTraceServiceRequest()
    assert parse_traces_json(b"{}") == ExportTraceServiceRequest()
    assert parse_logs_json(b"") == ExportLogsServiceRequest()


def test_to_otlp_json_writes_lowercase_hex_ids_and_integer_enums() -> None:
    data = json.loads(to_otlp_json(expected_traces()))
    span = data["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert span["traceId"] == TRACE_HEX
    assert span["parentSpanId"] == "eee19b7ec3c1b173"
    assert span["links"][0]["spanId"] == "b7ad6b7169203331"
    assert span["kind"] == 3
    assert span["status"]["code"] == 2
    # an attribute named traceId is a value, not an id: untouched
    kvlist = span["attributes"][9]["value"]["kvlistValue"]["values"]
    assert kvlist[1] == {"key": "traceId", "value": {"stringValue": "an attribute, not an id"}}


def test_round_trip_through_otlp_json_keeps_everything() -> None:
    message = expected_traces()
    assert parse_traces_json(to_otlp_json(message)) == message


def test_to_otlp_json_of_a_status() -> None:
    data = json.loads(to_otlp_json(Status(code=3, message="bad")))
    assert data == {"code": 3, "message": "bad"}


def _ids_to_base64(node: Any) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("traceId", "spanId", "parentSpanId") and isinstance(value, str):
                node[key] = base64.b64encode(bytes.fromhex(value)).decode()
            else:
                _ids_to_base64(value)
    elif isinstance(node, list):
        for item in node:
            _ids_to_base64(item)


def json_format_oracle(body: bytes) -> ExportTraceServiceRequest:
    """The reference proto3 JSON parser, told about hex ids: right for everything else."""
    data = json.loads(body)
    _ids_to_base64(data)
    return json_format.ParseDict(data, ExportTraceServiceRequest(), ignore_unknown_fields=True)


SCALARS: list[dict[str, Any]] = [
    {"stringValue": ""},
    {"stringValue": "\u00e9\U0001f600"},
    {"boolValue": True},
    {"intValue": 0},
    {"intValue": "-1"},
    {"intValue": 2**63 - 1},
    {"intValue": "1e3"},
    {"intValue": 7.0},
    {"doubleValue": 1},
    {"doubleValue": -0.0},
    {"doubleValue": "NaN"},
    {"doubleValue": "Infinity"},
    {"doubleValue": "2.5"},
    {"doubleValue": 1e308},
    {"bytesValue": ""},
    {"bytesValue": "-_8="},
    {"bytesValue": "+/8"},
    {"arrayValue": {}},
    {"arrayValue": {"values": []}},
    {"kvlistValue": {"values": [{"key": "k"}]}},
    {},
]


@pytest.mark.parametrize("value", SCALARS, ids=[json.dumps(v) for v in SCALARS])
def test_any_value_matches_the_reference_parser(value: dict[str, Any]) -> None:
    body = one_span(attributes=[{"key": "k", "value": value}])
    got = parse_traces_json(body)
    expected = json_format_oracle(body)
    # NaN != NaN: compare the wire bytes instead
    assert got.SerializeToString(deterministic=True) == expected.SerializeToString(
        deterministic=True
    )


def test_fixture_matches_the_reference_parser() -> None:
    body = case("traces_all_fields.json")
    assert parse_traces_json(body) == json_format_oracle(body)


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"droppedAttributesCount": -1}, "droppedAttributesCount: integer -1 out of range"),
        ({"flags": 2**32}, "flags: integer 4294967296 out of range"),
        ({"kind": "2.5"}, "kind: expected an integer"),
        ({"name": 5}, "name: expected a string"),
        ({"name": "\ud800"}, "name: string is not valid Unicode"),
        ({"attributes": [{"key": "k", "value": {"intValue": "12x"}}]}, "value.intValue"),
        ({"attributes": [{"key": "k", "value": {"boolValue": "true"}}]}, "boolValue"),
        ({"attributes": [{"key": 7, "value": {"stringValue": "v"}}]}, "attributes[0].key"),
        ({"attributes": {"key": "k"}}, "attributes: expected a list"),
        ({"status": []}, "status: expected an object"),
    ],
)
def test_bad_values_name_their_path(fields: dict[str, Any], needle: str) -> None:
    with pytest.raises(BadRequest) as info:
        parse_traces_json(one_span(**fields))
    assert needle in info.value.message
    assert "resourceSpans[0].scopeSpans[0].spans[0]." in info.value.message


def test_unknown_enum_names_and_nulls_are_ignored() -> None:
    body = one_span(kind="SPAN_KIND_FROM_THE_FUTURE", status=None, traceState=None, events=[None])
    span = parse_traces_json(body).resource_spans[0].scope_spans[0].spans[0]
    assert span.kind == 0 and not span.HasField("status") and not span.events
