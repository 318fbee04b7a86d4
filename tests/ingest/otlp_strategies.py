"""Hypothesis strategies for arbitrary OTLP trace requests, for the fuzz properties.

Arbitrary, not random noise: ids of any length (and the right lengths, zero or not), times over
the whole uint64 range with the edges of the accepted one, dropped counts up to uint32 max,
duplicate keys, every AnyValue kind (nested arrays and kvlists, bytes, NaN, odd unicode), and
GenAI attributes from every convention ingest reads, with counts that are negative, huge,
fractional or text, so the typed-column and pricing paths are exercised, not just the map.
"""

from __future__ import annotations

import json
import math
from typing import Any, Final

from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from ingest.convert import conventions as cv
from ingest.convert.routing import routing_table
from ingest.receive.validate import MAX_SPAN_TIME_NS
from schemas.settings import Settings

UINT32: Final = 2**32 - 1
UINT64: Final = 2**64 - 1
INT64: Final = 2**63 - 1
T0: Final = 1_772_442_000_000_000_000  # 2026-03-02T09:00:00Z

#: Every key a typed column reads, plus the markers and JSON carriers.
ROUTED_KEYS: Final = tuple(sorted(routing_table(Settings())))
TOKEN_KEYS: Final = tuple(k for k in ROUTED_KEYS if "token" in k or k.endswith("_tokens"))
MODELS: Final = ("gpt-4o", "claude-3-opus", "acme-large-1", "text-embedding-3-small", "nope", "")
OPERATIONS: Final = ("chat", "embeddings", "execute_tool", "invoke_agent", "LLM", "CHAIN", "")
PROVIDERS: Final = ("openai", "anthropic", "az.ai.openai", "ollama", "xai", "unknown", "")

# ----------------------------------------------------------------------------- scalars

#: Text, odd unicode included (protobuf strings are UTF-8, so no lone surrogates here: those
#: are for the JSON body properties).
text = st.text(max_size=24) | st.sampled_from(["", "é", "日本", "\x00", "🦜", "\u202e", "a" * 300])
int64s = st.integers(-(2**63), INT64) | st.sampled_from(
    [0, -1, 1, 2**53, 2**53 + 1, INT64, -(2**63)]
)
#: One NaN (NaN payloads do not survive a JSON round trip, and need not).
doubles = st.floats(allow_nan=False) | st.just(math.nan) | st.sampled_from([-0.0, 1e300, 5e-324])
uint32s = st.integers(0, UINT32) | st.sampled_from([0, 1, UINT32])
#: Around now, the edges of what validation accepts, and the whole uint64 range.
times = (
    st.integers(T0, T0 + 10**12)
    | st.sampled_from([0, 1, MAX_SPAN_TIME_NS, MAX_SPAN_TIME_NS + 1, INT64, INT64 + 1, UINT64])
    | st.integers(0, UINT64)
)


def ids(size: int) -> st.SearchStrategy[bytes]:
    """Ids of the right size (zero or not) and of any other size."""
    return st.binary(min_size=size, max_size=size) | st.just(bytes(size)) | st.binary(max_size=40)


# ----------------------------------------------------------------------------- values


def _plain(**kind: Any) -> AnyValue:
    return AnyValue(**kind)


scalar_values = st.one_of(
    text.map(lambda v: _plain(string_value=v)),
    st.booleans().map(lambda v: _plain(bool_value=v)),
    int64s.map(lambda v: _plain(int_value=v)),
    doubles.map(lambda v: _plain(double_value=v)),
    st.binary(max_size=16).map(lambda v: _plain(bytes_value=v)),
    st.just(AnyValue()),
)


def _nest(children: st.SearchStrategy[AnyValue]) -> st.SearchStrategy[AnyValue]:
    items = st.lists(children, max_size=3)
    entries = st.lists(st.tuples(text, children), max_size=3)
    return st.one_of(
        items.map(lambda vs: AnyValue(array_value=ArrayValue(values=vs))),
        entries.map(
            lambda es: AnyValue(
                kvlist_value=KeyValueList(values=[KeyValue(key=k, value=v) for k, v in es])
            )
        ),
    )


any_values = st.recursive(scalar_values, _nest, max_leaves=6)


def _count_value() -> st.SearchStrategy[AnyValue]:
    """What emitters put in a token count: counts, and what is not one."""
    return st.one_of(
        st.integers(0, 10**6).map(lambda v: _plain(int_value=v)),
        int64s.map(lambda v: _plain(int_value=v)),
        doubles.map(lambda v: _plain(double_value=v)),
        st.sampled_from(["12", " 7 ", "1e3", "-5", "lots", ""]).map(
            lambda v: _plain(string_value=v)
        ),
        scalar_values,
    )


def _json_value() -> st.SearchStrategy[AnyValue]:
    """Langfuse usage/cost and OpenInference metadata JSON, extreme numbers included."""
    number = st.integers(-(10**20), 10**20) | st.floats(allow_nan=False, allow_infinity=False)
    obj = st.dictionaries(
        st.sampled_from(
            [
                "input",
                "output",
                "total",
                "input_cache_read",
                "prompt_tokens",
                "completion_tokens",
                "correlation.id",
                "task.id",
                "x",
            ]
        ),
        number | text,
        max_size=4,
    )
    return obj.map(lambda o: _plain(string_value=json.dumps(o)))


def _routed(key: str) -> st.SearchStrategy[AnyValue]:
    if key in TOKEN_KEYS:
        return _count_value()
    if "model" in key:
        return st.sampled_from(MODELS).map(lambda v: _plain(string_value=v))
    if key in (cv.LANGFUSE_USAGE_KEY, cv.OPENINFERENCE_METADATA_KEY) or "cost" in key:
        return _json_value() | _count_value()
    return st.one_of(
        st.sampled_from(OPERATIONS + PROVIDERS).map(lambda v: _plain(string_value=v)),
        any_values,
    )


