"""Which spans are refused for partial success, and that the rest are kept."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from ingest.receive.validate import MAX_SPAN_TIME_NS, validate_traces

GOOD: dict[str, Any] = {
    "trace_id": b"\x01" * 16,
    "span_id": b"\x02" * 8,
    "start_time_unix_nano": 1_700_000_000_000_000_000,
    "end_time_unix_nano": 1_700_000_000_000_000_001,
}


def _request(*spans: Span) -> ExportTraceServiceRequest:
    return ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=list(spans))])]
    )


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"trace_id": b"\x01" * 15}, "invalid trace_id"),
        ({"trace_id": bytes(16)}, "invalid trace_id"),
        ({"span_id": b""}, "invalid span_id"),
        ({"span_id": bytes(8)}, "invalid span_id"),
        ({"parent_span_id": b"\x03" * 4}, "invalid parent_span_id"),
        ({"start_time_unix_nano": 0}, "missing start_time_unix_nano"),
        ({"start_time_unix_nano": MAX_SPAN_TIME_NS + 1}, "start_time_unix_nano after 2262-01-01"),
        ({"start_time_unix_nano": 2**63 - 1}, "start_time_unix_nano after 2262-01-01"),
        ({"start_time_unix_nano": 2**64 - 1}, "start_time_unix_nano after 2262-01-01"),
        ({"end_time_unix_nano": MAX_SPAN_TIME_NS + 1}, "end_time_unix_nano after 2262-01-01"),
        ({"end_time_unix_nano": 2**64 - 1}, "end_time_unix_nano after 2262-01-01"),
    ],
)
def test_bad_span_is_refused_and_the_good_ones_kept(
    change: dict[str, object], problem: str
) -> None:
    request = _request(
        Span(name="good-1", **GOOD),
        Span(name="bad", **{**GOOD, **change}),
        Span(name="good-2", **GOOD),
    )
    accepted, rejected, message = validate_traces(request)
    assert (accepted, rejected) == (2, 1)
    assert message.startswith(f"1 span(s): {problem}")
    names = [s.name for s in request.resource_spans[0].scope_spans[0].spans]
    assert names == ["good-1", "good-2"]


def test_valid_request_is_untouched() -> None:
    request = _request(Span(name="a", parent_span_id=b"\x05" * 8, **GOOD), Span(name="b", **GOOD))
    before = request.SerializeToString()
    assert validate_traces(request) == (2, 0, "")
    assert request.SerializeToString() == before


def test_problems_are_counted_by_kind() -> None:
    request = _request(
        Span(name="x", **{**GOOD, "span_id": b""}),
        Span(name="y", **{**GOOD, "span_id": b""}),
        Span(name="z", **{**GOOD, "trace_id": b""}),
    )
    accepted, rejected, message = validate_traces(request)
    assert (accepted, rejected) == (0, 3)
    assert (
        message == "2 span(s): invalid span_id (want 8 non-zero bytes); "
        "1 span(s): invalid trace_id (want 16 non-zero bytes)"
    )


def test_the_last_accepted_time_and_an_end_before_the_start_are_kept() -> None:
    """The range is inclusive; an end before the start is the converter's to flag, not ours."""
    request = _request(
        Span(name="last", **{**GOOD, "start_time_unix_nano": MAX_SPAN_TIME_NS}),
        Span(name="end-at-max", **{**GOOD, "end_time_unix_nano": MAX_SPAN_TIME_NS}),
        Span(name="ends-before", **{**GOOD, "end_time_unix_nano": 5}),
        Span(name="no-end", **{**GOOD, "end_time_unix_nano": 0}),
    )
    assert validate_traces(request) == (4, 0, "")
