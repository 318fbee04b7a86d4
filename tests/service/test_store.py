"""The materialized store answers exactly what the views answer over the same table
versions — after a full build and after every kind of change the lake sees: new commits,
copies of spans, late signals, compaction, a commit that is not ours, a log cleaned up."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from deltalake.transaction import RemoveAction

from ingest.lake.compaction import compact_once
from schemas.lake import PARTITION, SPANS, TABLES
from schemas.settings import Settings, WorkflowRule
from schemas.views import load_views
from service.store import Store
from tests.lakes import (
    at,
    delete_file,
    lake_settings,
    lake_uri,
    local_dir,
    signal,
    span,
    tables,
    write_costs,
    write_signals,
    write_spans,
)
from tests.schemas.test_trace_spans import random_rows, scatter, tricky_lake

FACTS = "SELECT * FROM task_facts_in(NULL, NULL)"
#: The view's breakdown per attempt, summed per task as the store keeps it.
BREAKDOWN = "SELECT * FROM task_breakdown"
#: The analyses (schemas/views/{compare,trends,autonomy,outcome_reasons,levers}.sql): the
#: store's twin of each must answer exactly as the view's macro.
ANALYSES = (
    "compare_by('w1', a_version := 'v1', b_version := 'v2')",
    "compare_by('w1', a_version := 'v1', b_version := 'v2', full_cost := true)",
    "compare_decomposition_by('w1', a_start := '2026-01-01', a_end := '2026-01-02',"
    " b_start := '2026-01-02', b_end := '2026-02-01', full_cost := true)",
    "compare_decomposition_by('w2', a_team := 'x', b_team := 'y')",
    "trends_by('day', full_cost := true)",
    "trend_diagnosis_by('day', full_cost := true)",
    "trend_diagnosis_by('week')",
    "autonomy_by(end_at := '2026-02-01')",
    "outcome_reasons_by()",
    "time_saved_by()",
    "levers_by()",
    "lever_routing_by(workflows := ['w1', 's1'])",
    "lever_prompt_size_by()",
)
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


def _open(
    con: duckdb.DuckDBPyConnection,
    lake: str,
    settings: Settings | None = None,
    path: Path | None = None,
) -> Store:
    t = tables(lake)
    t.ensure()
    con.execute("SET TimeZone = 'UTC'")
    load_views(con, t, settings)
    return Store(con, t, path=path, settings=settings)


def assert_store_matches_views(
    con: duckdb.DuckDBPyConnection, store: Store, *, full: bool = False, analyses: bool = False
) -> None:
    """Every stored table equals its view over the store's versions; with ``full``, the fully
    loaded answers too, with ``analyses`` the analyses' macros (slow over the views)."""
    assert store.snapshot is not None
    store.tables.pin(con, store.snapshot)
    pairs = [
        ("attempts", "tl_store.attempts"),
        (f"({FACTS})", "store_task_facts"),
        ("signals", "tl_store.signals"),
        (f"({BREAKDOWN})", "tl_store.breakdown"),
        ("unmatched_signals", "store_unmatched_signals"),
        ("call_parts", "tl_store.call_parts"),
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
    if analyses:
        pairs.extend((a, f"store_{a}") for a in ANALYSES)
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


def _compact(lake: str) -> None:
    """The real compaction, every partition now."""
    settings = lake_settings(lake, row_group_rows=7, compaction_target_rows=50)
    stats = compact_once(settings, quiet=0)
    assert stats.partitions > 0


def test_every_kind_of_change(
    lake: str, con: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("service.store.BUILD_PASS_ROWS", 40)  # builds and refreshes in passes
    monkeypatch.setattr("service.store.BUILD_PASS_SPANS", 60)
    rows = random_rows(7, traces=50)
    scatter(lake, rows[: len(rows) // 2], 7, files=3, copies=0.1)
    write_costs(lake, COSTS, "costs")
    store = _open(con, lake)
    assert store.refresh().kind == "rebuild"
    assert_store_matches_views(con, store, full=True)
    assert store.refresh().kind == "none"

    rest = rows[len(rows) // 2 :]
    for i in range(0, len(rest), 60):  # late commits, with copies of earlier spans
        write_spans(lake, rest[i : i + 60] + rows[i : i + 3], f"late{i}")
        assert store.refresh().kind == "incremental"
    assert_store_matches_views(con, store)

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
    assert_store_matches_views(con, store, full=True, analyses=True)
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
    )
    assert store.refresh().kind == "incremental"
    assert_store_matches_views(con, store)
    unmatched = dict(
        con.execute("SELECT signal_id, reason FROM store_unmatched_signals").fetchall()
    )
    assert "x5" not in unmatched and "x6" in unmatched  # its task's spans arrived

    _compact(lake)  # compaction: files replaced, copies dropped, answers unchanged
    stats = store.refresh()
    assert stats.kind == "incremental" and stats.traces == 0
    assert_store_matches_views(con, store, full=True)
    write_spans(lake, rows[5:9], "after")  # copies of compacted spans, received again
    assert store.refresh().kind == "incremental"
    assert_store_matches_views(con, store)


def test_a_commit_that_is_not_ours_rebuilds(lake: str, con: duckdb.DuckDBPyConnection) -> None:
    scatter(lake, random_rows(3, traces=20), 3, files=3, copies=0)
    store = _open(con, lake)
    store.refresh()
    table = store.tables.current(SPANS)
    gone = store.tables.version_of(SPANS).files[0]
    table.create_write_transaction(  # another tool deletes a file's rows
        [RemoveAction(gone.path, True, int(time.time() * 1000), gone.size, {PARTITION: gone.day})],
        mode="append",
        schema=TABLES[SPANS].delta_schema,
        partition_by=[PARTITION],
    )
    assert store.refresh().kind == "rebuild"
    assert_store_matches_views(con, store)


def test_a_log_cleaned_up_under_the_store_rebuilds(
    lake: str, con: duckdb.DuckDBPyConnection
) -> None:
    scatter(lake, random_rows(4, traces=20), 4, files=2, copies=0)
    store = _open(con, lake)
    store.refresh()
    assert store.snapshot is not None
    needed = store.snapshot[SPANS].version + 1
    write_spans(lake, random_rows(5, traces=5), "more")
    write_spans(lake, random_rows(6, traces=5), "more")
    store.tables.current(SPANS).create_checkpoint()  # what log clean-up keeps: a checkpoint
    delete_file(lake_uri(lake, SPANS, "_delta_log", f"{needed:020d}.json"))
    assert store.refresh().kind == "rebuild"
    assert_store_matches_views(con, store)


@pytest.mark.parametrize("pass_spans", [1_000_000, 3])
def test_tricky_lake(
    lake: str, con: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch, pass_spans: int
) -> None:
    """Whether a build reads the spans in one pass or many (large lakes), the answer is the
    same."""
    monkeypatch.setattr("service.store.BUILD_PASS_SPANS", pass_spans)
    monkeypatch.setattr("service.store.BUILD_PASS_ROWS", min(pass_spans, 250_000))
    tricky_lake(lake)
    write_signals(lake, [signal("T1", "completed", at(30), signal_id="s")], "s")
    store = _open(con, lake)
    store.refresh()
    assert_store_matches_views(con, store)


def test_answers_at_any_moment_as_the_views_do(lake: str, con: duckdb.DuckDBPyConnection) -> None:
    """An as_of before later signals: the store decides those tasks again from the signals
    in force then, exactly as the views do."""
    tricky_lake(lake)
    write_signals(
        lake,
        [
            signal("T1", "completed", at(30), signal_id="s1"),
            signal("T1", "reopened", at(40), signal_id="s2"),
            signal("T9", "escalated", at(35), signal_id="s3"),
        ],
        "s",
    )
    store = _open(con, lake)
    store.refresh()
    for hours in (29, 36, 41):
        con.execute("SET VARIABLE as_of = ?::TIMESTAMPTZ", [at(hours)])
        assert_store_matches_views(con, store, full=hours == 36)
        got = Counter(map(repr, con.execute("SELECT * FROM store_task_facts").fetchall()))
        want = Counter(map(repr, con.execute(f"SELECT * FROM ({FACTS})").fetchall()))
        assert got == want, hours


def _reopen(lake: str, path: Path, settings: Settings | None = None) -> tuple[Store, Any]:
    con = duckdb.connect()
    return _open(con, lake, settings, path), con


def test_the_store_file_survives_a_restart(lake: str) -> None:
    path = local_dir(lake) / "_store" / "w.duckdb"
    rows = random_rows(3, traces=30)
    scatter(lake, rows[:-10], 3, files=3, copies=0)
    store, con = _reopen(lake, path)
    assert store.path == path and not store.built
    assert store.refresh().kind == "rebuild"
    assert sorted(p.name for p in path.parent.iterdir() if p.suffix == ".duckdb") == [
        "w.duckdb"
    ]  # no scratch left
    store.close()
    con.close()

    store, con = _reopen(lake, path)  # a restart: what the file holds is taken over
    assert store.built and store.refresh().kind == "none"
    assert_store_matches_views(con, store)
    # while it is down the lake moves on: the restart follows the log from where it was
    store.close()
    con.close()
    write_spans(lake, rows[-10:], "later")
    write_signals(lake, [signal("task1", "completed", at(70), signal_id="later")], "later")
    store, con = _reopen(lake, path)
    assert store.refresh().kind == "incremental"
    assert_store_matches_views(con, store)
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
    assert_store_matches_views(con, store)
    store.close()
    con.close()


def test_an_unreadable_store_file_is_started_over(lake: str, tmp_path: Path) -> None:
    path = tmp_path / "store.duckdb"
    tricky_lake(lake)
    path.write_bytes(b"this is not a DuckDB file" * 100)
    store, con = _reopen(lake, path)
    assert store.path == path and store.refresh().kind == "rebuild"
    assert_store_matches_views(con, store)
    store.close()
    con.close()


def test_the_views_answer_the_scenario_as_the_store(
    lake: str, con: duckdb.DuckDBPyConnection
) -> None:
    """The hand-computed scenario (tests/service/scenario.py) through the views: every
    grouping the API offers, inference and fully loaded, as the store answers it."""
    from service.api.cost_per_task import GROUP_KEYS
    from tests.service import scenario

    scenario.build(lake)
    store = _open(con, lake)
    store.refresh()
    store.tables.pin(con, store.snapshot)
    con.execute("SET VARIABLE as_of = ?::TIMESTAMPTZ", [scenario.AS_OF])
    for key in GROUP_KEYS:
        for full in ("false", "true"):
            args = f"by_{key} := true, full_cost := {full}"
            want = con.execute(f"SELECT * FROM cost_per_task_by({args})").fetchall()
            got = con.execute(f"SELECT * FROM store_cost_per_task_by({args})").fetchall()
            assert got == want, args
    for analysis in (
        "compare_by('support', a_version := 'v1', b_version := 'v2', full_cost := true)",
        "compare_decomposition_by('support', a_version := 'v1', b_version := 'v2',"
        " full_cost := true)",
        "trend_diagnosis_by('week', full_cost := true)",
        "autonomy_by()",
        "levers_by()",
        "outcome_reasons_by()",
        "time_saved_by()",
    ):
        want = con.execute(f"SELECT * FROM {analysis}").fetchall()
        got = con.execute(f"SELECT * FROM store_{analysis}").fetchall()
        assert got == want, analysis
