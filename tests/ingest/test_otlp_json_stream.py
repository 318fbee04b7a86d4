"""Large OTLP/JSON bodies walked span by span: the same message as ``json.loads`` gives, the
same errors, and far less memory."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Callable

import pytest
from google.protobuf.message import Message

from bench.workload import Workload, make_request
from ingest.errors import BadRequest
from ingest.receive.otlp_json import parse_logs_json, parse_traces_json, to_otlp_json
from ingest.receive.otlp_json_stream import STREAM_ABOVE, decode_logs_json, decode_traces_json
from tests.ingest.otlp_builders import logs_request


def _large_traces() -> bytes:
    request = make_request(Workload(spans_per_request=2000, services_per_request=3))
    body = to_otlp_json(request)
    assert len(body) > STREAM_ABOVE
    return body


def test_a_large_body_decodes_to_the_same_message() -> None:
    body = _large_traces()
    assert decode_traces_json(body) == parse_traces_json(body)


def test_proto_names_duplicate_keys_nulls_and_unknown_members_behave_the_same() -> None:
    data = json.loads(_large_traces())
    rs = data["resourceSpans"]
    rs[0]["scope_spans"] = rs[0].pop("scopeSpans")  # proto field name
    rs[1]["scopeSpans"][0]["spans"].append(None)  # null entry: ignored
    rs[1]["unknownMember"] = {"deep": [1, 2, {"x": None}]}
    rs.append(None)
    text = json.dumps(data, indent=1)  # whitespace everywhere
    text = text.replace('"resourceSpans":', '"resourceSpans": [], "resourceSpans":', 1)
    body = text.encode()
    assert decode_traces_json(body) == parse_traces_json(body)


def test_logs_are_walked_too() -> None:
    request = logs_request(6000)
    body = to_otlp_json(request)
    assert len(body) > STREAM_ABOVE
    assert decode_logs_json(body) == parse_logs_json(body) == request


@pytest.mark.parametrize(
    "damage",
    [
        lambda t: t.replace('"traceId":"', '"traceId":"zz', 1),  # a bad value: path named
        lambda t: t[:-5],  # truncated: invalid JSON
        lambda t: t + " []",  # trailing data
        lambda t: t.replace('"scopeSpans":[', '"scopeSpans":{"a":[', 1),  # not an array
        lambda t: "\ufeff" + t,  # byte order mark: json.loads accepts it
    ],
)
def test_odd_bodies_get_the_answer_of_the_whole_body_parser(damage: object) -> None:
    body = damage(_large_traces().decode()).encode()  # type: ignore[operator]
    assert _outcome(decode_traces_json, body) == _outcome(parse_traces_json, body)


def _outcome(decode: Callable[[bytes], Message], body: bytes) -> Message | str:
    try:
        return decode(body)
    except BadRequest as exc:
        return exc.message


def test_memory_is_a_fraction_of_json_loads() -> None:
    body = _large_traces()
    tracemalloc.start()
    try:
        parse_traces_json(body)
        _, whole = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        decode_traces_json(body)
        _, walked = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert walked < whole / 2, (walked, whole)
