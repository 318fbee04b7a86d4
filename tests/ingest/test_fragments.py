"""Large requests cut into WAL records: valid requests that normalize to the same rows."""

from __future__ import annotations

import pyarrow as pa
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from bench.workload import Workload, make_request
from ingest.convert.lane import SpanHandler
from ingest.wal.fragments import split_rows, split_traces
from schemas.settings import Settings


def _join(pieces: list[bytes | memoryview]) -> bytes:
    return b"".join(bytes(p) for p in pieces)


def _rows(payload: bytes) -> list[dict[str, object]]:
    batch = SpanHandler(Settings()).rows(memoryview(payload), 1_767_225_600_000)
    return sorted(pa.Table.from_batches([batch]).to_pylist(), key=lambda r: str(r["span_id"]))


def test_a_request_within_the_limit_is_one_record_as_is() -> None:
    payload = make_request(Workload(spans_per_request=20)).SerializeToString()
    assert split_traces(payload, 1 << 20) == [[payload]]


def test_fragments_are_requests_holding_every_span_once_with_the_same_rows() -> None:
    request = make_request(Workload(spans_per_request=600, services_per_request=3))
    payload = request.SerializeToString()
    limit = len(payload) // 10  # forces cutting resources and scopes, not only grouping them
    fragments = [_join(list(f)) for f in split_traces(payload, limit)]
    assert len(fragments) >= 10
    assert all(len(f) <= limit for f in fragments)
    spans: list[bytes] = []
    for fragment in fragments:
        part = ExportTraceServiceRequest.FromString(fragment)
        for rs in part.resource_spans:
            assert rs.resource.attributes  # every piece keeps its resource
            for ss in rs.scope_spans:
                assert ss.scope.name  # and its scope
                spans.extend(s.span_id for s in ss.spans)
    assert sorted(spans) == sorted(
        s.span_id for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans
    )
    assert [r for f in fragments for r in _rows(f)] != []
    assert sorted((r for f in fragments for r in _rows(f)), key=lambda r: str(r["span_id"])) == (
        _rows(payload)
    )


def test_bytes_that_are_not_a_request_stay_whole() -> None:
    garbage = b"\x0b" * 100  # wire type 3 (a group): never OTLP
    assert split_traces(garbage, 10) == [[garbage]]


def test_rows_are_cut_into_slices_of_about_the_limit() -> None:
    rows = pa.table({"a": list(range(10_000)), "b": ["x" * 20] * 10_000})
    parts = split_rows(rows, rows.nbytes // 4)
    assert len(parts) >= 4 and sum(p.num_rows for p in parts) == 10_000
    assert pa.concat_tables(parts).equals(rows)
