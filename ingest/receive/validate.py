"""Which spans of a request we refuse, for OTLP partial success.

Validation decides what is stored: every span it accepts is converted and lands in the lake
(the converter never refuses), so every value the lake cannot represent is refused here, with
a reason, or kept by the converter with a flag (``ingest.convert.normalize``). A span is refused
when it cannot be placed or joined:

* a trace id that is not 16 non-zero bytes, a span id that is not 8 non-zero bytes, a parent
  span id of the wrong length;
* a start time outside ``[1, MAX_SPAN_TIME_NS]`` (2262-01-01T00:00:00Z): Parquet and DuckDB
  timestamps are int64 nanoseconds, which end in April 2262, and the query layer adds windows
  (reopen, abandon) to span times — the three months left keep those sums representable;
* an end time past ``MAX_SPAN_TIME_NS``. An end *before* the start (or 0) is kept: the span's
  cost is real money; the converter stores ``duration_ns = 0`` and notes the end as sent.

Refused spans are removed from the request in place; the rest are stored and the client is
told how many were rejected and why (it must not retry a partial success).
"""

from __future__ import annotations

from collections import Counter
from typing import Final

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

ZERO_TRACE = bytes(16)
ZERO_SPAN = bytes(8)
#: Latest span time accepted: 2262-01-01T00:00:00Z in ns (int64 ns end on 2262-04-11).
MAX_SPAN_TIME_NS: Final = 9_214_646_400_000_000_000
MAX_SPAN_TIME_TEXT: Final = "2262-01-01T00:00:00Z"


def _problem(trace_id: bytes, span_id: bytes, parent: bytes, start: int, end: int) -> str | None:
    if len(trace_id) != 16 or trace_id == ZERO_TRACE:
        return "invalid trace_id (want 16 non-zero bytes)"
    if len(span_id) != 8 or span_id == ZERO_SPAN:
        return "invalid span_id (want 8 non-zero bytes)"
    if parent and len(parent) != 8:
        return "invalid parent_span_id (want 8 bytes or empty)"
    if start <= 0:
        return "missing start_time_unix_nano"
    if start > MAX_SPAN_TIME_NS:
        return f"start_time_unix_nano after {MAX_SPAN_TIME_TEXT}"
    if end > MAX_SPAN_TIME_NS:
        return f"end_time_unix_nano after {MAX_SPAN_TIME_TEXT}"
    return None


def validate_traces(request: ExportTraceServiceRequest) -> tuple[int, int, str]:
    """Drop refused spans from ``request``; return (accepted, rejected, error message)."""
    accepted = 0
    problems: Counter[str] = Counter()
    for rs in request.resource_spans:
        for ss in rs.scope_spans:
            spans = ss.spans
            bad: list[int] = []
            for i, span in enumerate(spans):
                trace_id = span.trace_id
                span_id = span.span_id
                # fast path: the common valid span costs four attribute reads
                if (
                    len(trace_id) == 16
                    and len(span_id) == 8
                    and 0 < span.start_time_unix_nano <= MAX_SPAN_TIME_NS
                    and span.end_time_unix_nano <= MAX_SPAN_TIME_NS
                    and len(span.parent_span_id) in (0, 8)
                    and trace_id != ZERO_TRACE
                    and span_id != ZERO_SPAN
                ):
                    continue
                problem = _problem(
                    trace_id,
                    span_id,
                    span.parent_span_id,
                    span.start_time_unix_nano,
                    span.end_time_unix_nano,
                )
                if problem is not None:
                    bad.append(i)
                    problems[problem] += 1
            for i in reversed(bad):
                del spans[i]
            accepted += len(spans)
    rejected = sum(problems.values())
    message = "; ".join(f"{n} span(s): {p}" for p, n in problems.most_common())
    return accepted, rejected, message
