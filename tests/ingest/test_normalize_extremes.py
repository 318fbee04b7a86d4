"""What the converter keeps instead of refusing: every value validation let through becomes a
row, adjusted and flagged where the lake cannot hold it as sent (both normalizer paths)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

import ingest.convert.native
from ingest.convert.columns import MAX_UINT32
from ingest.convert.normalize import Normalizer
from ingest.convert.notes import END_TIME_KEY, EVENT_TIME_KEY, KIND_KEY, STATUS_CODE_KEY
from ingest.convert.price import OVERFLOW, UNPRICED
from ingest.receive.validate import MAX_SPAN_TIME_NS
from schemas.settings import PriceOverride, Settings
from tests.ingest.normalize_helpers import rows
from tests.ingest.otlp_builders import T0, kv

PATHS = [
    pytest.param(False, id="python"),
    pytest.param(
        True,
        id="native",
        marks=pytest.mark.skipif(
            not ingest.convert.native.available(), reason="extension not built"
        ),
    ),
]
MODEL_CALL = [kv("gen_ai.operation.name", "chat"), kv("gen_ai.request.model", "acme-large-1")]
#: USD 1,000,000 per million tokens: 2^53 tokens cost far beyond decimal128(18, 12).
DEAR = PriceOverride(model="acme-large*", input=Decimal(1_000_000), output=Decimal(1_000_000))


@pytest.fixture(params=PATHS)
def normalizer(request: pytest.FixtureRequest) -> Normalizer:
    return Normalizer(Settings(prices=(DEAR,)), native=request.param)


def _span(*attrs: KeyValue, **fields: Any) -> Span:
    base: dict[str, Any] = {
        "trace_id": b"\x01" * 16,
        "span_id": b"\x02" * 8,
        "name": "s",
        "start_time_unix_nano": T0,
        "end_time_unix_nano": T0 + 1000,
    }
    return Span(attributes=list(attrs), **{**base, **fields})


def _row(normalizer: Normalizer, span: Span, **blocks: Any) -> dict[str, Any]:
    request = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=blocks.get("resource"),
                scope_spans=[ScopeSpans(scope=blocks.get("scope"), spans=[span])],
            )
        ]
    )
    (row,) = rows(normalizer.normalize(request, 0))
    return row


def test_every_dropped_count_saturates_instead_of_overflowing(normalizer: Normalizer) -> None:
    """uint32 max as sent plus a duplicate key: the count saturates, the span is stored."""
    dup = [kv("k", "first"), kv("k", "second")]
    most = MAX_UINT32
    span = _span(
        *dup,
        dropped_attributes_count=most,
        dropped_events_count=most,
        dropped_links_count=most,
        events=[
            Span.Event(time_unix_nano=T0, name="e", attributes=dup, dropped_attributes_count=most)
        ],
        links=[
            Span.Link(
                trace_id=b"\x03" * 16,
                span_id=b"\x04" * 8,
                attributes=dup,
                dropped_attributes_count=most,
            )
        ],
    )
    row = _row(
        normalizer,
        span,
        resource=Resource(attributes=dup, dropped_attributes_count=most),
        scope=InstrumentationScope(name="sc", attributes=dup, dropped_attributes_count=most),
    )
    assert row["dropped_attributes_count"] == most
    assert row["attributes"] == [("k", "first")]  # the first of a duplicate key wins
    assert (row["dropped_events_count"], row["dropped_links_count"]) == (most, most)
    assert row["events"][0]["dropped_attributes_count"] == most
    assert row["links"][0]["dropped_attributes_count"] == most
    assert row["resource_dropped_attributes_count"] == most
    assert row["scope_dropped_attributes_count"] == most


@pytest.mark.parametrize("end", [0, 1, T0 - 1])
def test_an_end_before_the_start_is_kept_with_duration_zero_and_noted(
    normalizer: Normalizer, end: int
) -> None:
    row = _row(normalizer, _span(kv("a", "b"), end_time_unix_nano=end))
    assert row["start_time"] == T0 and row["duration_ns"] == 0
    assert row["attributes"] == [("a", "b"), (END_TIME_KEY, str(end))]
    assert row["attribute_types"] == "si"


def test_the_note_replaces_an_attribute_of_its_name(normalizer: Normalizer) -> None:
    row = _row(normalizer, _span(kv(END_TIME_KEY, "mine"), kv("x", 1), end_time_unix_nano=5))
    assert row["attributes"] == [("x", "1"), (END_TIME_KEY, "5")]
    assert row["dropped_attributes_count"] == 1


def test_an_end_at_or_after_the_start_is_not_noted(normalizer: Normalizer) -> None:
    row = _row(normalizer, _span(kv(END_TIME_KEY, "mine"), end_time_unix_nano=T0))
    assert row["duration_ns"] == 0 and row["attributes"] == [(END_TIME_KEY, "mine")]


def test_a_kind_or_status_code_beyond_int8_is_null_and_noted(normalizer: Normalizer) -> None:
    span = _span(kv(KIND_KEY, "mine"), kind=300, end_time_unix_nano=0)
    span.status.code = -200  # type: ignore[assignment]
    row = _row(normalizer, span)
    assert (row["kind"], row["status_code"], row["duration_ns"]) == (None, None, 0)
    assert row["attributes"] == [
        (END_TIME_KEY, "0"),
        (KIND_KEY, "300"),
        (STATUS_CODE_KEY, "-200"),
    ]
    assert row["attribute_types"] == "iii" and row["dropped_attributes_count"] == 1


@pytest.mark.parametrize("at", [MAX_SPAN_TIME_NS + 1, 2**63, 2**64 - 1])
def test_an_event_time_out_of_range_is_kept_null_and_noted(normalizer: Normalizer, at: int) -> None:
    events = [
        Span.Event(time_unix_nano=at, name="late", attributes=[kv("k", "v")]),
        Span.Event(time_unix_nano=MAX_SPAN_TIME_NS, name="last"),
    ]
    late, last = _row(normalizer, _span(events=events))["events"]
    assert late["time"] is None and late["name"] == "late"
    assert late["attributes"] == [("k", "v"), (EVENT_TIME_KEY, str(at))]
    # an int when int64 holds it, else text (null codes: every entry is text)
    assert late["attribute_types"] == ("si" if at < 2**63 else None)
    assert last["time"] == MAX_SPAN_TIME_NS and last["attributes"] == []


@pytest.mark.parametrize(
    "usage",
    [
        [kv("gen_ai.usage.input_tokens", -5)],
        [kv("gen_ai.usage.input_tokens", 2**53 + 1), kv("gen_ai.usage.output_tokens", 7)],
        [kv("gen_ai.usage.output_tokens", -1.5)],
        [kv("gen_ai.usage.input_tokens", "lots")],
        [kv("gen_ai.usage.input_tokens", True)],
    ],
    ids=["negative", "too-large", "negative-double", "text", "bool"],
)
def test_a_usage_value_that_is_not_a_count_is_flagged_not_dropped(
    normalizer: Normalizer, usage: list[KeyValue]
) -> None:
    row = _row(normalizer, _span(*MODEL_CALL, *usage))
    bad = usage[0].key
    assert row["is_model_call"] and row["usage_basis"] == f"invalid:{bad}"
    assert row["cost_usd"] is None and row["cost_source"] == UNPRICED
    assert row[_column(bad)] is None
    # what was sent stays, losslessly
    assert bad in dict(row["attributes"])


@pytest.mark.parametrize(
    "usage",
    ['{"input": -5, "output": 10}', '{"prompt_tokens": 10, "completion_tokens": "many"}'],
    ids=["langfuse-buckets", "openai-shaped"],
)
def test_langfuse_usage_json_that_is_not_counts_is_flagged(
    normalizer: Normalizer, usage: str
) -> None:
    key = "langfuse.observation.usage_details"
    row = _row(normalizer, _span(*MODEL_CALL, kv(key, usage)))
    assert row["usage_basis"] == f"invalid:{key}" and row["cost_source"] == UNPRICED
    assert dict(row["attributes"])[key] == usage


def test_a_request_model_with_only_invalid_usage_is_still_a_model_call(
    normalizer: Normalizer,
) -> None:
    row = _row(
        normalizer,
        _span(kv("gen_ai.request.model", "gpt-4o"), kv("gen_ai.usage.input_tokens", -5)),
    )
    assert row["is_model_call"] and row["cost_source"] == UNPRICED
    assert row["usage_basis"] == "invalid:gen_ai.usage.input_tokens"


def test_invalid_usage_with_a_reported_cost_is_reported(normalizer: Normalizer) -> None:
    row = _row(
        normalizer,
        _span(*MODEL_CALL, kv("gen_ai.usage.input_tokens", -5), kv("gen_ai.usage.cost", 0.25)),
    )
    assert row["cost_source"] == "reported" and str(row["cost_usd"]) == "0.250000000000"


def test_a_price_beyond_the_cost_column_is_unpriced_with_the_reason(
    normalizer: Normalizer,
) -> None:
    huge = [kv("gen_ai.usage.input_tokens", 2**53), kv("gen_ai.usage.output_tokens", 2**53)]
    row = _row(normalizer, _span(*MODEL_CALL, *huge))
    assert (row["input_tokens"], row["output_tokens"]) == (2**53, 2**53)
    assert row["cost_usd"] is None and row["cost_source"] == UNPRICED
    assert row["price_ref"] == f"{OVERFLOW}override:acme-large*"


def _column(key: str) -> str:
    return "input_tokens" if "input" in key else "output_tokens"
