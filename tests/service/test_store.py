"""The materialized store answers exactly what the views answer over the same files — after
a full build and after every kind of incremental change the lake sees."""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingest.storage import Storage
from schemas.lake import ensure_lake
from schemas.settings import Settings, WorkflowRule
from schemas.views import load_views
from service.store import Store, list_span_files
from tests.lakes import (
    at,
    build_companions,
    signal,
    span,
    write_costs,
    write_signals,
    write_spans,
)
from tests.schemas.test_rollup import random_lake, tricky_lake
from tests.swaps import merge_after_first_read, publish

FACTS = "SELECT * FROM task_facts_in(NULL, NULL)"
#: The view's breakdown per attempt, summed per task as the store keeps it.
BREAKDOWN = "SELECT * FROM task_breakdown"
#: Groupings whose fully loaded answers the store must give exactly as the views do.
FULL_GROUPINGS = (
    "by_workflow := true",
    "by_team := true, by_month := true",
    "by_workflow := true, by_role := true",
    "by_model := true, by_provider := true",
)


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    c = duckdb.connect()
    yield c
    c.close()


def _open(con: duckdb.DuckDBPyConnection, lake: Path) -> Store:
    ensure_lake(lake)
    load_views(con, lake)
    return Store(con, lake)


def assert_store_matches_views(con: duckdb.DuckDBPyConnection, *, full: bool = False) -> None:
    """Every stored table equals its view; with ``full``, the fully loaded answers too."""
    pairs = [
        ("attempts", "tl_store.attempts"),
        (f"({FACTS})", "tl_store.tasks"),
        ("signals", "tl_store.signals"),
        (f"({BREAKDOWN})", "tl_store.breakdown"),
        ("unmatched_signals", "store_unmatched_signals"),
    ]
    if full:
        pairs.append(("cost_allocations", "store_cost_allocations"))
        pairs.append(("unallocated_costs_in()", "store_unallocated_costs_in()"))
        pairs.extend(
            (
                f"cost_per_task_by({g}, full_cost := true)",
                f"store_cost_per_task_by({g}, full_cost := true)",
            )
            for g in FULL_GROUPINGS
        )
    for view, table in pairs:
        want = Counter(map(repr, con.execute(f"SELECT * FROM {view}").fetchall()))
        got = Counter(map(repr, con.execute(f"SELECT * FROM {table}").fetchall()))
        assert (want - got, got - want) == (Counter(), Counter()), view


COSTS = [
    {
        "component": "labor",
        "amount_usd": "100",
        "workflow": "w1",
        "period_start": "2026-01-01",
        "period_end": "2026-01-03",
    },
    {
        "component": "infrastructure",
        "amount_usd": "7.77",
        "period_start": "2026-01-02",
        "period_end": "2026-02-01",
    },
    {
        "component": "licence",
        "amount_usd": "1",
        "team": "y",
        "period_start": "2026-01-01T12:00:00Z",
        "period_end": "2026-01-04",
    },
]


def _merge(lake: Path, names: list[str], into: str) -> None:
    """What compaction does: one new file holding the rows of others, which disappear."""
    files = [next(lake.glob(f"spans/*/{n}.parquet")) for n in names]
    merged = pa.concat_tables([pq.read_table(f) for f in files])
    pq.write_table(merged, files[0].parent / f"{into}.parquet")
    for f in files:
        f.unlink()
        for companion in f.parent.glob(f"_rollup_*/{f.name}"):
            companion.unlink()


