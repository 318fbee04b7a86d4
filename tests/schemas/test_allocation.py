"""The allocation of cost entries (``schemas/allocation.sql``) and the fully loaded cost of
``cost_per_task_by(full_cost := true)``, on small lakes where every share is known."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.lakes import at, load, new_lake, signal, span, write_costs, write_signals, write_spans

PARTS = (
    "inference_usd",
    "rework_usd",
    "labor_usd",
    "infrastructure_usd",
    "licence_usd",
    "other_usd",
)


def _task(name: str, hour: float, cost: str | None, **dims: Any) -> list[dict[str, Any]]:
    """A task of one attempt: a root naming its dimensions and one model call."""
    start = at(hour)
    return [
        span(
            name,
            f"{name}-root",
            start=start,
            op="invoke_workflow",
            task_id=name,
            correlation_id=f"{name}-a",
            **dims,
        ),
        span(
            name,
            f"{name}-chat",
            parent=f"{name}-root",
            start=start,
            op="chat",
            cost=cost,
            model="m",
            provider="p",
            tokens=(10, 1),
            correlation_id=f"{name}-a",
            role="writer",
        ),
    ]


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    c = duckdb.connect()
    yield c
    c.close()


def _lake(
    tmp_path: Path, tasks: Sequence[list[dict[str, Any]]], costs: list[dict[str, Any]]
) -> str:
    lake = new_lake(tmp_path)
    write_spans(lake, [row for t in tasks for row in t], "spans")
    write_costs(lake, costs, "costs")
    return lake


def _shares(con: duckdb.DuckDBPyConnection, lake: str) -> dict[str, tuple[Decimal, ...]]:
    load(con, lake)
    rows = con.execute(
        "SELECT task_key, rework_usd, labor_usd, infrastructure_usd, licence_usd, other_usd"
        " FROM task_allocations"
    ).fetchall()
    return {r[0]: tuple(r[1:]) for r in rows}


def _entries(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[Any, ...]]:
    rows = con.execute(
        "SELECT entry_id, scope_spend_usd, allocated FROM cost_allocations"
    ).fetchall()
    return {r[0]: r[1:] for r in rows}


def entry(
    entry_id: str, component: str, amount: str, start: str, end: str, **kw: str
) -> dict[str, Any]:
    return {
        "entry_id": entry_id,
        "component": component,
        "amount_usd": amount,
        "period_start": start,
        "period_end": end,
        **kw,
    }


D = Decimal
Z = D(0)


def test_scopes_by_period_workflow_and_team(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    # T0 starts at 09:00 on Jan 5; hours count from there
    lake = _lake(
        tmp_path,
        [
            _task("a1", 0, "1", workflow="wa", team="t1"),
            _task("a2", 1, "3", workflow="wa", team="t2"),
            _task("b1", 2, "2", workflow="wb", team="t1"),
            _task("n1", 3, "4"),  # no workflow, no team
            _task("late", 24 * 30, "1", workflow="wa", team="t1"),  # February 4th
        ],
        [
            entry("wa", "labor", "40", "2026-01-01", "2026-02-01", workflow="wa"),
            entry("t1", "infrastructure", "30", "2026-01-01", "2026-02-01", team="t1"),
            entry("wa-t1", "licence", "7", "2026-01-01", "2026-03-01", workflow="wa", team="t1"),
            entry("all", "other", "100", "2026-01-05T09:00:00Z", "2026-01-05T11:00:00Z"),
            entry("none", "rework", "9", "2026-01-01", "2026-02-01", workflow="wc"),
        ],
    )
    shares = _shares(con, lake)
    #          rework  labor       infrastructure  licence     other
    assert shares["a1"] == (Z, D(10), D(10), D("3.5"), D(25))  # [09:00, 11:00): a1, a2 only
    assert shares["a2"] == (Z, D(30), Z, Z, D(75))
    assert shares["b1"] == (Z, Z, D(20), Z, Z)
    assert "n1" not in shares  # no workflow or team: only unnamed entries reach it
    assert shares["late"] == (Z, Z, Z, D("3.5"), Z)  # the licence runs through February
    assert _entries(con) == {
        "wa": (D(4), True),
        "t1": (D(3), True),
        "wa-t1": (D(2), True),
        "all": (D(4), True),
        "none": (Z, False),
    }


def test_shares_are_exact_to_the_last_unit(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    lake = _lake(
        tmp_path,
        [_task(f"t{i}", i, "0.1", workflow="w") for i in range(3)]
        + [_task("u", 5, "0.3", workflow="v")],
        [
            entry("ten", "labor", "10", "2026-01-01", "2026-02-01", workflow="w"),
            entry("odd", "other", "0.000000000002", "2026-01-01", "2026-02-01"),
        ],
    )
    shares = _shares(con, lake)
    labor = sorted(s[1] for k, s in shares.items() if k.startswith("t"))
    # 10 / 3 each, rounded down to 1e-12; the unit left goes to one task: nothing is lost
    assert labor == [D("3.333333333333"), D("3.333333333333"), D("3.333333333334")]
    assert sum(s[1] for s in shares.values()) == D(10)
    assert sum(s[4] for s in shares.values()) == D("0.000000000002")


def test_an_entry_over_unpriced_work_is_not_allocated(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    lake = _lake(
        tmp_path,
        [_task("x", 0, None, workflow="w"), _task("y", 1, "1", workflow="v")],
        [entry("e", "labor", "5", "2026-01-01", "2026-02-01", workflow="w")],
    )
    assert _shares(con, lake) == {}
    assert _entries(con) == {"e": (Z, False)}


def _full(con: duckdb.DuckDBPyConnection, args: str) -> list[dict[str, Any]]:
    cur = con.execute(f"SELECT * FROM cost_per_task_by({args}, full_cost := true)")
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def test_rework_on_signals_and_a_task_without_model_calls(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    lake = _lake(
        tmp_path,
        [
            _task("a", 0, "1", workflow="w"),
            [span("h", "h-root", start=at(1), op="invoke_workflow", task_id="h", workflow="w")],
        ],
        [entry("rw", "rework", "6", "2026-01-01", "2026-02-01", workflow="w")],
    )
    write_signals(
        lake,
        [
            signal("a", "rework", at(2), rework_cost_usd="2.5"),
            signal("h", "failed", at(2), rework_cost_usd="4"),  # a human-only task
        ],
        "signals",
    )
    load(con, lake)
    (row,) = _full(con, "by_workflow := true")
    assert [row[p] for p in PARTS] == [D(1), D("12.5"), Z, Z, Z, Z]
    assert row["spend_usd"] == D("13.5")
    by_model = {r["model"]: r for r in _full(con, "by_workflow := true, by_model := true")}
    # the human-only task has no model call: its rework shows on a row with no model
    assert {m: r["rework_usd"] for m, r in by_model.items()} == {"m": D("8.5"), None: D(4)}
    assert sum(r["spend_usd"] for r in by_model.values()) == row["spend_usd"]
    by_role = _full(con, "by_workflow := true, by_role := true")
    assert sum(r["spend_usd"] for r in by_role) == row["spend_usd"]
    # an inference answer has no components and leaves the non-inference spend out
    inference = con.execute(
        "SELECT spend_usd, inference_usd FROM cost_per_task_by(by_workflow := true)"
    ).fetchall()
    assert inference == [(D(1), None)]


def test_filters_do_not_change_anyone_s_share(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    lake = _lake(
        tmp_path,
        [_task("a", 0, "1", workflow="w1"), _task("b", 1, "3", workflow="w2")],
        [entry("all", "infrastructure", "8", "2026-01-01", "2026-02-01")],
    )
    load(con, lake)
    (only,) = _full(con, "by_workflow := true, workflows := ['w1']")
    assert only["infrastructure_usd"] == D(2)  # a's share of all work, not all of it
