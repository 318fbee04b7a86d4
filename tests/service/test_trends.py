"""``GET /api/v1/trends``: one lake, one workflow per pattern, each of three weeks (two
baseline, one recent; the default thresholds: 10%), so each state shows up exactly where its
pattern holds and nowhere else.

Every week has 10 tasks of one attempt at $0.10 and 1,000 tokens, all completed, except:

  more_tokens      week 3: $0.15 for 1,500 tokens (same price per token)   rising, tokens
  dearer_model     week 3: $0.15 for 1,000 tokens                           rising, model mix
  more_failures    week 3: 5 of 10 fail                                     rising, failures
  more_rework      week 3: $5 of rework entries                             rising, rework
  idle_infra       $10 of infrastructure a week; week 3: 8 tasks            rising, infrastructure
  growing          week 3: 20 tasks                                         flat_with_growth
  improving        week 3: 20 tasks at $0.05                                improving
  steady           as is                                                    stable
  growing_dearer   week 3: 20 tasks at $0.15 for 1,500 tokens               stable (volume grew)
  shrinking        week 3: 5 tasks at $0.05                                 stable (spend fell)
  young            two weeks only                                           insufficient_data
  pending_last     a fourth week without signals yet                        stable, week 4 left out
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from schemas.settings import Settings, WorkflowRule
from tests.lakes import T0
from tests.service.conftest import Api, serve_api
from tests.service.workloads import Lake, Week, usd

AS_OF = (T0 + timedelta(weeks=3, days=2)).isoformat()
BASE = Week(10, "0.10", 1000)
PATTERNS: dict[str, tuple[list[Week], str, str | None]] = {
    "more_tokens": ([BASE, BASE, Week(10, "0.15", 1500)], "rising", "tokens_per_attempt"),
    "dearer_model": ([BASE, BASE, Week(10, "0.15", 1000)], "rising", "model_mix"),
    "more_failures": ([BASE, BASE, Week(10, "0.10", 1000, completed=5)], "rising", "failures"),
    "more_rework": ([BASE, BASE, BASE], "rising", "rework"),
    "idle_infra": ([BASE, BASE, Week(8, "0.10", 1000)], "rising", "infrastructure"),
    "growing": ([BASE, BASE, Week(20, "0.10", 1000)], "flat_with_growth", None),
    "improving": ([BASE, BASE, Week(20, "0.05", 1000)], "improving", None),
    "steady": ([BASE, BASE, BASE], "stable", None),
    "growing_dearer": ([BASE, BASE, Week(20, "0.15", 1500)], "stable", None),
    "shrinking": ([BASE, BASE, Week(5, "0.05", 500)], "stable", None),
    "young": ([BASE, BASE], "insufficient_data", None),
    "pending_last": ([BASE, BASE, BASE, Week(10, "0.10", 1000, pending=10)], "stable", None),
}


@pytest.fixture(scope="module")
def trends_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    lake = Lake()
    for name, (weeks, _, _) in PATTERNS.items():
        lake.workflow(name, weeks)
    lake.cost("more_rework", "rework", "5", 2)
    for week in range(3):
        lake.cost("idle_infra", "infrastructure", "10", week)
    path = tmp_path_factory.mktemp("trends") / "lake"
    lake.write(path)
    with serve_api(Settings(lake=str(path))) as base:
        yield Api(base)


@pytest.fixture(scope="module")
def answer(trends_api: Api) -> Any:
    return trends_api.json("/api/v1/trends", period="week", as_of=AS_OF)


def test_each_state_appears_exactly_where_its_pattern_holds(answer: Any) -> None:
    got = {d["workflow"]: (d["state"], d["cause"]) for d in answer["diagnosis"]}
    assert got == {name: (state, cause) for name, (_, state, cause) in PATTERNS.items()}


def test_the_numbers_behind_the_verdict(answer: Any) -> None:
    d = {d["workflow"]: d for d in answer["diagnosis"]}
    tokens = d["more_tokens"]
    assert tokens["cost_change"] == pytest.approx(0.5)  # $0.10 -> $0.15 per completed task
    assert tokens["volume_change"] == 0 and tokens["spend_change"] == pytest.approx(0.5)
    assert (tokens["baseline"]["periods"], tokens["recent"]["periods"]) == (2, 1)
    assert tokens["baseline"]["first_period"] == T0.date().isoformat()
    assert tokens["part_tokens_per_attempt"] == pytest.approx(0.05, abs=1e-12)
    assert tokens["part_price_per_token"] == pytest.approx(0, abs=1e-12)
    assert tokens["trend_threshold"] == 0.1 and tokens["baseline_periods"] == 2
    infra = d["idle_infra"]
    # per completed task: 0.10 + 10/10 -> 0.10 + 10/8: +22.7% while volume fell 20%
    assert infra["cost_change"] == pytest.approx(1.35 / 1.1 - 1)
    assert infra["volume_change"] == pytest.approx(-0.2)
    assert usd(infra["part_infrastructure"]) == Decimal("0.25")
    rework = d["more_rework"]
    assert usd(rework["part_rework"]) == Decimal("0.5")  # $5 over 10 completed tasks
    assert d["growing"]["cost_change"] == 0 and d["growing"]["spend_change"] == 1
    assert "volume up 100.0%" in d["growing_dearer"]["note"]
    assert "spend down" in d["shrinking"]["note"]
    assert "2 usable period(s)" in d["young"]["note"]
    late = (T0 + timedelta(weeks=3)).date().isoformat()
    assert d["pending_last"]["left_out"] == [late]  # its cost per completed task is not final
    assert d["steady"]["left_out"] == []


def test_each_period_row(answer: Any) -> None:
    rows = {(r["workflow"], r["period_start"]): r for r in answer["rows"]}
    week3 = (T0 + timedelta(weeks=2)).date().isoformat()
    r = rows[("more_failures", week3)]
    assert (r["tasks"], r["completed"], r["failed"], r["failure_rate"]) == (10, 5, 5, 0.5)
    assert usd(r["spend_usd"]) == 1 and usd(r["cost_per_completed_task_usd"]) == Decimal("0.2")
    assert r["attempts_per_completed_task"] == 2 and r["tokens_per_attempt"] == 1000
    infra = rows[("idle_infra", week3)]
    assert usd(infra["infrastructure_per_completed_task_usd"]) == Decimal("1.25")
    assert usd(infra["inference_per_completed_task_usd"]) == Decimal("0.1")
    assert usd(infra["spend_usd"]) == Decimal("10.8")  # fully loaded (the default)
    assert answer["period"] == "week" and answer["cost"] == "full"


def test_thresholds_come_from_the_workflow_rules(tmp_path: Path) -> None:
    """With the thresholds at 60%, a 50% rise of cost (and of spend) is no longer a move."""
    lake = Lake()
    lake.workflow("more_tokens", PATTERNS["more_tokens"][0])
    lake.write(tmp_path / "lake")

    rule = WorkflowRule(trend_threshold=0.6, trend_volume_threshold=0.6)
    with serve_api(Settings(lake=str(tmp_path / "lake"), workflows={"more_tokens": rule})) as b:
        doc = Api(b).json("/api/v1/trends", period="week", as_of=AS_OF, workflow="more_tokens")
    (d,) = doc["diagnosis"]
    assert (d["state"], d["trend_threshold"]) == ("stable", 0.6)


def test_csv_and_periods(trends_api: Api) -> None:
    resp = trends_api.get(
        "/api/v1/trends", period="month", workflow="steady", format="csv", as_of=AS_OF
    )
    assert resp.status_code == 200
    lines = resp.text.splitlines()
    assert lines[0].startswith("workflow,period_start,attempts,tasks,completed")
    assert lines[1].startswith("steady,2026-01-01,30,30,30,")
    bad = trends_api.get("/api/v1/trends", period="year")
    assert bad.status_code == 400 and "period" in bad.json()["error"]["message"]
