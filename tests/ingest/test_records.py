"""Signals and cost entries take the spans' path: WAL records of their own kind, converted,
published under ``lake/signals/`` and ``lake/costs/`` by day, replayed exactly once after a
crash inside a flush, and compacted."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from ingest.convert.lane import (
    COMMITTED,
    HANDLERS,
    STATUS_SLOTS,
    STOP,
    Converter,
    LaneSpec,
    build_handlers,
)
from ingest.lake.compaction import compact_once
from ingest.wal.log import KIND_COSTS, KIND_SIGNALS, KIND_TRACES, WalWriter
from ingest.wal.records import decode_rows, encode_rows
from schemas.costs import costs_table, parse_costs
from schemas.lake import COSTS, SIGNALS, SPANS
from schemas.settings import Settings
from schemas.signals import parse_signals, signals_table
from tests.ingest.crash_driver import numbered_request
from tests.ingest.test_convert import _committer
from tests.lakes import connect, lake_settings, local_dir, read_parquet, tables


def _signals(first: int, count: int) -> pa.Table:
    items = [
        {
            "task_id": f"T-{n}",
            "outcome": "completed" if n % 3 else "failed",
            "occurred_at": f"2026-03-0{1 + n % 3}T10:00:00.123456789Z",
            "signal_id": f"s-{n}",
            "rework_cost_usd": "0.000000000001" if n == 1 else None,
            "attributes": {"n": n, "who": "bot"},
        }
        for n in range(first, first + count)
    ]
    parsed = parse_signals(json.dumps(items).encode())
    assert not parsed.rejected
    return signals_table(parsed.items, received_at_ms=1_767_000_000_000)


def _costs() -> pa.Table:
    body = json.dumps(
        [
            {
                "component": "licence",
                "amount_usd": "1234567890.123456789012",
                "period_start": "2026-01-01",
                "period_end": "2027-01-01",
                "entry_id": "lic",
            },
            {
                "component": "labor",
                "amount_usd": 50,
                "team": "ops",
                "period_start": "2026-03-02T00:00:00Z",
                "period_end": "2026-03-03T00:00:00Z",
            },
        ]
    ).encode()
    return costs_table(parse_costs(body).items, received_at_ms=1_767_000_000_000)


def test_ipc_payloads_round_trip_exactly() -> None:
    for rows in (_signals(0, 5), _costs()):
        assert decode_rows(encode_rows(rows)).equals(rows)


def _settings(lake: str) -> Settings:
    return lake_settings(lake, writer_id="t", flush_rows=10**6)


def _spec(lake: str) -> LaneSpec:
    return LaneSpec(str(local_dir(lake) / "_wal"), "t", 0)


def _converter(settings: Settings, spec: LaneSpec, committed: int) -> Converter:
    status = [0] * STATUS_SLOTS
    status[COMMITTED] = committed
    conv = Converter(spec, settings, status, handlers=build_handlers(settings, {**HANDLERS}))
    conv.recover()
    return conv


def _convert_and_commit(lake: str, spec: LaneSpec, end: int) -> None:
    conv = _converter(_settings(lake), spec, end)
    conv.status[STOP] = 1
    conv.run()
    _committer(lake, spec).commit_round()


def _query(lake: str, sql: str) -> list[tuple[object, ...]]:
    con = connect(lake)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_records_of_every_kind_land_in_their_tables(lake: str) -> None:
    spec = _spec(lake)
    writer = WalWriter(spec.wal_dir, segment_bytes=1 << 20)
    signals, costs = _signals(0, 9), _costs()
    writer.append(KIND_SIGNALS, encode_rows(signals), 1).result(timeout=10)
    writer.append(KIND_TRACES, numbered_request(0, 10).SerializeToString(), 1).result(timeout=10)
    writer.append(KIND_COSTS, encode_rows(costs), 1).result(timeout=10)
    writer.close()
    _convert_and_commit(lake, spec, writer.position)
    days = {t: sorted({f.day for f in tables(lake).version_of(t).files}) for t in (SIGNALS, COSTS)}
    assert days[SIGNALS] == ["2026-03-01", "2026-03-02", "2026-03-03"]
    assert days[COSTS] == ["2026-01-01", "2026-03-02"]
    stored = _query(
        lake, "SELECT signal_id, occurred_at, rework_cost_usd, attributes FROM signals ORDER BY 1"
    )
    assert len(stored) == 9
    assert stored[1][2] == Decimal("1E-12")
    assert stored[0][3] == {"n": "0", "who": "bot"}
    files = tables(lake).version_of(SIGNALS).uris()
    table = pa.concat_tables([read_parquet(f) for f in files])
    s4 = table.filter(pc.equal(table["signal_id"], "s-4"))
    assert s4["occurred_at_unix_nano"].to_pylist() == [1772445600123456789]  # to the ns
    assert _query(lake, "SELECT entry_id, amount_usd FROM costs WHERE entry_id = 'lic'") == [
        ("lic", Decimal("1234567890.123456789012"))
    ]
    assert _query(lake, "SELECT count(*) FROM spans") == [(10,)]


def test_a_crash_between_two_tables_commits_commits_the_other_once(
    lake: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Spans and signals are two Delta tables: the committer died after committing one."""
    spec = _spec(lake)
    writer = WalWriter(spec.wal_dir, segment_bytes=1 << 20)
    for first in range(0, 90, 10):
        writer.append(KIND_SIGNALS, encode_rows(_signals(first, 10)), 1).result(timeout=10)
        writer.append(KIND_TRACES, numbered_request(first, 10).SerializeToString(), 1).result(
            timeout=10
        )
    writer.close()
    conv = _converter(_settings(lake), spec, writer.position)
    conv.status[STOP] = 1
    conv.run()
    committer = _committer(lake, spec)
    real = committer._commit_table

    def one_then_die(table: str, waiting: Any) -> None:
        if table == SPANS:  # tables commit in name order: signals first, then spans
            raise SystemExit("killed")
        real(table, waiting)

    monkeypatch.setattr(committer, "_commit_table", one_then_die)
    with pytest.raises(SystemExit):
        committer.commit_round()
    assert _query(lake, "SELECT count(*) FROM signals") == [(90,)]
    assert _query(lake, "SELECT count(*) FROM spans") == [(0,)]
    _committer(lake, spec).recover()  # spans are committed; signals are not, again
    files = tables(lake).version_of(SIGNALS).uris()
    rows = _query(lake, f"SELECT signal_id, count(*) FROM read_parquet({files}) GROUP BY ALL")
    assert sorted(rows) == sorted((f"s-{n}", 1) for n in range(90))
    assert _query(
        lake, f"SELECT count(*) FROM read_parquet({tables(lake).version_of('spans').uris()})"
    ) == [(90,)]


def test_signal_and_cost_partitions_are_compacted(lake: str) -> None:
    spec = _spec(lake)
    for first in range(0, 30, 10):  # three flushes: three files per partition
        writer = WalWriter(spec.wal_dir, segment_bytes=1 << 20)
        writer.append(KIND_SIGNALS, encode_rows(_signals(first, 10)), 1).result(timeout=10)
        writer.close()
        _convert_and_commit(lake, spec, writer.position)

    def files_of(day: str) -> int:
        return sum(f.day == day for f in tables(lake).version_of(SIGNALS).files)

    assert files_of("2026-03-01") == 3
    before = _query(lake, "SELECT * FROM signals ORDER BY signal_id")
    stats = compact_once(_settings(lake), tables=["signals"])
    assert stats.input_files == 9 and stats.output_files == 3
    assert files_of("2026-03-01") == 1
    assert _query(lake, "SELECT * FROM signals ORDER BY signal_id") == before