def test_every_kind_of_change(
    tmp_path: Path, con: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("service.store.BUILD_PASS_ROWS", 40)  # builds and refreshes in passes
    lake = tmp_path / "lake"
    random_lake(lake, 7, traces=50)
    held = tmp_path / "held"
    held.mkdir()
    files = sorted(lake.glob("spans/*/f*.parquet"))
    for f in files[3:]:
        shutil.move(f, held / f"{f.parent.name}__{f.name}")
    write_costs(lake, COSTS, "costs")
    store = _open(con, lake)
    assert store.refresh().kind == "rebuild"
    assert_store_matches_views(con, full=True)
    assert store.refresh().kind == "none"

    for f in sorted(held.iterdir()):  # late files, one at a time
        day, name = f.name.split("__")
        (lake / "spans" / day).mkdir(exist_ok=True)
        shutil.move(f, lake / "spans" / day / name)
        assert store.refresh().kind == "incremental"
        assert_store_matches_views(con)

    write_signals(  # signals naming tasks and attempts, a duplicate, one for nobody yet
        lake,
        [
            signal("task1", "completed", at(70), signal_id="x1"),
            signal("task2", "failed", at(70), signal_id="x2"),
            signal("c1", "completed", at(71), signal_id="x3", by="correlation_id"),
            signal("task1", "reopened", at(80), signal_id="x4"),
            signal("nobody", "completed", at(70), signal_id="x5", rework_cost_usd="2.5"),
            signal("task2", "rework", at(72), signal_id="x6", workflow="elsewhere"),
        ],
        "sig-1",
    )
    write_signals(lake, [signal("task1", "completed", at(70), signal_id="x1")], "sig-2")
    assert store.refresh().kind == "incremental"
    assert_store_matches_views(con, full=True)
    unmatched = dict(
        con.execute("SELECT signal_id, reason FROM store_unmatched_signals").fetchall()
    )
    assert unmatched["x5"] == "unknown task" and "x6" in unmatched

    write_spans(  # a late root that now names the correlation id of a whole trace
        lake,
        [
            span(
                "late",
                "late-root",
                start=at(1),
                correlation_id="c2",
                task_id="nobody",
                workflow="w9",
            ),
            span("late", "late-kid", parent="late-root", start=at(2), op="chat", cost="0.5"),
        ],
        "late",
        day="2026-01-02",
    )
    assert store.refresh().kind == "incremental"
    assert_store_matches_views(con, full=True)
    unmatched = dict(
        con.execute("SELECT signal_id, reason FROM store_unmatched_signals").fetchall()
    )
    assert "x5" not in unmatched and "x6" in unmatched  # its task's spans arrived

    build_companions(lake, only=["f1", "late"])  # companions appear for existing files
    assert store.refresh().kind == "incremental"
    assert_store_matches_views(con)

    _merge(lake, ["f1", "f4"], "compacted")  # a compaction swap
    assert store.refresh().kind == "incremental"
    assert_store_matches_views(con, full=True)

    next(lake.glob("spans/*/f2.parquet")).unlink()  # retention drops a file
    assert store.refresh().kind == "incremental"
    assert_store_matches_views(con)


@pytest.mark.parametrize("pass_rows", [250_000, 2])
def test_tricky_lake(
    tmp_path: Path, con: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch, pass_rows: int
) -> None:
    """Whether a build aggregates in one pass or many (large lakes), the answer is the same."""
    monkeypatch.setattr("service.store.BUILD_PASS_ROWS", pass_rows)
    tricky_lake(tmp_path)
    write_signals(tmp_path, [signal("T1", "completed", at(30), signal_id="s")], "s")
    build_companions(tmp_path, only=["b"])
    store = _open(con, tmp_path)
    store.refresh()
    assert_store_matches_views(con)


def test_covers_only_times_after_the_latest_signal(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    tricky_lake(tmp_path)
    write_signals(tmp_path, [signal("T1", "completed", at(30), signal_id="s")], "s")
    store = _open(con, tmp_path)
    assert not store.covers(None)  # not built yet
    store.refresh()
    assert store.covers(None) and store.covers(at(31))
    assert not store.covers(at(29))  # that answer needs the signals of that moment
    assert store.max_signal_at == at(30)
    assert datetime.now(UTC) > at(30)


def test_a_signal_dated_in_the_future_sends_now_to_the_views(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    tricky_lake(tmp_path)
    future = datetime(2200, 1, 1, tzinfo=UTC)
    # written before signals from the future were refused (max_clock_skew)
    write_signals(tmp_path, [signal("T1", "completed", future, signal_id="f")], "s", now=future)
    store = _open(con, tmp_path)
    store.refresh()
    assert not store.covers(None) and store.covers(future)


def _reopen(lake: Path, path: Path, settings: Settings | None = None) -> tuple[Store, Any]:
    con = duckdb.connect()
    ensure_lake(lake)
    load_views(con, lake, settings)
    return Store(con, lake, path=path, settings=settings), con


def test_the_store_file_survives_a_restart(tmp_path: Path) -> None:
    lake, path = tmp_path / "lake", tmp_path / "lake" / "_store" / "w.duckdb"
    random_lake(lake, 3, traces=30)
    held = sorted(lake.glob("spans/*/f*.parquet"))[-1]
    kept = tmp_path / held.name
    shutil.move(held, kept)
    store, con = _reopen(lake, path)
    assert store.path == path and not store.built
    assert store.refresh().kind == "rebuild"
    assert sorted(p.name for p in path.parent.iterdir()) == ["w.duckdb"]  # no scratch left
    store.close()
    con.close()

    store, con = _reopen(lake, path)  # a restart: what the file holds is taken over
    assert store.built and store.refresh().kind == "none"
    assert_store_matches_views(con)
    # while it is down the lake moves on: the restart catches up incrementally
    store.close()
    con.close()
    shutil.move(kept, held)
    write_signals(lake, [signal("task1", "completed", at(70), signal_id="later")], "later")
    store, con = _reopen(lake, path)
    assert store.refresh().kind == "incremental"
    assert_store_matches_views(con)
    store.close()
    con.close()
    store, con = _reopen(lake, path)  # nothing changed: nothing to do
    assert store.refresh().kind == "none"

    # the same file cannot be opened twice in one process: the second store stays in memory
    twin, twin_con = _reopen(lake, path)
    assert twin.path is None and twin.refresh().kind == "rebuild"
    twin_con.close()
    store.close()
    con.close()

    # other workflow rules make other decisions: the store is rebuilt, not reused
    strict = replace(Settings(), workflows={"w1": WorkflowRule(reopen_window=timedelta(hours=1))})
    store, con = _reopen(lake, path, strict)
    assert not store.built and store.refresh().kind == "rebuild"
    assert_store_matches_views(con)
    store.close()
    con.close()


def test_an_unreadable_store_file_is_started_over(tmp_path: Path) -> None:
    lake, path = tmp_path / "lake", tmp_path / "store.duckdb"
    tricky_lake(lake)
    path.write_bytes(b"this is not a DuckDB file" * 100)
    store, con = _reopen(lake, path)
    assert store.path == path and store.refresh().kind == "rebuild"
    assert_store_matches_views(con)
    store.close()
    con.close()


def test_a_listing_sees_one_generation_when_compaction_swaps_midway(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A compactor swaps the partition right after the store read its directory: the listing
    still holds the files it read (from that generation), none silently dropped."""
    lake = tmp_path / "lake"
    ensure_lake(lake)
    storage = Storage(lake)
    partition = "date=2026-01-05"
    for name in ("a", "b"):
        publish(storage, partition, name, 2)
    with merge_after_first_read(monkeypatch, storage, partition) as swapped:
        listed = list_span_files(lake)
    assert swapped
    part = lake / "spans" / partition
    assert sorted(listed) == [str(part / "a.parquet"), str(part / "b.parquet")]
    assert sorted(list_span_files(lake)) == [str(part / "m.parquet")]  # the next listing