@st.composite
def key_values(draw: st.DrawFn) -> KeyValue:
    kind = draw(st.integers(0, 9))
    if kind < 5:  # a key some typed column reads, with a value of its kind (mostly)
        key = draw(st.sampled_from(ROUTED_KEYS))
        return KeyValue(key=key, value=draw(_routed(key)))
    key = draw(st.sampled_from(["k", "tasklake.end_time_unix_nano", "dup"]) | text)
    return KeyValue(key=key, value=draw(any_values))


@st.composite
def attribute_lists(draw: st.DrawFn, most: int = 8) -> list[KeyValue]:
    """Attributes, sometimes a coherent model call, sometimes with a duplicated key."""
    attrs = draw(st.lists(key_values(), max_size=most))
    if draw(st.booleans()):
        attrs += [
            KeyValue(key="gen_ai.operation.name", value=AnyValue(string_value="chat")),
            KeyValue(
                key="gen_ai.request.model",
                value=AnyValue(string_value=draw(st.sampled_from(MODELS))),
            ),
            KeyValue(key="gen_ai.usage.input_tokens", value=draw(_count_value())),
            KeyValue(key="gen_ai.usage.output_tokens", value=draw(_count_value())),
        ]
    if draw(st.booleans()) and attrs:  # a duplicate key
        attrs.append(draw(st.sampled_from(attrs)))
    return draw(st.permutations(attrs))


# ----------------------------------------------------------------------------- messages


@st.composite
def events(draw: st.DrawFn) -> Span.Event:
    return Span.Event(
        time_unix_nano=draw(times),
        name=draw(st.sampled_from(["exception", "log"]) | text),
        attributes=draw(attribute_lists(most=3)),
        dropped_attributes_count=draw(uint32s),
    )


@st.composite
def links(draw: st.DrawFn) -> Span.Link:
    return Span.Link(
        trace_id=draw(ids(16)),
        span_id=draw(ids(8)),
        trace_state=draw(text),
        attributes=draw(attribute_lists(most=3)),
        dropped_attributes_count=draw(uint32s),
        flags=draw(uint32s),
    )


@st.composite
def spans(draw: st.DrawFn) -> Span:
    start = draw(times)
    end = draw(times | st.integers(0, 10**10).map(lambda d: min(start + d, UINT64)))
    return Span(
        trace_id=draw(ids(16)),
        span_id=draw(ids(8)),
        trace_state=draw(text),
        parent_span_id=draw(st.just(b"") | ids(8)),
        flags=draw(uint32s),
        name=draw(text),
        kind=draw(st.integers(-(2**31), 2**31 - 1) | st.integers(0, 5)),  # type: ignore[arg-type]
        start_time_unix_nano=start,
        end_time_unix_nano=end,
        attributes=draw(attribute_lists()),
        dropped_attributes_count=draw(uint32s),
        events=draw(st.lists(events(), max_size=2)),
        dropped_events_count=draw(uint32s),
        links=draw(st.lists(links(), max_size=2)),
        dropped_links_count=draw(uint32s),
        status=Status(
            code=draw(st.integers(-(2**31), 2**31 - 1) | st.integers(0, 2)),  # type: ignore[arg-type]
            message=draw(text),
        ),
    )


@st.composite
def scope_spans(draw: st.DrawFn) -> ScopeSpans:
    scope = InstrumentationScope(
        name=draw(st.sampled_from(["openlit.otel.tracing", "opentelemetry"]) | text),
        version=draw(text),
        attributes=draw(attribute_lists(most=3)),
        dropped_attributes_count=draw(uint32s),
    )
    return ScopeSpans(scope=scope, spans=draw(st.lists(spans(), max_size=3)), schema_url=draw(text))


@st.composite
def resource_spans(draw: st.DrawFn) -> ResourceSpans:
    resource = Resource(
        attributes=draw(attribute_lists(most=4)), dropped_attributes_count=draw(uint32s)
    )
    return ResourceSpans(
        resource=resource,
        scope_spans=draw(st.lists(scope_spans(), max_size=2)),
        schema_url=draw(text),
    )


def requests() -> st.SearchStrategy[ExportTraceServiceRequest]:
    """Arbitrary ``ExportTraceServiceRequest`` messages."""
    return st.lists(resource_spans(), max_size=2).map(
        lambda rs: ExportTraceServiceRequest(resource_spans=rs)
    )


# ----------------------------------------------------------------------------- JSON bodies

#: Stands for a JSON number of 5000 digits (``json.dumps`` cannot write one): see ``dumps``.
BIG_NUMBER: Final = "<a number of 5000 digits>"

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers() | st.integers(-(2**70), 2**70),
    st.floats(),
    st.text(max_size=12),
    #: lone surrogates: valid in JSON text, not in Unicode
    st.sampled_from(["\ud800", "\udfff", "a\ud83d", "0" * 5000, "AAAA", "zz", "é", BIG_NUMBER]),
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(max_size=8) | st.sampled_from(["\ud800"]), children, max_size=3)
    ),
    max_leaves=8,
)


def dumps(value: Any, *, ascii_only: bool) -> bytes:
    """JSON text of ``value`` as a client could send it: lone surrogates as such (invalid
    UTF-8) unless escaped, ``BIG_NUMBER`` as a bare 5000-digit number."""
    text = json.dumps(value, ensure_ascii=ascii_only)
    return text.replace(json.dumps(BIG_NUMBER), "9" * 5000).encode("utf-8", "surrogatepass")
