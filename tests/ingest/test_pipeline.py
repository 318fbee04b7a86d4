"""The export path: partial success, raw bytes kept, back-pressure, WAL trouble -> 503."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs

from ingest.convert.lane import CHECKPOINT_POS, COMMITTED, STATUS_SLOTS
from ingest.errors import Overloaded
from ingest.pipeline import LakeExporter, Lane
from ingest.wal.log import (
    KIND_COSTS,
    KIND_SIGNALS,
    KIND_TRACES,
    Record,
    WalWriter,
    list_segments,
    read_records,
)
from ingest.wal.records import decode_rows
from schemas.costs import costs_table, parse_costs
from tests.ingest.crash_driver import numbered_request


def _lane(directory: Path, index: int) -> Lane:
    status = [0] * STATUS_SLOTS

    def on_commit(pos: int) -> None:
        status[COMMITTED] = pos

    return Lane(index, WalWriter(directory, segment_bytes=1 << 20, on_commit=on_commit), status)


@pytest.fixture
def lanes(tmp_path: Path) -> Iterator[list[Lane]]:
    out = [_lane(tmp_path / f"l{i}", i) for i in range(2)]
    yield out
    for lane in out:
        lane.writer.close()


def _records(lane: Lane) -> list[bytes]:
    d = lane.writer.directory
    start = list_segments(d)[0][0]
    return [bytes(r.payload) for r in read_records(d, start, lane.writer.position)]


def test_raw_bytes_are_logged_as_they_are(lanes: list[Lane]) -> None:
    exporter = LakeExporter(lanes, 1 << 30)
    request = numbered_request(0, 20)
    raw = request.SerializeToString() + b""  # what the receiver read from the wire
    result = asyncio.run(exporter.export_traces(request, raw))
    assert result.rejected == 0
    (payload,) = [p for lane in lanes for p in _records(lane)]
    assert payload == raw
    assert exporter.counters.spans == 20


def test_partial_success_logs_only_accepted_spans(lanes: list[Lane]) -> None:
    exporter = LakeExporter(lanes, 1 << 30)
    request = numbered_request(0, 10)
    spans = request.resource_spans[0].scope_spans[0].spans
    spans[3].span_id = b""
    spans[7].start_time_unix_nano = 0
    result = asyncio.run(exporter.export_traces(request, request.SerializeToString()))
    assert result.rejected == 2 and "span_id" in result.error_message
    (payload,) = [p for lane in lanes for p in _records(lane)]
    stored = ExportTraceServiceRequest.FromString(payload)
    assert len(stored.resource_spans[0].scope_spans[0].spans) == 8


def test_all_rejected_writes_nothing(lanes: list[Lane]) -> None:
    exporter = LakeExporter(lanes, 1 << 30)
    request = numbered_request(0, 2)
    for span in request.resource_spans[0].scope_spans[0].spans:
        span.trace_id = bytes(16)
    result = asyncio.run(exporter.export_traces(request))
    assert result.rejected == 2
    assert all(lane.writer.position == 0 for lane in lanes)


def test_requests_go_to_the_least_loaded_lane(lanes: list[Lane]) -> None:
    exporter = LakeExporter(lanes, 1 << 30)
    lanes[0].status[CHECKPOINT_POS] = -10_000  # lane 0 has 10 kB waiting for conversion
    for i in range(3):
        asyncio.run(exporter.export_traces(numbered_request(i * 5, 5)))
    assert exporter.counters.by_lane == {1: 15}


def test_backlog_over_the_limit_is_refused_with_503(lanes: list[Lane]) -> None:
    exporter = LakeExporter(lanes, max_backlog_bytes=1000)
    for lane in lanes:
        lane.status[CHECKPOINT_POS] = -5000
    with pytest.raises(Overloaded) as err:
        asyncio.run(exporter.export_traces(numbered_request(0, 5)))
    assert err.value.http_status == 503 and err.value.retry_after
    assert all(lane.writer.position == 0 for lane in lanes)


def test_stopping_and_wal_failure_are_retryable(lanes: list[Lane]) -> None:
    exporter = LakeExporter(lanes, 1 << 30)
    for lane in lanes:
        lane.writer.close()
    with pytest.raises(Overloaded, match="write-ahead log"):
        asyncio.run(exporter.export_traces(numbered_request(0, 5)))
    exporter.stopping = True
    with pytest.raises(Overloaded, match="shutting down"):
        asyncio.run(exporter.export_traces(numbered_request(0, 5)))


def _log(attributes: dict[str, str]) -> LogRecord:
    return LogRecord(
        time_unix_nano=1_767_225_700_000_000_000,
        attributes=[KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in attributes.items()],
    )


def test_log_records_with_an_outcome_are_stored_as_signals(lanes: list[Lane]) -> None:
    exporter = LakeExporter(lanes, 1 << 30)
    request = ExportLogsServiceRequest(
        resource_logs=[
            ResourceLogs(
                scope_logs=[
                    ScopeLogs(
                        log_records=[
                            _log({"task.outcome": "completed", "task.id": "T-1"}),
                            _log({"http.route": "/health"}),  # an ordinary log: ignored
                            _log({"task.outcome": "maybe", "task.id": "T-2"}),
                        ]
                    )
                ]
            )
        ]
    )
    result = asyncio.run(exporter.export_logs(request))
    assert result.rejected == 1 and "maybe" in result.error_message
    (record,) = [r for lane in lanes for r in _all_records(lane)]
    assert record.kind == KIND_SIGNALS
    rows = decode_rows(record.payload)
    assert rows.column("task_id").to_pylist() == ["T-1"]
    assert rows.column("source").to_pylist() == ["otlp-logs"]
    assert exporter.counters.signals == 1 and exporter.counters.rejected_log_records == 1


def test_logs_without_signals_write_nothing(lanes: list[Lane]) -> None:
    exporter = LakeExporter(lanes, 1 << 30)
    request = ExportLogsServiceRequest(
        resource_logs=[ResourceLogs(scope_logs=[ScopeLogs(log_records=[_log({"a": "b"})])])]
    )
    assert asyncio.run(exporter.export_logs(request)).rejected == 0
    assert all(lane.writer.position == 0 for lane in lanes)


def test_rows_are_one_durable_record_of_their_kind(lanes: list[Lane]) -> None:
    exporter = LakeExporter(lanes, 1 << 30)
    rows = costs_table(
        parse_costs(
            b'{"component": "labor", "amount_usd": 5, "period_start": "2026-01-01",'
            b' "period_end": "2026-02-01"}'
        ).items,
        received_at_ms=1,
    )
    asyncio.run(exporter.write_rows(KIND_COSTS, rows))
    (record,) = [r for lane in lanes for r in _all_records(lane)]
    assert record.kind == KIND_COSTS and decode_rows(record.payload).equals(rows)
    assert exporter.counters.cost_entries == 1
    exporter.stopping = True
    with pytest.raises(Overloaded, match="shutting down"):
        asyncio.run(exporter.write_rows(KIND_COSTS, rows))


def _all_records(lane: Lane) -> list[Record]:
    return list(read_records(lane.writer.directory, 0, lane.writer.position))


def test_kind_of_records_is_traces(lanes: list[Lane]) -> None:
    asyncio.run(LakeExporter(lanes, 1 << 30).export_traces(numbered_request(0, 1)))
    d = next(lane for lane in lanes if lane.writer.position).writer.directory
    (record,) = read_records(d, 0, 10**9)
    assert record.kind == KIND_TRACES and record.time_ms > 1_700_000_000_000
