"""Outcomes per DESIGN §2: acceptance windows, reopen, rework, abandon, latest signal wins —
each case one task with one attempt ending at ``END`` and its own signals."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from schemas.settings import Settings, WorkflowRule
from tests.lakes import at, load, new_lake, signal, span, write_signals, write_spans

END = at(0) + timedelta(seconds=1)  # every task's last span ends here
H = timedelta(hours=1)
D = timedelta(days=1)

# name: (signals as (outcome, hours after END, extra fields), as_of hours, outcome, counted_as)
CASES: dict[str, tuple[list[tuple[str, float, dict[str, Any]]], float, str, str]] = {
    "inside-window": ([("completed", 1, {})], 30, "pending", "pending"),
    "window-elapsed": ([("completed", 1, {})], 50, "completed", "completed"),
    "reopened-30h": ([("completed", 1, {}), ("reopened", 31, {})], 500, "reopened", "failed"),
    "reopened-49h": ([("completed", 1, {}), ("reopened", 50, {})], 500, "completed", "completed"),
    "recompleted": (
        [("completed", 1, {}), ("reopened", 31, {}), ("completed", 41, {})],
        500,
        "completed",
        "completed",
    ),
    "recompleted-window-open": (
        [("completed", 1, {}), ("reopened", 31, {}), ("completed", 41, {})],
        60,
        "pending",
        "pending",
    ),
    "no-signal-yet": ([], 6 * 24, "pending", "pending"),
    "no-signal": ([], 8 * 24, "abandoned", "abandoned"),
    # abandoned is provisional: a completion arriving after abandon_after decides the task
    "late-completion-not-yet-in": (
        [("completed", 8 * 24, {})],
        7 * 24 + 12,
        "abandoned",
        "abandoned",
    ),
    "late-completion-in": ([("completed", 8 * 24, {})], 30 * 24, "completed", "completed"),
    "late-failure-in": ([("failed", 9 * 24, {})], 30 * 24, "failed", "failed"),
    "rework": ([("completed", 1, {}), ("rework", 5, {})], 500, "rework", "failed"),
    "failed-then-completed": (
        [("failed", 1, {}), ("completed", 3, {})],
        500,
        "completed",
        "completed",
    ),
    "completed-then-failed": (
        [("completed", 1, {}), ("failed", 100, {})],
        500,
        "failed",
        "failed",
    ),
    "late-reopen-changes-nothing": (
        [("completed", 1, {}), ("failed", 10, {}), ("reopened", 100, {})],
        500,
        "failed",
        "failed",
    ),
    "escalated": ([("escalated", 2, {})], 500, "escalated", "escalated"),
    "abandoned-signal": ([("abandoned", 2, {})], 500, "abandoned", "abandoned"),
    "reopened-alone": ([("reopened", 2, {})], 500, "reopened", "failed"),
    "future-signal": ([("failed", 2, {}), ("completed", 600, {})], 500, "failed", "failed"),
    "other-workflow": (
        [("completed", 1, {}), ("failed", 2, {"workflow": "elsewhere"})],
        500,
        "completed",
        "completed",
    ),
    "same-workflow": (
        [("completed", 1, {}), ("failed", 2, {"workflow": "wf"})],
        500,
        "failed",
        "failed",
    ),
    "by-attempt": ([("completed", 1, {"by": "correlation_id"})], 500, "completed", "completed"),
    # a lenient workflow: 1h window, rework counts, 1 day to abandon
    "lenient-rework": ([("completed", 1, {}), ("rework", 5, {})], 500, "completed", "completed"),
    "lenient-window": ([("completed", 1, {})], 2.5, "completed", "completed"),
    "lenient-abandon": ([], 25, "abandoned", "abandoned"),
}


def _lake(base: Path) -> str:
    lake = new_lake(base)
    rows, signals = [], []
    for name, (sigs, _, _, _) in CASES.items():
        workflow = "lenient" if name.startswith("lenient") else "wf"
        rows.append(
            span(
                name,
                f"{name}-root",
                start=at(0),
                ms=1000,
                task_id=f"T-{name}",
                correlation_id=f"A-{name}",
                workflow=workflow,
            )
        )
        for i, (outcome, hours, extra) in enumerate(sigs):
            target = f"A-{name}" if extra.get("by") == "correlation_id" else f"T-{name}"
            signals.append(
                signal(target, outcome, END + hours * H, signal_id=f"{name}-{i}", **dict(extra))
            )
    write_spans(lake, rows, "spans")
    write_signals(lake, signals, "signals")
    return lake


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, str]]:
    lake = _lake(tmp_path_factory.mktemp("outcomes"))
    settings = Settings(
        workflows={
            "lenient": WorkflowRule(
                reopen_window=H, abandon_after=D, rework_counts_as_completed=True
            )
        }
    )
    con = duckdb.connect()
    load(con, lake, settings)
    found: dict[str, tuple[str, str]] = {}
    for name, (_, as_of_hours, _, _) in CASES.items():
        as_of: datetime = END + as_of_hours * H
        con.execute("SET VARIABLE as_of = ?::TIMESTAMPTZ", [as_of])
        row = con.execute(
            "SELECT outcome, counted_as FROM tasks WHERE task_key = ?", [f"T-{name}"]
        ).fetchone()
        assert row is not None, name
        found[name] = (row[0], row[1])
    con.close()
    return found


@pytest.mark.parametrize("name", list(CASES))
def test_outcome(outcomes: dict[str, tuple[str, str]], name: str) -> None:
    _, _, outcome, counted_as = CASES[name]
    assert outcomes[name] == (outcome, counted_as)


def test_every_task_is_counted_once(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    con = duckdb.connect()
    load(con, lake)
    con.execute("SET VARIABLE as_of = ?::TIMESTAMPTZ", [END + 40 * H])
    total, buckets = con.execute(
        "SELECT count(*), sum(completed + failed + escalated + abandoned + pending)"
        " FROM cost_per_task_by(by_workflow := true, by_day := true)"
    ).fetchone() or (None, None)
    assert total == 2  # two workflows, one day
    tasks = con.execute("SELECT sum(tasks) FROM cost_per_task_by()").fetchone()
    assert tasks == (len(CASES),) and buckets == len(CASES)
    con.close()
