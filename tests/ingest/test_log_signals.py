"""OTLP log records carrying ``task.outcome`` are completion signals; other records are logs."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from google.protobuf import text_format
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from ingest.receive.log_signals import signals_from_logs
from ingest.receive.otlp_json import parse_logs_json
from schemas.jsonitems import rfc3339_ns
from schemas.settings import Settings
from schemas.signals import signals_table
from tests.ingest.otlp_builders import AttrValue, kv

CASES = Path(__file__).parent / "cases"
NOW = rfc3339_ns("2026-05-01T12:00:00Z")


def _request(
    *records: LogRecord, resource: dict[str, AttrValue] | None = None
) -> ExportLogsServiceRequest:
    res = Resource(attributes=[kv(k, v) for k, v in (resource or {}).items()])
    return ExportLogsServiceRequest(
        resource_logs=[ResourceLogs(resource=res, scope_logs=[ScopeLogs(log_records=records)])]
    )


def _record(
    attributes: dict[str, AttrValue], time_ns: int = 0, body: str | None = None
) -> LogRecord:
    record = LogRecord(time_unix_nano=time_ns, attributes=[kv(k, v) for k, v in attributes.items()])
    if body is not None:
        record.body.string_value = body
    return record


def test_the_sample_record_of_the_receiver_tests() -> None:
    request = parse_logs_json((CASES / "logs_outcome.json").read_bytes())
    assert request == text_format.Parse(
        (CASES / "logs_outcome.txtpb").read_text(), ExportLogsServiceRequest()
    )
    found = signals_from_logs(request, Settings(), now=NOW)
    (signal,) = found.signals
    assert (signal.task_id, signal.outcome, signal.reason) == (
        "T-1042",
        "completed",
        "ticket resolved",
    )
    assert signal.occurred_at_ns == 1767225700000000000
    assert dict(signal.attributes) == {
        "log.trace_id": "5b8efff798038103d269b633813fc60c",
        "log.span_id": "eee19b7ec3c1b174",
        "log.event_name": "task.outcome",
    }
    assert signal.signal_id.startswith("auto-") and found.rejected == 0


def test_fields_from_the_record_then_the_resource() -> None:
    record = LogRecord(
        observed_time_unix_nano=NOW - 10**9,
        attributes=[
            kv("task.outcome", "rework"),
            kv("correlation.id", "att-7"),
            kv("task.outcome.reason", "wrong refund amount"),
            kv("task.rework_cost_usd", 12.5),
            kv("task.rework_minutes", 30),
            kv("signal.id", "sig-1"),
            kv("reviewer", "kim"),
            kv("labels", ["refund", "vip"]),
        ],
    )
    record.body.string_value = "not the reason: the attribute wins"
    found = signals_from_logs(
        _request(
            record, resource={"task.id": 1042, "workflow.id": "refunds", "service.name": "crm"}
        ),
        Settings(),
        now=NOW,
    )
    (s,) = found.signals
    assert (s.task_id, s.correlation_id, s.workflow) == ("1042", "att-7", "refunds")
    assert (s.outcome, s.reason, s.signal_id) == ("rework", "wrong refund amount", "sig-1")
    assert (s.rework_cost_usd, s.rework_minutes) == (Decimal("12.5"), 30.0)
    assert s.occurred_at_ns == NOW - 10**9  # no time: when it was observed
    assert dict(s.attributes) == {"reviewer": "kim", "labels": '["refund","vip"]'}
    assert s.attribute_types == "sa"


def test_configured_keys_and_the_receipt_time() -> None:
    settings = replace(Settings(), task_keys=("ticket.number",), correlation_keys=("run.id",))
    record = _record({"task.outcome": "failed", "ticket.number": "T-9", "task.id": "ignored"})
    (s,) = signals_from_logs(_request(record), settings, now=NOW).signals
    assert (s.task_id, s.occurred_at_ns) == ("T-9", NOW)
    assert dict(s.attributes) == {"task.id": "ignored"}  # not a configured key: kept as is


def test_ordinary_logs_are_ignored_and_not_rejected() -> None:
    found = signals_from_logs(
        _request(_record({}, body="GET /health 200"), _record({"task.id": "T-1"}, body="started")),
        Settings(),
        now=NOW,
    )
    assert found.signals == [] and found.rejected == 0 and found.error_message == ""


def test_invalid_signals_are_rejected_with_reasons() -> None:
    found = signals_from_logs(
        _request(
            _record({"task.outcome": "done", "task.id": "T-1"}),
            _record({"task.outcome": "completed"}),
            _record({"task.outcome": "completed", "task.id": "T-2", "task.rework_cost_usd": -1.0}),
            _record({"task.outcome": "completed", "task.id": "T-3"}),
        ),
        Settings(),
        now=NOW,
    )
    assert [s.task_id for s in found.signals] == ["T-3"]
    assert found.rejected == 3
    message = found.error_message
    assert message.startswith("3 log record(s) with task.outcome are not valid signals")
    assert "outcome" in message and "task_id or correlation_id" in message
    assert "negative" in message


def test_a_retried_batch_yields_the_same_signal_ids() -> None:
    request = _request(_record({"task.outcome": "completed", "task.id": "T-1"}, NOW))
    first = signals_from_logs(request, Settings(), now=NOW).signals
    again = signals_from_logs(request, Settings(), now=NOW + 10**9).signals
    assert [s.signal_id for s in first] == [s.signal_id for s in again]


def test_records_outside_the_time_and_money_ranges_are_rejected() -> None:
    """The REST API's bounds: a record dated at the end of int64 nanoseconds is in the future,
    and task.rework_cost_usd shares the one money range."""
    found = signals_from_logs(
        _request(
            _record({"task.outcome": "completed", "task.id": "T-1"}, 2**63 - 1),
            _record({"task.outcome": "rework", "task.id": "T-2", "task.rework_cost_usd": 1e16}),
            _record({"task.outcome": "rework", "task.id": "T-3", "task.rework_cost_usd": 1e15}),
        ),
        Settings(),
        now=NOW,
    )
    assert [(s.task_id, s.rework_cost_usd) for s in found.signals] == [("T-3", Decimal(10**15))]
    assert found.rejected == 2
    assert "in the future" in found.error_message and "largest amount" in found.error_message


def _any_value() -> st.SearchStrategy[AnyValue]:
    leaf = st.one_of(
        st.builds(
            lambda v: AnyValue(string_value=v),
            st.text(max_size=10)
            | st.sampled_from(["completed", "rework", "1e15", "1e16", "-1", "T/1"]),
        ),
        st.builds(lambda v: AnyValue(bool_value=v), st.booleans()),
        st.builds(lambda v: AnyValue(int_value=v), st.integers(-(2**63), 2**63 - 1)),
        st.builds(lambda v: AnyValue(double_value=v), st.floats()),
        st.builds(lambda v: AnyValue(bytes_value=v), st.binary(max_size=8)),
        st.just(AnyValue()),
    )
    return st.recursive(
        leaf,
        lambda kids: (
            st.builds(
                lambda vs: AnyValue(array_value=ArrayValue(values=vs)), st.lists(kids, max_size=3)
            )
            | st.builds(
                lambda vs: AnyValue(
                    kvlist_value=KeyValueList(values=[KeyValue(key=k, value=v) for k, v in vs])
                ),
                st.lists(st.tuples(st.text(max_size=5), kids), max_size=3),
            )
        ),
        max_leaves=4,
    )


_KEYS = st.sampled_from(
    [
        "task.outcome",
        "task.id",
        "correlation.id",
        "workflow.id",
        "task.rework_cost_usd",
        "task.rework_minutes",
        "task.outcome.reason",
        "signal.id",
        "other",
    ]
)
_records = st.builds(
    lambda attrs, t, observed: LogRecord(
        time_unix_nano=t,
        observed_time_unix_nano=observed,
        attributes=[KeyValue(key=k, value=v) for k, v in attrs],
    ),
    st.lists(st.tuples(_KEYS, _any_value()), max_size=6),
    st.integers(0, 2**64 - 1) | st.sampled_from([0, 1, NOW, 2**63 - 1]),
    st.integers(0, 2**64 - 1) | st.just(0),
)


@pytest.mark.fuzz
@given(st.lists(_records, max_size=5))
def test_any_record_is_a_signal_a_rejection_or_an_ordinary_log(records: list[LogRecord]) -> None:
    """Whatever the records hold, each one carrying task.outcome is a valid signal (inside the
    one money range and the time bounds) or a counted rejection with a reason; nothing raises."""
    found = signals_from_logs(_request(*records), Settings(), now=NOW)
    with_outcome = sum(any(kv.key == "task.outcome" for kv in r.attributes) for r in records)
    assert len(found.signals) + found.rejected == with_outcome
    assert bool(found.rejected) == bool(found.error_message)
    for s in found.signals:
        assert 0 <= s.occurred_at_ns <= NOW + 300 * 10**9
        assert s.rework_cost_usd is None or 0 <= s.rework_cost_usd <= 10**15
    signals_table(found.signals, received_at_ms=0)  # the rows to store build
