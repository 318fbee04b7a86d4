"""Property: whatever body a client POSTs to ``/v1/traces``, the answer is never a 5xx.

Bad input is permanent (400 with a ``google.rpc.Status`` saying why, or a 200 whose partial
success names the refused spans); 503 is for conditions that pass, which arbitrary bytes are
not. The routes run in-process over the real decoding and validation (``SinkExporter`` with
``validate=True``): arbitrary bytes, arbitrary JSON (lone surrogates, huge numbers, deep
nesting), and valid OTLP/JSON with values swapped for arbitrary ones.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import MutableMapping
from typing import Any

import pytest
from google.rpc.status_pb2 import Status
from hypothesis import example, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from starlette.applications import Starlette

from ingest.receive.otlp_http import otlp_routes
from ingest.receive.otlp_json import to_otlp_json
from tests.fuzzing import examples
from tests.ingest.otlp_strategies import BIG_NUMBER, dumps, json_values, requests
from tests.ingest.receiver_harness import TEST_SETTINGS, SinkExporter

SINK = SinkExporter(validate=True)
APP = Starlette(routes=otlp_routes(SINK, TEST_SETTINGS))
JSON = "application/json"
PROTOBUF = "application/x-protobuf"

pytestmark = pytest.mark.fuzz


def post(body: bytes, content_type: str, encoding: str | None = None) -> tuple[int, bytes]:
    """POST ``body`` to /v1/traces through the ASGI app; (status, response body)."""
    headers = [(b"content-type", content_type.encode())]
    if encoding:
        headers.append((b"content-encoding", encoding.encode()))
    headers.append((b"content-length", str(len(body)).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/traces",
        "raw_path": b"/v1/traces",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 4318),
    }
    sent: list[MutableMapping[str, Any]] = []
    chunks: list[MutableMapping[str, Any]] = [
        {"type": "http.request", "body": body, "more_body": False}
    ]

    async def receive() -> MutableMapping[str, Any]:
        return chunks.pop(0) if chunks else {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    asyncio.run(APP(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    answer = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, answer


def assert_permanent(status: int, answer: bytes, content_type: str) -> None:
    """Not a 5xx; a refusal says why, an acceptance names what it refused."""
    assert status < 500, answer[:300]
    if content_type == JSON:
        doc = json.loads(answer or b"{}")
        if status != 200:
            assert doc.get("message"), doc
        partial = doc.get("partialSuccess", {})
        assert bool(partial.get("rejectedSpans")) == bool(partial.get("errorMessage"))
    elif status != 200:
        assert Status.FromString(answer).message
    else:
        partial = ExportTraceServiceResponse.FromString(answer).partial_success
        assert bool(partial.rejected_spans) == bool(partial.error_message)


@settings(max_examples=examples(100))
@given(
    body=st.binary(max_size=2048),
    content_type=st.sampled_from([JSON, PROTOBUF]),
    gzipped=st.booleans(),
    encoding=st.sampled_from([None, "gzip", "deflate", "zstd", "br"]),
)
def test_arbitrary_bytes_are_never_a_5xx(
    body: bytes, content_type: str, gzipped: bool, encoding: str | None
) -> None:
    """Any bytes, compressed or not, under any Content-Encoding claim."""
    status, answer = post(gzip.compress(body) if gzipped else body, content_type, encoding)
    assert_permanent(status, answer, content_type)


@settings(max_examples=examples(100))
@given(value=json_values, ascii_only=st.booleans())
@example(value={"resourceSpans": [], "n": BIG_NUMBER}, ascii_only=True)  # int() refuses it
def test_arbitrary_json_is_never_a_5xx(value: Any, ascii_only: bool) -> None:
    status, answer = post(dumps(value, ascii_only=ascii_only), JSON)
    assert_permanent(status, answer, JSON)


@st.composite
def mutated_otlp_json(draw: st.DrawFn) -> bytes:
    """A valid OTLP/JSON request with up to three values swapped for arbitrary JSON."""
    doc = json.loads(to_otlp_json(draw(requests())))
    places = list(_places(doc))
    for _ in range(draw(st.integers(1, 3)) if places else 0):
        container, key = draw(st.sampled_from(places))
        container[key] = draw(json_values)
    return dumps(doc, ascii_only=draw(st.booleans()))


def _places(node: Any) -> Any:
    """(container, key or index) of every value inside a JSON document."""
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, value in list(items):
        yield node, key
        if isinstance(value, dict | list):
            yield from _places(value)


NON_ASCII_BYTES = (
    '{"resourceSpans":[{"resource":{"attributes":[{"key":"k","value":{"bytesValue":"é"}}]}}]}'
)


@settings(max_examples=examples(100))
@given(body=mutated_otlp_json())
@example(body=NON_ASCII_BYTES.encode())  # base64 of a non-ASCII string: a ValueError
def test_otlp_json_with_arbitrary_values_is_never_a_5xx(body: bytes) -> None:
    status, answer = post(body, JSON)
    assert_permanent(status, answer, JSON)


@settings(max_examples=examples(100))
@given(depth=st.integers(1, 6000), kind=st.sampled_from(["array", "kvlist", "plain"]))
def test_deep_nesting_is_a_400_or_stored(depth: int, kind: str) -> None:
    """Nesting of any depth, in attribute values or anywhere: never a 5xx."""
    opening = {
        "array": '{"arrayValue":{"values":[',
        "kvlist": '{"kvlistValue":{"values":[{"key":"k","value":',
        "plain": "[",
    }[kind]
    closing = {"array": "]}}", "kvlist": "}]}}", "plain": "]"}[kind]
    value = opening * depth + '{"stringValue":"x"}' + closing * depth
    span = (
        '{"traceId":"' + "01" * 16 + '","spanId":"' + "02" * 8 + '",'
        '"startTimeUnixNano":"1772442000000000000",'
        '"attributes":[{"key":"deep","value":' + value + "}]}"
    )
    body = '{"resourceSpans":[{"scopeSpans":[{"spans":[' + span + "]}]}]}"
    status, answer = post(body.encode(), JSON)
    assert_permanent(status, answer, JSON)
