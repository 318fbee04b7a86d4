"""The JSON shapes of ``POST /api/v1/signals`` and ``POST /api/v1/costs``: one object, an
array or NDJSON; every bad item reported by index, every good one kept; money exact."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from ingest.lake.append import append_rows
from ingest.lake.files import FileWriter
from schemas.costs import COST_SCHEMA, costs_table, parse_costs
from schemas.jsonitems import BodyError, ns_to_iso, rfc3339_ns
from schemas.lake import PARTITION, SIGNALS, TABLES
from schemas.signals import SIGNAL_SCHEMA, parse_signals, signals_table
from tests.lakes import load, tables

CASES = Path(__file__).parent / "cases"
NOW = rfc3339_ns("2026-02-01T00:00:00Z")


def test_an_array_keeps_good_items_and_names_bad_ones() -> None:
    parsed = parse_signals((CASES / "signals_mixed.json").read_bytes(), "application/json", now=NOW)
    assert parsed.indexes == [0, 1, 4]
    errors = {r["index"]: r["error"] for r in parsed.rejected}
    assert errors[2].startswith("outcome: expected one of completed, failed, escalated")
    assert errors[3] == "task_id or correlation_id: one is required"
    assert errors[5] == "expected a JSON object, got a string"
    assert "occurred_at: expected an RFC 3339 time" in errors[6]  # no offset: ambiguous
    assert errors[7].startswith("unknown field 'occured_at'")
    assert errors[8] == "rework_cost_usd: must not be negative"
    assert errors[9] == "rework_cost_usd: at most 12 decimal places"
    first, attempt, rework = parsed.items
    assert (first.task_id, first.outcome, ns_to_iso(first.occurred_at_ns)) == (
        "TCK-1",
        "completed",
        "2026-01-05T10:00:00Z",
    )
    assert attempt.correlation_id == "att-9" and attempt.outcome == "escalated"
    assert ns_to_iso(attempt.occurred_at_ns) == "2026-01-05T10:30:00.123456789Z"  # to UTC, ns
    assert rework.rework_cost_usd == Decimal("0.1") and rework.rework_minutes == 12.0
    assert rework.signal_id == "crm-77"
    assert dict(rework.attributes) == {
        "agent": "ana",
        "score": "4",
        "ratio": "0.5",
        "ok": "true",
        "tags": '["a","b"]',
        "none": "",
    }
    assert rework.attribute_types == "sidban"


def test_ndjson_lines_and_one_object() -> None:
    body = (CASES / "signals_lines.ndjson").read_bytes()
    for content_type in ("application/x-ndjson", None):  # declared, or recognised
        parsed = parse_signals(body, content_type, now=NOW)
        assert [s.task_id for s in parsed.items] == ["TCK-1", "TCK-2"]
        assert [r["index"] for r in parsed.rejected] == [2, 3]
        assert parsed.rejected[0]["error"].startswith("invalid JSON")
        assert "appears twice" in parsed.rejected[1]["error"]
    one = parse_signals(b'{"task_id": "T", "outcome": "failed"}', now=NOW)
    assert one.items[0].occurred_at_ns == NOW  # default: received now


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty body"),
        (b"   \n", "empty body"),
        (b"{nope", "not valid JSON"),
        (b"42", "expected a JSON object, a JSON array"),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
def test_bodies_that_are_not_signals(body: bytes, message: str) -> None:
    with pytest.raises(BodyError, match=message):
        parse_signals(body)


def test_signal_ids_from_content() -> None:
    item = b'{"task_id": "T", "outcome": "completed", "occurred_at": "2026-01-05T10:00:00Z"}'
    again = parse_signals(item, now=NOW + 1).items[0]
    assert parse_signals(item, now=NOW).items[0].signal_id == again.signal_id  # a retry
    other = item.replace(b"completed", b"failed")
    assert parse_signals(other).items[0].signal_id != again.signal_id
    no_time = b'{"task_id": "T", "outcome": "completed"}'
    ids = {parse_signals(no_time, now=NOW + i).items[0].signal_id for i in range(2)}
    assert len(ids) == 2  # received at different times: different signals


def test_stored_signals_are_deduplicated_first_received_wins(lake: str) -> None:
    item = b'{"task_id": "T", "outcome": "completed", "signal_id": "s1"}'
    later = b'{"task_id": "T", "outcome": "failed", "signal_id": "s1", "reason": "x"}'
    for i, (body, received) in enumerate([(later, 2000), (item, 1000), (item, 3000)]):
        table = signals_table(parse_signals(body, now=NOW).items, received_at_ms=received)
        assert table.schema == SIGNAL_SCHEMA
        append_rows(tables(lake), SIGNALS, table, prefix=f"s{i}")
    con = duckdb.connect()
    load(con, lake)
    assert con.execute("SELECT signal_id, outcome, reason FROM signals").fetchall() == [
        ("s1", "completed", None)  # whole: not the later copy's reason
    ]


def test_cost_entries() -> None:
    parsed = parse_costs((CASES / "costs_mixed.json").read_bytes())
    assert parsed.indexes == [0, 1]
    errors = {r["index"]: r["error"] for r in parsed.rejected}
    assert errors[2].startswith("period_end: must be after period_start")
    assert errors[3].startswith("component: expected one of rework, labor, infrastructure")
    assert errors[4] == "amount_usd: required (a number of US dollars)"
    licence, labor = parsed.items
    assert licence.amount_usd == Decimal("1200.50") and licence.team == "cx"
    assert ns_to_iso(licence.period_start_ns) == "2026-01-01T00:00:00Z"
    assert ns_to_iso(licence.period_end_ns) == "2026-02-01T00:00:00Z"
    assert licence.entry_id.startswith("auto-") and labor.entry_id == "jira-42"
    assert parse_costs((CASES / "costs_mixed.json").read_bytes()).items[0].entry_id == (
        licence.entry_id
    )
    table = costs_table(parsed.items, received_at_ms=0)
    assert table.schema == COST_SCHEMA
    assert table.column("amount_usd").to_pylist()[1] == Decimal("3000")


def test_times_out_of_range_are_refused() -> None:
    body = b'{"task_id": "T", "outcome": "completed", "occurred_at": "2300-01-01T00:00:00Z"}'
    assert "out of range" in parse_signals(body).rejected[0]["error"]


@pytest.mark.parametrize(
    ("item", "error"),
    [
        ('"occurred_at": "2262-04-11T23:47:16.854775807Z"', "occurred_at: in the future"),
        ('"occurred_at": "2026-02-01T00:05:00.000000001Z"', "occurred_at: in the future"),
        ('"occurred_at": "1969-12-31T23:59:59Z"', "out of range"),
        ('"rework_cost_usd": 1000000000000000.000000000001', "largest amount"),
        ('"rework_cost_usd": 1e16', "largest amount"),
    ],
)
def test_signals_outside_the_time_and_money_ranges_are_refused_per_item(
    item: str, error: str
) -> None:
    good = '{"task_id": "U", "outcome": "failed"}'
    body = f'[{{"task_id": "T", "outcome": "failed", {item}}}, {good}]'
    parsed = parse_signals(body.encode(), now=NOW)  # max_clock_skew: 300 s by default
    assert [s.task_id for s in parsed.items] == ["U"]
    assert error in parsed.rejected[0]["error"], parsed.rejected


def test_the_clock_skew_allowed_is_a_setting() -> None:
    body = b'{"task_id": "T", "outcome": "failed", "occurred_at": "2026-02-01T00:30:00Z"}'
    assert parse_signals(body, now=NOW).rejected
    assert parse_signals(body, now=NOW, max_clock_skew=3600).items


def test_the_largest_amounts_are_stored_exactly() -> None:
    body = b'{"task_id": "T", "outcome": "rework", "rework_cost_usd": "1000000000000000"}'
    table = signals_table(parse_signals(body, now=NOW).items, received_at_ms=0)
    assert table.column("rework_cost_usd").to_pylist() == [Decimal(10**15)]


def test_cost_periods_stay_within_1970_and_2262() -> None:
    def entry(start: str, end: str) -> bytes:
        return (
            f'{{"component": "labor", "amount_usd": 1, "period_start": "{start}",'
            f' "period_end": "{end}"}}'
        ).encode()

    assert parse_costs(entry("1970-01-01", "2262-01-01")).items
    late = parse_costs(entry("2261-01-01", "2262-01-02")).rejected
    assert "period_end: from 2262-01-01 on" in late[0]["error"]
    early = parse_costs(entry("1969-12-31", "1970-01-02")).rejected
    assert "period_start" in early[0]["error"]


def test_version_1_signal_files_still_read(lake: str) -> None:
    """Version 1 stored rework_cost_usd as DECIMAL(18, 12); the views read both."""
    old = b'{"task_id": "T", "outcome": "rework", "rework_cost_usd": "2.5", "signal_id": "a"}'
    new = b'{"task_id": "T", "outcome": "rework", "rework_cost_usd": "1e15", "signal_id": "b"}'
    spec = TABLES[SIGNALS]
    v1 = spec.to_lake(signals_table(parse_signals(old, now=NOW).items, received_at_ms=0))
    index = v1.schema.get_field_index("rework_cost_usd")
    v1 = v1.set_column(
        index, "rework_cost_usd", v1.column(index).cast(pa.decimal128(18, 12))
    ).set_column(0, "schema_version", pa.array([1], pa.int8()))
    t = tables(lake)
    written = FileWriter(t.location).write(
        spec, dt.date(2026, 1, 5), v1, prefix="old", row_group_rows=10, level=1
    )
    t.current(SIGNALS).create_write_transaction(
        [written.add_action()],
        mode="append",
        schema=spec.delta_schema,
        partition_by=[PARTITION],
    )
    append_rows(
        t, SIGNALS, signals_table(parse_signals(new, now=NOW).items, received_at_ms=0), prefix="new"
    )
    con = duckdb.connect()
    load(con, lake)
    assert con.execute("SELECT signal_id, rework_cost_usd FROM signals ORDER BY 1").fetchall() == [
        ("a", Decimal("2.5")),
        ("b", Decimal(10**15)),
    ]
