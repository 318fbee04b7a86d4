"""``GET /api/v1/autonomy``: the verdict flips exactly at each threshold.

Workflow ``gate``, the four weeks before Monday 2026-02-02 (its 28-day window): 30 tasks a
week, 114 of 120 completed (weeks: 29, 28, 29, 28); weeks 1-3 at $0.114 for 1,000 tokens an
attempt, week 4 at $0.1368 for 1,200 tokens (the same price per token). So:

  success rate 114/120 = 0.95, its one-sided Wilson lower bound at 95% (z = 1.6449) below it;
  cost per completed task (90 x 0.114 + 30 x 0.1368) / 114 = $0.126;
  drift: week 4 ($4.104 / 28 completed) against weeks 2-3 ($6.84 / 57 = $0.12): +22.14%,
  mostly tokens per attempt, although the price per token did not move.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from statistics import NormalDist
from typing import Any

import pytest

from schemas.settings import Settings, WorkflowRule
from service.api.analysis import macro_rows
from service.db import Database
from tests.lakes import T0
from tests.service.conftest import Api, serve_api
from tests.service.workloads import Lake, Week, usd

END = T0.replace(hour=0) + timedelta(days=28)
AS_OF = datetime(2026, 2, 10, tzinfo=UTC)
#: Every threshold cleared by a margin: the verdict is ready.
LOOSE = WorkflowRule(
    target_success_rate=0.5,
    min_tasks=120,
    budget_per_completed_task=Decimal(1),
    drift_threshold=1.0,
)


def _wilson(p: float, n: int, z: float) -> float:
    return (p + z * z / (2 * n) - z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))) / (
        1 + z * z / n
    )


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = Lake()
    work.workflow(
        "gate",
        [
            Week(30, "0.114", 1000, completed=29),
            Week(30, "0.114", 1000, completed=28),
            Week(30, "0.114", 1000, completed=29),
            Week(30, "0.1368", 1200, completed=28),
        ],
    )
    path = tmp_path_factory.mktemp("autonomy") / "lake"
    work.write(path)
    return path


def _gate(lake: Path, rule: WorkflowRule) -> dict[str, Any]:
    db = Database(Settings(lake=str(lake), workflows={"gate": rule}))
    try:
        args = {"end_at": ("TIMESTAMPTZ", END)}
        (row,) = macro_rows(db, "autonomy_by", args, as_of=AS_OF)
        # the views, without the store, answer the same
        db_views = Database(Settings(lake=str(lake), workflows={"gate": rule}), store=False)
        try:
            (same,) = macro_rows(db_views, "autonomy_by", args, as_of=AS_OF)
        finally:
            db_views.close()
        assert repr(same) == repr(row)
        return row
    finally:
        db.close()


@pytest.fixture(scope="module")
def loose(lake: Path) -> dict[str, Any]:
    return _gate(lake, LOOSE)


def test_the_numbers_by_hand(loose: dict[str, Any]) -> None:
    assert loose["verdict"] == "ready" and loose["quality_proven"] and loose["cost_proven"]
    assert (loose["decided"], loose["success_rate"]) == (120, 0.95)
    z = NormalDist().inv_cdf(0.95)
    assert loose["wilson_lower_bound"] == pytest.approx(_wilson(0.95, 120, z), rel=1e-12)
    assert loose["wilson_lower_bound"] < 0.95
    assert usd(loose["cost_per_completed_task_usd"]) == Decimal("0.126")
    # (costs per completed task are exact to 1e-12 USD: the ratio to about 1e-11)
    assert loose["drift"] == pytest.approx((4.104 / 28) / 0.12 - 1, rel=1e-9)
    assert loose["drift_cause"] == "tokens_per_attempt"  # the per-token price stayed flat
    assert (str(loose["window_start"]), str(loose["window_end"])) == ("2026-01-05", "2026-02-02")
    assert any(r.startswith("quality proven") for r in loose["reasons"])
    assert any(r.startswith("cost proven") for r in loose["reasons"])


def _flips(loose: dict[str, Any]) -> list[tuple[str, dict[str, Any], dict[str, Any], str]]:
    """(what, at the threshold: ready, just past it: not ready, the reason then)."""
    lower, drift = loose["wilson_lower_bound"], loose["drift"]
    return [
        (
            "quality: the Wilson bound",
            {"target_success_rate": lower},
            {"target_success_rate": math.nextafter(lower, 1)},
            "lower bound",
        ),
        (
            "quality: the success rate",
            {"target_success_rate": lower},
            {"target_success_rate": math.nextafter(0.95, 1)},
            "is below the target",
        ),
        ("sample size", {"min_tasks": 120}, {"min_tasks": 121}, "fewer than min_tasks (121)"),
        (
            "budget",
            {"budget_per_completed_task": Decimal("0.126")},
            {"budget_per_completed_task": Decimal("0.125999")},
            "is over the budget",
        ),
        (
            "drift",
            {"drift_threshold": drift},
            {"drift_threshold": math.nextafter(drift, 0)},
            "drifts up 22.1%",
        ),
    ]


@pytest.mark.parametrize("index", range(5))
def test_the_verdict_flips_exactly_at_each_threshold(
    lake: Path, loose: dict[str, Any], index: int
) -> None:
    what, at, past, reason = _flips(loose)[index]
    ready = _gate(lake, replace(LOOSE, **at))
    assert ready["verdict"] == "ready", (what, ready["reasons"])
    missed = _gate(lake, replace(LOOSE, **past))
    assert missed["verdict"] == "not_ready", what
    assert any(reason in r for r in missed["reasons"]), (what, missed["reasons"])
    quality = what.startswith("quality") or what == "sample size"
    assert (missed["quality_proven"], missed["cost_proven"]) == (not quality, quality)


def test_without_targets_nothing_is_proven(lake: Path) -> None:
    row = _gate(lake, WorkflowRule())
    assert row["verdict"] == "not_ready"
    assert "no target_success_rate is set for this workflow" in row["reasons"]
    assert "no budget_per_completed_task is set for this workflow" in row["reasons"]


def test_too_few_periods_cannot_prove_cost(lake: Path) -> None:
    row = _gate(lake, replace(LOOSE, autonomy_window=timedelta(days=14)))
    assert (row["verdict"], row["cost_proven"], row["drift_usable_periods"]) == (
        "not_ready",
        False,
        2,
    )
    assert any("drift cannot be judged" in r for r in row["reasons"])


@pytest.fixture(scope="module")
def autonomy_api(lake: Path) -> Iterator[Api]:
    with serve_api(Settings(lake=str(lake), workflows={"gate": LOOSE})) as base:
        yield Api(base)


def test_over_http(autonomy_api: Api) -> None:
    doc = autonomy_api.json(
        "/api/v1/autonomy", end=END.isoformat(), as_of=AS_OF.isoformat(), workflow="gate"
    )
    (row,) = doc["rows"]
    assert (row["workflow"], row["verdict"]) == ("gate", "ready")
    assert doc["cost"] == "inference" and doc["filters"]["workflow"] == ["gate"]
    resp = autonomy_api.get(
        "/api/v1/autonomy", end=END.isoformat(), as_of=AS_OF.isoformat(), format="csv"
    )
    lines = resp.text.splitlines()
    assert lines[0].startswith("workflow,verdict,quality_proven,cost_proven,success_rate")
    assert lines[1].startswith("gate,ready,true,true,0.95,")
